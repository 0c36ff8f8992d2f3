//! IAM Identity Center (SSO): role credentials for `sso_session` profiles.
//!
//! - [`cache`]: the token cache shared with AWS CLI v2 and the SDKs.
//! - [`oidc`]: the SSO OIDC and portal APIs through the AWS SDK crates.
//! - [`session`]: one session's access token: cached, renewed, or signed in.

pub mod cache;
pub mod oidc;
pub mod session;
pub mod sign_ins;

use crate::config::Config;
use crate::credentials::Credentials;
use crate::paths::Env;
use crate::sources::SourceError;
use cache::TokenCache;
use oidc::{endpoint_override, ApiError, Oidc, Portal};
use session::{LoginMode, SessionTokens};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The SSO sessions of a config, ready to hand out role credentials.
pub struct SsoSources {
    sessions: BTreeMap<String, (Arc<SessionTokens>, Portal)>,
}

impl SsoSources {
    /// Clients for every `[sso_session]` of `cfg`. Without a home folder there is no token
    /// cache, and SSO profiles fail with that reason.
    pub fn new(cfg: &Config, mode: LoginMode, env: Env<'_>) -> Result<Self, SourceError> {
        let cache = TokenCache::default_location(env).ok_or_else(|| {
            SourceError::failed("cannot find the SSO token cache: HOME is not set")
        })?;
        let sessions = cfg
            .sso_sessions
            .values()
            .map(|s| {
                let oidc = Oidc::new(
                    &s.region,
                    endpoint_override("AWS_ENDPOINT_URL_SSO_OIDC", s.endpoint_url.as_deref(), env),
                );
                let portal = Portal::new(
                    &s.region,
                    endpoint_override("AWS_ENDPOINT_URL_SSO", s.endpoint_url.as_deref(), env),
                );
                let tokens =
                    SessionTokens::new(s.clone(), cache.clone(), Arc::new(oidc), mode.clone())
                        .with_state(crate::store::state::StateFile::in_dir(
                            &cfg.daemon.state_dir,
                        ));
                (s.name.clone(), (Arc::new(tokens), portal))
            })
            .collect();
        Ok(SsoSources { sessions })
    }

    /// Renews the access token of each of `sessions` that is refreshable and has less than
    /// [`session::REFRESH_WINDOW`] left, as the profiles' own lookups would, but without
    /// waiting for a profile to fall due: the token (and the AWS CLI's, from the same cache)
    /// stays valid, and a session that has ended is found, and its sign-in started, when the
    /// renewal is refused rather than when role credentials next fall due. Returns when the
    /// next renewal is due.
    pub async fn upkeep(
        &self,
        sessions: &std::collections::BTreeSet<&str>,
        now: time::OffsetDateTime,
    ) -> Option<time::OffsetDateTime> {
        let mut next: Option<time::OffsetDateTime> = None;
        for name in sessions {
            let Some((tokens, _)) = self.sessions.get(*name) else {
                continue;
            };
            let Some(t) = tokens.status().await else {
                continue;
            };
            if t.refreshable(now).is_none() {
                continue;
            }
            let mut due = t.expires_at - session::REFRESH_WINDOW;
            if due <= now {
                if let Err(e) = tokens.access_token(None).await {
                    tracing::debug!(sso_session = *name, "renewing the SSO token: {}", e.message);
                }
                due = match tokens.status().await {
                    Some(t) if t.refreshable(now).is_some() => {
                        t.expires_at - session::REFRESH_WINDOW
                    }
                    _ => continue,
                };
            }
            // A renewal that could not happen yet (the service unreachable) is tried again a
            // minute later, not in a tight loop.
            let due = due.max(now + time::Duration::minutes(1));
            next = Some(next.map_or(due, |n| n.min(due)));
        }
        next
    }

    /// The token keeper of a session (for `login`).
    pub fn session(&self, name: &str) -> Option<&Arc<SessionTokens>> {
        self.sessions.get(name).map(|(t, _)| t)
    }

    /// Role credentials for `account_id`/`role_name` through `session`. A token the portal
    /// refuses is renewed once; if the renewed one is refused too, the failure is transient:
    /// a token the service has just granted is not refused for good (the portal may not know
    /// it yet), so it is neither recorded as refused nor replaced by a human sign-in, and the
    /// next attempt uses it (or renews it again, and a refused refresh token asks a human).
    pub async fn role_credentials(
        &self,
        session: &str,
        account_id: &str,
        role_name: &str,
    ) -> Result<Credentials, SourceError> {
        let (tokens, portal) = self.sessions.get(session).ok_or_else(|| {
            SourceError::failed(format!("SSO session `{session}` is not configured"))
        })?;
        let mut token = tokens.access_token(None).await?;
        for attempt in 0..2 {
            match portal.role_credentials(&token, account_id, role_name).await {
                Ok(c) => return Ok(c),
                Err(ApiError::Unauthorized) if attempt == 0 => {
                    tracing::info!(
                        sso_session = session,
                        "the SSO portal refused the access token; renewing it"
                    );
                    token = tokens.access_token(Some(&token)).await?;
                }
                Err(ApiError::Unauthorized) => {
                    return Err(SourceError::transient(format!(
                        "role {role_name} in account {account_id}: the SSO portal refused the \
                         access token of SSO session `{session}` just renewed too; tried again \
                         later with it"
                    )))
                }
                Err(ApiError::Throttled(m)) => {
                    return Err(SourceError::throttled(format!(
                        "role {role_name} in account {account_id}: {m}"
                    )))
                }
                Err(ApiError::Transient(m)) => {
                    return Err(SourceError::transient(format!(
                        "role {role_name} in account {account_id}: {m}"
                    )))
                }
                Err(e) => {
                    return Err(SourceError::failed(format!(
                        "role {role_name} in account {account_id} via SSO session `{session}`: {e}"
                    )))
                }
            }
        }
        Err(SourceError::failed(format!(
            "role {role_name} in account {account_id}: the SSO portal refused every token"
        )))
    }
}
