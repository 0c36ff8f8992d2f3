//! One SSO session: a usable access token, renewed with the refresh token before it expires,
//! and a device authorization when (and only when) a human is needed.
//!
//! Across every awscredd process on the machine, refreshing and signing in for a session
//! happen under that session's lock, with the cache re-read once the lock is held: at most one
//! device authorization and one refresh-token grant per session are in flight, and a process
//! that waited uses the token the other one stored. Within a process, the same is done by an
//! async mutex, so a hundred profiles of one session cost one token lookup.
//!
//! A cached token the service refused (its access token refused by the portal or expired, its
//! refresh token refused) is recorded in awscredd's state file by fingerprint, not edited in the
//! shared cache: it is not offered again (no more refused calls at every pass), `status` shows
//! the session waiting for a login, and a sign-in starts as if there were no token. A different
//! token in the cache (`aws sso login`, another process's renewal) is not concerned.

use super::cache::{CachedToken, Registration, TokenCache};
use super::oidc::{ApiError, DeviceAuthorization, OidcApi, TokenResponse};
use super::sign_ins::{Background, SignIns};
use crate::clock::{Clock, SystemClock};
use crate::config::SsoSession;
use crate::credentials::Secret;
use crate::files::lock::{self, FileLock};
use crate::sources::{ErrorKind, SourceError};
use crate::store::state::StateFile;

use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

/// How long a process waits for another one's SSO refresh or sign-in (a sign-in waits for a
/// human, and device codes last about ten minutes).
const SSO_LOCK_WAIT: Duration = Duration::from_secs(15 * 60);
/// How long the daemon waits for that lock: a refresh holds it for a moment, a sign-in for
/// minutes, and the daemon must not stop refreshing its other profiles meanwhile. Past this,
/// the profiles of the session wait for the other process's token like for a sign-in.
const BACKGROUND_LOCK_WAIT: Duration = Duration::from_secs(5);
pub use super::sign_ins::SIGN_IN_PAUSE;

/// Renew the access token when less than this is left: earlier than botocore (15 min) and the
/// Rust SDK (5 min), so awscredd refreshes first and the others find a fresh token instead of
/// racing it with the same rotating refresh token.
pub const REFRESH_WINDOW: time::Duration = time::Duration::minutes(20);
/// A registration closer than this to its expiry is renewed before a sign-in (as CLI v2 does).
const REGISTRATION_WINDOW: time::Duration = time::Duration::minutes(15);
/// RFC 8628: add this to the polling interval on `slow_down`.
const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);

/// Whether, and how, a human may be asked to sign in.
#[derive(Clone, Debug)]
pub enum LoginMode {
    /// Never: fail with a message naming `awscredd login` (`once --no-login`).
    Never,
    /// Nobody at the keyboard (`once`, `run`): log the URL and code, run `login_command`.
    /// With `background` (the daemon's sign-ins), the sign-in runs on its own task, kept
    /// there, and the profiles that need it fail at once with [`ErrorKind::NeedsLogin`], so
    /// that waiting for a human (up to a device code's ten minutes) never holds up the other
    /// profiles, reloads or stopping; `once` (none) waits for it.
    Unattended {
        login_command: Option<Vec<String>>,
        background: Option<Arc<SignIns>>,
    },
    /// A human at the keyboard (`login`): print the URL and code, open a browser if allowed.
    Interactive { open_browser: bool },
}

/// The token keeper of one SSO session.
pub struct SessionTokens {
    pub session: SsoSession,
    cache: TokenCache,
    oidc: Arc<dyn OidcApi>,
    /// The wall clock (the machine's; the tests' own in unit tests).
    clock: Arc<dyn Clock>,
    mode: LoginMode,
    /// Where refused tokens are recorded (none: not recorded, never looked up).
    state: Option<StateFile>,
    /// The daemon's sign-ins in the background, which this keeper starts, or reports its
    /// code and count to (the keeper that runs one).
    sign_ins: Option<Arc<SignIns>>,
    /// The last token this process renewed or signed in (usable while valid, even inside the
    /// refresh window: renewing it again for every profile would only rotate the refresh token
    /// needlessly), or fresh from the cache; and the in-process serialization of lookups.
    memo: tokio::sync::Mutex<Option<CachedToken>>,
}

