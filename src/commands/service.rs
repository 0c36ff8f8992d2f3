//! `awscredd service install / uninstall / run` (Windows): register awscredd with the Service
//! Control Manager, remove it, or be started by it. The service runs exactly what `run` runs;
//! the SCM's Stop and Shutdown controls feed the same stop path as SIGTERM does on Unix.
//!
//! The service reports START_PENDING until its config is loaded and the first pass begins, so a
//! bad config fails the start visibly (STOPPED, service-specific exit code 78, and `net start`
//! says so) rather than after a RUNNING that meant nothing. It logs to a size-rotated
//! `%ProgramData%\awscredd\awscredd.log` and reports start, stop, config errors, sign-ins
//! needed and repeated failures to the Event Log ([`crate::eventlog`]).
//!
//! Recovery: the service sets its own failure actions when it starts ([`ensure_recovery`]), so
//! a service registered by the MSI (whose `ServiceInstall` table has no failure actions) is
//! restarted after a crash too. A stop the service reports itself (exit 0, or 78 for a bad
//! config) is not a failure to the Service Control Manager, so it is never restarted.

use super::exit;
use crate::config;
use crate::eventlog::{ids, EVENT_LOG};
use std::ffi::OsString;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;
use windows_service::service::{
    Service, ServiceAccess, ServiceAction, ServiceActionType, ServiceControl, ServiceControlAccept,
    ServiceErrorControl, ServiceExitCode, ServiceFailureActions, ServiceFailureResetPeriod,
    ServiceInfo, ServiceStartType, ServiceState, ServiceStatus, ServiceType,
};
use windows_service::service_control_handler::{self, ServiceControlHandlerResult};
use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};
use windows_service::{define_windows_service, service_dispatcher};

/// The service's name in the Service Control Manager.
pub const SERVICE_NAME: &str = "awscredd";
/// The log file is rotated past this size (or `AWSCREDD_LOG_MAX_BYTES`); [`LOG_FILES_KEPT`]
/// older ones are kept.
pub const LOG_MAX_BYTES: usize = 10 * 1024 * 1024;
pub const LOG_FILES_KEPT: usize = 5;

/// The config the dispatched service runs with (set before dispatching).
static CONFIG: OnceLock<PathBuf> = OnceLock::new();

/// Which account the service runs as (`service install --account`).
pub struct Account {
    /// `.\name`, `DOMAIN\name`, or a built-in account; `None` for LocalSystem.
    pub name: Option<String>,
    /// Where the password is (its first line); without it, it is asked for on the console.
    pub password_file: Option<PathBuf>,
}

/// Built-in accounts and group managed service accounts sign in without a password.
fn needs_password(account: &str) -> bool {
    let a = account.to_ascii_lowercase();
    let builtin = [
        r"nt authority\localservice",
        r"nt authority\networkservice",
        r"nt authority\system",
        "localsystem",
    ];
    !(builtin.contains(&a.as_str()) || a.ends_with('$'))
}

/// Registers the service to start automatically with `--config PATH service run`, after
/// checking that the config is valid, and registers its Event Log source.
pub fn install(config_path: Option<&Path>, account: &Account) -> u8 {
    let env = &crate::paths::process_env;
    let path = match config::locate(config_path, env) {
        Ok(p) => std::path::absolute(&p).unwrap_or(p),
        Err(e) => {
            eprintln!("{e}");
            return exit::USAGE;
        }
    };
    let cfg = match config::load(&path, env) {
        Ok((cfg, _)) => cfg,
        Err(e) => {
            eprintln!("{e}");
            return exit::USAGE;
        }
    };
    let password = match password_for(account) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("awscredd: {}", crate::text::shown(&e));
            return exit::USAGE;
        }
    };
    let local_system = account.name.as_deref().is_none_or(|a| {
        ["localsystem", r"nt authority\system", r".\localsystem"]
            .contains(&a.to_ascii_lowercase().as_str())
    });
    if local_system {
        for line in local_system_warnings(&path, &cfg) {
            eprintln!("warning: {line}");
        }
    }
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("awscredd: cannot find this program's path: {e}");
            return exit::FAILED;
        }
    };
    let info = ServiceInfo {
        name: OsString::from(SERVICE_NAME),
        display_name: OsString::from("awscredd (AWS credentials refresher)"),
        service_type: ServiceType::OWN_PROCESS,
        start_type: ServiceStartType::AutoStart,
        error_control: ServiceErrorControl::Normal,
        executable_path: exe,
        launch_arguments: vec![
            OsString::from("--config"),
            path.clone().into_os_string(),
            OsString::from("service"),
            OsString::from("run"),
        ],
        dependencies: vec![],
        account_name: account.name.as_ref().map(OsString::from),
        account_password: password,
    };
    if let Err(e) = create_service(&info) {
        eprintln!("awscredd: cannot install the service (run as Administrator): {e}");
        return exit::FAILED;
    }
    if let Err(e) = crate::eventlog::register_source() {
        eprintln!("warning: {e}; the service logs to its log file only");
    }
    let who = account.name.as_deref().unwrap_or("LocalSystem");
    println!(
        "installed the `{SERVICE_NAME}` service (as {who}) with {}; start it with `sc start {SERVICE_NAME}`",
        path.display()
    );
    exit::OK
}

