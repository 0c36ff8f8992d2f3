//! `awscredd run`: the daemon in the foreground, logging to stderr. SIGTERM and SIGINT stop it
//! (exit 0), SIGHUP reloads the config, SIGUSR1 refreshes every profile now; systemd
//! `Type=notify` readiness is sent once the first pass is written. A bad config at start-up
//! exits 78 (EX_CONFIG), so a service manager does not restart it in a loop; so does a
//! `[server]` that cannot bind its address or whose token file is empty, and a `[metrics]`
//! or `[imds]` that cannot bind its own. On Unix the soft
//! `RLIMIT_NOFILE` is raised to the hard limit first, and the server's connection cap is
//! fitted to it with a reserve of descriptors for the daemon's own work. As PID 1 (a
//! container's only process), it reaps the orphaned processes that end up its children.

use super::exit;
use crate::config::Config;
use crate::daemon::{self, Control};
use crate::eventlog::{ids, EVENT_LOG};
use crate::metrics::Metrics;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::{mpsc, watch};

/// EX_CONFIG from sysexits.h.
pub const EX_CONFIG: u8 = 78;

/// The daemon's runtime, for `run` and the Windows service alike: one thread. Its work is
/// waiting (on AWS, on timers, on clients); file work and locks go to tokio's blocking pool,
/// whose threads end when idle, so a daemon at rest is one sleeping thread.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

pub async fn exec(config_path: Option<&Path>) -> u8 {
    let (stop_tx, stop_rx) = watch::channel(false);
    let (control_tx, control_rx) = mpsc::unbounded_channel();
    if let Err(e) = listen_for_signals(stop_tx, control_tx) {
        tracing::error!("cannot listen for signals: {e}");
        return exit::FAILED;
    }
    // PID 1 (a container without an init): the orphans that end up here are ours to reap.
    if crate::child::orphans::is_init() {
        tokio::spawn(crate::child::orphans::reap_until(stop_rx.clone()));
    }
    serve(config_path, stop_rx, Some(control_rx), || {}).await
}

/// The daemon until `stop` turns true: what `run` and the Windows service both run.
/// `on_started` is called once the config is loaded, as the first pass begins (the Windows
/// service then reports RUNNING).
pub async fn serve(
    config_path: Option<&Path>,
    stop: watch::Receiver<bool>,
    controls: Option<mpsc::UnboundedReceiver<Control>>,
    on_started: impl FnOnce(),
) -> u8 {
    let Some(cfg) = load(config_path) else {
        return EX_CONFIG;
    };
    // Reloads read the same file (its absolute path).
    let path = cfg.path.clone();
    let open_files = raise_open_files_limit();
    let Some(listeners) = Listeners::bind(&cfg).await else {
        return EX_CONFIG;
    };
    // Without a control channel (the Windows service), keep one open that never sends.
    let (_keep, unused) = mpsc::unbounded_channel();
    let controls = controls.unwrap_or(unused);
    tracing::info!(
        target: EVENT_LOG,
        event_id = ids::STARTED,
        config = %path.display(),
        profiles = cfg.profiles.len(),
        "awscredd started"
    );
    on_started();
    let (config_tx, config_rx) = watch::channel(cfg.clone());
    let engine = daemon::Engine::real();
    let metrics = engine.metrics.clone();
    // No `[metrics]` listener (only a restart adds one): no series to keep for it.
    metrics.keep_series(cfg.metrics.is_some());
    // What the files hold already, so `/readyz` is right before the first pass ends.
    metrics.look(&cfg, engine.clock.now()).await;
    let limits = match open_files {
        Some(n) => crate::server::Limits::default().within_descriptors(n),
        None => crate::server::Limits::default(),
    };
    let servers = listeners.serve(&limits, config_rx, &metrics, &stop);
    let io = daemon::Io {
        stop: stop.clone(),
        controls,
        published: config_tx,
        notifier: daemon::systemd::Notifier::from_env(),
    };
    daemon::run_with(engine, path, cfg, io, || {}).await;
    for task in servers {
        task.abort();
    }
    tracing::info!(target: EVENT_LOG, event_id = ids::STOPPED, "awscredd stopped");
    exit::OK
}

