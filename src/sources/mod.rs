//! Where credentials come from. Each source is one async call that returns [`Credentials`]
//! or a [`SourceError`] that says what the caller should do about it.
//!
//! - [`process`]: `credential_process` commands (Version 1 JSON).
//! - [`sso`]: IAM Identity Center role credentials.
//! - [`sts`]: AssumeRole, GetSessionToken, AssumeRoleWithWebIdentity.
//! - [`static_keys`]: long-term keys of an unmanaged `source_profile`, read from the
//!   credentials file the AWS SDKs read.

/// A config builder for one of the AWS SDK clients (`aws_sdk_sso`, `aws_sdk_ssooidc`,
/// `aws_sdk_sts`) with awscredd's settings: latest behaviour, the region, 3 attempts with
/// backoff for throttling and 5xx, bounded connect and operation times, and an endpoint
/// override if any.
macro_rules! sdk_config {
    ($sdk:ident, $region:expr, $endpoint:expr) => {{
        let mut b = $sdk::Config::builder()
            .behavior_version($sdk::config::BehaviorVersion::latest())
            .region($sdk::config::Region::new($region.to_string()))
            .retry_config($sdk::config::retry::RetryConfig::standard().with_max_attempts(3))
            .timeout_config(
                $sdk::config::timeout::TimeoutConfig::builder()
                    .connect_timeout(std::time::Duration::from_secs(10))
                    .operation_attempt_timeout(std::time::Duration::from_secs(30))
                    .operation_timeout(std::time::Duration::from_secs(90))
                    .build(),
            );
        if let Some(e) = $endpoint {
            b = b.endpoint_url(e);
        }
        b
    }};
}

pub mod process;
pub mod sso;
pub mod static_keys;
pub mod sts;

use crate::credentials::Credentials;
use std::fmt;

/// What the caller should do about a failed fetch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Try again later with backoff: network, throttling, 5xx, a timeout.
    Transient,
    /// A human must sign in (`awscredd login`).
    NeedsLogin,
    /// Fails the same way until something is fixed (bad output, denied, missing keys).
    Failed,
}

/// A failed fetch. The message never contains a secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceError {
    pub kind: ErrorKind,
    pub message: String,
}

impl SourceError {
    pub fn failed(message: impl Into<String>) -> Self {
        SourceError {
            kind: ErrorKind::Failed,
            message: message.into(),
        }
    }

    pub fn transient(message: impl Into<String>) -> Self {
        SourceError {
            kind: ErrorKind::Transient,
            message: message.into(),
        }
    }
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SourceError {}

/// A fetched set of credentials, or why not.
pub type FetchResult = Result<Credentials, SourceError>;
