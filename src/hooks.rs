//! `on_change`: a program run after a write that changed credentials in an output file, so
//! programs that read the file once (the Go and JS SDKs, s3fs, services) are told to re-read
//! it or restart.
//!
//! - An argument list, no shell, started through [`crate::child`] (no stdin, its output read
//!   up to a limit and logged, killed with its process group after [`TIMEOUT`]), once the new
//!   file is in place and synced. Its environment is awscredd's plus `AWSCREDD_OUTPUT` (the
//!   file's path as configured, `~` expanded) and `AWSCREDD_PROFILES` (the profiles whose
//!   credentials changed in it, sorted, comma-separated) — never a secret.
//! - At most one run per output at a time: changes made while it runs lead to one more run
//!   after it ends, with every profile that changed meanwhile.
//! - A failing or hanging hook never fails a pass, delays another output, or stops the
//!   daemon: each runs in a task of its own. `once` waits for the hooks it started
//!   ([`Hooks::wait`]); its exit status does not depend on them.
//! - A hook that exited is done: what it started in the background (the app it restarts) is
//!   left running ([`crate::child::AfterExit::Leave`]); its process group is killed only at
//!   the limit, or when the process that runs it is stopped ([`Hooks::stop`]: `once` ended by
//!   SIGTERM or SIGINT).
//! - `credential-process` must answer its SDK at once, so it does not wait for its hooks:
//!   each is run by a supervisor, `awscredd run-hook` (hidden), started in the background,
//!   which applies the same limit ([`supervise`]); a `credential-process` that is stopped
//!   stops the supervisors it started, and they their hooks.

use crate::config::Output;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a hook may run before it and its process group are killed.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(60);
/// The most of a hook's stdout that is read (and logged).
const STDOUT_MAX: usize = 64 * 1024;

#[derive(Default)]
struct OutputHook {
    running: bool,
    /// Profiles that changed while a run was in progress: one more run after it.
    pending: BTreeSet<String>,
}

/// The hooks of one awscredd process.
#[derive(Default)]
pub struct Hooks {
    outputs: Mutex<BTreeMap<PathBuf, OutputHook>>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Every hook task started, for [`Hooks::stop`] (those [`Hooks::wait`] took too).
    aborts: Mutex<Vec<tokio::task::AbortHandle>>,
    /// Start hooks under a supervisor and leave them running (`credential-process`, which
    /// must answer its SDK at once): no waiting, no coalescing, their output unlogged.
    detached: bool,
    /// The supervisors started (see [`Hooks::detached`]), to stop with this process.
    supervisors: Mutex<Vec<std::process::Child>>,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hooks")
    }
}

impl Hooks {
    pub fn new() -> Arc<Self> {
        Arc::new(Hooks::default())
    }

    /// Hooks that are started and left running (see [`Hooks::detached`] field).
    pub fn detached() -> Arc<Self> {
        Arc::new(Hooks {
            detached: true,
            ..Hooks::default()
        })
    }

    /// The credentials of `profiles` changed in `output`: run its `on_change`, or run it once
    /// more after the run in progress.
    pub fn changed(self: &Arc<Self>, output: &Output, profiles: Vec<String>) {
        let Some(cmd) = output.on_change.clone() else {
            return;
        };
        if profiles.is_empty() {
            return;
        }
        if self.detached {
            match start_supervisor(&cmd, &output.path, &profiles) {
                Ok(child) => lock(&self.supervisors).push(child),
                Err(e) => {
                    tracing::warn!(output = %output.path.display(), "cannot start on_change `{}`: {e}", cmd[0])
                }
            }
            return;
        }
        {
            let mut outputs = lock(&self.outputs);
            let state = outputs.entry(output.path.clone()).or_default();
            if state.running {
                state.pending.extend(profiles);
                tracing::debug!(output = %output.path.display(), "on_change is running: one more run after it");
                return;
            }
            state.running = true;
        }
        let me = self.clone();
        let path = output.path.clone();
        let handle = tokio::spawn(async move {
            let mut changed: BTreeSet<String> = profiles.into_iter().collect();
            loop {
                run(&cmd, &path, &changed).await;
                let mut outputs = me.outputs.lock().unwrap_or_else(|e| e.into_inner());
                let state = outputs.entry(path.clone()).or_default();
                if state.pending.is_empty() {
                    state.running = false;
                    break;
                }
                changed = std::mem::take(&mut state.pending);
            }
        });
        // Finished runs are forgotten here: the daemon runs hooks for months, and a handle
        // kept per run was memory kept per run.
        let mut aborts = lock(&self.aborts);
        aborts.retain(|a| !a.is_finished());
        aborts.push(handle.abort_handle());
        let mut tasks = lock(&self.tasks);
        tasks.retain(|t| !t.is_finished());
        tasks.push(handle);
    }

    /// Stops every hook still running, with what it started (its process group), and the
    /// supervisors of detached hooks (which stop theirs): this process is being stopped.
    pub async fn stop(&self) {
        for a in std::mem::take(&mut *lock(&self.aborts)) {
            a.abort();
        }
        // Awaited, so each run's future is dropped (and its group killed) before we return;
        // those `wait` was awaiting are dropped as soon as the runtime polls them.
        let tasks = std::mem::take(&mut *lock(&self.tasks));
        for t in tasks {
            let _ = t.await;
        }
        tokio::task::yield_now().await;
        for mut child in std::mem::take(&mut *lock(&self.supervisors)) {
            if matches!(child.try_wait(), Ok(None)) {
                stop_supervisor(&mut child);
            }
        }
    }

