#!/usr/bin/env bash
# The units under a real systemd: a podman container whose PID 1 is systemd (a Debian root
# made with debootstrap, since no image can be pulled), the RPM installed in it with rpm, and
# awscredd.service driven through systemctl against the bundled fake IAM Identity Center on
# the host's loopback (--network=host). It checks: the %pre scriptlet made the awscredd user;
# start (READY=1) after a device sign-in whose URL and code are in the journal and whose
# login_command child ran inside the sandbox; credentials written by the awscredd user, also
# to a folder allowed by a ReadWritePaths= drop-in (credential_process child); the watchdog;
# reload; SIGUSR1; a clean stop; the time from start to READY=1; exit 78 not restarted; an
# awscredd@USER instance writing that user's ~/.aws/credentials; an upgrade that restarts the
# services; an erase that stops them.
#
#   bash systemd/podman-test.sh [RPM]    # root; podman, runc, debootstrap
#
# AWSCREDD_ROOTFS: where the debootstrap root is kept between runs (default
# target/podman/rootfs; about 1.5 minutes to make). AWSCREDD_BIN: the static binary (for
# the release-2 RPM of the upgrade; default: packaging/static.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
fail() { echo "podman test: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "needs root"
for c in podman runc debootstrap; do command -v "$c" >/dev/null || fail "needs $c (apt-get install podman runc debootstrap)"; done
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
rpm=$(realpath "${1:-target/rpm/awscredd-$version-1.x86_64.rpm}")
[ -f "$rpm" ] || fail "no $rpm (bash packaging/rpm/build.sh)"
work=$(realpath -m target/podman)
base=$(realpath -m "${AWSCREDD_ROOTFS:-$work/rootfs}")
mkdir -p "$work"

# The root file system: Debian's systemd, rpm (to install the package as on RHEL) and procps.
if [ ! -x "$base/lib/systemd/systemd" ]; then
  mirror=$(sed -n 's/^URIs: *\([^ ]*debian\)$/\1/p; s/^deb \(http[^ ]*debian\) .*/\1/p' \
    /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null | head -n 1 || true)
  rm -rf "$base.tmp"
  timeout 900 debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,procps,rpm,passwd \
    bookworm "$base.tmp" "${mirror:-http://deb.debian.org/debian}" > "$work/debootstrap.log" 2>&1 \
    || { tail -n 20 "$work/debootstrap.log" >&2; fail "debootstrap failed"; }
  mv "$base.tmp" "$base"
fi
root=$work/root
rm -rf "$root"
cp -a "$base" "$root"

# The release-2 RPM for the upgrade: the same files, a new release.
bin=${AWSCREDD_BIN:-$(bash packaging/static.sh | tail -n 1)}
AWSCREDD_BIN="$bin" AWSCREDD_RPM_RELEASE=2 AWSCREDD_RPM_OUT="$work/next" \
  bash packaging/rpm/build.sh >/dev/null
cp "$rpm" "$root/root/awscredd.rpm"
cp "$work/next/awscredd-$version-2.x86_64.rpm" "$root/root/awscredd-2.rpm"

P=(podman --root "$work/storage" --runroot "$work/run" --storage-driver=vfs
  --cgroup-manager=cgroupfs --runtime runc)
name=awscredd-systemd-test-$$
fake_pid=
cleanup() {
  timeout 60 "${P[@]}" rm -f -t 5 "$name" >/dev/null 2>&1 || true
  [ -z "$fake_pid" ] || kill "$fake_pid" 2>/dev/null || true
}
trap cleanup EXIT
ct() { timeout 120 "${P[@]}" exec "$name" "$@"; }
show() { ct systemctl show -p "$2" --value "$1"; }
journal() { ct journalctl --no-pager -o cat -u "$1"; }
# Waits up to $1 seconds for "$2..." to succeed.
until_ok() { local n=$(( $1 * 5 )); shift; while ! "$@" >/dev/null 2>&1; do n=$((n - 1)); [ "$n" -gt 0 ] || return 1; sleep 0.2; done; }

# The fake IAM Identity Center: nobody has signed in; it approves the device code on its 2nd poll.
mkfifo "$work/fake.stdin.$$"
cargo run --quiet --locked --example fake_aws -- --device-flow 2 \
  < "$work/fake.stdin.$$" > "$work/fake.out" 2> "$work/fake.err" &
fake_pid=$!
exec 9> "$work/fake.stdin.$$"
rm -f "$work/fake.stdin.$$"
until_ok 300 grep -q '^url=' "$work/fake.out" || fail "the fake did not start: $(cat "$work/fake.err")"
url=$(sed -n 's/^url=//p' "$work/fake.out")

# Boot. --privileged: systemd needs what a host gives it to set up the sandbox (namespaces).
t0=$(date +%s)
timeout 120 "${P[@]}" run -d --name "$name" --systemd=always --privileged --network=host \
  --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 --rootfs "$root" /lib/systemd/systemd >/dev/null
booted() { case "$(ct systemctl is-system-running 2>/dev/null)" in running|degraded) return 0;; *) return 1;; esac; }
until_ok 90 booted || { ct systemctl --failed --no-pager || true; fail "systemd did not boot in the container"; }
echo "systemd $(ct systemctl --version | sed -n '1s/systemd \([0-9]*\).*/\1/p') booted in $(( $(date +%s) - t0 )) s"

