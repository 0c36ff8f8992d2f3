//! The daemon's books, without a runtime: which profiles failed and when each is tried again
//! (capped exponential backoff with jitter, by kind of failure), whether the next pass is
//! forced, and when to wake. The loop in [`super::run_with`] asks it what to do and tells it
//! what happened; every decision here is a plain function of what it is told and the time.

use crate::config::Config;
use crate::refresh::{Outcome, PassOptions, PassReport, Snapshot};
use crate::sources::ErrorKind;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use time::OffsetDateTime;

/// Credentials without an expiry are fetched again this long after their last refresh.
pub(crate) const UNEXPIRING_EVERY: Duration = Duration::from_secs(3600);
/// The longest sleep between two looks at the wall clock.
pub(crate) const MAX_SLEEP: Duration = Duration::from_secs(300);
/// The first retry after a transient failure (network, throttling, 5xx), doubled each time, up
/// to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(30);
const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);
/// A permanent failure (access denied, a bad ARN, a file that cannot be used) is retried
/// slowly: from this, doubled each time, up to [`MAX_PERMANENT_BACKOFF`].
const FIRST_PERMANENT_BACKOFF: Duration = Duration::from_secs(5 * 60);
const MAX_PERMANENT_BACKOFF: Duration = Duration::from_secs(60 * 60);
/// A profile that needs a human to sign in is tried again this long after its sign-in ended
/// without a token — or at once when a token appears in the SSO cache.
const SIGN_IN_RETRY: Duration = Duration::from_secs(10 * 60);
/// How often the SSO cache is looked at while a profile waits for a sign-in.
pub(crate) const SIGN_IN_POLL: Duration = Duration::from_secs(10);
/// At most this much is taken off a due time, so profiles due together spread out.
const MAX_JITTER: Duration = Duration::from_secs(30);
/// A pass takes every profile due within a quarter of its refresh margin (see
/// [`crate::refresh::due::join_window`]): with credentials of a few minutes to an hour and
/// profiles falling due a few seconds apart, each file is rewritten once per batch instead of
/// once per profile, and no credentials are used for less than 3/8 of their lifetime.
pub(crate) const JOIN_DIVISOR: u32 = 4;
/// Consecutive failures after which a profile is reported as failing repeatedly (then again
/// at every power of two: 4, 8, 16, ...), so a failing profile is reported, not flooded.
const REPEATED_FAILURES: u32 = 3;

/// A deterministic spread in `[0, max)` for a name and a time: the same profile fires at the
/// same offset, different profiles at different ones.
pub(crate) fn spread(name: &str, at: OffsetDateTime, max: Duration) -> Duration {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes().chain(at.unix_timestamp().to_le_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let max_ms = max.as_millis().max(1) as u64;
    Duration::from_millis(h % max_ms)
}

/// Consecutive failures of a profile, of what kind, and when to try it again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Backoff {
    pub failures: u32,
    pub retry_at: OffsetDateTime,
    pub kind: ErrorKind,
    /// When the failure happened (a sign-in seen after it ends the wait).
    pub failed_at: OffsetDateTime,
    /// The last message told at `error`/`warn`: the same one again is logged at `debug`.
    pub told: String,
}

/// The delay before retry `failures` (1-based) of a failure of `kind`, +-20% jitter:
/// transient 30 s, 1 min, 2 min, ... 15 min; permanent 5 min, 10 min, ... 1 h; a sign-in
/// needed: 10 min (or sooner, when a token appears).
pub(crate) fn retry_delay(
    kind: ErrorKind,
    name: &str,
    failures: u32,
    now: OffsetDateTime,
) -> Duration {
    let doubling = |first: Duration, max: Duration| {
        first
            .saturating_mul(1u32 << failures.saturating_sub(1).min(10))
            .min(max)
    };
    let base = match kind {
        ErrorKind::Transient | ErrorKind::Throttled => doubling(FIRST_BACKOFF, MAX_BACKOFF),
        ErrorKind::Failed => doubling(FIRST_PERMANENT_BACKOFF, MAX_PERMANENT_BACKOFF),
        ErrorKind::NeedsLogin => SIGN_IN_RETRY,
    };
    let fifth = base / 5;
    base - fifth + spread(name, now, fifth * 2)
}