    /// Waits up to `limit` for every hook started so far (and the runs they coalesced).
    pub async fn wait(&self, limit: Duration) {
        let tasks: Vec<_> = std::mem::take(&mut *lock(&self.tasks));
        if tasks.is_empty() {
            return;
        }
        let all = async {
            for t in tasks {
                let _ = t.await;
            }
        };
        if tokio::time::timeout(limit, all).await.is_err() {
            tracing::warn!(
                "stopped waiting for on_change hooks after {}s",
                limit.as_secs()
            );
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The hidden subcommand that runs one hook for `credential-process` (see the module header).
pub(crate) const SUPERVISOR_COMMAND: &str = "run-hook";

/// Starts `awscredd run-hook` for `cmd`, in the background: no standard streams (the SDK
/// reading `credential-process` must not wait for them), a process group of its own.
fn start_supervisor(
    cmd: &[String],
    path: &Path,
    profiles: &[String],
) -> std::io::Result<std::process::Child> {
    let exe = std::env::current_exe()?;
    let mut c = std::process::Command::new(exe);
    c.arg(SUPERVISOR_COMMAND)
        .arg("--output")
        .arg(path)
        .arg("--profiles")
        .arg(profiles.join(","))
        .arg("--")
        .args(cmd)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut c, 0);
    c.spawn()
}

/// Asks a supervisor to stop (it kills its hook's group, then exits), and reaps it.
fn stop_supervisor(child: &mut std::process::Child) {
    #[cfg(unix)]
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
        for _ in 0..50 {
            if !matches!(child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// `awscredd run-hook`: runs the hook `cmd` once for `profiles` of the output at `path`, as
/// `run` and `once` do (the limit, its group killed if it is stopped).
pub(crate) async fn supervise(cmd: &[String], path: &Path, profiles: &[String]) {
    if cmd.is_empty() {
        return;
    }
    let changed: BTreeSet<String> = profiles.iter().cloned().collect();
    run(cmd, path, &changed).await;
}

/// The hook's command: the program itself (Rust's `Command` runs a `.bat`/`.cmd` through
/// `cmd.exe` with safe quoting on Windows), with the two variables.
fn command(cmd: &[String], path: &Path, profiles: &[&str]) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(&cmd[0]);
    c.args(&cmd[1..])
        .env("AWSCREDD_OUTPUT", path)
        .env("AWSCREDD_PROFILES", profiles.join(","));
    c
}

/// Runs `cmd` once for `profiles` of the file at `path`, and logs what it did.
async fn run(cmd: &[String], path: &Path, profiles: &BTreeSet<String>) {
    let list: Vec<&str> = profiles.iter().map(String::as_str).collect();
    let c = command(cmd, path, &list);
    let program = &cmd[0];
    let limits = crate::child::Limits {
        timeout: TIMEOUT,
        stdout_max: STDOUT_MAX,
        after_exit: crate::child::AfterExit::Leave,
    };
    tracing::info!(output = %path.display(), profiles = %list.join(","), "running on_change `{program}`");
    match crate::child::run(c, None, limits).await {
        Ok(done) => {
            let out = String::from_utf8_lossy(&done.stdout);
            for line in out.lines().filter(|l| !l.trim().is_empty()) {
                tracing::info!(output = %path.display(), "on_change: {}", crate::child::redact(line, &[]));
            }
            if let Some(note) = done.stderr_cut_note() {
                tracing::info!(output = %path.display(), "on_change stderr: {note}");
            }
            for line in &done.stderr_lines {
                tracing::info!(output = %path.display(), "on_change stderr: {}", crate::child::redact(line, &[]));
            }
            if done.status.success() {
                tracing::info!(output = %path.display(), status = %done.status, "on_change `{program}` ended");
            } else {
                tracing::warn!(output = %path.display(), status = %done.status, "on_change `{program}` failed");
            }
        }
        Err(e) => tracing::warn!(output = %path.display(), "on_change `{program}`: {e}"),
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn output(dir: &Path) -> Output {
        Output {
            path: dir.join("creds"),
            profiles: vec!["a".into()],
            mode: 0o600,
            owner: None,
            group: None,
            format: crate::formats::Format::Ini,
            state_file: dir.join("state.json"),
            on_change: Some(vec!["true".into()]),
        }
    }

    /// Issue 27 item 7: under `run`, every hook run left its task handle behind (1.4 KB a
    /// run, 3 MB after 2,000): what is kept must not grow with the runs.
    #[tokio::test]
    async fn finished_hook_runs_are_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let out = output(dir.path());
        let hooks = Hooks::new();
        for _ in 0..30 {
            hooks.changed(&out, vec!["a".into()]);
            // Until this run has ended, as the daemon's next pass would find it.
            for _ in 0..500 {
                if !lock(&hooks.outputs)[&out.path].running {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            tokio::task::yield_now().await;
        }
        assert!(
            lock(&hooks.tasks).len() <= 2,
            "{}",
            lock(&hooks.tasks).len()
        );
        assert!(
            lock(&hooks.aborts).len() <= 2,
            "{}",
            lock(&hooks.aborts).len()
        );
    }
}
