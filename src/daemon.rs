//! The daemon's scheduler: refresh passes (the same pass `once` runs) on a schedule.
//!
//! After each pass it computes when the next profile becomes due — less than `refresh_before`
//! (or half the lifetime) left, a file lacking a profile, hourly for credentials without an
//! expiry — spreads those times with a little jitter, and sleeps until the earliest, waking at
//! least every five minutes to re-check the wall clock (monotonic timers stop while a machine
//! sleeps). A profile that failed is retried with capped exponential backoff and jitter, and is
//! skipped until then; the others go on. Stop, reload and refresh-now requests arrive as
//! [`Control`] messages: stopping interrupts a pass at once (files are only ever replaced
//! whole), the others are handled between passes. With systemd's watchdog asked for, the loop
//! pings it ([`Watchdog`]) while it sleeps and while a pass runs.

use crate::clock::{Clock, SystemClock};
use crate::config::{self, Config};
use crate::refresh::{self, Fetcher, Outcome, PassOptions, Snapshot, Sources};
use crate::sources::sso::session::LoginMode;
use crate::sources::ErrorKind;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::{mpsc, watch};

/// Credentials without an expiry are fetched again this long after their last refresh.
pub const UNEXPIRING_EVERY: Duration = Duration::from_secs(3600);
/// The longest sleep between two looks at the wall clock.
const MAX_SLEEP: Duration = Duration::from_secs(300);
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
const SIGN_IN_POLL: Duration = Duration::from_secs(10);
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

/// Consecutive failures of a profile, of what kind, and when to try it again.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Backoff {
    failures: u32,
    retry_at: OffsetDateTime,
    kind: ErrorKind,
    /// When the failure happened (a sign-in seen after it ends the wait).
    failed_at: OffsetDateTime,
    /// The last message told at `error`/`warn`: the same one again is logged at `debug`.
    told: String,
}