fn is_repeated_failure(failures: u32) -> bool {
    failures == REPEATED_FAILURES || (failures > REPEATED_FAILURES && failures.is_power_of_two())
}

/// `41m`, `2h05m`, `30s`, for people.
pub(crate) fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, (s % 3600) / 60) {
        (0, 0) => format!("{s}s"),
        (0, m) => format!("{m}m"),
        (h, m) => format!("{h}h{m:02}m"),
    }
}

/// The scheduler's books between passes.
#[derive(Debug, Default)]
pub(crate) struct Schedule {
    /// Profiles that failed, until they succeed again.
    pub backoff: BTreeMap<String, Backoff>,
    /// The next pass refreshes every profile (SIGUSR1).
    force: bool,
    /// The "next refresh in" last logged, so it is told once per change.
    told_next: Option<(String, OffsetDateTime)>,
    /// Per profile with a broken output, the error last told: the same one again is logged
    /// at `debug` (it is found at every pass until someone fixes the file).
    broken_told: BTreeMap<String, String>,
}

impl Schedule {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// The next pass refreshes every profile, due or not.
    pub(crate) fn force_next(&mut self) {
        self.force = true;
    }

    /// Profiles waiting for a sign-in are tried at the next pass.
    pub(crate) fn retry_sign_ins_now(&mut self, now: OffsetDateTime) {
        for b in self
            .backoff
            .values_mut()
            .filter(|b| b.kind == ErrorKind::NeedsLogin)
        {
            b.retry_at = now;
        }
    }

    /// A profile waiting for a sign-in is tried again as soon as a token appears, and one
    /// that failed for good as soon as what it is made from is rewritten (a renewed Roles
    /// Anywhere certificate, a login cache fixed): `seen` tells when the token or files its
    /// chain starts from were last written.
    pub(crate) fn notice_tokens(
        &mut self,
        seen: impl Fn(&str) -> Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) {
        for (name, b) in self.backoff.iter_mut() {
            // A second of slack: file times are coarser than the clock (a token stored while
            // the failing pass ran may carry a time from just before it).
            if matches!(b.kind, ErrorKind::NeedsLogin | ErrorKind::Failed)
                && seen(name).is_some_and(|t| t > b.failed_at - time::Duration::seconds(1))
            {
                b.retry_at = now;
            }
        }
    }

    /// Whether some profile waits for a sign-in.
    pub(crate) fn waits_for_sign_in(&self) -> bool {
        self.backoff
            .values()
            .any(|b| b.kind == ErrorKind::NeedsLogin)
    }

    /// The options of the next pass (which takes the forced flag).
    pub(crate) fn pass_options(
        &mut self,
        now: OffsetDateTime,
        hooks: std::sync::Arc<crate::hooks::Hooks>,
    ) -> PassOptions {
        let force = std::mem::take(&mut self.force);
        let skip: BTreeSet<String> = if force {
            BTreeSet::new()
        } else {
            self.backoff
                .iter()
                .filter(|(_, b)| b.retry_at > now)
                .map(|(n, _)| n.clone())
                .collect()
        };
        PassOptions {
            force,
            unexpiring_every: Some(UNEXPIRING_EVERY),
            skip,
            told: self
                .broken_told
                .iter()
                .map(|(n, m)| (n.clone(), (ErrorKind::Failed, m.clone())))
                .chain(
                    self.backoff
                        .iter()
                        .map(|(n, b)| (n.clone(), (b.kind, b.told.clone()))),
                )
                .collect(),
            hooks: Some(hooks),
            background_sign_ins: true,
            join_divisor: Some(JOIN_DIVISOR),
            ..PassOptions::default()
        }
    }

