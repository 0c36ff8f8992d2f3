#!/usr/bin/env bash
# Checks the units offline: `systemd-analyze verify` of all three (ExecStart pointed at a built
# binary), and `systemd-analyze security --offline=yes` of the two system units against their
# exposure targets (awscredd.service <= 1.5, an awscredd@USER instance <= 2.5).
#
#   bash systemd/verify.sh [BINARY]      # default target/debug/awscredd
set -euo pipefail
cd "$(dirname "$0")/.."
command -v systemd-analyze >/dev/null || { echo "systemd-analyze not found (apt-get install systemd)"; exit 1; }
bin=${1:-target/debug/awscredd}
[ -x "$bin" ] || cargo build --quiet --bin awscredd
bin=$(realpath "$bin")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/system" "$tmp/user"
sed "s#/usr/bin/awscredd#$bin#" systemd/awscredd.service > "$tmp/system/awscredd.service"
# A template is verified through an instance.
sed "s#/usr/bin/awscredd#$bin#" systemd/awscredd@.service > "$tmp/system/awscredd@verify.service"
sed "s#/usr/bin/awscredd#$bin#" systemd/user/awscredd.service > "$tmp/user/awscredd.service"

# Ignore what comes from the machine rather than the unit (no running systemd in containers).
machine_noise=(-e '^$' -e 'Failed to connect' -e 'System has not been booted' -e 'network-online.target'
  -e 'Failed to resolve' -e 'No such process' -e 'Unit .* not found')
fail=0
verify() {
  local out problems
  out=$(systemd-analyze "$@" 2>&1 || true)
  problems=$(printf '%s\n' "$out" | grep -v "${machine_noise[@]}" || true)
  if [ -n "$problems" ]; then
    printf 'systemd-analyze %s:\n%s\n' "$*" "$problems"
    fail=1
  fi
}
# --man=no: the man page is installed by the package, not here.
verify verify --man=no "$tmp/system/awscredd.service"
verify verify --man=no "$tmp/system/awscredd@verify.service"
mkdir -m 0700 "$tmp/run"
XDG_RUNTIME_DIR="$tmp/run" verify --user verify --man=no "$tmp/user/awscredd.service"

# The sysusers.d file, applied to an empty root: it must make the user with its home.
mkdir -p "$tmp/sysroot/etc"
if command -v systemd-sysusers >/dev/null; then
  systemd-sysusers --root="$tmp/sysroot" - < systemd/sysusers.d/awscredd.conf >/dev/null 2>"$tmp/sysusers.err" || true
  grep -q '^awscredd:x:[0-9]*:[0-9]*:[^:]*:/var/lib/awscredd:' "$tmp/sysroot/etc/passwd" 2>/dev/null || {
    echo "systemd-sysusers: no awscredd user from sysusers.d/awscredd.conf: $(cat "$tmp/sysusers.err")"; fail=1; }
fi

# Exposure, one decimal: systemd-analyze exits non-zero above the threshold (0-100 scale).
security() {
  local unit=$1 max=$2 out score
  out=$(systemd-analyze security --offline=yes --no-pager --threshold="$max" "$unit" 2>&1) || {
    printf '%s\n' "$out" | grep -v '✓'
    echo "systemd-analyze security: $(basename "$unit") is above $max (x10)"
    fail=1
  }
  score=$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
  echo "exposure $(basename "$unit"): $score"
}
security "$tmp/system/awscredd.service" 15
security "$tmp/system/awscredd@verify.service" 25

# Children (credential_process, login_command, on_change) inherit the sandbox: a JIT runtime in
# one of them (Node, Java, .NET) crashes under MemoryDenyWriteExecute.
if grep -l '^MemoryDenyWriteExecute=yes' systemd/awscredd.service systemd/awscredd@.service systemd/user/awscredd.service; then
  echo "MemoryDenyWriteExecute=yes breaks credential_process helpers with a JIT runtime"
  fail=1
fi
[ "$fail" = 0 ] || exit 1
echo "systemd units: ok"
