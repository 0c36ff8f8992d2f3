#!/usr/bin/env bash
# Builds target/windows/awscredd.exe (x86_64-win7-windows-gnu: runs on Windows 7 and later, and
# under Wine 8) with Debian's rustc-web, the one toolchain here that can build for Windows.
# Usage: build.sh [--debug] [--example NAME]...   (default: the release profile)
# Examples named with --example are built in the same cargo run (std is built once) and copied
# next to it as target/windows/NAME.exe. Installs the toolchain when run as root.
set -euo pipefail
cd "$(dirname "$0")/../.."
profile=release
examples=()
while [ $# -gt 0 ]; do
  case "$1" in
    --debug) profile=debug ;;
    --example) examples+=(--example "$2"); shift ;;
    *) echo "usage: $0 [--debug] [--example NAME]..." >&2; exit 2 ;;
  esac
  shift
done
need=()
command -v x86_64-w64-mingw32-gcc >/dev/null || need+=(gcc-mingw-w64-x86-64)
[ -x /usr/bin/rustc ] && [ -d /usr/lib/rustlib/src ] || need+=(rustc-web cargo-web rust-web-src)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "needs: apt-get install ${need[*]}" >&2
    exit 1
  fi
fi
target=x86_64-win7-windows-gnu
flags=()
[ "$profile" = release ] && flags+=(--release)
CC_x86_64_win7_windows_gnu=x86_64-w64-mingw32-gcc \
AR_x86_64_win7_windows_gnu=x86_64-w64-mingw32-ar \
CARGO_TARGET_X86_64_WIN7_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc \
RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 /usr/bin/cargo build --quiet "${flags[@]}" \
  -Zbuild-std=std,panic_abort --target "$target" --target-dir target/win7 \
  --bin awscredd "${examples[@]}"
out=target/win7/$target/$profile
mkdir -p target/windows
cp "$out/awscredd.exe" target/windows/awscredd.exe
for ((i = 1; i < ${#examples[@]}; i += 2)); do
  cp "$out/examples/${examples[i]}.exe" "target/windows/${examples[i]}.exe"
done
echo "built target/windows/awscredd.exe ($profile)"
