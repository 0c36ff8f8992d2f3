//! Reaping orphans when awscredd is PID 1 (the `FROM scratch` image, where nothing else is
//! init): a process whose parent exits becomes a child of PID 1, and a child that is never
//! waited for stays a zombie. A source that leaves a child behind (killed with its group when
//! the source exits) would leave a zombie per refresh.
//!
//! Only orphans are reaped: zombies among this process's children that are not
//! [`super::OWN_CHILDREN`], found in `/proc`, are waited for by pid. awscredd's own children
//! keep their exit status for the code that waits for them (tokio's `Child::wait`); a waitpid
//! of any child (`-1`) would steal it.

#[cfg(target_os = "linux")]
use std::time::Duration;
use tokio::sync::watch;

/// How often the zombies are looked for besides at each `SIGCHLD`.
#[cfg(target_os = "linux")]
const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// Whether this process is PID 1 of its PID namespace, so the orphans are its to reap.
pub(crate) fn is_init() -> bool {
    std::process::id() == 1
}

/// Reaps the orphans until `stop` turns true: at every `SIGCHLD`, and every [`SWEEP_EVERY`].
#[cfg(target_os = "linux")]
pub(crate) async fn reap_until(mut stop: watch::Receiver<bool>) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut sigchld = match signal(SignalKind::child()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!("cannot listen for SIGCHLD, reaping orphans every 30 s: {e}");
            None
        }
    };
    tracing::info!("running as PID 1: reaping the orphaned processes that end up here");
    loop {
        let reaped = tokio::task::spawn_blocking(reap).await.unwrap_or(0);
        if reaped > 0 {
            tracing::debug!(reaped, "reaped orphaned processes");
        }
        let chld = async {
            match sigchld.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = chld => {}
            _ = tokio::time::sleep(SWEEP_EVERY) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// Not Linux: nothing to reap this way.
#[cfg(not(target_os = "linux"))]
pub(crate) async fn reap_until(_stop: watch::Receiver<bool>) {}

/// Waits for every zombie child of this process that is not one of its own; how many.
#[cfg(target_os = "linux")]
pub(crate) fn reap() -> usize {
    use nix::sys::wait::{waitpid, WaitPidFlag};
    let me = std::process::id();
    // Held while looking and reaping: no child of ours is started (and so unrecorded) meanwhile.
    let own = super::lock(&super::OWN_CHILDREN);
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut reaped = 0;
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if own.contains(&pid) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if zombie_child_of(&stat, me) {
            let Ok(raw) = i32::try_from(pid) else {
                continue;
            };
            if waitpid(nix::unistd::Pid::from_raw(raw), Some(WaitPidFlag::WNOHANG)).is_ok() {
                reaped += 1;
            }
        }
    }
    reaped
}

/// Whether a `/proc/PID/stat` line is a zombie whose parent is `parent`.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn zombie_child_of(stat: &str, parent: u32) -> bool {
    // `PID (COMM) STATE PPID ...`; COMM may hold spaces and parentheses: split at the last.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return false;
    };
    let mut fields = rest.split_whitespace();
    let state = fields.next();
    let ppid = fields.next().and_then(|p| p.parse::<u32>().ok());
    state == Some("Z") && ppid == Some(parent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zombie_child_is_told_from_its_stat_line() {
        assert!(zombie_child_of("42 (sleep) Z 1 42 42 0 -1", 1));
        assert!(zombie_child_of("42 (a (b) c) Z 7 42 42 0 -1", 7));
        assert!(!zombie_child_of("42 (sleep) S 1 42 42 0 -1", 1));
        assert!(!zombie_child_of("42 (sleep) Z 2 42 42 0 -1", 1));
        assert!(!zombie_child_of("garbage", 1));
    }

    /// A zombie child that is not our own is reaped; one of our own keeps its status.
    #[cfg(target_os = "linux")]
    #[test]
    #[allow(clippy::zombie_processes)] // the stray child is the one `reap` must wait for
    fn only_children_that_are_not_our_own_are_reaped() {
        let stray = std::process::Command::new("true").spawn().unwrap();
        let mut ours = std::process::Command::new("true").spawn().unwrap();
        super::super::lock(&super::super::OWN_CHILDREN).insert(ours.id());
        let is_zombie = |pid: u32| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| zombie_child_of(&s, std::process::id()))
        };
        for _ in 0..100 {
            if is_zombie(stray.id()) && is_zombie(ours.id()) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // Other tests' children may be reaped too: those are children of this test process
        // that are not recorded, exactly what is reaped in a daemon that is PID 1.
        reap();
        assert!(!is_zombie(stray.id()), "the stray child was not reaped");
        assert!(is_zombie(ours.id()), "our own child was reaped");
        super::super::lock(&super::super::OWN_CHILDREN).remove(&ours.id());
        assert!(ours.wait().unwrap().success());
    }
}
