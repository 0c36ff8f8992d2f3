//! The SSO OIDC API (RegisterClient, StartDeviceAuthorization, CreateToken) and the SSO portal
//! API (GetRoleCredentials), through the AWS SDK crates, with errors classified for the flows.
//!
//! Both APIs are unsigned, so the clients need no ambient AWS credentials. Endpoints: the
//! service's variable (`AWS_ENDPOINT_URL_SSO_OIDC`, `AWS_ENDPOINT_URL_SSO`), else
//! `AWS_ENDPOINT_URL`, else the session's `endpoint_url`, else the SDK's regional endpoint for
//! `sso_region`.

use super::cache::Registration;
use crate::credentials::{Credentials, Secret};
use crate::paths::Env;
use aws_sdk_sso::config::http::HttpResponse;
use aws_sdk_sso::error::{ProvideErrorMetadata, SdkError};
use std::time::Duration;
use time::OffsetDateTime;

/// The device-code grant type.
pub const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// The refresh-token grant type.
pub const REFRESH_GRANT: &str = "refresh_token";

/// An OIDC or portal failure, classified by what the flows do about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApiError {
    /// CreateToken: the user has not approved yet (`authorization_pending`).
    Pending,
    /// Poll more slowly (`slow_down`).
    SlowDown,
    /// The device code or token expired (`expired_token`).
    Expired,
    /// The user denied the sign-in (`access_denied`).
    Denied,
    /// The refresh token or device code is not valid any more (`invalid_grant`).
    InvalidGrant,
    /// The client registration is not valid (`invalid_client`, `unauthorized_client`).
    InvalidClient,
    /// Portal: the access token is not accepted (401 `UnauthorizedException`).
    Unauthorized,
    /// Network, timeout or 5xx: try again later.
    Transient(String),
    /// Portal: throttled (429 `TooManyRequestsException`): try again later, slower.
    Throttled(String),
    /// Anything else, with the AWS error code and message.
    Other(String),
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::Pending => f.write_str("authorization is still pending"),
            ApiError::SlowDown => f.write_str("asked to slow down"),
            ApiError::Expired => f.write_str("the device code or token has expired"),
            ApiError::Denied => f.write_str("the sign-in was denied"),
            ApiError::InvalidGrant => f.write_str("the grant is no longer valid (invalid_grant)"),
            ApiError::InvalidClient => f.write_str("the client registration is not valid"),
            ApiError::Unauthorized => f.write_str("the SSO access token was not accepted"),
            ApiError::Transient(m) | ApiError::Throttled(m) | ApiError::Other(m) => f.write_str(m),
        }
    }
}

/// Maps a code (the `x-amzn-ErrorType` name or the body's OAuth `error`) to a class.
fn class_of(code: &str) -> Option<ApiError> {
    Some(match code {
        "AuthorizationPendingException" | "authorization_pending" => ApiError::Pending,
        "SlowDownException" | "slow_down" => ApiError::SlowDown,
        "ExpiredTokenException" | "expired_token" => ApiError::Expired,
        "AccessDeniedException" | "access_denied" => ApiError::Denied,
        "InvalidGrantException" | "invalid_grant" => ApiError::InvalidGrant,
        "InvalidClientException"
        | "invalid_client"
        | "UnauthorizedClientException"
        | "unauthorized_client" => ApiError::InvalidClient,
        "UnauthorizedException" => ApiError::Unauthorized,
        _ => return None,
    })
}

