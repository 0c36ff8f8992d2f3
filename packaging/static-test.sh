#!/usr/bin/env bash
# Checks the static binary of packaging/static.sh where it will run: alone, in roots that hold
# nothing but what each check puts there (no shared library, no NSS module, no CA bundle).
#
#   bash packaging/static-test.sh [BINARY]    # default: builds it; root (chroot, chown)
#   KEEP=1 bash packaging/static-test.sh ...  # keeps the roots and logs (printed at the end)
#
# 1. `file` says static, and the size is within the 15 MiB target.
# 2. An empty root: --version and check run.
# 3. [[output]] owner/group names resolve from the root's /etc/passwd and /etc/group with no
#    NSS library, and a once pass (credential_process: busybox's cat) writes with them.
# 4. With /etc/nsswitch.conf listing `sss` (RHEL's authselect default), check warns about a
#    name and says to use the numeric id; not for numeric ids.
# 5. TLS and DNS: an SSO refresh over HTTPS (a local TLS front, test CA, in front of the
#    bundled fake IAM Identity Center), to a name that only a DNS server in the root's
#    /etc/resolv.conf knows, succeeds with the CA in SSL_CERT_FILE, and fails with another CA
#    or with no CA bundle at all ("no native root CA certificates found").
set -euo pipefail
cd "$(dirname "$0")/.."
fail() { echo "static test: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "needs root (chroot)"
bin=${1:-$(bash packaging/static.sh | tail -n 1)}
bin=$(realpath "$bin")
busybox=$(command -v busybox) || fail "needs busybox-static"
chroot=$(command -v chroot) || fail "needs chroot"
file -b "$busybox" | grep -q 'statically linked' || fail "$busybox is not static (apt-get install busybox-static)"

# 1.
desc=$(file -b "$bin")
case "$desc" in
  *"static-pie linked"* | *"statically linked"*) ;;
  *) fail "$bin is not static: $desc" ;;
esac
size=$(stat -c %s "$bin")
echo "binary: $desc; $size bytes ($(awk "BEGIN {printf \"%.1f\", $size / 1048576}") MiB)"
[ "$size" -le $((15 * 1024 * 1024)) ] || fail "larger than 15 MiB"

tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  exec 9>&- 2>/dev/null || true
  if [ -n "${KEEP:-}" ]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
# A root holding only the binary (and /dev/null, which child processes get as stdin).
new_root() {
  local r=$tmp/$1
  mkdir -p "$r/dev" "$r/home"
  mknod -m 0666 "$r/dev/null" c 1 3
  cp "$bin" "$r/awscredd"
  echo "$r"
}
in_root() { local r=$1; shift; env -i HOME=/home PATH=/bin "$chroot" "$r" /awscredd "$@"; }

# 2.
r=$(new_root empty)
in_root "$r" --version | grep -qx "awscredd [0-9.]*" || fail "--version in an empty root"
printf '[daemon]\nstate_dir = "/state"\n[profile.p]\ncredential_process = "/bin/cat /creds.json"\n' > "$r/config.toml"
in_root "$r" --config /config.toml check >/dev/null || fail "check in an empty root"
echo "empty root: ok ($(ls "$r" | tr '\n' ' '))"

# 3.
r=$(new_root names)
mkdir -p "$r/bin" "$r/etc" "$r/out"
cp "$busybox" "$r/bin/cat"
printf 'root:x:0:0::/root:/bin/sh\napp:x:4242:4242::/home:/bin/sh\n' > "$r/etc/passwd"
printf 'root:x:0:\napps:x:4343:\n' > "$r/etc/group"
exp=$(date -u -d '1 hour' +%Y-%m-%dT%H:%M:%SZ)
printf '{"Version": 1, "AccessKeyId": "ASIASTATIC", "SecretAccessKey": "s", "SessionToken": "t", "Expiration": "%s"}\n' "$exp" > "$r/creds.json"
cat > "$r/config.toml" <<TOML
[daemon]
state_dir = "/state"
[[output]]
path = "/out/credentials"
mode = "0640"
owner = "app"
group = "apps"
[profile.p]
credential_process = "/bin/cat /creds.json"
TOML
in_root "$r" --config /config.toml once 2>"$tmp/names.log" || { cat "$tmp/names.log" >&2; fail "once with owner/group names"; }
[ "$(stat -c '%u:%g %a' "$r/out/credentials")" = "4242:4343 640" ] \
  || fail "owner/group not applied: $(stat -c '%u:%g %a' "$r/out/credentials")"
grep -q ASIASTATIC "$r/out/credentials" || fail "no credentials written"
find "$r" -name 'libnss*' | grep -q . && fail "an NSS library in the root"
echo "owner/group names from /etc/passwd and /etc/group, no NSS library: ok"

# 4.
printf 'passwd:     sss files systemd\ngroup:      sss files systemd\nhosts:      files dns\n' > "$r/etc/nsswitch.conf"
out=$(in_root "$r" --config /config.toml check 2>&1) || fail "check with sss: $out"
printf '%s\n' "$out" | grep -q 'owner `app` is a name.*sss.*use the numeric id' || fail "no sss warning for owner: $out"
printf '%s\n' "$out" | grep -q 'group `apps` is a name.*sss' || fail "no sss warning for group: $out"
sed -i 's/^owner = .*/owner = 4242/; s/^group = .*/group = 4343/' "$r/config.toml"
out=$(in_root "$r" --config /config.toml check 2>&1) || fail "check with numeric ids: $out"
printf '%s\n' "$out" | grep -q 'sss' && fail "an sss warning for numeric ids: $out"
echo "check warns about names when nsswitch.conf lists sss: ok"

