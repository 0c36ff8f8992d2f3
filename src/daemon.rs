//! The daemon's scheduler: refresh passes (the same pass `once` runs) on a schedule.
//!
//! After each pass it computes when the next profile becomes due — less than `refresh_before`
//! (or half the lifetime) left, a file lacking a profile, hourly for credentials without an
//! expiry — spreads those times with a little jitter, and sleeps until the earliest, waking at
//! least every five minutes to re-check the wall clock (monotonic timers stop while a machine
//! sleeps). A profile that failed is retried with capped exponential backoff and jitter, and is
//! skipped until then; the others go on. Stop, reload and refresh-now requests arrive as
//! [`Control`] messages: stopping interrupts a pass at once (files are only ever replaced
//! whole), the others are handled between passes.

use crate::config::{self, Config};
use crate::refresh::{self, Outcome, PassOptions, Snapshot};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::{mpsc, watch};

/// Credentials without an expiry are fetched again this long after their last refresh.
pub const UNEXPIRING_EVERY: Duration = Duration::from_secs(3600);
/// The longest sleep between two looks at the wall clock.
const MAX_SLEEP: Duration = Duration::from_secs(300);
/// The first retry after a failure, doubled each time, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(30);
const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);
/// At most this much is taken off a due time, so profiles due together spread out.
const MAX_JITTER: Duration = Duration::from_secs(30);

/// What the signal handlers (or the Windows service controller) ask of the daemon, besides
/// stopping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// Re-read the config (SIGHUP); an invalid one is logged and the old one kept.
    Reload,
    /// Refresh every profile now (SIGUSR1).
    RefreshNow,
}

/// A deterministic spread in `[0, max)` for a name and a time: the same profile fires at the
/// same offset, different profiles at different ones.
fn spread(name: &str, at: OffsetDateTime, max: Duration) -> Duration {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes().chain(at.unix_timestamp().to_le_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let max_ms = max.as_millis().max(1) as u64;
    Duration::from_millis(h % max_ms)
}

/// Consecutive failures of a profile and when to try it again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Backoff {
    failures: u32,
    retry_at: OffsetDateTime,
}

/// The delay before retry `failures` (1-based): 30 s, 1 min, 2 min, ... 15 min, +-20% jitter.
fn backoff_delay(name: &str, failures: u32, now: OffsetDateTime) -> Duration {
    let base = FIRST_BACKOFF
        .saturating_mul(1u32 << failures.saturating_sub(1).min(10))
        .min(MAX_BACKOFF);
    let fifth = base / 5;
    base - fifth + spread(name, now, fifth * 2)
}

/// Consecutive failures after which a profile is reported as failing repeatedly (then again
/// at every power of two: 4, 8, 16, ...), so a failing profile is reported, not flooded.
const REPEATED_FAILURES: u32 = 3;

fn is_repeated_failure(failures: u32) -> bool {
    failures == REPEATED_FAILURES || (failures > REPEATED_FAILURES && failures.is_power_of_two())
}

/// Runs passes until `stop` turns true. `path` is re-read on [`Control::Reload`], and a valid
/// new config is published on `published` (for the credentials server).
/// `on_first_pass` is called once, after the first pass has written what it could (systemd
/// readiness).
pub async fn run(
    path: PathBuf,
    mut cfg: Config,
    mut stop: watch::Receiver<bool>,
    mut controls: mpsc::UnboundedReceiver<Control>,
    published: watch::Sender<Config>,
    mut on_first_pass: impl FnMut(),
) {
    let mut backoff: BTreeMap<String, Backoff> = BTreeMap::new();
    let mut force = false;
    let mut first = true;
    loop {
        let now = OffsetDateTime::now_utc();
        let skip: BTreeSet<String> = if force {
            BTreeSet::new()
        } else {
            backoff
                .iter()
                .filter(|(_, b)| b.retry_at > now)
                .map(|(n, _)| n.clone())
                .collect()
        };
        let opts = PassOptions {
            force,
            unexpiring_every: Some(UNEXPIRING_EVERY),
            skip,
            ..PassOptions::default()
        };
        force = false;
        let report = tokio::select! {
            r = refresh::run_pass(&cfg, &opts) => r,
            _ = stop.wait_for(|s| *s) => return,
        };
        let now = OffsetDateTime::now_utc();
        if let Ok(report) = &report {
            for (name, outcome) in &report.outcomes {
                match outcome {
                    Outcome::Failed(message) => {
                        let failures = backoff.get(name).map_or(1, |b| b.failures + 1);
                        if is_repeated_failure(failures) {
                            tracing::warn!(
                                target: crate::eventlog::EVENT_LOG,
                                event_id = crate::eventlog::ids::REPEATED_FAILURES,
                                profile = %name,
                                failures,
                                "profile `{name}` has failed {failures} times in a row: {message}"
                            );
                        }
                        let retry_at = now + backoff_delay(name, failures, now);
                        tracing::info!(
                            profile = %name,
                            failures,
                            retry_at = %crate::credentials::format_utc(retry_at),
                            "will retry"
                        );
                        backoff.insert(name.clone(), Backoff { failures, retry_at });
                    }
                    Outcome::Refreshed { .. } | Outcome::UsedAsSource => {
                        backoff.remove(name);
                    }
                    Outcome::NotDue => {}
                }
            }
        }
        if first {
            first = false;
            on_first_pass();
        }

        let wake = next_wake(&cfg, &backoff, now).await;
        let sleep = (wake - OffsetDateTime::now_utc())
            .try_into()
            .unwrap_or(Duration::ZERO)
            .clamp(Duration::from_secs(1), MAX_SLEEP);
        tracing::debug!(
            seconds = sleep.as_secs(),
            "sleeping until the next profile is due"
        );
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            _ = stop.wait_for(|s| *s) => return,
            c = controls.recv() => match c {
                None => {}
                Some(Control::RefreshNow) => {
                    tracing::info!("refreshing every profile now (SIGUSR1)");
                    force = true;
                }
                Some(Control::Reload) => match config::load(&path, &crate::paths::process_env) {
                    Ok((new, report)) => {
                        for line in report.lines() {
                            tracing::warn!("{line}");
                        }
                        tracing::info!(config = %path.display(), "config reloaded");
                        backoff.retain(|n, _| new.profiles.contains_key(n));
                        if new.server.as_ref().map(|s| s.listen) != cfg.server.as_ref().map(|s| s.listen) {
                            tracing::warn!("a change of [server] takes effect at the next restart");
                        }
                        published.send_replace(new.clone());
                        cfg = new;
                    }
                    Err(e) => {
                        for line in e.to_string().lines() {
                            tracing::error!("{line}");
                        }
                        tracing::error!(config = %path.display(), "the new config is invalid; the old one keeps running");
                    }
                },
            },
        }
    }
}

