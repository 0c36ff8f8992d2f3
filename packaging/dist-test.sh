#!/usr/bin/env bash
# Checks what packaging/dist.sh put in target/dist/ (or AWSCREDD_DIST_OUT): SHA256SUMS lists
# every file and `sha256sum -c` passes; each archive holds exactly what it says, and what it
# holds works:
#   - the tarball: its exact file list; the binary is static, says `awscredd VERSION`, and
#     runs `check` on a config; every man page renders without a groff warning;
#   - the RPM: name, version, the binary, the man pages (awscredd.toml(5) too), docs/
#     (packaging/rpm/test.sh checks the RPM built in target/rpm in full);
#   - the OCI archive: an OCI layout whose image is localhost/awscredd:VERSION, user 65532,
#     entrypoint /usr/bin/awscredd, the version label, and the binary in a layer;
#   - the Windows zip: its exact file list, awscredd.exe a PE32+ x86-64 executable;
#   - the MSI (when packaging/windows/msi.sh exists): an MSI file;
#   - the SBOM: CycloneDX JSON describing awscredd VERSION, every component a crate of
#     Cargo.lock at the locked version, the direct dependencies among them.
#
#   bash packaging/dist-test.sh          # after packaging/dist.sh; needs rpm, groff, unzip
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
say() { echo "dist-test: $*" >&2; }
fail() { say "FAIL: $*"; exit 1; }
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
dist=$(realpath "${AWSCREDD_DIST_OUT:-target/dist}")
[ -d "$dist" ] || fail "no $dist: run packaging/dist.sh first"
for tool in sha256sum tar unzip file groff rpm python3; do
  command -v "$tool" >/dev/null || fail "needs $tool"
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# ---- SHA256SUMS: every file listed once, every sum right
cd "$dist"
[ -s SHA256SUMS ] || fail "no SHA256SUMS"
listed=$(awk '{print $2}' SHA256SUMS | sed 's/^\*//' | LC_ALL=C sort)
present=$(find . -maxdepth 1 -type f ! -name SHA256SUMS -printf '%f\n' | LC_ALL=C sort)
[ "$listed" = "$present" ] || { diff <(echo "$listed") <(echo "$present") >&2 || true; fail "SHA256SUMS does not list exactly the files in $dist (- listed, + present)"; }
sha256sum --quiet -c SHA256SUMS || fail "sha256sum -c SHA256SUMS failed"
say "SHA256SUMS: $(wc -l <SHA256SUMS) files, sha256sum -c ok"
cd "$root"