/// The delay before retry `failures` (1-based) of a failure of `kind`, +-20% jitter:
/// transient 30 s, 1 min, 2 min, ... 15 min; permanent 5 min, 10 min, ... 1 h; a sign-in
/// needed: 10 min (or sooner, when a token appears).
fn retry_delay(kind: ErrorKind, name: &str, failures: u32, now: OffsetDateTime) -> Duration {
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

/// When the SSO token a profile's chain starts from was last written, if it has one: a token
/// appearing (`aws sso login`, `awscredd login`) ends a profile's wait for a sign-in.
pub type SignInSeen = dyn Fn(&Config, &str) -> Option<OffsetDateTime> + Send + Sync;

/// Makes the fetcher of a pass for a config.
pub type FetcherFor = dyn Fn(&Config) -> Arc<dyn Fetcher> + Send + Sync;

/// What the scheduler runs on: where the time comes from, how profiles are fetched, how a
/// sign-in is noticed, and what it tells operators. [`Engine::real`] is the daemon's; tests
/// give their own.
#[derive(Clone)]
pub struct Engine {
    pub clock: Arc<dyn Clock>,
    /// The fetcher for a config (made anew for each pass, since a reload changes the config).
    pub fetcher: Arc<FetcherFor>,
    pub sign_in_seen: Arc<SignInSeen>,
    /// Updated after every pass, and beaten while the loop turns (`/metrics`, `/healthz`,
    /// `/readyz`).
    pub metrics: Arc<crate::metrics::Metrics>,
}

impl Engine {
    /// The real sources (signing in unattended: URL and code logged, `login_command` run), the
    /// wall clock, and the SSO token cache's file times.
    pub fn real() -> Self {
        Engine {
            clock: Arc::new(SystemClock),
            fetcher: Arc::new(|cfg: &Config| {
                let login = LoginMode::Unattended {
                    login_command: cfg.daemon.login_command.clone(),
                    background: true,
                };
                Arc::new(Sources::new(cfg, login)) as Arc<dyn Fetcher>
            }),
            sign_in_seen: Arc::new(token_written_at),
            metrics: Arc::default(),
        }
    }
}

/// When the token file of `profile`'s SSO session was last modified.
fn token_written_at(cfg: &Config, profile: &str) -> Option<OffsetDateTime> {
    let session = cfg.root_sso_session(profile)?;
    let cache =
        crate::sources::sso::cache::TokenCache::default_location(&crate::paths::process_env)?;
    let modified = std::fs::metadata(cache.token_path(session))
        .ok()?
        .modified()
        .ok()?;
    Some(OffsetDateTime::from(modified))
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
    cfg: Config,
    stop: watch::Receiver<bool>,
    controls: mpsc::UnboundedReceiver<Control>,
    published: watch::Sender<Config>,
    on_first_pass: impl FnMut(),
) {
    run_with(
        Engine::real(),
        path,
        cfg,
        stop,
        controls,
        published,
        on_first_pass,
    )
    .await
}

/// [`run`] on an [`Engine`] of the caller's.
pub async fn run_with(
    engine: Engine,
    path: PathBuf,
    mut cfg: Config,
    mut stop: watch::Receiver<bool>,
    mut controls: mpsc::UnboundedReceiver<Control>,
    published: watch::Sender<Config>,
    mut on_first_pass: impl FnMut(),
) {
    let clock = engine.clock.clone();
    let hooks = crate::hooks::Hooks::new();
    let mut backoff: BTreeMap<String, Backoff> = BTreeMap::new();
    let mut told_next: Option<(String, OffsetDateTime)> = None;
    let mut force = false;
    let mut first = true;
    let mut watchdog = Watchdog::from_env();
    loop {
        let now = clock.now();
        // A profile waiting for a sign-in is tried again as soon as a token appears.
        for (name, b) in backoff.iter_mut() {
            // A second of slack: file times are coarser than the clock (a token stored while
            // the failing pass ran may carry a time from just before it).
            if b.kind == ErrorKind::NeedsLogin
                && (engine.sign_in_seen)(&cfg, name)
                    .is_some_and(|t| t > b.failed_at - time::Duration::seconds(1))
            {
                b.retry_at = now;
            }
        }
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
            told: backoff
                .iter()
                .map(|(n, b)| (n.clone(), b.told.clone()))
                .collect(),
            hooks: Some(hooks.clone()),
            ..PassOptions::default()
        };
        force = false;
        let fetcher = (engine.fetcher)(&cfg);
        let started = now;
        let pass =
            watchdog.while_running(refresh::run_pass_with(&cfg, &opts, fetcher.clone(), now));
        let report = tokio::select! {
            r = engine.metrics.alive_pass(&cfg, &*clock, pass) => r,
            _ = stop.wait_for(|s| *s) => return,
        };
        // SSO tokens are renewed before they expire, whether or not a profile is due.
        let upkeep_at = tokio::select! {
            at = watchdog.while_running(fetcher.upkeep(clock.now())) => at,
            _ = stop.wait_for(|s| *s) => return,
        };
        let now = clock.now();
        if let Ok(report) = &report {
            for (name, outcome) in &report.outcomes {
                match outcome {
                    Outcome::Failed(e) => {
                        let previous = backoff.get(name);
                        let same_kind = previous.is_some_and(|b| b.kind == e.kind);
                        let failures = previous.filter(|_| same_kind).map_or(1, |b| b.failures + 1);
                        if is_repeated_failure(failures) {
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
                            let resumes = cfg
                                .root_sso_session(name)
                                .and_then(crate::sources::sso::session::next_sign_in_at)
                                .filter(|t| *t > now);
                            if let Some(t) = resumes {
                                retry_at = t + time::Duration::seconds(1);
                            }
                        }
                        let at = crate::credentials::format_utc(retry_at);
                        match e.kind {
                            ErrorKind::NeedsLogin if !same_kind => tracing::warn!(
                                profile = %name,
                                "waiting for a sign-in (`awscredd login`, or `aws sso login`); tried again when a token appears in the SSO cache, else at {at}"
                            ),
                            _ => {
                                tracing::info!(profile = %name, failures, retry_at = %at, "will retry")
                            }
                        }
                        backoff.insert(
                            name.clone(),
                            Backoff {
                                failures,
                                retry_at,
                                kind: e.kind,
                                // The pass's start: a token stored while it ran (a
                                // background sign-in ending) counts as seen after it.
                                failed_at: started,
                                told: e.message.clone(),
                            },
                        );
                    }
                    Outcome::Refreshed { .. } | Outcome::UsedAsSource { .. } => {
                        if backoff.remove(name).is_some() {
                            tracing::info!(profile = %name, "recovered");
                        }
                    }
                    Outcome::NotDue => {}
                }
            }
        }
        engine
            .metrics
            .after_pass(&cfg, report.as_ref().ok(), now)
            .await;
        if first {
            first = false;
            on_first_pass();
            watchdog.arm();
        }

        let (mut wake, next) = next_wake(&cfg, &backoff, now).await;
        if let Some(at) = upkeep_at {
            wake = wake.min(at);
        }
        // While a profile waits for a sign-in, look at the SSO cache often.
        if backoff.values().any(|b| b.kind == ErrorKind::NeedsLogin) {
            wake = wake.min(now + SIGN_IN_POLL);
        }
        if let Some((at, name)) = &next {
            let left: Duration = (*at - now).try_into().unwrap_or(Duration::ZERO);
            // Told once per change, not at every look at the SSO cache.
            if told_next.as_ref() != Some(&(name.clone(), *at)) {
                tracing::info!("next refresh in {} ({name})", human_duration(left));
                told_next = Some((name.clone(), *at));
            }
        }
        let sleep = (wake - clock.now())
            .try_into()
            .unwrap_or(Duration::ZERO)
            .clamp(Duration::from_secs(1), MAX_SLEEP);
        tracing::debug!(
            seconds = sleep.as_secs(),
            "sleeping until the next profile is due"
        );
        tokio::select! {
            _ = engine.metrics.alive(watchdog.while_running(tokio::time::sleep(sleep))) => {}
            // A background sign-in stored its token: the profiles waiting for one are tried
            // at once (not through the token file's time, which the file system may have
            // rounded to before the pass that found them waiting).
            _ = crate::sources::sso::session::signed_in() => {
                for b in backoff.values_mut().filter(|b| b.kind == ErrorKind::NeedsLogin) {
                    b.retry_at = clock.now();
                }
            }
            // One has its URL and code: the profiles waiting for it are tried again (no call
            // is made), so that what they record says what to open and enter.
            _ = crate::sources::sso::session::sign_in_started() => {
                for b in backoff.values_mut().filter(|b| b.kind == ErrorKind::NeedsLogin) {
                    b.retry_at = clock.now();
                }
            }
            _ = stop.wait_for(|s| *s) => return,
            c = controls.recv() => {
                // Requests that arrived meanwhile (during a pass, or a burst of signals) merge
                // into one: at most one reload and one forced pass.
                let mut pending: Vec<Control> = c.into_iter().collect();
                while let Ok(more) = controls.try_recv() {
                    pending.push(more);
                }
                if pending.contains(&Control::Reload) {
                    reload(&path, &mut cfg, &mut backoff, &published);
                }
                if pending.contains(&Control::RefreshNow) {
                    tracing::info!("refreshing every profile now (SIGUSR1)");
                    force = true;
                }
            }
        }
    }
}

