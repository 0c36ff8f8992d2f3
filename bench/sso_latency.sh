#!/usr/bin/env bash
# SSO at a real region's round trip: the bundled fake IAM Identity Center answers every request
# after 20 ms (FAKE_AWS_LATENCY_MS), and one pass over N SSO profiles with a cached token is
# timed for awscredd (`once --force`, median of 3) and for a boto3 script doing the same job
# (GetRoleCredentials per profile with one SSO client, then one configparser write), in the
# same run, for N = 100 and 500. Prints the figures and the ratio.
#
#   bash bench/sso_latency.sh          (builds the release binary and the fake first)
#
# Needs boto3 (the README's test command puts it in target/venv). Everything listens on
# 127.0.0.1; every process started here is stopped by its PID; files go to a temporary folder.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
LATENCY_MS=${SSO_LATENCY_MS:-20}
python=${PYTHON:-$root/target/venv/bin/python3}
[ -x "$python" ] || python=python3
"$python" -c 'import boto3' 2>/dev/null || { echo "bench/sso_latency.sh: boto3 is needed" >&2; exit 1; }
cargo build --quiet --release --bin awscredd --example fake_aws
awscredd=$root/target/release/awscredd
fake_bin=$root/target/release/examples/fake_aws

tmp=$(mktemp -d "${TMPDIR:-/tmp}/awscredd-latency.XXXXXX")
fake_pid=
cleanup() {
    [ -n "$fake_pid" ] && kill "$fake_pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

mkfifo "$tmp/fake.in"
FAKE_AWS_LATENCY_MS=$LATENCY_MS "$fake_bin" "$tmp" corp https://bench.awsapps.com/start us-east-1 \
    < "$tmp/fake.in" > "$tmp/fake.out" 2> "$tmp/fake.err" &
fake_pid=$!
exec 3> "$tmp/fake.in"
for _ in $(seq 1 100); do
    grep -q '^url=' "$tmp/fake.out" 2>/dev/null && break
    sleep 0.1
done
url=$(sed -n 's/^url=\([^ ]*\).*/\1/p' "$tmp/fake.out")
token=$(sed -n 's/.*access_token=\([^ ]*\).*/\1/p' "$tmp/fake.out")
[ -n "$url" ] || { echo "the fake did not start: $(cat "$tmp/fake.err")" >&2; exit 1; }

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
now() { date +%s.%N; }

printf 'SSO portal answering after %s ms; one pass with a cached token\n\n' "$LATENCY_MS"
printf '%-9s %12s %12s %8s\n' profiles awscredd boto3 ratio
for n in 100 500; do
    cfg=$tmp/config-$n.toml
    {
        printf '[daemon]\nstate_dir = "%s/state-%s"\n[[output]]\npath = "%s/awscredd-%s"\n' "$tmp" "$n" "$tmp" "$n"
        printf '[sso_session.corp]\nsso_start_url = "https://bench.awsapps.com/start"\nsso_region = "us-east-1"\n'
        for i in $(seq 1 "$n"); do
            printf '[profile.p%04d]\nsso_session = "corp"\nsso_account_id = "111122223333"\nsso_role_name = "Role%d"\n' "$i" "$i"
        done
    } > "$cfg"
    times=()
    for _ in 1 2 3; do
        t0=$(now)
        HOME=$tmp AWS_ENDPOINT_URL_SSO_OIDC=$url AWS_ENDPOINT_URL_SSO=$url \
            "$awscredd" --config "$cfg" --log-level error once --force
        t1=$(now)
        times+=("$(echo "$t1 - $t0" | bc)")
    done
    ours=$(printf '%s\n' "${times[@]}" | median)
    theirs=$(HOME=$tmp "$python" - "$url" "$token" "$n" "$tmp/boto3-$n" <<'PY'
import configparser, sys, time
import boto3
url, token, n, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
t0 = time.monotonic()
sso = boto3.client("sso", region_name="us-east-1", endpoint_url=url)
cp = configparser.ConfigParser()
for i in range(1, n + 1):
    c = sso.get_role_credentials(roleName=f"Role{i}", accountId="111122223333", accessToken=token)["roleCredentials"]
    cp[f"p{i:04d}"] = {
        "aws_access_key_id": c["accessKeyId"],
        "aws_secret_access_key": c["secretAccessKey"],
        "aws_session_token": c["sessionToken"],
    }
with open(out, "w") as f:
    cp.write(f)
print(f"{time.monotonic() - t0:.3f}")
PY
)
    ratio=$(echo "scale=1; $theirs / $ours" | bc)
    printf '%-9s %11.3fs %11.3fs %7sx\n' "$n" "$ours" "$theirs" "$ratio"
    grep -c '^\[p' "$tmp/awscredd-$n" > /dev/null
done
