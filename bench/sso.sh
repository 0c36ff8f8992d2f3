#!/usr/bin/env bash
# End-to-end SSO benchmark: `awscredd once --force` for 100 SSO profiles with a cached token,
# against the bundled fake IAM Identity Center on 127.0.0.1, versus the same job done the way
# scheduled-task scripts do it today, in the same run:
#
#   script     per profile: `aws sso get-role-credentials ... --output json`, then
#              `aws configure set` of aws_access_key_id, aws_secret_access_key and
#              aws_session_token (4 AWS CLI processes per profile);
#   lean       per profile: `aws sso get-role-credentials`; then one Python write of the file.
#
# Target: awscredd at least 20x faster (wall time). Takes a few minutes: the scripts are slow,
# which is the point. Run from anywhere: bench/sso.sh
#
# Environment:
#   SSO_BENCH_RUNS=5            timed awscredd runs (after one untimed warm-up)
#   SSO_BENCH_SCRIPT_BUDGET=540 seconds the full script may take; if its estimate (from the
#                               first profile) is larger, a subset is timed and scaled to 100
#   SSO_BENCH_SCRIPT_PROFILES=N time the full script over the first N profiles only, scaled
#
# Nothing outside a temporary folder is written (no ~/.aws); everything listens on 127.0.0.1
# only; every process started here is stopped by PID on exit.

set -euo pipefail

PROFILES=100
RUNS=${SSO_BENCH_RUNS:-5}
SCRIPT_BUDGET=${SSO_BENCH_SCRIPT_BUDGET:-540}
SESSION=corp
START_URL=https://bench.awsapps.com/start
REGION=us-east-1
ACCOUNTS=(111122223333 444455556666 777788889999 123456789012)

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

if ! command -v aws >/dev/null 2>&1; then
    echo "bench/sso.sh: the AWS CLI (\`aws\`) is not installed; it is the baseline." >&2
    echo "  install it with: pip install awscli" >&2
    exit 1
fi
if ! command -v python3 >/dev/null 2>&1; then
    echo "bench/sso.sh: python3 is needed (timing figures, the lean variant's write)." >&2
    exit 1
fi
# A pyenv shim adds a bash + `pyenv exec` to every call; time the CLI itself.
aws_bin=$(command -v aws)
if command -v pyenv >/dev/null 2>&1 && real=$(pyenv which aws 2>/dev/null); then
    aws_bin=$real
fi

# No ambient AWS settings may leak into either side.
unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY \
    AWS_SESSION_TOKEN AWS_ENDPOINT_URL AWS_ENDPOINT_URL_SSO AWS_ENDPOINT_URL_SSO_OIDC \
    AWS_CONFIG_FILE AWS_SHARED_CREDENTIALS_FILE AWSCREDD_CONFIG

fake_pid=
fake_in=
tmp=
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    if [[ -n $fake_pid ]] && kill -0 "$fake_pid" 2>/dev/null; then
        # Ask the fake to stop (a line on its stdin), then insist.
        if [[ -n $fake_in ]]; then
            { printf 'stop\n' >&"$fake_in"; } 2>/dev/null || true
        fi
        for _ in $(seq 50); do
            kill -0 "$fake_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill "$fake_pid" 2>/dev/null || true
        wait "$fake_pid" 2>/dev/null || true
    fi
    if [[ -n $tmp && -d $tmp ]]; then
        rm -rf -- "$tmp"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Wall clock in microseconds, without a fork: ${EPOCHREALTIME/[.,]/}
secs() { python3 -c 'import sys; print(f"{int(sys.argv[1]) / 1e6:.3f}")' "$1"; }

echo "== building (release)" >&2
(cd "$root" && cargo build --release --bin awscredd --example fake_aws)
target_dir=${CARGO_TARGET_DIR:-$root/target}
awscredd=$target_dir/release/awscredd
fake_bin=$target_dir/release/examples/fake_aws