/// Classifies an SDK error. Messages carry the operation, the AWS code and message; never a
/// request body (which holds secrets).
fn classify<E>(op: &str, endpoint: &str, e: SdkError<E, HttpResponse>) -> ApiError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match &e {
        // A success whose body cannot be read (cut short, not the expected JSON) is no answer:
        // tried again, never taken as a refusal.
        SdkError::ServiceError(ctx) if ctx.raw().status().is_success() => {
            ApiError::Transient(format!(
                "{op} failed: the answer could not be read (HTTP {}, not the expected JSON; cut \
                 short?) (from {endpoint})",
                ctx.raw().status().as_u16()
            ))
        }
        SdkError::ServiceError(ctx) => {
            let status = ctx.raw().status().as_u16();
            let meta_code = ctx.err().code().map(str::to_string);
            // Fall back to the OAuth `error` in the body when no type header came back.
            let body_code = ctx
                .raw()
                .body()
                .bytes()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
                .and_then(|v| v.get("error").and_then(|x| x.as_str()).map(str::to_string));
            let code = meta_code.or(body_code).unwrap_or_default();
            if let Some(c) = class_of(&code) {
                return c;
            }
            if status == 401 {
                return ApiError::Unauthorized;
            }
            let message = ctx.err().message().unwrap_or("").to_string();
            let text = format!(
                "{op} failed: HTTP {status} {}{}{message} (from {endpoint})",
                if code.is_empty() { "error" } else { &code },
                if message.is_empty() { "" } else { ": " }
            );
            if crate::sources::is_throttling(status, &code) && op == "GetRoleCredentials" {
                ApiError::Throttled(text)
            } else if crate::sources::is_transient_answer(status, &code) {
                ApiError::Transient(text)
            } else {
                ApiError::Other(text)
            }
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            ApiError::Transient(format!(
                "{op} failed: {}",
                crate::sources::transport_error(&e, endpoint)
            ))
        }
        _ => ApiError::Other(format!(
            "{op} failed: {}",
            crate::sources::transport_error(&e, endpoint)
        )),
    }
}

/// Resolves an endpoint override: the service's variable, `AWS_ENDPOINT_URL`, then `configured`.
pub fn endpoint_override(
    service_var: &str,
    configured: Option<&str>,
    env: Env<'_>,
) -> Option<String> {
    let ignore_env =
        env("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if !ignore_env {
        if let Some(u) = env(service_var).or_else(|| env("AWS_ENDPOINT_URL")) {
            return Some(u);
        }
    }
    configured.map(str::to_string)
}

/// What CreateToken returned.
#[derive(Clone, Debug)]
pub struct TokenResponse {
    pub access_token: Secret,
    pub expires_at: OffsetDateTime,
    pub refresh_token: Option<Secret>,
}

/// What StartDeviceAuthorization returned.
#[derive(Clone, Debug)]
pub struct DeviceAuthorization {
    pub device_code: Secret,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: Option<String>,
    pub expires_in: Duration,
    pub interval: Duration,
}

/// A future an [`OidcApi`] call returns.
pub type OidcFuture<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, ApiError>> + Send + 'a>>;

/// The SSO OIDC calls a session makes: the SDK's client ([`Oidc`]), or a fake in the session's
/// unit tests.
pub trait OidcApi: Send + Sync {
    /// RegisterClient for the device-code and refresh-token grants.
    fn register<'a>(
        &'a self,
        client_name: &'a str,
        scopes: &'a [String],
    ) -> OidcFuture<'a, Registration>;
    /// StartDeviceAuthorization.
    fn start_device_authorization<'a>(
        &'a self,
        reg: &'a Registration,
        start_url: &'a str,
    ) -> OidcFuture<'a, DeviceAuthorization>;
    /// CreateToken with the device code.
    fn poll_device_token<'a>(
        &'a self,
        reg: &'a Registration,
        device_code: &'a Secret,
    ) -> OidcFuture<'a, TokenResponse>;
    /// CreateToken with the refresh token.
    fn refresh<'a>(
        &'a self,
        reg: &'a Registration,
        refresh_token: &'a Secret,
    ) -> OidcFuture<'a, TokenResponse>;
}

impl OidcApi for Oidc {
    fn register<'a>(
        &'a self,
        client_name: &'a str,
        scopes: &'a [String],
    ) -> OidcFuture<'a, Registration> {
        Box::pin(Oidc::register(self, client_name, scopes))
    }
    fn start_device_authorization<'a>(
        &'a self,
        reg: &'a Registration,
        start_url: &'a str,
    ) -> OidcFuture<'a, DeviceAuthorization> {
        Box::pin(Oidc::start_device_authorization(self, reg, start_url))
    }
    fn poll_device_token<'a>(
        &'a self,
        reg: &'a Registration,
        device_code: &'a Secret,
    ) -> OidcFuture<'a, TokenResponse> {
        Box::pin(Oidc::poll_device_token(self, reg, device_code))
    }
    fn refresh<'a>(
        &'a self,
        reg: &'a Registration,
        refresh_token: &'a Secret,
    ) -> OidcFuture<'a, TokenResponse> {
        Box::pin(Oidc::refresh(self, reg, refresh_token))
    }
}

