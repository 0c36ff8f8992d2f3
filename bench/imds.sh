#!/usr/bin/env bash
# [imds] benchmark: latency of a credentials GET (keep-alive), of a whole refresh the way
# botocore does one, and the daemon's RSS over 10,000 token PUTs (bench/imds_bench.py). About
# 30 s after the build. AWSCREDD_BIN=PATH times that binary instead of building the release one.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${AWSCREDD_BIN:-}" ]; then
  cargo build --release --quiet --bin awscredd
  AWSCREDD_BIN=target/release/awscredd
fi
python3 bench/imds_bench.py "$AWSCREDD_BIN"
