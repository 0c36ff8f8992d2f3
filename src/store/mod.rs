//! The credentials files awscredd keeps: read what is there, edit in place, write atomically,
//! all under an exclusive lock.
//!
//! [`CredentialsFile::write`] is one locked read-modify-write of one file with every profile a
//! pass refreshed for it; [`crate::profile_file::edit`] is the pure edit inside it, and
//! [`crate::files`] is the I/O around it. A file that does not parse is never written.

pub mod state;

use crate::config::{Output, UserRef};
use crate::credentials::{parse_rfc3339, Credentials};
use crate::files::{self, lock};
use crate::formats::{CodecError, Format, FormatError};
use crate::profile_file::edit::{EditError, Pieces};
use crate::profile_file::ParseError;
use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

pub use crate::profile_file::credentials::{
    credentials_from_keys, credentials_in, update_for, EXPIRATION_KEY,
};

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
    /// The file's lock could not be taken (the error names the lock file and its holder).
    Lock { lock: PathBuf, error: io::Error },
    /// A file of another format that cannot be read or written; it was left untouched.
    Format {
        path: PathBuf,
        format: &'static str,
        error: FormatError,
    },
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
            } => {
                let text = error.to_string();
                // Errors from the safe walk name their path already.
                if text.contains('`') {
                    write!(f, "cannot {action} `{}`: {text}", path.display())
                } else {
                    write!(f, "failed to {action} `{}`: {text}", path.display())
                }
            }
            StoreError::UnknownOwner { path, what } => {
                write!(f, "cannot write `{}`: {what}", path.display())
            }
            StoreError::Lock { error, .. } => write!(f, "{error}"),
            StoreError::Format {
                path,
                format,
                error,
            } => {
                if let Some((line, column)) = error.at {
                    write!(f, "{}:{line}:{column}: ", path.display())?;
                }
                let article = Format::parse(format).map_or("a", |x| x.article());
                write!(
                    f,
                    "cannot use `{}` as {article} {format} file, so it was left untouched: {error}",
                    path.display(),
                )
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
    pub format: Format,
    /// The one profile of a format other than `ini`.
    pub profile: Option<String>,
    /// Where the expiry of a format without one is recorded (`launch-settings`).
    pub state_file: Option<PathBuf>,
}

impl CredentialsFile {
    pub fn from_output(o: &Output) -> Self {
        CredentialsFile {
            path: o.path.clone(),
            mode: o.mode,
            owner: o.owner.clone(),
            group: o.group.clone(),
            durable: true,
            format: o.format.clone(),
            profile: o.profiles.first().cloned(),
            state_file: Some(o.state_file.clone()),
        }
    }

    /// A credentials file (`ini`) at `path`, for tools and benchmarks.
    pub fn ini(path: &Path, mode: u32, durable: bool) -> Self {
        CredentialsFile {
            path: path.to_path_buf(),
            mode,
            owner: None,
            group: None,
            durable,
            format: Format::Ini,
            profile: None,
            state_file: None,
        }
    }

    /// A codec's error as the store's, naming the file.
    fn codec_error(&self, error: CodecError) -> StoreError {
        let path = self.path.clone();
        match error {
            CodecError::Unparseable(error) => StoreError::Unparseable { path, error },
            CodecError::Edit(error) => StoreError::Edit { path, error },
            CodecError::Format(error) => StoreError::Format {
                path,
                format: self.format.name(),
                error,
            },
        }
    }

    /// What the file holds: every profile of a credentials file, the one profile of another
    /// format (whose expiry the state file says, for a format that holds none).
    fn read_bytes(&self, bytes: &[u8]) -> Result<BTreeMap<String, Credentials>, StoreError> {
        let codec = self.format.codec();
        let mut creds = codec
            .read(bytes, self.profile.as_deref())
            .map_err(|e| self.codec_error(e))?;
        if codec.holds_expiry() {
            return Ok(creds);
        }
        // The state file's record says when these expire, if the file still holds the key
        // recorded as written; another key (the file checked out again, edited by hand) is not
        // ours: the file holds nothing, and is due.
        let state = self
            .state_file
            .as_ref()
            .map(|p| crate::store::state::StateFile { path: p.clone() }.load());
        for (name, c) in creds.iter_mut() {
            let record = state.as_ref().and_then(|s| s.profiles.get(name));
            let ours = crate::store::state::key_id_hash(&c.access_key_id);
            if record.and_then(|r| r.written_key.as_deref()) != Some(ours.as_str()) {
                return Ok(BTreeMap::new());
            }
            c.expiration = record
                .and_then(|r| r.expires_at.as_deref())
                .and_then(|t| parse_rfc3339(t).ok());
        }
        Ok(creds)
    }

