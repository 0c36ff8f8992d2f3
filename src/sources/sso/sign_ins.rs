//! The daemon's sign-ins in the background: at most one device authorization per SSO session,
//! each on its own task, so that waiting for a human never holds up other profiles, reloads
//! or stopping.
//!
//! [`SignIns`] is owned by whoever runs the scheduler (the daemon's engine; each test its
//! own) and handed to the SSO sources it builds for every pass. It outlives those sources:
//! the sign-in a pass started is still there for the next pass to wait on. It tells the
//! scheduler when a sign-in has its code or has stored a token ([`SignIns::news`]), what
//! each waits for ([`SignIns::waiting`], for systemd's `STATUS=`), and how many it started
//! per session (the metrics' `awscredd_sso_sign_ins_total`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use time::OffsetDateTime;

/// After a sign-in the daemon started ended without a token (the code expired unapproved, or
/// was denied), the next one starts no sooner than this.
pub const SIGN_IN_PAUSE: time::Duration = time::Duration::minutes(10);

/// A sign-in in the background, for one session (by name: the lock and the cache file are
/// per name).
pub(crate) struct Background {
    /// The start URL it signs in to: after a reload changed it, the sign-in is for a portal
    /// no longer configured, and is stopped.
    pub(crate) start_url: String,
    /// Tells this sign-in from a later one of the same session.
    pub(crate) generation: u64,
    pub(crate) task: tokio::task::AbortHandle,
    pub(crate) started_at: OffsetDateTime,
    /// The verification URL and the code to enter, once the device authorization has started.
    pub(crate) user_code: Option<(String, String)>,
    /// When it ended without a token, and why; `None` while it runs. (One that signed in is
    /// removed.)
    pub(crate) ended: Option<(OffsetDateTime, String)>,
}

/// What a session's sign-in waits for, as the scheduler tells systemd.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Waiting {
    pub session: String,
    /// The verification URL and user code, once known.
    pub code: Option<(String, String)>,
    /// It ended without a token (the daemon pauses before the next one).
    pub ended: bool,
}

/// The background sign-ins of one daemon.
#[derive(Default)]
pub struct SignIns {
    running: Mutex<BTreeMap<String, Background>>,
    generation: AtomicU64,
    /// Woken when a sign-in has its code or has stored its token.
    news: tokio::sync::Notify,
    /// Device authorizations started, per session.
    started: Mutex<BTreeMap<String, u64>>,
}

impl std::fmt::Debug for SignIns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignIns")
            .field("sessions", &self.registry().keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A poisoned lock only means a panic elsewhere while it was held: the map is still a map.
fn unpoisoned<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl SignIns {
    pub fn new() -> Self {
        Self::default()
    }

    /// The sign-ins by session, locked.
    pub(crate) fn registry(&self) -> MutexGuard<'_, BTreeMap<String, Background>> {
        unpoisoned(&self.running)
    }

    /// A number no other sign-in of this daemon has.
    pub(crate) fn next_generation(&self) -> u64 {
        self.generation.fetch_add(1, Ordering::Relaxed)
    }

    /// Tells the scheduler that a sign-in has news (its code, or a token stored).
    pub(crate) fn tell(&self) {
        self.news.notify_one();
    }

    /// Returns once a sign-in has its code or has stored a token (at once if one did since
    /// the last call).
    pub async fn news(&self) {
        self.news.notified().await
    }

    /// Counts a device authorization started for `session` (a human is asked to sign in).
    pub(crate) fn count_started(&self, session: &str) {
        *unpoisoned(&self.started)
            .entry(session.to_string())
            .or_default() += 1;
    }

    /// Device authorizations started so far, per session.
    pub fn started(&self) -> BTreeMap<String, u64> {
        unpoisoned(&self.started).clone()
    }

    /// When the next sign-in for `session` may start, while the daemon pauses after one that
    /// ended without a token (the profiles waiting for it are tried again then).
    pub fn next_sign_in_at(&self, session: &str) -> Option<OffsetDateTime> {
        let bg = self.registry();
        let (ended, _) = bg.get(session)?.ended.as_ref()?;
        Some(*ended + SIGN_IN_PAUSE)
    }

    /// Every sign-in this daemon has running or pausing after, by session.
    pub fn waiting(&self) -> Vec<Waiting> {
        self.registry()
            .iter()
            .map(|(name, b)| Waiting {
                session: name.clone(),
                code: b.user_code.clone(),
                ended: b.ended.is_some(),
            })
            .collect()
    }

    /// Records a sign-in of `session` started at `at` on `task`, with its code and end (the
    /// scheduler's tests).
    #[cfg(test)]
    fn record_for_tests(
        &self,
        session: &str,
        at: OffsetDateTime,
        task: tokio::task::AbortHandle,
        user_code: Option<(String, String)>,
        ended: Option<(OffsetDateTime, String)>,
    ) {
        let generation = self.next_generation();
        self.registry().insert(
            session.to_string(),
            Background {
                start_url: String::new(),
                generation,
                task,
                started_at: at,
                user_code,
                ended,
            },
        );
    }

    /// Records a sign-in of `session` that ended without a token at `at` (the scheduler's
    /// tests; needs a runtime).
    #[cfg(test)]
    pub fn ended_for_tests(&self, session: &str, at: OffsetDateTime) {
        let task = tokio::spawn(async {}).abort_handle();
        let why = "the sign-in code expired before it was approved".to_string();
        self.record_for_tests(session, at, task, None, Some((at, why)));
    }

    /// Records a sign-in of `session` running since `at`, with `code` once known (the
    /// scheduler's tests; needs a runtime).
    #[cfg(test)]
    pub fn running_for_tests(
        &self,
        session: &str,
        at: OffsetDateTime,
        code: Option<(&str, &str)>,
    ) -> tokio::task::AbortHandle {
        let task = tokio::spawn(std::future::pending::<()>()).abort_handle();
        let code = code.map(|(u, c)| (u.to_string(), c.to_string()));
        self.record_for_tests(session, at, task.clone(), code, None);
        task
    }

    /// Forgets `session`'s sign-in as if it had stored a token (the scheduler's tests).
    #[cfg(test)]
    pub fn signed_in_for_tests(&self, session: &str) {
        if let Some(b) = self.registry().remove(session) {
            b.task.abort();
        }
        self.tell();
    }
}
