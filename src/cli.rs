//! The command line (clap): subcommands and the global options accepted before or after them.
//! `main` parses it; `examples/gen_docs.rs` turns the same definition into the man page and
//! the shell completions that the packages ship.

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

// Comments here are `//`, not `///`: clap turns doc comments into help text.

// The whole command line.
#[derive(Parser)]
#[command(
    name = "awscredd",
    version,
    about = "Keeps AWS credentials files fresh"
)]
pub struct Cli {
    /// The config file (default: $XDG_CONFIG_HOME/awscredd/config.toml,
    /// ~/.config/awscredd/config.toml, /etc/awscredd/config.toml).
    #[arg(long, global = true, env = "AWSCREDD_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log level or filter (error, warn, info, debug, trace); RUST_LOG is used when not given.
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

// `--log-format`.
#[derive(Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

// The subcommands.
#[derive(Subcommand)]
pub enum Command {
    /// The daemon, in the foreground: refresh every profile before it expires, until stopped.
    Run,
    /// One pass: refresh every profile that is due, write, exit.
    Once {
        /// Only this profile and the profiles it chains from (repeatable).
        #[arg(long = "profile", value_name = "NAME")]
        profiles: Vec<String>,
        /// Refresh even profiles that are not due.
        #[arg(long)]
        force: bool,
        /// Never start an SSO sign-in; profiles that need one fail at once.
        #[arg(long)]
        no_login: bool,
    },
    /// Sign in to SSO sessions interactively (device authorization).
    Login {
        /// Only this SSO session (default: each session with no usable token).
        #[arg(long, value_name = "NAME")]
        sso_session: Option<String>,
        /// Print the URL and code but do not open a browser.
        #[arg(long)]
        no_browser: bool,
    },
    /// Show every profile and SSO session: expiry, last refresh, last error, state.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Validate the config and print what would be done.
    Check,
    /// Windows: register, remove, or be started by the Service Control Manager.
    #[cfg(windows)]
    Service {
        #[command(subcommand)]
        action: ServiceAction,
    },
    /// Print a managed profile's credentials as credential_process JSON (refreshing them first
    /// if they are missing or expire within a minute).
    CredentialProcess {
        /// The managed profile.
        #[arg(long, value_name = "NAME")]
        profile: String,
    },
}

// `service ACTION` (Windows).
#[cfg(windows)]
#[derive(Subcommand)]
pub enum ServiceAction {
    /// Register the service (started automatically) with this config.
    Install,
    /// Stop and remove the service.
    Uninstall,
    /// Run as the service (how the Service Control Manager starts it).
    Run,
}
