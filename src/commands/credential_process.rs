//! `awscredd credential-process --profile NAME`: prints the AWS `credential_process` JSON
//! (Version 1, with `Expiration`) of a managed profile from the files awscredd keeps (any of its
//! outputs that holds usable credentials), so that a long-running SDK client refreshes from
//! the daemon's work with no code change. Credentials that are missing, expire within a minute,
//! or carry no expiry and are not the key awscredd last wrote for the profile (another tool's
//! keys, written before or since) are refreshed first, as `once --profile NAME --force
//! --no-login` would; what the refresh produced is printed if it has not expired. The JSON
//! always has an `Expiration`: keys without one get [`UNEXPIRING_FOR`] from now, so the SDK
//! asks again instead of caching them for its whole life. On failure: a one-line reason on
//! stderr, nothing on stdout.
//!
//! SDKs run it at every start-up and every refresh, often from many processes at once, and the
//! file almost always holds fresh credentials: [`start`] serves those with no async runtime
//! and no SDK client (a synchronous config load and one read of the file). Only a profile that
//! needs a refresh goes on to [`Refresh::run`], on a runtime that `main` builds for it.

use super::exit;
use crate::config::Config;
use crate::credentials::{format_utc, Credentials};
use crate::refresh::{self, Outcome, PassOptions};
use crate::store::CredentialsFile;
use std::path::Path;

/// Credentials closer than this to their expiry are refreshed before they are printed.
const MIN_VALIDITY: time::Duration = time::Duration::minutes(1);
/// The `Expiration` printed for keys without one: the SDK runs the command again by then
/// (and finds other keys, if another tool has written some meanwhile).
pub const UNEXPIRING_FOR: time::Duration = time::Duration::hours(1);

/// What [`start`] leaves to do.
pub enum Step {
    /// Finished: the JSON was printed, or the error on stderr. The exit status.
    Done(u8),
    /// The file holds no usable credentials for the profile: they must be refreshed first.
    Refresh(Box<Refresh>),
}

/// A managed profile to refresh, then print (the slow path, which needs an async runtime).
pub struct Refresh {
    cfg: Config,
    /// Every output that holds the profile, in config order.
    files: Vec<CredentialsFile>,
    profile: String,
}

/// The whole command: [`start`], then, if needed, [`Refresh::run`].
pub async fn exec(config_path: Option<&Path>, profile: &str) -> u8 {
    match start(config_path, profile) {
        Step::Done(code) => code,
        Step::Refresh(r) => r.run().await,
    }
}

/// The fast path, synchronous: loads the config, refuses a loop or a profile awscredd does not
/// manage, and prints the credentials in the file if they are still valid.
pub fn start(config_path: Option<&Path>, profile: &str) -> Step {
    // Warnings are logged (so not shown without `--log-level`); an error is one line. Only
    // what this profile needs is loaded: the SDKs run this at every refresh.
    let cfg = match super::load_config_for(config_path, profile) {
        Ok((cfg, report)) => {
            for line in report.lines() {
                tracing::warn!("{line}");
            }
            cfg
        }
        Err(e) => {
            eprintln!("awscredd: {}", crate::text::shown(first_problem(&e)));
            return Step::Done(exit::USAGE);
        }
    };
    if crate::child::running_for().iter().any(|p| p == profile) {
        eprintln!(
            "awscredd: {}",
            crate::sources::process::loop_message(profile)
        );
        return Step::Done(exit::FAILED);
    }
    if !cfg.profiles.contains_key(profile) {
        eprintln!("awscredd: not a managed profile: `{profile}` (see `awscredd check`)");
        return Step::Done(exit::USAGE);
    }
    let files: Vec<CredentialsFile> = cfg
        .outputs_of(profile)
        .map(CredentialsFile::from_output)
        .collect();
    if files.is_empty() {
        eprintln!("awscredd: profile `{profile}` is not written to any [[output]] file");
        return Step::Done(exit::USAGE);
    }
    // Still-valid credentials need no lock: the files are only ever replaced whole.
    match read_usable(&cfg, &files, profile, MIN_VALIDITY) {
        Some(c) => Step::Done(print(&c)),
        None => Step::Refresh(Box::new(Refresh {
            cfg,
            files,
            profile: profile.to_string(),
        })),
    }
}

impl Refresh {
    /// Refreshes the profile under its lock (looking at the file again once the lock is held:
    /// of many concurrent calls for an expiring profile, one runs the source and the others
    /// print what it wrote), then prints it.
    pub async fn run(self) -> u8 {
        let hooks = crate::hooks::Hooks::detached();
        // Stopped by a signal, the refresh is dropped (its running source is killed with its
        // process group), and the hook supervisors it started are stopped.
        tokio::select! {
            code = self.refresh(hooks.clone()) => code,
            (_, code) = super::stop_signal() => {
                hooks.stop().await;
                code
            }
        }
    }

