//! The Sign-In service's token endpoint (`POST /v1/token`, `CreateOAuth2Token`) through the
//! generated `aws-sdk-signin` crate, with a fresh DPoP proof added to every attempt by an
//! interceptor (botocore resends one proof on its retries, which a strict service refuses as
//! a replayed `jti`), and its errors classified for the source.
//!
//! Endpoint: `AWS_ENDPOINT_URL_SIGNIN`, else `AWS_ENDPOINT_URL`, else the profile's
//! `endpoint_url`, else `https://REGION.signin.aws.amazon.com`. The operation is unsigned: no
//! ambient AWS credentials are needed.

use super::dpop::DpopKey;
use crate::credentials::{Credentials, Secret};
use aws_sdk_signin::config::http::HttpResponse;
use aws_sdk_signin::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_signin::operation::create_o_auth2_token::CreateOAuth2TokenError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use std::sync::Arc;
use time::OffsetDateTime;

/// The client of `aws login` on the same device, and of `aws login --remote`.
pub const SAME_DEVICE_CLIENT: &str = "arn:aws:signin:::devtools/same-device";
pub const CROSS_DEVICE_CLIENT: &str = "arn:aws:signin:::devtools/cross-device";

/// A token grant: a refresh, or the authorization code of a new sign-in.
pub enum Grant<'a> {
    Refresh {
        client_id: &'a str,
        refresh_token: &'a Secret,
    },
    Code {
        client_id: &'a str,
        code: &'a Secret,
        code_verifier: &'a Secret,
        redirect_uri: &'a str,
    },
}

/// What the token endpoint returned.
#[derive(Debug)]
pub struct Tokens {
    pub credentials: Credentials,
    pub refresh_token: Secret,
    pub id_token: Option<String>,
}

/// Why a grant failed, by what the caller does about it.
#[derive(Debug, PartialEq, Eq)]
pub enum TokenError {
    /// The sign-in has ended (`TOKEN_EXPIRED`, `USER_CREDENTIALS_CHANGED`) or its refresh
    /// token is no longer accepted (`invalid_grant`): a human signs in again.
    SignInEnded(String),
    /// Throttled: later, slower.
    Throttled(String),
    /// Network, timeout, 5xx: later.
    Transient(String),
    /// Anything else, with the service's code and message.
    Failed(String),
}

/// The Sign-In token endpoint in one region (or at an override).
#[derive(Clone, Debug)]
pub struct Signin {
    client: aws_sdk_signin::Client,
    /// The base URL, for the authorize page of `login --profile` and for messages.
    pub base: String,
}

/// Adds a DPoP proof for the request being sent, made anew for each attempt.
#[derive(Debug)]
struct DpopProof(Arc<DpopKey>);

impl Intercept for DpopProof {
    fn name(&self) -> &'static str {
        "DpopProof"
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let request = context.request_mut();
        let htu = request.uri().to_string();
        let iat = crate::clock::now().unix_timestamp();
        let proof = self.0.proof("POST", &htu, iat)?;
        request.headers_mut().insert("DPoP", proof);
        Ok(())
    }
}

impl Signin {
    pub fn new(region: &str, endpoint: Option<String>) -> Self {
        let base = endpoint
            .clone()
            .unwrap_or_else(|| format!("https://{region}.signin.aws.amazon.com"));
        let config = sdk_config!(aws_sdk_signin, region, endpoint).build();
        Signin {
            client: aws_sdk_signin::Client::from_conf(config),
            base: base.trim_end_matches('/').to_string(),
        }
    }

