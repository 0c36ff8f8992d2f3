//! What `awscredd check` says about a Roles Anywhere profile's files on this machine: each
//! file exists and parses, the key is the certificate's (errors); the key is not readable by
//! other users, the certificate has not expired and does not expire within `refresh_before`
//! (warnings). Each problem names the configured key it is about.

use super::material::{self, Files, Material, Part};
use crate::config::RolesAnywhereSource;
use std::time::Duration;
use time::OffsetDateTime;

/// One problem: the key it is about, whether it is only a warning, and the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub part: Part,
    pub warning: bool,
    pub message: String,
}

/// The problems of `src`'s files at `now`.
pub fn problems(
    src: &RolesAnywhereSource,
    refresh_before: Duration,
    now: OffsetDateTime,
) -> Vec<Problem> {
    let files = Files {
        certificate: &src.certificate,
        private_key: &src.private_key,
        intermediates: src.intermediates.as_deref(),
    };
    let mut out = key_mode(src).into_iter().collect::<Vec<_>>();
    let parsed = material::read(&files).and_then(|c| Material::parse(&c, &files));
    let m = match parsed {
        Ok(m) => m,
        Err(e) => {
            out.push(Problem {
                part: e.part,
                // `check` run as another user than the daemon cannot read a 0600 key.
                warning: e.permission,
                message: if e.permission {
                    format!("{} (as this user; the daemon's user may)", e.message)
                } else {
                    e.message
                },
            });
            return out;
        }
    };
    let warn = |message: String| Problem {
        part: Part::Certificate,
        warning: true,
        message,
    };
    if let Some(why) = m.unusable_at(now, &src.certificate) {
        out.push(warn(format!("{why}; the profile fails until it is")));
    } else if m.not_after - now < refresh_before {
        out.push(warn(format!(
            "certificate `{}` expires at {}, within refresh_before: renew it before then, or the profile fails",
            src.certificate.display(),
            crate::credentials::format_utc(m.not_after)
        )));
    }
    out
}

/// A key file that other users can read (Unix modes; on Windows its folder's ACL decides).
#[cfg(unix)]
fn key_mode(src: &RolesAnywhereSource) -> Option<Problem> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&src.private_key)
        .ok()?
        .permissions()
        .mode()
        & 0o777;
    (mode & 0o077 != 0).then(|| Problem {
        part: Part::PrivateKey,
        warning: true,
        message: format!(
            "private_key `{}` has mode {mode:04o}: other users can {} it; `chmod 600` it (owned by the user awscredd runs as)",
            src.private_key.display(),
            if mode & 0o044 != 0 { "read" } else { "change" }
        ),
    })
}

#[cfg(not(unix))]
fn key_mode(_src: &RolesAnywhereSource) -> Option<Problem> {
    None
}