fn needs_login(message: String) -> SourceError {
    SourceError {
        kind: ErrorKind::NeedsLogin,
        message,
    }
}

fn is_fresh(t: &CachedToken, stale: Option<&Secret>, now: OffsetDateTime) -> bool {
    t.expires_at - now > REFRESH_WINDOW && Some(&t.access_token) != stale
}

fn is_valid(t: &CachedToken, stale: Option<&Secret>, now: OffsetDateTime) -> bool {
    t.expires_at - now > time::Duration::seconds(60) && Some(&t.access_token) != stale
}

impl SessionTokens {
    pub fn new(
        session: SsoSession,
        cache: TokenCache,
        oidc: Arc<dyn OidcApi>,
        mode: LoginMode,
    ) -> Self {
        let sign_ins = match &mode {
            LoginMode::Unattended { background, .. } => background.clone(),
            _ => None,
        };
        SessionTokens {
            session,
            cache,
            oidc,
            clock: Arc::new(SystemClock),
            mode,
            state: None,
            sign_ins,
            memo: tokio::sync::Mutex::new(None),
        }
    }

    /// Reads the time from `clock`.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// Records refused tokens in, and looks them up from, `state`.
    pub fn with_state(mut self, state: StateFile) -> Self {
        self.state = Some(state);
        self
    }

    /// Whether `t` is the token recorded as refused for this session.
    async fn is_refused(&self, t: &CachedToken) -> bool {
        let Some(state) = self.state.clone() else {
            return false;
        };
        let (name, fingerprint) = (self.name().to_string(), super::cache::fingerprint(t));
        tokio::task::spawn_blocking(move || state.load().token_refused(&name, &fingerprint))
            .await
            .unwrap_or(false)
    }

    /// Records `t` as refused (a failure to record is logged: it would only be tried again).
    async fn record_refused(&self, t: &CachedToken, why: &str) {
        let Some(state) = self.state.clone() else {
            return;
        };
        let (name, fingerprint) = (self.name().to_string(), super::cache::fingerprint(t));
        let why = why.to_string();
        let now = self.now();
        let res = tokio::task::spawn_blocking(move || {
            state.update(|s| {
                if !s.token_refused(&name, &fingerprint) {
                    crate::store::state::record_refused_token(s, &name, &fingerprint, now, &why);
                }
            })
        })
        .await;
        if let Ok(Err(e)) = res {
            tracing::warn!(
                sso_session = self.name(),
                "cannot record the refused SSO token in the state file: {e}"
            );
        }
    }

    /// Forgets a refused token once a new one is stored.
    async fn clear_refused(&self) {
        let Some(state) = self.state.clone() else {
            return;
        };
        let name = self.name().to_string();
        let _ = tokio::task::spawn_blocking(move || {
            if state.load().sso_sessions.contains_key(&name) {
                let _ = state.update(|s| {
                    s.sso_sessions.remove(&name);
                });
            }
        })
        .await;
    }

    fn name(&self) -> &str {
        &self.session.name
    }

    async fn load(&self) -> Option<CachedToken> {
        let cache = self.cache.clone();
        let name = self.session.name.clone();
        tokio::task::spawn_blocking(move || cache.load(&name))
            .await
            .ok()
            .flatten()
    }

    /// Stores `new`, renewed from the refresh token `used`, unless the cache no longer holds
    /// `used`: a tool that does not take awscredd's lock stored a newer sign-in meanwhile
    /// (`aws sso login`), which is kept, or removed the file (`aws sso logout`), which is not
    /// undone (`new` is still valid for this pass).
    async fn store_unless_rewritten(
        &self,
        new: &CachedToken,
        used: &Secret,
    ) -> Result<(), SourceError> {
        let path = self.cache.token_path(&self.session.name);
        let current = self.load().await;
        let other = match &current {
            Some(c) => c.refresh_token.as_ref() != Some(used),
            // Unreadable (it is rewritten whole) or removed.
            None => std::fs::symlink_metadata(&path).is_err(),
        };
        if other {
            tracing::info!(
                sso_session = self.name(),
                "the SSO token cache was rewritten or removed by another tool during the renewal, and is left as it is"
            );
            return Ok(());
        }
        self.store(new).await
    }

