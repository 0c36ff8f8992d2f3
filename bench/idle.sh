#!/usr/bin/env bash
# The daemon at rest: `awscredd run` with 50 credential_process profiles (credentials valid an
# hour), the binary the packages ship (packaging/static.sh, or AWSCREDD_BIN). After the first
# pass it reads /proc/PID/status (VmRSS, RssAnon, RssFile, Threads) and counts the CPU ticks
# (utime + stime of /proc/PID/stat) over an idle window (IDLE_SECONDS, default 60).
#
#   bash bench/idle.sh
#
# Everything in a temporary folder; the daemon is stopped by its PID.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${AWSCREDD_BIN:-$(bash "$root/packaging/static.sh" | tail -n 1)}
case $bin in /*) ;; *) bin=$root/$bin ;; esac
idle=${IDLE_SECONDS:-60}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/awscredd-idle.XXXXXX")
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
cat > "$tmp/src.sh" <<'SH'
#!/bin/sh
printf '{"Version":1,"AccessKeyId":"ASIAIDLE","SecretAccessKey":"s","Expiration":"%s"}' "$(date -u -d '3600 seconds' +%Y-%m-%dT%H:%M:%SZ)"
SH
chmod +x "$tmp/src.sh"
{
    printf '[daemon]\nstate_dir = "state"\n[[output]]\npath = "credentials"\n'
    for i in $(seq 1 50); do printf '[profile.p%02d]\ncredential_process = "%s/src.sh"\n' "$i" "$tmp"; done
} > "$tmp/config.toml"
HOME=$tmp "$bin" --config "$tmp/config.toml" --log-level warn run 2> "$tmp/run.log" &
pid=$!
for _ in $(seq 1 100); do
    [ "$(grep -c '^\[p' "$tmp/credentials" 2>/dev/null || echo 0)" = 50 ] && break
    sleep 0.1
done
sleep 12 # the blocking pool's threads end 10 s after their last job
status() { grep -E '^(VmRSS|RssAnon|RssFile|Threads):' "/proc/$pid/status" | tr -s ' \t' ' ' | paste -sd' '; }
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
echo "binary: $bin"
echo "after the first pass: $(status)"
t0=$(ticks)
sleep "$idle"
t1=$(ticks)
echo "after ${idle} s idle:  $(status)"
echo "CPU ticks in ${idle} s idle: $((t1 - t0))"
