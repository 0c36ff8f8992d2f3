//! The credentials files awscredd keeps: read what is there, edit in place, write atomically,
//! all under an exclusive lock.
//!
//! [`CredentialsFile::write`] is one locked read-modify-write of one file with every profile a
//! pass refreshed for it; [`crate::profile_file::edit`] is the pure edit inside it, and
//! [`atomic`] and [`lock`] are the I/O around it. A file that does not parse is never written.

pub mod atomic;
pub mod lock;
#[cfg(windows)]
pub mod replace_windows;

use crate::config::{Output, UserRef};
use crate::credentials::{format_utc, parse_rfc3339, Credentials, Secret};
use crate::profile_file::edit::{rewrite, EditError, KeyUpdate, ProfileUpdate};
use crate::profile_file::{FileKind, ParseError, ProfileFile};
use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use time::OffsetDateTime;

/// The key we write a profile's expiry under, as RFC 3339 UTC. The AWS SDKs ignore it. It is
/// the name the AWS CLI's `configure export-credentials` and aws-vault use for the same value
/// (`AWS_CREDENTIAL_EXPIRATION`), so tools that already read it keep working.
pub const EXPIRATION_KEY: &str = "aws_credential_expiration";

/// Why a credentials file could not be read or written. Messages name the file.
#[derive(Debug)]
pub enum StoreError {
    /// The file is not something the AWS SDKs can parse; it was left untouched.
    Unparseable { path: PathBuf, error: ParseError },
    /// The edit was refused (duplicate sections, unwritable value); nothing was written.
    Edit { path: PathBuf, error: EditError },
    /// An I/O failure, with what we were doing.
    Io {
        path: PathBuf,
        action: &'static str,
        error: io::Error,
    },
    /// `owner` or `group` names nobody on this system.
    UnknownOwner { path: PathBuf, what: String },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Unparseable { path, error } => write!(
                f,
                "{}:{}: cannot parse the credentials file, so it was left untouched: {}",
                path.display(),
                error.line,
                error.message
            ),
            StoreError::Edit { path, error } => {
                write!(f, "cannot update `{}`: {error}", path.display())
            }
            StoreError::Io {
                path,
                action,
                error,
            } => write!(f, "failed to {action} `{}`: {error}", path.display()),
            StoreError::UnknownOwner { path, what } => {
                write!(f, "cannot write `{}`: {what}", path.display())
            }
        }
    }
}

impl std::error::Error for StoreError {}

/// One credentials file awscredd keeps.
#[derive(Clone, Debug)]
pub struct CredentialsFile {
    pub path: PathBuf,
    pub mode: u32,
    pub owner: Option<UserRef>,
    pub group: Option<UserRef>,
    /// `sync_all` the file and its folder (always, but for benchmarks).
    pub durable: bool,
}

impl CredentialsFile {
    pub fn from_output(o: &Output) -> Self {
        CredentialsFile {
            path: o.path.clone(),
            mode: o.mode,
            owner: o.owner.clone(),
            group: o.group.clone(),
            durable: true,
        }
    }