    async fn store(&self, t: &CachedToken) -> Result<(), SourceError> {
        let cache = self.cache.clone();
        let name = self.session.name.clone();
        let t = t.clone();
        let path = cache.token_path(&name);
        tokio::task::spawn_blocking(move || cache.store(&name, &t))
            .await
            .map_err(|e| SourceError::failed(e.to_string()))?
            .map_err(|e| {
                SourceError::failed(format!(
                    "cannot write the SSO token cache `{}`: {e}",
                    path.display()
                ))
            })?;
        self.clear_refused().await;
        Ok(())
    }

    fn in_background(&self) -> bool {
        matches!(
            self.mode,
            LoginMode::Unattended {
                background: Some(_),
                ..
            }
        )
    }

    async fn lock(&self) -> Result<FileLock, SourceError> {
        let path = self.cache.lock_path(self.name());
        let what = format!("the SSO token of session `{}`", self.name());
        // Nobody waits for a human here: the daemon (which must go on with its other
        // profiles) and `--no-login` (`credential-process` too, which an SDK is waiting on),
        // past a refresh's moment, report the sign-in in progress instead.
        let background = self.in_background() || matches!(self.mode, LoginMode::Never);
        let wait = if background {
            BACKGROUND_LOCK_WAIT
        } else {
            SSO_LOCK_WAIT
        };
        // The lock's walk creates the cache folders, owned like the folder each is made in.
        tokio::task::spawn_blocking(move || lock::lock_exclusive(&path, &what, wait))
            .await
            .map_err(|e| SourceError::failed(e.to_string()))?
            .map_err(|e| {
                if background && e.kind() == std::io::ErrorKind::TimedOut {
                    let name = self.name();
                    return needs_login(format!(
                        "another process is signing in to SSO session `{name}` ({e}); approve \
                         its sign-in (its URL and code are in its log) or run `awscredd login \
                         --sso-session {name}`"
                    ));
                }
                SourceError::failed(format!(
                    "cannot lock the SSO token cache in `{}`: {e}",
                    self.cache.dir.display()
                ))
            })
    }

    /// While a background sign-in for this session runs, or pauses after one ended without
    /// a token: why its profiles must wait. Checked before the lock is taken, which the
    /// sign-in holds.
    fn background_wait(&self) -> Option<SourceError> {
        if !self.in_background() {
            return None;
        }
        let name = self.name();
        let mut bg = self.sign_ins.as_ref()?.registry();
        let b = bg.get(name)?;
        if b.start_url != self.session.start_url {
            // A reload changed the session's portal: that sign-in is for the old one.
            tracing::info!(
                sso_session = name,
                "the session's start URL changed: stopping its sign-in to the old one"
            );
            b.task.abort();
            bg.remove(name);
            return None;
        }
        let login = format!("or run `awscredd login --sso-session {name}`");
        match &b.ended {
            None => {
                let code = match &b.user_code {
                    Some((uri, code)) => format!(": open {uri} and enter the code {code},"),
                    None => ",".to_string(),
                };
                Some(needs_login(format!(
                    "waiting for the sign-in to SSO session `{name}` started at {}{code} {login}",
                    crate::credentials::format_utc(b.started_at)
                )))
            }
            Some((at, why)) if self.now() - *at < SIGN_IN_PAUSE => Some(needs_login(format!(
                "{why}; a new sign-in starts at {}, {login}",
                crate::credentials::format_utc(*at + SIGN_IN_PAUSE)
            ))),
            Some(_) => None,
        }
    }

    /// The keeper that runs a sign-in in the background for this one: the same session,
    /// cache, clients and clock, waiting for the human itself.
    fn background_keeper(&self, sign_ins: &Arc<SignIns>) -> SessionTokens {
        let login_command = match &self.mode {
            LoginMode::Unattended { login_command, .. } => login_command.clone(),
            _ => None,
        };
        let mut keeper = SessionTokens::new(
            self.session.clone(),
            self.cache.clone(),
            self.oidc.clone(),
            LoginMode::Unattended {
                login_command,
                background: None,
            },
        );
        keeper.state = self.state.clone();
        keeper.sign_ins = Some(sign_ins.clone());
        keeper.clock = self.clock.clone();
        keeper
    }

