//! `awscredd once`: one refresh pass, then exit. For cron and scheduled tasks. SIGTERM or
//! SIGINT stops it with the sources and hooks it is running (exit 143 or 130).

use super::exit;
use crate::config::Config;
use crate::refresh::{self, PassOptions};
use std::path::Path;

/// Options of `once`.
#[derive(Clone, Debug, Default)]
pub struct OnceArgs {
    pub profiles: Vec<String>,
    pub force: bool,
    /// SSO sessions without a usable token fail at once instead of signing in.
    pub no_login: bool,
}

pub async fn exec(config_path: Option<&Path>, args: &OnceArgs) -> u8 {
    let cfg = match load(config_path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let hooks = crate::hooks::Hooks::new();
    let opts = PassOptions {
        force: args.force,
        only: args.profiles.clone(),
        no_login: args.no_login,
        hooks: Some(hooks.clone()),
        ..PassOptions::default()
    };
    // Stopped by a signal, the pass is dropped (its running sources are killed with their
    // process groups) and so are the hooks still running.
    tokio::select! {
        code = pass(&cfg, &opts, &hooks) => code,
        (signal, code) = super::stop_signal() => {
            hooks.stop().await;
            tracing::warn!("stopped by {signal}: the running sources and on_change hooks were stopped");
            code
        }
    }
}

/// The pass, then its hooks: the exit status.
async fn pass(cfg: &Config, opts: &PassOptions, hooks: &crate::hooks::Hooks) -> u8 {
    let report = match refresh::run_pass(cfg, opts).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("awscredd: {}", crate::text::shown(&e));
            return exit::USAGE;
        }
    };
    // The hooks this pass started finish (up to their limit) before `once` exits; the exit
    // status does not depend on them.
    hooks
        .wait(crate::hooks::TIMEOUT + std::time::Duration::from_secs(5))
        .await;
    let failed: Vec<_> = report.failed().collect();
    if failed.is_empty() {
        exit::OK
    } else {
        exit::FAILED
    }
}

/// Loads the config, printing problems; `Err` is the exit status.
pub fn load(config_path: Option<&Path>) -> Result<Config, u8> {
    match super::load_config(config_path) {
        Ok((cfg, report)) => {
            for line in report.lines() {
                tracing::warn!("{line}");
            }
            Ok(cfg)
        }
        Err(e) => {
            eprintln!("{e}");
            Err(exit::USAGE)
        }
    }
}
