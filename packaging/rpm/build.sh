#!/usr/bin/env bash
# Builds exactly one RPM, target/rpm/awscredd-VERSION-1.x86_64.rpm (VERSION from Cargo.toml),
# from the static binary of packaging/static.sh, the units of systemd/, the man pages and
# completions of examples/gen_docs.rs (awscredd.toml(5) among them), README.md and docs/, and
# packaging/rpm/config.toml as
# /etc/awscredd/config.toml. Nothing is compiled inside rpmbuild.
#
#   bash packaging/rpm/build.sh          # prints the path of the RPM on its last line
#
# AWSCREDD_BIN=PATH packages that binary instead of building it (it must be static). For the
# upgrade test: AWSCREDD_RPM_RELEASE (default 1), AWSCREDD_RPM_CONFIG (the file shipped as
# /etc/awscredd/config.toml) and AWSCREDD_RPM_OUT (default target/rpm).
# Needs rpmbuild (`apt-get install rpm` on Debian, `dnf install rpm-build` on RHEL).
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v rpmbuild >/dev/null || { echo "rpmbuild not found (apt-get install rpm / dnf install rpm-build)" >&2; exit 1; }
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
[ -n "$version" ] || { echo "build.sh: no version in Cargo.toml" >&2; exit 1; }

bin=${AWSCREDD_BIN:-$(bash packaging/static.sh | tail -n 1)}
case "$(file -b "$bin")" in
  *static*) ;;
  *) echo "build.sh: $bin is not a static executable: $(file -b "$bin")" >&2; exit 1 ;;
esac
[ "$("$bin" --version)" = "awscredd $version" ] || {
  echo "build.sh: $bin is $("$bin" --version), not awscredd $version" >&2; exit 1; }

release=${AWSCREDD_RPM_RELEASE:-1}
config=${AWSCREDD_RPM_CONFIG:-packaging/rpm/config.toml}
out=${AWSCREDD_RPM_OUT:-target/rpm}
name=awscredd-$version-$release.x86_64.rpm
top=$(realpath -m "$out/build")
rm -rf "$top" "$out"/*.rpm
mkdir -p "$out" "$top/SOURCES" "$top/RPMS" "$top/BUILD" "$top/BUILDROOT" "$top/SPECS" "$top/SRPMS"
src=$top/SOURCES
cp "$bin" "$src/awscredd"
cp systemd/awscredd.service systemd/awscredd@.service "$src/"
cp systemd/user/awscredd.service "$src/awscredd.user.service"
cp systemd/sysusers.d/awscredd.conf "$src/awscredd.sysusers.conf"
cp "$config" "$src/config.toml"
cp README.md LICENSE "$src/"
mkdir -p "$src/docs" && cp docs/*.md "$src/docs/"
cp config/example.toml "$src/example.toml"
# Man pages and completions from the clap definition the binary was built from.
cargo run --quiet --locked --example gen_docs -- "$src" >/dev/null

rpmbuild -bb --quiet --target x86_64 \
  --define "_topdir $top" \
  --define "pkg_version $version" \
  --define "pkg_release $release" \
  packaging/rpm/awscredd.spec >/dev/null
rpm=$(find "$top/RPMS" -name "$name")
[ -f "$rpm" ] || { echo "build.sh: rpmbuild made no $name" >&2; exit 1; }
mv "$rpm" "$out/"
rm -rf "$top"
echo "$out/$name"
