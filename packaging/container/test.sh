#!/usr/bin/env bash
# End-to-end test of the sidecar image with podman, against the bundled fake IAM Identity
# Center (examples/fake_aws.rs) on 127.0.0.1:
#
#   1. builds the image (build.sh: Containerfile, from the static binary of packaging/static.sh,
#      which cargo does not rebuild when it is fresh) and checks its size (<= 20 MB), user,
#      entrypoint, command, and that it has no HEALTHCHECK; builds the final stage of
#      Containerfile.multistage from the same context and compares the two images;
#   2. prepares an SSO token cache in a named state volume, runs the sidecar with the host
#      network and a read-only root file system, writing /shared/credentials (mode 0640) into
#      a second named volume; measures the time from container start to the first credentials
#      written, and the sidecar's RSS after that first pass;
#   3. a reader container (FROM scratch + Debian's busybox-static, uid 1000 in the shared
#      group 65532, the volume read-only) reads the file, is refused without the group, and
#      sees the credentials change after a refresh (SIGUSR1);
#   4. `awscredd status` in the running sidecar (the startupProbe), /healthz, and /profiles/app
#      from a container in the sidecar's network namespace with the token from the shared
#      volume (the compose/pod variant that uses the endpoint);
#   5. `podman stop` -> exit status 0, timed; the logs are JSON lines with no secret in them;
#      a sidecar with an empty state volume logs the sign-in URL and code, reports
#      waiting_for_login, and stops with 0 too;
#   6. TLS through the image's CA bundle path: trusted with a test CA mounted there, refused
#      with Debian's bundle;
#   7. compose.yaml brought up with podman-compose (both variants), checked, stopped (exit 0),
#      brought down; with a bad config, awscredd exits 78 and is restarted at most 3 times;
#   8. kubernetes.yaml validated against the Kubernetes schemas (kubernetes-validate), its
#      promises checked, and the config of its ConfigMap and compose's config.toml checked with
#      `awscredd check` inside the image.
#
#   bash packaging/container/test.sh
#
# Podman runs with its own storage (vfs) and settings under target/container-test, so nothing
# of the machine's podman is touched. As root (CI) it installs what is missing with apt and pip
# (a venv under target/). Every wait is bounded; every container, volume and process it starts
# is removed on exit. Environment: AWSCREDD_BINARY (a static binary to use, see build.sh),
# FAKE_AWS (the fake's binary; default: cargo build --example fake_aws).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
here=$root/packaging/container
work=$root/target/container-test
mkdir -p "$work"
run_id=awscredd-test-$$
say() { echo "container-test: $*" >&2; }
fail() { say "FAIL: $*"; exit 1; }
now() { date +%s.%N; }
elapsed() { python3 -c 'import sys; print(f"{float(sys.argv[2]) - float(sys.argv[1]):.3f}")' "$1" "$2"; }

