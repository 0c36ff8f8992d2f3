//! The `awscredd` binary: parses arguments, sets up logging, runs a command, and turns its
//! outcome into the process exit status.

#[cfg(windows)]
use awscredd::cli::ServiceAction;
use awscredd::cli::{Cli, Command, LogFormat};
use awscredd::commands::credential_process::Step;
use awscredd::commands::{self, exit, login::LoginArgs, once::OnceArgs};
use clap::Parser;
use std::process::ExitCode;

/// Targets of the AWS SDK's internals, capped at `debug` whatever the level asked for: at
/// `trace` they print request headers and bodies, which hold bearer tokens and device codes.
const SDK_TARGETS: &[&str] = &[
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http_client",
    "aws_smithy_types",
    "aws_runtime",
    "aws_sigv4",
    "aws_sdk_sso",
    "aws_sdk_ssooidc",
    "aws_sdk_sts",
    "hyper",
    "hyper_util",
    "h2",
    "rustls",
];

fn init_logging(
    format: LogFormat,
    level: Option<&str>,
    log_file: Option<&std::path::Path>,
) -> Result<(), String> {
    use tracing_subscriber::filter::{EnvFilter, FilterExt, LevelFilter, Targets};
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let filter = match level {
        Some(l) => EnvFilter::try_new(l).map_err(|e| format!("bad --log-level `{l}`: {e}"))?,
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    let cap = SDK_TARGETS.iter().fold(
        Targets::new().with_default(LevelFilter::TRACE),
        |t, target| t.with_target(*target, LevelFilter::DEBUG),
    );
    let filter = filter.and(cap);
    use tracing_subscriber::fmt::writer::BoxMakeWriter;
    let (writer, ansi) = match log_file {
        None => (
            BoxMakeWriter::new(std::io::stderr),
            std::io::IsTerminal::is_terminal(&std::io::stderr()),
        ),
        #[cfg(windows)]
        Some(path) => {
            let log = commands::service::open_log(path)?;
            (BoxMakeWriter::new(std::sync::Mutex::new(log)), false)
        }
        #[cfg(not(windows))]
        Some(path) => return Err(format!("no log file on this platform: {}", path.display())),
    };
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(ansi)
        .with_target(false);
    let registry = tracing_subscriber::registry();
    // The service also reports what an administrator must see to the Event Log.
    #[cfg(windows)]
    let registry = registry.with(
        log_file
            .and_then(|_| awscredd::eventlog::Layer::open())
            .with_filter(
                Targets::new().with_target(awscredd::eventlog::EVENT_LOG, LevelFilter::INFO),
            ),
    );
    match format {
        LogFormat::Text => registry.with(layer.with_filter(filter)).init(),
        LogFormat::Json => registry
            .with(layer.json().flatten_event(true).with_filter(filter))
            .init(),
    }
    Ok(())
}

fn runtime() -> Result<tokio::runtime::Runtime, u8> {
    or_exit(
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
    )
}

/// Runs a command on `rt`, then drops what it left (stopped by a signal: the tasks running
/// its sources and hooks, whose process groups are killed as they are dropped) without
/// waiting long for blocking work such as a lock wait.
fn finish(rt: tokio::runtime::Runtime, command: impl std::future::Future<Output = u8>) -> u8 {
    let code = rt.block_on(command);
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    code
}

/// See [`commands::run::runtime`].
fn daemon_runtime() -> Result<tokio::runtime::Runtime, u8> {
    or_exit(commands::run::runtime())
}

fn or_exit(rt: std::io::Result<tokio::runtime::Runtime>) -> Result<tokio::runtime::Runtime, u8> {
    rt.map_err(|e| {
        eprintln!("awscredd: cannot start the async runtime: {e}");
        exit::FAILED
    })
}

fn main() -> ExitCode {
    // `AWSCREDD_CONFIG=` (set, but empty) means unset, as for every variable read through
    // `process_env`: the default search. Removed before anything else runs (one thread yet),
    // so clap does not take it for a missing value.
    if awscredd::paths::process_env("AWSCREDD_CONFIG").is_none() {
        std::env::remove_var("AWSCREDD_CONFIG");
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            if !e.use_stderr() {
                let _ = e.print();
                return ExitCode::from(exit::OK);
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
                return ExitCode::from(exit::USAGE);
            }
            let _ = e.print();
            return ExitCode::from(exit::USAGE);
        }
    };
    // An SDK reads credential-process's stderr as its error message: one line, no logs, unless
    // asked for with --log-level (not RUST_LOG: the application that runs us may set it for
    // itself).
    // Quiet, no subscriber is installed at all: tracing's events then cost nothing.
    let quiet = matches!(cli.command, Command::CredentialProcess { .. }) && cli.log_level.is_none();
    // The Windows service has no console: it logs to a file.
    #[cfg(windows)]
    let log_file = match &cli.command {
        Command::Service {
            action: ServiceAction::Run,
        } => commands::service::log_file(),
        _ => None,
    };
    #[cfg(not(windows))]
    let log_file: Option<std::path::PathBuf> = None;
    if !quiet {
        if let Err(e) = init_logging(
            cli.log_format,
            cli.log_level.as_deref(),
            log_file.as_deref(),
        ) {
            eprintln!("awscredd: {e}");
            return ExitCode::from(exit::USAGE);
        }
    }
    let config = cli.config.as_deref();
    let code = match cli.command {
        Command::Check => commands::check::exec(config),
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
        Command::Run => match daemon_runtime() {
            Ok(rt) => {
                let code = rt.block_on(commands::run::exec(config));
                // A write in flight finishes (files are replaced whole); nothing else waits.
                rt.shutdown_timeout(std::time::Duration::from_millis(1500));
                code
            }
            Err(code) => code,
        },
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
            match runtime() {
                Ok(rt) => finish(rt, commands::once::exec(config, &args)),
                Err(code) => code,
            }
        }
        // Fresh credentials are printed with no async runtime (SDKs run this at every start-up,
        // often from many processes at once); only a refresh builds one.
        Command::CredentialProcess { profile } => {
            match commands::credential_process::start(config, &profile) {
                Step::Done(code) => code,
                Step::Refresh(refresh) => match runtime() {
                    Ok(rt) => finish(rt, refresh.run()),
                    Err(code) => code,
                },
            }
        }
        Command::RunHook {
            output,
            profiles,
            command,
        } => match runtime() {
            Ok(rt) => finish(rt, commands::run_hook::exec(&command, &output, &profiles)),
            Err(code) => code,
        },
        Command::Login {
            sso_session,
            no_browser,
        } => {
            let args = LoginArgs {
                sso_session,
                no_browser,
            };
            match runtime() {
                Ok(rt) => rt.block_on(commands::login::exec(config, &args)),
                Err(code) => code,
            }
        }
    };
    ExitCode::from(code)
}
