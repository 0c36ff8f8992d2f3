//! One module per subcommand, each a small `exec` over library calls. Exit statuses are
//! decided here and turned into process exit codes by `main`. The config is found and loaded
//! in one place, [`load_config`].

pub mod check;
pub mod credential_process;
pub mod init;
pub mod login;
pub mod once;
pub mod run;
pub mod run_hook;
#[cfg(windows)]
pub mod service;
pub mod status;

/// The config found (`--config`, `AWSCREDD_CONFIG`, the default places) and loaded, with its
/// warnings; `Err` is the message to show (naming the file, with `FILE:LINE:COL` for every
/// problem).
pub fn load_config(
    config_path: Option<&std::path::Path>,
) -> Result<(crate::config::Config, crate::config::Report), String> {
    let env = &crate::paths::process_env;
    let path = crate::config::locate(config_path, env).map_err(|e| e.to_string())?;
    crate::config::load(&path, env).map_err(|e| e.to_string())
}

/// [`load_config`] for one profile: only what `profile` needs is validated (see
/// [`crate::config::load_for_profile`]).
pub fn load_config_for(
    config_path: Option<&std::path::Path>,
    profile: &str,
) -> Result<(crate::config::Config, crate::config::Report), String> {
    let env = &crate::paths::process_env;
    let path = crate::config::locate(config_path, env).map_err(|e| e.to_string())?;
    crate::config::load_for_profile(&path, env, profile).map_err(|e| e.to_string())
}

/// Waits for SIGTERM or SIGINT (Ctrl-C on Windows), for the commands that are not the daemon:
/// their name and the exit status for them (128 + the signal's number, as a shell says it).
pub async fn stop_signal() -> (&'static str, u8) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => tokio::select! {
                _ = term.recv() => ("SIGTERM", 143),
                _ = int.recv() => ("SIGINT", 130),
            },
            _ => std::future::pending().await,
        }
    }
    #[cfg(not(unix))]
    {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
        ("Ctrl-C", 130)
    }
}

/// Exit statuses shared by the commands (the `Commands` table of the user contract; each
/// command's `--help` lists its own).
pub mod exit {
    /// Everything worked.
    pub const OK: u8 = 0;
    /// One or more profiles failed (the others were still written).
    pub const FAILED: u8 = 1;
    /// Usage or config error.
    pub const USAGE: u8 = 2;
}
