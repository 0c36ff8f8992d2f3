//! The older per-profile SSO form (`sso_start_url` and `sso_region` in the profile, no
//! `sso_session`) end to end against the fake IAM Identity Center: one sign-in per start URL,
//! its token at the AWS CLI's `sha1(start URL)` name in the CLI's fields, never a refresh-token
//! grant, `login --profile`, `status`, and botocore reading the token awscredd wrote.

use crate::fake_aws::{FakeAws, DEVICE_AUTH, REGISTER, TOKEN_DEVICE, TOKEN_REFRESH};
use crate::sso::{assert_dev_creds, awscredd, read_json, run, written, ACCOUNT, ROLE, START_URL};
use crate::util::{find_botocore, show, Sandbox};
use awscredd::credentials::format_utc;
use awscredd::sources::sso::cache::sha1_hex;
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// `[profile.dev]` and `[profile.ops]` in the older form, on one start URL.
fn legacy_config(sb: &Sandbox) {
    let profile = |name: &str, role: &str| {
        format!(
            "[profile.{name}]\nsso_start_url = \"{START_URL}\"\nsso_region = \"us-east-1\"\n\
             sso_account_id = \"{ACCOUNT}\"\nsso_role_name = \"{role}\"\n\n"
        )
    };
    sb.config(&format!(
        "[daemon]\nstate_dir = \"state\"\n\n[[output]]\npath = \"credentials\"\n\n{}{}",
        profile("dev", ROLE),
        profile("ops", "Ops")
    ));
}

/// The token file the AWS CLI uses for the older form: `sha1(start URL).json`.
fn legacy_token_file(sb: &Sandbox) -> PathBuf {
    sb.file(&format!(".aws/sso/cache/{}.json", sha1_hex(START_URL)))
}

/// (register, device authorizations, device-code polls, refresh-token grants).
fn oidc(fake: &FakeAws) -> [usize; 4] {
    [
        fake.calls(REGISTER),
        fake.calls(DEVICE_AUTH),
        fake.calls(TOKEN_DEVICE),
        fake.calls(TOKEN_REFRESH),
    ]
}

fn set_expiry(sb: &Sandbox, token: &mut Value, from_now: time::Duration) {
    token["expiresAt"] = format_utc(OffsetDateTime::now_utc() + from_now).into();
    std::fs::write(legacy_token_file(sb), token.to_string()).unwrap();
}

#[test]
fn legacy_profiles_share_one_sign_in_under_sha1_of_the_start_url_and_never_refresh() {
    let sb = Sandbox::new();
    let fake = FakeAws::start();
    fake.configure(|s| s.approve_after_polls = Some(2));
    legacy_config(&sb);

    // `check` accepts it, with the hint for the sso_session form.
    let o = sb.run(&["check"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("warning: profiles `dev`, `ops` use the older per-profile SSO form")
            && err.contains(
                "add [sso_session.x] with sso_start_url = \"https://x.awsapps.com/start\""
            ),
        "{}",
        show(&o)
    );

    // One sign-in serves both profiles.
    let o = run(&sb, awscredd(&sb, &fake, &["once"]));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(oidc(&fake), [1, 1, 2, 0], "{}", show(&o));
    assert_dev_creds(&sb);
    assert!(written(&sb).contains_key("ops"));
    assert!(!sb
        .file(&format!(".aws/sso/cache/{}.json", sha1_hex("corp")))
        .exists());

    // The AWS CLI's file for the older form: its four fields, mode 0600.
    let path = legacy_token_file(&sb);
    let mut token = read_json(&path);
    let mut keys: Vec<&str> = token
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        ["accessToken", "expiresAt", "region", "startUrl"],
        "{token:#}"
    );
    assert_eq!(token["startUrl"], START_URL);
    assert_eq!(token["region"], "us-east-1");
    #[cfg(unix)]
    assert_eq!(crate::sso::mode(&path), 0o600);

    // `status` names the sign-in by its start URL; nothing renews it without a human.
    let o = sb.run(&["status", "--json"]);
    let status: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("status --json: {e}\n{}", show(&o)));
    let sessions = status["sso_sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{status:#}");
    assert_eq!(sessions[0]["name"], START_URL);
    assert_eq!(sessions[0]["state"], "ok");
    assert!(sessions[0]["refreshable_until"].is_null(), "{status:#}");

    // Ten minutes left: used as it is, no refresh-token grant (there is none to make).
    set_expiry(&sb, &mut token, time::Duration::minutes(10));
    let o = run(&sb, awscredd(&sb, &fake, &["once", "--force"]));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(oidc(&fake), [1, 1, 2, 0], "{}", show(&o));

    // Expired, with a refresh token and registration in the file (another tool's): still no
    // refresh-token grant, a new sign-in.
    let (id, secret, _, refresh) = fake.issue_token(3600);
    token["clientId"] = id.into();
    token["clientSecret"] = secret.into();
    token["registrationExpiresAt"] =
        format_utc(OffsetDateTime::now_utc() + time::Duration::days(30)).into();
    token["refreshToken"] = refresh.into();
    set_expiry(&sb, &mut token, time::Duration::minutes(-5));
    let o = run(&sb, awscredd(&sb, &fake, &["once", "--force"]));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let [_, auths, _, refreshes] = oidc(&fake);
    assert_eq!((auths, refreshes), (2, 0), "{}", show(&o));
    let renewed = read_json(&path);
    assert_ne!(renewed["accessToken"], token["accessToken"]);
    assert!(renewed.get("refreshToken").is_none(), "{renewed:#}");
    assert_dev_creds(&sb);
}

