#!/usr/bin/env bash
# Memory of `awscredd run` across many on_change runs: one credential_process profile whose
# keys change at every run, an on_change hook that counts its runs; SIGUSR1 forces a pass, and
# the next one is sent once the hook of the last has run. VmRSS (/proc/PID/status) after
# WARMUP runs and after RUNS more, and the growth per run. With NO_HOOK=1 the same passes run
# without the hook (the source's runs are counted instead): what the passes alone cost.
#
#   AWSCREDD_BIN=target/debug/awscredd RUNS=2000 bash bench/hooks_rss.sh
#
# Everything in a temporary folder; the daemon is stopped by its PID.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${AWSCREDD_BIN:-$root/target/debug/awscredd}
case $bin in /*) ;; *) bin=$root/$bin ;; esac
runs=${RUNS:-2000}
warmup=${WARMUP:-100}
no_hook=${NO_HOOK:-0}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/awscredd-hooks-rss.XXXXXX")
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
cat > "$tmp/src.sh" <<'SH'
#!/bin/sh
n=$(cat "$0.n" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$0.n"
printf '{"Version":1,"AccessKeyId":"ASIARSS%s","SecretAccessKey":"s","Expiration":"%s"}' "$n" "$(date -u -d '3600 seconds' +%Y-%m-%dT%H:%M:%SZ)"
SH
printf '#!/bin/sh\necho x >> "%s/hook.count"\n' "$tmp" > "$tmp/hook.sh"
chmod +x "$tmp/src.sh" "$tmp/hook.sh"
{
    printf '[daemon]\nstate_dir = "state"\n[[output]]\npath = "credentials"\n'
    [ "$no_hook" = 1 ] || printf 'on_change = ["%s/hook.sh"]\n' "$tmp"
    printf '[profile.app]\ncredential_process = "%s/src.sh"\n' "$tmp"
} > "$tmp/config.toml"
HOME=$tmp RUST_LOG=warn "$bin" --config "$tmp/config.toml" run 2> "$tmp/daemon.log" &
pid=$!
done_runs() {
    if [ "$no_hook" = 1 ]; then
        local n
        n=$(cat "$tmp/src.sh.n" 2>/dev/null || true)
        echo "${n:-0}"
    elif [ -f "$tmp/hook.count" ]; then
        wc -l < "$tmp/hook.count"
    else
        echo 0
    fi
}
wait_runs() {
    local want=$1 tries=0
    while [ "$(done_runs)" -lt "$want" ]; do
        tries=$((tries + 1))
        if [ $tries -gt 2000 ]; then echo "not $want runs:" >&2; cat "$tmp/daemon.log" >&2; exit 1; fi
        # A request that came while the last pass was still running may have joined it.
        if [ $((tries % 200)) = 0 ]; then kill -USR1 "$pid"; fi
        sleep 0.005
    done
    # The pass has ended too (its state written), so the next SIGUSR1 starts a new one.
    sleep 0.005
}
rss() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }
wait_runs 1
for i in $(seq 2 $((warmup + 1))); do kill -USR1 "$pid"; wait_runs "$i"; done
before=$(rss)
start=$(date +%s)
for i in $(seq $((warmup + 2)) $((warmup + runs + 1))); do kill -USR1 "$pid"; wait_runs "$i"; done
after=$(rss)
echo "binary: $bin, on_change: $([ "$no_hook" = 1 ] && echo none || echo counting hook)"
echo "runs: $(done_runs) in total, $runs measured in $(( $(date +%s) - start )) s"
echo "VmRSS after $warmup runs: $before KiB; after $runs more: $after KiB"
echo "growth: $((after - before)) KiB, $(( (after - before) * 1024 / runs )) bytes per run"