    /// Reads the credentials of every profile in the file. A missing file holds none.
    pub fn read(&self) -> Result<BTreeMap<String, Credentials>, StoreError> {
        let target = self.target()?;
        let bytes = match std::fs::read(&target) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(error) => {
                return Err(StoreError::Io {
                    path: self.path.clone(),
                    action: "read",
                    error,
                })
            }
        };
        let parsed = parse(&self.path, &bytes)?;
        Ok(credentials_in(&parsed))
    }

    /// Writes `profiles` into the file in one locked read-modify-write. Returns whether the
    /// bytes changed.
    pub fn write(&self, profiles: &[(String, Credentials)]) -> Result<bool, StoreError> {
        let io_err = |action: &'static str| {
            let path = self.path.clone();
            move |error: io::Error| StoreError::Io {
                path,
                action,
                error,
            }
        };
        let target = self.target()?;
        let dir = target
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        atomic::create_dirs(&dir).map_err(io_err("create the folder of"))?;
        let ownership = self.ownership()?;

        let _lock =
            lock::lock_exclusive(&lock::lock_path_for(&target), &target.display().to_string())
                .map_err(io_err("lock"))?;
        atomic::remove_stale_temp_files(&target);

        let (old, existing_owner) = match std::fs::read(&target) {
            Ok(b) => (b, existing_ownership(&target)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => (Vec::new(), Default::default()),
            Err(e) => return Err(io_err("read")(e)),
        };
        let parsed = parse(&self.path, &old)?;
        let updates: Vec<ProfileUpdate> = profiles.iter().map(|(n, c)| update_for(n, c)).collect();
        let new = rewrite(&parsed, &updates).map_err(|error| StoreError::Edit {
            path: self.path.clone(),
            error,
        })?;
        if new.as_bytes() == old.as_slice() && self.mode_is(&target) {
            return Ok(false);
        }
        // Keep the current owner unless one is configured (root writing an app user's file).
        let ownership = atomic::Ownership {
            uid: ownership.uid.or(existing_owner.uid),
            gid: ownership.gid.or(existing_owner.gid),
        };
        atomic::write_atomic(&target, new.as_bytes(), self.mode, ownership, self.durable)
            .map_err(io_err("write"))?;
        Ok(true)
    }

    /// The file really written: symlinks followed.
    fn target(&self) -> Result<PathBuf, StoreError> {
        atomic::resolve_target(&self.path).map_err(|error| StoreError::Io {
            path: self.path.clone(),
            action: "resolve",
            error,
        })
    }

    #[cfg(unix)]
    fn mode_is(&self, target: &Path) -> bool {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(target).is_ok_and(|m| m.permissions().mode() & 0o7777 == self.mode)
    }

    #[cfg(not(unix))]
    fn mode_is(&self, _target: &Path) -> bool {
        true
    }

    #[cfg(unix)]
    fn ownership(&self) -> Result<atomic::Ownership, StoreError> {
        let unknown = |what: String| StoreError::UnknownOwner {
            path: self.path.clone(),
            what,
        };
        let uid = match &self.owner {
            None => None,
            Some(UserRef::Id(i)) => Some(*i),
            Some(UserRef::Name(n)) => match nix::unistd::User::from_name(n) {
                Ok(Some(u)) => Some(u.uid.as_raw()),
                _ => return Err(unknown(format!("owner `{n}` is not a user on this system"))),
            },
        };
        let gid = match &self.group {
            None => None,
            Some(UserRef::Id(i)) => Some(*i),
            Some(UserRef::Name(n)) => match nix::unistd::Group::from_name(n) {
                Ok(Some(g)) => Some(g.gid.as_raw()),
                _ => {
                    return Err(unknown(format!(
                        "group `{n}` is not a group on this system"
                    )))
                }
            },
        };
        Ok(atomic::Ownership { uid, gid })
    }

    #[cfg(not(unix))]
    fn ownership(&self) -> Result<atomic::Ownership, StoreError> {
        Ok(atomic::Ownership::default())
    }
}

/// The owner of an existing file, kept when we run as root and nothing else is configured.
#[cfg(unix)]
fn existing_ownership(target: &Path) -> atomic::Ownership {
    use std::os::unix::fs::MetadataExt;
    if !nix::unistd::geteuid().is_root() {
        return atomic::Ownership::default();
    }
    match std::fs::metadata(target) {
        Ok(m) => atomic::Ownership {
            uid: Some(m.uid()),
            gid: Some(m.gid()),
        },
        Err(_) => atomic::Ownership::default(),
    }
}

#[cfg(not(unix))]
fn existing_ownership(_target: &Path) -> atomic::Ownership {
    atomic::Ownership::default()
}

fn parse<'a>(path: &Path, bytes: &'a [u8]) -> Result<ProfileFile<'a>, StoreError> {
    let unparseable = |error| StoreError::Unparseable {
        path: path.to_path_buf(),
        error,
    };
    let text = ProfileFile::check_bytes(bytes).map_err(unparseable)?;
    ProfileFile::parse(text).map_err(unparseable)
}

