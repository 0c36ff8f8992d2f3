//! STS sources: AssumeRole (from any source profile), GetSessionToken (from long-term keys,
//! optionally with MFA) and AssumeRoleWithWebIdentity (from a token file, re-read on every
//! refresh), through the AWS SDK crate.
//!
//! Requests are signed with the source profile's credentials only: the STS client never uses
//! the default credential chain, which could pick up the very file awscredd writes. Region:
//! the profile's `region`, else `AWS_REGION`/`AWS_DEFAULT_REGION`, else the `sso_region` (or the
//! Roles Anywhere trust anchor's region) at the root of its chain, else `us-east-1`; the SDK then uses the regional STS endpoint. Endpoint
//! overrides: `AWS_ENDPOINT_URL_STS`, then `AWS_ENDPOINT_URL`, then the profile's `endpoint_url`.

use super::sso::oidc::endpoint_override;
use super::{ErrorKind, SourceError};
use crate::config::{Config, Mfa, Profile, Source};
use crate::credentials::{Credentials, Secret};
use crate::paths::Env;
use aws_sdk_sts::config::http::HttpResponse;
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;
use time::OffsetDateTime;

use crate::config::ROLE_CHAINING_MAX_SECONDS;
/// How long `mfa_command` may run.
const MFA_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// The region for a profile's STS calls.
pub fn region_for(cfg: &Config, profile: &Profile, env: Env<'_>) -> String {
    if let Some(r) = &profile.region {
        return r.clone();
    }
    if let Some(r) = env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION")) {
        return r;
    }
    // The sso_region at the root of the chain, or its Roles Anywhere trust anchor's region.
    cfg.chain(&profile.name)
        .find_map(|p| match &p.source {
            Source::Sso { session, .. } => cfg.sso_sessions.get(session).map(|s| s.region.clone()),
            Source::RolesAnywhere(ra) => Some(ra.region().to_string()),
            _ => None,
        })
        .unwrap_or_else(|| "us-east-1".to_string())
}

/// One STS client per region and endpoint, shared by every profile: building a client builds
/// its HTTPS stack (TLS roots, connection pool), which costs more than the call itself. Each
/// request carries its own source credentials as a per-operation override.
fn client(region: &str, endpoint: Option<String>) -> (aws_sdk_sts::Client, String) {
    let label = crate::sources::endpoint_label("sts", region, endpoint.as_deref());
    type ByRegionAndEndpoint = HashMap<(String, Option<String>), aws_sdk_sts::Client>;
    // Process-wide on purpose: one HTTPS stack per region and endpoint for every STS caller.
    static CLIENTS: OnceLock<Mutex<ByRegionAndEndpoint>> = OnceLock::new();
    let mut clients = CLIENTS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let client = clients
        .entry((region.to_string(), endpoint.clone()))
        .or_insert_with(|| {
            aws_sdk_sts::Client::from_conf(sdk_config!(aws_sdk_sts, region, endpoint).build())
        })
        .clone();
    (client, label)
}

/// The per-request config that signs with `c`.
fn signed_by(c: &Credentials) -> aws_sdk_sts::config::Builder {
    aws_sdk_sts::config::Builder::default().credentials_provider(
        aws_sdk_sts::config::Credentials::new(
            c.access_key_id.clone(),
            c.secret_access_key.expose().to_string(),
            c.session_token.as_ref().map(|t| t.expose().to_string()),
            c.expiration.map(std::time::SystemTime::from),
            "awscredd",
        ),
    )
}

/// Classifies an STS error: throttling, 5xx and network failures are transient; the rest say
/// what is wrong, with the AWS error code and message.
fn classify<E>(what: &str, endpoint: &str, e: SdkError<E, HttpResponse>) -> SourceError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match &e {
        SdkError::ServiceError(ctx) if ctx.raw().status().is_success() => {
            SourceError::transient(format!(
                "{what}: STS sent an answer awscredd cannot read (HTTP {}, not the expected XML)",
                ctx.raw().status().as_u16()
            ))
        }
        SdkError::ServiceError(ctx) => {
            let status = ctx.raw().status().as_u16();
            let code = ctx.err().code().unwrap_or("").to_string();
            let message = ctx.err().message().unwrap_or("").to_string();
            let hint = match code.as_str() {
                "AccessDenied" | "AccessDeniedException" => "access denied",
                "ExpiredToken" | "ExpiredTokenException" => "the source credentials have expired",
                "InvalidClientTokenId"
                | "SignatureDoesNotMatch"
                | "UnrecognizedClientException" => "the source credentials are not valid",
                "MalformedPolicyDocument"
                | "MalformedPolicyDocumentException"
                | "ValidationError" => "the request was malformed",
                "RegionDisabledException" => "STS is not activated in this region",
                "InvalidIdentityToken" | "IDPRejectedClaim" => "the web identity token was refused",
                _ => "",
            };
            let code_shown = if code.is_empty() {
                format!("HTTP {status}")
            } else {
                code.clone()
            };
            let text = format!(
                "{what}: {}{code_shown}{}{message} (from {endpoint})",
                if hint.is_empty() {
                    String::new()
                } else {
                    format!("{hint} (")
                },
                if hint.is_empty() {
                    if message.is_empty() {
                        ""
                    } else {
                        ": "
                    }
                } else if message.is_empty() {
                    ")"
                } else {
                    "): "
                }
            );
            if crate::sources::is_throttling(status, &code) {
                SourceError::throttled(text)
            } else if crate::sources::is_transient_answer(status, &code) {
                SourceError::transient(text)
            } else {
                SourceError::failed(text)
            }
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            SourceError::transient(format!(
                "{what}: {}",
                crate::sources::transport_error(&e, endpoint)
            ))
        }
        _ => SourceError::failed(format!(
            "{what}: {}",
            crate::sources::transport_error(&e, endpoint)
        )),
    }
}

