#!/usr/bin/env bash
# Runs the fuzz targets built by `cargo +nightly fuzz build` (run that first, under the build
# lock on a shared machine: this script runs no cargo). Usage:
#   bash fuzz/run.sh [SECONDS [TARGET...]]
# Each target (default: all) runs SECONDS (default 20) at nice 19 from its seeds (fuzz/seeds,
# kept in the repo) and its own growing corpus (fuzz/corpus, not kept). Prints the executions of
# each and the total; exits 1 if any target crashed, leaked, hung or ran out of memory, naming
# the input it saved under fuzz/artifacts/TARGET/.
set -uo pipefail
cd "$(dirname "$0")"
seconds=${1:-20}
shift || true
# Where the built targets are: FUZZ_BIN_DIR, else cargo fuzz's release build.
bin=${FUZZ_BIN_DIR:-target/x86_64-unknown-linux-gnu/release}
if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | grep -v '^awscredd-fuzz$')
fi
total=0
failed=()
for t in "${targets[@]}"; do
  [ -x "$bin/$t" ] || { echo "fuzz: $bin/$t is not built (cargo +nightly fuzz build)" >&2; exit 2; }
  mkdir -p "corpus/$t" "artifacts/$t"
  log=$(mktemp)
  # Hangs are findings too: no input may take 30 s.
  nice -n 19 "$bin/$t" "corpus/$t" "seeds/$t" -max_total_time="$seconds" -timeout=30 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="artifacts/$t/" >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  execs=${execs:-0}
  total=$((total + execs))
  if [ "$rc" -ne 0 ]; then
    failed+=("$t")
    echo "fuzz: $t FAILED after $execs executions (exit $rc):"
    grep -E 'ERROR|panicked|SUMMARY|Test unit written|^thread' "$log" | head -n 20
  else
    printf 'fuzz: %-20s %10s executions in %s s\n' "$t" "$execs" "$seconds"
  fi
  rm -f "$log"
done
echo "fuzz: $total executions in all (${#targets[@]} targets)"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: crashed: ${failed[*]}" >&2
  exit 1
fi
