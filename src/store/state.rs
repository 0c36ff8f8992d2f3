//! `state_dir/state.json`: per profile, when it was last refreshed, when it expires, and the
//! last error; per SSO session, the cached token the service refused (by a fingerprint), so it
//! is not offered again. Never secrets. Several awscredd processes may update it: each update is a
//! locked read-merge-write, so one process never drops another's entries.

use crate::credentials::format_utc;
use crate::files::{self, lock};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use time::OffsetDateTime;

/// What is known about one profile.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileState {
    pub source: String,
    /// RFC 3339 UTC, or null for credentials that do not expire.
    pub expires_at: Option<String>,
    pub last_refresh: Option<String>,
    pub last_attempt: Option<String>,
    pub last_error: Option<String>,
    /// [`key_id_hash`] of the access key id awscredd last wrote for this profile (into any of
    /// its outputs; recorded before the file is written). Keys without an expiry that an output
    /// holds are awscredd's only while they are this key: another tool's keys written into
    /// the section later are due, and never `ok`. For a file that holds no expiry of its own
    /// (`launch-settings`), `expires_at` is that file's expiry only while it holds this key; a
    /// file holding another one (a `git checkout` of the project) is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written_key: Option<String>,
    /// The account the source said the written key belongs to (a `credential_process`'s
    /// `AccountId`), recorded with [`Self::written_key`]; the `[imds]` extended credentials
    /// answer it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
}

/// What awscredd knows about one SSO session beyond the shared token cache (which it leaves as
/// the AWS CLI would: the CLI does not mark a refused token either).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionState {
    /// The fingerprint (`sources::sso::cache::fingerprint`) of the cached token that
    /// cannot be used: its access token refused (or expired) and its refresh token refused or
    /// missing. A different token in the cache is not concerned.
    pub refused_token: Option<String>,
    pub refused_at: Option<String>,
    /// Why, for `status` and the logs (never a secret).
    pub refused_because: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    #[serde(default)]
    pub profiles: BTreeMap<String, ProfileState>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sso_sessions: BTreeMap<String, SessionState>,
    /// Per `aws login` sign-in (by ARN): the refresh token the service refused (by
    /// `sources::login::fingerprint`), so that it is not offered again.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub login_sessions: BTreeMap<String, SessionState>,
}

impl State {
    /// Whether the token with `fingerprint` is the one recorded as refused for `session`.
    pub fn token_refused(&self, session: &str, fingerprint: &str) -> bool {
        self.sso_sessions
            .get(session)
            .and_then(|s| s.refused_token.as_deref())
            == Some(fingerprint)
    }
}

impl State {
    /// Whether the refresh token with `fingerprint` is the one recorded as refused for the
    /// sign-in `arn`.
    pub fn login_refused(&self, arn: &str, fingerprint: &str) -> bool {
        self.login_sessions
            .get(arn)
            .and_then(|s| s.refused_token.as_deref())
            == Some(fingerprint)
    }
}

/// Records that the cached token with `fingerprint` of `session` cannot be used.
pub fn record_refused_token(
    state: &mut State,
    session: &str,
    fingerprint: &str,
    now: OffsetDateTime,
    why: &str,
) {
    state.sso_sessions.insert(
        session.to_string(),
        SessionState {
            refused_token: Some(fingerprint.to_string()),
            refused_at: Some(format_utc(now)),
            refused_because: Some(why.to_string()),
        },
    );
}

/// Where the state lives.
#[derive(Clone, Debug)]
pub struct StateFile {
    pub path: PathBuf,
}

impl StateFile {
    pub fn in_dir(dir: &Path) -> Self {
        StateFile {
            path: dir.join("state.json"),
        }
    }

    /// Reads the state; a missing or unreadable file is an empty state (it holds nothing that
    /// cannot be rebuilt), with a warning for a corrupt one.
    pub fn load(&self) -> State {
        match files::read_regular(&self.path, files::JSON_MAX) {
            Ok(Some(b)) => serde_json::from_slice(&b).unwrap_or_else(|e| {
                tracing::warn!(path = %self.path.display(), "ignoring unreadable state file: {e}");
                State::default()
            }),
            Ok(None) => State::default(),
            Err(e) => {
                tracing::warn!("ignoring the state file: {e}");
                State::default()
            }
        }
    }

    /// Applies `change` to the current state under the state lock and writes it back.
    pub fn update(&self, change: impl FnOnce(&mut State)) -> io::Result<()> {
        let target = files::Target::open(&self.path, true)?;
        let _lock = lock::acquire(
            target.open_lock_file(files::Ownership::default())?,
            &target.lock_path(),
            "the state file",
            files::LOCK_WAIT,
        )?;
        target.remove_stale_temp_files();
        let mut state = self.load();
        change(&mut state);
        let mut json = serde_json::to_vec_pretty(&state).map_err(io::Error::other)?;
        json.push(b'\n');
        let owner = if files::privileged() {
            target.current_owner()?
        } else {
            files::Ownership::default()
        };
        target.replace(&json, 0o600, owner, true)
    }
}