# ---- what it needs
[ "$(id -u)" = 0 ] || fail "run as root: rootful podman, and the test reads the volumes and the sidecar's /proc from the host"
need_apt=()
command -v podman >/dev/null || need_apt+=(podman)
command -v runc >/dev/null || need_apt+=(runc)
[ -x /bin/busybox ] || need_apt+=(busybox-static)
[ -s /etc/ssl/certs/ca-certificates.crt ] || need_apt+=(ca-certificates)
command -v file >/dev/null || need_apt+=(file)
command -v openssl >/dev/null || need_apt+=(openssl)
if [ ${#need_apt[@]} -gt 0 ]; then
  say "installing ${need_apt[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
venv=$root/target/container-venv
if ! "$venv/bin/pip" install -q --disable-pip-version-check --no-index -r "$here/requirements.txt" 2>/dev/null; then
  say "installing podman-compose and kubernetes-validate into $venv"
  python3 -m venv "$venv" || { apt-get install -y -qq python3-venv >/dev/null && python3 -m venv "$venv"; }
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements.txt"
fi

# Podman's own storage and settings for this test (the recipe that works on these machines:
# vfs, cgroupfs, runc, and default ulimits the containers need).
cat >"$work/storage.conf" <<EOF
[storage]
driver = "vfs"
graphroot = "$work/storage"
runroot = "$work/run"
EOF
cat >"$work/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
events_logger = "file"
EOF
export CONTAINERS_STORAGE_CONF=$work/storage.conf CONTAINERS_CONF=$work/containers.conf
# Every podman call of this script is bounded (the explicit `timeout N podman` ones tighter).
podman_bin=$(command -v podman)
podman() { timeout 120 "$podman_bin" "$@"; }

# ---- cleanup: only what this run started
fake_pid='' fake_in='' compose_up='' proxy_pid=''
containers=() volumes=()
compose() {
  timeout 180 "$venv/bin/podman-compose" -p "$run_id" -f "$here/compose.yaml" -f "$work/compose.test.yaml" "$@"
}
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [ -n "$compose_up" ]; then
    compose down -v -t 5 >"$work/compose-down.log" 2>&1 || say "compose down failed (see $work/compose-down.log)"
  fi
  for c in "${containers[@]}"; do timeout 30 podman rm -f -t 2 "$c" >/dev/null 2>&1 || true; done
  for v in "${volumes[@]}"; do timeout 30 podman volume rm -f "$v" >/dev/null 2>&1 || true; done
  timeout 60 podman image prune -f >/dev/null 2>&1 || true  # the untagged images of earlier builds (our own storage)
  if [ -n "$proxy_pid" ]; then kill "$proxy_pid" 2>/dev/null; wait "$proxy_pid" 2>/dev/null || true; fi
  if [ -n "$fake_pid" ] && kill -0 "$fake_pid" 2>/dev/null; then
    { printf 'stop\n' >&"$fake_in"; } 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$fake_pid" 2>/dev/null || break; sleep 0.1; done
    kill "$fake_pid" 2>/dev/null || true
    wait "$fake_pid" 2>/dev/null || true
  fi
  if [ "$status" = 0 ]; then say "PASS"; else say "FAILED (status $status); logs in $work"; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Waits up to $1 seconds for the command after it to succeed.
wait_for() {
  local limit=$1; shift
  local deadline=$(( $(date +%s) + limit ))
  until "$@"; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.05
  done
}

# ---- 1. the image
say "building the image (build.sh)"
PODMAN="timeout 300 $podman_bin" bash "$here/build.sh" >"$work/build.log" 2>&1 || { cat "$work/build.log" >&2; fail "build.sh failed"; }
image=localhost/awscredd:latest
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
podman image exists "localhost/awscredd:$version" || fail "no tag localhost/awscredd:$version"
podman image inspect "$image" >"$work/image.json"
size=$(podman image inspect --format '{{.Size}}' "$image")
compressed=$(podman save "$image" 2>/dev/null | gzip -6 -c | wc -c)
python3 - "$work/image.json" "$size" "$version" <<'EOF' || fail "the image is not what Containerfile promises"
import json, sys
img = json.load(open(sys.argv[1]))[0]
cfg = img["Config"]
size = int(sys.argv[2])
problems = []
if size > 20_000_000: problems.append(f"{size} bytes, over 20 MB")
if cfg.get("User") != "65532:65532": problems.append(f"user {cfg.get('User')!r}")
if cfg.get("Entrypoint") != ["/usr/bin/awscredd"]: problems.append(f"entrypoint {cfg.get('Entrypoint')!r}")
if cfg.get("Cmd") != ["run"]: problems.append(f"cmd {cfg.get('Cmd')!r}")
if cfg.get("Healthcheck") or img.get("HealthCheck"): problems.append("a HEALTHCHECK")
label = (cfg.get("Labels") or {}).get("org.opencontainers.image.version")
if label != sys.argv[3]: problems.append(f"version label {label!r}")
env = dict(e.split("=", 1) for e in cfg.get("Env", []))
for k, v in {"HOME": "/var/lib/awscredd", "XDG_STATE_HOME": "/var/lib/awscredd/state",
             "AWSCREDD_CONFIG": "/etc/awscredd/config.toml"}.items():
    if env.get(k) != v: problems.append(f"{k}={env.get(k)!r}")
if problems:
    print("image: " + "; ".join(problems), file=sys.stderr)
    sys.exit(1)
EOF
say "image $image: $size bytes ($(( size / 1024 )) KiB), $compressed bytes gzipped"

# The reader: FROM scratch with Debian's static busybox.
mkdir -p "$work/reader"
cp /bin/busybox "$work/reader/busybox"
printf 'FROM scratch\nCOPY busybox /bin/busybox\nENTRYPOINT ["/bin/busybox"]\n' >"$work/reader/Containerfile"
podman build -q -t localhost/awscredd-test-reader:latest "$work/reader" >/dev/null
reader=localhost/awscredd-test-reader:latest

# The multi-stage variant cannot be built here (no registry for rust:1.85), but its final
# stage can: with its builder stage replaced by an image holding the context staged above (as
# the builder's stage.sh would lay it out), it must give the same files and the same config.
mkdir -p "$work/multistage"
rm -rf "$work/multistage/context" && cp -a target/container/context "$work/multistage/context"
printf 'FROM scratch\nCOPY context/ /context/\n' >"$work/multistage/Containerfile.builder"
podman build -q -f "$work/multistage/Containerfile.builder" -t localhost/awscredd-test-builder:latest \
  "$work/multistage" >/dev/null
sed -n '/^FROM scratch/,$p' "$here/Containerfile.multistage" \
  | sed '1i FROM localhost/awscredd-test-builder:latest AS build' >"$work/multistage/Containerfile"
grep -q -- '--from=build' "$work/multistage/Containerfile" || fail "Containerfile.multistage has no final stage copying from its builder"
podman build -q --build-arg "VERSION=$version" -f "$work/multistage/Containerfile" \
  -t localhost/awscredd-test-multistage:latest "$work/multistage" >/dev/null
tree() {
  podman run --rm --network=none -v /bin/busybox:/busybox:ro --entrypoint /busybox --user 0:0 "$1" \
    find /etc/passwd /etc/group /etc/ssl /etc/awscredd /usr /var /shared -exec /busybox stat -c '%n %a %u %g %s' {} +
}
conf() { podman image inspect --format '{{json .Config.Entrypoint}} {{json .Config.Cmd}} {{json .Config.Env}} {{.Config.User}} {{json .Config.Volumes}} {{.Config.WorkingDir}} {{json .Config.Labels}}' "$1"; }
image_tree=$(tree "$image")
for want in "/usr/bin/awscredd 755 0 0" "/etc/ssl/certs/ca-certificates.crt 644 0 0" "/etc/passwd 644 0 0" \
    "/etc/awscredd 755 0 0" "/var/lib 755 0 0" "/var/lib/awscredd 700 65532 65532 " "/shared 750 65532 65532 "; do
  grep -q "^$want" <<<"$image_tree" || { echo "$image_tree" >&2; fail "the image lacks '$want' (path mode uid gid)"; }
done
if [ "$image_tree" != "$(tree localhost/awscredd-test-multistage:latest)" ] \
   || [ "$(conf "$image")" != "$(conf localhost/awscredd-test-multistage:latest)" ]; then
  diff <(tree "$image"; conf "$image") <(tree localhost/awscredd-test-multistage:latest; conf localhost/awscredd-test-multistage:latest) >&2 || true
  fail "Containerfile.multistage's final stage gives another image than Containerfile"
fi
say "Containerfile.multistage's final stage gives the same files and config (its builder stage is not run here)"

# ---- 2. the fake, the volumes, the sidecar
fake=${FAKE_AWS:-}
if [ -z "$fake" ]; then
  say "building the fake (cargo build --example fake_aws)"
  cargo build --quiet --example fake_aws
  fake=${CARGO_TARGET_DIR:-$root/target}/debug/examples/fake_aws
fi
state=$run_id-state shared=$run_id-shared
volumes+=("$state")
podman volume create "$state" >/dev/null
volumes+=("$shared")
podman volume create "$shared" >/dev/null
state_dir=$(podman volume inspect --format '{{.Mountpoint}}' "$state")
shared_dir=$(podman volume inspect --format '{{.Mountpoint}}' "$shared")

# The fake writes a signed-in token cache into the state volume, as `aws sso login` would
# have (HOME=/var/lib/awscredd in the image: .aws/sso/cache/<sha1 of "corp">.json).
coproc FAKE { exec "$fake" "$state_dir" corp https://example.awsapps.com/start us-east-1 2>"$work/fake.err"; }
# shellcheck disable=SC2153 # FAKE_PID is set by coproc
fake_pid=$FAKE_PID
exec {fake_out}<&"${FAKE[0]}" {fake_in}>&"${FAKE[1]}"
line=
read -r -t 30 line <&"$fake_out" || { cat "$work/fake.err" >&2; fail "the fake did not start within 30 s"; }
[[ $line =~ ^url=(http://127\.0\.0\.1:[0-9]+)\  ]] || fail "unexpected line from the fake: $line"
url=${BASH_REMATCH[1]}
chown -R 65532:65532 "$state_dir"
chmod 0700 "$state_dir"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# The shipped example config, pointed at the fake and the free port.
sed -e "s|^sso_start_url = .*|sso_start_url = \"https://example.awsapps.com/start\"\nendpoint_url = \"$url\"|" \
    -e "s|^listen = .*|listen = \"127.0.0.1:$port\"|" "$here/config.toml" >"$work/config.toml"
grep -q "endpoint_url = \"$url\"" "$work/config.toml" || fail "could not point config.toml at the fake"
chmod 0644 "$work/config.toml"

sidecar=$run_id-sidecar
say "starting the sidecar (fake at $url, server on 127.0.0.1:$port)"
containers+=("$sidecar")
t_run=$(now)
podman run -d --name "$sidecar" --network=host --read-only \
  -v "$work/config.toml:/etc/awscredd/config.toml:ro" \
  -v "$state:/var/lib/awscredd" -v "$shared:/shared" \
  "$image" --log-format json run >/dev/null
creds=$shared_dir/credentials
has_creds() { grep -q '^aws_access_key_id = ' "$creds" 2>/dev/null; }
wait_for 30 has_creds || { podman logs "$sidecar" >&2 || true; fail "no credentials in the shared volume within 30 s"; }
t_seen=$(now)
pid=$(podman inspect --format '{{.State.Pid}}' "$sidecar")
# From the kernel's start time of the sidecar's process (the container's PID 1, in clock
# ticks since boot) to the modification time of the credentials file.
written=$(stat -c %.9Y "$creds")
to_first=$(python3 - "$pid" "$written" <<'EOF'
import os, sys, time
ticks = os.sysconf("SC_CLK_TCK")
start = int(open(f"/proc/{sys.argv[1]}/stat").read().rsplit(")", 1)[1].split()[19]) / ticks
boot = time.time() - float(open("/proc/uptime").read().split()[0])
print(f"{float(sys.argv[2]) - (boot + start):.3f}")
EOF
)
sleep 0.5  # let the first pass finish (state.json, the server) before measuring memory
rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")
say "first credentials written $to_first s after the sidecar's process started ($(elapsed "$t_run" "$t_seen") s after \`podman run\` was called)"
say "sidecar RSS after its first pass: $rss KiB (peak $hwm KiB)"

perm=$(stat -c '%a %u %g' "$creds")
[ "$perm" = "640 65532 65532" ] || fail "credentials file is $perm, want mode 640, owner 65532, group 65532"
[ "$(stat -c "%a %u" "$shared_dir")" = "750 65532" ] || fail "shared volume is $(stat -c "%a %u" "$shared_dir"), want 750 owned by 65532 (copied from the image)"
key1=$(sed -n 's/^aws_access_key_id = //p' "$creds")

# ---- 3. the reader: another uid in the shared group, the volume read-only
reader_run() { podman run --rm --network=none --read-only -v "$shared:/shared:ro" "$@"; }
got=$(reader_run --user 1000:1000 --group-add 65532 "$reader" sh -c \
  'sed -n "s/^aws_access_key_id = //p" /shared/credentials') || fail "the reader in the shared group cannot read the file"
[ "$got" = "$key1" ] || fail "the reader read key id '$got', the file holds '$key1'"
if reader_run --user 1000:1000 "$reader" cat /shared/credentials >/dev/null 2>&1; then
  fail "a uid outside the shared group can read the credentials file"
fi
if reader_run --user 1000:1000 --group-add 65532 "$reader" touch /shared/x 2>/dev/null; then
  fail "the reader could write into the read-only volume"
fi
reader_c=$run_id-reader
containers+=("$reader_c")
podman run -d --name "$reader_c" --network=none --read-only --user 1000:1000 --group-add 65532 \
  -v "$shared:/shared:ro" "$reader" sh -c '
    first=; i=0
    while [ $i -lt 600 ]; do
      k=$(sed -n "s/^aws_access_key_id = //p" /shared/credentials)
      if [ -z "$first" ]; then first=$k; echo "first $k"
      elif [ -n "$k" ] && [ "$k" != "$first" ]; then echo "changed $k"; exit 0; fi
      i=$((i + 1)); sleep 0.1
    done
    echo "no change in 60 s"; exit 1' >/dev/null
reader_saw_first() { podman logs "$reader_c" 2>/dev/null | grep -q '^first '; }
wait_for 20 reader_saw_first || fail "the reader did not start reading within 20 s"
podman kill --signal USR1 "$sidecar" >/dev/null
code=$(timeout 70 podman wait "$reader_c") || fail "the reader did not end within 70 s"
podman logs "$reader_c" >"$work/reader.log" 2>&1
[ "$code" = 0 ] || { cat "$work/reader.log" >&2; fail "the reader did not see the credentials change"; }
key2=$(sed -n 's/^aws_access_key_id = //p' "$creds")
if ! grep -qx "first $key1" "$work/reader.log" || ! grep -qx "changed $key2" "$work/reader.log"; then
  cat "$work/reader.log" >&2; fail "the reader saw other keys than the file's ($key1 then $key2)"
fi
say "reader (uid 1000, group 65532, read-only) saw $key1, then $key2 after SIGUSR1"

# ---- 4. the probes (kubernetes.yaml's startupProbe, /healthz) and the endpoint from the
# sidecar's network namespace
timeout 30 podman exec "$sidecar" /usr/bin/awscredd status >"$work/status.log" 2>&1 \
  || { cat "$work/status.log" >&2; fail "awscredd status (the startupProbe) fails in the running sidecar"; }
# ... and fails in a sidecar that has written nothing yet (empty volumes, no network).
if timeout 30 podman run --rm --network=none --read-only -v "$work/config.toml:/etc/awscredd/config.toml:ro" \
    "$image" status >"$work/status-empty.log" 2>&1; then
  fail "awscredd status (the startupProbe) succeeds before any credentials were written"
fi
health=$(timeout 10 python3 -c 'import sys, urllib.request; r = urllib.request.urlopen(sys.argv[1], timeout=5); print(r.status, r.read().decode())' \
  "http://127.0.0.1:$port/healthz") || fail "/healthz did not answer"
[ "$health" = '200 {"status":"ok"}' ] || fail "/healthz answered $health"
served=$(podman run --rm --network "container:$sidecar" --read-only --user 65532:65532 \
  -v "$shared:/shared:ro" "$reader" sh -c \
  'wget -q -O - --header "Authorization: $(cat /shared/awscredd-server-token)" http://127.0.0.1:'"$port"'/profiles/app') \
  || fail "the endpoint did not serve /profiles/app to a container in the sidecar's network namespace"
case $served in *"\"AccessKeyId\":\"$key2\""*) ;; *) fail "the endpoint served something else than $key2";; esac
say "status (startupProbe): exit 0; /healthz: $health; /profiles/app served $key2 inside the sidecar's network namespace"

# ---- 5. podman stop -> 0, and JSON logs without secrets
t_stop=$(now)
timeout 30 podman stop -t 10 "$sidecar" >/dev/null
stop_secs=$(elapsed "$t_stop" "$(now)")
code=$(podman inspect --format '{{.State.ExitCode}}' "$sidecar")
[ "$code" = 0 ] || fail "the sidecar exited with $code after podman stop"
python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) < 5 else 1)" "$stop_secs" \
  || fail "podman stop took $stop_secs s (the SIGTERM was not honoured quickly)"
say "podman stop: exit status 0 after $stop_secs s"
podman logs "$sidecar" >"$work/sidecar.log" 2>&1
python3 - "$work/sidecar.log" "$creds" "$state_dir" <<'EOF' || fail "the logs are not clean JSON lines"
import glob, json, os, re, sys
lines = [l for l in open(sys.argv[1]).read().splitlines() if l.strip()]
if not lines: sys.exit("no log lines")
for l in lines:
    e = json.loads(l)   # raises on a line that is not JSON
    if "level" not in e or "timestamp" not in e: sys.exit(f"not a log event: {l}")
secrets = re.findall(r"^aws_(?:secret_access_key|session_token) = (.+)$", open(sys.argv[2]).read(), re.M)
for f in glob.glob(os.path.join(sys.argv[3], ".aws/sso/cache/*.json")):
    c = json.load(open(f))
    secrets += [c[k] for k in ("accessToken", "refreshToken", "clientSecret") if c.get(k)]
text = open(sys.argv[1]).read()
leaked = [s for s in secrets if s in text]
if leaked or not secrets: sys.exit(f"{len(leaked)} secrets in the logs (of {len(secrets)})")
EOF
say "logs: $(wc -l <"$work/sidecar.log") JSON lines, no secret in them"

# ---- 5b. the first sign-in, headless: with no token in its state volume the sidecar starts a
# device authorization and logs the URL and code (for `podman logs`/`kubectl logs`); the
# startupProbe reports waiting_for_login; a stop while it waits for a human still ends it with 0.
fresh=$run_id-fresh
volumes+=("$fresh-state")
podman volume create "$fresh-state" >/dev/null
volumes+=("$fresh-shared")
podman volume create "$fresh-shared" >/dev/null
containers+=("$fresh")
podman run -d --name "$fresh" --network=host --read-only \
  -v "$work/config.toml:/etc/awscredd/config.toml:ro" \
  -v "$fresh-state:/var/lib/awscredd" -v "$fresh-shared:/shared" \
  "$image" --log-format json run >/dev/null
asks_for_sign_in() { podman logs "$fresh" 2>&1 | grep '"user_code"' | grep -q '"verification_uri"'; }
wait_for 20 asks_for_sign_in || { podman logs "$fresh" >&2 || true; fail "no sign-in URL and code in the logs within 20 s"; }
if timeout 30 podman exec "$fresh" /usr/bin/awscredd status >"$work/status-fresh.log" 2>&1; then
  fail "awscredd status (the startupProbe) succeeds while the sidecar waits for a sign-in"
fi
grep -q waiting_for_login "$work/status-fresh.log" || { cat "$work/status-fresh.log" >&2; fail "status does not say waiting_for_login"; }
t_stop=$(now)
timeout 30 podman stop -t 10 "$fresh" >/dev/null
fresh_stop=$(elapsed "$t_stop" "$(now)")
code=$(podman inspect --format '{{.State.ExitCode}}' "$fresh")
[ "$code" = 0 ] || fail "the sidecar waiting for a sign-in exited with $code after podman stop"
python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) < 5 else 1)" "$fresh_stop" \
  || fail "podman stop took $fresh_stop s while the sidecar waited for a sign-in"
