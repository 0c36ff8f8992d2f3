//! `awscredd login`: interactive sign-in against the fake IAM Identity Center.

use crate::fake_aws::{FakeAws, DEVICE_AUTH, REGISTER};
use crate::util::{show, Sandbox};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn setup(fake: &FakeAws) -> Sandbox {
    let sb = Sandbox::new();
    let marker = sb.file("login-command-ran");
    let script = sb.file("notify.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\ntouch '{}'\n", marker.display()),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    sb.config(&format!(
        "[daemon]\nstate_dir = \"state\"\nlogin_command = [\"{}\"]\n[[output]]\npath = \"credentials\"\n\
         [sso_session.corp]\nsso_start_url = \"https://x.awsapps.com/start\"\nsso_region = \"us-east-1\"\n\
         [sso_session.other]\nsso_start_url = \"https://y.awsapps.com/start\"\nsso_region = \"eu-west-1\"\n\
         [profile.dev]\nsso_session = \"corp\"\nsso_account_id = \"111122223333\"\nsso_role_name = \"Developer\"\n\
         [profile.ops]\nsso_session = \"other\"\nsso_account_id = \"111122223333\"\nsso_role_name = \"Ops\"\n",
        script.display()
    ));
    let _ = fake;
    sb
}

fn command(sb: &Sandbox, fake: &FakeAws, args: &[&str]) -> Command {
    let mut c = sb.command();
    c.env("AWS_ENDPOINT_URL_SSO_OIDC", &fake.url)
        .env("AWS_ENDPOINT_URL_SSO", &fake.url)
        .arg("--config")
        .arg(sb.file("config.toml"))
        .args(args);
    c
}

#[test]
fn login_prints_the_code_stores_the_token_and_runs_no_login_command() {
    let fake = FakeAws::start();
    fake.configure(|s| s.approve_after_polls = Some(2));
    let sb = setup(&fake);
    let o = command(
        &sb,
        &fake,
        &["login", "--sso-session", "corp", "--no-browser"],
    )
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let code = fake.last_user_code().unwrap();
    assert!(
        out.contains(&code) && out.contains(&format!("{}/device", fake.url)),
        "{}",
        show(&o)
    );
    assert!(out.contains("signed in"), "{}", show(&o));
    assert!(
        !sb.file("login-command-ran").exists(),
        "login must not run login_command"
    );
    let cache = sb.file(&format!(
        ".aws/sso/cache/{}.json",
        awscredd::sources::sso::cache::sha1_hex("corp")
    ));
    assert!(cache.exists());
    assert_eq!((fake.calls(REGISTER), fake.calls(DEVICE_AUTH)), (1, 1));

    // Signed in already, but asked for by name: a sign-in afresh, as `aws sso login` does
    // (the token in the cache may have been refused, whatever its expiry says).
    let first = std::fs::read_to_string(&cache).unwrap();
    let o = command(
        &sb,
        &fake,
        &["login", "--sso-session", "corp", "--no-browser"],
    )
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(fake.calls(DEVICE_AUTH), 2);
    assert_ne!(std::fs::read_to_string(&cache).unwrap(), first);

    // Without --sso-session, only the session with no token signs in...
    let o = command(&sb, &fake, &["login", "--no-browser"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(fake.calls(DEVICE_AUTH), 3);
    // ...and with every session signed in, none does.
    let o = command(&sb, &fake, &["login", "--no-browser"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(fake.calls(DEVICE_AUTH), 3);
}

#[test]
fn unknown_session_is_a_usage_error_and_denial_fails() {
    let fake = FakeAws::start();
    let sb = setup(&fake);
    let o = command(&sb, &fake, &["login", "--sso-session", "nope"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("nope"));

    let child = command(
        &sb,
        &fake,
        &["login", "--sso-session", "corp", "--no-browser"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let start = Instant::now();
    while fake.calls(DEVICE_AUTH) == 0 && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(50));
    }
    fake.deny();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("denied"),
        "{}",
        show(&o)
    );
}

#[test]
fn login_waits_for_a_sign_in_in_progress_and_uses_its_token() {
    let fake = FakeAws::start();
    let sb = setup(&fake);
    // An unattended `once` starts the device authorization and holds the session lock.
    let once = command(&sb, &fake, &["once"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while fake.calls(DEVICE_AUTH) < 2 && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(50));
    }
    // (two sessions: both sign-ins are in progress)
    let login_err = sb.file("login.stderr");
    let login = command(
        &sb,
        &fake,
        &["login", "--sso-session", "corp", "--no-browser"],
    )
    .stdout(Stdio::piped())
    .stderr(std::fs::File::create(&login_err).unwrap())
    .spawn()
    .unwrap();
    // Approved once `login` waits for the sign-in in progress (it says so after a second).
    let waits = || {
        std::fs::read_to_string(&login_err)
            .unwrap_or_default()
            .contains("waiting for the lock")
    };
    let start = Instant::now();
    while !waits() && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        waits(),
        "{}",
        std::fs::read_to_string(&login_err).unwrap_or_default()
    );
    fake.approve();
    let once = once.wait_with_output().unwrap();
    let login = login.wait_with_output().unwrap();
    assert_eq!(once.status.code(), Some(0), "{}", show(&once));
    assert_eq!(login.status.code(), Some(0), "{}", show(&login));
    assert_eq!(
        fake.calls(DEVICE_AUTH),
        2,
        "login must not start a sign-in of its own"
    );
    assert!(
        sb.file("login-command-ran").exists(),
        "once runs login_command"
    );
}
