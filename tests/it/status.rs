//! `awscredd status [--json]`: what is managed, in what state; read-only.

use crate::util::{show, Sandbox};
use awscredd::sources::sso::cache::sha1_hex;
use serde_json::Value;
use std::fs;

fn json(sb: &Sandbox) -> (Option<i32>, Value) {
    let o = sb.run(&["status", "--json"]);
    let v = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", show(&o)));
    (o.status.code(), v)
}

fn profile<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {v}"))
}

#[test]
fn profiles_go_from_expired_to_ok_to_failing() {
    let sb = Sandbox::new();
    let good = sb.process_script("good.sh", "ASIAGOODSTATUS", Some(3600));
    let flaky = sb.file("flaky.sh");
    fs::write(
        &flaky,
        format!(
            "#!/bin/sh\n[ -e '{}' ] && exit 5\nexec sh '{}'\n",
            sb.file("break").display(),
            good.display()
        ),
    )
    .unwrap();
    sb.config(&format!(
        "[daemon]\nstate_dir = \"state\"\n[[output]]\npath = \"credentials\"\n\
         [profile.good]\ncredential_process = \"{}\"\n[profile.flaky]\ncredential_process = \"sh {}\"\n",
        good.display(),
        flaky.display()
    ));
    // Nothing written yet.
    let (code, v) = json(&sb);
    assert_eq!(code, Some(1));
    assert_eq!(profile(&v, "good")["state"], "expired");
    assert_eq!(profile(&v, "good")["source"], "credential_process");
    assert!(profile(&v, "good")["expires_at"].is_null());
    assert_eq!(v["sso_sessions"], Value::Array(vec![]));
    // Refreshed: ok, with expiry and last refresh.
    assert_eq!(sb.run(&["once"]).status.code(), Some(0));
    let (code, v) = json(&sb);
    assert_eq!(code, Some(0), "{v}");
    let good = profile(&v, "good");
    assert_eq!(good["state"], "ok");
    assert!(good["expires_at"].as_str().unwrap().ends_with('Z'));
    assert!(good["last_refresh"].as_str().unwrap().ends_with('Z'));
    assert!(good["last_error"].is_null());
    // The last attempt failed: failing, though valid credentials are still in the file.
    fs::write(sb.file("break"), "").unwrap();
    assert_eq!(sb.run(&["once", "--force"]).status.code(), Some(1));
    let (code, v) = json(&sb);
    assert_eq!(code, Some(1));
    let flaky = profile(&v, "flaky");
    assert_eq!(flaky["state"], "failing");
    assert!(
        flaky["last_error"].as_str().unwrap().contains("status 5"),
        "{v}"
    );
    assert_eq!(profile(&v, "good")["state"], "ok");
    // The human form has a row per profile.
    let o = sb.run(&["status"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("PROFILE") && text.contains("flaky") && text.contains("failing"),
        "{}",
        show(&o)
    );
}

#[test]
fn sso_sessions_show_token_expiry_and_who_waits_for_a_login() {
    let sb = Sandbox::new();
    sb.config(
        "[daemon]\nstate_dir = \"state\"\n[[output]]\npath = \"credentials\"\n\
         [sso_session.corp]\nsso_start_url = \"https://x.awsapps.com/start\"\nsso_region = \"us-east-1\"\n\
         [profile.dev]\nsso_session = \"corp\"\nsso_account_id = \"111122223333\"\nsso_role_name = \"Dev\"\n\
         [profile.deploy]\nsource_profile = \"dev\"\nrole_arn = \"arn:aws:iam::444455556666:role/Deploy\"\n",
    );
    // No token: a human is needed, for the session and every profile chained from it.
    let (code, v) = json(&sb);
    assert_eq!(code, Some(1));
    assert_eq!(v["sso_sessions"][0]["name"], "corp");
    assert_eq!(v["sso_sessions"][0]["state"], "waiting_for_login");
    assert_eq!(profile(&v, "dev")["state"], "waiting_for_login");
    assert_eq!(profile(&v, "deploy")["state"], "waiting_for_login");
    assert_eq!(profile(&v, "deploy")["source"], "assume_role");

    let cache = sb.file(&format!(".aws/sso/cache/{}.json", sha1_hex("corp")));
    fs::create_dir_all(cache.parent().unwrap()).unwrap();
    let write = |expires: &str| {
        fs::write(
            &cache,
            format!(
                r#"{{"startUrl": "https://x.awsapps.com/start", "region": "us-east-1", "accessToken": "a", "expiresAt": "{expires}", "clientId": "c", "clientSecret": "s", "registrationExpiresAt": "2099-01-01T00:00:00Z", "refreshToken": "r"}}"#
            ),
        )
        .unwrap();
    };
    write("2098-01-01T00:00:00Z");
    let (_, v) = json(&sb);
    let s = &v["sso_sessions"][0];
    assert_eq!(s["state"], "ok");
    assert_eq!(s["token_expires_at"], "2098-01-01T00:00:00Z");
    assert_eq!(s["refreshable_until"], "2099-01-01T00:00:00Z");
    assert_eq!(
        profile(&v, "dev")["state"],
        "expired",
        "nothing written yet"
    );
    // Expired but renewable without a human.
    write("2001-01-01T00:00:00Z");
    let (_, v) = json(&sb);
    assert_eq!(v["sso_sessions"][0]["state"], "expired");
    assert_eq!(profile(&v, "dev")["state"], "expired");
}

/// A profile only used as a source (`deploy` in the output, chained from SSO profile `dev`) is
/// `ok` once refreshed, by its record in `state.json`: `status` exits 0, so a startupProbe
/// running it passes.
#[test]
fn a_profile_used_only_as_a_source_is_ok_once_refreshed() {
    use crate::fake_aws::FakeAws;
    use crate::sso::{bare, cli_token, run, write_cli_token, ACCOUNT, ROLE, START_URL};
    let fake = FakeAws::start();
    let sb = Sandbox::new();
    sb.config(&format!(
        "[daemon]\nstate_dir = \"state\"\n[[output]]\npath = \"credentials\"\nprofiles = [\"deploy\"]\n\
         [sso_session.corp]\nsso_start_url = \"{START_URL}\"\nsso_region = \"us-east-1\"\n\
         [profile.dev]\nsso_session = \"corp\"\nsso_account_id = \"{ACCOUNT}\"\nsso_role_name = \"{ROLE}\"\n\
         [profile.deploy]\nsource_profile = \"dev\"\nrole_arn = \"arn:aws:iam::444455556666:role/Deploy\"\n"
    ));
    write_cli_token(&sb, &cli_token(&fake, 3600));
    let mut once = bare(&sb, &["once"]);
    once.env("AWS_ENDPOINT_URL", &fake.url);
    let o = run(&sb, once);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let (code, v) = json(&sb);
    assert_eq!(profile(&v, "deploy")["state"], "ok", "{v}");
    let dev = profile(&v, "dev");
    assert_eq!(dev["state"], "ok", "{v}");
    assert!(dev["expires_at"].as_str().unwrap().ends_with('Z'), "{v}");
    assert!(dev["last_refresh"].as_str().unwrap().ends_with('Z'), "{v}");
    assert_eq!(code, Some(0), "{v}");
}
