//! IAM Identity Center (SSO) end to end: the real binary against the fake OIDC and portal on
//! 127.0.0.1 — first sign-in through `login_command`, token reuse, refresh-token renewal,
//! AWS CLI v2 cache files, re-login after revocation, `slow_down`, expired and denied codes,
//! retried 5xx and throttling, concurrent processes on one session, `--no-login`, and no
//! secret in any log.

use crate::fake_aws::{
    FakeAws, Fault, DEVICE_AUTH, REGISTER, ROLE_CREDENTIALS, TOKEN_DEVICE, TOKEN_REFRESH,
};
use crate::util::{show, Guard, Sandbox};
use awscredd::credentials::{format_utc, parse_rfc3339, Credentials};
use awscredd::profile_file::ProfileFile;
use awscredd::sources::sso::cache::{sha1_hex, TokenCache};
use awscredd::store::credentials_in;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// No single `once` in these tests may take longer than this.
pub const LIMIT: Duration = Duration::from_secs(30);

pub const START_URL: &str = "https://x.awsapps.com/start";
pub const ACCOUNT: &str = "111122223333";
pub const ROLE: &str = "Developer";

/// A config with `[sso_session.corp]` and `[profile.dev]`, plus `daemon` lines (after
/// `state_dir`), `session` lines (in the session) and `more` (at the end).
pub fn sso_config(sb: &Sandbox, daemon: &str, session: &str, more: &str) -> PathBuf {
    sb.config(&format!(
        "[daemon]\nstate_dir = \"state\"\n{daemon}\n\
         [[output]]\npath = \"credentials\"\n\n\
         [sso_session.corp]\nsso_start_url = \"{START_URL}\"\nsso_region = \"us-east-1\"\n{session}\n\
         [profile.dev]\nsso_session = \"corp\"\nsso_account_id = \"{ACCOUNT}\"\nsso_role_name = \"{ROLE}\"\n\
         {more}"
    ))
}

/// `awscredd --config HOME/config.toml ARGS` with both SSO endpoints on the fake.
pub fn awscredd(sb: &Sandbox, fake: &FakeAws, args: &[&str]) -> Command {
    let mut c = bare(sb, args);
    c.env("AWS_ENDPOINT_URL_SSO_OIDC", &fake.url)
        .env("AWS_ENDPOINT_URL_SSO", &fake.url);
    c
}

/// `awscredd --config HOME/config.toml ARGS` with no endpoint variable.
pub fn bare(sb: &Sandbox, args: &[&str]) -> Command {
    let mut c = sb.command();
    c.arg("--config").arg(sb.file("config.toml")).args(args);
    c
}

static RUNS: AtomicUsize = AtomicUsize::new(0);

/// A running child whose output goes to files (so a chatty trace log never blocks on a full
/// pipe). Killed if dropped while running: no child outlives a failed test.
pub struct Proc {
    child: Guard,
    out: PathBuf,
    err: PathBuf,
}

impl Proc {
    pub fn spawn(sb: &Sandbox, mut cmd: Command) -> Proc {
        let n = RUNS.fetch_add(1, Ordering::Relaxed);
        let out = sb.file(&format!("run-{n}.stdout"));
        let err = sb.file(&format!("run-{n}.stderr"));
        let child = cmd
            .stdin(Stdio::null())
            .stdout(File::create(&out).unwrap())
            .stderr(File::create(&err).unwrap())
            .spawn()
            .expect("start awscredd");
        Proc {
            child: Guard(child),
            out,
            err,
        }
    }

    /// Waits at most `limit`, calling `tick` every few milliseconds meanwhile.
    pub fn wait_with(mut self, limit: Duration, mut tick: impl FnMut()) -> Output {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(s) = self.child.0.try_wait().unwrap() {
                break Some(s);
            }
            if Instant::now() > deadline {
                let _ = self.child.0.kill();
                let _ = self.child.0.wait();
                break None;
            }
            tick();
            std::thread::sleep(Duration::from_millis(5));
        };
        let out = Output {
            status: status.unwrap_or_else(|| self.child.0.wait().unwrap()),
            stdout: fs::read(&self.out).unwrap_or_default(),
            stderr: fs::read(&self.err).unwrap_or_default(),
        };
        assert!(
            status.is_some(),
            "awscredd did not finish within {limit:?} (killed):\n{}",
            show(&out)
        );
        out
    }

    pub fn wait(self, limit: Duration) -> Output {
        self.wait_with(limit, || {})
    }

    pub fn pid(&self) -> u32 {
        self.child.0.id()
    }

    /// What it has written to stderr so far.
    pub fn stderr_so_far(&self) -> String {
        fs::read_to_string(&self.err).unwrap_or_default()
    }
}

