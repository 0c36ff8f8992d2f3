//! Long-term keys of a profile awscredd does not manage, read at each refresh from the
//! credentials file the AWS SDKs would read (`AWS_SHARED_CREDENTIALS_FILE`, else
//! `~/.aws/credentials`).

use super::SourceError;
use crate::credentials::Credentials;
use crate::paths::{self, Env};
use crate::profile_file::{FileKind, ProfileFile};
use crate::store::credentials_from_keys;
use std::path::PathBuf;

/// The credentials file the AWS SDKs read in this environment.
pub fn sdk_credentials_file(env: Env<'_>) -> Option<PathBuf> {
    paths::aws_credentials_file(env, cfg!(windows)).map(PathBuf::from)
}

/// Reads the static keys of `profile` from the SDKs' credentials file.
pub fn read(profile: &str, env: Env<'_>) -> Result<Credentials, SourceError> {
    let path = sdk_credentials_file(env).ok_or_else(|| {
        SourceError::failed(format!(
            "cannot find the credentials file for source profile `{profile}`: HOME is not set"
        ))
    })?;
    read_from(profile, &path)
}

/// Reads the static keys of `profile` from `path`.
pub fn read_from(profile: &str, path: &std::path::Path) -> Result<Credentials, SourceError> {
    let bytes = crate::files::read_regular(path, crate::files::CREDENTIALS_MAX)
        .and_then(|b| b.ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound)))
        .map_err(|e| {
            SourceError::failed(format!(
                "cannot read `{}` for source profile `{profile}`: {e}",
                path.display()
            ))
        })?;
    let parsed = ProfileFile::check_bytes(&bytes)
        .and_then(ProfileFile::parse)
        .map_err(|e| {
            SourceError::failed(format!("{}:{}: {}", path.display(), e.line, e.message))
        })?;
    let profiles = parsed.normalized(FileKind::Credentials).profiles;
    let keys = profiles.get(profile).ok_or_else(|| {
        SourceError::failed(format!(
            "source profile `{profile}` is neither managed by awscredd nor in `{}`",
            path.display()
        ))
    })?;
    credentials_from_keys(keys).ok_or_else(|| {
        SourceError::failed(format!(
            "source profile `{profile}` in `{}` has no aws_access_key_id and aws_secret_access_key",
            path.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_keys_and_names_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials");
        std::fs::write(
            &path,
            "[long]\naws_access_key_id = AKIAEXAMPLE\naws_secret_access_key = s\n[half]\naws_access_key_id = A\n",
        )
        .unwrap();
        let c = read_from("long", &path).unwrap();
        assert_eq!(c.access_key_id, "AKIAEXAMPLE");
        assert!(c.session_token.is_none());
        assert!(read_from("half", &path)
            .unwrap_err()
            .message
            .contains("no aws_access_key_id"));
        assert!(read_from("nope", &path)
            .unwrap_err()
            .message
            .contains("neither managed"));
    }
}