/// Re-reads the config at `path`; a valid one replaces `cfg` (and is published), an invalid one
/// is logged and the old one kept.
fn reload(
    path: &std::path::Path,
    cfg: &mut Config,
    backoff: &mut BTreeMap<String, Backoff>,
    published: &watch::Sender<Config>,
) {
    match config::load(path, &crate::paths::process_env) {
        Ok((new, report)) => {
            for line in report.lines() {
                tracing::warn!("{line}");
            }
            tracing::info!(config = %path.display(), "config reloaded");
            backoff.retain(|n, _| new.profiles.contains_key(n));
            if new.server.as_ref().map(|s| s.listen) != cfg.server.as_ref().map(|s| s.listen) {
                tracing::warn!("a change of [server] takes effect at the next restart");
            }
            if new.metrics.as_ref().map(|m| m.listen) != cfg.metrics.as_ref().map(|m| m.listen) {
                tracing::warn!("a change of [metrics] takes effect at the next restart");
            }
            published.send_replace(new.clone());
            *cfg = new;
        }
        Err(e) => {
            for line in e.to_string().lines() {
                tracing::error!("{line}");
            }
            tracing::error!(config = %path.display(), "the new config is invalid; the old one keeps running");
        }
    }
}

/// `41m`, `2h05m`, `30s`, for people.
fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, (s % 3600) / 60) {
        (0, 0) => format!("{s}s"),
        (0, m) => format!("{m}m"),
        (h, m) => format!("{h}h{m:02}m"),
    }
}