#[test]
fn login_by_profile_signs_in_the_older_form() {
    let sb = Sandbox::new();
    let fake = FakeAws::start();
    fake.configure(|s| s.approve_after_polls = Some(1));
    legacy_config(&sb);
    let o = run(
        &sb,
        awscredd(&sb, &fake, &["login", "--profile", "ops", "--no-browser"]),
    );
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains(&format!(
            "SSO sign-in `{START_URL}` (the older per-profile form): signed in"
        )),
        "{}",
        show(&o)
    );
    assert!(legacy_token_file(&sb).exists());
    assert_eq!(oidc(&fake), [1, 1, 1, 0]);
    // A profile that does not use SSO, or none: usage errors.
    let o = run(&sb, awscredd(&sb, &fake, &["login", "--profile", "nope"]));
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
}

#[test]
fn botocore_reads_the_token_awscredd_wrote_for_the_older_form() {
    let (python, site) = find_botocore().expect(
        "this test needs botocore: python3 -m venv target/venv && \
         target/venv/bin/pip install -r tests/requirements.txt",
    );
    let sb = Sandbox::new();
    let fake = FakeAws::start();
    fake.configure(|s| s.approve_after_polls = Some(1));
    legacy_config(&sb);
    let o = run(&sb, awscredd(&sb, &fake, &["once"]));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    std::fs::write(
        sb.file("aws-config"),
        format!(
            "[profile dev]\nsso_start_url = {START_URL}\nsso_region = us-east-1\n\
             sso_account_id = {ACCOUNT}\nsso_role_name = {ROLE}\nregion = us-east-1\n"
        ),
    )
    .unwrap();
    let before = (oidc(&fake), fake.role_requests().len());
    let code = "import json, botocore.session\n\
                c = botocore.session.Session(profile='dev').get_credentials()\n\
                f = c.get_frozen_credentials()\n\
                print(json.dumps({'method': c.method, 'access_key': f.access_key}))\n";
    let mut child = Command::new(python)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", sb.path())
        .env("PYTHONPATH", site)
        .env("AWS_CONFIG_FILE", sb.file("aws-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", sb.file("no-such-file"))
        .env("AWS_ENDPOINT_URL_SSO", &fake.url)
        .env("AWS_ENDPOINT_URL_SSO_OIDC", &fake.url)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .args(["-c", code])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "botocore failed: {}", show(&out));
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got["method"], "sso", "{got:#}");
    assert!(got["access_key"].as_str().unwrap().starts_with("ASIAFAKE"));
    // botocore used our token as it was: one role request, no OIDC call.
    assert_eq!(oidc(&fake), before.0);
    assert_eq!(fake.role_requests().len(), before.1 + 1);
}
