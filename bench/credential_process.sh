#!/usr/bin/env bash
# `awscredd credential-process --profile app`, the whole process, as an SDK runs it:
#
#   fresh   the managed file holds credentials valid for an hour: read and printed (the path an
#           SDK takes at start-up and at every refresh, often from many processes at once);
#   refresh the file holds none: the profile's source runs under its lock, the file is written,
#           then printed (the source is a tiny `sh` script, so this is mostly awscredd's cost
#           plus one shell).
#
# Prints the median and fastest wall time of each (bash's $EPOCHREALTIME around each run, so
# the figure includes the fork and exec of the process), the CPU time per run (user + sys of
# the children, from `times`), and whether the target (fresh <= 5 ms median) holds. Each
# fresh run's output is checked, and the source is checked to have run only for the refresh
# runs.
#
# Environment:
#   CP_BENCH_RUNS=50        timed runs of the fresh path (after 3 untimed warm-up runs)
#   CP_BENCH_REFRESH_RUNS=20 timed runs of the refresh path
#   AWSCREDD_BIN=PATH       the binary to time (default: build target/release/awscredd)
#   AWSCREDD_BASE_BIN=PATH  another binary (an older build) to time the same way, side by side
#
# Everything goes into a temporary folder that is removed at the end; no ~/.aws is read.

set -euo pipefail

RUNS=${CP_BENCH_RUNS:-50}
REFRESH_RUNS=${CP_BENCH_REFRESH_RUNS:-20}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

if [[ -z ${EPOCHREALTIME:-} ]]; then
    echo "bench/credential_process.sh: needs bash 5 (\$EPOCHREALTIME)" >&2
    exit 1
fi
if [[ -n ${AWSCREDD_BIN:-} ]]; then
    bin=$AWSCREDD_BIN
else
    (cd "$root" && cargo build --release --quiet --bin awscredd)
    bin=$root/target/release/awscredd
fi

unset AWS_PROFILE AWS_CONFIG_FILE AWS_SHARED_CREDENTIALS_FILE AWSCREDD_CONFIG \
    AWSCREDD_RUNNING_FOR RUST_LOG

tmp=$(mktemp -d)
trap 'rm -rf -- "$tmp"' EXIT
cat >"$tmp/src.sh" <<'EOF'
#!/bin/sh
echo x >> runs
exp=$(date -u -d '3600 seconds' +%Y-%m-%dT%H:%M:%SZ)
printf '{"Version":1,"AccessKeyId":"ASIABENCHEXAMPLE","SecretAccessKey":"secret","SessionToken":"token","Expiration":"%s"}' "$exp"
EOF
cat >"$tmp/config.toml" <<'EOF'
[daemon]
state_dir = "state"
[[output]]
path = "credentials"
[profile.app]
credential_process = "sh src.sh"
EOF
cfg=$tmp/config.toml

runs() { if [[ -f $tmp/runs ]]; then wc -l <"$tmp/runs" | tr -d ' '; else echo 0; fi; }

# Microseconds since the epoch, from $EPOCHREALTIME (no fork).
now_us() { local t=${EPOCHREALTIME/[.,]/}; echo "$t"; }

# Children's user + sys CPU so far, in milliseconds, into $CPU_MS. Not in a pipeline or a
# command substitution: a subshell's `times` does not count this shell's children.
child_cpu_ms() {
    times >"$tmp/times"
    CPU_MS=$(tail -n 1 "$tmp/times" | tr ',' '.' | awk '{
        ms = 0
        for (i = 1; i <= NF; i++) { split($i, p, "m"); sub("s", "", p[2]); ms += (p[1] * 60 + p[2]) * 1000 }
        printf "%.3f", ms
    }')
}

median_ms() { sort -n | awk '{a[NR]=$1} END {m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2; printf "%.2f", m / 1000}'; }
min_ms() { sort -n | head -n 1 | awk '{printf "%.2f", $1 / 1000}'; }

# time_fresh BIN LABEL: RUNS timed runs on a fresh file; prints the figures.
time_fresh() {
    local b=$1 label=$2 before after cpu0 cpu1 t0 t1 out samples=()
    rm -f "$tmp/credentials" "$tmp/runs"
    "$b" --config "$cfg" once --profile app >/dev/null 2>&1
    before=$(runs)
    for _ in 1 2 3; do "$b" --config "$cfg" credential-process --profile app >/dev/null; done
    child_cpu_ms
    cpu0=$CPU_MS
    for _ in $(seq "$RUNS"); do
        t0=$(now_us)
        out=$("$b" --config "$cfg" credential-process --profile app)
        t1=$(now_us)
        samples+=($((t1 - t0)))
        [[ $out == *'"AccessKeyId":"ASIABENCHEXAMPLE"'* ]] || {
            echo "unexpected output from $label: $out" >&2
            exit 1
        }
    done
    child_cpu_ms
    cpu1=$CPU_MS
    after=$(runs)
    if [[ $after != "$before" ]]; then
        echo "$label: the source ran $((after - before)) time(s) on the fresh path" >&2
        exit 1
    fi
    printf '%-34s median %6s ms  fastest %6s ms  cpu %5s ms/run  (%d runs)\n' "$label, fresh" \
        "$(printf '%s\n' "${samples[@]}" | median_ms)" \
        "$(printf '%s\n' "${samples[@]}" | min_ms)" \
        "$(awk -v a="$cpu0" -v b="$cpu1" -v n="$RUNS" 'BEGIN {printf "%.2f", (b - a) / n}')" \
        "$RUNS"
    FRESH_MEDIAN=$(printf '%s\n' "${samples[@]}" | median_ms)
}

# time_refresh BIN LABEL: REFRESH_RUNS timed runs, each on a file without the profile.
time_refresh() {
    local b=$1 label=$2 before after t0 t1 out samples=()
    before=$(runs)
    for _ in $(seq "$REFRESH_RUNS"); do
        rm -f "$tmp/credentials"
        t0=$(now_us)
        out=$("$b" --config "$cfg" credential-process --profile app)
        t1=$(now_us)
        samples+=($((t1 - t0)))
        [[ $out == *'"AccessKeyId":"ASIABENCHEXAMPLE"'* ]] || {
            echo "unexpected output from $label: $out" >&2
            exit 1
        }
    done
    after=$(runs)
    if [[ $((after - before)) != "$REFRESH_RUNS" ]]; then
        echo "$label: the source ran $((after - before)) time(s) for $REFRESH_RUNS refreshes" >&2
        exit 1
    fi
    printf '%-34s median %6s ms  fastest %6s ms  (%d runs, source included)\n' \
        "$label, refresh" \
        "$(printf '%s\n' "${samples[@]}" | median_ms)" \
        "$(printf '%s\n' "${samples[@]}" | min_ms)" "$REFRESH_RUNS"
}

cd "$tmp"
echo "command: bash bench/credential_process.sh"
echo "binary: $bin"
time_fresh "$bin" "awscredd"
ours=$FRESH_MEDIAN
time_refresh "$bin" "awscredd"
if [[ -n ${AWSCREDD_BASE_BIN:-} ]]; then
    echo "base binary: $AWSCREDD_BASE_BIN"
    time_fresh "$AWSCREDD_BASE_BIN" "base"
    time_refresh "$AWSCREDD_BASE_BIN" "base"
fi
if awk -v m="$ours" 'BEGIN {exit !(m <= 5)}'; then
    echo "target fresh median <= 5 ms: yes"
else
    echo "target fresh median <= 5 ms: no"
fi