/// The config, its warnings logged; `None` (told) when it cannot be used.
fn load(config_path: Option<&Path>) -> Option<Config> {
    match super::load_config(config_path) {
        Ok((cfg, report)) => {
            for line in report.lines() {
                tracing::warn!("{line}");
            }
            Some(cfg)
        }
        // Once, in the log format asked for (so `--log-format json` keeps stderr all JSON);
        // the Windows service also sends it to the Event Log.
        Err(e) => {
            tracing::error!(target: EVENT_LOG, event_id = ids::CONFIG_ERROR, "{e}");
            None
        }
    }
}

/// The bound addresses of the `[server]`, the `[metrics]` and the `[imds]` endpoints, those
/// configured.
struct Listeners {
    server: Option<crate::server::Listener>,
    metrics: Option<crate::server::metrics::Listener>,
    imds: Option<crate::server::imds::Listener>,
}

impl Listeners {
    /// Binds what `cfg` configures; `None` (told) when an address cannot be bound.
    async fn bind(cfg: &Config) -> Option<Self> {
        let server = match &cfg.server {
            None => None,
            Some(s) => match crate::server::bind(s).await {
                Ok(listener) => Some(listener),
                Err(e) => {
                    tracing::error!("{e}");
                    return None;
                }
            },
        };
        let metrics = match &cfg.metrics {
            None => None,
            Some(m) => match crate::server::metrics::bind(m).await {
                Ok(listener) => Some(listener),
                Err(e) => {
                    tracing::error!("{e}");
                    return None;
                }
            },
        };
        let imds = match &cfg.imds {
            None => None,
            Some(i) => match crate::server::imds::bind(i).await {
                Ok(listener) => Some(listener),
                Err(e) => {
                    tracing::error!("{e}");
                    return None;
                }
            },
        };
        Some(Listeners {
            server,
            metrics,
            imds,
        })
    }

    /// Starts the servers on the bound addresses, until `stop`.
    fn serve(
        self,
        limits: &crate::server::Limits,
        config: watch::Receiver<Config>,
        metrics: &Arc<Metrics>,
        stop: &watch::Receiver<bool>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let imds = self.imds.map(|listener| {
            tokio::spawn(crate::server::imds::serve(
                listener,
                limits.clone(),
                config.clone(),
                stop.clone(),
            ))
        });
        let server = self.server.map(|listener| {
            tokio::spawn(crate::server::serve(
                listener,
                limits.clone(),
                config,
                metrics.clone(),
                stop.clone(),
            ))
        });
        let metrics_server = self.metrics.map(|listener| {
            tokio::spawn(crate::server::metrics::serve(
                listener,
                limits.clone(),
                metrics.clone(),
                stop.clone(),
            ))
        });
        [server, metrics_server, imds]
            .into_iter()
            .flatten()
            .collect()
    }
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit, as systemd services commonly do, so a
/// burst of connections or files never takes the descriptors the daemon needs; the soft limit
/// in force after it.
#[cfg(unix)]
fn raise_open_files_limit() -> Option<u64> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok(limits) => limits,
        Err(e) => {
            tracing::warn!("cannot read the open files limit: {e}");
            return None;
        }
    };
    // macOS refuses a soft limit above OPEN_MAX (10240) when the hard one is unlimited.
    for target in [hard, hard.min(10240)] {
        if target <= soft {
            break;
        }
        if setrlimit(Resource::RLIMIT_NOFILE, target, hard).is_ok() {
            tracing::debug!(from = soft, to = target, "raised the open files limit");
            return Some(target);
        }
    }
    Some(soft)
}

#[cfg(not(unix))]
fn raise_open_files_limit() -> Option<u64> {
    None
}

#[cfg(unix)]
fn listen_for_signals(
    stop: watch::Sender<bool>,
    controls: mpsc::UnboundedSender<Control>,
) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut usr1 = signal(SignalKind::user_defined1())?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => { tracing::info!("SIGTERM: stopping"); let _ = stop.send(true); }
                _ = int.recv() => { tracing::info!("SIGINT: stopping"); let _ = stop.send(true); }
                _ = hup.recv() => { let _ = controls.send(Control::Reload); }
                _ = usr1.recv() => { let _ = controls.send(Control::RefreshNow); }
            }
        }
    });
    Ok(())
}

#[cfg(not(unix))]
fn listen_for_signals(
    stop: watch::Sender<bool>,
    _controls: mpsc::UnboundedSender<Control>,
) -> std::io::Result<()> {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            tracing::info!("Ctrl-C: stopping");
            let _ = stop.send(true);
        }
    });
    Ok(())
}