fn from_sts(
    c: Option<&aws_sdk_sts::types::Credentials>,
    what: &str,
) -> Result<Credentials, SourceError> {
    let c =
        c.ok_or_else(|| SourceError::transient(format!("{what}: the answer had no Credentials")))?;
    for (field, v) in [
        ("AccessKeyId", c.access_key_id()),
        ("SecretAccessKey", c.secret_access_key()),
        ("SessionToken", c.session_token()),
    ] {
        if v.trim().is_empty() {
            return Err(SourceError::transient(format!(
                "{what}: STS answered without {field} (a malformed answer)"
            )));
        }
    }
    let expiration = OffsetDateTime::from_unix_timestamp(c.expiration().secs())
        .map_err(|_| SourceError::failed(format!("{what}: the answer had a bad Expiration")))?;
    if expiration <= crate::clock::now() {
        return Err(SourceError::transient(format!(
            "{what}: STS answered with no Expiration, or one in the past (a malformed answer)"
        )));
    }
    Ok(Credentials {
        access_key_id: c.access_key_id().to_string(),
        secret_access_key: Secret::new(c.secret_access_key()),
        session_token: Some(Secret::new(c.session_token())),
        expiration: Some(expiration),
        account_id: None,
    })
}

/// Runs `mfa_command` and returns the code it printed (six digits).
async fn mfa_code(mfa: &Mfa) -> Result<String, SourceError> {
    let fail = |m: String| SourceError::failed(format!("mfa_command `{}`: {m}", mfa.command[0]));
    let mut cmd = tokio::process::Command::new(&mfa.command[0]);
    cmd.args(&mfa.command[1..]);
    let limits = crate::child::Limits {
        timeout: MFA_COMMAND_TIMEOUT,
        stdout_max: 4096,
        after_exit: crate::child::AfterExit::KillGroup,
    };
    let out = crate::child::run(cmd, None, limits)
        .await
        .map_err(|e| fail(e.to_string()))?;
    if let Some(note) = out.stderr_cut_note() {
        tracing::info!("mfa_command stderr: {note}");
    }
    for line in &out.stderr_lines {
        tracing::info!("mfa_command stderr: {}", crate::child::redact(line, &[]));
    }
    if !out.status.success() {
        return Err(fail(format!("exited with {}", out.status)));
    }
    let code = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if code.len() == 6 && code.chars().all(|c| c.is_ascii_digit()) {
        Ok(code)
    } else {
        Err(fail("it did not print a six-digit code".into()))
    }
}

/// STS AssumeRole for `profile` with `source` credentials.
pub async fn assume_role(
    cfg: &Config,
    profile: &Profile,
    source: &Credentials,
    env: Env<'_>,
) -> Result<Credentials, SourceError> {
    let Source::AssumeRole {
        source_profile,
        role_arn,
        role_session_name,
        duration_seconds,
        external_id,
        mfa,
    } = &profile.source
    else {
        return Err(SourceError::failed("not an assume_role profile"));
    };
    let what = format!("AssumeRole {role_arn}");
    let chained = cfg.gives_role_session(source_profile);
    let mut duration = *duration_seconds;
    if chained && duration.is_some_and(|d| d > ROLE_CHAINING_MAX_SECONDS) {
        tracing::debug!(
            profile = %profile.name,
            "`{source_profile}` gives role credentials, so this is role chaining, which AWS caps at one hour: asking for 3600 seconds, not {}",
            duration.unwrap_or_default()
        );
        duration = Some(ROLE_CHAINING_MAX_SECONDS);
    }
    let (sts, endpoint) = client(
        &region_for(cfg, profile, env),
        endpoint_override("AWS_ENDPOINT_URL_STS", profile.endpoint_url.as_deref(), env),
    );
    let code = match mfa {
        Some(m) => Some(mfa_code(m).await?),
        None => None,
    };
    let send = |duration: Option<u32>| {
        let mut req = sts
            .assume_role()
            .role_arn(role_arn)
            .role_session_name(role_session_name)
            .set_duration_seconds(duration.map(|d| d as i32))
            .set_external_id(external_id.clone());
        if let (Some(m), Some(c)) = (mfa, &code) {
            req = req.serial_number(&m.serial).token_code(c);
        }
        req.customize().config_override(signed_by(source)).send()
    };
    match send(duration).await {
        Ok(out) => from_sts(out.credentials(), &what),
        Err(e) => {
            // A source that is a role session without our knowing it (a credential_process,
            // say): AWS refuses a DurationSeconds over an hour with a ValidationError; ask
            // again for one hour.
            let refused = matches!(&e, SdkError::ServiceError(ctx) if ctx.err().code() == Some("ValidationError"));
            let err = classify(&what, &endpoint, e);
            if duration.is_some_and(|d| d > ROLE_CHAINING_MAX_SECONDS) && refused {
                tracing::warn!(profile = %profile.name, "role chaining caps the session at one hour; asking for 3600 seconds");
                let out = send(Some(ROLE_CHAINING_MAX_SECONDS))
                    .await
                    .map_err(|e| classify(&what, &endpoint, e))?;
                return from_sts(out.credentials(), &what);
            }
            Err(err)
        }
    }
}

