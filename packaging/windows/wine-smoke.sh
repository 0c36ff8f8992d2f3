#!/usr/bin/env bash
# Builds awscredd for Windows (packaging/windows/build.sh: x86_64-win7-windows-gnu, which Wine 8
# runs) and drives the .exe under Wine: --help (Windows paths), check, once (twice: the second
# finds the profile fresh), status, credential-process. Installs Wine and the Windows toolchain
# when run as root.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
if ! command -v wine >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wine64 wine >/dev/null
  else
    echo "needs: apt-get install wine64 wine" >&2
    exit 1
  fi
fi
# The same build as service-test.sh, so CI builds the .exe once.
bash packaging/windows/build.sh --debug --example win_hold_file >/dev/null
exe="$root/target/windows/awscredd.exe"

tmp=$(mktemp -d)
trap 'wineserver -k >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
export WINEPREFIX="$tmp/prefix" WINEDEBUG=-all
win() { timeout 300 wine "$exe" --config "Z:${tmp//\//\\}\\config.toml" "$@"; }
fail() { echo "wine smoke test: $*" >&2; exit 1; }

cat > "$tmp/config.toml" <<'TOML'
[daemon]
state_dir = "state"
[[output]]
path = "out\\credentials"
[profile.win]
credential_process = "cmd /C echo {\"Version\":1,\"AccessKeyId\":\"ASIAWINE\",\"SecretAccessKey\":\"s3cret\",\"SessionToken\":\"tok\",\"Expiration\":\"2099-01-01T00:00:00Z\"}"
TOML
mkdir -p "$tmp/out"
printf '# mine\r\n[keep]\r\nk = v\r\n' > "$tmp/out/credentials"

# --help names where the config is looked for on Windows, not the Unix paths.
timeout 300 wine "$exe" --help > "$tmp/help.txt" 2>&1 || fail "--help failed: $(cat "$tmp/help.txt")"
grep -qF '(default: %ProgramData%\awscredd\config.toml)' "$tmp/help.txt" || fail "--help: $(cat "$tmp/help.txt")"
grep -q '/etc/awscredd\|XDG_CONFIG_HOME' "$tmp/help.txt" && fail "--help lists Unix paths: $(cat "$tmp/help.txt")"
win check > "$tmp/check.txt" 2>&1 || fail "check failed: $(cat "$tmp/check.txt")"
grep -q "valid" "$tmp/check.txt" || fail "check: $(cat "$tmp/check.txt")"
win once > "$tmp/once.txt" 2>&1 || fail "once failed: $(cat "$tmp/once.txt")"
expected=$(printf '# mine\r\n[keep]\r\nk = v\r\n\r\n[win]\r\naws_access_key_id = ASIAWINE\r\naws_secret_access_key = s3cret\r\naws_session_token = tok\r\naws_credential_expiration = 2099-01-01T00:00:00Z\r\n_')
[ "$(cat "$tmp/out/credentials"; printf _)" = "$expected" ] || fail "unexpected file: $(cat -A "$tmp/out/credentials")"
win once > "$tmp/once2.txt" 2>&1 || fail "second once failed: $(cat "$tmp/once2.txt")"
grep -q refreshed "$tmp/once2.txt" && fail "the fresh profile was refreshed again"
win status --json > "$tmp/status.json" 2>/dev/null || fail "status: $(cat "$tmp/status.json")"
grep -q '"state": "ok"' "$tmp/status.json" || fail "status: $(cat "$tmp/status.json")"
win credential-process --profile win > "$tmp/cp.json" 2>/dev/null || fail "credential-process failed"
grep -q '"AccessKeyId":"ASIAWINE"' "$tmp/cp.json" || fail "credential-process: $(cat "$tmp/cp.json")"
echo "wine smoke test: ok (--help, check, once, once again, status, credential-process)"
