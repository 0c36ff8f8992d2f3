//! What a credentials file's keys mean: the credentials a profile's keys hold, and the keys
//! written for new credentials (the pure side of the `ini` format; `store` does the I/O).

use super::edit::{KeyUpdate, ProfileUpdate};
use super::{FileKind, ProfileFile};
use crate::credentials::{format_utc, Credentials, Secret};
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// The key we write a profile's expiry under, as RFC 3339 UTC. The AWS SDKs ignore it. It is
/// the name the AWS CLI's `configure export-credentials` and aws-vault use for the same value
/// (`AWS_CREDENTIAL_EXPIRATION`), so tools that already read it keep working.
pub const EXPIRATION_KEY: &str = "aws_credential_expiration";

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
        expiration: keys
            .get(EXPIRATION_KEY)
            .filter(|e| !e.trim().is_empty())
            .map(|e| crate::credentials::held_expiry(e)),
        account_id: None,
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