/// STS GetSessionToken for `profile` with long-term `source` keys.
pub async fn session_token(
    cfg: &Config,
    profile: &Profile,
    source: &Credentials,
    env: Env<'_>,
) -> Result<Credentials, SourceError> {
    let Source::SessionToken {
        duration_seconds,
        mfa,
        ..
    } = &profile.source
    else {
        return Err(SourceError::failed("not a get_session_token profile"));
    };
    if source.session_token.is_some() {
        return Err(SourceError::failed(
            "GetSessionToken needs long-term IAM user keys, but the source profile holds temporary credentials (it has a session token)",
        ));
    }
    let (sts, endpoint) = client(
        &region_for(cfg, profile, env),
        endpoint_override("AWS_ENDPOINT_URL_STS", profile.endpoint_url.as_deref(), env),
    );
    let mut req = sts
        .get_session_token()
        .set_duration_seconds(duration_seconds.map(|d| d as i32));
    if let Some(m) = mfa {
        let code = mfa_code(m).await?;
        req = req.serial_number(&m.serial).token_code(code);
    }
    let out = req
        .customize()
        .config_override(signed_by(source))
        .send()
        .await
        .map_err(|e| classify("GetSessionToken", &endpoint, e))?;
    from_sts(out.credentials(), "GetSessionToken")
}

/// STS AssumeRoleWithWebIdentity; the token file is read anew on every call.
pub async fn web_identity(
    cfg: &Config,
    profile: &Profile,
    env: Env<'_>,
) -> Result<Credentials, SourceError> {
    let Source::WebIdentity {
        role_arn,
        token_file,
        role_session_name,
        duration_seconds,
    } = &profile.source
    else {
        return Err(SourceError::failed("not a web_identity profile"));
    };
    let token = read_token_file(token_file).await?;
    let (sts, endpoint) = client(
        &region_for(cfg, profile, env),
        endpoint_override("AWS_ENDPOINT_URL_STS", profile.endpoint_url.as_deref(), env),
    );
    let what = format!("AssumeRoleWithWebIdentity {role_arn}");
    let out = sts
        .assume_role_with_web_identity()
        .role_arn(role_arn)
        .role_session_name(role_session_name)
        .web_identity_token(token.expose())
        .set_duration_seconds(duration_seconds.map(|d| d as i32))
        .send()
        .await
        .map_err(|e| classify(&what, &endpoint, e))?;
    from_sts(out.credentials(), &what)
}

async fn read_token_file(path: &Path) -> Result<Secret, SourceError> {
    let owned = path.to_path_buf();
    let read = tokio::task::spawn_blocking(move || {
        crate::files::read_regular(&owned, crate::files::TOKEN_MAX)
    })
    .await
    .map_err(|e| SourceError::failed(e.to_string()))?;
    let cannot = |e: String| SourceError {
        kind: ErrorKind::Transient,
        message: format!(
            "cannot read web_identity_token_file `{}`: {e}",
            path.display()
        ),
    };
    let bytes = match read {
        Ok(Some(b)) => b,
        Ok(None) => return Err(cannot("it does not exist".into())),
        Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
            return Err(SourceError::failed(format!(
                "cannot read web_identity_token_file `{}`: {e}",
                path.display()
            )))
        }
        Err(e) => return Err(cannot(e.to_string())),
    };
    let text = String::from_utf8_lossy(&bytes);
    let token = text.trim();
    if token.is_empty() {
        return Err(SourceError::transient(format!(
            "web_identity_token_file `{}` is empty",
            path.display()
        )));
    }
    Ok(Secret::new(token))
}
