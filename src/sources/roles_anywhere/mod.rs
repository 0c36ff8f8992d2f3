//! IAM Roles Anywhere: role credentials for a host outside AWS from its X.509 certificate, by
//! `CreateSession` (`POST /sessions` at `https://rolesanywhere.REGION.amazonaws.com`, REGION
//! the trust anchor ARN's; `AWS_ENDPOINT_URL_ROLESANYWHERE`, then `AWS_ENDPOINT_URL`, then the
//! profile's `endpoint_url` override it), signed with the certificate's key ([`sign`]).
//!
//! The certificate, its chain and the key are read again at every fetch ([`material`]), so a
//! renewed certificate is used at the next refresh without a restart. Profiles that share the
//! files share one parsed signer: [`RolesAnywhere`] keeps, per set of paths, the last material
//! parsed and the digest of the bytes it was parsed from, and parses again only when the bytes
//! change. The HTTPS client is the stack the AWS SDK clients here use (hyper, rustls on
//! aws-lc-rs, the system's roots and `SSL_CERT_FILE`), built once and shared.

pub mod check;
pub mod material;
pub mod sign;

use super::{SourceError, RESPONSE_BODY_MAX};
use crate::config::{Profile, RolesAnywhereSource};
use crate::credentials::{Credentials, Secret};
use crate::paths::Env;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper_util::client::legacy::connect::HttpConnector;
use material::{Contents, Files, Material};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

type Client =
    hyper_util::client::legacy::Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Tries per fetch: the first and two retries after a 5xx or a network failure, as the SDK
/// clients of the other sources do. A 429 is returned at once: the refresh pass tries that
/// profile again after a pause and lowers the service's concurrency (`refresh::limits`).
const ATTEMPTS: u32 = 3;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);

/// The paths of one profile's files: the key of the shared signers.
type FilesKey = (PathBuf, PathBuf, Option<PathBuf>);

/// The material last parsed for some files, and the digest of the bytes it came from.
type Parsed = ([u8; 32], Arc<Material>);

/// The Roles Anywhere source of one config: the parsed signers by files, and the client.
#[derive(Default)]
pub struct RolesAnywhere {
    signers: Mutex<HashMap<FilesKey, Parsed>>,
    client: OnceLock<Result<Client, String>>,
}