    /// The new text of the file for `profiles`, from its old bytes (`None`: no file yet), into
    /// `out` (pieces of the old bytes and new text); returns whether it differs from the old
    /// bytes. A profile whose part cannot be written is left out and pushed to `refused` while
    /// others remain to be written; the last one is the error.
    fn render<'a>(
        &self,
        old: Option<&'a [u8]>,
        profiles: &[(String, Credentials)],
        out: &mut Pieces<'a>,
        refused: &mut Vec<(String, StoreError)>,
    ) -> Result<bool, StoreError> {
        let mut failed = Vec::new();
        let res =
            self.format
                .codec()
                .rewrite(old, profiles, self.profile.as_deref(), out, &mut failed);
        refused.extend(failed.into_iter().map(|(n, e)| (n, self.codec_error(e))));
        res.map_err(|e| self.codec_error(e))
    }

    /// Reads the credentials of every profile in the file. A missing file holds none.
    pub fn read(&self) -> Result<BTreeMap<String, Credentials>, StoreError> {
        let target = self.target(false)?;
        let bytes = match target.read(files::CREDENTIALS_MAX) {
            Ok(Some(e)) => e.bytes,
            Ok(None) => return Ok(BTreeMap::new()),
            Err(error) => return Err(self.io("read", error)),
        };
        self.read_bytes(&bytes)
    }

    /// What the file holds for `profile` (see [`Self::read`]). A credentials file is not
    /// parsed whole: only the profile's section is (the SDKs' hot path, `credential-process`,
    /// in a file of thousands of profiles).
    pub fn read_profile(&self, profile: &str) -> Result<Option<Credentials>, StoreError> {
        if self.format != crate::formats::Format::Ini {
            return Ok(self.read()?.remove(profile));
        }
        let target = self.target(false)?;
        let Some(mut file) = target.open_read().map_err(|e| self.io("read", e))? else {
            return Ok(None);
        };
        let sections =
            crate::profile_file::read_sections_of(&mut file, profile, files::CREDENTIALS_MAX)
                .map_err(|e| self.io("read", e))?;
        match crate::formats::ini::credentials_of_sections(&sections, profile) {
            Some(found) => found.map_err(|e| self.codec_error(e)),
            None => Ok(self.read()?.remove(profile)),
        }
    }

    fn io(&self, action: &'static str, error: io::Error) -> StoreError {
        StoreError::Io {
            path: self.path.clone(),
            action,
            error,
        }
    }

    /// Puts the file's mode back to the configured one when someone loosened (or changed) it
    /// by hand: a pass that writes nothing to the file would otherwise leave it so until its
    /// next write. Returns the mode it had, if it was changed.
    pub fn restore_mode(&self) -> Result<Option<u32>, StoreError> {
        let target = match files::Target::open(&self.path, false) {
            Ok(t) => t,
            // No folder yet: no file, nothing to restore.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => {
                return Err(StoreError::Io {
                    path: self.path.clone(),
                    action: "reach",
                    error,
                })
            }
        };
        target
            .restore_mode(self.mode)
            .map_err(|e| self.io("set the mode of", e))
    }

    /// Writes `profiles` into the file in one locked read-modify-write. Returns whether the
    /// bytes changed. A profile whose section cannot be written fails the call, though the
    /// others are written (see [`Self::write_refusing`]).
    pub fn write(&self, profiles: &[(String, Credentials)]) -> Result<bool, StoreError> {
        let mut refused = Vec::new();
        let changed = self.write_refusing(profiles, &mut refused)?;
        match refused.into_iter().next() {
            Some((_, error)) => Err(error),
            None => Ok(changed),
        }
    }

    /// [`Self::write`], but a profile whose section in the file cannot be written (it appears
    /// twice, or its header is padded: `[ a ]`) is pushed to `refused` with its error, and the
    /// other profiles are still written; the result is about those.
    pub fn write_refusing(
        &self,
        profiles: &[(String, Credentials)],
        refused: &mut Vec<(String, StoreError)>,
    ) -> Result<bool, StoreError> {
        let ownership = self.ownership()?;
        let target =
            files::Target::open_creating(&self.path, ownership).map_err(|e| self.io("reach", e))?;
        let lock_file = target
            .open_lock_file(ownership)
            .map_err(|e| self.io("open the lock file of", e))?;
        let _lock = lock::acquire(
            lock_file,
            &target.lock_path(),
            &target.resolved().display().to_string(),
            files::LOCK_WAIT,
        )
        .map_err(|error| StoreError::Lock {
            lock: target.lock_path(),
            error,
        })?;
        target.remove_stale_temp_files();

        // The buffer is as large as the file, and kept for the next write (see `spare`); the
        // new text is mostly pieces of it.
        let mut old = crate::files::spare::Bytes::take();
        let existing = target
            .read_into(files::CREDENTIALS_MAX, &mut old)
            .map_err(|e| self.io("read", e))?;
        let mut new = Pieces::default();
        let changed = self.render(
            existing.map(|_| old.as_slice()),
            profiles,
            &mut new,
            refused,
        )?;
        // Before the file: a key recorded and not written makes the file due, never the reverse.
        self.record_written_keys(profiles, refused)?;
        let mode_ok = existing.is_none_or(|e| !cfg!(unix) || e.mode == self.mode);
        if existing.is_some() && !changed && mode_ok {
            return Ok(false);
        }
        // Privileged, what is not configured is kept: the current owner of the file, or for a
        // new file the owner of its folder (root writing /home/app/.aws/credentials leaves a
        // file app can read).
        let kept = match existing {
            _ if !files::privileged() => files::Ownership::default(),
            Some(e) => files::Ownership {
                uid: Some(e.uid),
                gid: Some(e.gid),
            },
            None => target.folder_owner().map_err(|e| self.io("write", e))?,
        };
        let ownership = files::Ownership {
            uid: ownership.uid.or(kept.uid),
            gid: ownership.gid.or(kept.gid),
        };
        target
            .replace_with(&new.slices(), self.mode, ownership, self.durable)
            .map_err(|e| self.io("write", e))?;
        Ok(true)
    }

    /// Records in the state file which key each profile written gets (see
    /// [`crate::store::state::ProfileState::written_key`]), where the record says another: one
    /// update for the file. Profiles `refused` are not written, so not recorded.
    fn record_written_keys(
        &self,
        profiles: &[(String, Credentials)],
        refused: &[(String, StoreError)],
    ) -> Result<(), StoreError> {
        let Some(path) = self
            .state_file
            .as_ref()
            .filter(|p| !p.as_os_str().is_empty())
        else {
            return Ok(());
        };
        let state = crate::store::state::StateFile { path: path.clone() };
        let recorded = state.load();
        let new: Vec<(&str, &Credentials)> = profiles
            .iter()
            .filter(|(n, _)| self.profile.as_ref().is_none_or(|p| p == n))
            .filter(|(n, _)| !refused.iter().any(|(r, _)| r == n))
            .filter(|(n, c)| {
                let hash = crate::store::state::key_id_hash(&c.access_key_id);
                let r = recorded.profiles.get(n);
                r.and_then(|r| r.written_key.as_deref()) != Some(hash.as_str())
                    || r.and_then(|r| r.account_id.as_deref()) != c.account_id.as_deref()
            })
            .map(|(n, c)| (n.as_str(), c))
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        state
            .update(|s| {
                for (name, c) in &new {
                    crate::store::state::record_written_key(
                        s,
                        name,
                        &c.access_key_id,
                        c.account_id.as_deref(),
                    );
                }
            })
            .map_err(|error| StoreError::Io {
                path: path.clone(),
                action: "record the written key in",
                error,
            })
    }

    /// The file really written, reached safely (see [`files::Target`]).
    fn target(&self, create: bool) -> Result<files::Target, StoreError> {
        files::Target::open(&self.path, create).map_err(|error| StoreError::Io {
            path: self.path.clone(),
            action: "reach",
            error,
        })
    }

    #[cfg(unix)]
    fn ownership(&self) -> Result<files::Ownership, StoreError> {
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
        Ok(files::Ownership { uid, gid })
    }

    #[cfg(not(unix))]
    fn ownership(&self) -> Result<files::Ownership, StoreError> {
        Ok(files::Ownership::default())
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use crate::credentials::Secret;
    use std::os::unix::fs::PermissionsExt;
    use time::macros::datetime;

    fn creds(akid: &str) -> Credentials {
        Credentials {
            access_key_id: akid.into(),
            secret_access_key: Secret::new("S"),
            session_token: Some(Secret::new("T")),
            expiration: Some(datetime!(2030-01-02 03:04:05 UTC)),
            account_id: None,
        }
    }

    fn file(path: &Path) -> CredentialsFile {
        CredentialsFile::ini(path, 0o600, true)
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

    /// The buffers kept between writes (`spare`) carry nothing from one file into the next:
    /// a small file written after a large one, a failed edit and a missing file in between,
    /// each gets exactly its own text.
    #[test]
    fn kept_buffers_carry_nothing_from_one_write_into_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        let small = dir.path().join("small");
        let other: String = (0..2000)
            .map(|i| format!("[p{i}]\naws_access_key_id = K{i}\n\n"))
            .collect();
        std::fs::write(&big, &other).unwrap();
        for round in 0..3 {
            let akid = format!("AKIA{round}");
            assert!(file(&big).write(&[("dev".into(), creds(&akid))]).unwrap());
            // Refused: duplicate sections. Nothing written, the next write is still right.
            std::fs::write(&small, "[dev]\n[dev]\n").unwrap();
            assert!(file(&small).write(&[("dev".into(), creds(&akid))]).is_err());
            assert_eq!(std::fs::read_to_string(&small).unwrap(), "[dev]\n[dev]\n");
            std::fs::remove_file(&small).unwrap();
            assert!(file(&small).write(&[("dev".into(), creds(&akid))]).unwrap());
            assert_eq!(
                std::fs::read_to_string(&small).unwrap(),
                format!(
                    "[dev]\naws_access_key_id = {akid}\naws_secret_access_key = S\n\
                     aws_session_token = T\naws_credential_expiration = 2030-01-02T03:04:05Z\n"
                )
            );
            let text = std::fs::read_to_string(&big).unwrap();
            assert!(text.starts_with(&other), "round {round}");
            assert_eq!(file(&big).read().unwrap()["dev"], creds(&akid));
            assert!(!file(&small).write(&[("dev".into(), creds(&akid))]).unwrap());
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