say "first sign-in: URL and code logged (JSON), status waiting_for_login; podman stop while waiting: exit 0 after $fresh_stop s"

# ---- 6. TLS: the binary trusts the roots at /etc/ssl/certs/ca-certificates.crt
# A TLS proxy on 127.0.0.1 in front of the fake, with a certificate from a CA made here:
# `once` in the image reaches it when that CA is mounted over the image's bundle, and is
# refused with the image's own (Debian's) bundle, which does not hold it.
tls=$work/tls
rm -rf "$tls" && mkdir -p "$tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=awscredd-test-ca \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
  -keyout "$tls/ca.key" -out "$tls/ca.crt" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
  -keyout "$tls/server.key" -out "$tls/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$tls/ext"
openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.crt" -CAkey "$tls/ca.key" -CAcreateserial \
  -days 1 -extfile "$tls/ext" -out "$tls/server.crt" 2>/dev/null
cat >"$tls/proxy.py" <<'EOF'
# TLS in front of the fake: forwards every request as it is; stops by itself after 300 s.
import http.client, http.server, ssl, sys, threading, urllib.parse
up = urllib.parse.urlsplit(sys.argv[1])
class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def forward(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else None
        c = http.client.HTTPConnection(up.hostname, up.port, timeout=10)
        c.request(self.command, self.path, body=body, headers={
            k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")})
        r = c.getresponse()
        data = r.read()
        self.send_response(r.status)
        for k, v in r.getheaders():
            if k.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    do_GET = do_POST = do_PUT = forward
    def log_message(self, *args):
        pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[2], sys.argv[3])
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print(srv.server_address[1], flush=True)
threading.Timer(300, srv.shutdown).start()
srv.serve_forever()
EOF
python3 "$tls/proxy.py" "$url" "$tls/server.crt" "$tls/server.key" >"$tls/port" 2>"$tls/proxy.err" &
proxy_pid=$!
proxy_port_known() { [ -s "$tls/port" ]; }
wait_for 20 proxy_port_known || { cat "$tls/proxy.err" >&2; fail "the TLS proxy did not start within 20 s"; }
tls_port=$(head -n 1 "$tls/port")
sed -e "s|^endpoint_url = .*|endpoint_url = \"https://127.0.0.1:$tls_port\"|" -e '/^\[server\]/,$d' \
  "$work/config.toml" >"$tls/config.toml"
chmod 0644 "$tls/config.toml" "$tls/ca.crt"
mkdir -m 0700 "$tls/out" && chown 65532:65532 "$tls/out"
tls_once() {
  timeout 60 podman run --rm --network=host --read-only -v "$tls/config.toml:/etc/awscredd/config.toml:ro" \
    -v "$state:/var/lib/awscredd" -v "$tls/out:/shared" "$@" \
    "$image" once --force
}
tls_once -v "$tls/ca.crt:/etc/ssl/certs/ca-certificates.crt:ro" >"$tls/trusted.log" 2>&1 \
  || { cat "$tls/trusted.log" >&2; fail "once over TLS failed with the test CA in /etc/ssl/certs/ca-certificates.crt"; }
grep -q 'refreshed' "$tls/trusted.log" || { cat "$tls/trusted.log" >&2; fail "once over TLS refreshed nothing"; }
if tls_once >"$tls/untrusted.log" 2>&1; then
  fail "once over TLS succeeded with the image's bundle, which does not hold the test CA"
fi
grep -q 'invalid peer certificate: UnknownIssuer' "$tls/untrusted.log" \
  || { cat "$tls/untrusted.log" >&2; fail "once over TLS failed, but not because the issuer was unknown"; }
kill "$proxy_pid" 2>/dev/null; wait "$proxy_pid" 2>/dev/null || true; proxy_pid=
say "TLS: trusted with the test CA at /etc/ssl/certs/ca-certificates.crt; with Debian's bundle: invalid peer certificate: UnknownIssuer"

# ---- 7. compose.yaml, both variants, against the fake
# The shipped file, with what this machine needs on top: the host network for the sidecar
# (the fake listens on 127.0.0.1), the prepared state volume, and a busybox app in place of
# the AWS CLI image (no registry here) that checks what the AWS CLI would read, and the free
# port the config serves on (the shipped 9911 may be taken on a shared machine).
cat >"$work/compose.test.yaml" <<EOF
services:
  awscredd:
    network_mode: host
  app:
    image: $reader
    entrypoint: ["/bin/busybox", "sh", "-c"]
    command:
      - |
        i=0
        until grep -q '^aws_access_key_id = ASIA' "\$\$AWS_SHARED_CREDENTIALS_FILE"; do
          i=\$\$((i + 1)); [ \$\$i -lt 300 ] || { echo "no credentials in 30 s"; exit 1; }; sleep 0.1
        done
        echo "app: credentials for \$\$AWS_PROFILE in \$\$AWS_SHARED_CREDENTIALS_FILE"
  app-endpoint:
    image: $reader
    environment:
      AWS_CONTAINER_CREDENTIALS_FULL_URI: http://127.0.0.1:$port/profiles/app
    entrypoint: ["/bin/busybox", "sh", "-c"]
    command:
      - |
        i=0
        until wget -q -O /tmp/c --header "Authorization: \$\$(cat \$\$AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE)" "\$\$AWS_CONTAINER_CREDENTIALS_FULL_URI" 2>/dev/null; do
          i=\$\$((i + 1)); [ \$\$i -lt 300 ] || { echo "no answer from the endpoint in 30 s"; exit 1; }; sleep 0.1
        done
        grep -q '"AccessKeyId":"ASIA' /tmp/c && echo "app-endpoint: credentials from \$\$AWS_CONTAINER_CREDENTIALS_FULL_URI"
    tmpfs: ["/tmp"]
volumes:
  awscredd-state:
    external: true
    name: $state
EOF
# The shipped file alone must parse as it is.
timeout 60 "$venv/bin/podman-compose" -f "$here/compose.yaml" config >"$work/compose-config.log" 2>&1 \
  || { cat "$work/compose-config.log" >&2; fail "podman-compose refuses the shipped compose.yaml"; }
say "compose up (podman-compose $("$venv/bin/podman-compose" --version 2>/dev/null | head -n 1 | awk '{print $NF}'))"
compose_up=1
AWSCREDD_CONFIG_FILE=$work/config.toml compose up -d >"$work/compose-up.log" 2>&1 \
  || { cat "$work/compose-up.log" >&2; fail "compose up failed"; }
for svc in app app-endpoint; do
  c=$(podman ps -a --filter "label=com.docker.compose.project=$run_id" \
        --filter "label=com.docker.compose.service=$svc" --format '{{.Names}}' | head -n 1)
  [ -n "$c" ] || { cat "$work/compose-up.log" >&2; fail "compose started no $svc container"; }
  code=$(timeout 60 podman wait "$c") || fail "compose's $svc did not finish within 60 s"
  podman logs "$c" >"$work/compose-$svc.log" 2>&1 || true
  [ "$code" = 0 ] || { cat "$work/compose-$svc.log" >&2; fail "compose's $svc exited with $code"; }
  say "compose: $(tail -n 1 "$work/compose-$svc.log")"
done
sc=$(podman ps --filter "label=com.docker.compose.project=$run_id" \
       --filter "label=com.docker.compose.service=awscredd" --format '{{.Names}}' | head -n 1)
[ -n "$sc" ] || fail "compose's awscredd is not running"
t_stop=$(now)
compose stop -t 10 >"$work/compose-stop.log" 2>&1 || { cat "$work/compose-stop.log" >&2; fail "compose stop failed"; }
stop_secs_compose=$(elapsed "$t_stop" "$(now)")
code=$(podman inspect --format '{{.State.ExitCode}}' "$sc")
[ "$code" = 0 ] || fail "compose's awscredd exited with $code after compose stop"
compose down -v -t 10 >"$work/compose-down.log" 2>&1 || { cat "$work/compose-down.log" >&2; fail "compose down failed"; }
compose_up=
say "compose stop: awscredd exit status 0, $stop_secs_compose s for the project"

# A wrong config under compose: exit 78, restarted at most 3 times (restart: on-failure:3),
# then left stopped, never a loop.
printf '[profile.app]\nsso_session = "nowhere"\n' >"$work/bad-config.toml"
chmod 0644 "$work/bad-config.toml"
compose_up=1
AWSCREDD_CONFIG_FILE=$work/bad-config.toml compose up -d awscredd >"$work/compose-bad.log" 2>&1 \
  || { cat "$work/compose-bad.log" >&2; fail "compose up (bad config) failed"; }
bc=$(podman ps -a --filter "label=com.docker.compose.project=$run_id" \
       --filter "label=com.docker.compose.service=awscredd" --format '{{.Names}}' | head -n 1)
[ -n "$bc" ] || fail "compose started no awscredd with the bad config"
# Settled: exited, and the same restart count over 5 s in a row (bounded at 60 s).
last='' same=0
for _ in $(seq 120); do
  st=$(podman inspect --format '{{.State.Status}} {{.State.ExitCode}} {{.RestartCount}}' "$bc")
  if [ "$st" = "$last" ] && [ "${st%% *}" = exited ]; then same=$((same + 1)); else same=0; fi
  last=$st
  [ "$same" -ge 10 ] && break
  sleep 0.5
done
read -r bstate bcode brestarts <<<"$last"
[ "$bstate" = exited ] && [ "$bcode" = 78 ] || fail "compose's awscredd with a bad config: $last (want exited 78)"
[ "$brestarts" -le 3 ] || fail "compose restarted awscredd with a bad config $brestarts times (on-failure:3 allows 3)"
podman logs "$bc" 2>&1 | grep -q 'nowhere' || fail "the bad config's error is not in the sidecar's log"
compose down -v -t 5 >"$work/compose-down.log" 2>&1 || { cat "$work/compose-down.log" >&2; fail "compose down failed"; }
compose_up=
say "compose with a bad config: exited 78 after $brestarts restarts, then left stopped"

# ---- 8. the Kubernetes manifest
"$venv/bin/kubernetes-validate" --strict -k 1.29.0 "$here/kubernetes.yaml" >"$work/k8s-1.29.log" 2>&1 \
  || { cat "$work/k8s-1.29.log" >&2; fail "kubernetes.yaml is not valid for Kubernetes 1.29"; }
"$venv/bin/kubernetes-validate" --strict "$here/kubernetes.yaml" >"$work/k8s-latest.log" 2>&1 \
  || { cat "$work/k8s-latest.log" >&2; fail "kubernetes.yaml is not valid for the latest Kubernetes schemas"; }
"$venv/bin/python" - "$here/kubernetes.yaml" "$work/k8s-config.toml" "$version" "$here/compose.yaml" <<'EOF' || fail "kubernetes.yaml or compose.yaml does not keep its promises"
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
cm = next(d for d in docs if d["kind"] == "ConfigMap")
pod = next(d for d in docs if d["kind"] in ("Pod", "Deployment"))
spec = pod["spec"]["template"]["spec"] if pod["kind"] == "Deployment" else pod["spec"]
side = next(c for c in spec["initContainers"] if c["name"] == "awscredd")
problems = []
if side.get("restartPolicy") != "Always": problems.append("awscredd is not a native sidecar")
if "startupProbe" not in side: problems.append("no startupProbe")
if side.get("livenessProbe", {}).get("httpGet", {}).get("path") != "/healthz": problems.append("liveness is not /healthz")
sc = {**spec.get("securityContext", {}), **side.get("securityContext", {})}
if not sc.get("runAsNonRoot"): problems.append("not runAsNonRoot")
if not sc.get("readOnlyRootFilesystem"): problems.append("root fs not read-only")
vols = {v["name"]: v for v in spec["volumes"]}
shared = [m["name"] for m in side["volumeMounts"] if m["mountPath"] == "/shared"]
if not shared or "emptyDir" not in vols[shared[0]]: problems.append("/shared is not an emptyDir")
if not any("configMap" in vols[m["name"]] for m in side["volumeMounts"] if m["name"] in vols): problems.append("no ConfigMap")
if side.get("image") != f"localhost/awscredd:{sys.argv[3]}": problems.append(f"image {side.get('image')!r} is not the tag build.sh makes, localhost/awscredd:{sys.argv[3]}")
if problems: sys.exit("kubernetes.yaml: " + "; ".join(problems))
# compose.yaml: a sidecar whose config is wrong exits 78 and must not be restarted in a loop.
compose = yaml.safe_load(open(sys.argv[4]))
restart = str(compose["services"]["awscredd"].get("restart", "no"))
if restart in ("always", "unless-stopped") or restart == "on-failure":
    sys.exit(f"compose.yaml: restart: {restart} restarts a sidecar with a bad config (exit 78) without end")
open(sys.argv[2], "w").write(cm["data"]["config.toml"])
EOF
for cfg in "$work/k8s-config.toml" "$here/config.toml"; do
  chmod 0644 "$cfg"
  podman run --rm --network=none --read-only -v "$cfg:/etc/awscredd/config.toml:ro" "$image" check \
    >"$work/check.log" 2>&1 || { cat "$work/check.log" >&2; fail "awscredd check refuses $cfg"; }
done
say "kubernetes.yaml valid (1.29 and latest schemas, strict); its config and compose's pass awscredd check"

cat >"$work/numbers.txt" <<EOF
image size: $size bytes ($compressed gzipped)
container start to first credentials written: $to_first s
sidecar RSS after its first pass: $rss KiB (peak $hwm KiB)
podman stop: $stop_secs s, exit status 0
EOF
say "numbers:"; sed 's/^/  /' "$work/numbers.txt" >&2
