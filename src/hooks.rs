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

use crate::config::Output;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a hook may run before it and its process group are killed.
pub const TIMEOUT: Duration = Duration::from_secs(60);
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
    /// Start hooks and leave them running (`credential-process`, which must answer its SDK
    /// at once): no waiting, no coalescing, their output unlogged.
    detached: bool,
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
            let list: Vec<&str> = profiles.iter().map(String::as_str).collect();
            let c = command(&cmd, &output.path, &list);
            if let Err(e) = crate::child::spawn_detached(c, |_, _| {}) {
                tracing::warn!(output = %output.path.display(), "cannot start on_change `{}`: {e}", cmd[0]);
            }
            return;
        }
        {
            let mut outputs = self.outputs.lock().unwrap_or_else(|e| e.into_inner());
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
        self.tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(handle);
    }

    /// Waits up to `limit` for every hook started so far (and the runs they coalesced).
    pub async fn wait(&self, limit: Duration) {
        let tasks: Vec<_> =
            std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
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
    };
    tracing::info!(output = %path.display(), profiles = %list.join(","), "running on_change `{program}`");
    match crate::child::run(c, None, limits).await {
        Ok(done) => {
            let out = String::from_utf8_lossy(&done.stdout);
            for line in out.lines().filter(|l| !l.trim().is_empty()) {
                tracing::info!(output = %path.display(), "on_change: {}", crate::child::redact(line, &[]));
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
