//! `awscredd credential-process --profile NAME`: prints the AWS `credential_process` JSON
//! (Version 1, with `Expiration`) of a managed profile from the file awscredd keeps, so that a
//! long-running SDK client refreshes from the daemon's work with no code change. Credentials
//! that are missing or expire within a minute are refreshed first, as
//! `once --profile NAME --force --no-login` would. On failure: a one-line reason on stderr,
//! nothing on stdout.

use super::exit;
use crate::commands::once::load;
use crate::credentials::{format_utc, Credentials};
use crate::refresh::{self, Outcome, PassOptions};
use crate::store::CredentialsFile;
use std::path::Path;

/// Credentials closer than this to their expiry are refreshed before they are printed.
const MIN_VALIDITY: time::Duration = time::Duration::minutes(1);

pub async fn exec(config_path: Option<&Path>, profile: &str) -> u8 {
    let cfg = match load(config_path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if crate::child::running_for().iter().any(|p| p == profile) {
        eprintln!(
            "awscredd: {}",
            crate::sources::process::loop_message(profile)
        );
        return exit::FAILED;
    }
    if !cfg.profiles.contains_key(profile) {
        eprintln!("awscredd: not a managed profile: `{profile}` (see `awscredd check`)");
        return exit::USAGE;
    }
    let Some(output) = cfg.outputs_of(profile).next() else {
        eprintln!("awscredd: profile `{profile}` is not written to any [[output]] file");
        return exit::USAGE;
    };
    let file = CredentialsFile::from_output(output);
    let usable = |c: &Credentials| {
        c.expiration
            .is_none_or(|e| e - crate::clock::now() > MIN_VALIDITY)
    };
    // Still-valid credentials need no lock: the file is only ever replaced whole.
    let mut current = read(&file, profile).filter(usable);
    // Refresh under the profile's lock, and look again once it is held: of many concurrent
    // calls for an expiring profile, one runs the source and the others print what it wrote.
    let _refreshing = if current.is_none() {
        match refresh_lock(&cfg.daemon.state_dir, profile).await {
            Ok(l) => Some(l),
            Err(e) => {
                eprintln!("awscredd: {e}");
                return exit::FAILED;
            }
        }
    } else {
        None
    };
    if current.is_none() {
        current = read(&file, profile).filter(usable);
    }
    let creds = match current {
        Some(c) => c,
        None => {
            let opts = PassOptions {
                force: true,
                only: vec![profile.to_string()],
                no_login: true,
                // Started and left running: the SDK waiting for us must not wait for them.
                hooks: Some(crate::hooks::Hooks::detached()),
                ..PassOptions::default()
            };
            match refresh::run_pass(&cfg, &opts).await {
                Err(e) => {
                    eprintln!("awscredd: {e}");
                    return exit::USAGE;
                }
                Ok(report) => {
                    if let Some(Outcome::Failed(e)) = report.outcomes.get(profile) {
                        eprintln!("awscredd: profile `{profile}`: {}", one_line(&e.message));
                        return exit::FAILED;
                    }
                }
            }
            match read(&file, profile).filter(usable) {
                Some(c) => c,
                None => {
                    eprintln!(
                        "awscredd: profile `{profile}` has no valid credentials in `{}`",
                        file.path.display()
                    );
                    return exit::FAILED;
                }
            }
        }
    };
    println!("{}", to_json(&creds));
    exit::OK
}

/// How long a call waits for another one refreshing the same profile (a source may run 60 s).
const REFRESH_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

/// The lock that one `credential-process` call holds while it refreshes `profile`.
async fn refresh_lock(
    state_dir: &Path,
    profile: &str,
) -> Result<crate::store::lock::FileLock, String> {
    let safe: String = profile
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let path = state_dir.join(format!(".refresh-{safe}.lock"));
    let what = format!("profile `{profile}`");
    tokio::task::spawn_blocking(move || {
        crate::store::lock::lock_exclusive(&path, &what, REFRESH_WAIT).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())?
}

fn read(file: &CredentialsFile, profile: &str) -> Option<Credentials> {
    file.read().ok()?.remove(profile)
}

fn one_line(m: &str) -> String {
    m.lines().collect::<Vec<_>>().join(" ")
}

/// The Version 1 JSON the AWS SDKs read from a `credential_process`.
pub fn to_json(c: &Credentials) -> String {
    let mut v = serde_json::json!({
        "Version": 1,
        "AccessKeyId": c.access_key_id,
        "SecretAccessKey": c.secret_access_key.expose(),
    });
    if let Some(t) = &c.session_token {
        v["SessionToken"] = serde_json::Value::String(t.expose().to_string());
    }
    if let Some(e) = c.expiration {
        v["Expiration"] = serde_json::Value::String(format_utc(e));
    }
    v.to_string()
}
