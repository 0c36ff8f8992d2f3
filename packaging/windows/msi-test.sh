#!/usr/bin/env bash
# The MSI (msi.sh) built, signed, inspected, and installed, started, upgraded and removed under
# Wine 8's msiexec and Service Control Manager, in a throwaway WINEPREFIX:
#  1. Two MSIs from the same .exe (this version and the next patch version), signed with a
#     throwaway code-signing certificate: the MSI and the .exe inside it verify; a changed byte
#     does not; a certificate without a key is refused.
#  2. The tables (msiinfo): ServiceInstall, ServiceControl (stop + delete on uninstall, no start
#     at install; a start without waiting, only on upgrade), the template's component
#     (Permanent | NeverOverwrite), the Event Log source, the major upgrade (one UpgradeCode,
#     a ProductCode per version). The winget manifest of the MSI against schema 1.28.0.
#  3. msiexec /i /qn: the program files, the template in %ProgramData%\awscredd byte for byte,
#     the service (automatic, LocalSystem, its command line), STOPPED; the Event Log source;
#     the product in Programs and Features. Started with the template: STOPPED with exit code
#     78 (`check` says why); the template with its examples uncommented passes `check`. The
#     service sets its own failure actions when it starts (what Wine shows: services.exe's
#     FIXME for SERVICE_CONFIG_FAILURE_ACTIONS, with its reset period, and the log line).
#  4. A real config: `sc start` -> RUNNING, the credentials file written.
#  5. An upgrade to the next version while it runs: the config byte for byte, state and SSO
#     cache kept, one service entry, one product; the service started again by the upgrade.
#  6. msiexec /x: the service, its event source and the program files gone; %ProgramData%\awscredd
#     (config, state, log) kept.
# Prints the MSI's size, install / start / upgrade / uninstall times.
# Needs the .exe (AWSCREDD_EXE, default target/windows/awscredd.exe from build.sh). Installs
# Wine, msitools, wixl, osslsigncode and openssl when run as root. KEEP_TMP=1 keeps the test's
# folder (the prefix, msiexec's logs, services.exe's stderr) for a look afterwards.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
need=()
command -v wine >/dev/null || need+=(wine64 wine)
command -v wixl >/dev/null || need+=(wixl)
command -v msiinfo >/dev/null || need+=(msitools)
command -v osslsigncode >/dev/null || need+=(osslsigncode)
command -v openssl >/dev/null || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "needs: apt-get install ${need[*]}" >&2
    exit 1
  fi
fi
exe=${AWSCREDD_EXE:-target/windows/awscredd.exe}
[ -f "$exe" ] || { echo "msi test: no $exe: run packaging/windows/build.sh first" >&2; exit 1; }

