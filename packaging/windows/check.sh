#!/usr/bin/env bash
# Type-checks awscredd for Windows (x86_64-pc-windows-gnu) with Debian's rustc-web, the one
# toolchain here that can build for Windows. Installs what it needs when run as root.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! [ -x /usr/bin/rustc ] || ! [ -d /usr/lib/rustlib/src ] || ! command -v x86_64-w64-mingw32-gcc >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rustc-web cargo-web rust-web-src gcc-mingw-w64-x86-64 >/dev/null
  else
    echo "needs: apt-get install rustc-web cargo-web rust-web-src gcc-mingw-w64-x86-64" >&2
    exit 1
  fi
fi
/usr/bin/rustc --version
RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 /usr/bin/cargo check --quiet \
  -Zbuild-std=std,panic_abort --target x86_64-pc-windows-gnu \
  --target-dir target/windows --lib --bins
echo "windows check: ok"