# Install as on RHEL (--nodeps: this root's rpm database does not know Debian's /bin/sh).
ct rpm -i --nodeps /root/awscredd.rpm
[ "$(ct getent passwd awscredd | cut -d: -f6)" = /var/lib/awscredd ] || fail "%pre did not create the awscredd user"
echo "rpm -i: the awscredd user made by systemd-sysusers in %pre: ok"

# The config, a credential_process, an output folder outside the state folder with its drop-in.
cat > "$root/usr/local/bin/legacy-creds" <<'SH'
#!/bin/sh
printf '{"Version": 1, "AccessKeyId": "ASIALEGACY", "SecretAccessKey": "s", "SessionToken": "t", "Expiration": "%s"}\n' "$(date -u -d '1 hour' +%Y-%m-%dT%H:%M:%SZ)"
SH
chmod 0755 "$root/usr/local/bin/legacy-creds"
mkdir -p "$root/srv/app/aws"
ct chown awscredd:awscredd /srv/app/aws
cat > "$root/etc/awscredd/config.toml" <<TOML
[daemon]
login_command = ["/bin/sh", "-c", "echo login_command got code \$AWSCREDD_USER_CODE"]
[[output]]
path = "~/.aws/credentials"
profiles = ["dev"]
[[output]]
path = "/srv/app/aws/credentials"
profiles = ["legacy"]
mode = "0640"
[sso_session.corp]
sso_start_url = "https://corp.awsapps.com/start"
sso_region = "us-east-1"
endpoint_url = "$url"
[profile.dev]
sso_session = "corp"
sso_account_id = "111122223333"
sso_role_name = "Developer"
[profile.legacy]
credential_process = "/usr/local/bin/legacy-creds"
TOML
mkdir -p "$root/etc/systemd/system/awscredd.service.d"
printf '[Service]\nReadWritePaths=/srv/app/aws\n' > "$root/etc/systemd/system/awscredd.service.d/outputs.conf"
ct systemctl daemon-reload

# Start: systemctl returns at READY=1, after the first pass. The device sign-in runs in the
# background (the fake approves it): `dev` is written once it is approved, within seconds.
ct systemctl start awscredd || { journal awscredd | tail -n 30 >&2; fail "systemctl start awscredd"; }
ready_ms() { echo $(( ($(show "$1" ActiveEnterTimestampMonotonic) - $(show "$1" InactiveExitTimestampMonotonic)) / 1000 )); }
first_ms=$(ready_ms awscredd)
[ "$(ct systemctl is-active awscredd)" = active ] || fail "not active"
for _ in $(seq 1 200); do
  ct grep -qs '^aws_session_token' /var/lib/awscredd/.aws/credentials && break
  sleep 0.1
done
log=$(journal awscredd)
grep -q "SSO sign-in needed: open $url/device and enter the code" <<<"$log" || { echo "$log" >&2; fail "no sign-in URL in the journal"; }
grep -q "login_command got code" <<<"$log" || { echo "$log" >&2; fail "login_command did not run in the sandbox"; }
pid=$(show awscredd MainPID)
[ "$(ct ps -o user= -p "$pid")" = awscredd ] || fail "MainPID $pid does not run as awscredd"
[ "$(ct stat -c '%U %a' /var/lib/awscredd/.aws/credentials)" = "awscredd 600" ] || fail "~awscredd/.aws/credentials: $(ct stat -c '%U %a' /var/lib/awscredd/.aws/credentials)"
ct grep -q '^aws_session_token' /var/lib/awscredd/.aws/credentials || fail "no SSO credentials written"
[ "$(ct stat -c '%U %a' /srv/app/aws/credentials)" = "awscredd 640" ] || fail "/srv/app/aws/credentials not written through the drop-in"
ct grep -q ASIALEGACY /srv/app/aws/credentials || fail "no credential_process credentials"
echo "start: active as awscredd, sign-in URL in the journal, credentials written: ok"

# The watchdog: WatchdogSec=60 as shipped; with 3 s (a drop-in), a daemon that did not ping
# every 1.5 s would be killed (SIGABRT) within 5 s: it keeps running, and systemd saw pings.
[ "$(show awscredd WatchdogUSec)" = 1min ] || fail "WatchdogUSec is $(show awscredd WatchdogUSec)"
printf '[Service]\nWatchdogSec=3\n' > "$root/etc/systemd/system/awscredd.service.d/watchdog.conf"
ct systemctl daemon-reload
ct systemctl restart awscredd
wd_pid=$(show awscredd MainPID)
wd_first=$(show awscredd WatchdogTimestampMonotonic)
sleep 5
[ "$(show awscredd MainPID)" = "$wd_pid" ] && [ "$(ct systemctl is-active awscredd)" = active ] \
  || { journal awscredd | tail -n 5 >&2; fail "killed by the watchdog"; }
