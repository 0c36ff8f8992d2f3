//! `awscredd service install / uninstall / run` (Windows): register awscredd with the Service
//! Control Manager, remove it, or be started by it. The service runs exactly what `run` runs;
//! the SCM's Stop and Shutdown controls feed the same stop path as SIGTERM does on Unix.

use super::exit;
use crate::config;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;
use windows_service::service::{
    ServiceAccess, ServiceControl, ServiceControlAccept, ServiceErrorControl, ServiceExitCode,
    ServiceInfo, ServiceStartType, ServiceState, ServiceStatus, ServiceType,
};
use windows_service::service_control_handler::{self, ServiceControlHandlerResult};
use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};
use windows_service::{define_windows_service, service_dispatcher};

/// The service's name in the Service Control Manager.
pub const SERVICE_NAME: &str = "awscredd";

/// The config the dispatched service runs with (set before dispatching).
static CONFIG: OnceLock<PathBuf> = OnceLock::new();

/// Registers the service to start automatically with `--config PATH service run`, after
/// checking that the config is valid.
pub fn install(config_path: Option<&Path>) -> u8 {
    let env = &crate::paths::process_env;
    let path = match config::locate(config_path, env) {
        Ok(p) => std::path::absolute(&p).unwrap_or(p),
        Err(e) => {
            eprintln!("{e}");
            return exit::USAGE;
        }
    };
    if let Err(e) = config::load(&path, env) {
        eprintln!("{e}");
        return exit::USAGE;
    }
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("awscredd: cannot find this program's path: {e}");
            return exit::FAILED;
        }
    };
    let result = (|| -> windows_service::Result<()> {
        let manager = ServiceManager::local_computer(
            None::<&str>,
            ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE,
        )?;
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
            account_name: None,
            account_password: None,
        };
        let service = manager.create_service(&info, ServiceAccess::CHANGE_CONFIG)?;
        service.set_description(
            "Keeps AWS credentials files fresh from IAM Identity Center and STS.",
        )?;
        Ok(())
    })();
    match result {
        Ok(()) => {
            println!(
                "installed the `{SERVICE_NAME}` service with {}; start it with `sc start {SERVICE_NAME}`",
                path.display()
            );
            exit::OK
        }
        Err(e) => {
            eprintln!("awscredd: cannot install the service (run as Administrator): {e}");
            exit::FAILED
        }
    }
}

/// Stops the service if it runs, and removes it.
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
    match result {
        Ok(()) => {
            println!("removed the `{SERVICE_NAME}` service");
            exit::OK
        }
        Err(e) => {
            eprintln!("awscredd: cannot remove the service (run as Administrator): {e}");
            exit::FAILED
        }
    }
}

/// Hands this process to the Service Control Manager (`service run`, as the SCM starts it).
pub fn dispatch(config_path: Option<&Path>) -> u8 {
    let env = &crate::paths::process_env;
    let path = match config::locate(config_path, env) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!("{e}");
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
        checkpoint: 0,
        wait_hint: Duration::from_secs(5),
        process_id: None,
    }
}

fn run_service() -> windows_service::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let handler = move |control| match control {
        ServiceControl::Stop | ServiceControl::Shutdown => {
            tracing::info!("stop requested by the Service Control Manager");
            let _ = stop_tx.send(true);
            ServiceControlHandlerResult::NoError
        }
        ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
        _ => ServiceControlHandlerResult::NotImplemented,
    };
    let handle = service_control_handler::register(SERVICE_NAME, handler)?;
    handle.set_service_status(status(ServiceState::Running, 0))?;
    let code = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => {
            let path = CONFIG.get().cloned();
            let code = rt.block_on(crate::commands::run::serve(path.as_deref(), stop_rx, None));
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

/// Where the service logs (it has no console): `%ProgramData%\awscredd\awscredd.log`.
pub fn log_file() -> Option<PathBuf> {
    let pd = std::env::var_os("ProgramData")?;
    Some(Path::new(&pd).join("awscredd").join("awscredd.log"))
}