    /// Starts the device authorization on its own task (the daemon's way, see
    /// [`LoginMode::Unattended`]) and returns the error the waiting profiles report.
    fn sign_in_in_background(
        &self,
        sign_ins: &Arc<SignIns>,
        stale: Option<&Secret>,
        refused: Option<&str>,
    ) -> SourceError {
        let key = self.name().to_string();
        let generation = sign_ins.next_generation();
        // Held while the task is spawned and registered, so that it cannot end (and look
        // for its entry) before the entry is there.
        let mut registry = sign_ins.registry();
        let keeper = self.background_keeper(sign_ins);
        let clock = self.clock.clone();
        let owner = sign_ins.clone();
        let stale = stale.cloned();
        let refused = refused.map(str::to_string);
        let name = self.name().to_string();
        let task = tokio::spawn(async move {
            let result = async {
                let _lock = keeper.lock().await?;
                // Another process may have signed in while this one waited for the lock.
                if let Some(t) = keeper
                    .load()
                    .await
                    .filter(|t| is_valid(t, stale.as_ref(), keeper.now()))
                {
                    return Ok(t);
                }
                keeper.sign_in(stale.as_ref(), refused.as_deref()).await
            }
            .await;
            let mut bg = owner.registry();
            let ours = bg.get(&key).is_some_and(|b| b.generation == generation);
            match result {
                Ok(_) => {
                    if ours {
                        bg.remove(&key);
                    }
                    owner.tell();
                }
                Err(e) => {
                    tracing::warn!(sso_session = %name, "the sign-in ended without a token: {}", e.message);
                    if let (true, Some(b)) = (ours, bg.get_mut(&key)) {
                        b.ended = Some((clock.now(), e.message));
                    }
                }
            }
        });
        registry.insert(
            self.name().to_string(),
            Background {
                start_url: self.session.start_url.clone(),
                generation,
                task: task.abort_handle(),
                started_at: self.now(),
                user_code: None,
                ended: None,
            },
        );
        drop(registry);
        let name = self.name();
        needs_login(format!(
            "SSO session `{name}` needs a sign-in: started one (its URL and code are in the log \
             and given to login_command), or run `awscredd login --sso-session {name}`"
        ))
    }

    /// A usable access token. `stale` is a token the portal just refused: it is not used again.
    pub async fn access_token(&self, stale: Option<&Secret>) -> Result<Secret, SourceError> {
        let mut memo = self.memo.lock().await;
        if let Some(t) = memo.as_ref().filter(|t| is_valid(t, stale, self.now())) {
            return Ok(t.access_token.clone());
        }
        let seen = self.load().await;
        if let Some(t) = seen.clone().filter(|t| is_fresh(t, stale, self.now())) {
            if !self.is_refused(&t).await {
                let token = t.access_token.clone();
                *memo = Some(t);
                return Ok(token);
            }
        }
        if let Some(wait) = self.background_wait() {
            // A sign-in is on its way; a token still valid serves meanwhile.
            if let Some(t) = seen.filter(|t| is_valid(t, stale, self.now())) {
                if !self.is_refused(&t).await {
                    let token = t.access_token.clone();
                    *memo = Some(t);
                    return Ok(token);
                }
            }
            return Err(wait);
        }
        // Renewal or sign-in: one process at a time, and the cache re-read under the lock,
        // since the process we waited for may have stored a new token.
        let _lock = self.lock().await?;
        let t = self.renew(stale, seen.as_ref()).await?;
        let token = t.access_token.clone();
        *memo = Some(t);
        Ok(token)
    }

    /// What the cache holds for this session now (for status and `login`).
    pub async fn status(&self) -> Option<CachedToken> {
        self.load().await
    }

    /// A new sign-in, whatever the cache holds (`login --sso-session`, as `aws sso login`
    /// does): unless another process stored a new token while this one waited for the session's
    /// lock, since its sign-in in progress is then used, not doubled.
    pub async fn sign_in_afresh(&self) -> Result<CachedToken, SourceError> {
        let mut memo = self.memo.lock().await;
        let seen = self.load().await;
        let _lock = self.lock().await?;
        let t = match self.load().await {
            Some(t)
                if seen
                    .as_ref()
                    .is_none_or(|s| s.access_token != t.access_token)
                    && is_valid(&t, None, self.now()) =>
            {
                t
            }
            cached => {
                let current = cached.map(|t| t.access_token);
                self.sign_in(current.as_ref(), None).await?
            }
        };
        *memo = Some(t.clone());
        Ok(t)
    }

