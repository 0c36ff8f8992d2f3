//! The `awscredd` binary: parses arguments, sets up logging, runs a command, and turns its
//! outcome into the process exit status.

#[cfg(windows)]
use awscredd::cli::ServiceAction;
use awscredd::cli::{Cli, Command};
use awscredd::commands::credential_process::Step;
use awscredd::commands::{self, exit, login::LoginArgs, once::OnceArgs};
use clap::Parser;
use std::future::Future;
use std::path::Path;
use std::process::ExitCode;

/// Which runtime a command runs on.
enum Runtime {
    /// Several threads, for a command that ends (`once`, `login`, a refresh).
    Command,
    /// The daemon's one thread (see [`commands::run::runtime`]).
    Daemon,
}

/// Runs `work` to its end on a new runtime; a runtime that cannot start is exit 1.
fn block_on(kind: Runtime, work: impl Future<Output = u8>) -> u8 {
    let rt = match kind {
        Runtime::Command => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
        Runtime::Daemon => commands::run::runtime(),
    };
    match rt {
        Ok(rt) => {
            let code = rt.block_on(work);
            // A write in flight finishes (files are replaced whole). What a command left
            // (stopped by a signal: the tasks running its sources and hooks, whose process
            // groups are killed as they are dropped) is dropped without waiting long for
            // blocking work such as a lock wait.
            rt.shutdown_timeout(match kind {
                Runtime::Daemon => std::time::Duration::from_millis(1500),
                Runtime::Command => std::time::Duration::from_secs(1),
            });
            code
        }
        Err(e) => {
            eprintln!("awscredd: cannot start the async runtime: {e}");
            exit::FAILED
        }
    }
}

/// The command line, or the exit status of a command line clap refused (or `--help`).
fn parse() -> Result<Cli, u8> {
    // `AWSCREDD_CONFIG=` (set, but empty) means unset, as for every variable read through
    // `process_env`: the default search. Removed before anything else runs (one thread yet),
    // so clap does not take it for a missing value.
    if awscredd::paths::process_env("AWSCREDD_CONFIG").is_none() {
        std::env::remove_var("AWSCREDD_CONFIG");
    }
    let e = match Cli::try_parse() {
        Ok(c) => return Ok(c),
        Err(e) => e,
    };
    if !e.use_stderr() {
        let _ = e.print();
        return Err(exit::OK);
    }
    // credential-process fails with one line on stderr (an SDK shows it as is).
    let args = std::env::args_os().skip(1);
    if awscredd::cli::subcommand_of(args).as_deref() == Some("credential-process") {
        // The message is the first paragraph (a list of missing arguments follows it,
        // indented); usage and hints come after a blank line.
        let text = e.render().to_string();
        let message: Vec<&str> = text
            .lines()
            .take_while(|l| !l.trim().is_empty())
            .map(str::trim)
            .collect();
        let message = message.join(" ");
        let message = message.strip_prefix("error: ").unwrap_or(&message);
        eprintln!(
            "awscredd: credential-process: {message} (see `awscredd credential-process --help`)"
        );
        return Err(exit::USAGE);
    }
    let _ = e.print();
    Err(exit::USAGE)
}

/// Logging as the command wants it. An SDK reads credential-process's stderr as its error
/// message: one line, no logs, unless asked for with --log-level (not RUST_LOG: the
/// application that runs us may set it for itself); quiet, no subscriber is installed at all,
/// so tracing's events cost nothing. The Windows service has no console: it logs to a file.
fn start_logging(cli: &Cli) -> Result<(), String> {
    let quiet = matches!(cli.command, Command::CredentialProcess { .. }) && cli.log_level.is_none();
    if quiet {
        return Ok(());
    }
    #[cfg(windows)]
    let log_file = match &cli.command {
        Command::Service {
            action: ServiceAction::Run,
        } => commands::service::log_file(),
        _ => None,
    };
    #[cfg(not(windows))]
    let log_file: Option<std::path::PathBuf> = None;
    awscredd::logging::init(
        cli.log_format,
        cli.log_level.as_deref(),
        log_file.as_deref(),
    )
}

/// Runs the command; its exit status.
fn dispatch(command: Command, config: Option<&Path>) -> u8 {
    match command {
        Command::Check => commands::check::exec(config),
        Command::Init {
            from_aws_config,
            profiles,
            output,
            force,
        } => commands::init::exec(
            config,
            &commands::init::InitArgs {
                from_aws_config,
                profiles,
                output,
                force,
            },
        ),
        #[cfg(windows)]
        Command::Service { action } => match action {
            ServiceAction::Install {
                account,
                password_file,
            } => commands::service::install(
                config,
                &commands::service::Account {
                    name: account,
                    password_file,
                },
            ),
            ServiceAction::Uninstall => commands::service::uninstall(),
            ServiceAction::Run => commands::service::dispatch(config),
        },
        Command::Run => block_on(Runtime::Daemon, commands::run::exec(config)),
        Command::Status { json } => commands::status::exec(config, json),
        Command::Once {
            profiles,
            force,
            no_login,
        } => {
            let args = OnceArgs {
                profiles,
                force,
                no_login,
            };
            block_on(Runtime::Command, commands::once::exec(config, &args))
        }
        // Fresh credentials are printed with no async runtime (SDKs run this at every start-up,
        // often from many processes at once); only a refresh builds one.
        Command::CredentialProcess { profile } => {
            match commands::credential_process::start(config, &profile) {
                Step::Done(code) => code,
                Step::Refresh(refresh) => block_on(Runtime::Command, refresh.run()),
            }
        }
        Command::RunHook {
            output,
            profiles,
            command,
        } => block_on(
            Runtime::Command,
            commands::run_hook::exec(&command, &output, &profiles),
        ),
        Command::Login {
            sso_session,
            profile,
            no_browser,
        } => {
            let args = LoginArgs {
                sso_session,
                profile,
                no_browser,
            };
            block_on(Runtime::Command, commands::login::exec(config, &args))
        }
    }
}

fn main() -> ExitCode {
    let cli = match parse() {
        Ok(cli) => cli,
        Err(code) => return ExitCode::from(code),
    };
    if let Err(e) = start_logging(&cli) {
        eprintln!("awscredd: {}", awscredd::text::shown(&e));
        return ExitCode::from(exit::USAGE);
    }
    let config = cli.config.clone();
    ExitCode::from(dispatch(cli.command, config.as_deref()))
}