    /// Books a pass's outcomes: failures back off (a sign-in pause that ends sooner, as
    /// `resumes` tells for a profile, wins), successes clear. `started` is when the pass began.
    pub(crate) fn record(
        &mut self,
        report: &PassReport,
        started: OffsetDateTime,
        now: OffsetDateTime,
        resumes: impl Fn(&str) -> Option<OffsetDateTime>,
    ) {
        for (name, outcome) in &report.outcomes {
            match outcome {
                Outcome::Failed(e) => {
                    let previous = self.backoff.get(name);
                    let same_kind = previous.is_some_and(|b| b.kind == e.kind);
                    let failures = previous.filter(|_| same_kind).map_or(1, |b| b.failures + 1);
                    if is_repeated_failure(failures) && e.kind != ErrorKind::NeedsLogin {
                        tracing::warn!(
                            target: crate::eventlog::EVENT_LOG,
                            event_id = crate::eventlog::ids::REPEATED_FAILURES,
                            profile = %name,
                            failures,
                            "profile `{name}` has failed {failures} times in a row: {}",
                            e.message
                        );
                    }
                    let mut retry_at = now + retry_delay(e.kind, name, failures, now);
                    // Waiting for the pause after a sign-in that ended without a token:
                    // tried again (and the next sign-in started) when the pause ends.
                    if e.kind == ErrorKind::NeedsLogin {
                        if let Some(t) = resumes(name).filter(|t| *t > now) {
                            retry_at = t + time::Duration::seconds(1);
                        }
                    }
                    let at = crate::credentials::format_utc(retry_at);
                    match e.kind {
                        // The sign-in itself is told once, at WARN, with its URL and code.
                        ErrorKind::NeedsLogin if !same_kind => tracing::info!(
                            profile = %name,
                            "waiting for a sign-in (`awscredd login`, `aws sso login` or `aws login`); tried again when one appears in the SSO or login cache, else at {at}"
                        ),
                        ErrorKind::NeedsLogin => {}
                        _ => {
                            tracing::info!(profile = %name, failures, retry_at = %at, "will retry")
                        }
                    }
                    self.backoff.insert(
                        name.clone(),
                        Backoff {
                            failures,
                            retry_at,
                            kind: e.kind,
                            // The pass's start: a token stored while it ran (a background
                            // sign-in ending) counts as seen after it.
                            failed_at: started,
                            told: e.message.clone(),
                        },
                    );
                }
                Outcome::Refreshed { .. } | Outcome::UsedAsSource { .. } => {
                    self.broken_told.remove(name);
                    self.recovered(name);
                }
                // Not a failure to back off from: the profile's other outputs stay fresh.
                Outcome::BrokenOutputs { refreshed, error } => {
                    if refreshed.is_some() {
                        self.recovered(name);
                    }
                    self.broken_told.insert(name.clone(), error.message.clone());
                }
                Outcome::NotDue => {}
            }
        }
    }

    /// A profile fetched again: its backoff ends.
    fn recovered(&mut self, name: &str) {
        if self.backoff.remove(name).is_some() {
            tracing::info!(profile = %name, "recovered");
        }
    }

    /// Forgets the profiles a reload removed.
    pub(crate) fn retain(&mut self, cfg: &Config) {
        self.backoff.retain(|n, _| cfg.profiles.contains_key(n));
        self.broken_told.retain(|n, _| cfg.profiles.contains_key(n));
    }

    /// When to wake (the next profile due or to be retried, with jitter, at most [`MAX_SLEEP`]
    /// away), and the earliest profile due with its time (`None`: nothing is ever due).
    pub(crate) fn next_wake(
        &self,
        cfg: &Config,
        snapshot: &Snapshot,
        now: OffsetDateTime,
    ) -> (OffsetDateTime, Option<(OffsetDateTime, String)>) {
        let mut wake = now + MAX_SLEEP;
        let mut which: Option<(OffsetDateTime, String)> = None;
        for name in cfg.profiles.keys() {
            // Jitter: up to a tenth of the time left, at most MAX_JITTER.
            let due = snapshot.due_at(cfg, name, Some(UNEXPIRING_EVERY)).map(|t| {
                let left: Duration = (t - now).try_into().unwrap_or(Duration::ZERO);
                t - spread(name, t, (left / 10).min(MAX_JITTER))
            });
            let at = match (due, self.backoff.get(name)) {
                (Some(t), Some(b)) => Some(t.max(b.retry_at)),
                (Some(t), None) => Some(t),
                (None, Some(b)) => Some(b.retry_at),
                (None, None) => None,
            };
            if let Some(t) = at {
                if which.as_ref().is_none_or(|(w, _)| t < *w) {
                    which = Some((t, name.clone()));
                }
                wake = wake.min(t);
            }
        }
        if self.waits_for_sign_in() {
            // While a profile waits for a sign-in, look at the SSO cache often.
            wake = wake.min(now + SIGN_IN_POLL);
        }
        (wake, which)
    }