    /// Under the lock: use, refresh, or sign in. `seen` is what the cache held before the lock
    /// was taken: a different, valid token now means another process just renewed it.
    async fn renew(
        &self,
        stale: Option<&Secret>,
        seen: Option<&CachedToken>,
    ) -> Result<CachedToken, SourceError> {
        let mut cached = self.load().await;
        // A token recorded as refused is neither used nor renewed again: a human must sign in.
        if let Some(t) = cached.clone() {
            if self.is_refused(&t).await {
                tracing::debug!(
                    sso_session = self.name(),
                    "the cached SSO token was refused before; a sign-in is needed"
                );
                return self.sign_in(Some(&t.access_token), None).await;
            }
        }
        let renewed_elsewhere = |t: &CachedToken| {
            seen.is_none_or(|s| s.access_token != t.access_token) && is_valid(t, stale, self.now())
        };
        if let Some(t) = cached
            .as_ref()
            .filter(|t| is_fresh(t, stale, self.now()) || renewed_elsewhere(t))
        {
            tracing::debug!(
                sso_session = self.name(),
                "another process renewed the SSO token"
            );
            return Ok(t.clone());
        }
        let (tried, refused_client) = match self.refresh(&mut cached, stale).await? {
            Refreshed::Token(t) => return Ok(t),
            Refreshed::Not {
                tried,
                refused_client,
            } => (tried, refused_client),
        };
        // Valid but not renewable (no refresh token, or it was refused): use it while it
        // lasts. The daemon starts the sign-in now, in the background, when the refresh token
        // was refused: the session has ended, and the human is asked before the token runs
        // out, not when it has.
        if let Some(t) = cached.clone().filter(|t| is_valid(t, stale, self.now())) {
            if tried && self.in_background() && self.background_wait().is_none() {
                tracing::warn!(
                    sso_session = self.name(),
                    "the SSO session has ended (its refresh token was refused): signing in \
                     again while the access token lasts"
                );
                if let Some(sign_ins) = &self.sign_ins {
                    let _ = self.sign_in_in_background(
                        sign_ins,
                        Some(&t.access_token),
                        refused_client.as_deref(),
                    );
                }
            }
            return Ok(t);
        }
        // What the cache holds cannot be used: remember it, so it is not offered again.
        if let Some(t) = &cached {
            let why = if !tried {
                "the access token was refused or expired, and cannot be renewed (no refresh token, or its registration expired)"
            } else {
                "the access token was refused or expired, and the refresh token was refused"
            };
            self.record_refused(t, why).await;
        }
        self.sign_in(stale, refused_client.as_deref()).await
    }

    /// The refresh-token grant, with each refresh token `cached` holds (re-read after a
    /// refusal: another tool may have rotated it): the token to use, or what was tried.
    async fn refresh(
        &self,
        cached: &mut Option<CachedToken>,
        stale: Option<&Secret>,
    ) -> Result<Refreshed, SourceError> {
        // Refresh tokens rotate: if the grant fails, another tool (which does not take our
        // lock) may have rotated it; re-read the cache and try once more with what it holds.
        let mut tried = false;
        let mut seen: Vec<Secret> = Vec::new();
        let mut refused_client: Option<String> = None;
        while let Some(t) = cached.clone() {
            // The older per-profile form is never renewed: AWS issues it no refresh token.
            let Some((reg, refresh)) = t.refreshable(self.now()).filter(|_| !self.session.legacy)
            else {
                break;
            };
            if seen.contains(refresh) {
                break;
            }
            seen.push(refresh.clone());
            tried = true;
            tracing::info!(
                sso_session = self.name(),
                "renewing the SSO access token with the refresh token"
            );
            match self.oidc.refresh(&reg, refresh).await {
                Ok(resp) => {
                    let new = self.token_from(resp, &reg, t.refresh_token.clone());
                    self.store_unless_rewritten(&new, refresh).await?;
                    tracing::info!(
                        sso_session = self.name(),
                        expires_at = %crate::credentials::format_utc(new.expires_at),
                        "SSO access token renewed"
                    );
                    return Ok(Refreshed::Token(new));
                }
                Err(ApiError::Transient(m)) => {
                    if is_valid(&t, stale, self.now()) {
                        tracing::warn!(
                            sso_session = self.name(),
                            "cannot renew the SSO token yet, using the current one: {m}"
                        );
                        return Ok(Refreshed::Token(t));
                    }
                    return Err(SourceError::transient(m));
                }
                Err(e) => {
                    if e == ApiError::InvalidClient {
                        refused_client = Some(reg.client_id.clone());
                    }
                    tracing::warn!(
                        sso_session = self.name(),
                        "the refresh token was refused: {e}"
                    );
                    *cached = self.load().await;
                    if let Some(other) = cached.as_ref().filter(|n| {
                        is_valid(n, stale, self.now()) && n.access_token != t.access_token
                    }) {
                        return Ok(Refreshed::Token(other.clone()));
                    }
                }
            }
        }
        Ok(Refreshed::Not {
            tried,
            refused_client,
        })
    }

