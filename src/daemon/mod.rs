//! The daemon's scheduler: refresh passes (the same pass `once` runs) on a schedule.
//!
//! After each pass it computes when the next profile becomes due — less than `refresh_before`
//! (or half the lifetime) left, a file lacking a profile, hourly for credentials without an
//! expiry — spreads those times with a little jitter, and sleeps until the earliest, waking at
//! least every five minutes to re-check the wall clock (monotonic timers stop while a machine
//! sleeps). A profile that failed is retried with capped exponential backoff and jitter, and is
//! skipped until then; the others go on ([`schedule`] keeps those books). Stop, reload and
//! refresh-now requests arrive as [`Control`] messages: stopping interrupts a pass at once
//! (files are only ever replaced whole), the others are handled between passes. systemd hears
//! of readiness, sign-ins waiting for a human and the loop's heartbeat through [`systemd`].

pub(crate) mod schedule;
pub(crate) mod systemd;

use crate::clock::{Clock, SystemClock};
use crate::config::{self, Config};
use crate::refresh::{self, Snapshot};
use crate::sources::fetch::{Fetcher, Sources};
use crate::sources::sso::session::LoginMode;
use crate::sources::sso::sign_ins::SignIns;
use schedule::{Schedule, MAX_SLEEP};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use systemd::{Notifier, Readiness, Watchdog};
use time::OffsetDateTime;
use tokio::sync::{mpsc, watch};

/// What the signal handlers (or the Windows service controller) ask of the daemon, besides
/// stopping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// Re-read the config (SIGHUP); an invalid one is logged and the old one kept.
    Reload,
    /// Refresh every profile now (SIGUSR1).
    RefreshNow,
}

/// When the SSO token a profile's chain starts from was last written, if it has one: a token
/// appearing (`aws sso login`, `awscredd login`) ends a profile's wait for a sign-in.
pub(crate) type SignInSeen = dyn Fn(&Config, &str) -> Option<OffsetDateTime> + Send + Sync;

/// Makes the fetcher of a pass for a config, signing in through the daemon's [`SignIns`].
pub(crate) type FetcherFor = dyn Fn(&Config, &Arc<SignIns>) -> Arc<dyn Fetcher> + Send + Sync;

/// What the scheduler runs on: where the time comes from, how profiles are fetched, how a
/// sign-in is noticed, and what it tells operators. [`Engine::real`] is the daemon's; tests
/// give their own.
#[derive(Clone)]
pub(crate) struct Engine {
    pub clock: Arc<dyn Clock>,
    /// The fetcher for a config (made anew for each pass, since a reload changes the config).
    pub fetcher: Arc<FetcherFor>,
    pub sign_in_seen: Arc<SignInSeen>,
    /// The sign-ins running in the background, which outlive the pass that started them.
    pub sign_ins: Arc<SignIns>,
    /// Updated after every pass, and beaten while the loop turns (`/metrics`, `/healthz`,
    /// `/readyz`).
    pub metrics: Arc<crate::metrics::Metrics>,
}

impl Engine {
    /// The real sources (signing in unattended, in the background: URL and code logged,
    /// `login_command` run), the wall clock, and the SSO token cache's file times.
    pub(crate) fn real() -> Self {
        Engine {
            clock: Arc::new(SystemClock),
            fetcher: Arc::new(|cfg: &Config, sign_ins: &Arc<SignIns>| {
                let login = LoginMode::Unattended {
                    login_command: cfg.daemon.login_command.clone(),
                    background: Some(sign_ins.clone()),
                };
                Arc::new(Sources::new(cfg, login)) as Arc<dyn Fetcher>
            }),
            sign_in_seen: Arc::new(token_written_at),
            sign_ins: Arc::new(SignIns::new()),
            metrics: Arc::default(),
        }
    }
}

