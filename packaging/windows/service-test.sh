#!/usr/bin/env bash
# The Windows service under a real Service Control Manager: Wine's services.exe. Builds the .exe
# (packaging/windows/build.sh) and, in a throwaway WINEPREFIX:
#  1. `awscredd service install` (the event source registered too), `sc start`: RUNNING, the
#     credentials file written by a credential_process that is a Windows program (a .cmd), the
#     log in C:\ProgramData\awscredd\awscredd.log (rotated by size), start and stop given to
#     the Event Log; `sc stop`: STOPPED within 5 s with exit code 0.
#  2. A bad config: never RUNNING, STOPPED with the service-specific exit code 78, the error in
#     the log and given to the Event Log (Wine's ReportEventW prints it).
#  3. `service uninstall`: the service and its event source are gone.
#  4. Accounts: LocalSystem warnings for an output in the system profile; `--account` with
#     `--password-file` (or the password on standard input) sets the service's account.
#     Sign-in needed: against the fake IAM Identity Center, the service starts the device
#     authorization itself; URL and code in the log, the Event Log and login_command.
#  5. A reader holding the credentials file (share read only, 3 s) while `once --force` runs:
#     `once` waits, succeeds, the file is complete. Held 13 s: `once` gives up after 10 s
#     (exit 1), the old file intact; the next pass writes it.
# Prints the time from `sc start` to the first credentials written, and how long the write
# waited for the reader. Installs Wine and the toolchain when run as root.
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
bash packaging/windows/build.sh --debug --example win_hold_file >/dev/null
exe="$root/target/windows/awscredd.exe"
hold="$root/target/windows/win_hold_file.exe"
# The fake IAM Identity Center runs on Linux.
cargo build --quiet --example fake_aws
fake="$root/target/debug/examples/fake_aws"