/// Records a successful refresh.
pub fn record_success(
    state: &mut State,
    profile: &str,
    source: &str,
    now: OffsetDateTime,
    expires: Option<OffsetDateTime>,
) {
    let e = state.profiles.entry(profile.to_string()).or_default();
    e.source = source.to_string();
    e.expires_at = expires.map(format_utc);
    e.last_refresh = Some(format_utc(now));
    e.last_attempt = Some(format_utc(now));
    e.last_error = None;
}

/// Records a failed attempt; what is known about the credentials in the file stays.
pub fn record_failure(
    state: &mut State,
    profile: &str,
    source: &str,
    now: OffsetDateTime,
    error: &str,
) {
    let e = state.profiles.entry(profile.to_string()).or_default();
    e.source = source.to_string();
    e.last_attempt = Some(format_utc(now));
    e.last_error = Some(error.to_string());
}

/// Records a problem of the profile found without an attempt (an output that cannot be used
/// as it is): shown by `status` until a refresh succeeds everywhere.
pub fn record_error(state: &mut State, profile: &str, source: &str, error: &str) {
    let e = state.profiles.entry(profile.to_string()).or_default();
    e.source = source.to_string();
    e.last_error = Some(error.to_string());
}

/// A short hash (16 hex digits of SHA-1) of an access key id: enough to tell the key awscredd
/// wrote from another, without recording the id (no secret, but masked wherever awscredd
/// writes it besides the credentials files).
pub fn key_id_hash(access_key_id: &str) -> String {
    let mut h = crate::credentials::sha1_hex(access_key_id);
    h.truncate(16);
    h
}

/// Records the access key id written for `profile` (see [`ProfileState::written_key`]), and
/// the account the source said it belongs to.
pub fn record_written_key(
    state: &mut State,
    profile: &str,
    access_key_id: &str,
    account_id: Option<&str>,
) {
    let e = state.profiles.entry(profile.to_string()).or_default();
    e.written_key = Some(key_id_hash(access_key_id));
    e.account_id = account_id.map(str::to_string);
}

impl ProfileState {
    /// Whether `access_key_id` is the key awscredd last wrote for the profile, and a refresh is
    /// on record: keys without an expiry are trusted only then.
    pub fn wrote(&self, access_key_id: &str) -> bool {
        self.last_refresh.is_some()
            && self.written_key.as_deref() == Some(key_id_hash(access_key_id).as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn updates_merge_and_survive_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let f = StateFile::in_dir(&dir.path().join("state"));
        let now = datetime!(2026-01-01 00:00 UTC);
        f.update(|s| record_success(s, "a", "credential_process", now, None))
            .unwrap();
        f.update(|s| record_failure(s, "b", "sso", now, "boom"))
            .unwrap();
        let s = f.load();
        assert_eq!(
            s.profiles["a"].last_refresh.as_deref(),
            Some("2026-01-01T00:00:00Z")
        );
        assert_eq!(s.profiles["b"].last_error.as_deref(), Some("boom"));
        std::fs::write(&f.path, "{not json").unwrap();
        assert_eq!(f.load(), State::default());
    }

    #[test]
    fn the_written_key_is_a_hash_kept_by_later_records_and_optional_in_old_files() {
        let mut s: State =
            serde_json::from_str(r#"{"profiles": {"a": {"source": "sso", "expires_at": null, "last_refresh": null, "last_attempt": null, "last_error": null}}}"#)
                .unwrap();
        assert_eq!(s.profiles["a"].written_key, None);
        record_written_key(&mut s, "a", "ASIAEXAMPLE", None);
        let now = datetime!(2026-01-01 00:00 UTC);
        record_success(&mut s, "a", "sso", now, None);
        let hash = s.profiles["a"].written_key.clone().unwrap();
        assert_eq!(hash, key_id_hash("ASIAEXAMPLE"));
        assert_eq!(hash.len(), 16);
        assert_ne!(hash, key_id_hash("ASIAOTHER"));
        let json = serde_json::to_string(&s).unwrap();
        assert!(!json.contains("ASIAEXAMPLE"), "{json}");
    }

    #[test]
    fn a_refused_token_is_recorded_by_fingerprint_and_old_files_still_load() {
        let dir = tempfile::tempdir().unwrap();
        let f = StateFile::in_dir(dir.path());
        std::fs::write(&f.path, r#"{"profiles": {}}"#).unwrap();
        assert!(!f.load().token_refused("corp", "abc"));
        let now = datetime!(2026-01-01 00:00 UTC);
        f.update(|s| record_refused_token(s, "corp", "abc", now, "invalid_grant"))
            .unwrap();
        let s = f.load();
        assert!(s.token_refused("corp", "abc"));
        assert!(!s.token_refused("corp", "other"));
        assert!(!s.token_refused("else", "abc"));
    }

    #[test]
    fn temp_files_of_a_killed_writer_are_removed_by_the_next_update() {
        let dir = tempfile::tempdir().unwrap();
        let f = StateFile::in_dir(dir.path());
        let stale = dir.path().join(".state.json.awscredd-XYZ.tmp");
        std::fs::write(&stale, "x").unwrap();
        f.update(|_| {}).unwrap();
        assert!(!stale.exists());
    }
}