tmp=$(mktemp -d "${TMPDIR:-/tmp}/awscredd-sso-bench.XXXXXX")
home=$tmp/home
mkdir -p "$home"

# The fake: a coprocess, so its stdin stays ours to close the run with a line.
coproc FAKE { exec "$fake_bin" "$home" "$SESSION" "$START_URL" "$REGION" 2>"$tmp/fake.err"; }
fake_pid=$FAKE_PID
exec {fake_out}<&"${FAKE[0]}" {fake_in}>&"${FAKE[1]}"
line=
if ! read -r -t 30 line <&"$fake_out"; then
    echo "bench/sso.sh: the fake did not start within 30 s" >&2
    cat "$tmp/fake.err" >&2 || true
    exit 1
fi
if [[ ! $line =~ ^url=(http://127\.0\.0\.1:[0-9]+)\ access_token=([^[:space:]]+)$ ]]; then
    echo "bench/sso.sh: unexpected line from the fake: $line" >&2
    exit 1
fi
url=${BASH_REMATCH[1]}
token=${BASH_REMATCH[2]}
echo "== fake IAM Identity Center at $url (pid $fake_pid)" >&2

# The profiles: p001..p100, four accounts, a role of their own each.
names=() accounts=() roles=()
for ((i = 1; i <= PROFILES; i++)); do
    printf -v name 'p%03d' "$i"
    names+=("$name")
    accounts+=("${ACCOUNTS[i % ${#ACCOUNTS[@]}]}")
    roles+=("Role-$name")
done

config=$tmp/awscredd.toml
awscredd_creds=$tmp/awscredd-credentials
{
    printf '[daemon]\nstate_dir = "%s"\n\n' "$tmp/state"
    printf '[[output]]\npath = "%s"\n\n' "$awscredd_creds"
    printf '[sso_session.%s]\nsso_start_url = "%s"\nsso_region = "%s"\n' \
        "$SESSION" "$START_URL" "$REGION"
    for ((i = 0; i < PROFILES; i++)); do
        printf '\n[profile.%s]\nsso_session = "%s"\nsso_account_id = "%s"\nsso_role_name = "%s"\n' \
            "${names[i]}" "$SESSION" "${accounts[i]}" "${roles[i]}"
    done
} >"$config"

# Counts profiles that have all three keys; prints the count.
count_profiles() {
    python3 - "$1" <<'EOF'
import configparser, sys
p = configparser.RawConfigParser()
p.read(sys.argv[1])
keys = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")
print(sum(1 for s in p.sections() if all(p.get(s, k, fallback="") for k in keys)))
EOF
}

run_awscredd() {
    HOME=$home AWS_ENDPOINT_URL_SSO=$url AWS_ENDPOINT_URL_SSO_OIDC=$url \
        AWS_CONFIG_FILE=$tmp/awscredd-aws-config AWS_SHARED_CREDENTIALS_FILE=$tmp/unused-credentials \
        XDG_CONFIG_HOME=$home/.config XDG_STATE_HOME=$home/.local/state \
        "$awscredd" --config "$config" --log-level warn once --force
}

echo "== awscredd: 1 warm-up + $RUNS timed runs of once --force" >&2
run_awscredd >"$tmp/awscredd.log" 2>&1 || {
    echo "bench/sso.sh: awscredd failed (warm-up):" >&2
    cat "$tmp/awscredd.log" >&2
    exit 1
}
awscredd_us=()
for ((r = 1; r <= RUNS; r++)); do
    rm -f "$awscredd_creds"
    t0=${EPOCHREALTIME/[.,]/}
    if ! run_awscredd >"$tmp/awscredd.log" 2>&1; then
        echo "bench/sso.sh: awscredd failed (run $r):" >&2
        cat "$tmp/awscredd.log" >&2
        exit 1
    fi
    t1=${EPOCHREALTIME/[.,]/}
    awscredd_us+=($((t1 - t0)))
    n=$(count_profiles "$awscredd_creds")
    if ((n != PROFILES)); then
        echo "bench/sso.sh: awscredd run $r wrote $n profiles, expected $PROFILES" >&2
        exit 1
    fi
    echo "   run $r: $(secs "${awscredd_us[-1]}") s, $n profiles" >&2
done
read -r awscredd_median awscredd_min < <(printf '%s\n' "${awscredd_us[@]}" | sort -n |
    awk '{v[NR] = $1} END {m = (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2); print m, v[1]}')

# --- today's way ------------------------------------------------------------------------------

aws_env=(env AWS_CONFIG_FILE="$tmp/script-aws-config" AWS_EC2_METADATA_DISABLED=true
    AWS_PAGER= AWS_RETRY_MODE=standard)
: >"$tmp/script-aws-config"

# One profile the way the scheduled-task scripts do it. $1: index, $2: credentials file.
script_profile() {
    local i=$1 file=$2 out key secret session
    out=$("${aws_env[@]}" AWS_SHARED_CREDENTIALS_FILE="$file" "$aws_bin" sso get-role-credentials \
        --role-name "${roles[i]}" --account-id "${accounts[i]}" --access-token "$token" \
        --region "$REGION" --endpoint-url "$url" --output json)
    [[ $out =~ \"accessKeyId\"[[:space:]]*:[[:space:]]*\"([^\"]+)\" ]] && key=${BASH_REMATCH[1]}
    [[ $out =~ \"secretAccessKey\"[[:space:]]*:[[:space:]]*\"([^\"]+)\" ]] && secret=${BASH_REMATCH[1]}
    [[ $out =~ \"sessionToken\"[[:space:]]*:[[:space:]]*\"([^\"]+)\" ]] && session=${BASH_REMATCH[1]}
    if [[ -z ${key:-} || -z ${secret:-} || -z ${session:-} ]]; then
        echo "bench/sso.sh: unexpected get-role-credentials output for ${names[i]}: $out" >&2
        return 1
    fi
    "${aws_env[@]}" AWS_SHARED_CREDENTIALS_FILE="$file" "$aws_bin" configure set \
        aws_access_key_id "$key" --profile "${names[i]}"
    "${aws_env[@]}" AWS_SHARED_CREDENTIALS_FILE="$file" "$aws_bin" configure set \
        aws_secret_access_key "$secret" --profile "${names[i]}"
    "${aws_env[@]}" AWS_SHARED_CREDENTIALS_FILE="$file" "$aws_bin" configure set \
        aws_session_token "$session" --profile "${names[i]}"
}

# Estimate from one profile (in a scratch file), then time the whole loop or a subset.
script_n=${SSO_BENCH_SCRIPT_PROFILES:-}
t0=${EPOCHREALTIME/[.,]/}
script_profile 0 "$tmp/estimate-credentials"
t1=${EPOCHREALTIME/[.,]/}
estimate_us=$(((t1 - t0) * PROFILES))
if [[ -z $script_n ]]; then
    script_n=$PROFILES
    if ((estimate_us > SCRIPT_BUDGET * 1000000)); then
        script_n=$((SCRIPT_BUDGET * 1000000 * PROFILES / estimate_us))
        ((script_n >= 10)) || script_n=10
    fi
fi
((script_n >= 1 && script_n <= PROFILES)) || {
    echo "bench/sso.sh: SSO_BENCH_SCRIPT_PROFILES must be 1..$PROFILES" >&2
    exit 1
}
echo "== script: get-role-credentials + 3x configure set per profile, $script_n profiles" \
    "(estimate for $PROFILES: $(secs "$estimate_us") s)" >&2
script_creds=$tmp/script-credentials
t0=${EPOCHREALTIME/[.,]/}
for ((i = 0; i < script_n; i++)); do
    script_profile "$i" "$script_creds"
done
t1=${EPOCHREALTIME/[.,]/}
script_measured_us=$((t1 - t0))
script_us=$((script_measured_us * PROFILES / script_n))
n=$(count_profiles "$script_creds")
if ((n != script_n)); then
    echo "bench/sso.sh: the script wrote $n profiles, expected $script_n" >&2
    exit 1
fi

echo "== lean script: get-role-credentials per profile, one Python write at the end" >&2
lean_dir=$tmp/lean
mkdir -p "$lean_dir"
lean_creds=$tmp/lean-credentials
t0=${EPOCHREALTIME/[.,]/}
for ((i = 0; i < PROFILES; i++)); do
    "${aws_env[@]}" AWS_SHARED_CREDENTIALS_FILE="$lean_creds" "$aws_bin" sso get-role-credentials \
        --role-name "${roles[i]}" --account-id "${accounts[i]}" --access-token "$token" \
        --region "$REGION" --endpoint-url "$url" --output json >"$lean_dir/${names[i]}.json"
done
python3 - "$lean_dir" "$lean_creds" <<'EOF'
import configparser, json, os, sys
src, dest = sys.argv[1], sys.argv[2]
p = configparser.RawConfigParser()
p.read(dest)
for name in sorted(os.listdir(src)):
    with open(os.path.join(src, name)) as f:
        c = json.load(f)["roleCredentials"]
    profile = name[: -len(".json")]
    if not p.has_section(profile):
        p.add_section(profile)
    p.set(profile, "aws_access_key_id", c["accessKeyId"])
    p.set(profile, "aws_secret_access_key", c["secretAccessKey"])
    p.set(profile, "aws_session_token", c["sessionToken"])
tmp = dest + ".tmp"
with open(tmp, "w") as f:
    p.write(f)
os.replace(tmp, dest)
EOF
t1=${EPOCHREALTIME/[.,]/}
lean_us=$((t1 - t0))
n=$(count_profiles "$lean_creds")
if ((n != PROFILES)); then
    echo "bench/sso.sh: the lean script wrote $n profiles, expected $PROFILES" >&2
    exit 1
fi

# Stop the fake now, for its call counters.
printf 'stop\n' >&"$fake_in"
wait "$fake_pid" || true
fake_pid=

ratio() { python3 -c 'import sys; print(f"{int(sys.argv[1]) / int(sys.argv[2]):.0f}")' "$1" "$2"; }
r_script=$(ratio "$script_us" "$awscredd_median")
r_lean=$(ratio "$lean_us" "$awscredd_median")
if [[ $script_n -eq $PROFILES ]]; then
    script_note="measured over all $PROFILES profiles"
else
    script_note="SCALED: measured $(secs "$script_measured_us") s over the first $script_n profiles, x $PROFILES/$script_n"
fi
met() { (($1 >= 20)) && echo "met" || echo "NOT met"; }

cat <<EOF

== SSO benchmark: $PROFILES SSO profiles, cached token, fake IAM Identity Center on 127.0.0.1
awscredd command:  HOME=\$tmp/home AWS_ENDPOINT_URL_SSO=$url AWS_ENDPOINT_URL_SSO_OIDC=$url \\
                     $awscredd --config \$tmp/awscredd.toml once --force
baseline CLI:      $aws_bin ($("$aws_bin" --version 2>&1))
profiles:          $PROFILES (${#ACCOUNTS[@]} accounts, one role each)
awscredd:          median $(secs "$awscredd_median") s, min $(secs "$awscredd_min") s ($RUNS runs after 1 warm-up; each wrote $PROFILES profiles)
script:            $(secs "$script_us") s  (aws sso get-role-credentials + 3x aws configure set per profile; $script_note)
lean script:       $(secs "$lean_us") s  (aws sso get-role-credentials per profile + one Python configparser write; all $PROFILES profiles)
ratio script/awscredd (median):       ${r_script}x
ratio lean script/awscredd (median):  ${r_lean}x
target >= 20x faster: $(met "$r_script") against the script, $(met "$r_lean") against the lean script
$(cat "$tmp/fake.err")
EOF