/// Registers the service with the Service Control Manager.
fn create_service(info: &ServiceInfo) -> windows_service::Result<()> {
    let manager = ServiceManager::local_computer(
        None::<&str>,
        ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE,
    )?;
    // START too: the SCM wants it on the handle that sets a restart action.
    let service =
        manager.create_service(info, ServiceAccess::CHANGE_CONFIG | ServiceAccess::START)?;
    service
        .set_description("Keeps AWS credentials files fresh from IAM Identity Center and STS.")?;
    if let Err(e) = service.update_failure_actions(recovery()) {
        eprintln!(
            "warning: cannot set the service's recovery actions: {e}; {}",
            recovery_by_hand()
        );
    }
    Ok(())
}

/// The restart delays after the first, second, and each later crash.
const RESTART_DELAYS: [Duration; 3] = [
    Duration::from_secs(10),
    Duration::from_secs(60),
    Duration::from_secs(300),
];
/// A day without a crash resets the count (the next crash is "the first" again).
const RECOVERY_RESET: Duration = Duration::from_secs(24 * 60 * 60);

/// The same recovery with `sc.exe`, for when the service may not set it itself.
fn recovery_by_hand() -> String {
    let actions: Vec<String> = RESTART_DELAYS
        .iter()
        .map(|d| format!("restart/{}", d.as_millis()))
        .collect();
    format!(
        "as Administrator: sc failure {SERVICE_NAME} reset= {} actions= {}",
        RECOVERY_RESET.as_secs(),
        actions.join("/")
    )
}

/// What the Service Control Manager does when the service's process ends without reporting
/// STOPPED (a crash, a kill): restart it after [`RESTART_DELAYS`], the count reset after
/// [`RECOVERY_RESET`] without a crash. The message and command are left as they are.
fn recovery() -> ServiceFailureActions {
    ServiceFailureActions {
        reset_period: ServiceFailureResetPeriod::After(RECOVERY_RESET),
        reboot_msg: None,
        command: None,
        actions: Some(
            RESTART_DELAYS
                .iter()
                .map(|&delay| ServiceAction {
                    action_type: ServiceActionType::Restart,
                    delay,
                })
                .collect(),
        ),
    }
}

/// Whether the service's failure actions are already [`recovery`]'s (`None`: cannot tell).
fn has_recovery(service: &Service) -> Option<bool> {
    let now = service.get_failure_actions().ok()?;
    let want = recovery();
    Some(now.reset_period == want.reset_period && now.actions == want.actions)
}

/// Run by the service as it starts: sets [`recovery`] on itself when its failure actions are
/// not that already (an MSI install, or an administrator's change), and makes sure a stop with
/// an exit code (78, a bad config) does not count as a failure. Only logs when it cannot: an
/// account without the right to change its own service gets the `sc failure` line to run.
fn ensure_recovery() {
    let result = (|| -> windows_service::Result<bool> {
        let manager = ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT)?;
        let query = manager.open_service(SERVICE_NAME, ServiceAccess::QUERY_CONFIG)?;
        // Windows' default is off; an administrator may have turned it on ("Enable actions for
        // stops with errors"), which would restart a bad config in a loop.
        // A query that fails (Wine has neither) counts as "not set" for the actions, "off" for
        // the flag.
        let restarts_non_crash =
            matches!(query.get_failure_actions_on_non_crash_failures(), Ok(true));
        let has = has_recovery(&query) == Some(true);
        if has && !restarts_non_crash {
            return Ok(false);
        }
        let change = manager.open_service(
            SERVICE_NAME,
            ServiceAccess::QUERY_CONFIG | ServiceAccess::CHANGE_CONFIG | ServiceAccess::START,
        )?;
        if restarts_non_crash {
            change.set_failure_actions_on_non_crash_failures(false)?;
        }
        if !has {
            change.update_failure_actions(recovery())?;
        }
        Ok(true)
    })();
    match result {
        Ok(true) => tracing::info!(
            restart_after_s = ?RESTART_DELAYS.map(|d| d.as_secs()),
            reset_after_s = RECOVERY_RESET.as_secs(),
            "set the service's recovery: restarted after a crash, not after a stop it reports"
        ),
        Ok(false) => tracing::debug!("the service's recovery is set"),
        Err(e) => tracing::warn!(
            "cannot set the service's recovery actions (restart after a crash): {e}; {}",
            recovery_by_hand()
        ),
    }
}

