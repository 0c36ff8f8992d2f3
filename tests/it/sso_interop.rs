//! Interop with botocore (the AWS CLI's and boto3's core) on one SSO token cache: botocore
//! uses the token awscredd signed in with, renews it itself when it is near expiry, and
//! awscredd then uses the token botocore wrote.

use crate::fake_aws::{FakeAws, DEVICE_AUTH, REGISTER, TOKEN_DEVICE, TOKEN_REFRESH};
use crate::sso::{
    assert_dev_creds, awscredd, read_json, run, sso_config, token_file, ACCOUNT, ROLE, START_URL,
};
use crate::util::{find_botocore, show, Sandbox};
use awscredd::credentials::{format_utc, parse_rfc3339};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use time::OffsetDateTime;

/// `Session(profile='dev').get_credentials()`, frozen, with HOME = the sandbox and both SSO
/// endpoints on the fake.
fn botocore_credentials(python: &Path, site: &Path, sb: &Sandbox, fake: &FakeAws) -> Value {
    let code = r#"
import json
import botocore.session

c = botocore.session.Session(profile="dev").get_credentials()
f = c.get_frozen_credentials()
print(json.dumps({"method": c.method, "access_key": f.access_key, "secret_key": f.secret_key, "token": f.token}))
"#;
    let mut child = Command::new(python)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", sb.path())
        .env("PYTHONPATH", site)
        .env("AWS_CONFIG_FILE", sb.file("aws-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            sb.file("no-such-credentials"),
        )
        .env("AWS_ENDPOINT_URL_SSO", &fake.url)
        .env("AWS_ENDPOINT_URL_SSO_OIDC", &fake.url)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .arg("-c")
        .arg(code)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python");
    // Bounded: a botocore stuck on the network must not hang the suite.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("botocore did not finish within 60 s: {}", show(&out));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "botocore failed: {}", show(&out));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("botocore printed no JSON ({e}): {}", show(&out)))
}

#[test]
fn botocore_shares_the_sso_token_cache_both_ways() {
    let Some((python, site)) = find_botocore() else {
        if std::env::var_os("CI").is_some() {
            panic!(
                "the SSO interop test needs botocore, and CI is set: `pip install boto3` \
                 (python3 -c \"import botocore\" failed)"
            );
        }
        println!(
            "SKIPPED sso_interop::botocore_shares_the_sso_token_cache_both_ways: python3 \
             cannot import botocore (pip install boto3 to run it)"
        );
        return;
    };

    let sb = Sandbox::new();
    let fake = FakeAws::start();
    fake.configure(|s| s.approve_after_polls = Some(2));
    sso_config(&sb, "", "", "");
    std::fs::write(
        sb.file("aws-config"),
        format!(
            "[sso-session corp]\nsso_start_url = {START_URL}\nsso_region = us-east-1\n\
             sso_registration_scopes = sso:account:access\n\n\
             [profile dev]\nsso_session = corp\nsso_account_id = {ACCOUNT}\n\
             sso_role_name = {ROLE}\nregion = us-east-1\n"
        ),
    )
    .unwrap();
    let oidc = |f: &FakeAws| {
        [
            f.calls(REGISTER),
            f.calls(DEVICE_AUTH),
            f.calls(TOKEN_DEVICE),
            f.calls(TOKEN_REFRESH),
        ]
    };

    // 1. awscredd signs in; botocore uses that token as is (an hour left).
    let o = run(&sb, awscredd(&sb, &fake, &["once"]));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(oidc(&fake), [1, 1, 2, 0]);
    let ours = read_json(&token_file(&sb));
    let requests = fake.role_requests().len();
    let got = botocore_credentials(&python, &site, &sb, &fake);
    assert_eq!(got["method"], "sso", "{got:#}");
    assert!(
        got["access_key"].as_str().unwrap().starts_with("ASIAFAKE"),
        "{got:#}"
    );
    assert!(got["token"]
        .as_str()
        .unwrap()
        .starts_with(&format!("fake-session-token-{ACCOUNT}-{ROLE}-")));
    assert_eq!(fake.role_requests().len(), requests + 1);
    assert_eq!(oidc(&fake), [1, 1, 2, 0], "botocore made no OIDC call");
    assert_eq!(
        read_json(&token_file(&sb)),
        ours,
        "botocore left the cache alone"
    );

    // 2. awscredd renews a token near expiry into one with 10 minutes left: inside
    //    botocore's 15-minute window.
    fake.configure(|s| s.access_token_ttl = 600);
    let mut near = ours.clone();
    near["expiresAt"] = format_utc(OffsetDateTime::now_utc() + time::Duration::minutes(5)).into();
    std::fs::write(token_file(&sb), near.to_string()).unwrap();
    let o = run(&sb, awscredd(&sb, &fake, &["once", "--force"]));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(oidc(&fake), [1, 1, 2, 1]);
    let ours = read_json(&token_file(&sb));
    assert_ne!(ours["accessToken"], near["accessToken"]);

    // 3. botocore renews it with our refresh token and writes the cache.
    fake.configure(|s| s.access_token_ttl = 3600);
    let requests = fake.role_requests().len();
    let got = botocore_credentials(&python, &site, &sb, &fake);
    assert!(
        got["access_key"].as_str().unwrap().starts_with("ASIAFAKE"),
        "{got:#}"
    );
    assert_eq!(fake.role_requests().len(), requests + 1);
    assert_eq!(oidc(&fake), [1, 1, 2, 2], "botocore renewed the token");
    let theirs = read_json(&token_file(&sb));
    assert_ne!(theirs["accessToken"], ours["accessToken"], "{theirs:#}");
    assert_ne!(theirs["refreshToken"], ours["refreshToken"], "{theirs:#}");
    let left =
        parse_rfc3339(theirs["expiresAt"].as_str().unwrap()).unwrap() - OffsetDateTime::now_utc();
    assert!(left > time::Duration::minutes(55), "{theirs:#}");

    // 4. awscredd uses the token botocore wrote: no OIDC call, the file untouched.
    let o = run(&sb, awscredd(&sb, &fake, &["once", "--force"]));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(oidc(&fake), [1, 1, 2, 2], "{}", show(&o));
    assert_eq!(read_json(&token_file(&sb)), theirs);
    assert_dev_creds(&sb);
}
