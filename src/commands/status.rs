//! `awscredd status [--json]`: every profile (source, expiry, last refresh, last error, state)
//! and every SSO session (token expiry, how long it can still be renewed without a human).
//! Read-only: it looks at the credentials files, `state.json` and the SSO token cache, and
//! refreshes nothing. Exit 0 when every profile is `ok`, else 1.

use super::exit;
use crate::commands::once::load;
use crate::config::Config;
use crate::credentials::{format_utc, parse_rfc3339, Credentials};
use crate::sources::sso::cache::{fingerprint, TokenCache};
use crate::state::StateFile;
use crate::store::CredentialsFile;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use time::OffsetDateTime;

/// The state of a profile or an SSO session, as `status` and the metrics name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Ok,
    Expired,
    Failing,
    WaitingForLogin,
}

impl State {
    /// Every state, in the order the metrics list them.
    pub const ALL: [State; 4] = [
        State::Ok,
        State::Expired,
        State::Failing,
        State::WaitingForLogin,
    ];

    /// The name in `status --json`, `/readyz` and the metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            State::Ok => "ok",
            State::Expired => "expired",
            State::Failing => "failing",
            State::WaitingForLogin => "waiting_for_login",
        }
    }
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ProfileStatus {
    pub name: String,
    pub source: &'static str,
    pub state: &'static str,
    pub expires_at: Option<String>,
    pub last_refresh: Option<String>,
    pub last_error: Option<String>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct SessionStatus {
    pub name: String,
    pub state: &'static str,
    pub token_expires_at: Option<String>,
    pub refreshable_until: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Status {
    pub profiles: Vec<ProfileStatus>,
    pub sso_sessions: Vec<SessionStatus>,
}

/// Gathers the status of everything `cfg` manages, as of `now`.
pub fn gather(cfg: &Config, cache: Option<&TokenCache>, now: OffsetDateTime) -> Status {
    let state = StateFile::in_dir(&cfg.daemon.state_dir).load();
    let sso_sessions: Vec<SessionStatus> = cfg
        .sso_sessions
        .iter()
        .map(|(name, session)| {
            // The older per-profile form is never renewed: a refresh token in its cache file
            // (another tool's) is not one awscredd uses.
            let token = cache.and_then(|c| c.load(name)).map(|mut t| {
                if session.legacy {
                    t.refresh_token = None;
                }
                t
            });
            let state = match &token {
                // The service refused this very token (and its refresh token): a human must
                // sign in, whatever its expiry says.
                Some(t) if state.token_refused(name, &fingerprint(t)) => State::WaitingForLogin,
                Some(t) if t.expires_at > now => State::Ok,
                Some(t) if t.refreshable(now).is_some() => State::Expired,
                _ => State::WaitingForLogin,
            }
            .as_str();
            SessionStatus {
                name: name.clone(),
                state,
                token_expires_at: token.as_ref().map(|t| format_utc(t.expires_at)),
                refreshable_until: token.as_ref().and_then(|t| {
                    t.refresh_token
                        .as_ref()
                        .and(t.registration_expires_at)
                        .map(format_utc)
                }),
            }
        })
        .collect();
    let session_state: BTreeMap<&str, &str> = sso_sessions
        .iter()
        .map(|s| (s.name.as_str(), s.state))
        .collect();
    // Per output: its profiles, their credentials, and why the file could not be read.
    let mut unreadable: BTreeMap<String, String> = BTreeMap::new();
    let stored: Vec<(Vec<String>, BTreeMap<String, Credentials>)> = cfg
        .outputs
        .iter()
        .map(|o| {
            let creds = match CredentialsFile::from_output(o).read() {
                Ok(c) => c,
                Err(e) => {
                    for p in &o.profiles {
                        unreadable.entry(p.clone()).or_insert_with(|| e.to_string());
                    }
                    BTreeMap::new()
                }
            };
            (o.profiles.clone(), creds)
        })
        .collect();
    let profiles = cfg
        .profiles
        .values()
        .map(|p| {
            let recorded = state.profiles.get(&p.name);
            let holders: Vec<Option<&Credentials>> = stored
                .iter()
                .filter(|(names, _)| names.contains(&p.name))
                .map(|(_, creds)| creds.get(&p.name))
                .collect();
            let expiry_known = holders.iter().flatten().filter_map(|c| c.expiration).min();
            let expires_at = if holders.is_empty() {
                recorded
                    .and_then(|r| r.expires_at.as_deref())
                    .and_then(|t| parse_rfc3339(t).ok())
            } else {
                expiry_known
            };
            // Keys without an expiry are valid only if awscredd refreshed them: another tool's
            // keys may no longer work (the refresh rules call them due at once).
            let refreshed = recorded.is_some_and(|r| r.last_refresh.is_some());
            let valid = if holders.is_empty() {
                // Only a source of other profiles: what its last refresh produced.
                refreshed && expires_at.is_none_or(|e| e > now)
            } else {
                holders
                    .iter()
                    .all(|h| h.is_some_and(|c| c.expiration.map_or(refreshed, |e| e > now)))
            };
            let root_session = cfg.root_sso_session(&p.name);
            let mut last_error = recorded.and_then(|r| r.last_error.clone());
            let state = if root_session
                .and_then(|s| session_state.get(s))
                .is_some_and(|s| *s == State::WaitingForLogin.as_str())
            {
                State::WaitingForLogin
            } else if last_error.is_some() {
                State::Failing
            } else if !valid {
                State::Expired
            } else {
                State::Ok
            };
            // An expired profile says why when its file cannot be read.
            if state == State::Expired && last_error.is_none() {
                last_error = unreadable.get(&p.name).cloned();
            }
            ProfileStatus {
                name: p.name.clone(),
                source: p.source.kind(),
                state: state.as_str(),
                expires_at: expires_at.map(format_utc),
                last_refresh: recorded.and_then(|r| r.last_refresh.clone()),
                last_error,
            }
        })
        .collect();
    Status {
        profiles,
        sso_sessions,
    }
}

pub fn exec(config_path: Option<&Path>, json: bool) -> u8 {
    let cfg = match load(config_path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let cache = TokenCache::default_location(&crate::paths::process_env);
    let status = gather(&cfg, cache.as_ref(), crate::clock::now());
    if let Some(w) = state_not_writable(&cfg.daemon.state_dir) {
        eprintln!("awscredd: warning: {w}");
    }
    if json {
        match serde_json::to_string_pretty(&status) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("awscredd: {e}");
                return exit::FAILED;
            }
        }
    } else {
        print!("{}", render(&status, crate::clock::now()));
    }
    if status
        .profiles
        .iter()
        .all(|p| p.state == State::Ok.as_str())
    {
        exit::OK
    } else {
        exit::FAILED
    }
}

/// Why the state file cannot be written by this user, if it cannot: then what `status` shows
/// may be older than what the files hold.
fn state_not_writable(dir: &Path) -> Option<String> {
    #[cfg(unix)]
    {
        use nix::unistd::{access, AccessFlags};
        let file = dir.join("state.json");
        let (what, res) = if file.exists() {
            (file.clone(), access(&file, AccessFlags::W_OK))
        } else if dir.exists() {
            (
                dir.to_path_buf(),
                access(dir, AccessFlags::W_OK | AccessFlags::X_OK),
            )
        } else {
            return None;
        };
        res.err().map(|e| {
            format!(
                "`{}` cannot be written by this user ({e}): the state shown may be out of date",
                what.display()
            )
        })
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        None
    }
}

/// Time left until an RFC 3339 time, for people (`42m`, `3h05m`, `expired`).
fn left(t: Option<&str>, now: OffsetDateTime) -> String {
    let Some(t) = t.and_then(|t| parse_rfc3339(t).ok()) else {
        return "-".into();
    };
    let secs = (t - now).whole_seconds();
    if secs <= 0 {
        return "expired".into();
    }
    let (h, m) = (secs / 3600, (secs % 3600) / 60);
    match (h / 24, h) {
        (d, _) if d > 0 => format!("{d}d{:02}h", h % 24),
        (_, h) if h > 0 => format!("{h}h{m:02}m"),
        _ => format!("{m}m"),
    }
}

fn render(s: &Status, now: OffsetDateTime) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "{:<24} {:<18} {:<18} {:<21} {:>8}  {:<21} {}\n",
        "PROFILE", "SOURCE", "STATE", "EXPIRES", "LEFT", "LAST REFRESH", "LAST ERROR"
    ));
    for p in &s.profiles {
        out.push_str(&format!(
            "{:<24} {:<18} {:<18} {:<21} {:>8}  {:<21} {}\n",
            p.name,
            p.source,
            p.state,
            p.expires_at.as_deref().unwrap_or("-"),
            left(p.expires_at.as_deref(), now),
            p.last_refresh.as_deref().unwrap_or("-"),
            p.last_error.as_deref().unwrap_or("")
        ));
    }
    if !s.sso_sessions.is_empty() {
        out.push_str(&format!(
            "\n{:<24} {:<18} {:<21} {:>8}  {}\n",
            "SSO SESSION", "STATE", "TOKEN EXPIRES", "LEFT", "RENEWABLE AT MOST UNTIL"
        ));
        for x in &s.sso_sessions {
            out.push_str(&format!(
                "{:<24} {:<18} {:<21} {:>8}  {}\n",
                x.name,
                x.state,
                x.token_expires_at.as_deref().unwrap_or("-"),
                left(x.token_expires_at.as_deref(), now),
                x.refreshable_until.as_deref().unwrap_or("-")
            ));
        }
    }
    out
}