/// When to wake (the next profile due or to be retried, with jitter, at most [`MAX_SLEEP`]
/// away), and the earliest profile due with its time (`None`: nothing is ever due).
async fn next_wake(
    cfg: &Config,
    backoff: &BTreeMap<String, Backoff>,
    now: OffsetDateTime,
) -> (OffsetDateTime, Option<(OffsetDateTime, String)>) {
    let snapshot = Snapshot::read(cfg).await;
    let mut wake = now + MAX_SLEEP;
    let mut which: Option<(OffsetDateTime, String)> = None;
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
            if which.as_ref().is_none_or(|(w, _)| t < *w) {
                which = Some((t, name.clone()));
            }
            wake = wake.min(t);
        }
    }
    (wake, which)
}

/// Tells systemd (`Type=notify`) that the service is ready: `READY=1` on `$NOTIFY_SOCKET`.
pub fn notify_ready() {
    #[cfg(unix)]
    {
        let Some(target) = crate::paths::process_env("NOTIFY_SOCKET").map(std::ffi::OsString::from)
        else {
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

/// systemd's watchdog (`WatchdogSec=` in the unit): when `$WATCHDOG_USEC` is set, and
/// `$WATCHDOG_PID` is unset or ours, `WATCHDOG=1` goes to `$NOTIFY_SOCKET` every third of that
/// interval (the contract says at least every half; the third leaves room for a busy machine).
/// The pings come from the scheduler loop itself, through [`Watchdog::while_running`] around
/// its sleeps and passes, so a loop that stops turning is restarted by systemd. Silent until
/// [`Watchdog::arm`], which follows `READY=1`.
pub struct Watchdog {
    /// Where to ping and how often; `None`: no watchdog was asked for.
    target: Option<(std::ffi::OsString, Duration)>,
    /// When the next ping is due; `None` until armed.
    next: Option<tokio::time::Instant>,
    /// A failed ping is logged once, not every few seconds.
    warned: bool,
}

impl Watchdog {
    /// The watchdog systemd asked for in this process's environment, if any.
    pub fn from_env() -> Self {
        Self::from_vars(
            crate::paths::process_env("NOTIFY_SOCKET").map(std::ffi::OsString::from),
            crate::paths::process_env("WATCHDOG_USEC").as_deref(),
            crate::paths::process_env("WATCHDOG_PID").as_deref(),
            std::process::id(),
        )
    }

    fn from_vars(
        socket: Option<std::ffi::OsString>,
        usec: Option<&str>,
        pid: Option<&str>,
        own_pid: u32,
    ) -> Self {
        let every = usec
            .and_then(|u| u.trim().parse::<u64>().ok())
            .filter(|&u| u > 0)
            .map(|u| (Duration::from_micros(u) / 3).max(Duration::from_millis(10)));
        let ours = pid.is_none_or(|p| p.trim().parse::<u32>().ok() == Some(own_pid));
        let target = match (socket, every) {
            (Some(s), Some(every)) if ours && !s.is_empty() => Some((s, every)),
            _ => None,
        };
        Watchdog {
            target,
            next: None,
            warned: false,
        }
    }

    /// How often it pings, if a watchdog was asked for.
    pub fn interval(&self) -> Option<Duration> {
        self.target.as_ref().map(|(_, every)| *every)
    }

    /// Starts pinging, now and then every interval (call it once `READY=1` is sent).
    pub fn arm(&mut self) {
        if self.target.is_some() && self.next.is_none() {
            self.next = Some(tokio::time::Instant::now());
        }
    }

    /// Runs `work` to its end, pinging whenever a ping falls due meanwhile.
    pub async fn while_running<F: std::future::Future>(&mut self, work: F) -> F::Output {
        tokio::pin!(work);
        loop {
            let Some(next) = self.next else {
                return work.await;
            };
            tokio::select! {
                out = &mut work => return out,
                _ = tokio::time::sleep_until(next) => self.ping(),
            }
        }
    }

    fn ping(&mut self) {
        let Some((socket, every)) = &self.target else {
            return;
        };
        #[cfg(unix)]
        if let Err(e) = send_notify(socket, b"WATCHDOG=1\n") {
            if !self.warned {
                tracing::warn!("cannot ping the systemd watchdog: {e}");
                self.warned = true;
            }
        }
        #[cfg(not(unix))]
        let _ = (socket, self.warned);
        self.next = Some(tokio::time::Instant::now() + *every);
    }
}

#[cfg(test)]
#[path = "daemon_schedule_tests.rs"]
mod schedule_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn the_watchdog_pings_every_third_of_watchdog_usec_for_its_own_pid_only() {
        let sock = || Some(std::ffi::OsString::from("/run/notify"));
        let w = Watchdog::from_vars(sock(), Some("60000000"), None, 42);
        assert_eq!(w.interval(), Some(Duration::from_secs(20)));
        let w = Watchdog::from_vars(sock(), Some("60000000"), Some("42"), 42);
        assert_eq!(w.interval(), Some(Duration::from_secs(20)));
        // Another process's watchdog (a parent's variables inherited), none asked for, a bad
        // or zero interval, or nowhere to send: no pings.
        for (socket, usec, pid) in [
            (sock(), Some("60000000"), Some("7")),
            (sock(), None, None),
            (sock(), Some("0"), None),
            (sock(), Some("soon"), None),
            (None, Some("60000000"), None),
            (Some(std::ffi::OsString::new()), Some("60000000"), None),
        ] {
            let w = Watchdog::from_vars(socket, usec, pid, 42);
            assert_eq!(w.interval(), None, "{usec:?} {pid:?}");
        }
        // A tiny interval never turns into a busy loop.
        let w = Watchdog::from_vars(sock(), Some("3"), None, 42);
        assert_eq!(w.interval(), Some(Duration::from_millis(10)));
    }

    #[cfg(unix)]
    #[test]
    fn the_watchdog_is_silent_until_armed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let socket = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        socket.set_nonblocking(true).unwrap();
        // WATCHDOG_USEC=30000: a ping every 10 ms.
        let mut w = Watchdog::from_vars(Some(path.into_os_string()), Some("30000"), None, 1);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let mut buf = [0u8; 64];
        rt.block_on(async {
            w.while_running(tokio::time::sleep(Duration::from_millis(100)))
                .await
        });
        assert!(socket.recv(&mut buf).is_err(), "a ping before arm()");
        w.arm();
        rt.block_on(async {
            w.while_running(tokio::time::sleep(Duration::from_millis(100)))
                .await
        });
        let mut pings = 0;
        while let Ok(n) = socket.recv(&mut buf) {
            assert_eq!(&buf[..n], b"WATCHDOG=1\n");
            pings += 1;
        }
        // About ten in 100 ms; at least a few even on a loaded machine.
        assert!((3..=12).contains(&pings), "{pings} pings");
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter() {
        let now = datetime!(2026-01-01 00:00 UTC);
        let d1 = retry_delay(ErrorKind::Transient, "p", 1, now);
        assert!(
            d1 >= Duration::from_secs(24) && d1 <= Duration::from_secs(36),
            "{d1:?}"
        );
        let d3 = retry_delay(ErrorKind::Transient, "p", 3, now);
        assert!(
            d3 >= Duration::from_secs(96) && d3 <= Duration::from_secs(144),
            "{d3:?}"
        );
        let d20 = retry_delay(ErrorKind::Transient, "p", 20, now);
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
