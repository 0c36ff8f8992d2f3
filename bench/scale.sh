#!/usr/bin/env bash
# awscredd at scale (issue 28): loading commands at 100 / 1k / 10k / 100k profiles beside
# botocore, one SSO pass and memory at rest at 50 / 1k / 10k SSO profiles, and the steady state
# of `run` (refreshes, whole-file rewrites, bytes written, CPU, memory). See bench/README.md.
#
#   bash bench/scale.sh            (builds the release binary and the fake first)
#
# Environment (see bench/scale.py): AWSCREDD_BIN (skip the build, time this binary),
# SCALE_SIZES, SCALE_SSO_SIZES, SCALE_STEADY_SIZES, SCALE_STEADY_SECS (180), SCALE_TIMEOUT
# (120 s per command), SCALE_PARTS ("load sso steady"). botocore is taken from target/venv.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
if [[ -z ${AWSCREDD_BIN:-} || -z ${FAKE_AWS_BIN:-} ]]; then
    cargo build --quiet --release --bin awscredd --example fake_aws
fi
export AWSCREDD_BIN=${AWSCREDD_BIN:-$root/target/release/awscredd}
export FAKE_AWS_BIN=${FAKE_AWS_BIN:-$root/target/release/examples/fake_aws}
python=${SCALE_PYTHON:-$root/target/venv/bin/python3}
[[ -x $python ]] || python=python3
export SCALE_PYTHON=$python
exec python3 "$root/bench/scale.py"
