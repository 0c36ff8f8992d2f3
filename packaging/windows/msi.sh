#!/usr/bin/env bash
# Builds target/windows/awscredd-VERSION-x86_64.msi with wixl (msitools) from awscredd.wxs:
# awscredd.exe under C:\Program Files\awscredd, the automatic service `awscredd` (LocalSystem,
# `--config "C:\ProgramData\awscredd\config.toml" service run`, not started), its Event Log
# source, and config.toml here as the template in %ProgramData%\awscredd (only when none is
# there; never overwritten or removed). Prints the MSI's path last.
#
# Environment:
#   AWSCREDD_EXE          the .exe to package (default target/windows/awscredd.exe: run
#                         `build.sh` first, the release build; CI packages its --debug one)
#   AWSCREDD_MSI_VERSION  the version (default: Cargo.toml's; MAJOR.MINOR.PATCH, numbers only)
#   AWSCREDD_SIGN_CERT    with AWSCREDD_SIGN_KEY: sign the .exe and the MSI with osslsigncode
#   AWSCREDD_SIGN_KEY       (PEM or DER certificate chain; PEM or DER private key), then verify
#   AWSCREDD_SIGN_PASS_FILE   the key's password, if it has one (first line of the file)
#   AWSCREDD_SIGN_CA      the CA file to verify against (default: the system's bundle)
#   AWSCREDD_SIGN_TIMESTAMP_URL  an RFC 3161 timestamp server (default: none)
# Installs wixl, msitools and osslsigncode when run as root.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
fail() { echo "msi.sh: $*" >&2; exit 1; }

need=()
command -v wixl >/dev/null || need+=(wixl)
command -v msibuild >/dev/null || need+=(msitools)
if [ -n "${AWSCREDD_SIGN_CERT:-}${AWSCREDD_SIGN_KEY:-}" ] && ! command -v osslsigncode >/dev/null; then
  need+=(osslsigncode)
fi
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    fail "needs: apt-get install ${need[*]}"
  fi
fi

exe=${AWSCREDD_EXE:-target/windows/awscredd.exe}
[ -f "$exe" ] || fail "no $exe: build it with packaging/windows/build.sh (or set AWSCREDD_EXE)"
version=${AWSCREDD_MSI_VERSION:-$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)}
# Windows Installer compares MAJOR.MINOR.BUILD, each a number (255.255.65535 at most).
if ! [[ "$version" =~ ^([0-9]+)\.([0-9]+)\.([0-9]+)$ ]] \
  || [ "${BASH_REMATCH[1]}" -gt 255 ] || [ "${BASH_REMATCH[2]}" -gt 255 ] || [ "${BASH_REMATCH[3]}" -gt 65535 ]; then
  fail "version \`$version\` (Cargo.toml or AWSCREDD_MSI_VERSION) is not MAJOR.MINOR.PATCH within 255.255.65535: an MSI cannot carry it"
fi
# One ProductCode per version, derived from the UpgradeCode, so the same version always has the
# same code (the winget manifest names it) and a new version is a major upgrade.
upgrade_code=$(sed -n 's/.*UpgradeCode="\([0-9A-F-]*\)".*/\1/p' packaging/windows/awscredd.wxs)
[ -n "$upgrade_code" ] || fail "no UpgradeCode in packaging/windows/awscredd.wxs"
product_code=$(python3 -c 'import sys, uuid; print(str(uuid.uuid5(uuid.UUID(sys.argv[1]), "awscredd " + sys.argv[2] + " x86_64")).upper())' "$upgrade_code" "$version")

stage=target/windows/msi-stage
rm -rf "$stage"
mkdir -p "$stage"
# Windows text files: CRLF, so that any editor shows them right.
crlf() { sed 's/\r$//; s/$/\r/' "$1" > "$2"; }
crlf packaging/windows/config.toml "$stage/config.toml"
crlf config/example.toml "$stage/example.toml"
crlf LICENSE "$stage/LICENSE.txt"
cp "$exe" "$stage/awscredd.exe"

signing=""
if [ -n "${AWSCREDD_SIGN_CERT:-}" ] || [ -n "${AWSCREDD_SIGN_KEY:-}" ]; then
  [ -f "${AWSCREDD_SIGN_CERT:-}" ] || fail "AWSCREDD_SIGN_CERT: no certificate file \`${AWSCREDD_SIGN_CERT:-}\`"
  [ -f "${AWSCREDD_SIGN_KEY:-}" ] || fail "AWSCREDD_SIGN_KEY: no key file \`${AWSCREDD_SIGN_KEY:-}\`"
  signing=yes
fi
# osslsigncode signs IN into OUT (SHA-256, the product's name), then verifies OUT.
sign() { # IN OUT
  local args=(sign -certs "$AWSCREDD_SIGN_CERT" -key "$AWSCREDD_SIGN_KEY" -h sha256 -n awscredd)
  [ -n "${AWSCREDD_SIGN_PASS_FILE:-}" ] && args+=(-readpass "$AWSCREDD_SIGN_PASS_FILE")
  [ -n "${AWSCREDD_SIGN_TIMESTAMP_URL:-}" ] && args+=(-ts "$AWSCREDD_SIGN_TIMESTAMP_URL")
  rm -f "$2"
  osslsigncode "${args[@]}" -in "$1" -out "$2" > "$2.log" 2>&1 || fail "signing $1 failed: $(cat "$2.log")"
  osslsigncode verify -CAfile "${AWSCREDD_SIGN_CA:-/etc/ssl/certs/ca-certificates.crt}" -in "$2" > "$2.log" 2>&1 \
    || fail "the signature of $2 does not verify: $(cat "$2.log")"
  rm -f "$2.log"
}
if [ -n "$signing" ]; then
  sign "$exe" "$stage/awscredd.exe"
fi

msi=target/windows/awscredd-$version-x86_64.msi
rm -f "$msi"
# In the staging folder: wixl finds each File's Source in the current folder.
(cd "$stage" && wixl -a x64 -o unsigned.msi -D Version="$version" -D ProductCode="$product_code" \
  "$root/packaging/windows/awscredd.wxs") || fail "wixl failed"
# What wixl does not write. Component attributes: 256 (64-bit) | 16 (Permanent) | 128
# (NeverOverwrite) for the config template; StartOnUpgrade is installed only by an upgrade.
msibuild "$stage/unsigned.msi" -q "UPDATE Component SET Attributes = 400 WHERE Component = 'ConfigTemplate'"
msibuild "$stage/unsigned.msi" -q "UPDATE Component SET Condition = 'WIX_UPGRADE_DETECTED' WHERE Component = 'StartOnUpgrade'"
if [ -n "$signing" ]; then
  sign "$stage/unsigned.msi" "$msi"
else
  mv "$stage/unsigned.msi" "$msi"
fi
rm -rf "$stage"
echo "built $msi (version $version, ProductCode {$product_code}${signing:+, signed})" >&2
echo "$msi"