want_common() {  # the documentation both archives carry, under their top folder $1
  echo "$1/"; echo "$1/LICENSE"; echo "$1/README.md"; echo "$1/example.toml"; echo "$1/docs/"
  for f in docs/*.md; do echo "$1/$f"; done
}

# ---- the Linux tarball
name=awscredd-$version-x86_64-linux
tgz=$dist/$name.tar.gz
[ -f "$tgz" ] || fail "no $name.tar.gz"
tar -C "$tmp" -xzf "$tgz"
bin=$tmp/$name/awscredd
[ -x "$bin" ] || fail "no executable $name/awscredd in the tarball"
{
  want_common "$name"
  echo "$name/awscredd"
  for d in systemd/ systemd/user/ systemd/sysusers.d/ man/ man/man1/ man/man5/ completions/; do echo "$name/$d"; done
  echo "$name/systemd/awscredd.service"; echo "$name/systemd/awscredd@.service"
  echo "$name/systemd/user/awscredd.service"; echo "$name/systemd/sysusers.d/awscredd.conf"
  echo "$name/man/man5/awscredd.toml.5"; echo "$name/man/man1/awscredd.1"
  # One page per subcommand the Linux binary has (clap's --help lists them).
  for sub in $("$bin" --help 2>/dev/null \
      | awk '/^Commands:/ {on=1; next} /^$/ {on=0} on {print $1}' | grep -v '^help$'); do
    echo "$name/man/man1/awscredd-$sub.1"
  done
  echo "$name/completions/awscredd.bash"; echo "$name/completions/_awscredd"; echo "$name/completions/awscredd.fish"
} | LC_ALL=C sort >"$tmp/tgz.want"
tar -tzf "$tgz" | LC_ALL=C sort >"$tmp/tgz.got"
diff "$tmp/tgz.want" "$tmp/tgz.got" >&2 || fail "$name.tar.gz holds other files than it should (< expected, > found)"
grep -q "^$name/man/man1/awscredd-run.1\$" "$tmp/tgz.got" || fail "no subcommand man pages in the tarball"
case "$(file -b "$bin")" in
  *"dynamically linked"*|*"shared object"*) fail "the tarball's binary is not static: $(file -b "$bin")" ;;
esac
[ "$("$bin" --version)" = "awscredd $version" ] || fail "the tarball's binary says $("$bin" --version)"
[ "$(stat -c %a "$bin")" = 755 ] || fail "the tarball's binary is not mode 0755"
cat >"$tmp/config.toml" <<'EOF'
[daemon]
state_dir = "state"
[[output]]
path = "credentials"
[profile.app]
credential_process = "/bin/true"
EOF
HOME=$tmp "$bin" --config "$tmp/config.toml" check >"$tmp/check.log" 2>&1 \
  || { cat "$tmp/check.log" >&2; fail "the tarball's binary: check failed"; }
for page in "$tmp/$name"/man/man1/*.1 "$tmp/$name"/man/man5/*.5; do
  warn=$(groff -man -Tutf8 -ww -z "$page" 2>&1) || fail "groff failed on $page: $warn"
  [ -z "$warn" ] || fail "groff warns on $(basename "$page"): $warn"
done
grep -q 'complete' "$tmp/$name/completions/awscredd.bash" || fail "the bash completion is empty"
say "$name.tar.gz: $(wc -l <"$tmp/tgz.got") entries as expected; static, $("$bin" --version), check ok, man pages render"

# ---- the RPM
rpm_file=$dist/awscredd-$version-1.x86_64.rpm
[ -f "$rpm_file" ] || fail "no awscredd-$version-1.x86_64.rpm"
[ "$(rpm -qp --qf '%{NAME} %{VERSION} %{ARCH}' "$rpm_file" 2>/dev/null)" = "awscredd $version x86_64" ] \
  || fail "the RPM is $(rpm -qp --qf '%{NAME} %{VERSION} %{ARCH}' "$rpm_file" 2>/dev/null)"
rpm -qlp "$rpm_file" 2>/dev/null >"$tmp/rpm.files"
for f in /usr/bin/awscredd /usr/share/man/man1/awscredd.1.gz /usr/share/man/man5/awscredd.toml.5.gz \
  /usr/share/doc/awscredd/README.md /usr/share/doc/awscredd/docs/configuration.md \
  /usr/lib/systemd/system/awscredd.service; do
  grep -qx "$f" "$tmp/rpm.files" || fail "the RPM has no $f"
done
say "$(basename "$rpm_file"): awscredd $version x86_64, binary, man pages (1, 5), docs"

# ---- the OCI archive
oci=$dist/awscredd-$version-oci.tar
[ -f "$oci" ] || fail "no awscredd-$version-oci.tar"
mkdir "$tmp/oci"
tar -C "$tmp/oci" -xf "$oci"
python3 - "$tmp/oci" "$version" <<'EOF' || fail "the OCI archive is not the image it should be"
import json, os, sys, tarfile
d, version = sys.argv[1], sys.argv[2]
def blob(digest):
    algo, hexd = digest.split(":")
    return os.path.join(d, "blobs", algo, hexd)
layout = json.load(open(os.path.join(d, "oci-layout")))
assert layout.get("imageLayoutVersion") == "1.0.0", layout
index = json.load(open(os.path.join(d, "index.json")))
manifests = index["manifests"]
assert len(manifests) == 1, f"{len(manifests)} images in the archive"
ref = (manifests[0].get("annotations") or {}).get("org.opencontainers.image.ref.name", "")
assert ref.endswith(version), f"image ref {ref!r} is not version {version}"
manifest = json.load(open(blob(manifests[0]["digest"])))
config = json.load(open(blob(manifest["config"]["digest"])))["config"]
assert config.get("User") == "65532:65532", config.get("User")
assert config.get("Entrypoint") == ["/usr/bin/awscredd"], config.get("Entrypoint")
assert (config.get("Labels") or {}).get("org.opencontainers.image.version") == version, config.get("Labels")
names = set()
for layer in manifest["layers"]:
    with tarfile.open(blob(layer["digest"])) as t:
        names.update(n.lstrip("./") for n in t.getnames())
for want in ("usr/bin/awscredd", "etc/ssl/certs/ca-certificates.crt", "etc/passwd"):
    assert want in names, f"no {want} in the image's layers"
print(f"{ref}: user 65532, entrypoint /usr/bin/awscredd, {len(manifest['layers'])} layer(s)")
EOF
say "awscredd-$version-oci.tar: an OCI layout of localhost/awscredd:$version"

# ---- the Windows zip
wname=awscredd-$version-x86_64-windows
zipf=$dist/$wname.zip
[ -f "$zipf" ] || fail "no $wname.zip"
{ want_common "$wname"; echo "$wname/awscredd.exe"; } | LC_ALL=C sort >"$tmp/zip.want"
unzip -Z1 "$zipf" | LC_ALL=C sort >"$tmp/zip.got"
diff "$tmp/zip.want" "$tmp/zip.got" >&2 || fail "$wname.zip holds other files than it should (< expected, > found)"
unzip -q -d "$tmp/zip" "$zipf"
case "$(file -b "$tmp/zip/$wname/awscredd.exe")" in
  PE32+*x86-64*) ;;
  *) fail "awscredd.exe in the zip is $(file -b "$tmp/zip/$wname/awscredd.exe")" ;;
esac
unzip -tq "$zipf" >/dev/null || fail "unzip -t failed on $wname.zip"
say "$wname.zip: $(wc -l <"$tmp/zip.got") entries as expected; awscredd.exe is PE32+ x86-64"

# ---- the MSI
if [ -f packaging/windows/msi.sh ]; then
  shopt -s nullglob
  msis=("$dist"/*.msi)
  [ "${#msis[@]}" = 1 ] || fail "expected one MSI in $dist, found ${#msis[@]}"
  case "$(file -b "${msis[0]}")" in
    *"Composite Document File"*|*MSI*) ;;
    *) fail "$(basename "${msis[0]}") is not an MSI: $(file -b "${msis[0]}")" ;;
  esac
  say "$(basename "${msis[0]}"): an MSI"
fi

# ---- the SBOM
sbom=$dist/awscredd-$version.cdx.json
[ -f "$sbom" ] || fail "no awscredd-$version.cdx.json"
python3 - "$sbom" "$version" Cargo.lock Cargo.toml <<'EOF' || fail "the SBOM does not describe this build"
import json, re, sys, tomllib
bom = json.load(open(sys.argv[1]))
version = sys.argv[2]
lock = tomllib.load(open(sys.argv[3], "rb"))
manifest = tomllib.load(open(sys.argv[4], "rb"))
assert bom.get("bomFormat") == "CycloneDX", bom.get("bomFormat")
top = bom["metadata"]["component"]
assert top["name"] == "awscredd" and top["version"] == version, (top["name"], top["version"])
locked = {(p["name"], p["version"]) for p in lock["package"]}
comps = bom.get("components", [])
assert comps, "no components"
for c in comps:
    assert (c["name"], c["version"]) in locked, f"{c['name']} {c['version']} is not in Cargo.lock"
names = {c["name"] for c in comps}
deps = set(manifest["dependencies"]) | set(manifest.get("target", {}).get("cfg(unix)", {}).get("dependencies", {}))
missing = sorted(d for d in deps if d not in names)
assert not missing, f"direct dependencies missing from the SBOM: {missing}"
print(f"{len(comps)} components, every one locked; {len(deps)} direct dependencies present")
EOF
say "awscredd-$version.cdx.json: CycloneDX for awscredd $version"
say "PASS"