    fn token_from(
        &self,
        resp: TokenResponse,
        reg: &Registration,
        previous_refresh: Option<Secret>,
    ) -> CachedToken {
        if self.session.legacy {
            // What the AWS CLI writes for the older form: no registration, no refresh token.
            return CachedToken {
                start_url: Some(self.session.start_url.clone()),
                region: Some(self.session.region.clone()),
                access_token: resp.access_token,
                expires_at: resp.expires_at,
                client_id: None,
                client_secret: None,
                registration_expires_at: None,
                refresh_token: None,
            };
        }
        CachedToken {
            start_url: Some(self.session.start_url.clone()),
            region: Some(self.session.region.clone()),
            access_token: resp.access_token,
            expires_at: resp.expires_at,
            client_id: Some(reg.client_id.clone()),
            client_secret: Some(reg.client_secret.clone()),
            registration_expires_at: Some(reg.expires_at),
            // If the service returned no new refresh token, the old one stays valid.
            refresh_token: resp.refresh_token.or(previous_refresh),
        }
    }

    /// A registration valid for a while: from the token cache (if made for this session's
    /// region and start URL), the CLI's registration cache, or a new RegisterClient. `refused`
    /// is a client id the service just rejected: it is never reused.
    async fn registration(
        &self,
        cached: Option<&CachedToken>,
        refused: Option<&str>,
    ) -> Result<Registration, SourceError> {
        let good = |r: &Registration| {
            r.expires_at - self.now() > REGISTRATION_WINDOW && Some(r.client_id.as_str()) != refused
        };
        let same_session = |t: &&CachedToken| {
            t.region.as_deref().is_none_or(|r| r == self.session.region)
                && t.start_url
                    .as_deref()
                    .is_none_or(|u| u == self.session.start_url)
        };
        if let Some(t) = cached.filter(same_session) {
            if let (Some(id), Some(secret), Some(exp)) =
                (&t.client_id, &t.client_secret, t.registration_expires_at)
            {
                let r = Registration {
                    client_id: id.clone(),
                    client_secret: secret.clone(),
                    expires_at: exp,
                };
                if good(&r) {
                    return Ok(r);
                }
            }
        }
        let s = &self.session;
        let path = if s.legacy {
            self.cache.legacy_registration_path(&s.start_url, &s.region)
        } else {
            self.cache
                .registration_path(&s.name, &s.start_url, &s.region, &s.registration_scopes)
        };
        if let Some(r) = self.cache.load_registration(&path).filter(good) {
            return Ok(r);
        }
        tracing::info!(sso_session = self.name(), "registering an SSO OIDC client");
        let reg = self
            .oidc
            .register(&client_name(s, self.now()), &s.registration_scopes)
            .await
            .map_err(|e| api_error(self.name(), e))?;
        let grants = [
            super::oidc::DEVICE_GRANT.to_string(),
            super::oidc::REFRESH_GRANT.to_string(),
        ];
        if let Err(e) = self
            .cache
            .store_registration(&path, &reg, &s.registration_scopes, &grants)
        {
            tracing::warn!(path = %path.display(), "cannot cache the client registration: {e}");
        }
        Ok(reg)
    }