    async fn refresh(self, hooks: std::sync::Arc<crate::hooks::Hooks>) -> u8 {
        let Refresh {
            cfg,
            files,
            profile,
        } = self;
        let profile = profile.as_str();
        let _refreshing = match refresh_lock(&cfg.daemon.state_dir, profile).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("awscredd: {}", crate::text::shown(&e));
                return exit::FAILED;
            }
        };
        if let Some(c) = read_usable(&cfg, &files, profile, MIN_VALIDITY) {
            return print(&c);
        }
        let opts = PassOptions {
            force: true,
            only: vec![profile.to_string()],
            no_login: true,
            // Started under supervisors and left running: the SDK waiting for us must not
            // wait for them.
            hooks: Some(hooks),
            ..PassOptions::default()
        };
        match refresh::run_pass(&cfg, &opts).await {
            Err(e) => {
                eprintln!("awscredd: {}", crate::text::shown(&e));
                return exit::USAGE;
            }
            Ok(report) => {
                if let Some(Outcome::Failed(m)) = report.outcomes.get(profile) {
                    // An output the refresh could not write does not matter if another one
                    // now holds fresh credentials.
                    if let Some(c) = read_usable(&cfg, &files, profile, MIN_VALIDITY) {
                        return print(&c);
                    }
                    eprintln!(
                        "awscredd: profile `{profile}`: {}",
                        one_line(&with_log_hint(&m.message, profile))
                    );
                    return exit::FAILED;
                }
            }
        }
        // What the refresh produced, even if it lasts less than a minute: refreshing again at
        // once would give no better.
        match read_usable(&cfg, &files, profile, time::Duration::ZERO) {
            Some(c) => print(&c),
            None => {
                let paths: Vec<String> = files
                    .iter()
                    .map(|f| format!("`{}`", crate::text::shown(f.path.display())))
                    .collect();
                eprintln!(
                    "awscredd: profile `{profile}` has no valid credentials in {}",
                    paths.join(", ")
                );
                exit::FAILED
            }
        }
    }
}

fn print(c: &Credentials) -> u8 {
    let mut c = c.clone();
    c.expiration = c
        .expiration
        .or_else(|| Some(crate::clock::now() + UNEXPIRING_FOR));
    println!("{}", to_json(&c));
    exit::OK
}

/// How long a call waits for another one refreshing the same profile (a source may run 60 s).
const REFRESH_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

/// The lock that one `credential-process` call holds while it refreshes `profile`.
async fn refresh_lock(
    state_dir: &Path,
    profile: &str,
) -> Result<crate::files::lock::FileLock, String> {
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
        crate::files::lock::lock_exclusive(&path, &what, REFRESH_WAIT).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())?
}

/// The profile's credentials in the first of `files` that holds usable ones: valid for more
/// than `min_validity`, or without an expiry if they are the key awscredd last wrote for it
/// (the state file's record; another tool's keys are due at once, as in
/// [`crate::refresh::due`]).
fn read_usable(
    cfg: &Config,
    files: &[CredentialsFile],
    profile: &str,
    min_validity: time::Duration,
) -> Option<Credentials> {
    let now = crate::clock::now();
    let mut record: Option<Option<crate::store::state::ProfileState>> = None;
    let mut written_by_us = |c: &Credentials| {
        record
            .get_or_insert_with(|| {
                crate::store::state::StateFile::in_dir(&cfg.daemon.state_dir)
                    .load()
                    .profiles
                    .remove(profile)
            })
            .as_ref()
            .is_some_and(|r| r.wrote(&c.access_key_id))
    };
    files
        .iter()
        .filter_map(|f| f.read_profile(profile).ok()?)
        .find(|c| usable(c, now, min_validity, &mut written_by_us))
}

/// Whether `c` may be served: more than `min_validity` left, or no expiry and
/// `written_by_us(c)`.
fn usable(
    c: &Credentials,
    now: time::OffsetDateTime,
    min_validity: time::Duration,
    written_by_us: &mut impl FnMut(&Credentials) -> bool,
) -> bool {
    match c.expiration {
        Some(e) => e - now > min_validity,
        None => written_by_us(c),
    }
}

fn one_line(m: &str) -> String {
    m.lines().collect::<Vec<_>>().join(" ")
}