/// An SSO OIDC client for one `sso_region` and endpoint.
#[derive(Clone, Debug)]
pub struct Oidc {
    client: aws_sdk_ssooidc::Client,
    /// The endpoint, for messages.
    endpoint: String,
}

impl Oidc {
    pub fn new(region: &str, endpoint: Option<String>) -> Self {
        Oidc {
            endpoint: crate::sources::endpoint_label("oidc", region, endpoint.as_deref()),
            client: aws_sdk_ssooidc::Client::from_conf(
                sdk_config!(aws_sdk_ssooidc, region, endpoint).build(),
            ),
        }
    }

    /// RegisterClient for the device-code and refresh-token grants.
    pub async fn register(
        &self,
        client_name: &str,
        scopes: &[String],
    ) -> Result<Registration, ApiError> {
        let mut req = self
            .client
            .register_client()
            .client_name(client_name)
            .client_type("public")
            .grant_types(DEVICE_GRANT)
            .grant_types(REFRESH_GRANT);
        for s in scopes {
            req = req.scopes(s);
        }
        let out = req
            .send()
            .await
            .map_err(|e| classify("RegisterClient", &self.endpoint, e))?;
        let (Some(id), Some(secret)) = (out.client_id(), out.client_secret()) else {
            return Err(ApiError::Other(
                "RegisterClient returned no client id or secret".into(),
            ));
        };
        let expires_at = OffsetDateTime::from_unix_timestamp(out.client_secret_expires_at())
            .map_err(|_| {
                ApiError::Other("RegisterClient returned a bad clientSecretExpiresAt".into())
            })?;
        Ok(Registration {
            client_id: id.to_string(),
            client_secret: Secret::new(secret),
            expires_at,
        })
    }

    /// StartDeviceAuthorization.
    pub async fn start_device_authorization(
        &self,
        reg: &Registration,
        start_url: &str,
    ) -> Result<DeviceAuthorization, ApiError> {
        let out = self
            .client
            .start_device_authorization()
            .client_id(&reg.client_id)
            .client_secret(reg.client_secret.expose())
            .start_url(start_url)
            .send()
            .await
            .map_err(|e| classify("StartDeviceAuthorization", &self.endpoint, e))?;
        let (Some(device_code), Some(user_code), Some(uri)) =
            (out.device_code(), out.user_code(), out.verification_uri())
        else {
            return Err(ApiError::Other(
                "StartDeviceAuthorization returned no device code, user code or URL".into(),
            ));
        };
        // An absent or zero interval means the RFC 8628 default of 5 seconds.
        let interval = if out.interval() > 0 {
            out.interval() as u64
        } else {
            5
        };
        let expires_in = if out.expires_in() > 0 {
            out.expires_in() as u64
        } else {
            600
        };
        Ok(DeviceAuthorization {
            device_code: Secret::new(device_code),
            user_code: user_code.to_string(),
            verification_uri: uri.to_string(),
            verification_uri_complete: out.verification_uri_complete().map(str::to_string),
            expires_in: Duration::from_secs(expires_in),
            interval: Duration::from_secs(interval),
        })
    }

    /// CreateToken with the device code.
    pub async fn poll_device_token(
        &self,
        reg: &Registration,
        device_code: &Secret,
    ) -> Result<TokenResponse, ApiError> {
        let out = self
            .client
            .create_token()
            .client_id(&reg.client_id)
            .client_secret(reg.client_secret.expose())
            .grant_type(DEVICE_GRANT)
            .device_code(device_code.expose())
            .send()
            .await
            .map_err(|e| classify("CreateToken", &self.endpoint, e))?;
        token_response(out.access_token(), out.expires_in(), out.refresh_token())
    }

    /// CreateToken with the refresh token.
    pub async fn refresh(
        &self,
        reg: &Registration,
        refresh_token: &Secret,
    ) -> Result<TokenResponse, ApiError> {
        let out = self
            .client
            .create_token()
            .client_id(&reg.client_id)
            .client_secret(reg.client_secret.expose())
            .grant_type(REFRESH_GRANT)
            .refresh_token(refresh_token.expose())
            .send()
            .await
            .map_err(|e| classify("CreateToken (refresh)", &self.endpoint, e))?;
        token_response(out.access_token(), out.expires_in(), out.refresh_token())
    }
}