    /// Device authorization, under the lock. Also ends when a valid token appears in the cache
    /// (`aws sso login` in another terminal).
    async fn sign_in(
        &self,
        stale: Option<&Secret>,
        refused: Option<&str>,
    ) -> Result<CachedToken, SourceError> {
        let name = self.name().to_string();
        if let LoginMode::Never = self.mode {
            return Err(SourceError {
                kind: ErrorKind::NeedsLogin,
                message: format!(
                    "SSO session `{name}` has no usable token: run `awscredd login --sso-session {name}`"
                ),
            });
        }
        if let (true, Some(sign_ins)) = (self.in_background(), &self.sign_ins) {
            return Err(self.sign_in_in_background(sign_ins, stale, refused));
        }
        let before = self.load().await;
        let mut refused = refused.map(str::to_string);
        // A registration the service rejects (deleted, or made for another region) is replaced
        // by a new one, once.
        for _ in 0..2 {
            let reg = self
                .registration(before.as_ref(), refused.as_deref())
                .await?;
            match self.device_flow(&reg, stale, before.as_ref()).await {
                Err(Refused::Client) => {
                    tracing::warn!(sso_session = %name, "the client registration was refused; registering a new one");
                    refused = Some(reg.client_id.clone());
                }
                Err(Refused::Other(e)) => return Err(e),
                Ok(t) => return Ok(t),
            }
        }
        Err(SourceError::failed(format!(
            "SSO session `{name}`: the service refused a new client registration too"
        )))
    }

    /// One device authorization with `reg`, polled to the end.
    async fn device_flow(
        &self,
        reg: &Registration,
        stale: Option<&Secret>,
        before: Option<&CachedToken>,
    ) -> Result<CachedToken, Refused> {
        let name = self.name().to_string();
        let da = match self
            .oidc
            .start_device_authorization(reg, &self.session.start_url)
            .await
        {
            Ok(da) => da,
            Err(ApiError::InvalidClient) => return Err(Refused::Client),
            Err(e) => return Err(Refused::Other(api_error(&name, e))),
        };
        if let Some(sign_ins) = &self.sign_ins {
            sign_ins.count_started(&name);
        }
        self.prompt(&da);
        let deadline = tokio::time::Instant::now() + da.expires_in;
        let mut interval = da.interval;
        loop {
            match self.oidc.poll_device_token(reg, &da.device_code).await {
                Ok(resp) => {
                    let t = self.token_from(resp, reg, None);
                    self.store(&t).await.map_err(Refused::Other)?;
                    tracing::info!(sso_session = %name, "signed in");
                    return Ok(t);
                }
                Err(ApiError::Pending) => {}
                Err(ApiError::SlowDown) => interval += SLOW_DOWN_STEP,
                Err(ApiError::Transient(m)) => {
                    tracing::warn!(sso_session = %name, "polling for the sign-in failed, will retry: {m}");
                }
                // A human is still needed: the profiles wait for a token as for a sign-in.
                Err(ApiError::Expired) => {
                    return Err(Refused::Other(needs_login(format!(
                        "the sign-in code for SSO session `{name}` expired before it was approved"
                    ))))
                }
                Err(ApiError::Denied) => {
                    return Err(Refused::Other(needs_login(format!(
                        "the sign-in for SSO session `{name}` was denied"
                    ))))
                }
                Err(ApiError::InvalidClient) => return Err(Refused::Client),
                Err(e) => return Err(Refused::Other(api_error(&name, e))),
            }
            if let Some(t) = self.load().await {
                let changed = before.is_none_or(|b| b.access_token != t.access_token);
                if changed && is_valid(&t, stale, self.now()) {
                    tracing::info!(sso_session = %name, "a token signed in elsewhere appeared in the cache");
                    return Ok(t);
                }
            }
            if tokio::time::Instant::now() + interval > deadline {
                return Err(Refused::Other(needs_login(format!(
                    "the sign-in code for SSO session `{name}` expired before it was approved"
                ))));
            }
            tokio::time::sleep(interval).await;
        }
    }

