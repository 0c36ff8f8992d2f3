//! The daemon (`run`) and SSO sign-ins: a sign-in waiting for a human holds up no other
//! profile, no signal and no stop; a sign-in that ends without a token (the code expired
//! unapproved) still lets a later `awscredd login` through at once; and access tokens are
//! renewed before they expire even when no profile is due.

use crate::fake_aws::{FakeAws, DEVICE_AUTH, TOKEN_REFRESH};
use crate::sso::{
    awscredd, cli_token, read_json, sso_config, token_file, write_cli_token, written, Proc,
};
use crate::util::{counting_source, eventually, runs, show, Sandbox};
use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args(["-s", sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

fn log(_sb: &Sandbox, p: &Proc) -> String {
    p.stderr_so_far()
}

#[test]
fn a_sign_in_waiting_for_a_human_holds_up_no_other_profile_signal_or_stop() {
    let sb = Sandbox::new();
    let fake = FakeAws::start();
    let fast = counting_source(&sb, "fast", 4);
    sso_config(
        &sb,
        "",
        "",
        &format!("[profile.fast]\ncredential_process = \"{fast}\"\n"),
    );
    let d = Proc::spawn(&sb, awscredd(&sb, &fake, &["--log-level", "info", "run"]));
    let pid = d.pid();

    // The sign-in is started (a code is out) and nobody approves it; meanwhile `fast`, whose
    // credentials live 4 s, keeps being refreshed.
    assert!(
        eventually(Duration::from_secs(15), || fake.last_user_code().is_some()),
        "no sign-in started\n{}",
        log(&sb, &d)
    );
    assert!(
        eventually(Duration::from_secs(15), || runs(&sb, "fast") >= 4),
        "`fast` was not refreshed while the sign-in waited ({} runs)\n{}",
        runs(&sb, "fast"),
        log(&sb, &d)
    );
    assert!(!written(&sb).contains_key("dev"), "nobody approved yet");
    // `status` says what to open and which code to enter.
    let code = fake.last_user_code().unwrap();
    let status_says_code = || {
        let o = Proc::spawn(&sb, awscredd(&sb, &fake, &["status", "--json"]))
            .wait(Duration::from_secs(30));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
        v["profiles"].as_array().is_some_and(|ps| {
            ps.iter().any(|p| {
                p["name"] == "dev"
                    && p["state"] == "waiting_for_login"
                    && p["last_error"].as_str().is_some_and(|e| e.contains(&code))
            })
        })
    };
    assert!(
        eventually(Duration::from_secs(10), status_says_code),
        "status does not show the code\n{}",
        log(&sb, &d)
    );

    // Signals are handled meanwhile.
    signal(pid, "USR1");
    assert!(
        eventually(Duration::from_secs(5), || log(&sb, &d)
            .contains("refreshing every profile now")),
        "SIGUSR1 waited for the sign-in\n{}",
        log(&sb, &d)
    );

    // Approved: `dev` is written soon after, without waiting for a retry.
    let code = fake.last_user_code().unwrap();
    fake.approve();
    assert!(
        eventually(Duration::from_secs(8), || written(&sb).contains_key("dev")),
        "`dev` not written after the approval\n{}",
        log(&sb, &d)
    );
    assert_eq!(
        fake.calls(DEVICE_AUTH),
        1,
        "one sign-in for every pass that ran while it waited\n{}",
        log(&sb, &d)
    );
    assert!(log(&sb, &d).contains(&code), "the code is in the log");

    let start = Instant::now();
    signal(pid, "TERM");
    let o = d.wait(Duration::from_secs(5));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn a_sign_in_code_that_expired_unapproved_still_lets_a_later_login_through() {
    let sb = Sandbox::new();
    let fake = FakeAws::start();
    fake.configure(|s| s.device_expires_in = 2);
    sso_config(&sb, "", "", "");
    let d = Proc::spawn(&sb, awscredd(&sb, &fake, &["--log-level", "info", "run"]));
    assert!(
        eventually(Duration::from_secs(20), || log(&sb, &d)
            .contains("expired before it was approved")),
        "the code did not expire\n{}",
        log(&sb, &d)
    );

    // A human signs in with `awscredd login` (approved as soon as its code is out).
    fake.configure(|s| s.device_expires_in = 600);
    let before = fake.last_user_code();
    let login = Proc::spawn(
        &sb,
        awscredd(
            &sb,
            &fake,
            &["login", "--sso-session", "corp", "--no-browser"],
        ),
    );
    let o = login.wait_with(Duration::from_secs(30), || {
        if fake.last_user_code() != before {
            fake.approve();
        }
    });
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));

    // The daemon notices the token within its look at the cache (every 10 s), not at its
    // next sign-in attempt ten minutes later.
    assert!(
        eventually(Duration::from_secs(15), || written(&sb).contains_key("dev")),
        "the daemon did not use the new token\n{}",
        log(&sb, &d)
    );
}

/// `[dev]` in the file, fresh for another hour (`ASIAFAKEOLD`), and an access token of the
/// fake's in the cache with 19 minutes left (less than 20 counts as due for renewal).
fn fresh_dev_and_a_token_with_19_minutes_left(sb: &Sandbox, fake: &FakeAws) {
    let expires = awscredd::credentials::format_utc(
        time::OffsetDateTime::now_utc() + time::Duration::hours(1),
    );
    fs::write(
        sb.file("credentials"),
        format!(
            "[dev]\naws_access_key_id = ASIAFAKEOLD\naws_secret_access_key = s\n\
             aws_session_token = t\naws_credential_expiration = {expires}\n"
        ),
    )
    .unwrap();
    write_cli_token(sb, &cli_token(fake, 19 * 60));
}

#[test]
fn the_access_token_is_renewed_before_it_expires_though_no_profile_is_due() {
    let sb = Sandbox::new();
    let fake = FakeAws::start();
    // `[dev]` holds credentials for another hour: no profile is due. The access token has
    // 19 minutes left (less than 20 counts as due for renewal).
    fresh_dev_and_a_token_with_19_minutes_left(&sb, &fake);
    sso_config(&sb, "", "", "");
    let d = Proc::spawn(&sb, awscredd(&sb, &fake, &["--log-level", "info", "run"]));
    assert!(
        eventually(Duration::from_secs(15), || fake.calls(TOKEN_REFRESH) >= 1),
        "the token was not renewed\n{}",
        log(&sb, &d)
    );
    // The fake counts the call when it arrives; the renewed token is stored a moment later.
    let renewed = || {
        let token = read_json(&token_file(&sb));
        token["expiresAt"]
            .as_str()
            .and_then(|t| awscredd::credentials::parse_rfc3339(t).ok())
            .is_some_and(|e| e - time::OffsetDateTime::now_utc() > time::Duration::minutes(20))
    };
    assert!(
        eventually(Duration::from_secs(10), renewed),
        "{}",
        read_json(&token_file(&sb))
    );
    assert_eq!(fake.calls(DEVICE_AUTH), 0, "no sign-in");
    assert_eq!(
        written(&sb)["dev"].access_key_id,
        "ASIAFAKEOLD",
        "no profile was refreshed"
    );
    drop(d);
}

#[test]
fn credential_process_and_no_login_fail_at_once_while_the_daemon_signs_in() {
    let sb = Sandbox::new();
    let fake = FakeAws::start();
    sso_config(&sb, "", "", "");
    let d = Proc::spawn(&sb, awscredd(&sb, &fake, &["--log-level", "info", "run"]));
    assert!(
        eventually(Duration::from_secs(15), || fake.last_user_code().is_some()),
        "no sign-in started\n{}",
        log(&sb, &d)
    );
    // The daemon's sign-in holds the session's lock until someone approves it. An SDK's
    // credential_process, and a cron job's `once --no-login`, are told so within seconds.
    for args in [
        &["credential-process", "--profile", "dev"][..],
        &["once", "--no-login"][..],
    ] {
        let start = Instant::now();
        let o = Proc::spawn(&sb, awscredd(&sb, &fake, args)).wait(Duration::from_secs(30));
        let took = start.elapsed();
        assert_ne!(o.status.code(), Some(0), "{args:?}: {}", show(&o));
        assert!(
            took < Duration::from_secs(10),
            "{args:?} took {took:?}: {}",
            show(&o)
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("signing in to SSO session `corp`"),
            "{args:?}: {}",
            show(&o)
        );
        if args[0] == "credential-process" {
            assert!(o.stdout.is_empty(), "{}", show(&o));
            assert_eq!(err.trim_end().lines().count(), 1, "one line: {}", show(&o));
        }
    }
    drop(d);
}

#[test]
fn an_ended_session_is_signed_in_again_while_its_access_token_still_serves() {
    let sb = Sandbox::new();
    let fake = FakeAws::start();
    // `[dev]` is fresh for an hour; the access token has 19 minutes left and its refresh
    // token is refused: the SSO session has ended.
    fresh_dev_and_a_token_with_19_minutes_left(&sb, &fake);
    fake.revoke_refresh_tokens();
    sso_config(&sb, "", "", "");
    let d = Proc::spawn(&sb, awscredd(&sb, &fake, &["--log-level", "info", "run"]));
    // The refused renewal starts a sign-in now, not when the token runs out.
    assert!(
        eventually(Duration::from_secs(15), || fake.last_user_code().is_some()),
        "no sign-in after the refresh token was refused\n{}",
        log(&sb, &d)
    );
    assert_eq!(fake.calls(TOKEN_REFRESH), 1, "{}", log(&sb, &d));
    // Meanwhile the valid access token still serves a refresh.
    signal(d.pid(), "USR1");
    assert!(
        eventually(Duration::from_secs(10), || written(&sb)
            .get("dev")
            .is_some_and(|c| c.access_key_id != "ASIAFAKEOLD")),
        "the valid token did not serve while the sign-in waited\n{}",
        log(&sb, &d)
    );
    fake.approve();
    assert!(
        eventually(Duration::from_secs(10), || {
            let t = read_json(&token_file(&sb));
            let left = awscredd::credentials::parse_rfc3339(t["expiresAt"].as_str().unwrap())
                .unwrap()
                - time::OffsetDateTime::now_utc();
            left > time::Duration::minutes(30)
        }),
        "the new sign-in's token was not stored\n{}",
        log(&sb, &d)
    );
    assert_eq!(fake.calls(DEVICE_AUTH), 1);
    drop(d);
}

#[test]
fn a_reload_that_changes_the_start_url_replaces_the_sign_in_in_progress() {
    let sb = Sandbox::new();
    let fake = FakeAws::start();
    let config = sso_config(&sb, "", "", "");
    let d = Proc::spawn(&sb, awscredd(&sb, &fake, &["--log-level", "info", "run"]));
    assert!(
        eventually(Duration::from_secs(15), || fake.calls(DEVICE_AUTH) == 1),
        "{}",
        log(&sb, &d)
    );
    let new_url = "https://y.awsapps.com/start";
    let text = fs::read_to_string(&config).unwrap();
    fs::write(&config, text.replace(crate::sso::START_URL, new_url)).unwrap();
    signal(d.pid(), "HUP");
    assert!(
        eventually(Duration::from_secs(5), || log(&sb, &d)
            .contains("config reloaded")),
        "{}",
        log(&sb, &d)
    );
    signal(d.pid(), "USR1");
    // The old portal's sign-in is stopped and one to the new portal starts.
    assert!(
        eventually(Duration::from_secs(15), || fake.calls(DEVICE_AUTH) == 2),
        "no sign-in to the new start URL\n{}",
        log(&sb, &d)
    );
    fake.approve();
    assert!(
        eventually(Duration::from_secs(10), || written(&sb).contains_key("dev")),
        "{}",
        log(&sb, &d)
    );
    assert_eq!(read_json(&token_file(&sb))["startUrl"], new_url);
    drop(d);
}

/// Every datagram on `socket` until one contains `until` (included), or `limit` passes.
fn notifications_until(
    socket: &std::os::unix::net::UnixDatagram,
    until: &str,
    limit: Duration,
) -> Vec<String> {
    let end = Instant::now() + limit;
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        socket
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match socket.recv(&mut buf) {
            Ok(n) => {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                let done = msg.contains(until);
                got.push(msg);
                if done {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    got
}

#[test]
fn ready_is_sent_only_once_the_sign_in_a_login_command_approves_is_written() {
    let sb = Sandbox::new();
    let fake = FakeAws::start();
    // Approves the sign-in two seconds after it is asked to, as a human would.
    let approve = sb.file("approve.sh");
    fs::write(
        &approve,
        "#!/bin/sh\nsleep 2\nexec python3 -c 'import os, urllib.request; \
         urllib.request.urlopen(os.environ[\"AWSCREDD_VERIFICATION_URI_COMPLETE\"], timeout=10).read()'\n",
    )
    .unwrap();
    let fast = counting_source(&sb, "fast", 3600);
    sso_config(
        &sb,
        &format!("login_command = [\"sh\", \"{}\"]", approve.display()),
        "",
        &format!("[profile.fast]\ncredential_process = \"{fast}\"\n"),
    );
    let socket_path = sb.file("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    let mut cmd = awscredd(&sb, &fake, &["--log-level", "info", "run"]);
    cmd.env("NOTIFY_SOCKET", &socket_path);
    let d = Proc::spawn(&sb, cmd);
    let got = notifications_until(&socket, "READY=1", Duration::from_secs(40));
    // At READY=1 the SSO profile is in the file already, beside the one that needs no human.
    let at_ready = written(&sb);
    assert!(
        got.last().is_some_and(|m| m.starts_with("READY=1\n")),
        "{got:?}\n{}",
        log(&sb, &d)
    );
    assert!(
        at_ready.contains_key("dev") && at_ready.contains_key("fast"),
        "READY=1 before the SSO profile was written: {:?}\n{}",
        at_ready.keys().collect::<Vec<_>>(),
        log(&sb, &d)
    );
    // Before it, systemd was told what the daemon waits for: the URL and the code.
    let code = fake.last_user_code().expect("a sign-in was started");
    assert!(
        got.iter().any(
            |m| m.starts_with("STATUS=waiting for a sign-in to SSO session corp")
                && m.contains(&code)
                && m.contains("/device")
        ),
        "{got:?}"
    );
    // One WARN for the sign-in, and no ERROR anywhere on this first start.
    let text = log(&sb, &d);
    assert_eq!(
        text.lines()
            .filter(|l| l.contains("WARN") && l.contains("SSO sign-in needed"))
            .count(),
        1,
        "{text}"
    );
    assert!(!text.contains("ERROR"), "{text}");
    signal(d.pid(), "TERM");
    let o = d.wait(Duration::from_secs(5));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
}