/// When the token file of `profile`'s SSO session (or the login cache file of its `aws
/// login` sign-in) was last modified, or the newest of its Roles Anywhere certificate, key
/// and intermediates last changed (on Unix their status change time: a key made readable
/// again by `chmod`, or renamed into place, counts).
fn token_written_at(cfg: &Config, profile: &str) -> Option<OffsetDateTime> {
    let modified = |path: &std::path::Path| {
        let t = std::fs::metadata(path).ok()?.modified().ok()?;
        Some(OffsetDateTime::from(t))
    };
    let changed = |path: &std::path::Path| {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let m = std::fs::metadata(path).ok()?;
            let ns = i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec());
            OffsetDateTime::from_unix_timestamp_nanos(ns).ok()
        }
        #[cfg(not(unix))]
        modified(path)
    };
    let roles_anywhere = cfg.chain(profile).find_map(|p| match &p.source {
        config::Source::RolesAnywhere(ra) => Some(ra),
        _ => None,
    });
    if let Some(ra) = roles_anywhere {
        let files = [Some(&ra.certificate), Some(&ra.private_key)];
        return files
            .into_iter()
            .chain([ra.intermediates.as_ref()])
            .flatten()
            .filter_map(|p| changed(p))
            .max();
    }
    let env = &crate::paths::process_env;
    let path = match cfg.root_sso_session(profile) {
        Some(session) => {
            crate::sources::sso::cache::TokenCache::default_location(env)?.token_path(session)
        }
        None => crate::sources::login::cache::LoginCache::default_location(env)?
            .path(cfg.root_login_session(profile)?),
    };
    modified(&path)
}

/// The daemon's ways in and out: the stop flag, control requests, where a reloaded config is
/// published, and systemd's socket.
pub(crate) struct Io {
    pub stop: watch::Receiver<bool>,
    pub controls: mpsc::UnboundedReceiver<Control>,
    pub published: watch::Sender<Config>,
    pub notifier: Notifier,
}

/// [`run`] on an [`Engine`] of the caller's.
pub(crate) async fn run_with(
    engine: Engine,
    path: PathBuf,
    cfg: Config,
    mut io: Io,
    mut on_ready: impl FnMut(),
) {
    let mut daemon = Daemon {
        hooks: crate::hooks::Hooks::new(),
        schedule: Schedule::new(),
        readiness: Readiness::new(),
        watchdog: Watchdog::from_env(),
        engine,
        path,
        cfg,
    };
    loop {
        let Some(sleep) = daemon.pass(&mut io, &mut on_ready).await else {
            return;
        };
        let sign_ins = daemon.engine.sign_ins.clone();
        let failed = failed_for_good(&daemon);
        tokio::select! {
            _ = daemon.engine.metrics.alive(daemon.watchdog.while_running(tokio::time::sleep(sleep))) => {}
            // A deleted output comes back within seconds, not at the next due time.
            path = an_output_goes_missing(present_outputs(&daemon.cfg)) => {
                tracing::info!(path = %path.display(), "an output file was deleted: writing it again");
            }
            // A renewed certificate, a key made readable: tried within seconds, not after a
            // backoff of up to an hour.
            name = an_input_changes(&daemon.cfg, &daemon.engine, failed) => {
                tracing::info!(profile = %name, "what the failed profile is made from changed: trying it again");
            }
            // A background sign-in has its URL and code, or stored its token: the profiles
            // waiting for it are tried again at once (no call is made before a token is
            // there), so that what they record says what to open and enter, and a token is
            // used at once (not through the token file's time, which the file system may have
            // rounded to before the pass that found them waiting).
            _ = sign_ins.news() => {
                daemon.schedule.retry_sign_ins_now(daemon.engine.clock.now());
            }
            _ = io.stop.wait_for(|s| *s) => return,
            c = io.controls.recv() => {
                // Requests that arrived meanwhile (during a pass, or a burst of signals) merge
                // into one: at most one reload and one forced pass.
                let mut pending: Vec<Control> = c.into_iter().collect();
                while let Ok(more) = io.controls.try_recv() {
                    pending.push(more);
                }
                if pending.contains(&Control::Reload) {
                    daemon.reload(&io.published);
                }
                if pending.contains(&Control::RefreshNow) {
                    tracing::info!("refreshing every profile now (SIGUSR1)");
                    daemon.schedule.force_next();
                }
            }
        }
    }
}

/// The profiles that failed for good, with when: [`an_input_changes`] watches them.
fn failed_for_good(daemon: &Daemon) -> Vec<(String, OffsetDateTime)> {
    daemon
        .schedule
        .backoff
        .iter()
        .filter(|(_, b)| b.kind == crate::sources::ErrorKind::Failed)
        .map(|(n, b)| (n.clone(), b.failed_at))
        .collect()
}

