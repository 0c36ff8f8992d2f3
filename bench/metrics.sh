#!/usr/bin/env bash
# /metrics benchmark: latency with 500 profiles (median of 1,000 scrapes) and the daemon's RSS
# before and after 10,000 scrapes (bench/metrics_bench.py). About a minute after the build.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin awscredd
python3 bench/metrics_bench.py target/release/awscredd
