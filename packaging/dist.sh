#!/usr/bin/env bash
# Builds every artifact a release publishes into target/dist/ (VERSION from Cargo.toml):
#
#   awscredd-VERSION-x86_64-linux.tar.gz   the static binary, README.md, docs/, LICENSE, the
#                                          systemd units, example.toml, man pages (1 and 5),
#                                          bash/zsh/fish completions
#   awscredd-VERSION-1.x86_64.rpm          packaging/rpm/build.sh
#   awscredd-VERSION-oci.tar               the sidecar image (localhost/awscredd:VERSION) as an
#                                          OCI archive: `podman load -i`
#   awscredd-VERSION-x86_64-windows.zip    awscredd.exe, README.md, docs/, LICENSE, example.toml
#   *.msi                                  packaging/windows/msi.sh, when it exists
#   awscredd-VERSION.cdx.json              the SBOM, CycloneDX JSON (cargo-cyclonedx)
#   SHA256SUMS                             `sha256sum -c SHA256SUMS` checks them all
#
#   bash packaging/dist.sh                 # then: bash packaging/dist-test.sh
#
# It reuses what is already built, since CI builds each input in an earlier step:
#   AWSCREDD_BIN=PATH   the static Linux binary (default: packaging/static.sh builds it)
#   AWSCREDD_EXE=PATH   the Windows .exe (default: packaging/windows/build.sh, release)
#   AWSCREDD_DIST_OUT   the output folder (default target/dist; emptied first)
#   SOURCE_DATE_EPOCH   the file times in the archives (default: the last commit's time)
# Tools: tar, gzip, zip, file, sha256sum, rpmbuild, podman (root, a private vfs storage under
# target/dist-work unless CONTAINERS_STORAGE_CONF is set); cargo-cyclonedx is installed into
# target/tools from crates.io when missing. Run it under the cargo lock on a shared machine.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
say() { echo "dist: $*" >&2; }
fail() { say "FAIL: $*"; exit 1; }
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
[ -n "$version" ] || fail "no version in Cargo.toml"
out=${AWSCREDD_DIST_OUT:-target/dist}
work=target/dist-work
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
export SOURCE_DATE_EPOCH=$epoch
rm -rf "$out" "$work/stage" "$work/gen" "$work/rpm"
mkdir -p "$out" "$work/stage"
out=$(realpath "$out")

for tool in tar gzip zip file sha256sum; do
  command -v "$tool" >/dev/null || fail "needs $tool"
done

# ---- inputs
bin=${AWSCREDD_BIN:-}
if [ -z "$bin" ]; then
  say "building the static binary (packaging/static.sh)"
  bin=$(bash packaging/static.sh | tail -n 1)
fi
case "$(file -b "$bin")" in
  *"dynamically linked"*) fail "$bin is dynamically linked: the tarball ships a static binary" ;;
  *ELF*x86-64*) ;;
  *) fail "$bin is not an x86-64 ELF executable: $(file -b "$bin")" ;;
esac
[ "$("$bin" --version)" = "awscredd $version" ] || fail "$bin is $("$bin" --version), not awscredd $version"

exe=${AWSCREDD_EXE:-}
if [ -z "$exe" ]; then
  say "building the Windows .exe (packaging/windows/build.sh, release)"
  bash packaging/windows/build.sh >&2
  exe=target/windows/awscredd.exe
fi
case "$(file -b "$exe")" in
  PE32+*x86-64*) ;;
  *) fail "$exe is not a Windows x86-64 executable: $(file -b "$exe")" ;;
esac

# Man pages (awscredd.1, awscredd-SUBCOMMAND.1, awscredd.toml.5) and completions.
cargo run --quiet --locked --example gen_docs -- "$work/gen" >/dev/null

# Files in the archives get the commit's time, root ownership and fixed modes.
normalize() { find "$1" -exec touch -h -d "@$epoch" {} +; }

# ---- the Linux tarball
name=awscredd-$version-x86_64-linux
stage=$work/stage/$name
mkdir -p "$stage/docs" "$stage/systemd/user" "$stage/systemd/sysusers.d" \
  "$stage/man/man1" "$stage/man/man5" "$stage/completions"
