//! The SSO token cache shared with AWS CLI v2, botocore and the AWS SDKs:
//! `~/.aws/sso/cache/<sha1 of the session name>.json`, same JSON fields and formats.
//!
//! Reads are lenient (any RFC 3339 time; a corrupt or partial file is "no token", with a
//! warning once per change of the file: the daemon reads it at every poll); writes are atomic, mode 0600, with times as `YYYY-MM-DDTHH:MM:SSZ`, which every
//! reader accepts. Beside each token file, `.NAME.lock` is the lock every awscredd process takes
//! before it refreshes or signs in for that session. The client registration is also kept the
//! way CLI v2 keeps it, in a file of its own.

use crate::credentials::{format_utc, parse_rfc3339, Secret};
use crate::files;
use crate::paths::{self, Env};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};
use time::OffsetDateTime;

/// The token files found unreadable and warned about, with what was seen (the problem and a
/// hash of the bytes): the same again is not warned about at every poll; a change is.
static TOLD_UNREADABLE: std::sync::Mutex<std::collections::BTreeMap<PathBuf, String>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

/// Records what `path` holds: `Some(seen)` unreadable, `None` readable or missing. Whether
/// that same unreadable content was told already.
fn told_unreadable(path: &Path, seen: Option<String>) -> bool {
    let mut told = TOLD_UNREADABLE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    match seen {
        None => {
            told.remove(path);
            false
        }
        Some(seen) => told.insert(path.to_path_buf(), seen.clone()).as_deref() == Some(&seen),
    }
}

fn sha1_hex_bytes(bytes: &[u8]) -> String {
    crate::credentials::sha1_hex(&String::from_utf8_lossy(bytes))
}

/// A cached access token, and what is needed to refresh it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CachedToken {
    pub start_url: Option<String>,
    pub region: Option<String>,
    pub access_token: Secret,
    pub expires_at: OffsetDateTime,
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    pub registration_expires_at: Option<OffsetDateTime>,
    pub refresh_token: Option<Secret>,
}

impl CachedToken {
    /// The registration and refresh token needed for the `refresh_token` grant, if all there
    /// and the registration has not expired.
    pub fn refreshable(&self, now: OffsetDateTime) -> Option<(Registration, &Secret)> {
        let refresh = self.refresh_token.as_ref()?;
        let reg = Registration {
            client_id: self.client_id.clone()?,
            client_secret: self.client_secret.clone()?,
            expires_at: self.registration_expires_at?,
        };
        (reg.expires_at > now).then_some((reg, refresh))
    }
}

