//! How a profile's credentials are fetched: the [`Fetcher`] trait the refresh pass knows, and
//! [`Sources`], the real one, which dispatches each profile to its source kind's module (one
//! arm per kind of [`crate::config::Source`]: the compiler asks for the arm of a new kind).

use super::login::LoginSources;
use super::roles_anywhere::RolesAnywhere;
use super::sso::session::LoginMode;
use super::sso::SsoSources;
use super::{process, static_keys, sts, FetchResult, SourceError};
use crate::config::{Config, Profile, Source};
use crate::credentials::Credentials;
use std::collections::BTreeSet;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use time::OffsetDateTime;

/// A boxed future, for the recursive chain resolution and the fetcher trait.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Fetches one profile's credentials from its source. The real one is [`Sources`]; tests
/// script their own.
pub trait Fetcher: Send + Sync {
    /// `source_credentials` are the fresh credentials of the profile's `source_profile`, for
    /// sources that chain.
    fn fetch<'a>(
        &'a self,
        profile: &'a Profile,
        source_credentials: Option<Credentials>,
    ) -> BoxFuture<'a, FetchResult>;

    /// The daemon's work between passes besides profiles: renewing SSO access tokens before
    /// they expire, whether or not a profile is due. Returns when it is next due (`None`:
    /// never).
    fn upkeep(&self, _now: OffsetDateTime) -> BoxFuture<'_, Option<OffsetDateTime>> {
        Box::pin(async { None })
    }
}

/// The real sources.
pub struct Sources {
    pub cfg: Config,
    /// Where `credential_process` runs: the config file's folder.
    pub working_dir: PathBuf,
    /// The SSO sessions, or why there are none (no home folder for the token cache).
    pub sso: Result<SsoSources, SourceError>,
    /// The Roles Anywhere signers (shared by profiles with the same files) and client.
    pub roles_anywhere: RolesAnywhere,
    /// The `aws login` sign-ins.
    pub login: LoginSources,
}

impl Sources {
    pub fn new(cfg: &Config, login: LoginMode) -> Self {
        let working_dir = cfg
            .path
            .parent()
            .map(|p| p.to_path_buf())
            .unwrap_or_else(|| PathBuf::from("."));
        Sources {
            cfg: cfg.clone(),
            working_dir,
            sso: SsoSources::new(cfg, login.clone(), &crate::paths::process_env),
            roles_anywhere: RolesAnywhere::default(),
            login: LoginSources::new(cfg, login, crate::paths::process_env),
        }
    }
}

impl Fetcher for Sources {
    fn fetch<'a>(
        &'a self,
        profile: &'a Profile,
        source_credentials: Option<Credentials>,
    ) -> BoxFuture<'a, FetchResult> {
        Box::pin(async move {
            let env = &crate::paths::process_env;
            let source = || {
                source_credentials
                    .clone()
                    .ok_or_else(|| SourceError::failed("no credentials from the source profile"))
            };
            match &profile.source {
                Source::Process { command } => {
                    process::fetch(&profile.name, command, &self.working_dir, process::TIMEOUT)
                        .await
                }
                Source::Sso {
                    session,
                    account_id,
                    role_name,
                } => match &self.sso {
                    Ok(sso) => sso.role_credentials(session, account_id, role_name).await,
                    Err(e) => Err(e.clone()),
                },
                Source::AssumeRole { .. } => {
                    sts::assume_role(&self.cfg, profile, &source()?, env).await
                }
                Source::SessionToken { .. } => {
                    sts::session_token(&self.cfg, profile, &source()?, env).await
                }
                Source::WebIdentity { .. } => sts::web_identity(&self.cfg, profile, env).await,
                Source::RolesAnywhere(src) => self.roles_anywhere.fetch(profile, src, env).await,
                Source::LoginSession { arn } => self.login.credentials(profile, arn).await,
            }
        })
    }

    fn upkeep(&self, now: OffsetDateTime) -> BoxFuture<'_, Option<OffsetDateTime>> {
        Box::pin(async move {
            let sso = self.sso.as_ref().ok()?;
            // The sessions some profile starts from: an unused session is left alone.
            let used: BTreeSet<&str> = self
                .cfg
                .profiles
                .keys()
                .filter_map(|p| self.cfg.root_sso_session(p))
                .collect();
            sso.upkeep(&used, now).await
        })
    }
}

/// The service a profile's source asks, for the per-service limits: the SSO portal of its
/// session, STS in its region, or Roles Anywhere in its trust anchor's region; `None` for sources that ask no AWS service.
pub fn service_of(cfg: &Config, profile: &Profile) -> Option<String> {
    match &profile.source {
        Source::Sso { session, .. } => Some(format!("sso:{session}")),
        Source::AssumeRole { .. } | Source::SessionToken { .. } | Source::WebIdentity { .. } => {
            Some(format!(
                "sts:{}",
                sts::region_for(cfg, profile, &crate::paths::process_env)
            ))
        }
        Source::RolesAnywhere(src) => Some(format!("rolesanywhere:{}", src.region())),
        Source::LoginSession { arn } => Some(format!("signin:{arn}")),
        Source::Process { .. } => None,
    }
}

/// The long-term keys of a `source_profile` awscredd does not manage, read from the
/// credentials file the SDKs read, at each refresh.
pub async fn unmanaged(name: &str) -> FetchResult {
    let name = name.to_string();
    tokio::task::spawn_blocking(move || static_keys::read(&name, &crate::paths::process_env))
        .await
        .map_err(|e| SourceError::failed(e.to_string()))?
}