/// The password to register `account` with: none for LocalSystem, built-in accounts and gMSAs.
fn password_for(account: &Account) -> Result<Option<OsString>, String> {
    match (&account.name, &account.password_file) {
        (Some(name), file) if needs_password(name) => {
            read_password(name, file.as_deref()).map(|p| Some(OsString::from(p)))
        }
        (None, Some(_)) => Err("--password-file needs --account".into()),
        _ => Ok(None),
    }
}

/// The password of `account`: the first line of `file`, else asked for on the console (without
/// echo) or read from standard input. Never from the command line.
fn read_password(account: &str, file: Option<&Path>) -> Result<String, String> {
    let line = match file {
        Some(f) => {
            let text = std::fs::read_to_string(f)
                .map_err(|e| format!("cannot read the password file `{}`: {e}", f.display()))?;
            text.lines().next().unwrap_or_default().to_string()
        }
        None => {
            eprint!("password for {account}: ");
            let _ = std::io::stderr().flush();
            let echo = EchoOff::new();
            let mut line = String::new();
            let read = std::io::stdin().lock().read_line(&mut line);
            drop(echo);
            eprintln!();
            read.map_err(|e| format!("cannot read the password: {e}"))?;
            line.trim_end_matches(['\r', '\n']).to_string()
        }
    };
    if line.is_empty() {
        return Err(format!("no password for {account}"));
    }
    Ok(line)
}

/// Turns off console echo while it lives (nothing to do when standard input is not a console).
struct EchoOff(Option<(windows_sys::Win32::Foundation::HANDLE, u32)>);

impl EchoOff {
    fn new() -> EchoOff {
        use windows_sys::Win32::System::Console::{
            GetConsoleMode, GetStdHandle, SetConsoleMode, ENABLE_ECHO_INPUT, STD_INPUT_HANDLE,
        };
        // SAFETY: plain console calls on the process's own standard input handle.
        unsafe {
            let h = GetStdHandle(STD_INPUT_HANDLE);
            let mut mode = 0u32;
            if GetConsoleMode(h, &mut mode) == 0 {
                return EchoOff(None);
            }
            SetConsoleMode(h, mode & !ENABLE_ECHO_INPUT);
            EchoOff(Some((h, mode)))
        }
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        if let Some((h, mode)) = self.0 {
            // SAFETY: restoring the mode read in `new` on the same handle.
            unsafe { windows_sys::Win32::System::Console::SetConsoleMode(h, mode) };
        }
    }
}

/// Under LocalSystem `~` is the system profile, not the installing user's: the files that a
/// path with `~` (or the default `~\.aws\credentials`) and the SSO token cache would name
/// there, each as one warning.
fn local_system_warnings(path: &Path, cfg: &config::Config) -> Vec<String> {
    let root = crate::paths::process_env("SystemRoot").unwrap_or_else(|| r"C:\Windows".into());
    let profile = format!(r"{root}\System32\config\systemprofile");
    let as_service = |name: &str| match name {
        "USERPROFILE" => Some(profile.clone()),
        "HOME" | "HOMEDRIVE" | "HOMEPATH" => None,
        _ => crate::paths::process_env(name),
    };
    let Ok((service_cfg, _)) = config::load(path, &as_service) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (mine, theirs) in cfg.outputs.iter().zip(service_cfg.outputs.iter()) {
        if mine.path != theirs.path {
            out.push(format!(
                "the service runs as LocalSystem, so the output `{}` is written to `{}` (the system profile); give [[output]] an absolute path, or install with --account",
                mine.path.display(),
                theirs.path.display()
            ));
        }
    }
    if !cfg.sso_sessions.is_empty() {
        out.push(format!(
            r"the service runs as LocalSystem, so its SSO token cache is `{profile}\.aws\sso\cache`, not yours: `aws sso login` as you does not sign the service in (its sign-in URL and code go to the log and the Event Log), or install with --account"
        ));
    }
    out
}

