#!/usr/bin/env bash
# Writes the winget manifest of an MSI (the three files of schema 1.28.0, for winget-pkgs'
# manifests/a/awscredd/awscredd/VERSION/) from the templates in winget/, and validates them
# offline against the schema files kept in winget/schema/ with check-jsonschema (from PyPI, in
# a venv under target/ made when missing).
# Usage: winget.sh MSI URL OUTDIR   (URL: where the MSI will be downloaded from)
# The version, ProductCode and UpgradeCode are read from the MSI's Property table (msitools).
set -euo pipefail
cd "$(dirname "$0")/../.."
fail() { echo "winget.sh: $*" >&2; exit 1; }
[ $# = 3 ] || fail "usage: winget.sh MSI URL OUTDIR"
msi=$1 url=$2 out=$3
[ -f "$msi" ] || fail "no MSI at $msi"
command -v msiinfo >/dev/null || fail "needs msiinfo: apt-get install msitools"

prop() { msiinfo export "$msi" Property | tr -d '\r' | awk -F '\t' -v k="$1" '$1 == k { print $2 }'; }
version=$(prop ProductVersion)
product_code=$(prop ProductCode)
upgrade_code=$(prop UpgradeCode)
[ -n "$version" ] && [ -n "$product_code" ] && [ -n "$upgrade_code" ] \
  || fail "$msi: no ProductVersion, ProductCode or UpgradeCode in its Property table"
sha=$(sha256sum "$msi" | cut -d ' ' -f 1 | tr a-f A-F)

mkdir -p "$out"
for f in packaging/windows/winget/*.yaml; do
  sed -e "s|@VERSION@|$version|g" -e "s|@PRODUCT_CODE@|$product_code|g" \
    -e "s|@UPGRADE_CODE@|$upgrade_code|g" -e "s|@SHA256@|$sha|g" -e "s|@URL@|$url|g" \
    -e '/^# A template: /d' "$f" > "$out/$(basename "$f")"
done
if grep -n '@[A-Z_]*@' "$out"/*.yaml; then fail "a value was left unfilled (above)"; fi

venv=target/winget-venv
if ! [ -x "$venv/bin/check-jsonschema" ]; then
  python3 -m venv "$venv" && "$venv/bin/pip" install -q check-jsonschema >/dev/null \
    || fail "cannot install check-jsonschema into $venv"
fi
schema=packaging/windows/winget/schema
check() { # MANIFEST SCHEMA
  "$venv/bin/check-jsonschema" --schemafile "$schema/$2" "$out/$1" \
    || fail "$out/$1 does not follow $2"
}
check awscredd.awscredd.yaml manifest.version.1.28.0.json
check awscredd.awscredd.installer.yaml manifest.installer.1.28.0.json
check awscredd.awscredd.locale.en-US.yaml manifest.defaultLocale.1.28.0.json
echo "winget manifest for $version (ProductCode $product_code) in $out: valid against schema 1.28.0" >&2