/// When the next profile is due (or is to be retried), with jitter.
async fn next_wake(
    cfg: &Config,
    backoff: &BTreeMap<String, Backoff>,
    now: OffsetDateTime,
) -> OffsetDateTime {
    let snapshot = Snapshot::read(cfg).await;
    let mut wake = now + MAX_SLEEP;
    for name in cfg.profiles.keys() {
        // Jitter: up to a tenth of the time left, at most MAX_JITTER.
        let due = snapshot.due_at(cfg, name, Some(UNEXPIRING_EVERY)).map(|t| {
            let left: Duration = (t - now).try_into().unwrap_or(Duration::ZERO);
            t - spread(name, t, (left / 10).min(MAX_JITTER))
        });
        let at = match (due, backoff.get(name)) {
            (Some(t), Some(b)) => Some(t.max(b.retry_at)),
            (Some(t), None) => Some(t),
            (None, Some(b)) => Some(b.retry_at),
            (None, None) => None,
        };
        if let Some(t) = at {
            wake = wake.min(t);
        }
    }
    wake
}

/// Tells systemd (`Type=notify`) that the service is ready: `READY=1` on `$NOTIFY_SOCKET`.
pub fn notify_ready() {
    #[cfg(unix)]
    {
        let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
            return;
        };
        if let Err(e) = send_notify(&target, b"READY=1\nSTATUS=first refresh pass done\n") {
            tracing::warn!("cannot notify systemd: {e}");
        }
    }
}

#[cfg(unix)]
fn send_notify(target: &std::ffi::OsStr, msg: &[u8]) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::net::UnixDatagram;
    let sock = UnixDatagram::unbound()?;
    let bytes = target.as_bytes();
    if let Some(name) = bytes.strip_prefix(b"@") {
        #[cfg(target_os = "linux")]
        {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            sock.send_to_addr(msg, &addr)?;
            return Ok(());
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = name;
            return Err(std::io::Error::other("abstract sockets need Linux"));
        }
    }
    sock.send_to(msg, std::path::Path::new(target))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter() {
        let now = datetime!(2026-01-01 00:00 UTC);
        let d1 = backoff_delay("p", 1, now);
        assert!(
            d1 >= Duration::from_secs(24) && d1 <= Duration::from_secs(36),
            "{d1:?}"
        );
        let d3 = backoff_delay("p", 3, now);
        assert!(
            d3 >= Duration::from_secs(96) && d3 <= Duration::from_secs(144),
            "{d3:?}"
        );
        let d20 = backoff_delay("p", 20, now);
        assert!(d20 <= Duration::from_secs(18 * 60) && d20 >= Duration::from_secs(12 * 60));
    }

    #[test]
    fn repeated_failures_are_reported_at_3_then_at_powers_of_two() {
        let reported: Vec<u32> = (1..=40).filter(|&f| is_repeated_failure(f)).collect();
        assert_eq!(reported, [3, 4, 8, 16, 32]);
    }

    #[test]
    fn spread_is_bounded_and_differs_between_profiles() {
        let t = datetime!(2026-01-01 00:00 UTC);
        let a = spread("a", t, MAX_JITTER);
        let b = spread("b", t, MAX_JITTER);
        assert!(a < MAX_JITTER && b < MAX_JITTER);
        assert_ne!(a, b);
        assert_eq!(a, spread("a", t, MAX_JITTER));
    }
}
