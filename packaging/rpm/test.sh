#!/usr/bin/env bash
# Checks the RPM that build.sh made, offline: exactly one package, its file list, flags,
# modes and owners, requires (no glibc: the binary is static), scriptlets; then installs it
# into a throwaway root (`rpm --root DIR --nodeps`, Debian's busybox-static as /bin/sh there
# for the scriptlets), runs the installed binary in that root, upgrades to a release whose
# default config changed (an edited config is kept, the new one lands as .rpmnew), and erases.
#
#   bash packaging/rpm/test.sh           # after build.sh; needs rpm and busybox-static, root
set -euo pipefail
cd "$(dirname "$0")/../.."
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
fail() { echo "rpm test: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "needs root (chroot, file owners)"
busybox=$(command -v busybox) || fail "needs busybox-static (apt-get install busybox-static)"
file -b "$busybox" | grep -q 'statically linked' || fail "$busybox is not static (apt-get install busybox-static)"

shopt -s nullglob
rpms=(target/rpm/*.rpm)
[ "${#rpms[@]}" = 1 ] || fail "expected exactly one RPM in target/rpm, found: ${rpms[*]:-none}"
rpm=${rpms[0]}
[ "$(basename "$rpm")" = "awscredd-$version-1.x86_64.rpm" ] || fail "unexpected name $rpm"
echo "rpm: $rpm ($(stat -c %s "$rpm") bytes)"

# 1. What it holds: paths, flags (c config, n noreplace, d doc, l license), modes, owners.
got=$(rpm -qp --qf '[%{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILEFLAGS:fflags} %{FILENAMES}\n]' "$rpm" | sort -k4)
want=$(sort -k4 <<LIST
drwxr-x--- root:awscredd  /etc/awscredd
-rw-r----- root:awscredd cn /etc/awscredd/config.toml
-rwxr-xr-x root:root  /usr/bin/awscredd
-rw-r--r-- root:root  /usr/lib/systemd/system/awscredd.service
-rw-r--r-- root:root  /usr/lib/systemd/system/awscredd@.service
-rw-r--r-- root:root  /usr/lib/systemd/user/awscredd.service
-rw-r--r-- root:root  /usr/lib/sysusers.d/awscredd.conf
-rw-r--r-- root:root  /usr/share/bash-completion/completions/awscredd
drwxr-xr-x root:root  /usr/share/doc/awscredd
-rw-r--r-- root:root d /usr/share/doc/awscredd/README.md
-rw-r--r-- root:root d /usr/share/doc/awscredd/example.toml
-rw-r--r-- root:root  /usr/share/fish/vendor_completions.d/awscredd.fish
drwxr-xr-x root:root  /usr/share/licenses/awscredd
-rw-r--r-- root:root l /usr/share/licenses/awscredd/LICENSE
-rw-r--r-- root:root d /usr/share/man/man1/awscredd-check.1.gz
-rw-r--r-- root:root d /usr/share/man/man1/awscredd-credential-process.1.gz
-rw-r--r-- root:root d /usr/share/man/man1/awscredd-init.1.gz
-rw-r--r-- root:root d /usr/share/man/man1/awscredd-login.1.gz
-rw-r--r-- root:root d /usr/share/man/man1/awscredd-once.1.gz
-rw-r--r-- root:root d /usr/share/man/man1/awscredd-run.1.gz
-rw-r--r-- root:root d /usr/share/man/man1/awscredd-status.1.gz
-rw-r--r-- root:root d /usr/share/man/man1/awscredd.1.gz
-rw-r--r-- root:root d /usr/share/man/man5/awscredd.toml.5.gz
-rw-r--r-- root:root  /usr/share/zsh/site-functions/_awscredd
drwx------ awscredd:awscredd  /var/lib/awscredd
drwxr-xr-x root:root  /usr/share/doc/awscredd/docs
$(for f in docs/*.md; do echo "-rw-r--r-- root:root d /usr/share/doc/awscredd/$f"; done)
LIST
)
[ "$got" = "$want" ] || { diff <(echo "$want") <(echo "$got") >&2 || true; fail "file list, flags or modes differ (- expected, + got)"; }
echo "files, flags, modes: ok"

# 2. Requires: only /bin/sh for the scriptlets and rpmlib features; no library, no glibc.
reqs=$(rpm -qpR "$rpm" | sort -u)
bad=$(printf '%s\n' "$reqs" | grep -v -e '^/bin/sh$' -e '^rpmlib(' || true)
[ -z "$bad" ] || fail "unexpected requires: $bad"
echo "requires: $(printf '%s' "$reqs" | tr '\n' ' ')"

# 3. Scriptlets: user first, preset on install, stop + disable on erase, try-restart on upgrade.
scripts=$(rpm -qp --scripts "$rpm")
section() { printf '%s\n' "$scripts" | awk -v s="$1" '/scriptlet \(using/ {on = index($0, s) == 1} on'; }
section preinstall | grep -q 'systemd-sysusers --replace=/usr/lib/sysusers.d/awscredd.conf' || fail "%pre does not run systemd-sysusers"
section preinstall | grep -q "'u  *awscredd " || fail "%pre has no sysusers line for awscredd"
section postinstall | grep -q 'preset awscredd.service' || fail "%post does not preset"
section preuninstall | grep -q 'disable --now awscredd.service' || fail "%preun does not stop and disable"
section preuninstall | grep -q '"$1" -eq 0' || fail "%preun acts on upgrades too"
section postuninstall | grep -q 'try-restart awscredd.service' || fail "%postun does not try-restart"
section postuninstall | grep -q '"$1" -ge 1' || fail "%postun restarts on erase"
# Built where RHEL's %systemd_* macros exist, the spec uses them instead (rpmspec parses it
# with stand-ins for them); the awscredd@USER part stays.
src=$(mktemp -d)
cp systemd/sysusers.d/awscredd.conf "$src/awscredd.sysusers.conf"
macros=()
for m in systemd_post systemd_user_post systemd_preun systemd_user_preun \
  systemd_postun_with_restart systemd_user_postun_with_restart; do
  macros+=(--define "$m() RHEL_MACRO $m %*")
done
parsed=$(rpmspec -P --define "_sourcedir $src" --define "pkg_version $version" "${macros[@]}" packaging/rpm/awscredd.spec)
rm -rf "$src"
for m in systemd_post systemd_preun systemd_postun_with_restart; do
  grep -qx "RHEL_MACRO $m awscredd.service" <<<"$parsed" || fail "with RHEL's macros, %$m is not used"
done
grep -q 'preset awscredd.service' <<<"$parsed" && fail "with RHEL's macros, the hand-made %post is still there"
grep -q "try-restart 'awscredd@\*.service'" <<<"$parsed" || fail "with RHEL's macros, instances are not restarted"
echo "scriptlets: ok (and with RHEL's %systemd_* macros)"

# 4. Installed into a throwaway root. The awscredd user exists there as systemd-sysusers would
#    create it (the root has no systemd-sysusers; %pre skips it), so owners resolve.
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/dev"
cp "$busybox" "$root/bin/sh"
mknod -m 0666 "$root/dev/null" c 1 3
printf 'root:x:0:0:root:/root:/bin/sh\nawscredd:x:990:990:awscredd:/var/lib/awscredd:/sbin/nologin\n' > "$root/etc/passwd"
printf 'root:x:0:\nawscredd:x:990:\n' > "$root/etc/group"
# Debian's rpm warns that it is not dpkg; nothing else is expected on stderr.
quiet_rpm() { rpm "$@" 2>&1 | grep -v -e 'use Alien' -e 'what you are doing' -e 'created as' -e 'saved as' || true; }
quiet_rpm --root "$root" --nodeps -i "$rpm"
[ -x "$root/usr/bin/awscredd" ] || fail "rpm -i installed nothing"
# Owners as numbers: the names are the root's (awscredd is 990:990 there), not this machine's.
mode() { stat -c '%A %u:%g' "$root$1" 2>/dev/null || echo "missing"; }
expect_mode() { [ "$(mode "$1")" = "$2" ] || fail "$1 is $(mode "$1"), want $2"; }
expect_mode /usr/bin/awscredd "-rwxr-xr-x 0:0"
expect_mode /etc/awscredd "drwxr-x--- 0:990"
expect_mode /etc/awscredd/config.toml "-rw-r----- 0:990"
expect_mode /var/lib/awscredd "drwx------ 990:990"
expect_mode /usr/lib/systemd/system/awscredd.service "-rw-r--r-- 0:0"
cmp -s "$root/etc/awscredd/config.toml" packaging/rpm/config.toml || fail "config.toml differs from packaging/rpm/config.toml"
# The installed binary runs in that root (no library there). The shipped config manages nothing
# (every profile is commented out): check says so and nothing else; with one profile it is valid.
if out=$(chroot "$root" /usr/bin/awscredd --config /etc/awscredd/config.toml check 2>&1); then
  fail "check accepts the shipped config, which manages no profile"
fi
grep -q 'no profiles are configured' <<<"$out" || fail "check of the shipped config: $out"
[ "$(grep -c . <<<"$out")" = 1 ] || fail "check of the shipped config finds more than no profiles: $out"
{ cat packaging/rpm/config.toml; printf '[profile.legacy]\ncredential_process = "/usr/local/bin/corp-sso --json"\n'; } \
  > "$root/etc/awscredd/one-profile.toml"
chroot "$root" /usr/bin/awscredd --config /etc/awscredd/one-profile.toml check >/dev/null \
  || fail "the installed binary rejects the shipped config with one profile added"
rm "$root/etc/awscredd/one-profile.toml"
[ "$(chroot "$root" /usr/bin/awscredd --version)" = "awscredd $version" ] || fail "installed --version"
echo "install into $root: ok"

# 5. Upgrade to a release whose default config changed, over an edited config: the edit stays,
#    the new default lands beside it as .rpmnew; the mode stays 0640 root:awscredd.
next=$(mktemp -d)
trap 'rm -rf "$root" "$next"' EXIT
{ cat packaging/rpm/config.toml; echo "# a new comment in release 2"; } > "$next/config.toml"
AWSCREDD_BIN="$root/usr/bin/awscredd" AWSCREDD_RPM_RELEASE=2 AWSCREDD_RPM_CONFIG="$next/config.toml" \
  AWSCREDD_RPM_OUT="$next/out" bash packaging/rpm/build.sh >/dev/null
echo "# edited by the admin" >> "$root/etc/awscredd/config.toml"
quiet_rpm --root "$root" --nodeps -U "$next/out/awscredd-$version-2.x86_64.rpm"
tail -n 1 "$root/etc/awscredd/config.toml" | grep -q 'edited by the admin' || fail "the upgrade replaced the edited config"
[ -f "$root/etc/awscredd/config.toml.rpmnew" ] || fail "no config.toml.rpmnew after the upgrade"
cmp -s "$root/etc/awscredd/config.toml.rpmnew" "$next/config.toml" || fail ".rpmnew is not the new default"
expect_mode /etc/awscredd/config.toml "-rw-r----- 0:990"
[ "$(rpm --root "$root" -q awscredd)" = "awscredd-$version-2.x86_64" ] || fail "not upgraded"
echo "upgrade keeps the edited config (.rpmnew beside it): ok"

# 6. Erase: the package's files go, the edited config is kept as .rpmsave.
quiet_rpm --root "$root" --nodeps -e awscredd
[ ! -e "$root/usr/bin/awscredd" ] || fail "erase left /usr/bin/awscredd"
[ -f "$root/etc/awscredd/config.toml.rpmsave" ] || fail "erase did not keep the edited config as .rpmsave"
echo "erase: ok"
echo "rpm test: ok"
