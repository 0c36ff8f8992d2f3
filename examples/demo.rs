//! A demo of awscredd against the bundled fake IAM Identity Center on 127.0.0.1: no AWS
//! account, no network, and your own `~/.aws` is never touched (HOME is `target/demo`).
//!
//! `cargo run --example demo`
//!
//! 1. The first pass finds no SSO token: it starts a device authorization, logs the URL and
//!    code, runs the configured `login_command` (here: `echo`), and the fake approves the sign-in
//!    on its second poll. The token goes to `target/demo/.aws/sso/cache/`, the role credentials
//!    of three SSO profiles and one `credential_process` profile to `target/demo/credentials`.
//! 2. A second pass with `--force` reuses the cached token: no second sign-in.
//! 3. The daemon, `run`, for about 15 seconds, with role credentials that the fake issues for
//!    12 seconds since the second pass: the file changes by itself every few seconds (each
//!    change is printed), and the SSO access token, issued for just over 20 minutes, is renewed
//!    with the refresh token once less than 20 minutes are left. Then it is stopped with
//!    SIGTERM, as systemd stops it.
#![allow(clippy::disallowed_methods)] // tests and tools read the clock and environment directly

#[path = "../tests/fake_aws/mod.rs"]
mod fake_aws;

use awscredd::commands::once::{self, OnceArgs};
use std::path::PathBuf;

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();

    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/demo");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).expect("create target/demo");

    let fake = fake_aws::FakeAws::start();
    fake.configure(|s| {
        s.approve_after_polls = Some(2);
        // Just over the 20 minutes before expiry at which awscredd renews an access token: the
        // second pass still uses it as it is, and the daemon renews it a few seconds later.
        s.access_token_ttl = 20 * 60 + 5;
    });
    // SAFETY of the demo's environment: set before any thread reads it.
    std::env::set_var("HOME", &root);
    std::env::set_var("AWS_ENDPOINT_URL_SSO_OIDC", &fake.url);
    std::env::set_var("AWS_ENDPOINT_URL_SSO", &fake.url);

    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config/demo-credential-process.sh");
    let config = root.join("config.toml");
    std::fs::write(
        &config,
        format!(
            r#"[daemon]
state_dir = "state"
login_command = ["echo", "login_command was run for the sign-in"]

[[output]]
path = "credentials"

[sso_session.corp]
sso_start_url = "https://demo.awsapps.com/start"
sso_region = "us-east-1"

[profile.dev]
sso_session = "corp"
sso_account_id = "111122223333"
sso_role_name = "Developer"

[profile.ops]
sso_session = "corp"
sso_account_id = "111122223333"
sso_role_name = "Operator"

[profile.prod-readonly]
sso_session = "corp"
sso_account_id = "444455556666"
sso_role_name = "ReadOnly"

[profile.legacy]
credential_process = "sh {}"
"#,
            script.display()
        ),
    )
    .expect("write the demo config");

    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    println!("== first pass: signs in through the fake device authorization");
    let code = runtime.block_on(once::exec(Some(&config), &OnceArgs::default()));
    println!("exit status {code}");
    // From now on the fake issues role credentials that live 12 seconds.
    fake.configure(|s| s.role_credentials_ttl = 12);
    println!("\n== second pass, --force: the cached token is reused");
    let code2 = runtime.block_on(once::exec(
        Some(&config),
        &OnceArgs {
            force: true,
            ..OnceArgs::default()
        },
    ));
    println!("exit status {code2}");
    println!(
        "\nfake AWS calls: {} device authorization(s), {} role credential request(s)",
        fake.calls(fake_aws::DEVICE_AUTH),
        fake.calls(fake_aws::ROLE_CREDENTIALS)
    );
    let creds = root.join("credentials");
    println!("\n== {}\n", creds.display());
    print!("{}", std::fs::read_to_string(&creds).unwrap_or_default());

    println!("\n== the daemon (`awscredd run`) for 15 s, with 12-second credentials");
    let renewals_before = fake.calls(fake_aws::TOKEN_REFRESH);
    let code3 = runtime.block_on(async {
        let watcher = tokio::spawn(watch_key_ids(creds.clone()));
        let stopper = tokio::spawn(async {
            tokio::time::sleep(std::time::Duration::from_secs(15)).await;
            println!("-- sending SIGTERM");
            #[cfg(unix)]
            sigterm_self();
        });
        let code = awscredd::commands::run::exec(Some(&config)).await;
        watcher.abort();
        stopper.abort();
        code
    });
    println!(
        "run exited with status {code3}; the SSO access token was renewed {} time(s) with the refresh token",
        fake.calls(fake_aws::TOKEN_REFRESH) - renewals_before
    );
    std::process::exit(i32::from(code.max(code2).max(code3)));
}

/// Prints the `dev` key id whenever the daemon rewrites the file.
async fn watch_key_ids(path: PathBuf) {
    let mut last = String::new();
    let started = std::time::Instant::now();
    loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let key = text
            .lines()
            .skip_while(|l| l.trim() != "[dev]")
            .find_map(|l| l.strip_prefix("aws_access_key_id = "))
            .unwrap_or("-")
            .to_string();
        if key != last {
            let how = if last.is_empty() {
                "in the file"
            } else {
                "rewritten by run"
            };
            println!(
                "-- {:>4.1}s: [dev] aws_access_key_id = {key} ({how})",
                started.elapsed().as_secs_f64()
            );
            last = key;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// Sends SIGTERM to this process, as `systemctl stop` would.
#[cfg(unix)]
fn sigterm_self() {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::this(), nix::sys::signal::Signal::SIGTERM);
}
