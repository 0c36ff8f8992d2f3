//! Where credentials come from. Each source is one async call that returns [`Credentials`]
//! or a [`SourceError`] that says what the caller should do about it.
//!
//! - [`process`]: `credential_process` commands (Version 1 JSON).
//! - [`sso`]: IAM Identity Center role credentials.
//! - [`login`]: `aws login` sessions (the AWS CLI's console sign-in).
//! - [`sts`]: AssumeRole, GetSessionToken, AssumeRoleWithWebIdentity.
//! - [`roles_anywhere`]: IAM Roles Anywhere `CreateSession` with an X.509 certificate.
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
        b.interceptor($crate::sources::ResponseBodyLimit(
            $crate::sources::RESPONSE_BODY_MAX,
        ))
    }};
}

/// The largest answer read from an AWS endpoint: every answer awscredd asks for is a small
/// JSON or XML document.
pub const RESPONSE_BODY_MAX: usize = 1024 * 1024;

/// An SDK interceptor that refuses answers larger than its limit before they are read whole:
/// by their `Content-Length`, and by counting the bytes of answers without one.
#[derive(Debug)]
pub struct ResponseBodyLimit(pub usize);

impl aws_smithy_runtime_api::client::interceptors::Intercept for ResponseBodyLimit {
    fn name(&self) -> &'static str {
        "ResponseBodyLimit"
    }

    fn modify_before_deserialization(
        &self,
        context: &mut aws_smithy_runtime_api::client::interceptors::context::BeforeDeserializationInterceptorContextMut<'_>,
        _components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        _cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let limit = self.0;
        let length = context
            .response()
            .headers()
            .get("content-length")
            .and_then(|v| v.trim().parse::<u64>().ok());
        if length.is_some_and(|n| n > limit as u64) {
            return Err(format!(
                "the answer is {} bytes, more than the limit of {} KiB",
                length.unwrap_or_default(),
                limit / 1024
            )
            .into());
        }
        let body = context.response_mut().body_mut();
        let taken = std::mem::replace(body, aws_smithy_types::body::SdkBody::taken());
        *body = aws_smithy_types::body::SdkBody::from_body_1_x(http_body_util::Limited::new(
            taken, limit,
        ));
        Ok(())
    }
}

/// Whether an answer of an AWS service says to slow down.
pub fn is_throttling(status: u16, code: &str) -> bool {
    status == 429
        || code.contains("Throttl")
        || matches!(code, "TooManyRequestsException" | "RequestLimitExceeded")
}

/// The one rule for which answers of an AWS service (SSO OIDC, the portal, STS) are worth
/// retrying with backoff: 5xx, 429, and the throttling codes.
pub fn is_transient_answer(status: u16, code: &str) -> bool {
    status >= 500
        || status == 429
        || code.contains("Throttl")
        || matches!(
            code,
            "TooManyRequestsException"
                | "RequestLimitExceeded"
                | "ServiceUnavailable"
                | "InternalFailure"
                | "InternalServerException"
                | "IDPCommunicationError"
        )
}

/// The endpoint a client talks to, for messages: the override, else AWS's default for the
/// service's host prefix (`sts`, `oidc`, `portal.sso`) in `region`.
pub fn endpoint_label(prefix: &str, region: &str, endpoint: Option<&str>) -> String {
    match endpoint {
        Some(e) => e.to_string(),
        None => format!("https://{prefix}.{region}.amazonaws.com"),
    }
}

/// One line for an SDK error that is not an answer from the service: a timeout, a refused
/// connection, DNS, TLS, or an answer that could not be read — with the endpoint, and the
/// innermost cause instead of the SDK's nested `Debug` dump.
pub fn transport_error<E, R>(
    e: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
    endpoint: &str,
) -> String
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    use aws_smithy_runtime_api::client::result::SdkError;
    let cause = innermost(e);
    let lower = cause.to_ascii_lowercase();
    let io_kind = io_kind(e);
    let kind = match e {
        SdkError::TimeoutError(_) => "timed out calling",
        SdkError::DispatchFailure(d) if d.is_timeout() => "timed out connecting to",
        SdkError::DispatchFailure(_) => {
            if io_kind == Some(std::io::ErrorKind::ConnectionRefused) {
                "connection refused by"
            } else if lower.contains("lookup address") || lower.contains("dns") {
                "DNS lookup failed for"
            } else if lower.contains("certificate")
                || lower.contains("tls")
                || lower.contains("handshake")
            {
                "TLS failed with"
            } else if io_kind == Some(std::io::ErrorKind::ConnectionReset) {
                "connection reset by"
            } else if io_kind == Some(std::io::ErrorKind::TimedOut) {
                "timed out connecting to"
            } else {
                "cannot connect to"
            }
        }
        SdkError::ResponseError(_) => "cannot read the answer of",
        SdkError::ConstructionFailure(_) => "cannot build the request for",
        _ => "failed calling",
    };
    let cause: String = cause.chars().take(300).collect();
    if cause.is_empty() {
        format!("{kind} {endpoint}")
    } else {
        format!("{kind} {endpoint}: {cause}")
    }
}

/// The message of the deepest error in the chain.
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut current: &(dyn std::error::Error + 'static) = e;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

/// The kind of the first I/O error in the chain, if any.
fn io_kind(e: &(dyn std::error::Error + 'static)) -> Option<std::io::ErrorKind> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = current {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        current = c.source();
    }
    None
}

pub mod fetch;
pub mod login;
pub mod process;
pub mod roles_anywhere;
pub mod sso;
pub mod static_keys;
pub mod sts;

use crate::credentials::Credentials;
use std::fmt;

/// What the caller should do about a failed fetch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Try again later with backoff: network, 5xx, a timeout.
    Transient,
    /// AWS asked us to slow down (throttling, 429): try again later, and ask that service
    /// less at once meanwhile.
    Throttled,
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

    pub fn throttled(message: impl Into<String>) -> Self {
        SourceError {
            kind: ErrorKind::Throttled,
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
