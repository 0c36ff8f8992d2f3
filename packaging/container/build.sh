#!/usr/bin/env bash
# Builds the sidecar image with podman: the static binary (packaging/static.sh), the build
# context (stage.sh, with Debian's CA bundle from this host), then Containerfile, tagged
# localhost/awscredd:latest and localhost/awscredd:VERSION (Cargo.toml's version).
#
#   bash packaging/container/build.sh
#
# Environment:
#   AWSCREDD_BINARY=PATH   use this static binary instead of building one (test.sh passes the
#                          one CI already built)
#   AWSCREDD_STATIC_TARGET_DIR  passed on to packaging/static.sh
#   CA_BUNDLE=PATH         default /etc/ssl/certs/ca-certificates.crt (Debian's ca-certificates)
#   PODMAN=podman          the podman command (with its options, e.g. "podman --storage-driver=vfs")
# Prints the image id on its last line.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
read -r -a podman <<<"${PODMAN:-podman}"
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
[ -n "$version" ] || { echo "build.sh: no version in Cargo.toml" >&2; exit 1; }
bin=${AWSCREDD_BINARY:-}
if [ -z "$bin" ]; then
  bin=$(bash packaging/static.sh | tail -n 1)
fi
if command -v file >/dev/null; then
  case "$(file -b "$bin")" in
    *"dynamically linked"*) echo "build.sh: $bin is dynamically linked; a scratch image needs a static one" >&2; exit 1 ;;
  esac
fi
ctx=target/container/context
bash packaging/container/stage.sh "$bin" "${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}" "$ctx"
"${podman[@]}" build --quiet --build-arg "VERSION=$version" \
  -t localhost/awscredd:latest -t "localhost/awscredd:$version" \
  -f packaging/container/Containerfile "$ctx" >target/container/image-id
echo "build.sh: localhost/awscredd:$version (latest) from $bin" >&2
tail -n 1 target/container/image-id