[ "$(show awscredd WatchdogTimestampMonotonic)" -gt "$wd_first" ] || fail "systemd saw no WATCHDOG=1"
rm "$root/etc/systemd/system/awscredd.service.d/watchdog.conf"
ct systemctl daemon-reload
ct systemctl restart awscredd
pid=$(show awscredd MainPID)
echo "watchdog: alive through 5 s of WatchdogSec=3: ok"

# Reload: SIGHUP, same process, config re-read.
ct systemctl reload awscredd
until_ok 10 grep -q 'config reloaded' <(journal awscredd) || fail "no 'config reloaded' after systemctl reload"
[ "$(show awscredd MainPID)" = "$pid" ] && [ "$(ct systemctl is-active awscredd)" = active ] || fail "reload restarted it"
echo "reload: ok"
ct systemctl kill --kill-who=main -s USR1 awscredd
until_ok 10 grep -q 'refreshing every profile now' <(journal awscredd) || fail "no refresh after SIGUSR1"
[ "$(show awscredd MainPID)" = "$pid" ] || fail "SIGUSR1 restarted it"
echo "systemctl kill -s USR1: refresh now: ok"

# Stop: clean (exit 0, within 2 s), then start again with the token cached: start -> READY=1.
t=$(date +%s%N)
ct systemctl stop awscredd
stop_ms=$(( ($(date +%s%N) - t) / 1000000 ))
[ "$stop_ms" -lt 2000 ] || fail "systemctl stop took $stop_ms ms"
[ "$(show awscredd Result)" = success ] && [ "$(show awscredd ExecMainStatus)" = 0 ] \
  || fail "stop: Result=$(show awscredd Result) status=$(show awscredd ExecMainStatus)"
grep -q 'awscredd stopped' <(journal awscredd) || fail "no clean stop in the journal"
ct systemctl start awscredd
second_ms=$(ready_ms awscredd)
echo "stop: clean in $stop_ms ms; start -> READY=1: $first_ms ms with no token (the sign-in in the background), $second_ms ms with the token cached"

# A bad config exits 78 and is not restarted in a loop.
cp "$root/etc/awscredd/config.toml" "$work/config.good"
echo "[profile.broken" >> "$root/etc/awscredd/config.toml"
ct systemctl restart awscredd 2>/dev/null && fail "a bad config started"
[ "$(show awscredd ExecMainStatus)" = 78 ] && [ "$(show awscredd ActiveState)" = failed ] \
  || fail "bad config: status $(show awscredd ExecMainStatus), state $(show awscredd ActiveState)"
cat "$work/config.good" > "$root/etc/awscredd/config.toml"
ct systemctl reset-failed awscredd
ct systemctl start awscredd
echo "bad config: exit 78, failed, not restarted: ok"

# One daemon per user: awscredd@app runs as app with app's config and writes app's file.
ct useradd -m app
mkdir -p "$root/home/app/.config/awscredd"
printf '[profile.legacy]\ncredential_process = "/usr/local/bin/legacy-creds"\n' > "$root/home/app/.config/awscredd/config.toml"
ct chown -R app:app /home/app/.config
ct systemctl start awscredd@app || { journal awscredd@app | tail -n 20 >&2; fail "systemctl start awscredd@app"; }
[ "$(ct ps -o user= -p "$(show awscredd@app MainPID)")" = app ] || fail "awscredd@app does not run as app"
[ "$(ct stat -c '%U %a' /home/app/.aws/credentials)" = "app 600" ] || fail "awscredd@app did not write ~app/.aws/credentials"
echo "awscredd@app: as app, ~app/.aws/credentials written, start -> READY=1 $(ready_ms awscredd@app) ms: ok"

# Upgrade: %postun try-restarts what runs.
pid=$(show awscredd MainPID)
app_pid=$(show awscredd@app MainPID)
ct rpm -U --nodeps /root/awscredd-2.rpm
until_ok 30 test "$(show awscredd MainPID)" != "$pid" || fail "the upgrade did not restart awscredd"
until_ok 30 test "$(show awscredd@app MainPID)" != "$app_pid" || fail "the upgrade did not restart awscredd@app"
until_ok 30 test "$(ct systemctl is-active awscredd)" = active || fail "not active after the upgrade"
echo "upgrade: services restarted: ok"

# Erase: %preun stops and disables them; the units are gone.
ct systemctl enable awscredd awscredd@app >/dev/null 2>&1
ct rpm -e --nodeps awscredd
[ "$(ct systemctl is-active awscredd)" != active ] || fail "awscredd still runs after rpm -e"
[ "$(ct systemctl is-active awscredd@app)" != active ] || fail "awscredd@app still runs after rpm -e"
ct test ! -e /usr/lib/systemd/system/awscredd.service || fail "the unit is still there"
ct sh -c '! ls /etc/systemd/system/*.wants/awscredd* 2>/dev/null' || fail "enablement links left behind"
echo "erase: stopped and disabled: ok"
echo "podman test: ok"