/// Stops the service if it runs, removes it, and removes its Event Log source.
pub fn uninstall() -> u8 {
    let result = (|| -> windows_service::Result<()> {
        let manager = ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT)?;
        let service = manager.open_service(
            SERVICE_NAME,
            ServiceAccess::QUERY_STATUS | ServiceAccess::STOP | ServiceAccess::DELETE,
        )?;
        if service.query_status()?.current_state != ServiceState::Stopped {
            let _ = service.stop();
            for _ in 0..50 {
                if service.query_status()?.current_state == ServiceState::Stopped {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        service.delete()
    })();
    if let Err(e) = result {
        eprintln!("awscredd: cannot remove the service (run as Administrator): {e}");
        return exit::FAILED;
    }
    if let Err(e) = crate::eventlog::deregister_source() {
        eprintln!("warning: {e}");
    }
    println!("removed the `{SERVICE_NAME}` service");
    exit::OK
}

/// Hands this process to the Service Control Manager (`service run`, as the SCM starts it).
pub fn dispatch(config_path: Option<&Path>) -> u8 {
    let env = &crate::paths::process_env;
    let path = match config::locate(config_path, env) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(target: EVENT_LOG, event_id = ids::CONFIG_ERROR, "{e}");
            return crate::commands::run::EX_CONFIG;
        }
    };
    let _ = CONFIG.set(path);
    match service_dispatcher::start(SERVICE_NAME, ffi_service_main) {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("awscredd: not started by the Service Control Manager: {e}");
            exit::FAILED
        }
    }
}

define_windows_service!(ffi_service_main, service_main);

fn service_main(_arguments: Vec<OsString>) {
    if let Err(e) = run_service() {
        tracing::error!("the service failed: {e}");
    }
}

fn status(state: ServiceState, exit_code: u32) -> ServiceStatus {
    ServiceStatus {
        service_type: ServiceType::OWN_PROCESS,
        current_state: state,
        controls_accepted: if state == ServiceState::Running {
            ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN
        } else {
            ServiceControlAccept::empty()
        },
        exit_code: if exit_code == 0 {
            ServiceExitCode::Win32(0)
        } else {
            ServiceExitCode::ServiceSpecific(exit_code)
        },
        checkpoint: u32::from(matches!(
            state,
            ServiceState::StartPending | ServiceState::StopPending
        )),
        // Loading the config takes well under a second; the stop path at most ~2 s.
        wait_hint: Duration::from_secs(10),
        process_id: None,
    }
}

fn run_service() -> windows_service::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let registered = std::sync::Arc::new(OnceLock::new());
    let for_handler = registered.clone();
    let handler = move |control| match control {
        ServiceControl::Stop | ServiceControl::Shutdown => {
            tracing::info!("stop requested by the Service Control Manager");
            if let Some(h) = for_handler.get() {
                let _ = service_control_handler::ServiceStatusHandle::set_service_status(
                    h,
                    status(ServiceState::StopPending, 0),
                );
            }
            let _ = stop_tx.send(true);
            ServiceControlHandlerResult::NoError
        }
        ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
        _ => ServiceControlHandlerResult::NotImplemented,
    };
    let handle = service_control_handler::register(SERVICE_NAME, handler)?;
    let _ = registered.set(handle);
    handle.set_service_status(status(ServiceState::StartPending, 0))?;
    ensure_recovery();
    let running = || {
        if let Err(e) = handle.set_service_status(status(ServiceState::Running, 0)) {
            tracing::error!("cannot report RUNNING to the Service Control Manager: {e}");
        }
    };
    let code = match crate::commands::run::runtime() {
        Ok(rt) => {
            let path = CONFIG.get().cloned();
            let code = rt.block_on(crate::commands::run::serve(
                path.as_deref(),
                stop_rx,
                None,
                running,
            ));
            rt.shutdown_timeout(Duration::from_millis(1500));
            code
        }
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            exit::FAILED
        }
    };
    handle.set_service_status(status(ServiceState::Stopped, u32::from(code)))
}

/// Where the service logs (it has no console): `%ProgramData%\awscredd\awscredd.log`, the
/// ProgramData known folder (not the variable, see [`crate::paths::process_env`]).
pub fn log_file() -> Option<PathBuf> {
    let pd = crate::paths::program_data()?;
    Some(Path::new(&pd).join("awscredd").join("awscredd.log"))
}

/// The service's log: appended to, rotated past [`LOG_MAX_BYTES`] or `AWSCREDD_LOG_MAX_BYTES`
/// (into `awscredd.log.1`, the newest, up to `.5`), whole lines kept together.
pub fn open_log(
    path: &Path,
) -> Result<file_rotate::FileRotate<file_rotate::suffix::AppendCount>, String> {
    use file_rotate::{compression::Compression, suffix::AppendCount, ContentLimit, FileRotate};
    let cannot = |e: std::io::Error| format!("cannot open the log file `{}`: {e}", path.display());
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(cannot)?;
    }
    // FileRotate drops an open error; open once here so it is reported.
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(cannot)?;
    let max = match crate::paths::process_env("AWSCREDD_LOG_MAX_BYTES") {
        None => LOG_MAX_BYTES,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => {
                return Err(format!(
                    "AWSCREDD_LOG_MAX_BYTES: `{v}` is not a positive number"
                ))
            }
        },
    };
    Ok(FileRotate::new(
        path,
        AppendCount::new(LOG_FILES_KEPT),
        ContentLimit::BytesSurpassed(max),
        Compression::None,
        None,
    ))
}