    /// Tells a human what to open and which code to enter.
    fn prompt(&self, da: &DeviceAuthorization) {
        let name = self.name();
        let complete = da
            .verification_uri_complete
            .clone()
            .unwrap_or_else(|| da.verification_uri.clone());
        match &self.mode {
            LoginMode::Never => {}
            LoginMode::Unattended { login_command, .. } => {
                if let Some(sign_ins) = &self.sign_ins {
                    if let Some(b) = sign_ins.registry().get_mut(self.name()) {
                        b.user_code = Some((da.verification_uri.clone(), da.user_code.clone()));
                    }
                    sign_ins.tell();
                }
                tracing::warn!(
                    target: crate::eventlog::EVENT_LOG,
                    event_id = crate::eventlog::ids::SIGN_IN_NEEDED,
                    sso_session = name,
                    verification_uri = %da.verification_uri,
                    verification_uri_complete = %complete,
                    user_code = %da.user_code,
                    "SSO sign-in needed: open {} and enter the code {}",
                    da.verification_uri,
                    da.user_code
                );
                if let Some(cmd) = login_command {
                    run_login_command(cmd, name, da, &complete);
                }
            }
            LoginMode::Interactive { open_browser } => {
                println!(
                    "To sign in to SSO session `{name}`, open\n\n    {}\n\nand enter the code\n\n    {}\n\n(or open {complete} directly). Waiting for approval...",
                    da.verification_uri, da.user_code
                );
                if *open_browser && has_display() {
                    if let Err(e) = open::that_detached(&complete) {
                        tracing::debug!("cannot open a browser: {e}");
                    }
                }
            }
        }
    }
}

/// Whether a browser could be shown: always on Windows and macOS, with a display elsewhere.
fn has_display() -> bool {
    cfg!(windows)
        || cfg!(target_os = "macos")
        || crate::paths::process_env("DISPLAY").is_some()
        || crate::paths::process_env("WAYLAND_DISPLAY").is_some()
}

/// Starts `login_command` with the sign-in in its environment; neither waited for nor killed.
/// Its output and exit status are logged when it ends while awscredd still runs.
fn run_login_command(cmd: &[String], session: &str, da: &DeviceAuthorization, complete: &str) {
    let mut c = tokio::process::Command::new(&cmd[0]);
    c.args(&cmd[1..])
        .env("AWSCREDD_VERIFICATION_URI", &da.verification_uri)
        .env("AWSCREDD_VERIFICATION_URI_COMPLETE", complete)
        .env("AWSCREDD_USER_CODE", &da.user_code)
        .env("AWSCREDD_SSO_SESSION", session);
    let name = session.to_string();
    let program = cmd[0].clone();
    let done = move |status: std::io::Result<std::process::ExitStatus>, lines: Vec<String>| {
        for line in lines {
            tracing::info!(
                sso_session = %name,
                "login_command: {}",
                crate::child::redact(&line, &[])
            );
        }
        match status {
            Ok(status) => {
                tracing::info!(sso_session = %name, %status, "login_command `{program}` ended")
            }
            Err(e) => tracing::warn!(sso_session = %name, "login_command `{program}`: {e}"),
        }
    };
    if let Err(e) = crate::child::spawn_detached(c, done) {
        tracing::error!(
            sso_session = session,
            "cannot start login_command `{}`: {e}",
            cmd[0]
        );
    }
}

/// The OIDC client name: `awscredd-SESSION`, or `awscredd-legacy-TIME` for the older form
/// (as the AWS CLI names it by time: its session name, a start URL, is no name).
fn client_name(s: &SsoSession, now: OffsetDateTime) -> String {
    if s.legacy {
        format!("awscredd-legacy-{}", now.unix_timestamp())
    } else {
        format!("awscredd-{}", s.name)
    }
}

/// What the refresh-token grant gave.
enum Refreshed {
    /// A token to use (renewed, stored by another process, or valid while the service is
    /// unreachable).
    Token(CachedToken),
    /// None: whether a grant was tried (and refused), and a client id the service rejected.
    Not {
        tried: bool,
        refused_client: Option<String>,
    },
}

/// Why a device flow ended without a token.
enum Refused {
    /// The client registration was rejected: register anew.
    Client,
    Other(SourceError),
}

/// An API failure as a source error for a session.
fn api_error(session: &str, e: ApiError) -> SourceError {
    match e {
        ApiError::Transient(m) => SourceError::transient(format!("SSO session `{session}`: {m}")),
        e => SourceError::failed(format!("SSO session `{session}`: {e}")),
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
