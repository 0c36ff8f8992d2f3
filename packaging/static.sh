#!/usr/bin/env bash
# Builds the one static Linux binary that the RPM and the container image ship:
# x86_64-unknown-linux-gnu with crt-static (a static-pie executable that needs no shared
# library, so it runs on RHEL 8+ and alone in a `scratch` image), with the size-tuned `dist`
# profile of Cargo.toml. The explicit --target keeps build scripts and proc-macros dynamic.
#
#   bash packaging/static.sh            # prints the path of the binary on its last line
#
# Its own target dir (AWSCREDD_STATIC_TARGET_DIR, default target/static), so it never
# invalidates the debug build the tests use. About 9 minutes on 2 cores from scratch.
set -euo pipefail
cd "$(dirname "$0")/.."
triple=x86_64-unknown-linux-gnu
dir=${AWSCREDD_STATIC_TARGET_DIR:-target/static}
RUSTFLAGS="-C target-feature=+crt-static" cargo build --quiet --locked --profile dist \
  --target "$triple" --target-dir "$dir" --bin awscredd
bin="$dir/$triple/dist/awscredd"
# Refuse a binary that would need the build host's glibc at run time.
if command -v file >/dev/null; then
  desc=$(file -b "$bin")
  case "$desc" in
    *"dynamically linked"*) echo "static.sh: $bin is dynamically linked: $desc" >&2; exit 1 ;;
  esac
fi
echo "$bin"
