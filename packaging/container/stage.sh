#!/usr/bin/env bash
# Lays out the build context of the image: the root file system of a `FROM scratch` image,
# used by both Containerfiles (the host build in build.sh, and the builder stage of
# Containerfile.multistage), so the two images are the same.
#
#   bash packaging/container/stage.sh BINARY CA_BUNDLE DIR
#
# DIR/rootfs/    owned by root in the image: /usr/bin/awscredd, /etc/passwd, /etc/group,
#                /etc/ssl/certs/ca-certificates.crt (the SDK's TLS reads the system's roots),
#                /etc/awscredd/ (where the config is mounted), /var/lib/
# DIR/var-lib/awscredd/  becomes /var/lib/awscredd, owned by 65532, mode 0700: HOME and
#                XDG_STATE_HOME (SSO token cache, state.json); meant to be a volume
# DIR/root/shared/       becomes /shared, owned by 65532, mode 0750: the folder meant to be
#                the volume shared with the application (the credentials file, the token)
# The Containerfiles copy the last two with --chown=65532:65532: COPY keeps the modes set here
# and, since the parents already exist, leaves them to root.
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: stage.sh BINARY CA_BUNDLE DIR" >&2; exit 2; }
bin=$1 ca=$2 dir=$3
[ -x "$bin" ] || { echo "stage.sh: $bin is not an executable" >&2; exit 1; }
[ -s "$ca" ] || { echo "stage.sh: $ca is missing or empty (apt-get install ca-certificates)" >&2; exit 1; }
rm -rf "$dir"
mkdir -p "$dir/rootfs/usr/bin" "$dir/rootfs/etc/ssl/certs" "$dir/rootfs/etc/awscredd" \
  "$dir/rootfs/var/lib" "$dir/var-lib/awscredd" "$dir/root/shared"
install -m 0755 "$bin" "$dir/rootfs/usr/bin/awscredd"
install -m 0644 "$ca" "$dir/rootfs/etc/ssl/certs/ca-certificates.crt"
# One non-root user and its group, with fixed ids as distroless has them (65532, "nonroot"
# there; "awscredd" here). Its home is the state volume.
printf 'root:x:0:0:root:/root:/sbin/nologin\nawscredd:x:65532:65532:awscredd:/var/lib/awscredd:/sbin/nologin\n' \
  >"$dir/rootfs/etc/passwd"
printf 'root:x:0:\nawscredd:x:65532:\n' >"$dir/rootfs/etc/group"
chmod 0644 "$dir/rootfs/etc/passwd" "$dir/rootfs/etc/group"
chmod 0755 "$dir/var-lib" "$dir/root"
chmod 0700 "$dir/var-lib/awscredd"
chmod 0750 "$dir/root/shared"
