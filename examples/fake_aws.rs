//! The bundled fake IAM Identity Center (`tests/fake_aws/mod.rs`) as a standalone server on
//! 127.0.0.1, with a signed-in SSO session already in the token cache. Used by `bench/sso.sh`.
//!
//! `cargo run --example fake_aws -- HOME_DIR SESSION_NAME START_URL REGION`
//!
//! 1. Starts the fake on a free port of 127.0.0.1 and issues an access token (8 hours), as if
//!    someone had signed in.
//! 2. Writes that token to `HOME_DIR/.aws/sso/cache/<sha1(SESSION_NAME)>.json` in the AWS CLI v2
//!    format, so awscredd (and the AWS CLI v2, botocore, the SDKs) find a usable token.
//! 3. Prints one line on stdout: `url=<fake url> access_token=<token>`.
//!
//! `cargo run --example fake_aws -- --device-flow N` instead writes no token: nobody has
//! signed in, so awscredd starts a device authorization, which the fake approves by itself on
//! its Nth poll (as if a human had); it prints `url=<fake url>` (`systemd/podman-test.sh`).
//! 4. Serves until stdin is closed or a line arrives on it, then prints the call counters on
//!    stderr and exits.
//!
//! `cargo run --example fake_aws -- --serve [--auto-approve]`: only serves, with no token, so
//! that `awscredd login` (or a first `once`) can be tried end to end without AWS. It prints the
//! endpoint variables to export. Each sign-in is approved by opening its verification URL
//! (`curl 'http://127.0.0.1:PORT/device?user_code=ABCD-EFGH'`), or at once with
//! `--auto-approve`. At a terminal, Enter stops it (so does Ctrl-C); with stdin not a terminal
//! (`&` in a shell, `</dev/null`, a service, a CI step) it serves until it is killed
//! (SIGTERM, SIGINT), whatever stdin holds.
//!
//! With `FAKE_AWS_LATENCY_MS=20` every answer waits 20 ms first, as a real region's would
//! (`bench/sso_latency.sh`); with `FAKE_AWS_ROLE_TTL=60-120` role credentials live between 60
//! and 120 s, the same for a role every time, different between roles (`bench/scale.sh`).
//! In the first form, a line `calls` on stdin prints the GetRoleCredentials count so far on
//! stdout (`GetRoleCredentials=N`) and serves on; any other line, or EOF, stops it.
//!
//! Never touches anything outside HOME_DIR; no network beyond 127.0.0.1.
#![allow(clippy::disallowed_methods)] // tests and tools read the clock and environment directly

#[path = "../tests/fake_aws/mod.rs"]
mod fake_aws;

use awscredd::credentials::Secret;
use awscredd::sources::sso::cache::{CachedToken, TokenCache};
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use time::{Duration, OffsetDateTime};

const TOKEN_TTL_SECS: i64 = 3600 * 8;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--serve") {
        return serve_only(args.iter().any(|a| a == "--auto-approve"));
    }
    if let [flag, polls] = args.as_slice() {
        if let (true, Ok(polls)) = (flag == "--device-flow", polls.parse::<u32>()) {
            let fake = fake_aws::FakeAws::start();
            fake.configure(|s| s.approve_after_polls = Some(polls));
            let line = format!("url={}", fake.url);
            return serve(fake, &line);
        }
    }
    let [home, session, start_url, region] = args.as_slice() else {
        eprintln!(
            "usage: fake_aws HOME_DIR SESSION_NAME START_URL REGION\n       fake_aws --device-flow POLLS\n       fake_aws --serve [--auto-approve]"
        );
        return ExitCode::from(2);
    };

    let fake = fake_aws::FakeAws::start();
    // FAKE_AWS_LATENCY_MS: every answer waits this long (a real region's round trip).
    if let Some(ms) = std::env::var("FAKE_AWS_LATENCY_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        fake.configure(|s| s.latency = std::time::Duration::from_millis(ms));
    }
    // FAKE_AWS_ROLE_TTL=MIN-MAX: role credentials' lifetime, per role, in seconds.
    if let Some((min, max)) = std::env::var("FAKE_AWS_ROLE_TTL").ok().and_then(|v| {
        let (a, b) = v.split_once('-')?;
        Some((a.trim().parse::<i64>().ok()?, b.trim().parse::<i64>().ok()?))
    }) {
        fake.configure(|s| s.role_credentials_ttl_spread = Some((min, max)));
    }
    let (client_id, client_secret, access_token, refresh_token) = fake.issue_token(TOKEN_TTL_SECS);
    let now = OffsetDateTime::now_utc();
    let cache = TokenCache {
        dir: PathBuf::from(home).join(".aws").join("sso").join("cache"),
    };
    let token = CachedToken {
        start_url: Some(start_url.clone()),
        region: Some(region.clone()),
        access_token: Secret::new(access_token.clone()),
        // A little less than the fake's own expiry, so the file never outlives the token.
        expires_at: now + Duration::seconds(TOKEN_TTL_SECS - 60),
        client_id: Some(client_id),
        client_secret: Some(Secret::new(client_secret)),
        registration_expires_at: Some(now + Duration::days(89)),
        refresh_token: Some(Secret::new(refresh_token)),
    };
    if let Err(e) = cache.store(session, &token) {
        eprintln!(
            "fake_aws: cannot write {}: {e}",
            cache.token_path(session).display()
        );
        return ExitCode::FAILURE;
    }

    let line = format!("url={} access_token={access_token}", fake.url);
    serve(fake, &line)
}