/// The first error of a config error report (one problem a line, warnings among them), and how
/// many more errors there are.
pub fn first_problem(message: &str) -> String {
    let lines: Vec<&str> = message.lines().filter(|l| !l.trim().is_empty()).collect();
    let errors: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| !l.contains(": warning: "))
        .collect();
    let first = errors
        .first()
        .or(lines.first())
        .map_or("invalid config", |l| l.trim_end());
    match errors.len() {
        0 | 1 => first.to_string(),
        n => format!("{first} (and {} more; run `awscredd check`)", n - 1),
    }
}

/// A failure message that points at the log says how to see it when nothing is logged (the
/// default here: no log subscriber without `--log-level`).
fn with_log_hint(message: &str, profile: &str) -> String {
    if tracing::dispatcher::has_been_set() {
        return message.to_string();
    }
    message.replace(
        crate::sources::process::STDERR_HINT,
        &format!(
            " (to see its stderr: `awscredd --log-level info credential-process --profile {profile}`)"
        ),
    )
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

#[cfg(test)]
mod tests {
    //! The fast path runs outside any async runtime here: a `spawn_blocking`, a lock wait or an
    //! SDK client on it would panic or hang.
    #![allow(clippy::disallowed_methods)]
    use super::*;
    use time::OffsetDateTime;

    fn setup(expires_in: time::Duration) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.toml");
        std::fs::write(
            &config,
            "[daemon]\nstate_dir = \"state\"\n[[output]]\npath = \"credentials\"\n\
             [profile.app]\ncredential_process = \"false\"\n",
        )
        .unwrap();
        let expiry = format_utc(OffsetDateTime::now_utc() + expires_in);
        std::fs::write(
            dir.path().join("credentials"),
            format!(
                "[app]\naws_access_key_id = ASIAFAST\naws_secret_access_key = secret\n\
                 aws_session_token = token\naws_credential_expiration = {expiry}\n"
            ),
        )
        .unwrap();
        (dir, config)
    }

    #[test]
    fn fresh_credentials_are_printed_without_a_runtime() {
        assert!(tokio::runtime::Handle::try_current().is_err());
        let (_dir, config) = setup(time::Duration::hours(1));
        assert!(matches!(start(Some(&config), "app"), Step::Done(exit::OK)));
        assert!(matches!(
            start(Some(&config), "other"),
            Step::Done(exit::USAGE)
        ));
    }

    #[test]
    fn credentials_expiring_within_a_minute_go_to_the_refresh() {
        let (_dir, config) = setup(time::Duration::seconds(30));
        match start(Some(&config), "app") {
            Step::Refresh(r) => assert_eq!(r.profile, "app"),
            Step::Done(code) => panic!("served credentials that expire in 30 s ({code})"),
        }
    }

    #[test]
    fn a_config_error_is_told_in_one_line() {
        assert_eq!(first_problem("c.toml:1:1: bad"), "c.toml:1:1: bad");
        assert_eq!(
            first_problem(
                "c.toml:1:1: warning: odd\nc.toml:2:1: bad\nc.toml:3:1: worse\nc.toml:4:1: worst\n"
            ),
            "c.toml:2:1: bad (and 2 more; run `awscredd check`)"
        );
    }

    #[test]
    fn usable_means_more_than_a_minute_left() {
        let now = OffsetDateTime::now_utc();
        let creds = |expiration| Credentials {
            access_key_id: "ASIA".into(),
            secret_access_key: crate::credentials::Secret::new("s"),
            session_token: None,
            expiration,
            account_id: None,
        };
        for (expiration, want) in [
            (Some(now + time::Duration::minutes(10)), true),
            (Some(now + time::Duration::seconds(61)), true),
            (Some(now + time::Duration::seconds(60)), false),
            (Some(now + time::Duration::seconds(5)), false),
            (Some(now - time::Duration::minutes(1)), false),
        ] {
            let mut never =
                |_: &Credentials| panic!("the state file is read only for keys without an expiry");
            assert_eq!(
                usable(&creds(expiration), now, MIN_VALIDITY, &mut never),
                want,
                "{expiration:?}"
            );
        }
        // Without an expiry: only keys awscredd refreshed.
        for refreshed in [true, false] {
            assert_eq!(
                usable(&creds(None), now, MIN_VALIDITY, &mut |_: &Credentials| {
                    refreshed
                }),
                refreshed
            );
        }
        // After a refresh, anything not expired yet.
        let short = creds(Some(now + time::Duration::seconds(5)));
        assert!(usable(
            &short,
            now,
            time::Duration::ZERO,
            &mut |_: &Credentials| false
        ));
    }
}