    /// Redeems `grant` with a proof of `key`.
    pub async fn token(&self, key: Arc<DpopKey>, grant: Grant<'_>) -> Result<Tokens, TokenError> {
        use aws_sdk_signin::types::CreateOAuth2TokenRequestBody as Body;
        let body = match grant {
            Grant::Refresh {
                client_id,
                refresh_token,
            } => Body::builder()
                .client_id(client_id)
                .grant_type("refresh_token")
                .refresh_token(refresh_token.expose()),
            Grant::Code {
                client_id,
                code,
                code_verifier,
                redirect_uri,
            } => Body::builder()
                .client_id(client_id)
                .grant_type("authorization_code")
                .code(code.expose())
                .code_verifier(code_verifier.expose())
                .redirect_uri(redirect_uri),
        };
        let body = body
            .build()
            .map_err(|e| TokenError::Failed(format!("cannot build the token request: {e}")))?;
        let sent_at = crate::clock::now();
        let out = self
            .client
            .create_o_auth2_token()
            .token_input(body)
            .customize()
            .interceptor(DpopProof(key))
            .send()
            .await
            .map_err(|e| classify(&self.base, e))?;
        let answer = out.token_output().ok_or_else(|| {
            TokenError::Failed(format!("the token answer of {} has no body", self.base))
        })?;
        tokens(answer, sent_at).map_err(|e| TokenError::Failed(format!("{e} (from {})", self.base)))
    }
}

/// The credentials and tokens of an answer; their expiry counted from when the request went.
fn tokens(
    a: &aws_sdk_signin::types::CreateOAuth2TokenResponseBody,
    sent_at: OffsetDateTime,
) -> Result<Tokens, String> {
    let at = a
        .access_token()
        .ok_or("the token answer has no accessToken")?;
    if a.expires_in() <= 0 || a.refresh_token().is_empty() || at.access_key_id().is_empty() {
        return Err("the token answer has no credentials, refresh token or lifetime".into());
    }
    Ok(Tokens {
        credentials: Credentials {
            access_key_id: at.access_key_id().to_string(),
            secret_access_key: Secret::new(at.secret_access_key()),
            session_token: Some(Secret::new(at.session_token())),
            expiration: Some(sent_at + time::Duration::seconds(i64::from(a.expires_in()))),
            account_id: None,
        },
        refresh_token: Secret::new(a.refresh_token()),
        id_token: a.id_token().map(str::to_string),
    })
}

/// The codes that say the sign-in is over (a human signs in again).
fn ends_sign_in(code: &str) -> bool {
    matches!(
        code,
        "TOKEN_EXPIRED" | "USER_CREDENTIALS_CHANGED" | "invalid_grant" | "AUTHCODE_EXPIRED"
    )
}

/// Classifies an SDK error. Messages carry the service's code and message, never a request
/// body (which holds secrets).
fn classify(endpoint: &str, e: SdkError<CreateOAuth2TokenError, HttpResponse>) -> TokenError {
    let SdkError::ServiceError(ctx) = &e else {
        let text = format!(
            "CreateOAuth2Token failed: {}",
            crate::sources::transport_error(&e, endpoint)
        );
        return match e {
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => TokenError::Transient(text),
            // An answer that could not be read (too large, cut short, not JSON) will not
            // read better next time, but the next time may get another one.
            SdkError::ResponseError(_) => TokenError::Transient(text),
            _ => TokenError::Failed(text),
        };
    };
    let status = ctx.raw().status().as_u16();
    let err = ctx.err();
    let error_code = match err {
        CreateOAuth2TokenError::AccessDeniedException(x) => Some(x.error().as_str().to_string()),
        CreateOAuth2TokenError::ValidationException(x) => Some(x.error().as_str().to_string()),
        _ => None,
    };
    let kind = err.code().unwrap_or("error").to_string();
    let code = error_code.unwrap_or_else(|| kind.clone());
    let message = err.message().unwrap_or("");
    let text = format!(
        "CreateOAuth2Token failed: HTTP {status} {kind} {code}{}{message} (from {endpoint})",
        if message.is_empty() { "" } else { ": " }
    );
    if ends_sign_in(&code) {
        TokenError::SignInEnded(text)
    } else if crate::sources::is_throttling(status, &kind) || kind == "TooManyRequestsError" {
        TokenError::Throttled(text)
    } else if crate::sources::is_transient_answer(status, &kind) {
        TokenError::Transient(text)
    } else {
        TokenError::Failed(text)
    }
}