/// Runs `cmd` to the end (at most [`LIMIT`]).
pub fn run(sb: &Sandbox, cmd: Command) -> Output {
    Proc::spawn(sb, cmd).wait(LIMIT)
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `HOME/.aws/sso/cache`.
pub fn cache(sb: &Sandbox) -> TokenCache {
    TokenCache {
        dir: sb.file(".aws/sso/cache"),
    }
}

/// The token file of session `corp`.
pub fn token_file(sb: &Sandbox) -> PathBuf {
    sb.file(&format!(".aws/sso/cache/{}.json", sha1_hex("corp")))
}

pub fn read_json(p: &Path) -> Value {
    let bytes = fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{} is not JSON: {e}", p.display()))
}

#[cfg(unix)]
pub fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// Writes the session's token file the way AWS CLI v2 does (2-space indented JSON).
pub fn write_cli_token(sb: &Sandbox, token: &Value) {
    let p = token_file(sb);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(&p, serde_json::to_string_pretty(token).unwrap()).unwrap();
}

/// An AWS CLI v2 token file for session `corp` with a token the fake issued, its access token
/// expiring `expires_in` from now (as `expiresAt`, in the `Z` form).
pub fn cli_token(fake: &FakeAws, expires_in: i64) -> Value {
    let (id, secret, access, refresh) = fake.issue_token(expires_in.max(1));
    let now = OffsetDateTime::now_utc();
    json!({
        "startUrl": START_URL,
        "region": "us-east-1",
        "accessToken": access,
        "expiresAt": format_utc(now + time::Duration::seconds(expires_in)),
        "clientId": id,
        "clientSecret": secret,
        "registrationExpiresAt": format_utc(now + time::Duration::days(80)),
        "refreshToken": refresh,
    })
}

/// The credentials of every profile in `HOME/credentials`.
pub fn written(sb: &Sandbox) -> BTreeMap<String, Credentials> {
    let text = fs::read_to_string(sb.file("credentials")).unwrap_or_default();
    credentials_in(&ProfileFile::parse(&text).unwrap())
}

/// Asserts `[dev]` holds role credentials the fake handed out, and returns its key id.
pub fn assert_dev_creds(sb: &Sandbox) -> String {
    let all = written(sb);
    let c = all
        .get("dev")
        .unwrap_or_else(|| panic!("no [dev] in the credentials file: {all:?}"));
    assert!(c.access_key_id.starts_with("ASIAFAKE"), "{c:?}");
    assert!(
        c.secret_access_key
            .expose()
            .starts_with(&format!("fake-secret-{ACCOUNT}-{ROLE}-")),
        "{c:?}"
    );
    assert!(
        c.session_token
            .as_ref()
            .is_some_and(|t| t.expose().starts_with("fake-session-token-")),
        "{c:?}"
    );
    let left = c.expiration.expect("an expiration") - OffsetDateTime::now_utc();
    assert!(left > time::Duration::minutes(55), "{c:?}");
    c.access_key_id.clone()
}

/// Every OIDC call so far: (register, device auth, device-code polls, refreshes).
fn oidc_calls(fake: &FakeAws) -> [usize; 4] {
    [
        fake.calls(REGISTER),
        fake.calls(DEVICE_AUTH),
        fake.calls(TOKEN_DEVICE),
        fake.calls(TOKEN_REFRESH),
    ]
}

/// A `login_command` script that writes its `AWSCREDD_*` environment to `HOME/login-env`.
fn login_script(sb: &Sandbox) -> PathBuf {
    let p = sb.file("login.sh");
    fs::write(
        &p,
        "#!/bin/sh\nenv | grep '^AWSCREDD_' > \"$1.tmp\" && mv \"$1.tmp\" \"$1\"\necho opened the browser\n",
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    }
    p
}

#[test]
fn first_sign_in_runs_login_command_then_the_token_is_reused() {
    let sb = Sandbox::new();
    let fake = FakeAws::start();
    fake.configure(|s| s.approve_after_polls = Some(2));
    let script = login_script(&sb);
    let env_file = sb.file("login-env");
    sso_config(
        &sb,
        &format!(
            "login_command = [\"{}\", \"{}\"]",
            script.display(),
            env_file.display()
        ),
        "",
        "",
    );

    let o = run(&sb, awscredd(&sb, &fake, &["once"]));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(
        oidc_calls(&fake),
        [1, 1, 2, 0],
        "register, device auth, 2 polls, no refresh\n{}",
        show(&o)
    );
    let code = fake.last_user_code().expect("a user code");
    let err = stderr(&o);
    assert!(
        err.contains(&code) && err.contains(&format!("{}/device", fake.url)),
        "the URL and code are logged\n{}",
        show(&o)
    );

    // login_command saw the sign-in (it is not waited for: give it a moment).
    let deadline = Instant::now() + Duration::from_secs(10);
    while !env_file.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let seen: BTreeMap<String, String> = fs::read_to_string(&env_file)
        .unwrap_or_else(|e| panic!("login_command did not run ({e})\n{}", show(&o)))
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let want: BTreeMap<String, String> = [
        ("AWSCREDD_SSO_SESSION", "corp".to_string()),
        ("AWSCREDD_USER_CODE", code.clone()),
        ("AWSCREDD_VERIFICATION_URI", format!("{}/device", fake.url)),
        (
            "AWSCREDD_VERIFICATION_URI_COMPLETE",
            format!("{}/device?user_code={code}", fake.url),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(seen, want, "login_command's environment");

    let first_key = assert_dev_creds(&sb);
    assert_eq!(
        fake.role_requests(),
        vec![(ACCOUNT.to_string(), ROLE.to_string())]
    );

    // The token cache, as CLI v2 and the SDKs read it.
    let path = token_file(&sb);
    #[cfg(unix)]
    assert_eq!(mode(&path), 0o600, "{}", path.display());
    let t = read_json(&path);
    for field in [
        "startUrl",
        "region",
        "accessToken",
        "expiresAt",
        "clientId",
        "clientSecret",
        "registrationExpiresAt",
        "refreshToken",
    ] {
        assert!(t[field].is_string(), "no {field} in the cache: {t:#}");
    }
    assert_eq!(t["startUrl"], START_URL);
    assert_eq!(t["region"], "us-east-1");
    assert!(t["accessToken"]
        .as_str()
        .unwrap()
        .starts_with("fake-access-token-"));
    assert!(t["refreshToken"]
        .as_str()
        .unwrap()
        .starts_with("fake-refresh-token-"));
    assert!(t["clientSecret"]
        .as_str()
        .unwrap()
        .starts_with("fake-client-secret-"));
    let now = OffsetDateTime::now_utc();
    let expires = parse_rfc3339(t["expiresAt"].as_str().unwrap()).unwrap();
    assert!(
        (expires - now - time::Duration::hours(1)).abs() < time::Duration::minutes(1),
        "{t:#}"
    );
    let reg_expires = parse_rfc3339(t["registrationExpiresAt"].as_str().unwrap()).unwrap();
    assert!(reg_expires - now > time::Duration::days(89), "{t:#}");
    // The client registration is cached where CLI v2 keeps it, private too.
    let reg = cache(&sb).registration_path(
        "corp",
        START_URL,
        "us-east-1",
        &["sso:account:access".to_string()],
    );
    assert_eq!(read_json(&reg)["clientId"], t["clientId"]);
    #[cfg(unix)]
    assert_eq!(mode(&reg), 0o600, "{}", reg.display());

    // A second pass reuses the token: only the portal is called. `AWS_ENDPOINT_URL` alone
    // sends both APIs to the fake.
    let mut c = bare(&sb, &["once", "--force"]);
    c.env("AWS_ENDPOINT_URL", &fake.url);
    let o = run(&sb, c);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(oidc_calls(&fake), [1, 1, 2, 0], "{}", show(&o));
    assert_eq!(fake.calls(ROLE_CREDENTIALS), 2);
    assert_eq!(fake.role_requests().len(), 2);
    assert_ne!(assert_dev_creds(&sb), first_key, "new role credentials");
    assert_eq!(read_json(&path), t, "the cache is unchanged");
}

#[test]
fn a_token_near_expiry_is_renewed_with_the_refresh_token() {
    let sb = Sandbox::new();
    let fake = FakeAws::start();
    // The session's `endpoint_url` key, and no endpoint variable.
    sso_config(&sb, "", &format!("endpoint_url = \"{}\"", fake.url), "");
    let before = cli_token(&fake, 300);
    write_cli_token(&sb, &before);

    let o = run(&sb, bare(&sb, &["once", "--force"]));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(oidc_calls(&fake), [0, 0, 0, 1], "{}", show(&o));
    assert_dev_creds(&sb);
    let after = read_json(&token_file(&sb));
    assert_ne!(after["accessToken"], before["accessToken"], "{after:#}");
    assert_ne!(
        after["refreshToken"], before["refreshToken"],
        "rotated: {after:#}"
    );
    assert!(after["refreshToken"]
        .as_str()
        .unwrap()
        .starts_with("fake-refresh-token-"));
    assert_eq!(after["clientId"], before["clientId"]);
    assert_eq!(after["clientSecret"], before["clientSecret"]);
    assert_eq!(after["startUrl"], START_URL);
    let left =
        parse_rfc3339(after["expiresAt"].as_str().unwrap()).unwrap() - OffsetDateTime::now_utc();
    assert!(left > time::Duration::minutes(55), "{after:#}");
    #[cfg(unix)]
    assert_eq!(mode(&token_file(&sb)), 0o600);
    // Renewed under the session's lock, `.<sha1>.json.lock` beside the token.
    let lock = sb.file(&format!(".aws/sso/cache/.{}.json.lock", sha1_hex("corp")));
    assert!(lock.exists(), "{}", lock.display());

    // The renewed token is now used as is.
    let o = run(&sb, bare(&sb, &["once", "--force"]));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(oidc_calls(&fake), [0, 0, 0, 1], "{}", show(&o));
}

#[test]
fn a_cli_v2_cache_file_is_used_without_any_oidc_call() {
    let sb = Sandbox::new();
    let fake = FakeAws::start();
    sso_config(&sb, "", "", "");
    let in_1h = OffsetDateTime::now_utc() + time::Duration::hours(1);
    let z = format_utc(in_1h);
    let stem = z.trim_end_matches('Z');
    let plus2 = in_1h
        .to_offset(time::macros::offset!(+2))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    // Every form the CLI, botocore and the SDKs have written.
    for expires_at in [
        z.clone(),
        format!("{stem}.123Z"),
        format!("{stem}+00:00"),
        format!("{stem}.123456+00:00"),
        plus2,
    ] {
        let mut t = cli_token(&fake, 3600);
        t["expiresAt"] = json!(expires_at);
        write_cli_token(&sb, &t);
        let calls = fake.calls(ROLE_CREDENTIALS);
        let o = run(&sb, awscredd(&sb, &fake, &["once", "--force"]));
        assert_eq!(o.status.code(), Some(0), "{expires_at}: {}", show(&o));
        assert_eq!(
            oidc_calls(&fake),
            [0, 0, 0, 0],
            "{expires_at}: {}",
            show(&o)
        );
        assert_eq!(fake.calls(ROLE_CREDENTIALS), calls + 1, "{expires_at}");
        assert_dev_creds(&sb);
        assert_eq!(read_json(&token_file(&sb)), t, "{expires_at}: left as is");
    }

    // Only the two fields every writer has: still used.
    let (_, _, access, _) = fake.issue_token(3600);
    write_cli_token(
        &sb,
        &json!({"startUrl": START_URL, "region": "us-east-1", "accessToken": access, "expiresAt": z}),
    );
    let o = run(&sb, awscredd(&sb, &fake, &["once", "--force"]));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(oidc_calls(&fake), [0, 0, 0, 0], "{}", show(&o));
}

#[test]
fn a_revoked_session_signs_in_again() {
    let sb = Sandbox::new();
    let fake = FakeAws::start();
    fake.configure(|s| s.approve_after_polls = Some(2));
    sso_config(&sb, "", "", "");
    // Everything through `AWS_ENDPOINT_URL` alone, this time.
    let cmd = |args: &[&str]| {
        let mut c = bare(&sb, args);
        c.env("AWS_ENDPOINT_URL", &fake.url);
        c
    };
    let o = run(&sb, cmd(&["once"]));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let first = read_json(&token_file(&sb));
    let first_key = assert_dev_creds(&sb);

    fake.revoke_all();
    let o = run(&sb, cmd(&["once", "--force"]));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    // 401 → refresh refused (invalid_grant) → a new device authorization, same registration.
    assert_eq!(
        oidc_calls(&fake),
        [1, 2, 4, 1],
        "register once, 2 device auths, 2+2 polls, 1 refused refresh\n{}",
        show(&o)
    );
    assert_eq!(fake.calls(ROLE_CREDENTIALS), 3, "ok, 401, ok");
    let err = stderr(&o);
    assert!(err.contains("refused the access token"), "{}", show(&o));
    assert!(err.contains("invalid_grant"), "{}", show(&o));
    assert_ne!(assert_dev_creds(&sb), first_key);
    let second = read_json(&token_file(&sb));
    assert_ne!(second["accessToken"], first["accessToken"]);
    assert_ne!(second["refreshToken"], first["refreshToken"]);
}

#[test]
fn slow_down_adds_five_seconds_to_the_polling_interval() {
    let sb = Sandbox::new();
    let fake = FakeAws::start();
    // Poll 1: pending; poll 2: slow_down; poll 3 (the device's second): approved.
    fake.configure(|s| s.approve_after_polls = Some(2));
    fake.inject(TOKEN_DEVICE, Fault::Delay(Duration::ZERO));
    fake.inject(TOKEN_DEVICE, Fault::SlowDown);
    sso_config(&sb, "", "", "");
    let started = Instant::now();
    let mut polls: Vec<Instant> = Vec::new();
    let o = Proc::spawn(&sb, awscredd(&sb, &fake, &["once"])).wait_with(LIMIT, || {
        if fake.calls(TOKEN_DEVICE) > polls.len() {
            polls.push(Instant::now());
        }
    });
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(fake.calls(TOKEN_DEVICE), 3, "{}", show(&o));
    assert_eq!(polls.len(), 3, "{}", show(&o));
    let before = polls[1] - polls[0];
    let after = polls[2] - polls[1];
    assert!(
        before < Duration::from_millis(2500),
        "the interval was 1 s before slow_down: {before:?}"
    );
    assert!(
        after >= Duration::from_millis(5900),
        "1 s + 5 s after slow_down: {after:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_dev_creds(&sb);
}

#[test]
fn an_expired_or_denied_sign_in_fails_with_exit_1() {
    // Nobody approves, and the code expires after 2 s.
    let sb = Sandbox::new();
    let fake = FakeAws::start();
    fake.configure(|s| s.device_expires_in = 2);
    sso_config(&sb, "", "", "");
    let started = Instant::now();
    let o = run(&sb, awscredd(&sb, &fake, &["once"]));
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(
        stderr(&o).contains("expired before it was approved"),
        "{}",
        show(&o)
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(fake.calls(DEVICE_AUTH), 1, "no second sign-in");
    assert!(!token_file(&sb).exists());
    assert!(!written(&sb).contains_key("dev"));

    // The user denies the sign-in while awscredd polls.
    let sb = Sandbox::new();
    let fake = FakeAws::start();
    sso_config(&sb, "", "", "");
    let mut denied = false;
    let o = Proc::spawn(&sb, awscredd(&sb, &fake, &["once"])).wait_with(LIMIT, || {
        // The user code is set once the device code exists.
        if !denied && fake.last_user_code().is_some() {
            fake.deny();
            denied = true;
        }
    });
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(stderr(&o).contains("was denied"), "{}", show(&o));
    assert_eq!(fake.calls(DEVICE_AUTH), 1);
    assert!(!token_file(&sb).exists());
}

#[test]
fn server_errors_and_throttling_are_retried() {
    // A sign-in where every operation fails once first (the portal twice: 500, then 429).
    let sb = Sandbox::new();
    let fake = FakeAws::start();
    fake.configure(|s| s.approve_after_polls = Some(1));
    for op in [REGISTER, DEVICE_AUTH, TOKEN_DEVICE, ROLE_CREDENTIALS] {
        fake.inject(op, Fault::Error(500, "InternalServerException"));
    }
    fake.inject(
        ROLE_CREDENTIALS,
        Fault::Error(429, "TooManyRequestsException"),
    );
    sso_config(&sb, "", "", "");
    let o = run(&sb, awscredd(&sb, &fake, &["once"]));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(oidc_calls(&fake), [2, 2, 2, 0], "{}", show(&o));
    assert_eq!(fake.calls(ROLE_CREDENTIALS), 3, "{}", show(&o));
    assert_dev_creds(&sb);

    // A refresh-token grant that fails once.
    let sb = Sandbox::new();
    let fake = FakeAws::start();
    sso_config(&sb, "", "", "");
    let before = cli_token(&fake, 300);
    write_cli_token(&sb, &before);
    fake.inject(TOKEN_REFRESH, Fault::Error(500, "InternalServerException"));
    let o = run(&sb, awscredd(&sb, &fake, &["once", "--force"]));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(oidc_calls(&fake), [0, 0, 0, 2], "{}", show(&o));
    assert_ne!(
        read_json(&token_file(&sb))["accessToken"],
        before["accessToken"],
        "renewed after the retry"
    );
    assert_dev_creds(&sb);

    // A refresh that fails on every attempt: the current token (5 minutes left) still serves.
    let sb = Sandbox::new();
    let fake = FakeAws::start();
    sso_config(&sb, "", "", "");
    let before = cli_token(&fake, 300);
    write_cli_token(&sb, &before);
    for _ in 0..3 {
        fake.inject(
            TOKEN_REFRESH,
            Fault::Error(503, "ServiceUnavailableException"),
        );
    }
    let o = run(&sb, awscredd(&sb, &fake, &["once", "--force"]));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(oidc_calls(&fake), [0, 0, 0, 3], "{}", show(&o));
    assert!(
        stderr(&o).contains("cannot renew the SSO token yet"),
        "{}",
        show(&o)
    );
    assert_eq!(
        read_json(&token_file(&sb)),
        before,
        "the cache is unchanged"
    );
    assert_dev_creds(&sb);
}

#[test]
fn a_portal_that_keeps_failing_fails_only_its_profile() {
    let sb = Sandbox::new();
    let fake = FakeAws::start();
    let legacy = sb.process_script("legacy.sh", "ASIALEGACY", Some(3600));
    sso_config(
        &sb,
        "",
        "",
        &format!(
            "\n[profile.legacy]\ncredential_process = \"{}\"\n",
            legacy.display()
        ),
    );
    write_cli_token(&sb, &cli_token(&fake, 3600));
    for _ in 0..3 {
        fake.inject(
            ROLE_CREDENTIALS,
            Fault::Error(500, "InternalServerException"),
        );
    }
    let o = run(&sb, awscredd(&sb, &fake, &["once"]));
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert_eq!(fake.calls(ROLE_CREDENTIALS), 3, "3 attempts\n{}", show(&o));
    let err = stderr(&o);
    assert!(
        err.contains("GetRoleCredentials") && err.contains("500"),
        "{}",
        show(&o)
    );
    let all = written(&sb);
    assert_eq!(all["legacy"].access_key_id, "ASIALEGACY", "{all:?}");
    assert!(!all.contains_key("dev"), "{all:?}");
    assert_eq!(oidc_calls(&fake), [0, 0, 0, 0]);
}

/// Starts `n` `once --force` together and waits for all of them.
fn together(sb: &Sandbox, fake: &FakeAws, n: usize) -> Vec<Output> {
    let procs: Vec<Proc> = (0..n)
        .map(|_| Proc::spawn(sb, awscredd(sb, fake, &["once", "--force"])))
        .collect();
    // Dropping the rest kills them if one wait panics.
    procs.into_iter().map(|p| p.wait(LIMIT)).collect()
}

#[test]
fn concurrent_processes_renew_or_sign_in_once() {
    // (a) An access token with a minute left: one refresh for all three.
    let sb = Sandbox::new();
    let fake = FakeAws::start();
    sso_config(&sb, "", "", "");
    let before = cli_token(&fake, 60);
    write_cli_token(&sb, &before);
    for o in together(&sb, &fake, 3) {
        assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    }
    assert_eq!(oidc_calls(&fake), [0, 0, 0, 1]);
    assert_eq!(fake.role_requests().len(), 3);
    assert_ne!(
        read_json(&token_file(&sb))["accessToken"],
        before["accessToken"]
    );
    assert_dev_creds(&sb);

    // (b) No token at all: one device authorization for all three.
    let sb = Sandbox::new();
    let fake = FakeAws::start();
    fake.configure(|s| s.approve_after_polls = Some(2));
    sso_config(&sb, "", "", "");
    for o in together(&sb, &fake, 3) {
        assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    }
    assert_eq!(oidc_calls(&fake), [1, 1, 2, 0]);
    assert_eq!(fake.role_requests().len(), 3);
    assert_dev_creds(&sb);
}

#[test]
fn no_login_fails_at_once_naming_awscredd_login() {
    let sb = Sandbox::new();
    let fake = FakeAws::start();
    fake.configure(|s| s.approve_after_polls = Some(1));
    let legacy = sb.process_script("legacy.sh", "ASIALEGACY", Some(3600));
    sso_config(
        &sb,
        "",
        "",
        &format!(
            "\n[profile.legacy]\ncredential_process = \"{}\"\n",
            legacy.display()
        ),
    );
    let started = Instant::now();
    let o = run(&sb, awscredd(&sb, &fake, &["once", "--no-login"]));
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(
        stderr(&o).contains("awscredd login --sso-session corp"),
        "{}",
        show(&o)
    );
    assert_eq!(oidc_calls(&fake), [0, 0, 0, 0], "{}", show(&o));
    assert_eq!(fake.calls(ROLE_CREDENTIALS), 0);
    assert!(written(&sb).contains_key("legacy"));

    // An expired token with no way to refresh it is "no token" too.
    let (_, _, access, _) = fake.issue_token(1);
    write_cli_token(
        &sb,
        &json!({"startUrl": START_URL, "region": "us-east-1", "accessToken": access,
                "expiresAt": format_utc(OffsetDateTime::now_utc() - time::Duration::hours(1))}),
    );
    let o = run(
        &sb,
        awscredd(&sb, &fake, &["once", "--no-login", "--force"]),
    );
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(stderr(&o).contains("awscredd login"), "{}", show(&o));
    assert_eq!(oidc_calls(&fake), [0, 0, 0, 0], "{}", show(&o));
}

/// Prefixes of every secret the fake hands out.
const SECRET_PREFIXES: [&str; 6] = [
    "fake-access-token-",
    "fake-refresh-token-",
    "fake-client-secret-",
    "fake-device-code-",
    "fake-secret-",
    "fake-session-token-",
];

/// Every line of `o` that shows a secret of `secrets` or one of [`SECRET_PREFIXES`].
fn leaks(o: &Output, secrets: &[String]) -> Vec<String> {
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    text.lines()
        .filter(|l| {
            SECRET_PREFIXES.iter().any(|p| l.contains(p))
                || secrets.iter().any(|s| l.contains(s.as_str()))
        })
        .map(|l| l.chars().take(800).collect())
        .collect()
}

/// The secret values now in the token cache and the credentials file.
fn secrets_on_disk(sb: &Sandbox) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(t) = cache(sb).load("corp") {
        out.push(t.access_token.expose().to_string());
        out.extend(t.refresh_token.map(|r| r.expose().to_string()));
        out.extend(t.client_secret.map(|r| r.expose().to_string()));
    }
    for c in written(sb).values() {
        out.push(c.secret_access_key.expose().to_string());
        out.extend(c.session_token.as_ref().map(|t| t.expose().to_string()));
    }
    out
}

/// A sign-in, a refresh and role credentials with `log_args`; returns every run's output
/// and the secrets they handled.
fn full_flow(log_args: &[&str]) -> (Vec<Output>, Vec<String>) {
    let sb = Sandbox::new();
    let fake = FakeAws::start();
    // 10 minutes: the next pass renews the token.
    fake.configure(|s| {
        s.approve_after_polls = Some(2);
        s.access_token_ttl = 600;
    });
    sso_config(&sb, "", "", "");
    let mut outs = Vec::new();
    let mut secrets = Vec::new();
    for args in [&["once"][..], &["once", "--force"]] {
        let mut c = awscredd(&sb, &fake, log_args);
        c.args(args);
        let o = run(&sb, c);
        assert_eq!(o.status.code(), Some(0), "{}", show(&o));
        secrets.extend(secrets_on_disk(&sb));
        outs.push(o);
    }
    assert_eq!(oidc_calls(&fake), [1, 1, 2, 1]);
    assert_eq!(fake.calls(ROLE_CREDENTIALS), 2);
    (outs, secrets)
}

fn assert_no_leak(what: &str, log_args: &[&str]) {
    let (outs, secrets) = full_flow(log_args);
    for o in &outs {
        let bad = leaks(o, &secrets);
        assert!(
            bad.is_empty(),
            "{what}: {} log line(s) show a secret:\n{}",
            bad.len(),
            bad.join("\n")
        );
    }
}

#[test]
fn no_secret_in_logs_at_debug_for_every_target() {
    assert_no_leak("text, debug", &["--log-level", "debug"]);
    assert_no_leak(
        "json, debug",
        &["--log-level", "debug", "--log-format", "json"],
    );
}

/// awscredd's own code, hyper, rustls and the SDK's HTTP layer at trace; only the SDK's
/// orchestrator is kept at debug.
#[test]
fn no_secret_in_logs_at_trace_but_the_sdk_orchestrator() {
    let filter = "trace,aws_smithy_runtime::client::orchestrator=debug";
    assert_no_leak("text, trace", &["--log-level", filter]);
    assert_no_leak(
        "json, trace",
        &["--log-level", filter, "--log-format", "json"],
    );
}

/// Regression test: at trace, the AWS SDK's
/// `aws_smithy_runtime::client::orchestrator` logs the GetRoleCredentials request headers
/// (`x-amz-sso_bearer_token`: the SSO access token) on every pass, and the
/// StartDeviceAuthorization response body and output (the device code) on a sign-in; and
/// `--log-level trace` / `RUST_LOG=trace` turned that target on, until `main.rs` capped the
/// SDK's targets at debug.
#[test]
fn no_secret_in_logs_at_trace_for_every_target() {
    assert_no_leak("text, trace", &["--log-level", "trace"]);
    assert_no_leak(
        "json, trace",
        &["--log-level", "trace", "--log-format", "json"],
    );
}

/// A token the portal refuses is renewed with the refresh token. Issue 27 item 7: when the
/// portal refuses the renewed token too (two 401s around a successful refresh-token grant),
/// that token was recorded as refused for good and a human had to sign in; now the failure is
/// transient, nothing is recorded, and the next pass uses the renewed token with no sign-in.
#[test]
fn a_token_the_portal_refuses_is_renewed_and_not_refused_for_good_after_a_second_401() {
    let sb = Sandbox::new();
    let fake = FakeAws::start();
    fake.configure(|s| s.approve_after_polls = Some(1));
    sso_config(&sb, "", "", "");
    // An hour left, but the portal does not know it: renewed with the refresh token.
    let mut t = cli_token(&fake, 3600);
    t["accessToken"] = json!("not-known-to-the-portal");
    write_cli_token(&sb, &t);
    let o = run(&sb, awscredd(&sb, &fake, &["once"]));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(oidc_calls(&fake), [0, 0, 0, 1], "{}", show(&o));
    assert_eq!(fake.calls(ROLE_CREDENTIALS), 2, "401, then ok");
    assert_dev_creds(&sb);

    // 401, a successful refresh-token grant, 401 again: retried later, no sign-in.
    fake.inject(ROLE_CREDENTIALS, Fault::Error(401, "UnauthorizedException"));
    fake.inject(ROLE_CREDENTIALS, Fault::Error(401, "UnauthorizedException"));
    let o = run(
        &sb,
        awscredd(&sb, &fake, &["once", "--force", "--no-login"]),
    );
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert_eq!(oidc_calls(&fake), [0, 0, 0, 2], "{}", show(&o));
    assert_eq!(fake.calls(ROLE_CREDENTIALS), 4, "401, 401");
    assert!(
        stderr(&o).contains("just renewed too") && stderr(&o).contains("will retry"),
        "{}",
        show(&o)
    );
    let state = fs::read_to_string(sb.file("state/state.json")).unwrap_or_default();
    assert!(
        !state.contains("refused_token"),
        "nothing recorded as refused: {state}"
    );

    // The next pass uses the renewed token: no grant, no sign-in.
    let o = run(
        &sb,
        awscredd(&sb, &fake, &["once", "--force", "--no-login"]),
    );
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(oidc_calls(&fake), [0, 0, 0, 2], "{}", show(&o));
    assert_eq!(fake.calls(ROLE_CREDENTIALS), 5);
    assert_dev_creds(&sb);
}

/// Regression test: a client registration the service no longer accepts
/// (`invalid_client`: deleted, or registered in another `sso_region`) is reused for every
/// sign-in until its `registrationExpiresAt` (up to 90 days): StartDeviceAuthorization fails
/// with `invalid_client` on every pass. It is now replaced by a new RegisterClient.
#[test]
fn a_refused_client_registration_is_replaced() {
    let sb = Sandbox::new();
    let fake = FakeAws::start();
    fake.configure(|s| s.approve_after_polls = Some(1));
    sso_config(&sb, "", "", "");
    let now = OffsetDateTime::now_utc();
    write_cli_token(
        &sb,
        &json!({
            "startUrl": START_URL, "region": "us-east-1", "accessToken": "expired",
            "expiresAt": format_utc(now - time::Duration::hours(1)),
            "clientId": "fake-client-unknown", "clientSecret": "unknown",
            "registrationExpiresAt": format_utc(now + time::Duration::days(30)),
            "refreshToken": "unknown-refresh",
        }),
    );
    let o = run(&sb, awscredd(&sb, &fake, &["once"]));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(fake.calls(REGISTER), 1, "{}", show(&o));
    assert_dev_creds(&sb);
}

/// Regression test: when the service issues access tokens that live
/// 20 minutes or less (REFRESH_WINDOW), a renewed token was never "fresh", so every profile of
/// the session renewed it again in the same pass: N refresh-token grants for N profiles, each
/// rotating the refresh token. Now a token this process renewed is used while it is valid.
#[test]
fn short_lived_tokens_are_renewed_once_per_pass() {
    let sb = Sandbox::new();
    let fake = FakeAws::start();
    fake.configure(|s| s.access_token_ttl = 600);
    sso_config(
        &sb,
        "",
        "",
        &format!(
            "\n[profile.ops]\nsso_session = \"corp\"\nsso_account_id = \"{ACCOUNT}\"\nsso_role_name = \"Ops\"\n\
             \n[profile.ro]\nsso_session = \"corp\"\nsso_account_id = \"{ACCOUNT}\"\nsso_role_name = \"ReadOnly\"\n"
        ),
    );
    write_cli_token(&sb, &cli_token(&fake, 300));
    let o = run(&sb, awscredd(&sb, &fake, &["once", "--force"]));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(fake.role_requests().len(), 3);
    assert_eq!(fake.calls(TOKEN_REFRESH), 1, "{}", show(&o));
}

#[test]
fn a_throttling_portal_slows_the_pass_down_but_every_profile_is_written() {
    let sb = Sandbox::new();
    let fake = FakeAws::start();
    fake.configure(|s| {
        s.portal_max_in_flight = Some(2);
        s.latency = Duration::from_millis(20);
    });
    let mut more = String::new();
    for i in 0..100 {
        more.push_str(&format!(
            "[profile.p{i:03}]\nsso_session = \"corp\"\nsso_account_id = \"{ACCOUNT}\"\nsso_role_name = \"Role{i}\"\n"
        ));
    }
    sso_config(&sb, "", "", &more);
    write_cli_token(&sb, &cli_token(&fake, 3600));
    let started = Instant::now();
    let o = run(&sb, awscredd(&sb, &fake, &["once"]));
    let took = started.elapsed();
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let written = written(&sb);
    assert_eq!(written.len(), 101, "every profile written");
    let throttled = fake.portal_throttled();
    println!(
        "throttling portal (2 in flight, 20 ms): 101 profiles in {took:?}, {throttled} answers of 429"
    );
    assert!(throttled < 101, "the 429s should stay few: {throttled}");
}

/// The SSO session ended: the portal refuses the cached access token (still valid by its
/// expiry) and OIDC the refresh token. That token is recorded as refused in awscredd's state
/// (the shared cache is left as the CLI leaves it): it is not tried again, `status` waits for
/// a login, `login` without `--sso-session` picks that session, and `once` signs in at once.
#[test]
fn a_refused_token_waits_for_a_login_and_is_not_tried_again() {
    let sb = Sandbox::new();
    let fake = FakeAws::start();
    sso_config(&sb, "", "", "");
    let token = cli_token(&fake, 3600);
    write_cli_token(&sb, &token);
    fake.revoke_all();
    let o = run(&sb, awscredd(&sb, &fake, &["once", "--no-login"]));
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(
        stderr(&o).contains("run `awscredd login --sso-session corp`"),
        "{}",
        show(&o)
    );
    assert_eq!(oidc_calls(&fake), [0, 0, 0, 1], "{}", show(&o));
    assert_eq!(
        fake.calls(ROLE_CREDENTIALS),
        1,
        "refused; the renewal is refused too"
    );
    assert_eq!(
        read_json(&token_file(&sb)),
        token,
        "the shared cache is left as it is"
    );

    let status = run(&sb, awscredd(&sb, &fake, &["status", "--json"]));
    assert_eq!(status.status.code(), Some(1), "{}", show(&status));
    let v: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(v["sso_sessions"][0]["state"], "waiting_for_login", "{v}");
    assert_eq!(v["profiles"][0]["state"], "waiting_for_login", "{v}");
    let state = fs::read_to_string(sb.file("state/state.json")).unwrap();
    assert!(
        !state.contains(token["accessToken"].as_str().unwrap())
            && !state.contains(token["refreshToken"].as_str().unwrap()),
        "{state}"
    );

    // Not tried again: no call to the portal or OIDC.
    let o = run(
        &sb,
        awscredd(&sb, &fake, &["once", "--no-login", "--force"]),
    );
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(
        stderr(&o).contains("awscredd login --sso-session corp"),
        "{}",
        show(&o)
    );
    assert_eq!(oidc_calls(&fake), [0, 0, 0, 1], "{}", show(&o));
    assert_eq!(fake.calls(ROLE_CREDENTIALS), 1, "{}", show(&o));

    // `login` without --sso-session signs in to that session, as it would with no token.
    fake.configure(|s| s.approve_after_polls = Some(1));
    let o = run(&sb, awscredd(&sb, &fake, &["login", "--no-browser"]));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(fake.calls(DEVICE_AUTH), 1, "{}", show(&o));
    let status = run(&sb, awscredd(&sb, &fake, &["status", "--json"]));
    let v: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(v["sso_sessions"][0]["state"], "ok", "{v}");
    let o = run(&sb, awscredd(&sb, &fake, &["once", "--no-login"]));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_dev_creds(&sb);

    // Refused again: an unattended `once` starts a device authorization straight away, as
    // with no token, without offering the refused token again.
    fake.revoke_all();
    let o = run(
        &sb,
        awscredd(&sb, &fake, &["once", "--no-login", "--force"]),
    );
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let (roles, refreshes) = (fake.calls(ROLE_CREDENTIALS), fake.calls(TOKEN_REFRESH));
    let o = run(&sb, awscredd(&sb, &fake, &["once", "--force"]));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(fake.calls(DEVICE_AUTH), 2, "{}", show(&o));
    assert_eq!(fake.calls(TOKEN_REFRESH), refreshes, "{}", show(&o));
    assert_eq!(
        fake.calls(ROLE_CREDENTIALS),
        roles + 1,
        "only with the new token"
    );
    let status = run(&sb, awscredd(&sb, &fake, &["status", "--json"]));
    assert_eq!(status.status.code(), Some(0), "{}", show(&status));
}

/// Issue 27 item 7: a 200 answer cut short (broken JSON) from the portal or the OIDC service was
/// "HTTP 200 error" and permanent (the daemon waited 5 minutes and more; a refresh-token grant
/// answered so counted as the refresh token refused); it is transient.
#[test]
fn a_truncated_200_answer_is_transient() {
    let sb = Sandbox::new();
    let fake = FakeAws::start();
    sso_config(&sb, "", "", "");
    write_cli_token(&sb, &cli_token(&fake, 3600));
    fake.inject(ROLE_CREDENTIALS, Fault::Malformed);
    let o = run(
        &sb,
        awscredd(&sb, &fake, &["once", "--force", "--no-login"]),
    );
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let err = stderr(&o);
    assert!(
        err.contains("refresh failed, will retry")
            && err.contains("could not be read")
            && !err.contains("HTTP 200 error"),
        "{}",
        show(&o)
    );

    // A refresh-token grant answered so: the current token serves, the refresh token is kept.
    write_cli_token(&sb, &cli_token(&fake, 300));
    fake.inject(TOKEN_REFRESH, Fault::Malformed);
    let o = run(
        &sb,
        awscredd(&sb, &fake, &["once", "--force", "--no-login"]),
    );
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let err = stderr(&o);
    assert!(
        err.contains("cannot renew the SSO token yet")
            && err.contains("could not be read")
            && !err.contains("was refused"),
        "{}",
        show(&o)
    );
}
