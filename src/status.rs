//! The status model: the state of every managed profile and SSO session, as `awscredd status`
//! prints it and the metrics and health endpoints tell it. [`observe`] reads the credentials
//! files, `state.json`, the SSO token cache and the login cache; [`decide`] is a pure function of what was
//! read and the time; `commands/status.rs` only prints.

use crate::config::Config;
use crate::credentials::{format_utc, parse_rfc3339, Credentials};
use crate::sources::login::cache::{CachedLogin, LoginCache};
use crate::sources::sso::cache::{fingerprint, CachedToken, TokenCache};
use crate::store::state::StateFile;
use crate::store::CredentialsFile;
use serde::Serialize;
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// The state of a profile or an SSO session, as `status` and the metrics name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Ok,
    Expired,
    Failing,
    WaitingForLogin,
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
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
    pub state: State,
    pub expires_at: Option<String>,
    pub last_refresh: Option<String>,
    pub last_error: Option<String>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct SessionStatus {
    pub name: String,
    pub state: State,
    pub token_expires_at: Option<String>,
    pub refreshable_until: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Status {
    pub profiles: Vec<ProfileStatus>,
    pub sso_sessions: Vec<SessionStatus>,
    /// The `aws login` sign-ins, by ARN; `refreshable_until` is when the sign-in ends.
    pub login_sessions: Vec<SessionStatus>,
}

/// What `status` looks at, read once: the state file, each session's cached token, and what
/// each output holds (or why it could not be read).
#[derive(Debug, Default)]
pub struct Observed {
    pub state: crate::store::state::State,
    /// Each SSO session's token in the cache, if any.
    pub tokens: BTreeMap<String, CachedToken>,
    /// Each `aws login` sign-in in the login cache (by ARN), or why it cannot be read.
    pub logins: BTreeMap<String, Result<CachedLogin, String>>,
    /// Per output (in config order): the credentials of every profile in it.
    pub stored: Vec<BTreeMap<String, Credentials>>,
    /// Per profile: why an output meant for it could not be read.
    pub unreadable: BTreeMap<String, String>,
    /// Per profile: an expiry an output holds that is not a time, as it is written there.
    pub unreadable_expiry: BTreeMap<String, String>,
}

/// Reads what the status of `cfg` depends on (no lock is taken: files are only ever replaced
/// whole).
pub fn observe(cfg: &Config, cache: Option<&TokenCache>) -> Observed {
    let state = StateFile::in_dir(&cfg.daemon.state_dir).load();
    let tokens = cfg
        .sso_sessions
        .iter()
        .filter_map(|(name, session)| {
            let mut t = cache?.load(name)?;
            // The older per-profile form is never renewed: a refresh token in its cache file
            // (another tool's) is not one awscredd uses.
            if session.legacy {
                t.refresh_token = None;
            }
            Some((name.clone(), t))
        })
        .collect();
    let mut unreadable: BTreeMap<String, String> = BTreeMap::new();
    let mut unreadable_expiry: BTreeMap<String, String> = BTreeMap::new();
    let stored = cfg
        .outputs
        .iter()
        .map(|o| match CredentialsFile::from_output(o).read() {
            Ok(c) => {
                for (name, held) in &c {
                    if held.expiration == Some(OffsetDateTime::UNIX_EPOCH) {
                        unreadable_expiry
                            .entry(name.clone())
                            .or_insert_with(|| expiry_as_written(o, name));
                    }
                }
                c
            }
            Err(e) => {
                for p in &o.profiles {
                    unreadable.entry(p.clone()).or_insert_with(|| e.to_string());
                }
                BTreeMap::new()
            }
        })
        .collect();
    let logins = LoginCache::default_location(&crate::paths::process_env)
        .map(|cache| {
            login_arns(cfg)
                .into_iter()
                .filter_map(|arn| Some((arn.to_string(), cache.load(arn).transpose()?)))
                .collect()
        })
        .unwrap_or_default();
    Observed {
        state,
        tokens,
        logins,
        stored,
        unreadable,
        unreadable_expiry,
    }
}

/// What `output` holds as `profile`'s expiry, which is not a time (read as the epoch), as it
/// is written there (a credentials file), and where.
fn expiry_as_written(output: &crate::config::Output, profile: &str) -> String {
    let raw = crate::files::read_regular(&output.path, crate::files::CREDENTIALS_MAX)
        .ok()
        .flatten()
        .and_then(|bytes| {
            let text = crate::profile_file::ProfileFile::check_bytes(&bytes).ok()?;
            let parsed = crate::profile_file::ProfileFile::parse(text).ok()?;
            let mut keys = parsed
                .normalized(crate::profile_file::FileKind::Credentials)
                .profiles
                .remove(profile)?;
            keys.remove(crate::store::EXPIRATION_KEY)
        });
    match raw {
        Some(v) => format!(
            "the expiry `{}` in `{}` is not a time, so it cannot be read (refreshed at once)",
            v.escape_debug(),
            output.path.display()
        ),
        None => format!(
            "the expiry in `{}` is not a time, so it cannot be read (refreshed at once)",
            output.path.display()
        ),
    }
}

/// Gathers the status of everything `cfg` manages, as of `now`.
pub fn gather(cfg: &Config, cache: Option<&TokenCache>, now: OffsetDateTime) -> Status {
    decide(cfg, &observe(cfg, cache), now)
}

/// The state of each SSO session: a token the service refused (and its refresh token) needs
/// a human, whatever its expiry says.
fn session_state(
    name: &str,
    token: Option<&CachedToken>,
    seen: &Observed,
    now: OffsetDateTime,
) -> State {
    match token {
        Some(t) if seen.state.token_refused(name, &fingerprint(t)) => State::WaitingForLogin,
        Some(t) if t.expires_at > now => State::Ok,
        Some(t) if t.refreshable(now).is_some() => State::Expired,
        _ => State::WaitingForLogin,
    }
}

/// The `aws login` sign-ins the profiles of `cfg` use.
fn login_arns(cfg: &Config) -> std::collections::BTreeSet<&str> {
    cfg.profiles
        .values()
        .filter_map(|p| match &p.source {
            crate::config::Source::LoginSession { arn } => Some(arn.as_str()),
            _ => None,
        })
        .collect()
}

/// The state of an `aws login` sign-in: missing, unreadable, refused by the service or past
/// its 12 hours needs a human; else by its credentials' expiry.
fn login_state(
    arn: &str,
    login: Option<&Result<CachedLogin, String>>,
    seen: &Observed,
    now: OffsetDateTime,
) -> State {
    let Some(login) = login else {
        return State::WaitingForLogin;
    };
    let Ok(l) = login else {
        return State::Failing;
    };
    let fresh = l.credentials.expiration.is_some_and(|e| e > now);
    let refused = seen
        .state
        .login_refused(arn, &crate::sources::login::fingerprint(&l.refresh_token));
    let ended = l.ends_at().is_some_and(|e| e <= now);
    if (refused || ended) && !fresh {
        State::WaitingForLogin
    } else if fresh {
        State::Ok
    } else {
        State::Expired
    }
}

/// The status of every `aws login` sign-in of `cfg`.
fn login_sessions(cfg: &Config, seen: &Observed, now: OffsetDateTime) -> Vec<SessionStatus> {
    login_arns(cfg)
        .into_iter()
        .map(|arn| {
            let login = seen.logins.get(arn);
            let ok = login.and_then(|l| l.as_ref().ok());
            SessionStatus {
                name: arn.to_string(),
                state: login_state(arn, login, seen, now),
                token_expires_at: ok.and_then(|l| l.credentials.expiration).map(format_utc),
                refreshable_until: ok.and_then(CachedLogin::ends_at).map(format_utc),
            }
        })
        .collect()
}

/// The status of everything `cfg` manages, from what was observed, as of `now`: a pure
/// function (the table tests below).
pub fn decide(cfg: &Config, seen: &Observed, now: OffsetDateTime) -> Status {
    let sso_sessions: Vec<SessionStatus> = cfg
        .sso_sessions
        .keys()
        .map(|name| {
            let token = seen.tokens.get(name);
            SessionStatus {
                name: name.clone(),
                state: session_state(name, token, seen, now),
                token_expires_at: token.map(|t| format_utc(t.expires_at)),
                refreshable_until: token.and_then(|t| {
                    t.refresh_token
                        .as_ref()
                        .and(t.registration_expires_at)
                        .map(format_utc)
                }),
            }
        })
        .collect();
    let login_sessions = login_sessions(cfg, seen, now);
    let sessions: BTreeMap<&str, State> = sso_sessions
        .iter()
        .map(|s| (s.name.as_str(), s.state))
        .collect();
    let logins: BTreeMap<&str, State> = login_sessions
        .iter()
        .map(|s| (s.name.as_str(), s.state))
        .collect();
    let profiles = cfg
        .profiles
        .values()
        .map(|p| profile_status(cfg, p, seen, (&sessions, &logins), now))
        .collect();
    Status {
        profiles,
        sso_sessions,
        login_sessions,
    }
}

/// One profile's status (see [`decide`]).
fn profile_status(
    cfg: &Config,
    p: &crate::config::Profile,
    seen: &Observed,
    (sessions, logins): (&BTreeMap<&str, State>, &BTreeMap<&str, State>),
    now: OffsetDateTime,
) -> ProfileStatus {
    let recorded = seen.state.profiles.get(&p.name);
    let holders: Vec<Option<&Credentials>> = cfg
        .output_indexes(&p.name)
        .iter()
        .map(|&i| seen.stored.get(i).and_then(|creds| creds.get(&p.name)))
        .collect();
    // An expiry that is not a time is read as the epoch (long past): never shown as 1970.
    let expiry_known = holders
        .iter()
        .flatten()
        .filter_map(|c| c.expiration)
        .filter(|e| *e != OffsetDateTime::UNIX_EPOCH)
        .min();
    let expires_at = if holders.is_empty() {
        recorded
            .and_then(|r| r.expires_at.as_deref())
            .and_then(|t| parse_rfc3339(t).ok())
    } else {
        expiry_known
    };
    // Keys without an expiry are valid only if they are the key awscredd last wrote: another
    // tool's keys may no longer work (the refresh rules call them due at once).
    let refreshed = recorded.is_some_and(|r| r.last_refresh.is_some());
    let ours = |c: &Credentials| recorded.is_some_and(|r| r.wrote(&c.access_key_id));
    let valid = if holders.is_empty() {
        // Only a source of other profiles: what its last refresh produced.
        refreshed && expires_at.is_none_or(|e| e > now)
    } else {
        holders
            .iter()
            .all(|h| h.is_some_and(|c| c.expiration.map_or(ours(c), |e| e > now)))
    };
    let mut last_error = recorded.and_then(|r| r.last_error.clone());
    let waits = |s: Option<&State>| s.is_some_and(|s| *s == State::WaitingForLogin);
    let state = if waits(cfg.root_sso_session(&p.name).and_then(|s| sessions.get(s)))
        || waits(cfg.root_login_session(&p.name).and_then(|s| logins.get(s)))
    {
        State::WaitingForLogin
    } else if last_error.is_some() {
        State::Failing
    } else if !valid {
        State::Expired
    } else {
        State::Ok
    };
    // An expired profile says why when its file, or the expiry in it, cannot be read.
    if state == State::Expired && last_error.is_none() {
        last_error = seen
            .unreadable
            .get(&p.name)
            .or_else(|| seen.unreadable_expiry.get(&p.name))
            .cloned();
    }
    ProfileStatus {
        name: p.name.clone(),
        source: p.source.kind(),
        state,
        expires_at: expires_at.map(format_utc),
        last_refresh: recorded.and_then(|r| r.last_refresh.clone()),
        last_error,
    }
}