    /// Logs when the next profile is due, once per change (not at every look at the cache).
    pub(crate) fn tell_next(
        &mut self,
        next: Option<(OffsetDateTime, String)>,
        now: OffsetDateTime,
    ) {
        let Some((at, name)) = next else {
            return;
        };
        let left: Duration = (at - now).try_into().unwrap_or(Duration::ZERO);
        if self.told_next.as_ref() != Some(&(name.clone(), at)) {
            tracing::info!("next refresh in {} ({name})", human_duration(left));
            self.told_next = Some((name, at));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::SourceError;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-01-01 00:00 UTC);

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter() {
        let d1 = retry_delay(ErrorKind::Transient, "p", 1, NOW);
        assert!(
            d1 >= Duration::from_secs(24) && d1 <= Duration::from_secs(36),
            "{d1:?}"
        );
        let d3 = retry_delay(ErrorKind::Transient, "p", 3, NOW);
        assert!(
            d3 >= Duration::from_secs(96) && d3 <= Duration::from_secs(144),
            "{d3:?}"
        );
        let d20 = retry_delay(ErrorKind::Transient, "p", 20, NOW);
        assert!(d20 <= Duration::from_secs(18 * 60) && d20 >= Duration::from_secs(12 * 60));
    }

    #[test]
    fn repeated_failures_are_reported_at_3_then_at_powers_of_two() {
        let reported: Vec<u32> = (1..=40).filter(|&f| is_repeated_failure(f)).collect();
        assert_eq!(reported, [3, 4, 8, 16, 32]);
    }

    #[test]
    fn spread_is_bounded_and_differs_between_profiles() {
        let a = spread("a", NOW, MAX_JITTER);
        let b = spread("b", NOW, MAX_JITTER);
        assert!(a < MAX_JITTER && b < MAX_JITTER);
        assert_ne!(a, b);
        assert_eq!(a, spread("a", NOW, MAX_JITTER));
    }

    fn failed(kind: ErrorKind) -> Outcome {
        Outcome::Failed(SourceError {
            kind,
            message: "nope".into(),
        })
    }

    fn report(outcomes: &[(&str, Outcome)]) -> PassReport {
        PassReport {
            outcomes: outcomes
                .iter()
                .map(|(n, o)| (n.to_string(), o.clone()))
                .collect(),
        }
    }

    /// Issue 27 item 6: a broken output is no failure to back off from (the profile's other
    /// outputs must stay fresh), and it is told once per message.
    #[test]
    fn a_broken_output_does_not_back_off_and_is_told_once() {
        let mut s = Schedule::new();
        let hooks = crate::hooks::Hooks::new();
        s.record(
            &report(&[("a", failed(ErrorKind::Transient))]),
            NOW,
            NOW,
            |_| None,
        );
        let broken = |refreshed| Outcome::BrokenOutputs {
            refreshed,
            error: SourceError::failed("bad:2: cannot parse"),
        };
        // Not due, found broken: the source's backoff stays.
        s.record(&report(&[("a", broken(None))]), NOW, NOW, |_| None);
        assert!(s.pass_options(NOW, hooks.clone()).skip.contains("a"));
        // Fetched and written to the others: no backoff, and the message is told.
        s.record(&report(&[("a", broken(Some(None)))]), NOW, NOW, |_| None);
        let opts = s.pass_options(NOW, hooks.clone());
        assert!(s.backoff.is_empty() && opts.skip.is_empty());
        assert_eq!(opts.told["a"].1, "bad:2: cannot parse");
        // Written everywhere again: forgotten.
        s.record(
            &report(&[("a", Outcome::Refreshed { expires: None })]),
            NOW,
            NOW,
            |_| None,
        );
        assert!(s.pass_options(NOW, hooks).told.is_empty());
    }

    #[test]
    fn a_failure_is_skipped_until_its_retry_and_a_success_clears_it() {
        let mut s = Schedule::new();
        let hooks = crate::hooks::Hooks::new();
        s.record(
            &report(&[("a", failed(ErrorKind::Transient))]),
            NOW,
            NOW,
            |_| None,
        );
        let retry = s.backoff["a"].retry_at;
        assert!(retry > NOW + time::Duration::seconds(20));
        assert!(s.pass_options(NOW, hooks.clone()).skip.contains("a"));
        assert!(!s.pass_options(retry, hooks.clone()).skip.contains("a"));
        // The same kind again counts up; another kind starts over.
        s.record(
            &report(&[("a", failed(ErrorKind::Transient))]),
            NOW,
            NOW,
            |_| None,
        );
        assert_eq!(s.backoff["a"].failures, 2);
        s.record(
            &report(&[("a", failed(ErrorKind::Failed))]),
            NOW,
            NOW,
            |_| None,
        );
        assert_eq!(s.backoff["a"].failures, 1);
        // Forced: nothing skipped, once.
        s.force_next();
        assert!(s.pass_options(NOW, hooks.clone()).force);
        assert!(s.pass_options(NOW, hooks.clone()).skip.contains("a"));
        s.record(
            &report(&[(
                "a",
                Outcome::Refreshed {
                    expires: Some(NOW + time::Duration::HOUR),
                },
            )]),
            NOW,
            NOW,
            |_| None,
        );
        assert!(s.backoff.is_empty());
    }

    #[test]
    fn a_sign_in_wait_ends_when_a_token_is_seen_or_the_pause_ends() {
        let mut s = Schedule::new();
        let resumes = NOW + time::Duration::minutes(3);
        s.record(
            &report(&[("sso", failed(ErrorKind::NeedsLogin))]),
            NOW,
            NOW,
            |_| Some(resumes),
        );
        assert!(s.waits_for_sign_in());
        // The pause after an ended sign-in (3 min) wins over the 10-minute wait.
        assert_eq!(
            s.backoff["sso"].retry_at,
            resumes + time::Duration::seconds(1)
        );
        // A token written before the failure does not end the wait; one written after does.
        let later = NOW + time::Duration::seconds(30);
        s.notice_tokens(|_| Some(NOW - time::Duration::seconds(5)), later);
        assert_ne!(s.backoff["sso"].retry_at, later);
        s.notice_tokens(|_| Some(NOW + time::Duration::seconds(2)), later);
        assert_eq!(s.backoff["sso"].retry_at, later);
    }

    /// Found by the third adversarial pass: a Roles Anywhere certificate that had expired
    /// (a permanent failure: 5 min, 10 min, ... 1 h) and was then renewed was not tried again
    /// until its backoff ran out, up to an hour later, with no credentials meanwhile.
    #[test]
    fn a_permanent_failure_is_tried_again_once_its_input_files_are_rewritten() {
        let mut s = Schedule::new();
        for _ in 0..5 {
            s.record(
                &report(&[("server", failed(ErrorKind::Failed))]),
                NOW,
                NOW,
                |_| None,
            );
        }
        assert!(s.backoff["server"].retry_at > NOW + time::Duration::minutes(45));
        let later = NOW + time::Duration::minutes(2);
        // Files older than the failure: the wait goes on.
        s.notice_tokens(|_| Some(NOW - time::Duration::minutes(1)), later);
        assert_ne!(s.backoff["server"].retry_at, later);
        // Renewed after it: tried at the next pass.
        s.notice_tokens(|_| Some(NOW + time::Duration::minutes(1)), later);
        assert_eq!(s.backoff["server"].retry_at, later);
        assert!(!s
            .pass_options(later, crate::hooks::Hooks::new())
            .skip
            .contains("server"));
    }
}