/// The credentials of every profile of a parsed credentials file that has both keys.
pub fn credentials_in(parsed: &ProfileFile<'_>) -> BTreeMap<String, Credentials> {
    parsed
        .normalized(FileKind::Credentials)
        .profiles
        .into_iter()
        .filter_map(|(name, keys)| Some((name, credentials_from_keys(&keys)?)))
        .collect()
}

/// Credentials from a profile's keys (`aws_session_token`, or the legacy
/// `aws_security_token`); `None` without both key id and secret.
pub fn credentials_from_keys(keys: &BTreeMap<String, String>) -> Option<Credentials> {
    let akid = keys.get("aws_access_key_id").filter(|v| !v.is_empty())?;
    let secret = keys
        .get("aws_secret_access_key")
        .filter(|v| !v.is_empty())?;
    let token = keys
        .get("aws_session_token")
        .or_else(|| keys.get("aws_security_token"))
        .filter(|v| !v.is_empty());
    Some(Credentials {
        access_key_id: akid.clone(),
        secret_access_key: Secret::new(secret.clone()),
        session_token: token.map(|t| Secret::new(t.clone())),
        expiration: keys.get(EXPIRATION_KEY).and_then(|e| parse_rfc3339(e).ok()),
    })
}

/// The managed keys of one profile for these credentials.
pub fn update_for(profile: &str, c: &Credentials) -> ProfileUpdate {
    let token = c.session_token.as_ref().map(|t| t.expose().to_string());
    ProfileUpdate {
        profile: profile.to_string(),
        keys: vec![
            (
                "aws_access_key_id".into(),
                KeyUpdate::Set(c.access_key_id.clone()),
            ),
            (
                "aws_secret_access_key".into(),
                KeyUpdate::Set(c.secret_access_key.expose().to_string()),
            ),
            (
                "aws_session_token".into(),
                token.clone().map_or(KeyUpdate::Remove, KeyUpdate::Set),
            ),
            // botocore reads this legacy alias before aws_session_token: keep it in step.
            (
                "aws_security_token".into(),
                token.map_or(KeyUpdate::Remove, KeyUpdate::SetIfPresent),
            ),
            (
                EXPIRATION_KEY.into(),
                c.expiration.map_or(KeyUpdate::Remove, |e: OffsetDateTime| {
                    KeyUpdate::Set(format_utc(e))
                }),
            ),
        ],
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use time::macros::datetime;

    fn creds(akid: &str) -> Credentials {
        Credentials {
            access_key_id: akid.into(),
            secret_access_key: Secret::new("S"),
            session_token: Some(Secret::new("T")),
            expiration: Some(datetime!(2030-01-02 03:04:05 UTC)),
        }
    }

    fn file(path: &Path) -> CredentialsFile {
        CredentialsFile {
            path: path.to_path_buf(),
            mode: 0o600,
            owner: None,
            group: None,
            durable: true,
        }
    }

    #[test]
    fn write_then_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/credentials");
        let f = file(&path);
        assert!(f.write(&[("dev".into(), creds("AKIA1"))]).unwrap());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("aws_credential_expiration = 2030-01-02T03:04:05Z"));
        assert_eq!(f.read().unwrap()["dev"], creds("AKIA1"));
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // The same write again changes nothing on disk.
        assert!(!f.write(&[("dev".into(), creds("AKIA1"))]).unwrap());
    }

    #[test]
    fn unparseable_file_is_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials");
        for bad in [&b"[a]\nkey : value\n"[..], b"[a]\nk = \xff\n", b"[a]\n\0\n"] {
            std::fs::write(&path, bad).unwrap();
            let err = file(&path)
                .write(&[("dev".into(), creds("A"))])
                .unwrap_err();
            assert!(matches!(err, StoreError::Unparseable { .. }), "{err}");
            assert!(
                err.to_string().contains(&format!("{}:2:", path.display())),
                "{err}"
            );
            assert_eq!(std::fs::read(&path).unwrap(), bad);
        }
    }

    #[test]
    fn mode_is_tightened_to_configured() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials");
        std::fs::write(&path, "[a]\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        file(&path).write(&[("a".into(), creds("A"))]).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