/// Prints `line`, then serves until stdin says stop.
fn serve(fake: fake_aws::FakeAws, line: &str) -> ExitCode {
    {
        let mut out = std::io::stdout().lock();
        let printed = writeln!(out, "{line}").and_then(|()| out.flush());
        if let Err(e) = printed {
            eprintln!("fake_aws: cannot write to stdout: {e}");
            return ExitCode::FAILURE;
        }
    }

    // Serve (on the fake's own threads) until stdin says stop: a line other than `calls`, EOF
    // or an error.
    let mut line = String::new();
    while matches!(std::io::stdin().lock().read_line(&mut line), Ok(n) if n > 0)
        && line.trim() == "calls"
    {
        line.clear();
        let mut out = std::io::stdout().lock();
        let told = writeln!(
            out,
            "GetRoleCredentials={}",
            fake.calls(fake_aws::ROLE_CREDENTIALS)
        )
        .and_then(|()| out.flush());
        if told.is_err() {
            break;
        }
    }

    eprintln!(
        "fake_aws calls: {} RegisterClient, {} StartDeviceAuthorization, \
         {} CreateToken(device_code), {} CreateToken(refresh_token), {} GetRoleCredentials",
        fake.calls(fake_aws::REGISTER),
        fake.calls(fake_aws::DEVICE_AUTH),
        fake.calls(fake_aws::TOKEN_DEVICE),
        fake.calls(fake_aws::TOKEN_REFRESH),
        fake.calls(fake_aws::ROLE_CREDENTIALS),
    );
    drop(fake);
    ExitCode::SUCCESS
}

/// `--serve`: the fake with no session, for trying `awscredd login` by hand.
fn serve_only(auto_approve: bool) -> ExitCode {
    let fake = fake_aws::FakeAws::start();
    if auto_approve {
        fake.configure(|s| s.approve_after_polls = Some(1));
    }
    println!(
        "fake IAM Identity Center on {url}\n\n\
         In another shell:\n\
         \x20 export AWS_ENDPOINT_URL_SSO_OIDC={url} AWS_ENDPOINT_URL_SSO={url}\n\
         \x20 awscredd --config YOUR_CONFIG login --no-browser\n\n{}\n\
         {}",
        if auto_approve {
            "Every sign-in is approved at its first poll (--auto-approve)."
        } else {
            "Approve a sign-in by opening the URL awscredd prints, e.g.\n  curl 'URL_WITH_user_code'"
        },
        if std::io::stdin().is_terminal() {
            "Press Enter to stop."
        } else {
            "Serving until stopped (SIGTERM, Ctrl-C)."
        },
        url = fake.url
    );
    if let Err(e) = std::io::stdout().flush() {
        eprintln!("fake_aws: cannot write to stdout: {e}");
        return ExitCode::FAILURE;
    }
    if std::io::stdin().is_terminal() {
        // Interactive: Enter (or EOF, Ctrl-D) stops it.
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
    } else {
        // Not a terminal: stdin says nothing about when to stop (it may be /dev/null, or a
        // closed pipe), so serve until killed. The fake answers on its own threads.
        loop {
            std::thread::park();
        }
    }
    eprintln!(
        "fake_aws calls: {} StartDeviceAuthorization, {} GetRoleCredentials",
        fake.calls(fake_aws::DEVICE_AUTH),
        fake.calls(fake_aws::ROLE_CREDENTIALS),
    );
    ExitCode::SUCCESS
}