install -m 0755 "$bin" "$stage/awscredd"
install -m 0644 README.md LICENSE "$stage/"
install -m 0644 docs/*.md "$stage/docs/"
install -m 0644 config/example.toml "$stage/example.toml"
install -m 0644 systemd/awscredd.service systemd/awscredd@.service "$stage/systemd/"
install -m 0644 systemd/user/awscredd.service "$stage/systemd/user/"
install -m 0644 systemd/sysusers.d/awscredd.conf "$stage/systemd/sysusers.d/"
install -m 0644 "$work"/gen/man/*.1 "$stage/man/man1/"
install -m 0644 "$work"/gen/man/*.5 "$stage/man/man5/"
install -m 0644 "$work"/gen/completions/* "$stage/completions/"
normalize "$stage"
tar -C "$work/stage" --sort=name --owner=0 --group=0 --numeric-owner -cf - "$name" \
  | gzip -n -9 >"$out/$name.tar.gz"
say "$name.tar.gz"

# ---- the RPM (from the same binary)
rpm=$(AWSCREDD_BIN="$bin" AWSCREDD_RPM_OUT="$work/rpm" bash packaging/rpm/build.sh | tail -n 1)
[ -f "$rpm" ] || fail "packaging/rpm/build.sh made no RPM"
cp "$rpm" "$out/"
say "$(basename "$rpm")"

# ---- the image, as an OCI archive
command -v podman >/dev/null || fail "needs podman (apt-get install podman runc)"
if [ -z "${CONTAINERS_STORAGE_CONF:-}" ]; then
  # A storage of its own (the recipe packaging/container/test.sh uses on these machines).
  mkdir -p "$work/podman"
  cat >"$work/podman/storage.conf" <<EOF
[storage]
driver = "vfs"
graphroot = "$root/$work/podman/storage"
runroot = "$root/$work/podman/run"
EOF
  cat >"$work/podman/containers.conf" <<EOF
[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
events_logger = "file"
EOF
  export CONTAINERS_STORAGE_CONF=$root/$work/podman/storage.conf
  export CONTAINERS_CONF=$root/$work/podman/containers.conf
fi
AWSCREDD_BINARY="$bin" PODMAN="timeout 300 podman" bash packaging/container/build.sh >/dev/null
oci=awscredd-$version-oci.tar
timeout 300 podman save --quiet --format oci-archive -o "$out/$oci" "localhost/awscredd:$version"
say "$oci"

# ---- the Windows zip
wname=awscredd-$version-x86_64-windows
wstage=$work/stage/$wname
mkdir -p "$wstage/docs"
install -m 0755 "$exe" "$wstage/awscredd.exe"
install -m 0644 README.md LICENSE "$wstage/"
install -m 0644 docs/*.md "$wstage/docs/"
install -m 0644 config/example.toml "$wstage/example.toml"
normalize "$wstage"
(cd "$work/stage" && find "$wname" | LC_ALL=C sort | zip -X -q "$out/$wname.zip" -@)
say "$wname.zip"

# ---- the MSI, once packaging/windows/msi.sh exists (it prints the MSI's path last)
if [ -f packaging/windows/msi.sh ]; then
  msi=$(AWSCREDD_EXE="$exe" bash packaging/windows/msi.sh | tail -n 1)
  [ -f "$msi" ] || fail "packaging/windows/msi.sh printed no MSI path on its last line (got: $msi)"
  cp "$msi" "$out/"
  say "$(basename "$msi")"
fi

# ---- the SBOM (CycloneDX JSON: the crate and every dependency, for every target)
cyclonedx=$root/target/tools/bin/cargo-cyclonedx
if [ ! -x "$cyclonedx" ]; then
  say "installing cargo-cyclonedx into target/tools (crates.io)"
  cargo install --quiet --locked --root target/tools cargo-cyclonedx --version 0.5.9
fi
rm -f awscredd.cdx.json
"$cyclonedx" cyclonedx --quiet --format json --target all --override-filename awscredd.cdx
mv awscredd.cdx.json "$out/awscredd-$version.cdx.json"
say "awscredd-$version.cdx.json"

# ---- checksums
files=$(cd "$out" && find . -maxdepth 1 -type f -printf '%f\n' | LC_ALL=C sort)
(cd "$out" && xargs -d '\n' sha256sum <<<"$files" >"$root/$work/SHA256SUMS")
mv "$work/SHA256SUMS" "$out/SHA256SUMS"
say "SHA256SUMS"
ls -l "$out" >&2
echo "$out"