/// Resolves with the first of the `failed` profiles whose token or files (`seen`) were
/// written after it failed (and not in the future: a file dated ahead would wake every
/// look), looking every [`OUTPUT_POLL`]; never, when there is none.
async fn an_input_changes(
    cfg: &Config,
    engine: &Engine,
    failed: Vec<(String, OffsetDateTime)>,
) -> String {
    if failed.is_empty() {
        return std::future::pending().await;
    }
    loop {
        tokio::time::sleep(OUTPUT_POLL).await;
        let now = engine.clock.now();
        let changed = failed.iter().find(|(name, at)| {
            (engine.sign_in_seen)(cfg, name)
                .is_some_and(|t| t > *at - time::Duration::seconds(1) && t <= now)
        });
        if let Some((name, _)) = changed {
            return name.clone();
        }
    }
}

/// How often `run` looks whether an output file it wrote has been deleted.
pub(crate) const OUTPUT_POLL: std::time::Duration = std::time::Duration::from_secs(2);

/// The output files that are there now (one a pass could not write is not looked after: its
/// profile's retry is the schedule's business).
fn present_outputs(cfg: &Config) -> Vec<PathBuf> {
    cfg.outputs
        .iter()
        .map(|o| o.path.clone())
        .filter(|p| std::fs::symlink_metadata(p).is_ok())
        .collect()
}