/// SHA-256 over the three files' bytes, each with its length, so no two sets collide.
fn digest(c: &Contents) -> [u8; 32] {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for part in [
        Some(&c.certificate),
        Some(&c.private_key),
        c.intermediates.as_ref(),
    ] {
        match part {
            Some(bytes) => {
                ctx.update(&(bytes.len() as u64 + 1).to_be_bytes());
                ctx.update(bytes);
            }
            None => ctx.update(&0u64.to_be_bytes()),
        }
    }
    let mut out = [0; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

impl RolesAnywhere {
    /// The material for `src`'s files as they are now: read again, parsed again only when
    /// their bytes changed since the last profile that used them.
    pub fn material(&self, src: &RolesAnywhereSource) -> Result<Arc<Material>, SourceError> {
        let files = Files {
            certificate: &src.certificate,
            private_key: &src.private_key,
            intermediates: src.intermediates.as_deref(),
        };
        let contents = material::read(&files).map_err(|e| SourceError::failed(e.message))?;
        let sum = digest(&contents);
        let key = (
            src.certificate.clone(),
            src.private_key.clone(),
            src.intermediates.clone(),
        );
        let mut signers = self.signers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((seen, m)) = signers.get(&key) {
            if *seen == sum {
                return Ok(m.clone());
            }
        }
        let parsed = Material::parse(&contents, &files).map_err(|e| {
            // A file caught half-written by its renewal reads as truncated: the next
            // refresh reads it whole.
            SourceError::failed(e.message)
        })?;
        let parsed = Arc::new(parsed);
        signers.insert(key, (sum, parsed.clone()));
        Ok(parsed)
    }

    fn client(&self) -> Result<&Client, SourceError> {
        self.client
            .get_or_init(|| {
                let mut http = HttpConnector::new();
                http.set_connect_timeout(Some(CONNECT_TIMEOUT));
                http.enforce_http(false);
                let https = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_provider_and_native_roots(rustls::crypto::aws_lc_rs::default_provider())
                    .map_err(|e| format!("no TLS root certificates: {e}"))?
                    .https_or_http()
                    .enable_http1()
                    .wrap_connector(http);
                Ok(
                    hyper_util::client::legacy::Client::builder(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .build(https),
                )
            })
            .as_ref()
            .map_err(|e| SourceError::failed(e.clone()))
    }

    /// `CreateSession` for a Roles Anywhere profile.
    pub async fn fetch(
        &self,
        profile: &Profile,
        src: &RolesAnywhereSource,
        env: Env<'_>,
    ) -> Result<Credentials, SourceError> {
        let m = self.material(src)?;
        if let Some(why) = m.unusable_at(crate::clock::now(), &src.certificate) {
            return Err(SourceError::failed(why));
        }
        let endpoint = endpoint(profile, src, env);
        let what = format!("CreateSession with certificate serial {}", m.serial);
        let url: hyper::Uri = format!("{endpoint}/sessions")
            .parse()
            .map_err(|e| SourceError::failed(format!("endpoint `{endpoint}`: {e}")))?;
        let body = request_body(src);
        let mut last = SourceError::transient(format!("{what}: not tried"));
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(backoff(attempt)).await;
            }
            match self.call(&url, &body, &m, src.region()).await {
                Ok(a) => match answer(&a) {
                    Ok(c) => return Ok(c),
                    Err(e) => last = context(e, &what, &endpoint),
                },
                Err(e) => last = context(e, &what, &endpoint),
            }
            // Throttling is the pass's to retry: it also asks that service less at once.
            if last.kind != super::ErrorKind::Transient {
                break;
            }
        }
        Err(last)
    }

    /// One signed `POST`, its status and body (at most [`RESPONSE_BODY_MAX`] bytes).
    async fn call(
        &self,
        url: &hyper::Uri,
        body: &[u8],
        m: &Material,
        region: &str,
    ) -> Result<Answer, SourceError> {
        let client = self.client()?;
        let host = url.authority().map(|a| a.as_str()).unwrap_or_default();
        let req = sign::Request {
            host,
            path: url.path(),
            body,
            region,
        };
        let headers = sign::sign(&req, m, crate::clock::now()).map_err(SourceError::failed)?;
        let mut builder = hyper::Request::post(url.clone());
        for (k, v) in headers {
            builder = builder.header(k, v);
        }
        let request = builder
            .header(
                "user-agent",
                concat!("awscredd/", env!("CARGO_PKG_VERSION")),
            )
            .body(Full::new(Bytes::copy_from_slice(body)))
            .map_err(|e| SourceError::failed(format!("cannot build the request: {e}")))?;
        let exchange = async {
            let response = client
                .request(request)
                .await
                .map_err(|e| SourceError::transient(connect_error(&e)))?;
            let status = response.status().as_u16();
            let error_type = response
                .headers()
                .get("x-amzn-errortype")
                .and_then(|v| v.to_str().ok())
                .map(|v| v.split(':').next().unwrap_or_default().to_string());
            let limited = Limited::new(response.into_body(), RESPONSE_BODY_MAX);
            let bytes = limited.collect().await.map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    SourceError::transient(format!(
                        "the answer (HTTP {status}) is larger than the limit of {} KiB",
                        RESPONSE_BODY_MAX / 1024
                    ))
                } else {
                    SourceError::transient(format!(
                        "cannot read the answer (HTTP {status}): {}",
                        innermost(e.as_ref())
                    ))
                }
            })?;
            Ok(Answer {
                status,
                error_type,
                body: bytes.to_bytes(),
            })
        };
        tokio::time::timeout(ATTEMPT_TIMEOUT, exchange)
            .await
            .unwrap_or_else(|_| {
                Err(SourceError::transient(format!(
                    "no answer within {} s",
                    ATTEMPT_TIMEOUT.as_secs()
                )))
            })
    }
}

