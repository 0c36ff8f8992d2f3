//! `aws login` sessions (AWS CLI 2.32 and later): credentials for `login_session` profiles,
//! taken from the CLI's login cache and renewed at the Sign-In service's token endpoint.
//!
//! - [`cache`]: the login cache shared with the AWS CLI and botocore.
//! - [`dpop`]: the DPoP proofs (ES256) the token endpoint requires.
//! - [`client`]: the token endpoint through `aws-sdk-signin`.
//! - [`remote`]: a new sign-in the way `aws login --remote` makes it (`login --profile`).
//!
//! [`LoginSources`] owns every refresh of a sign-in: one at a time per sign-in in this process
//! (an async mutex) and across processes (the lock beside the cache file, with the file
//! re-read once it is held), so the rotating refresh token is used once. Credentials the
//! cache holds that are fresh (from botocore, the CLI or another awscredd) are used as they
//! are. When the service says the sign-in has ended, its refresh token is recorded in the
//! state file (by fingerprint) and never offered again: the profiles wait for a human (one
//! log line, `login_command` run once), and a new sign-in in the cache ends the wait.

pub mod cache;
pub mod client;
pub mod dpop;
pub mod remote;
#[cfg(test)]
mod replay_tests;

use crate::config::{Config, Profile};
use crate::paths::Env;
use crate::sources::sso::session::LoginMode;
use crate::sources::{ErrorKind, FetchResult, SourceError};
use crate::store::state::StateFile;
use cache::{CachedLogin, LoginCache};
use client::{Grant, Signin, TokenError};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Credentials in the cache with more than this left are used as they are: another tool (or
/// process) has just renewed them. Less, and they are renewed.
pub const FRESH_ENOUGH: time::Duration = time::Duration::minutes(10);
/// How long a process waits for another one's refresh of the same sign-in.
const LOCK_WAIT: Duration = Duration::from_secs(30);

/// What identifies a refresh token in the state file without holding it: 16 hex digits of
/// its SHA-256.
pub fn fingerprint(refresh_token: &crate::credentials::Secret) -> String {
    let mut f = cache::sha256_hex(refresh_token.expose());
    f.truncate(16);
    f
}

fn needs_login(message: String) -> SourceError {
    SourceError {
        kind: ErrorKind::NeedsLogin,
        message,
    }
}

/// What to run to sign in again, for messages.
fn sign_in_hint(profile: &str) -> String {
    format!("run `aws login --profile {profile}`, or `awscredd login --profile {profile}` on a host with no browser")
}

/// The `aws login` sign-ins of a config.
pub struct LoginSources {
    cache: Option<LoginCache>,
    state: StateFile,
    mode: LoginMode,
    env_region: Option<String>,
    /// One refresh at a time per sign-in, in this process.
    in_process: BTreeMap<String, Arc<tokio::sync::Mutex<()>>>,
    env: fn(&str) -> Option<String>,
}

impl LoginSources {
    pub fn new(cfg: &Config, mode: LoginMode, env: fn(&str) -> Option<String>) -> Self {
        let in_process = cfg
            .profiles
            .values()
            .filter_map(|p| match &p.source {
                crate::config::Source::LoginSession { arn } => Some(arn.clone()),
                _ => None,
            })
            .map(|arn| (arn, Arc::default()))
            .collect();
        LoginSources {
            cache: LoginCache::default_location(&env),
            state: StateFile::in_dir(&cfg.daemon.state_dir),
            mode,
            env_region: env("AWS_REGION"),
            in_process,
            env,
        }
    }

    /// The login cache, or why there is none.
    pub fn cache(&self) -> Result<&LoginCache, SourceError> {
        self.cache
            .as_ref()
            .ok_or_else(|| SourceError::failed("cannot find the login cache: HOME is not set"))
    }

    /// The token endpoint for `profile`'s sign-in: the profile's `region`, else `AWS_REGION`
    /// (as SPEC.md says), else the region the sign-in was made in (the cache's
    /// `signInRegion`, which newer CLIs write), else `us-east-1`.
    pub fn endpoint(&self, profile: &Profile, sign_in_region: Option<&str>) -> Signin {
        let env: Env<'_> = &self.env;
        let region = profile
            .region
            .as_deref()
            .or(self.env_region.as_deref())
            .or(sign_in_region)
            .unwrap_or("us-east-1");
        let endpoint = crate::sources::sso::oidc::endpoint_override(
            "AWS_ENDPOINT_URL_SIGNIN",
            profile.endpoint_url.as_deref(),
            env,
        );
        Signin::new(region, endpoint)
    }

    /// Fresh credentials of the sign-in `arn`, for `profile`.
    pub async fn credentials(&self, profile: &Profile, arn: &str) -> FetchResult {
        let cache = self.cache()?.clone();
        let mutex = self.in_process.get(arn).cloned().unwrap_or_default();
        let _one = mutex.lock().await;
        let now = crate::clock::now();
        let seen = self.usable(&cache, &profile.name, arn).await?;
        if cache::remaining(&seen, now) > FRESH_ENOUGH {
            return Ok(seen.credentials);
        }
        // Across processes: one refresh at a time, the file re-read under the lock.
        let lock_path = cache.lock_path(arn);
        let what = format!("the `aws login` sign-in of {arn}");
        let _lock = tokio::task::spawn_blocking(move || {
            crate::files::lock::lock_exclusive(&lock_path, &what, LOCK_WAIT)
        })
        .await
        .map_err(|e| SourceError::failed(e.to_string()))?
        .map_err(|e| {
            SourceError::transient(format!(
                "cannot lock the login cache in `{}`: {e}",
                cache.dir.display()
            ))
        })?;
        let current = self.usable(&cache, &profile.name, arn).await?;
        if cache::remaining(&current, crate::clock::now()) > FRESH_ENOUGH {
            return Ok(current.credentials);
        }
        self.refresh(&cache, profile, arn, current).await
    }

    /// The sign-in in the cache, if it can be used or refreshed: not missing, readable, its
    /// refresh token not refused before (unless its credentials are still fresh).
    async fn usable(
        &self,
        cache: &LoginCache,
        profile: &str,
        arn: &str,
    ) -> Result<CachedLogin, SourceError> {
        let (c, a) = (cache.clone(), arn.to_string());
        let loaded = tokio::task::spawn_blocking(move || c.load(&a))
            .await
            .map_err(|e| SourceError::failed(e.to_string()))?
            .map_err(SourceError::failed)?;
        let Some(login) = loaded else {
            return Err(needs_login(format!(
                "no `aws login` sign-in of {arn} in the login cache `{}`: {}",
                cache.path(arn).display(),
                sign_in_hint(profile)
            )));
        };
        let now = crate::clock::now();
        let fresh = cache::remaining(&login, now) > FRESH_ENOUGH;
        let state = self.state.clone();
        let (a, fp) = (arn.to_string(), fingerprint(&login.refresh_token));
        let refused = tokio::task::spawn_blocking(move || state.load().login_refused(&a, &fp))
            .await
            .unwrap_or(false);
        if refused && !fresh {
            return Err(needs_login(format!(
                "the `aws login` sign-in of {arn} has ended: {}",
                sign_in_hint(profile)
            )));
        }
        // The 12 hours from the idToken's `iat` are not checked here: the service says when
        // the sign-in has ended (as botocore and the AWS SDKs let it), so a host clock that is
        // ahead, or a sign-in that lasts longer, does not end it early; the one refused
        // refresh token is then recorded and never offered again.
        Ok(login)
    }

    /// Renews `login` at the token endpoint (under the lock) and writes the cache back.
    async fn refresh(
        &self,
        cache: &LoginCache,
        profile: &Profile,
        arn: &str,
        login: CachedLogin,
    ) -> FetchResult {
        let path = cache.path(arn);
        let key = login.dpop_key().map_err(|e| {
            SourceError::failed(format!(
                "the login cache `{}` cannot be used: {e}",
                path.display()
            ))
        })?;
        let signin = self.endpoint(profile, login.sign_in_region.as_deref());
        let grant = Grant::Refresh {
            client_id: &login.client_id,
            refresh_token: &login.refresh_token,
        };
        let mut got = match signin.token(Arc::new(key), grant).await {
            Ok(t) => t,
            Err(TokenError::SignInEnded(m)) => {
                self.sign_in_ended(&profile.name, arn, &login, &m).await;
                return Err(needs_login(format!(
                    "the `aws login` sign-in of {arn} has ended ({m}): {}",
                    sign_in_hint(&profile.name)
                )));
            }
            Err(TokenError::Throttled(m)) => return Err(SourceError::throttled(m)),
            Err(TokenError::Transient(m)) => return Err(SourceError::transient(m)),
            Err(TokenError::Failed(m)) => return Err(SourceError::failed(m)),
        };
        // The account is the one the sign-in was made in, as the cache says (the AWS SDKs
        // report it with the renewed credentials).
        got.credentials.account_id.clone_from(&login.account_id);
        let renewed = login.renewed(got.credentials.clone(), got.refresh_token);
        let (c, a, used) = (cache.clone(), arn.to_string(), login.refresh_token.clone());
        let stored = tokio::task::spawn_blocking(move || c.store_renewal(&a, &renewed, &used))
            .await
            .map_err(|e| SourceError::failed(e.to_string()))?
            .map_err(SourceError::failed)?;
        if stored {
            tracing::debug!(login_session = arn, "renewed the `aws login` credentials");
        } else {
            // The CLI does not take our lock: what it wrote meanwhile is the newer sign-in.
            tracing::info!(
                login_session = arn,
                "renewed the `aws login` credentials; the login cache `{}` was rewritten or removed by another tool meanwhile (`aws login`, `aws logout`), and is left as it is",
                path.display()
            );
        }
        Ok(got.credentials)
    }

    /// Records the refused refresh token; the first time, tells it (one line) and runs
    /// `login_command`.
    async fn sign_in_ended(&self, profile: &str, arn: &str, login: &CachedLogin, why: &str) {
        let state = self.state.clone();
        let (a, fp, w) = (
            arn.to_string(),
            fingerprint(&login.refresh_token),
            why.to_string(),
        );
        let first = tokio::task::spawn_blocking(move || {
            let mut first = false;
            let res = state.update(|s| {
                first = !s.login_refused(&a, &fp);
                if first {
                    s.login_sessions.insert(
                        a.clone(),
                        crate::store::state::SessionState {
                            refused_token: Some(fp.clone()),
                            refused_at: Some(crate::credentials::format_utc(crate::clock::now())),
                            refused_because: Some(w.clone()),
                        },
                    );
                }
            });
            (first, res)
        })
        .await;
        let first = match first {
            Ok((first, Ok(()))) => first,
            Ok((first, Err(e))) => {
                tracing::warn!(
                    login_session = arn,
                    "cannot record the ended sign-in in the state file: {e}"
                );
                first
            }
            Err(_) => true,
        };
        if !first {
            return;
        }
        tracing::warn!(
            target: crate::eventlog::EVENT_LOG,
            event_id = crate::eventlog::ids::SIGN_IN_NEEDED,
            login_session = arn,
            profile,
            "`aws login` sign-in needed: the sign-in of {arn} has ended; {}",
            sign_in_hint(profile)
        );
        if let LoginMode::Unattended {
            login_command: Some(cmd),
            ..
        } = &self.mode
        {
            run_login_command(cmd, profile, arn);
        }
    }
}

/// Starts `login_command` for an ended `aws login` sign-in, with the profile and the sign-in
/// in its environment; neither waited for nor killed (its output and status are logged).
fn run_login_command(cmd: &[String], profile: &str, arn: &str) {
    let Some((program, args)) = cmd.split_first() else {
        return;
    };
    let mut c = tokio::process::Command::new(program);
    c.args(args)
        .env("AWSCREDD_LOGIN_SESSION", arn)
        .env("AWSCREDD_PROFILE", profile)
        .env(
            "AWSCREDD_LOGIN_HINT",
            format!("awscredd login --profile {profile}"),
        );
    let (name, program) = (profile.to_string(), program.clone());
    let done = move |status: std::io::Result<std::process::ExitStatus>, lines: Vec<String>| {
        for line in lines {
            tracing::info!(profile = %name, "login_command: {}", crate::child::redact(&line, &[]));
        }
        match status {
            Ok(status) => {
                tracing::info!(profile = %name, %status, "login_command `{program}` ended")
            }
            Err(e) => tracing::warn!(profile = %name, "login_command `{program}`: {e}"),
        }
    };
    if let Err(e) = crate::child::spawn_detached(c, done) {
        tracing::error!(profile, "cannot start login_command `{}`: {e}", cmd[0]);
    }
}
