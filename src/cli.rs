//! The command line (clap): subcommands and the global options accepted before or after them.
//! `main` parses it; `examples/gen_docs.rs` turns the same definition into the man page and
//! the shell completions that the packages ship.

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

// Comments here are `//`, not `///`: clap turns doc comments into help text.

/// `--config`'s help: where the config is looked for without it
/// ([`crate::paths::default_config_candidates`]).
#[cfg(not(windows))]
pub const CONFIG_HELP: &str = "The config file (default: $XDG_CONFIG_HOME/awscredd/config.toml, \
~/.config/awscredd/config.toml, /etc/awscredd/config.toml)";
/// `--config`'s help on Windows: the ProgramData known folder, where the MSI puts the template.
#[cfg(windows)]
pub const CONFIG_HELP: &str = r"The config file (default: %ProgramData%\awscredd\config.toml)";

// The whole command line.
#[derive(Parser)]
#[command(
    name = "awscredd",
    version,
    about = "Keeps AWS credentials files fresh"
)]
pub struct Cli {
    // The config file; where it is looked for differs by platform (CONFIG_HELP).
    #[arg(
        long,
        help = CONFIG_HELP,
        global = true,
        env = "AWSCREDD_CONFIG",
        hide_env_values = true,
        value_name = "PATH"
    )]
    pub config: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log level or filter (error, warn, info, debug, trace); RUST_LOG is used when not given,
    /// except by credential-process, which logs nothing unless asked with --log-level.
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
    #[command(
        after_help = "Signals: SIGTERM/SIGINT stop it, SIGHUP reloads the config, SIGUSR1 refreshes every profile now.\n\nExit status: 0 after SIGTERM/SIGINT; 78 for a bad config (or a [server] that cannot start) at start-up, so that a service manager does not restart it in a loop."
    )]
    Run,
    /// One pass: refresh every profile that is due, write, exit.
    #[command(
        after_help = "Signals: SIGTERM/SIGINT stop it with the sources and on_change hooks it is running.\n\nExit status: 0 all written; 1 one or more profiles failed (the others are still written); 2 usage or config error; 143 (SIGTERM) or 130 (SIGINT) when stopped."
    )]
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
    #[command(
        after_help = "Exit status: 0 signed in; 1 failed, denied or timed out; 2 unknown session or config error."
    )]
    Login {
        /// Only this SSO session (default: each session with no usable token). A profile of
        /// the older per-profile SSO form signs in under its start URL.
        #[arg(long, value_name = "NAME")]
        sso_session: Option<String>,
        /// The SSO sign-in this profile uses (also the older per-profile form), or that the
        /// profile it chains from uses.
        #[arg(long, value_name = "NAME", conflicts_with = "sso_session")]
        profile: Option<String>,
        /// Print the URL and code but do not open a browser.
        #[arg(long)]
        no_browser: bool,
    },
    /// Show every profile and SSO session: expiry, last refresh, last error, state.
    #[command(
        after_help = "Exit status: 0 every profile is ok; 1 otherwise; 2 usage or config error."
    )]
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Validate the config and print what would be done.
    #[command(
        after_help = "Exit status: 0 valid; 2 invalid, with FILE:LINE:COL: message for every problem found."
    )]
    Check,
    /// Write a starting config at the config path: from ~/.aws/config, or a template.
    #[command(
        after_help = "Exit status: 0 written; 2 nothing written (the config exists, the AWS config file cannot be read or parsed, or usage)."
    )]
    Init {
        /// Take every sso-session and profile awscredd can keep from this AWS config file
        /// (default: $AWS_CONFIG_FILE, else ~/.aws/config).
        #[arg(long, value_name = "PATH", num_args = 0..=1)]
        from_aws_config: Option<Option<PathBuf>>,
        /// Only this profile and the profiles it chains from (repeatable).
        #[arg(long = "profile", value_name = "NAME", requires = "from_aws_config")]
        profiles: Vec<String>,
        /// The credentials file to keep (default: the one the AWS SDKs read).
        #[arg(long, value_name = "PATH")]
        output: Option<String>,
        /// Replace an existing config.
        #[arg(long)]
        force: bool,
    },
    /// Windows: register, remove, or be started by the Service Control Manager.
    #[cfg(windows)]
    #[command(
        after_help = "Exit status: 0 done; 1 the Service Control Manager refused; 2 usage or config error."
    )]
    Service {
        #[command(subcommand)]
        action: ServiceAction,
    },
    /// Print a managed profile's credentials as credential_process JSON (refreshing them first
    /// if they are missing or expire within a minute).
    #[command(
        after_help = "Logs nothing unless --log-level is given (RUST_LOG is not read: the program that runs it may set RUST_LOG for itself).\n\nExit status: 0 with the JSON on stdout; 1 the profile could not be refreshed; 2 not a managed profile, or a config error. On failure: one line on stderr, nothing on stdout."
    )]
    CredentialProcess {
        /// The managed profile.
        #[arg(long, value_name = "NAME")]
        profile: String,
    },
    // Hidden: runs one `on_change` hook under its limit for `credential-process`, which does
    // not wait for its hooks (see `hooks`).
    #[command(name = "run-hook", hide = true)]
    RunHook {
        #[arg(long, value_name = "PATH")]
        output: std::path::PathBuf,
        #[arg(long, value_name = "NAMES", default_value = "")]
        profiles: String,
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
}

// `service ACTION` (Windows).
#[cfg(windows)]
#[derive(Subcommand)]
pub enum ServiceAction {
    /// Register the service (started automatically) with this config.
    Install {
        /// Run as this account (`.\user`, `DOMAIN\user`, `NT AUTHORITY\NetworkService`)
        /// instead of LocalSystem; its password is asked for, or read from --password-file.
        #[arg(long, value_name = "NAME")]
        account: Option<String>,
        /// A file whose first line is the account's password (never on the command line).
        #[arg(long, value_name = "PATH")]
        password_file: Option<PathBuf>,
    },
    /// Stop and remove the service.
    Uninstall,
    /// Run as the service (how the Service Control Manager starts it).
    Run,
}

/// The subcommand named on a command line (`args` without the program name), found without
/// clap, for when clap refused the line: the first word that is neither an option nor the
/// value of a global option that takes one.
pub fn subcommand_of<I, S>(args: I) -> Option<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    const TAKE_VALUE: [&str; 3] = ["--config", "--log-format", "--log-level"];
    let mut args = args.into_iter();
    while let Some(a) = args.next() {
        let a = a.as_ref().to_string_lossy().into_owned();
        if TAKE_VALUE.contains(&a.as_str()) {
            args.next();
        } else if !a.starts_with('-') {
            return Some(a);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_subcommand_past_global_options() {
        assert_eq!(
            subcommand_of([
                "--config",
                "c.toml",
                "--log-level=info",
                "credential-process"
            ])
            .as_deref(),
            Some("credential-process")
        );
        assert_eq!(
            subcommand_of(["--config", "credential-process", "once"]).as_deref(),
            Some("once")
        );
        assert_eq!(subcommand_of(["--version"]), None);
    }
}