/// The same error with what was asked, and where, in front.
fn context(e: SourceError, what: &str, endpoint: &str) -> SourceError {
    SourceError {
        kind: e.kind,
        message: format!("{what}: {} (from {endpoint})", e.message),
    }
}

/// What one call got back.
pub struct Answer {
    pub status: u16,
    /// `x-amzn-ErrorType`, the error's code.
    pub error_type: Option<String>,
    pub body: Bytes,
}

/// Where `CreateSession` is asked, without a trailing `/`.
pub fn endpoint(profile: &Profile, src: &RolesAnywhereSource, env: Env<'_>) -> String {
    super::sso::oidc::endpoint_override(
        "AWS_ENDPOINT_URL_ROLESANYWHERE",
        profile.endpoint_url.as_deref(),
        env,
    )
    .map(|e| e.trim_end_matches('/').to_string())
    .unwrap_or_else(|| super::endpoint_label("rolesanywhere", src.region(), None))
}

/// The JSON body: the ARNs, and the duration and session name when configured.
fn request_body(src: &RolesAnywhereSource) -> Vec<u8> {
    let mut body = serde_json::Map::new();
    if let Some(d) = src.duration_seconds {
        body.insert("durationSeconds".into(), d.into());
    }
    body.insert("profileArn".into(), src.profile_arn.clone().into());
    body.insert("roleArn".into(), src.role_arn.clone().into());
    if let Some(n) = &src.role_session_name {
        body.insert("roleSessionName".into(), n.clone().into());
    }
    body.insert("trustAnchorArn".into(), src.trust_anchor_arn.clone().into());
    serde_json::Value::Object(body).to_string().into_bytes()
}

/// 0.2 s, 0.4 s, ... with up to half again of jitter.
fn backoff(attempt: u32) -> Duration {
    let base = 200u64 << attempt.min(6);
    let mut b = [0u8; 2];
    let jitter = match getrandom::fill(&mut b) {
        Ok(()) => u64::from(u16::from_le_bytes(b)) % (base / 2 + 1),
        Err(_) => 0,
    };
    Duration::from_millis(base + jitter)
}

fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut current = e;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

/// A failure before any answer: refused, DNS, TLS, reset.
fn connect_error(e: &hyper_util::client::legacy::Error) -> String {
    let cause = innermost(e);
    let kind = if e.is_connect() {
        "cannot connect"
    } else {
        "the connection failed"
    };
    format!("{kind}: {}", cause.chars().take(300).collect::<String>())
}

/// The credentials of a `CreateSession` answer, or what the error answer says.
pub fn answer(a: &Answer) -> Result<Credentials, SourceError> {
    let status = a.status;
    let json: Option<serde_json::Value> = serde_json::from_slice(&a.body).ok();
    if !(200..300).contains(&status) {
        return Err(error_answer(status, a.error_type.as_deref(), json.as_ref()));
    }
    let malformed = |what: &str| {
        SourceError::transient(format!(
            "the answer (HTTP {status}) is not the expected JSON: {what}"
        ))
    };
    let json = json.ok_or_else(|| malformed("not JSON"))?;
    let c = json
        .get("credentialSet")
        .and_then(|s| s.get(0))
        .and_then(|s| s.get("credentials"))
        .ok_or_else(|| malformed("no credentialSet[0].credentials"))?;
    let field = |name: &str| {
        c.get(name)
            .and_then(|v| v.as_str())
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| malformed(&format!("no {name}")))
    };
    let expiration = crate::credentials::parse_rfc3339(field("expiration")?)
        .map_err(|_| malformed("a bad expiration"))?;
    if expiration <= crate::clock::now() {
        return Err(malformed("an expiration in the past"));
    }
    Ok(Credentials {
        access_key_id: field("accessKeyId")?.to_string(),
        secret_access_key: Secret::new(field("secretAccessKey")?),
        session_token: Some(Secret::new(field("sessionToken")?)),
        expiration: Some(expiration),
        account_id: None,
    })
}