/// Resolves with the first of `paths` found missing, looking every [`OUTPUT_POLL`] (a `stat`
/// per output: cheaper and more portable than watching every folder).
async fn an_output_goes_missing(paths: Vec<PathBuf>) -> PathBuf {
    loop {
        tokio::time::sleep(OUTPUT_POLL).await;
        let gone = paths.iter().find(|p| {
            matches!(std::fs::symlink_metadata(p), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
        });
        if let Some(p) = gone {
            return p.clone();
        }
    }
}

/// The scheduler's state between two turns of its loop.
struct Daemon {
    engine: Engine,
    path: PathBuf,
    cfg: Config,
    hooks: Arc<crate::hooks::Hooks>,
    schedule: Schedule,
    readiness: Readiness,
    watchdog: Watchdog,
}

/// Gives back to the system the memory a pass freed, before sleeping. glibc keeps the freed
/// pages of its arenas (one per thread that allocated: the pass's blocking file work runs on
/// tokio's pool): after a pass over 10,000 SSO profiles, 51 MiB of anonymous memory at rest,
/// 22 MiB once trimmed (`bench/scale.sh`). A no-op with other allocators (musl, Windows).
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` only returns free pages of the allocator's own arenas, under the
    // same locks as `malloc` and `free`; it takes no pointer and touches no live allocation.
    unsafe {
        nix::libc::malloc_trim(0);
    }
}

impl Daemon {
    /// One pass and its books; how long to sleep after it (`None`: stopped meanwhile).
    async fn pass(&mut self, io: &mut Io, on_ready: &mut impl FnMut()) -> Option<Duration> {
        let clock = self.engine.clock.clone();
        let now = clock.now();
        let seen = self.engine.sign_in_seen.clone();
        let cfg = &self.cfg;
        self.schedule.notice_tokens(|name| seen(cfg, name), now);
        let opts = self.schedule.pass_options(now, self.hooks.clone());
        let fetcher = (self.engine.fetcher)(&self.cfg, &self.engine.sign_ins);
        let pass = self.watchdog.while_running(refresh::run_pass_with(
            &self.cfg,
            &opts,
            fetcher.clone(),
            now,
        ));
        let report = tokio::select! {
            r = self.engine.metrics.alive_pass(&self.cfg, &*clock, pass) => r.ok(),
            _ = io.stop.wait_for(|s| *s) => return None,
        };
        // SSO tokens are renewed before they expire, whether or not a profile is due.
        let upkeep_at = tokio::select! {
            at = self.watchdog.while_running(fetcher.upkeep(clock.now())) => at,
            _ = io.stop.wait_for(|s| *s) => return None,
        };
        let after = clock.now();
        if let Some(report) = &report {
            let (cfg, sign_ins) = (&self.cfg, &self.engine.sign_ins);
            let resumes = |name: &str| {
                cfg.root_sso_session(name)
                    .and_then(|s| sign_ins.next_sign_in_at(s))
            };
            self.schedule.record(report, now, after, resumes);
        }
        let metrics = &self.engine.metrics;
        metrics.after_pass(&self.cfg, report.as_ref(), after).await;
        metrics.record_sign_ins(&self.engine.sign_ins.started());
        self.tell_systemd(io, report.as_ref(), after, on_ready);

        let snapshot = Snapshot::read(&self.cfg).await;
        let (mut wake, next) = self.schedule.next_wake(&self.cfg, &snapshot, after);
        for at in [upkeep_at, self.readiness.deadline()].into_iter().flatten() {
            wake = wake.min(at);
        }
        self.schedule.tell_next(next, after);
        let sleep = (wake - clock.now())
            .try_into()
            .unwrap_or(Duration::ZERO)
            .clamp(Duration::from_secs(1), MAX_SLEEP);
        tracing::debug!(
            seconds = sleep.as_secs(),
            "sleeping until the next profile is due"
        );
        drop(snapshot);
        release_freed_memory();
        Some(sleep)
    }

    /// `STATUS=` while a sign-in waits for a human, and `READY=1` once ready.
    fn tell_systemd(
        &mut self,
        io: &mut Io,
        report: Option<&refresh::PassReport>,
        now: OffsetDateTime,
        on_ready: &mut impl FnMut(),
    ) {
        let waiting = self.engine.sign_ins.waiting();
        let signing_in = waiting.iter().any(|w| !w.ended);
        let (ok, total) = self.engine.metrics.ok_count();
        let status = systemd::status_line(&waiting, ok, total);
        if self.readiness.after_pass(report, signing_in, now) {
            io.notifier.ready(&status);
            on_ready();
            self.watchdog.arm();
        } else {
            io.notifier.status(&status, signing_in);
        }
    }

    /// Re-reads the config; a valid one replaces the running one (and is published), an
    /// invalid one is logged and the old one kept.
    fn reload(&mut self, published: &watch::Sender<Config>) {
        let path = &self.path;
        match config::load(path, &crate::paths::process_env) {
            Ok((new, report)) => {
                for line in report.lines() {
                    tracing::warn!("{line}");
                }
                tracing::info!(config = %path.display(), "config reloaded");
                self.schedule.retain(&new);
                let cfg = &self.cfg;
                let changes = [
                    (
                        "server",
                        cfg.server.as_ref().map(|s| s.listen),
                        new.server.as_ref().map(|s| s.listen),
                    ),
                    (
                        "metrics",
                        cfg.metrics.as_ref().map(|m| m.listen),
                        new.metrics.as_ref().map(|m| m.listen),
                    ),
                    (
                        "imds",
                        cfg.imds.as_ref().map(|i| i.listen),
                        new.imds.as_ref().map(|i| i.listen),
                    ),
                ];
                for (section, before, after) in changes {
                    if let Some(w) = listener_change(section, before, after) {
                        tracing::warn!("{w}");
                    }
                }
                published.send_replace(new.clone());
                self.cfg = new;
            }
            Err(e) => {
                for line in e.to_string().lines() {
                    tracing::error!("{line}");
                }
                tracing::error!(config = %path.display(), "the new config is invalid; the old one keeps running");
            }
        }
    }
}

/// What a reload that adds, removes or moves a listener means: listeners are bound at start-up
/// only (a running one keeps its socket, and serves what the new config says behind it).
fn listener_change(
    section: &str,
    before: Option<std::net::SocketAddr>,
    after: Option<std::net::SocketAddr>,
) -> Option<String> {
    match (before, after) {
        (None, Some(a)) => Some(format!(
            "[{section}] was added: it listens on {a} from the next restart"
        )),
        (Some(b), None) => Some(format!(
            "[{section}] was removed: it keeps listening on {b} until the next restart"
        )),
        (Some(b), Some(a)) if a != b => Some(format!(
            "[{section}] listen changed from {b} to {a}: it keeps {b} until the next restart"
        )),
        _ => None,
    }
}

#[cfg(test)]
mod schedule_tests;
