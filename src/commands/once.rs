//! `awscredd once`: one refresh pass, then exit. For cron and scheduled tasks.

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
    let report = match refresh::run_pass(&cfg, &opts).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("awscredd: {e}");
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