# 5.
r=$(new_root tls)
mkdir -p "$r/etc"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=awscredd test CA" \
  -keyout "$tmp/ca.key" -out "$r/ca.pem" 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=another CA" \
  -keyout "$tmp/other.key" -out "$r/other.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=sso.awscredd.test" -keyout "$tmp/server.key" \
  -out "$tmp/server.csr" 2>/dev/null
printf 'subjectAltName=DNS:sso.awscredd.test\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > "$tmp/ext"
openssl x509 -req -in "$tmp/server.csr" -CA "$r/ca.pem" -CAkey "$tmp/ca.key" -CAcreateserial \
  -days 2 -extfile "$tmp/ext" -out "$tmp/server.pem" 2>/dev/null
# The fake IAM Identity Center, with a signed-in session in the root's token cache; it serves
# until its stdin (a FIFO held open on fd 9) closes.
mkfifo "$tmp/fake.stdin"
cargo run --quiet --locked --example fake_aws -- "$r/home" corp https://corp.awsapps.com/start us-east-1 \
  < "$tmp/fake.stdin" > "$tmp/fake.out" 2>"$tmp/fake.err" &
pids+=($!)
exec 9>"$tmp/fake.stdin"
for _ in $(seq 600); do grep -q '^url=' "$tmp/fake.out" && break; sleep 0.5; done
fake=$(sed -n 's#^url=http://127.0.0.1:\([0-9]*\).*#\1#p' "$tmp/fake.out")
[ -n "$fake" ] || fail "the fake did not start: $(cat "$tmp/fake.err")"
python3 packaging/tls-forward.py "$tmp/server.pem" "$tmp/server.key" "$fake" > "$tmp/tls.port" 2>"$tmp/tls.err" &
pids+=($!)
for _ in $(seq 100); do [ -s "$tmp/tls.port" ] && break; sleep 0.1; done
port=$(cat "$tmp/tls.port")
[ -n "$port" ] || fail "the TLS front did not start: $(cat "$tmp/tls.err")"
# The endpoint by name, resolved only through the root's /etc/resolv.conf (no /etc/hosts).
python3 packaging/fake-dns.py > "$tmp/dns.out" 2>"$tmp/dns.err" &
pids+=($!)
for _ in $(seq 100); do [ -s "$tmp/dns.out" ] && break; sleep 0.1; done
grep -q ready "$tmp/dns.out" || fail "the DNS server did not start (is 127.0.0.1:53 taken?): $(cat "$tmp/dns.err")"
echo "nameserver 127.0.0.1" > "$r/etc/resolv.conf"
echo "hosts: dns" > "$r/etc/nsswitch.conf"
cat > "$r/config.toml" <<TOML
[daemon]
state_dir = "/state"
[[output]]
path = "/out/credentials"
[sso_session.corp]
sso_start_url = "https://corp.awsapps.com/start"
sso_region = "us-east-1"
endpoint_url = "https://sso.awscredd.test:$port"
[profile.dev]
sso_session = "corp"
sso_account_id = "111122223333"
sso_role_name = "Developer"
TOML
if env -i HOME=/home SSL_CERT_FILE=/other.pem "$chroot" "$r" /awscredd --config /config.toml once --no-login >"$tmp/other.log" 2>&1; then
  fail "an HTTPS call succeeded with a CA that did not sign the server's certificate"
fi
grep -q 'invalid peer certificate: UnknownIssuer' "$tmp/other.log" || { cat "$tmp/other.log" >&2; fail "no TLS error reported"; }
[ ! -s "$r/out/credentials" ] || fail "credentials written without a trusted certificate"
# No bundle at all in the root (and no SSL_CERT_FILE): rustls-native-certs says so.
if env -i HOME=/home "$chroot" "$r" /awscredd --config /config.toml once --no-login >"$tmp/none.log" 2>&1; then
  fail "an HTTPS call succeeded without any CA certificate"
fi
grep -q 'no native root CA certificates found' "$tmp/none.log" || { cat "$tmp/none.log" >&2; fail "no warning without a CA bundle"; }
env -i HOME=/home SSL_CERT_FILE=/ca.pem "$chroot" "$r" /awscredd --config /config.toml once --no-login >"$tmp/ca.log" 2>&1 \
  || { cat "$tmp/ca.log" >&2; fail "the HTTPS call failed with the test CA in SSL_CERT_FILE"; }
grep -q '^aws_session_token' "$r/out/credentials" || fail "no SSO role credentials written over HTTPS"
grep -q 'query from' "$tmp/dns.err" || fail "the name was not resolved through /etc/resolv.conf"
echo "HTTPS to a name resolved through /etc/resolv.conf, with a test CA through SSL_CERT_FILE (refused with another CA or none): ok"
echo "static test: ok"
