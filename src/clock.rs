//! Time: the one place awscredd reads the wall clock.
//!
//! The pass, the due logic and the daemon's scheduler take a [`Clock`], so tests can run the
//! scheduler on tokio's paused time ([`TokioClock`]) and make the wall clock jump as it does
//! when a machine is suspended. Edges with nothing to inject (`status`, one `credential_process`
//! output) read [`now`]. `clippy.toml` bans `OffsetDateTime::now_utc` and `SystemTime::now`
//! everywhere else, so the seam cannot be bypassed.

use time::OffsetDateTime;

/// Where the time comes from.
pub trait Clock: Send + Sync {
    /// The wall-clock time now, in UTC.
    fn now(&self) -> OffsetDateTime;
}

/// The machine's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)]
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// The wall clock now (for the edges that take no [`Clock`]).
pub(crate) fn now() -> OffsetDateTime {
    SystemClock.now()
}

/// A clock that follows tokio's time from `start` (so `tokio::time::pause()`/`advance()` move
/// it), and whose wall clock can [`jump`](TokioClock::jump) without tokio's monotonic time
/// moving — a machine waking from suspend.
#[cfg(test)]
#[derive(Debug)]
pub(crate) struct TokioClock {
    start: OffsetDateTime,
    origin: tokio::time::Instant,
    jumped: std::sync::Mutex<time::Duration>,
}

#[cfg(test)]
impl TokioClock {
    pub(crate) fn new(start: OffsetDateTime) -> Self {
        TokioClock {
            start,
            origin: tokio::time::Instant::now(),
            jumped: std::sync::Mutex::new(time::Duration::ZERO),
        }
    }

    /// Moves the wall clock by `by`, and only the wall clock.
    pub(crate) fn jump(&self, by: time::Duration) {
        let mut j = self.jumped.lock().unwrap_or_else(|e| e.into_inner());
        *j += by;
    }
}

#[cfg(test)]
impl Clock for TokioClock {
    fn now(&self) -> OffsetDateTime {
        let elapsed = tokio::time::Instant::now() - self.origin;
        let jumped = *self.jumped.lock().unwrap_or_else(|e| e.into_inner());
        self.start + elapsed + jumped
    }
}
