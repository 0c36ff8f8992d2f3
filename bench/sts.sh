#!/usr/bin/env bash
# STS benchmark: awscredd vs a boto3 refresh script, against moto on loopback (bench/sts_bench.py).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -c 'import boto3, moto' 2>/dev/null || { echo "needs: pip install boto3 'moto[server]'"; exit 1; }
cargo build --release --quiet --bin awscredd
python3 bench/sts_bench.py target/release/awscredd "${1:-5}"