fn token_response(
    access: Option<&str>,
    expires_in: i32,
    refresh: Option<&str>,
) -> Result<TokenResponse, ApiError> {
    let access = access
        .filter(|a| !a.is_empty())
        .ok_or_else(|| ApiError::Other("CreateToken returned no access token".into()))?;
    if expires_in <= 0 {
        return Err(ApiError::Other("CreateToken returned no expiry".into()));
    }
    Ok(TokenResponse {
        access_token: Secret::new(access),
        expires_at: crate::clock::now() + time::Duration::seconds(expires_in.into()),
        refresh_token: refresh.filter(|r| !r.is_empty()).map(Secret::new),
    })
}

/// An SSO portal client for one `sso_region` and endpoint.
#[derive(Clone, Debug)]
pub struct Portal {
    client: aws_sdk_sso::Client,
    /// The endpoint, for messages.
    endpoint: String,
}

impl Portal {
    pub fn new(region: &str, endpoint: Option<String>) -> Self {
        Portal {
            endpoint: crate::sources::endpoint_label("portal.sso", region, endpoint.as_deref()),
            client: aws_sdk_sso::Client::from_conf(
                sdk_config!(aws_sdk_sso, region, endpoint).build(),
            ),
        }
    }

    /// GetRoleCredentials.
    pub async fn role_credentials(
        &self,
        access_token: &Secret,
        account_id: &str,
        role_name: &str,
    ) -> Result<Credentials, ApiError> {
        let out = self
            .client
            .get_role_credentials()
            .access_token(access_token.expose())
            .account_id(account_id)
            .role_name(role_name)
            .send()
            .await
            .map_err(|e| classify("GetRoleCredentials", &self.endpoint, e))?;
        let rc = out.role_credentials().ok_or_else(|| {
            ApiError::Other("GetRoleCredentials returned no roleCredentials".into())
        })?;
        let missing =
            |what: &str| ApiError::Other(format!("GetRoleCredentials returned no {what}"));
        let akid = rc.access_key_id().ok_or_else(|| missing("accessKeyId"))?;
        let secret = rc
            .secret_access_key()
            .ok_or_else(|| missing("secretAccessKey"))?;
        let token = rc.session_token().ok_or_else(|| missing("sessionToken"))?;
        // `expiration` is epoch milliseconds.
        let expiration =
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(rc.expiration()) * 1_000_000)
                .ok()
                .filter(|t| t.unix_timestamp() > 0)
                .ok_or_else(|| missing("valid expiration"))?;
        Ok(Credentials {
            access_key_id: akid.to_string(),
            secret_access_key: Secret::new(secret),
            session_token: Some(Secret::new(token)),
            expiration: Some(expiration),
            account_id: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_precedence() {
        let env = |k: &str| match k {
            "AWS_ENDPOINT_URL_SSO_OIDC" => Some("http://oidc".to_string()),
            "AWS_ENDPOINT_URL" => Some("http://global".to_string()),
            _ => None,
        };
        assert_eq!(
            endpoint_override("AWS_ENDPOINT_URL_SSO_OIDC", Some("http://cfg"), &env).as_deref(),
            Some("http://oidc")
        );
        assert_eq!(
            endpoint_override("AWS_ENDPOINT_URL_SSO", Some("http://cfg"), &env).as_deref(),
            Some("http://global")
        );
        let none = |_: &str| None;
        assert_eq!(
            endpoint_override("AWS_ENDPOINT_URL_SSO", Some("http://cfg"), &none).as_deref(),
            Some("http://cfg")
        );
        assert_eq!(endpoint_override("AWS_ENDPOINT_URL_SSO", None, &none), None);
    }

    #[test]
    fn codes_from_header_or_body() {
        assert_eq!(
            class_of("AuthorizationPendingException"),
            Some(ApiError::Pending)
        );
        assert_eq!(class_of("slow_down"), Some(ApiError::SlowDown));
        assert_eq!(class_of("invalid_grant"), Some(ApiError::InvalidGrant));
        assert_eq!(class_of("Nope"), None);
    }
}