tmp=$(mktemp -d)
export WINEPREFIX="$tmp/prefix" WINEDEBUG=-all
cleanup() {
  if [ -n "${fake_pid:-}" ]; then kill "$fake_pid" 2>/dev/null || true; fi
  timeout 20 wine sc stop awscredd >/dev/null 2>&1 || true
  timeout 20 wine sc delete awscredd >/dev/null 2>&1 || true
  wineserver -k >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'echo "service test: failed at line $LINENO: $BASH_COMMAND" >&2' ERR
log=/nonexistent
fail() {
  echo "service test: $*" >&2
  [ -f "$log" ] && { echo "--- awscredd.log" >&2; logs | tail -30 >&2; }
  exit 1
}
winpath() { printf 'Z:%s' "${1//\//\\}"; }
w() { timeout 120 wine "$@" 2>/dev/null | tr -d '\r'; }
now_ms() { date +%s%3N; }
# The service's state as `sc query` prints it (RUNNING, STOPPED, ...).
state() { w sc query awscredd | awk '$1 == "STATE" { print $4 }'; }
wait_state() { # STATE SECONDS
  local deadline=$(($(now_ms) + $2 * 1000))
  while [ "$(now_ms)" -lt "$deadline" ]; do
    [ "$(state)" = "$1" ] && return 0
    sleep 0.2
  done
  return 1
}

# Start the prefix, and keep wineserver (and with it services.exe) alive between commands.
timeout 300 wineboot -i >/dev/null 2>&1 || fail "wineboot failed"
timeout 30 wineserver -w || true
wineserver -p
log="$WINEPREFIX/drive_c/ProgramData/awscredd/awscredd.log"
logs() { cat "$log".[0-9] "$log" 2>/dev/null | tr -d '\r'; }
# The service's environment comes from the registry; a small log size makes rotation visible.
env_key='HKLM\System\CurrentControlSet\Control\Session Manager\Environment'
w reg add "$env_key" /v AWSCREDD_LOG_MAX_BYTES /t REG_SZ /d 800 /f >/dev/null || fail "reg add failed"
# And Wine's debug channel for the Event Log on in the services: ReportEventW prints there.
w reg add "$env_key" /v WINEDEBUG /t REG_SZ /d -all,+eventlog /f >/dev/null || fail "reg add failed"
# services.exe builds the services' environment once: restart it (the registry is saved).
# The session's first process starts services.exe, whose stderr the services inherit: there
# Wine's ReportEventW prints the events it is given (`err:eventlog`, `warn:eventlog`, ...).
wineserver -k
timeout 30 wineserver -w || true
wineserver -p
timeout 120 wineboot > "$tmp/services.err" 2>&1 || fail "wineboot failed"

mkdir -p "$tmp/out"
# The credential_process: a Windows batch file; its stderr goes to the service's log.
# It prints the key id in key.txt next to it, else ASIASERVICE.
cat > "$tmp/creds.cmd" <<'CMD'
@echo off
set KEY=ASIASERVICE
set ProgramData> "%~dp0service-env.txt"
if exist "%~dp0key.txt" set /p KEY=<"%~dp0key.txt"
for /L %%i in (1,1,15) do echo a line on stderr for the log, number %%i of 15 1>&2
echo {"Version":1,"AccessKeyId":"%KEY%","SecretAccessKey":"s3cret","SessionToken":"tok","Expiration":"2099-01-01T00:00:00Z"}
CMD
sed -i 's/$/\r/' "$tmp/creds.cmd"
cat > "$tmp/config.toml" <<TOML
[daemon]
state_dir = '$(winpath "$tmp/state")'
[[output]]
path = '$(winpath "$tmp/out/credentials")'
[profile.svc]
credential_process = '$(winpath "$tmp/creds.cmd")'
TOML
cp "$tmp/config.toml" "$tmp/good.toml"
config=$(winpath "$tmp/config.toml")

echo "== install"
w "$exe" service install --config "$config" > "$tmp/install.txt" || fail "install: $(cat "$tmp/install.txt")"
grep -q "installed the \`awscredd\` service (as LocalSystem)" "$tmp/install.txt" || fail "install: $(cat "$tmp/install.txt")"
grep -q warning "$tmp/install.txt" && fail "warned for absolute paths: $(cat "$tmp/install.txt")"
[ "$(state)" = STOPPED ] || fail "not STOPPED after install: $(w sc query awscredd)"
w reg query 'HKLM\System\CurrentControlSet\Services\EventLog\Application\awscredd' /v EventMessageFile \
  | grep -q EventLogMessages.dll || fail "the event source is not registered"

echo "== start"
t0=$(now_ms)
w sc start awscredd > "$tmp/start.txt" || fail "sc start: $(cat "$tmp/start.txt")"
first=""
deadline=$((t0 + 60000))
while [ "$(now_ms)" -lt "$deadline" ]; do
  if grep -q ASIASERVICE "$tmp/out/credentials" 2>/dev/null; then first=$(($(now_ms) - t0)); break; fi
  sleep 0.05
done
[ -n "$first" ] || fail "no credentials written within 60 s of sc start"
wait_state RUNNING 20 || fail "not RUNNING: $(w sc query awscredd)"
grep -q "aws_secret_access_key = s3cret" "$tmp/out/credentials" || fail "file: $(cat "$tmp/out/credentials")"
[ -f "$log" ] || fail "no log at C:\\ProgramData\\awscredd\\awscredd.log: $(find "$WINEPREFIX/drive_c" -name awscredd.log)"
grep -q "awscredd started" <(logs) || fail "the log does not say it started"
grep -q "refreshed" <(logs) || fail "the log does not say it refreshed"
grep -q 'eventlog:ReportEventW .*awscredd started' "$tmp/services.err" \
  || fail "the start was not reported to the Event Log: $(cat "$tmp/services.err")"
echo "first credentials written ${first} ms after sc start"
# Not ours to assert: Wine 8 gives services ProgramData=C:\users\Public; the log is where the
# ProgramData known folder is.
echo "the service's environment: $(tr -d '\r' < "$tmp/service-env.txt"); its log: C:\ProgramData\awscredd\awscredd.log"

echo "== stop"
t0=$(now_ms)
w sc stop awscredd > "$tmp/stop.txt" || fail "sc stop: $(cat "$tmp/stop.txt")"
wait_state STOPPED 5 || fail "not STOPPED within 5 s: $(w sc query awscredd)"
stopped=$(($(now_ms) - t0))
w sc query awscredd > "$tmp/query.txt"
grep -Eq 'WIN32_EXIT_CODE +: +0 ' "$tmp/query.txt" || fail "exit code: $(cat "$tmp/query.txt")"
grep -q "awscredd stopped" <(logs) || fail "the log does not say it stopped"
grep -q 'eventlog:ReportEventW .*awscredd stopped' "$tmp/services.err" \
  || fail "the stop was not reported to the Event Log: $(cat "$tmp/services.err")"
echo "STOPPED ${stopped} ms after sc stop, exit code 0"

echo "== log rotation"
# The credential_process's stderr (15 lines a pass) and two more starts push it past 800
# bytes (AWSCREDD_LOG_MAX_BYTES) more than once.
for i in 1 2; do
  w sc start awscredd >/dev/null || fail "sc start $i failed"
  wait_state RUNNING 20 || fail "not RUNNING again"
  w sc stop awscredd >/dev/null || true
  wait_state STOPPED 5 || fail "not STOPPED again"
done
[ -f "$log.1" ] && [ -f "$log.2" ] || fail "the log was not rotated: $(ls -l "$(dirname "$log")")"
for f in "$log.1" "$log.2"; do
  [ "$(stat -c %s "$f")" -lt 4000 ] || fail "rotated log too big: $(stat -c %s "$f")"
done
[ "$(grep -c "awscredd started" <(logs))" = 3 ] || fail "lines lost in rotation: $(logs)"
echo "rotated: $(cd "$(dirname "$log")" && ls awscredd.log* | tr '\n' ' ')"

echo "== bad config"
# What net.exe does on Windows: start, then wait while START_PENDING; RUNNING must never show.
# (Wine's net.exe only checks StartServiceW's result, which returns once the process has
# connected, so under Wine it prints "started successfully" whatever follows.)
printf '[daemon]\nrefresh_before = "soon"\n' > "$tmp/config.toml"
w net start awscredd > "$tmp/net.txt" 2>&1 || true
deadline=$(($(now_ms) + 10000))
seen=""
while [ "$(now_ms)" -lt "$deadline" ]; do
  s=$(state || true)
  seen="$seen $s"
  [ "$s" = RUNNING ] && fail "RUNNING reported with a bad config"
  [ "$s" = STOPPED ] && break
  sleep 0.1
done
[ "$s" = STOPPED ] || fail "not STOPPED after a bad config:$seen"
w sc query awscredd > "$tmp/query.txt"
grep -Eq 'WIN32_EXIT_CODE +: +1066 ' "$tmp/query.txt" || fail "not a service-specific error: $(cat "$tmp/query.txt")"
grep -Eq 'SERVICE_EXIT_CODE +: +78 ' "$tmp/query.txt" || fail "no exit code 78: $(cat "$tmp/query.txt")"
grep -q "refresh_before" <(logs) || fail "the config error is not in the log"
grep -q 'err:eventlog:ReportEventW .*refresh_before' "$tmp/services.err" \
  || fail "the config error was not reported to the Event Log: $(cat "$tmp/services.err")"
echo "bad config: states seen after net start:$seen; WIN32_EXIT_CODE 1066, SERVICE_EXIT_CODE 78; reported to ReportEventW as an error"
cp "$tmp/good.toml" "$tmp/config.toml"

echo "== uninstall"
w "$exe" service uninstall > "$tmp/uninstall.txt" || fail "uninstall: $(cat "$tmp/uninstall.txt")"
w sc query awscredd | grep -q STATE && fail "the service is still there"
w reg query 'HKLM\System\CurrentControlSet\Services\EventLog\Application\awscredd' >/dev/null \
  && fail "the event source is still registered"

echo "== accounts"
printf '[profile.svc]\ncredential_process = "%s"\n' "$(winpath "$tmp/creds.cmd" | sed 's/\\/\\\\/g')" > "$tmp/default-output.toml"
timeout 120 wine "$exe" service install --config "$(winpath "$tmp/default-output.toml")" > "$tmp/install2.txt" 2>&1 \
  || fail "install: $(cat "$tmp/install2.txt")"
grep -q 'warning: the service runs as LocalSystem, so the output .* is written to .*systemprofile' "$tmp/install2.txt" \
  || fail "no LocalSystem warning: $(cat "$tmp/install2.txt")"
w "$exe" service uninstall >/dev/null || fail "uninstall failed"
printf 'correct horse\r\n' > "$tmp/password.txt"
w "$exe" service install --config "$config" --account '.\svc' --password-file "$(winpath "$tmp/password.txt")" \
  > "$tmp/install3.txt" || fail "install --account: $(cat "$tmp/install3.txt")"
grep -q '(as .\\svc)' "$tmp/install3.txt" || fail "install --account: $(cat "$tmp/install3.txt")"
w reg query 'HKLM\System\CurrentControlSet\Services\awscredd' /v ObjectName | grep -q '\.\\svc' \
  || fail "ObjectName: $(w reg query 'HKLM\System\CurrentControlSet\Services\awscredd')"
w "$exe" service uninstall >/dev/null || fail "uninstall failed"
printf 'correct horse\r\n' | timeout 120 wine "$exe" service install --config "$config" --account '.\svc2' \
  > "$tmp/install4.txt" 2>&1 || fail "install --account with the password on stdin: $(cat "$tmp/install4.txt")"
grep -q 'password for .\\svc2' "$tmp/install4.txt" || fail "no prompt: $(cat "$tmp/install4.txt")"
grep -q 'correct horse' "$tmp/install4.txt" && fail "the password was echoed"
w reg query 'HKLM\System\CurrentControlSet\Services\awscredd' /v ObjectName | grep -q '\.\\svc2' \
  || fail "ObjectName: $(w reg query 'HKLM\System\CurrentControlSet\Services\awscredd')"
w "$exe" service uninstall >/dev/null || fail "uninstall failed"
w "$exe" service install --config "$config" --password-file "$(winpath "$tmp/password.txt")" >/dev/null 2>&1 \
  && fail "--password-file without --account was accepted"
echo "LocalSystem warning, --account .\\svc (password file), .\\svc2 (password on stdin): ok"

echo "== sign-in needed"
# The fake IAM Identity Center (a Linux program on 127.0.0.1, reachable from Wine) with no token
# in the service's cache: the service starts the device authorization by itself, and the URL and
# code go to the log, the Event Log and login_command (a .cmd).
# It serves until its standard input (a FIFO held open on fd 7) closes.
mkfifo "$tmp/fake.in"
"$fake" "$tmp/fakehome" corp https://wine.awsapps.com/start us-east-1 \
  < "$tmp/fake.in" > "$tmp/fake.out" 2> "$tmp/fake.err" &
fake_pid=$!
exec 7> "$tmp/fake.in"
deadline=$(($(now_ms) + 30000))
until grep -q '^url=' "$tmp/fake.out"; do
  [ "$(now_ms)" -lt "$deadline" ] || fail "the fake did not start: $(cat "$tmp/fake.err")"
  sleep 0.05
done
fake_url=$(sed -n 's/^url=\([^ ]*\).*/\1/p' "$tmp/fake.out")
printf '@echo off\r\necho %%AWSCREDD_SSO_SESSION%% %%AWSCREDD_USER_CODE%% %%AWSCREDD_VERIFICATION_URI%%> "%%~dp0login.txt"\r\n' > "$tmp/login.cmd"
cat > "$tmp/sso.toml" <<TOML
[daemon]
state_dir = '$(winpath "$tmp/state-sso")'
login_command = ['$(winpath "$tmp/login.cmd")']
[[output]]
path = '$(winpath "$tmp/out/sso-credentials")'
[sso_session.corp]
sso_start_url = "https://wine.awsapps.com/start"
sso_region = "us-east-1"
endpoint_url = "$fake_url"
[profile.dev]
sso_session = "corp"
sso_account_id = "111122223333"
sso_role_name = "Developer"
endpoint_url = "$fake_url"
TOML
w "$exe" service install --config "$(winpath "$tmp/sso.toml")" >/dev/null || fail "install (sso) failed"
w sc start awscredd >/dev/null || fail "sc start (sso) failed"
deadline=$(($(now_ms) + 30000))
until grep -q 'corp .*device' "$tmp/login.txt" 2>/dev/null && grep -q "SSO sign-in needed" <(logs); do
  [ "$(now_ms)" -lt "$deadline" ] || fail "no sign-in within 30 s: $(cat "$tmp/login.txt" 2>/dev/null)"
  sleep 0.2
done
read -r session code uri < <(tr -d '\r' < "$tmp/login.txt") || true
[ "$session" = corp ] && [ -n "$code" ] && [ "$uri" = "$fake_url/device" ] || fail "login_command got: $(cat "$tmp/login.txt")"
grep -q "SSO sign-in needed: open $fake_url/device and enter the code $code" <(logs) || fail "no URL and code in the log"
wait_state RUNNING 5 || fail "not RUNNING while waiting for a sign-in"
grep -q "warn:eventlog:ReportEventW .*SSO sign-in needed: open $fake_url/device and enter the code $code" "$tmp/services.err" \
  || fail "the sign-in was not reported to the Event Log: $(cat "$tmp/services.err")"
t0=$(now_ms)
w sc stop awscredd >/dev/null || true
wait_state STOPPED 5 || fail "not STOPPED within 5 s while waiting for a sign-in"
echo "sign-in needed: code $code in the log, the Event Log and login_command; stopped $(($(now_ms) - t0)) ms after sc stop"
w "$exe" service uninstall >/dev/null || fail "uninstall (sso) failed"
exec 7>&-
wait "$fake_pid" || fail "the fake failed: $(cat "$tmp/fake.err")"
fake_pid=""

echo "== a reader holds the file"
cred="$tmp/out/credentials"
expected=$(sed 's/ASIASERVICE/ASIAREADER/' "$cred")
printf 'ASIAREADER\r\n' > "$tmp/key.txt"
rm -f "$tmp/held"
timeout 60 wine "$hold" "$(winpath "$cred")" 3000 "$(winpath "$tmp/held")" > "$tmp/hold.txt" 2>&1 &
holder=$!
deadline=$(($(now_ms) + 30000))
until [ -f "$tmp/held" ]; do
  [ "$(now_ms)" -lt "$deadline" ] || fail "the reader did not open the file: $(cat "$tmp/hold.txt")"
  sleep 0.05
done
t0=$(now_ms)
timeout 60 wine "$exe" --config "$config" once --force > "$tmp/once.txt" 2>&1 || fail "once failed: $(cat "$tmp/once.txt")"
took=$(($(now_ms) - t0))
wait "$holder" || fail "the reader failed: $(cat "$tmp/hold.txt")"
tr -d '\r' < "$tmp/once.txt" > "$tmp/once.log"
grep -q "another program holds the file open" "$tmp/once.log" || fail "the write did not wait: $(cat "$tmp/once.log")"
waited=$(sed -n 's/.*waited_ms=\([0-9]*\).*/\1/p' "$tmp/once.log" | head -1)
[ -n "$waited" ] || fail "no waited_ms: $(cat "$tmp/once.log")"
[ "$(cat "$cred")" = "$expected" ] || fail "the file is not complete: $(cat "$cred")"
ls -a "$tmp/out" | grep -q awscredd- && fail "temporary files left: $(ls -a "$tmp/out")"
echo "once --force waited ${waited} ms for the reader (once took ${took} ms); the file is complete"

echo "== a reader holds the file too long"
# Past 10 s the write gives up: `once` fails (exit 1), the file keeps its old content whole, and
# no temporary file is left; the next pass writes it.
before=$(cat "$cred")
printf 'ASIALATER\r\n' > "$tmp/key.txt"
rm -f "$tmp/held"
timeout 60 wine "$hold" "$(winpath "$cred")" 13000 "$(winpath "$tmp/held")" > "$tmp/hold.txt" 2>&1 &
holder=$!
deadline=$(($(now_ms) + 30000))
until [ -f "$tmp/held" ]; do
  [ "$(now_ms)" -lt "$deadline" ] || fail "the reader did not open the file: $(cat "$tmp/hold.txt")"
  sleep 0.05
done
t0=$(now_ms)
rc=0
timeout 60 wine "$exe" --config "$config" once --force > "$tmp/once2.txt" 2>&1 || rc=$?
gave_up=$(($(now_ms) - t0))
[ "$rc" = 1 ] || fail "once exited $rc, not 1: $(cat "$tmp/once2.txt")"
grep -q "could not replace the file for 10 s" "$tmp/once2.txt" || fail "no reason given: $(cat "$tmp/once2.txt")"
[ "$(cat "$cred")" = "$before" ] || fail "the file changed: $(cat "$cred")"
ls -a "$tmp/out" | grep -q awscredd- && fail "temporary files left: $(ls -a "$tmp/out")"
wait "$holder" || fail "the reader failed: $(cat "$tmp/hold.txt")"
timeout 60 wine "$exe" --config "$config" once --force > "$tmp/once3.txt" 2>&1 || fail "the next pass failed: $(cat "$tmp/once3.txt")"
grep -q ASIALATER "$cred" || fail "the next pass did not write: $(cat "$cred")"
echo "held for 13 s: once gave up after ${gave_up} ms (exit 1, old file intact), the next pass wrote it"

echo "service test: ok (sc start to first credentials ${first} ms; stop ${stopped} ms; reader wait ${waited} ms)"