/// An error answer: its `x-amzn-ErrorType`-style code and message from the JSON body.
fn error_answer(
    status: u16,
    error_type: Option<&str>,
    json: Option<&serde_json::Value>,
) -> SourceError {
    let text = |k: &str| {
        json.and_then(|j| j.get(k))
            .and_then(|v| v.as_str())
            .map(|s| s.chars().take(300).collect::<String>())
    };
    let code = error_type
        .map(str::to_string)
        .or_else(|| text("__type"))
        .or_else(|| text("code"))
        .map(|c| c.rsplit('#').next().unwrap_or_default().to_string())
        .unwrap_or_default();
    let message = text("message")
        .or_else(|| text("Message"))
        .unwrap_or_default();
    let hint = match status {
        403 => "access denied (check the trust anchor, the profile, the role's trust policy and the certificate's chain)",
        400 => "the request was refused as invalid",
        429 => "throttled",
        _ if status >= 500 => "the service failed",
        _ => "refused",
    };
    let code_shown = if code.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status} {code}")
    };
    let text = if message.is_empty() {
        format!("{hint} ({code_shown})")
    } else {
        format!("{hint} ({code_shown}): {message}")
    };
    if super::is_throttling(status, &code) {
        SourceError::throttled(text)
    } else if super::is_transient_answer(status, &code) {
        SourceError::transient(text)
    } else {
        SourceError::failed(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::ErrorKind;

    fn answer(
        status: u16,
        error_type: Option<&str>,
        body: &[u8],
    ) -> Result<Credentials, SourceError> {
        super::answer(&Answer {
            status,
            error_type: error_type.map(str::to_string),
            body: Bytes::copy_from_slice(body),
        })
    }

    #[test]
    fn answers_are_credentials_or_say_what_the_service_said() {
        let ok = br#"{"credentialSet":[{"credentials":{"accessKeyId":"ASIAX","secretAccessKey":"s","sessionToken":"t","expiration":"2999-01-01T00:00:00Z"}}]}"#;
        let c = answer(201, None, ok).unwrap();
        assert_eq!(c.access_key_id, "ASIAX");
        assert_eq!(c.session_token.as_ref().map(|t| t.expose()), Some("t"));
        let denied = answer(
            403,
            Some("AccessDeniedException"),
            br#"{"message":"untrusted certificate"}"#,
        )
        .unwrap_err();
        assert_eq!(denied.kind, ErrorKind::Failed);
        assert!(
            denied.message.contains("access denied")
                && denied.message.contains("AccessDeniedException")
                && denied.message.contains("untrusted certificate"),
            "{}",
            denied.message
        );
        let throttled = answer(429, None, br#"{"message":"slow down"}"#).unwrap_err();
        assert_eq!(throttled.kind, ErrorKind::Throttled);
        let failed = answer(500, None, b"<html>").unwrap_err();
        assert_eq!(failed.kind, ErrorKind::Transient);
        assert!(failed.message.contains("HTTP 500"), "{}", failed.message);
        let html = answer(201, None, b"<html>").unwrap_err();
        assert!(html.message.contains("not JSON"), "{}", html.message);
        let past = br#"{"credentialSet":[{"credentials":{"accessKeyId":"A","secretAccessKey":"s","sessionToken":"t","expiration":"2001-01-01T00:00:00Z"}}]}"#;
        assert!(answer(201, None, past)
            .unwrap_err()
            .message
            .contains("past"));
    }
}