/// An SSO OIDC client registration (RegisterClient).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registration {
    pub client_id: String,
    pub client_secret: Secret,
    pub expires_at: OffsetDateTime,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenFileIn {
    start_url: Option<String>,
    region: Option<String>,
    access_token: Option<String>,
    expires_at: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    registration_expires_at: Option<String>,
    refresh_token: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TokenFileOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    start_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    region: Option<&'a str>,
    access_token: &'a str,
    expires_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    registration_expires_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<&'a str>,
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct RegistrationFile {
    client_id: String,
    client_secret: String,
    expires_at: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    scopes: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    grant_types: Vec<String>,
}

/// The cache folder and the files in it.
#[derive(Clone, Debug)]
pub struct TokenCache {
    pub dir: PathBuf,
}

/// What identifies a cached token in awscredd's own state without holding a secret: the first
/// 16 hex digits of the SHA-1 of its access token (which cannot be recovered from them).
pub fn fingerprint(t: &CachedToken) -> String {
    let mut f = sha1_hex(t.access_token.expose());
    f.truncate(16);
    f
}

pub use crate::credentials::sha1_hex;

/// A JSON string as Python's `json.dumps` writes it (ASCII only, `\uXXXX` escapes), for the
/// CLI's registration cache key.
fn python_json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl TokenCache {
    /// `~/.aws/sso/cache`, with the home folder found as the SDKs find it.
    pub fn default_location(env: Env<'_>) -> Option<Self> {
        let home = paths::home_dir(env, cfg!(windows))?;
        Some(TokenCache {
            dir: PathBuf::from(home).join(".aws").join("sso").join("cache"),
        })
    }

    /// The token file of an `sso_session`: `<sha1(name)>.json`.
    pub fn token_path(&self, session: &str) -> PathBuf {
        self.dir.join(format!("{}.json", sha1_hex(session)))
    }

    /// The lock file every awscredd process takes before refreshing or signing in.
    pub fn lock_path(&self, session: &str) -> PathBuf {
        crate::files::lock::lock_path_for(&self.token_path(session))
    }

    /// The CLI v2 registration cache file for a session.
    pub fn registration_path(
        &self,
        session: &str,
        start_url: &str,
        region: &str,
        scopes: &[String],
    ) -> PathBuf {
        let scopes: Vec<String> = scopes.iter().map(|s| python_json_str(s)).collect();
        let key = format!(
            "{{\"region\": {}, \"scopes\": [{}], \"session_name\": {}, \"startUrl\": {}, \"tool\": \"botocore\"}}",
            python_json_str(region),
            scopes.join(", "),
            python_json_str(session),
            python_json_str(start_url)
        );
        self.dir.join(format!("{}.json", sha1_hex(&key)))
    }

    /// The CLI v2 registration cache file for the older per-profile form (no session name,
    /// no scopes: its key has `null` for both).
    pub fn legacy_registration_path(&self, start_url: &str, region: &str) -> PathBuf {
        let key = format!(
            "{{\"region\": {}, \"scopes\": null, \"session_name\": null, \"startUrl\": {}, \"tool\": \"botocore\"}}",
            python_json_str(region),
            python_json_str(start_url)
        );
        self.dir.join(format!("{}.json", sha1_hex(&key)))
    }

    /// Reads a session's token. Missing is `None`; unreadable or incomplete is `None` with a
    /// warning (never an error: a human can always sign in again). A parse failure is retried
    /// briefly, since other tools rewrite this file in place and a read can see it half-written.
    pub fn load(&self, session: &str) -> Option<CachedToken> {
        let path = self.token_path(session);
        let mut last_problem = String::new();
        let mut last_bytes = Vec::new();
        for attempt in 0..3 {
            if attempt > 0 {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            let bytes = match files::read_private(&path, files::JSON_MAX) {
                Ok(Some(b)) => b,
                Ok(None) => {
                    told_unreadable(&path, None);
                    return None;
                }
                Err(e) => {
                    last_problem = e.to_string();
                    continue;
                }
            };
            match parse_token(&bytes) {
                Ok(t) => {
                    told_unreadable(&path, None);
                    return Some(t);
                }
                Err(p) => {
                    last_problem = p;
                    last_bytes = bytes;
                }
            }
        }
        let seen = format!("{last_problem}\0{}", sha1_hex_bytes(&last_bytes));
        if told_unreadable(&path, Some(seen)) {
            tracing::debug!(
                sso_session = session,
                path = %path.display(),
                "ignoring the cached SSO token (unchanged): {last_problem}"
            );
        } else {
            tracing::warn!(
                sso_session = session,
                path = %path.display(),
                "ignoring the cached SSO token: {last_problem}"
            );
        }
        None
    }

    /// Writes a session's token atomically with mode 0600.
    pub fn store(&self, session: &str, t: &CachedToken) -> io::Result<()> {
        let out = TokenFileOut {
            start_url: t.start_url.as_deref(),
            region: t.region.as_deref(),
            access_token: t.access_token.expose(),
            expires_at: format_utc(t.expires_at),
            client_id: t.client_id.as_deref(),
            client_secret: t.client_secret.as_ref().map(Secret::expose),
            registration_expires_at: t.registration_expires_at.map(format_utc),
            refresh_token: t.refresh_token.as_ref().map(Secret::expose),
        };
        let json = serde_json::to_vec_pretty(&out).map_err(io::Error::other)?;
        write_private(&self.token_path(session), &json)
    }

    /// Reads a cached registration; `None` if missing or unreadable.
    pub fn load_registration(&self, path: &Path) -> Option<Registration> {
        let bytes = files::read_private(path, files::JSON_MAX).ok()??;
        let f: RegistrationFile = serde_json::from_slice(&bytes).ok()?;
        Some(Registration {
            client_id: f.client_id,
            client_secret: Secret::new(f.client_secret),
            expires_at: parse_rfc3339(&f.expires_at).ok()?,
        })
    }

    /// Writes a registration the way CLI v2 does, mode 0600.
    pub fn store_registration(
        &self,
        path: &Path,
        r: &Registration,
        scopes: &[String],
        grant_types: &[String],
    ) -> io::Result<()> {
        let f = RegistrationFile {
            client_id: r.client_id.clone(),
            client_secret: r.client_secret.expose().to_string(),
            expires_at: format_utc(r.expires_at),
            scopes: scopes.to_vec(),
            grant_types: grant_types.to_vec(),
        };
        let json = serde_json::to_vec_pretty(&f).map_err(io::Error::other)?;
        write_private(path, &json)
    }
}

/// Writes a cache file, mode 0600, keeping its owner (root renewing a user's token).
fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    files::write_atomic_keeping_owner(path, bytes, 0o600)
}

pub(crate) fn parse_token(bytes: &[u8]) -> Result<CachedToken, String> {
    let f: TokenFileIn =
        serde_json::from_slice(bytes).map_err(|e| format!("it is not valid JSON ({e})"))?;
    let access_token = f
        .access_token
        .filter(|t| !t.is_empty())
        .ok_or("it has no accessToken")?;
    let expires_at = parse_rfc3339(&f.expires_at.ok_or("it has no expiresAt")?)
        .map_err(|e| format!("expiresAt: {e}"))?;
    Ok(CachedToken {
        start_url: f.start_url,
        region: f.region,
        access_token: Secret::new(access_token),
        expires_at,
        client_id: f.client_id,
        client_secret: f.client_secret.map(Secret::new),
        registration_expires_at: f
            .registration_expires_at
            .and_then(|t| parse_rfc3339(&t).ok()),
        refresh_token: f.refresh_token.filter(|t| !t.is_empty()).map(Secret::new),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn file_names_match_the_cli_and_sdks() {
        // The smithy-rs fixture and protocols.md §4.1.
        assert_eq!(sha1_hex("dev"), "34c6fceca75e456f25e7e99531e2425c6c1de443");
        assert_eq!(
            sha1_hex("https://d-123.awsapps.com/start"),
            "2b829a45f04c9828cb45b7d092d8e4aa30818393"
        );
        let cache = TokenCache {
            dir: PathBuf::from("/c"),
        };
        assert_eq!(
            cache.registration_path(
                "dev",
                "https://d-123.awsapps.com/start",
                "us-east-1",
                &["sso:account:access".to_string()]
            ),
            PathBuf::from("/c/4dafadc86fdb229ba279cfa07117722b19bdc420.json")
        );
        assert_eq!(python_json_str("é\"\n"), "\"\\u00e9\\\"\\n\"");
    }

    #[test]
    fn reads_cli_written_tokens_and_round_trips_ours() {
        let dir = tempfile::tempdir().unwrap();
        let cache = TokenCache {
            dir: dir.path().join("sso/cache"),
        };
        assert!(cache.load("dev").is_none());
        std::fs::create_dir_all(&cache.dir).unwrap();
        // As AWS CLI v2 writes it (offset form and fractions must be accepted too).
        std::fs::write(
            cache.token_path("dev"),
            r#"{"startUrl": "https://d-123.awsapps.com/start", "region": "us-east-1", "accessToken": "at", "expiresAt": "2030-01-01T00:00:00Z", "clientId": "cid", "clientSecret": "cs", "registrationExpiresAt": "2030-03-01T00:00:00.000+00:00", "refreshToken": "rt"}"#,
        )
        .unwrap();
        let t = cache.load("dev").unwrap();
        assert_eq!(t.access_token.expose(), "at");
        assert_eq!(t.expires_at, datetime!(2030-01-01 00:00 UTC));
        let (reg, rt) = t.refreshable(datetime!(2029-01-01 00:00 UTC)).unwrap();
        assert_eq!((reg.client_id.as_str(), rt.expose()), ("cid", "rt"));
        assert!(t.refreshable(datetime!(2031-01-01 00:00 UTC)).is_none());
        cache.store("dev", &t).unwrap();
        assert_eq!(cache.load("dev").unwrap(), t);
        let text = std::fs::read_to_string(cache.token_path("dev")).unwrap();
        assert!(
            text.contains("\"expiresAt\": \"2030-01-01T00:00:00Z\""),
            "{text}"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(cache.token_path("dev"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    /// Corrupt or partial files are no token; and (issue 27 item 7) a corrupt cache, which
    /// logged a warning at every poll, is told once per change. One test: the warning's
    /// callsite met first on another test's thread, with no subscriber there, can stay
    /// unheard by this one's.
    #[test]
    fn corrupt_or_partial_files_are_no_token_and_told_once_per_change() {
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Captured(Arc<Mutex<Vec<u8>>>);
        impl io::Write for Captured {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_writer(move || writer.clone())
            .finish();
        let dir = tempfile::tempdir().unwrap();
        let cache = TokenCache {
            dir: dir.path().to_path_buf(),
        };
        let warnings = || {
            String::from_utf8_lossy(&captured.0.lock().unwrap())
                .matches("ignoring the cached SSO token")
                .count()
        };
        tracing::subscriber::with_default(subscriber, || {
            // Another test's thread may have met the warning with no subscriber first, and
            // cached that nobody listens to it.
            tracing::callsite::rebuild_interest_cache();
            for bad in [
                "",
                "{\"accessToken\": \"at\", \"expiresAt\": \"2030-01-01T0",
                "{\"expiresAt\": \"2030-01-01T00:00:00Z\"}",
                "{\"accessToken\": \"at\", \"expiresAt\": \"tomorrow\"}",
                "[1, 2]",
            ] {
                std::fs::write(cache.token_path("s"), bad).unwrap();
                assert!(cache.load("s").is_none(), "{bad}");
            }
            assert_eq!(warnings(), 5, "each change is told");
            std::fs::write(cache.token_path("poll"), "{not json").unwrap();
            for _ in 0..3 {
                assert!(cache.load("poll").is_none());
            }
            assert_eq!(warnings(), 6, "the same corrupt file is told once");
            std::fs::write(cache.token_path("poll"), "[1, 2]").unwrap();
            cache.load("poll");
            cache.load("poll");
            assert_eq!(warnings(), 7, "a change is told");
            std::fs::write(
                cache.token_path("poll"),
                r#"{"accessToken": "at", "expiresAt": "2030-01-01T00:00:00Z"}"#,
            )
            .unwrap();
            assert!(cache.load("poll").is_some());
            std::fs::write(cache.token_path("poll"), "[1, 2]").unwrap();
            cache.load("poll");
            assert_eq!(
                warnings(),
                8,
                "corrupt again after a good token is told again"
            );
        });
    }
}