tmp=$(mktemp -d)
export WINEPREFIX="$tmp/prefix" WINEDEBUG=-all
cleanup() {
  if [ -d "$WINEPREFIX" ]; then
    timeout 20 wine sc stop awscredd >/dev/null 2>&1 || true
    wineserver -k >/dev/null 2>&1 || true
  fi
  [ -n "${KEEP_TMP:-}" ] && { echo "kept $tmp" >&2; return; }
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'echo "msi test: failed at line $LINENO: $BASH_COMMAND" >&2' ERR
log=/nonexistent
fail() {
  echo "msi test: $*" >&2
  [ -f "$log" ] && { echo "--- awscredd.log" >&2; tr -d '\r' < "$log" | tail -30 >&2; }
  exit 1
}
winpath() { printf 'Z:%s' "${1//\//\\}"; }
w() { timeout 120 wine "$@" 2>/dev/null | tr -d '\r'; }
now_ms() { date +%s%3N; }
state() { w sc query awscredd | awk '$1 == "STATE" { print $4 }'; }
wait_state() { # STATE SECONDS
  local deadline=$(($(now_ms) + $2 * 1000))
  while [ "$(now_ms)" -lt "$deadline" ]; do
    [ "$(state)" = "$1" ] && return 0
    sleep 0.2
  done
  return 1
}
t_ci=$(now_ms)

echo "== build and sign two MSIs"
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
next=${version%.*}.$((${version##*.} + 1))
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/key.pem" -out "$tmp/cert.pem" -days 2 \
  -subj "/CN=awscredd CI throwaway code signing" -addext "extendedKeyUsage=codeSigning" \
  -addext "keyUsage=critical,digitalSignature" > "$tmp/openssl.log" 2>&1 || fail "openssl: $(cat "$tmp/openssl.log")"
sign_env=(AWSCREDD_EXE="$exe" AWSCREDD_SIGN_CERT="$tmp/cert.pem" AWSCREDD_SIGN_KEY="$tmp/key.pem" AWSCREDD_SIGN_CA="$tmp/cert.pem")
msi1=$(env "${sign_env[@]}" bash packaging/windows/msi.sh 2> "$tmp/msi.log") || fail "msi.sh: $(cat "$tmp/msi.log")"
mv "$msi1" "$tmp/"
msi1="$tmp/$(basename "$msi1")"
msi2=$(env "${sign_env[@]}" AWSCREDD_MSI_VERSION="$next" bash packaging/windows/msi.sh 2> "$tmp/msi.log") \
  || fail "msi.sh $next: $(cat "$tmp/msi.log")"
mv "$msi2" "$tmp/"
msi2="$tmp/$(basename "$msi2")"
[ "$(basename "$msi1")" = "awscredd-$version-x86_64.msi" ] || fail "MSI named $(basename "$msi1")"
size=$(stat -c %s "$msi1")
osslsigncode verify -CAfile "$tmp/cert.pem" -in "$msi1" > "$tmp/verify.txt" 2>&1 || fail "the MSI does not verify: $(cat "$tmp/verify.txt")"
grep -q "awscredd CI throwaway code signing" "$tmp/verify.txt" || fail "signer: $(cat "$tmp/verify.txt")"
mkdir "$tmp/extract"
(cd "$tmp/extract" && msiextract "$msi1" > /dev/null) || fail "msiextract failed"
inner=$(find "$tmp/extract" -name awscredd.exe)
osslsigncode verify -CAfile "$tmp/cert.pem" -in "$inner" > "$tmp/verify-exe.txt" 2>&1 \
  || fail "the .exe in the MSI does not verify: $(cat "$tmp/verify-exe.txt")"
cp "$msi1" "$tmp/tampered.msi"
printf 'X' | dd of="$tmp/tampered.msi" bs=1 seek=$((size / 2)) conv=notrunc status=none
osslsigncode verify -CAfile "$tmp/cert.pem" -in "$tmp/tampered.msi" > /dev/null 2>&1 && fail "a changed MSI still verifies"
AWSCREDD_EXE="$exe" AWSCREDD_SIGN_CERT="$tmp/cert.pem" bash packaging/windows/msi.sh > /dev/null 2> "$tmp/nokey.txt" \
  && fail "a certificate without a key was accepted"
grep -q AWSCREDD_SIGN_KEY "$tmp/nokey.txt" || fail "no reason given: $(cat "$tmp/nokey.txt")"
echo "signed and verified: $(basename "$msi1") ($size bytes), $(basename "$msi2"); a changed byte fails verification"

echo "== tables"
table() { msiinfo export "$1" "$2" | tr -d '\r' | tail -n +4; }
table "$msi1" ServiceInstall > "$tmp/si.txt"
[ "$(wc -l < "$tmp/si.txt")" = 1 ] || fail "ServiceInstall: $(cat "$tmp/si.txt")"
# Name, type (own process), start (automatic), error control (normal), account, component.
[ "$(awk -F '\t' '{ print $2 "/" $4 "/" $5 "/" $6 "/" $9 "/" $12 }' "$tmp/si.txt")" = "awscredd/16/2/1/LocalSystem/Program" ] \
  || fail "ServiceInstall: $(cat "$tmp/si.txt")"
args=$(awk -F '\t' '{ print $11 }' "$tmp/si.txt")
[ "$args" = '--config "[CommonAppDataFolder]awscredd\config.toml" service run' ] || fail "arguments: $args"
table "$msi1" ServiceControl | sort > "$tmp/sc.txt"
# 162 = stop at install and uninstall, delete at uninstall (no start); 1 = start at install,
# Wait 0, in the component that only an upgrade installs.
printf 'ServiceStartOnUpgrade\tawscredd\t1\t\t0\tStartOnUpgrade\nServiceStopRemove\tawscredd\t162\t\t1\tProgram\n' \
  | cmp -s - "$tmp/sc.txt" || fail "ServiceControl: $(cat "$tmp/sc.txt")"
table "$msi1" Component > "$tmp/comp.txt"
grep -q $'^ConfigTemplate\t{[0-9A-F-]*}\tDATADIR\t400\t\tconfig.toml$' "$tmp/comp.txt" || fail "the template's component: $(cat "$tmp/comp.txt")"
grep -q $'^StartOnUpgrade\t{[0-9A-F-]*}\tINSTALLDIR\t256\tWIX_UPGRADE_DETECTED\t$' "$tmp/comp.txt" || fail "StartOnUpgrade: $(cat "$tmp/comp.txt")"
table "$msi1" Registry > "$tmp/reg.txt"
grep -qF $'EventLog\\Application\\awscredd\tEventMessageFile\t#%%SystemRoot%\\Microsoft.NET' "$tmp/reg.txt" || fail "Registry: $(cat "$tmp/reg.txt")"
prop() { table "$1" Property | awk -F '\t' -v k="$2" '$1 == k { print $2 }'; }
[ "$(prop "$msi1" UpgradeCode)" = "$(prop "$msi2" UpgradeCode)" ] || fail "the UpgradeCode differs between versions"
[ "$(prop "$msi1" ProductCode)" != "$(prop "$msi2" ProductCode)" ] || fail "one ProductCode for two versions"
code1=$(prop "$msi1" ProductCode)
code2=$(prop "$msi2" ProductCode)
printf '%s\t\t%s\t\t1\t\tWIX_UPGRADE_DETECTED\n' "$(prop "$msi1" UpgradeCode)" "$next" > "$tmp/upgrade-row.txt"
table "$msi2" Upgrade | grep -qxFf "$tmp/upgrade-row.txt" || fail "Upgrade: $(table "$msi2" Upgrade)"
echo "ServiceInstall, ServiceControl, Component, Registry, Upgrade: ok (ProductCode $code1, then $code2)"

echo "== winget manifest"
bash packaging/windows/winget.sh "$msi1" "https://example.com/awscredd/awscredd-$version-x86_64.msi" "$tmp/winget" 2> "$tmp/winget.log" \
  || fail "winget.sh: $(cat "$tmp/winget.log")"
grep -q "ProductCode: \"$code1\"" "$tmp/winget/awscredd.awscredd.installer.yaml" || fail "winget: no ProductCode $code1"
grep -q "InstallerSha256: \"$(sha256sum "$msi1" | cut -d ' ' -f 1 | tr a-f A-F)\"" "$tmp/winget/awscredd.awscredd.installer.yaml" \
  || fail "winget: wrong InstallerSha256"
sed 's/^InstallerType: wix$/InstallerType: wixl/' "$tmp/winget/awscredd.awscredd.installer.yaml" > "$tmp/bad.yaml"
target/winget-venv/bin/check-jsonschema --schemafile packaging/windows/winget/schema/manifest.installer.1.28.0.json \
  "$tmp/bad.yaml" > /dev/null 2>&1 && fail "the schema accepted InstallerType: wixl"
echo "winget manifest: valid against schema 1.28.0 (a wrong InstallerType is not)"

echo "== install"
timeout 300 wineboot -i > /dev/null 2>&1 || fail "wineboot failed"
timeout 30 wineserver -w || true
# services.exe's own messages on: Wine's SCM prints a FIXME for the failure actions it is given.
wineserver -p
timeout 120 env WINEDEBUG=-all,fixme+service wineboot > "$tmp/services.err" 2>&1 || fail "wineboot failed"
drive="$WINEPREFIX/drive_c"
data="$drive/ProgramData/awscredd"
log="$data/awscredd.log"
t0=$(now_ms)
timeout 300 wine msiexec /i "$(winpath "$msi1")" /qn /l*v "$(winpath "$tmp/install.log")" > /dev/null 2>&1 \
  || fail "msiexec /i failed: $(tr -d '\000\r' < "$tmp/install.log" | grep -iE 'error|fail' | head)"
t_install=$(($(now_ms) - t0))
for f in awscredd.exe example.toml LICENSE.txt; do
  [ -f "$drive/Program Files/awscredd/$f" ] || fail "no C:\\Program Files\\awscredd\\$f"
done
cmp -s "$inner" "$drive/Program Files/awscredd/awscredd.exe" || fail "the installed .exe is not the signed one"
sed 's/\r$//; s/$/\r/' packaging/windows/config.toml | cmp -s - "$data/config.toml" || fail "the template is not in place"
key='HKLM\System\CurrentControlSet\Services\awscredd'
w reg query "$key" > "$tmp/service.txt" || fail "the service is not registered"
grep -Eq 'ImagePath +REG_(EXPAND_)?SZ +"?C:\\Program Files\\awscredd\\awscredd.exe"? --config "C:\\ProgramData\\awscredd\\config.toml" service run$' "$tmp/service.txt" \
  || fail "ImagePath: $(cat "$tmp/service.txt")"
grep -Eq 'Start +REG_DWORD +0x2$' "$tmp/service.txt" || fail "not automatic: $(cat "$tmp/service.txt")"
grep -Eq 'ObjectName +REG_SZ +LocalSystem$' "$tmp/service.txt" || fail "not LocalSystem: $(cat "$tmp/service.txt")"
grep -q 'Description .*AWS credentials' "$tmp/service.txt" || fail "no description: $(cat "$tmp/service.txt")"
[ "$(state)" = STOPPED ] || fail "started at install: $(w sc query awscredd)"
[ -e "$log" ] && fail "the service ran at install: $(tr -d '\r' < "$log")"
w reg query 'HKLM\System\CurrentControlSet\Services\EventLog\Application\awscredd' > "$tmp/source.txt" || fail "no event source"
grep -Eq 'EventMessageFile +REG_EXPAND_SZ +%SystemRoot%\\Microsoft.NET\\Framework64\\v4.0.30319\\EventLogMessages.dll' "$tmp/source.txt" \
  || fail "event source: $(cat "$tmp/source.txt")"
grep -Eq 'TypesSupported +REG_DWORD +0x7' "$tmp/source.txt" || fail "event source: $(cat "$tmp/source.txt")"
uninstall_key='HKLM\Software\Microsoft\Windows\CurrentVersion\Uninstall'
w reg query "$uninstall_key\\$code1" /v DisplayVersion | grep -q "$version" || fail "not in Programs and Features"
grep -q 'SERVICE_CONFIG_FAILURE_ACTIONS' "$tmp/services.err" && fail "failure actions set before the service ran"
w "$drive/Program Files/awscredd/awscredd.exe" --help > "$tmp/help.txt" || fail "--help failed"
grep -qF '%ProgramData%\awscredd\config.toml' "$tmp/help.txt" || fail "--help: $(cat "$tmp/help.txt")"
echo "installed in ${t_install} ms: program files, template, service (automatic, LocalSystem, STOPPED), event source"

echo "== the template"
rc=0
timeout 120 wine "$drive/Program Files/awscredd/awscredd.exe" --config 'C:\ProgramData\awscredd\config.toml' check \
  > "$tmp/check.txt" 2>&1 || rc=$?
[ "$rc" = 2 ] && grep -q "no profiles are configured" "$tmp/check.txt" || fail "check of the template: $rc $(cat "$tmp/check.txt")"
w sc start awscredd > /dev/null || true
wait_state STOPPED 20 || fail "not STOPPED with the template: $(w sc query awscredd)"
w sc query awscredd > "$tmp/query.txt"
grep -Eq 'SERVICE_EXIT_CODE +: +78 ' "$tmp/query.txt" || fail "no exit code 78: $(cat "$tmp/query.txt")"
grep -q "no profiles are configured" <(tr -d '\r' < "$log") || fail "the log does not say why"
# The failure actions the service set on itself: Wine stores none, but its SCM prints them.
deadline=$(($(now_ms) + 10000))
until grep -q 'svcctl_ChangeServiceConfig2W SERVICE_CONFIG_FAILURE_ACTIONS not implemented: period 86400 ' "$tmp/services.err"; do
  [ "$(now_ms)" -lt "$deadline" ] || fail "the service set no failure actions: $(cat "$tmp/services.err")"
  sleep 0.2
done
grep -q "set the service's recovery" <(tr -d '\r' < "$log") || fail "the log does not say the recovery was set"
# The template's examples, uncommented, are a valid config (Windows paths in single quotes).
sed -E 's/^# (\[\[output\]\]|\[sso_session|\[profile|path = |profiles = |sso_|source_profile|role_arn|credential_process|state_dir|login_command)/\1/' \
  "$data/config.toml" > "$tmp/uncommented.toml"
w "$drive/Program Files/awscredd/awscredd.exe" --config "$(winpath "$tmp/uncommented.toml")" check > "$tmp/check2.txt" \
  || fail "the uncommented template is not valid: $(cat "$tmp/check2.txt")"
echo "with the template: STOPPED, exit code 78, the reason in the log; failure actions set (reset after 86400 s); the examples uncommented pass check"

echo "== a real config"
cat > "$tmp/creds.cmd" <<'CMD'
@echo off
echo {"Version":1,"AccessKeyId":"ASIAMSI","SecretAccessKey":"s3cret","SessionToken":"tok","Expiration":"2099-01-01T00:00:00Z"}
CMD
sed -i 's/$/\r/' "$tmp/creds.cmd"
mkdir -p "$tmp/out"
cat > "$data/config.toml" <<TOML
# edited by the administrator
[[output]]
path = '$(winpath "$tmp/out/credentials")'
[profile.svc]
credential_process = '$(winpath "$tmp/creds.cmd")'
TOML
cp "$data/config.toml" "$tmp/config.saved"
t0=$(now_ms)
w sc start awscredd > /dev/null || fail "sc start failed"
wait_state RUNNING 30 || fail "not RUNNING: $(w sc query awscredd)"
t_running=$(($(now_ms) - t0))
deadline=$(($(now_ms) + 30000))
until grep -q ASIAMSI "$tmp/out/credentials" 2>/dev/null; do
  [ "$(now_ms)" -lt "$deadline" ] || fail "no credentials written"
  sleep 0.1
done
[ -f "$data/state/state.json" ] || fail "no state in C:\\ProgramData\\awscredd\\state: $(ls -R "$data")"
echo "RUNNING ${t_running} ms after sc start; credentials written"

echo "== upgrade to $next"
# The service's SSO cache (LocalSystem's profile on Windows; Wine runs services as this user).
sso="$drive/users/$(id -un)/.aws/sso/cache"
mkdir -p "$sso"
echo '{"accessToken":"kept"}' > "$sso/kept.json"
cp "$data/state/state.json" "$tmp/state.saved"
starts=$(grep -c "awscredd started" <(tr -d '\r' < "$log"))
t0=$(now_ms)
timeout 300 wine msiexec /i "$(winpath "$msi2")" /qn /l*v "$(winpath "$tmp/upgrade.log")" > /dev/null 2>&1 \
  || fail "msiexec /i $next failed: $(tr -d '\000\r' < "$tmp/upgrade.log" | grep -iE 'error|fail' | head)"
t_upgrade=$(($(now_ms) - t0))
cmp -s "$tmp/config.saved" "$data/config.toml" || fail "the upgrade changed the config: $(cat "$data/config.toml")"
[ -f "$sso/kept.json" ] || fail "the upgrade removed the SSO cache"
[ -d "$data/state" ] || fail "the upgrade removed the state"
[ "$(w reg query 'HKLM\System\CurrentControlSet\Services' | grep -ci '\\awscredd$')" = 1 ] || fail "not one service entry"
w reg query "$uninstall_key\\$code2" /v DisplayVersion | grep -q "$next" || fail "$next not in Programs and Features"
w reg query "$uninstall_key\\$code1" > /dev/null && fail "$version is still in Programs and Features"
wait_state RUNNING 30 || fail "not RUNNING after the upgrade: $(w sc query awscredd)"
deadline=$(($(now_ms) + 10000))
until [ "$(grep -c "awscredd started" <(tr -d '\r' < "$log"))" -gt "$starts" ]; do
  [ "$(now_ms)" -lt "$deadline" ] || fail "the service did not start again after the upgrade"
  sleep 0.2
done
rc=0
timeout 300 wine msiexec /i "$(winpath "$msi1")" /qn > /dev/null 2>&1 || rc=$?
[ "$rc" != 0 ] || fail "the older MSI installed over the newer one"
w reg query "$uninstall_key\\$code2" /v DisplayVersion | grep -q "$next" || fail "the refused downgrade removed $next"
echo "upgraded in ${t_upgrade} ms: config byte for byte, state and SSO cache kept, one service, RUNNING again; a downgrade is refused (exit $rc)"

echo "== uninstall"
t0=$(now_ms)
timeout 300 wine msiexec /x "$code2" /qn /l*v "$(winpath "$tmp/uninstall.log")" > /dev/null 2>&1 \
  || fail "msiexec /x failed: $(tr -d '\000\r' < "$tmp/uninstall.log" | grep -iE 'error|fail' | head)"
t_uninstall=$(($(now_ms) - t0))
w reg query "$key" > /dev/null && fail "the service is still registered"
w sc query awscredd | grep -q STATE && fail "the service is still there"
w reg query 'HKLM\System\CurrentControlSet\Services\EventLog\Application\awscredd' /v EventMessageFile > /dev/null \
  && fail "the event source is still registered"
[ -e "$drive/Program Files/awscredd/awscredd.exe" ] && fail "program files left: $(ls "$drive/Program Files/awscredd")"
w reg query "$uninstall_key\\$code2" > /dev/null && fail "still in Programs and Features"
cmp -s "$tmp/config.saved" "$data/config.toml" || fail "the uninstall changed or removed the config"
[ -d "$data/state" ] && [ -f "$log" ] || fail "the uninstall removed state or log: $(ls -R "$data")"
echo "uninstalled in ${t_uninstall} ms: service, event source, program files gone; C:\\ProgramData\\awscredd kept"

echo "msi test: ok (MSI $size bytes; install ${t_install} ms, sc start to RUNNING ${t_running} ms, upgrade ${t_upgrade} ms, uninstall ${t_uninstall} ms; whole test $(( ($(now_ms) - t_ci) / 1000 )) s)"
