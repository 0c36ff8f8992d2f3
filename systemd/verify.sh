#!/usr/bin/env bash
# Checks the unit with systemd-analyze verify, pointing ExecStart at a built binary.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v systemd-analyze >/dev/null || { echo "systemd-analyze not found (apt-get install systemd)"; exit 1; }
bin=${1:-target/debug/awscredd}
[ -x "$bin" ] || cargo build --quiet --bin awscredd
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed "s#/usr/bin/awscredd#$(realpath "$bin")#" systemd/awscredd.service > "$tmp/awscredd.service"
out=$(systemd-analyze verify "$tmp/awscredd.service" 2>&1 || true)
# Ignore what comes from the machine rather than the unit (no running systemd in containers).
problems=$(printf '%s\n' "$out" | grep -v -e '^$' -e 'Failed to connect' -e 'System has not been booted' -e 'network-online.target' || true)
if [ -n "$problems" ]; then
  printf '%s\n' "$problems"
  exit 1
fi
echo "systemd unit: ok"
