//! Exclusive advisory locks on stable lock files; every lock awscredd takes goes through here.
//!
//! The data files themselves are replaced by rename, so a lock on them would protect nothing:
//! each locked resource has a separate lock file that is never renamed or deleted. Lock files
//! are opened like every other file awscredd touches ([`super::Target`]): never
//! through a link it must not follow, and only if they are regular files.
//!
//! A wait has a voice and an end: after a second it is logged (naming the lock file and, on
//! Linux, the process that holds it), and after the caller's limit it fails with an error
//! that says the same.

use super::Target;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A held lock; released when dropped (and by the OS if the process dies).
#[derive(Debug)]
pub struct FileLock {
    _file: File,
}

/// When a wait is first logged.
const LOG_AFTER: Duration = Duration::from_secs(1);

/// Takes the exclusive lock on `lock_path`, creating the file (mode 0600) if needed. If another
/// process holds it, logs after a second that we wait for it (naming `what`), and gives up
/// after `wait` with an error naming the lock file and its holder.
pub fn lock_exclusive(lock_path: &Path, what: &str, wait: Duration) -> io::Result<FileLock> {
    let file = Target::open(lock_path, true)?.open_as_lock_file()?;
    acquire(file, lock_path, what, wait)
}

/// Takes the exclusive lock on an opened lock file (see [`lock_exclusive`]).
pub fn acquire(file: File, lock_path: &Path, what: &str, wait: Duration) -> io::Result<FileLock> {
    let started = Instant::now();
    let mut logged = false;
    let mut pause = Duration::from_millis(5);
    loop {
        match fs4::FileExt::try_lock(&file) {
            Ok(()) => {
                if logged {
                    tracing::info!(lock = %lock_path.display(), "lock acquired");
                }
                return Ok(FileLock { _file: file });
            }
            Err(fs4::TryLockError::WouldBlock) => {}
            Err(fs4::TryLockError::Error(e)) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("cannot lock `{}`: {e}", lock_path.display()),
                ))
            }
        }
        let waited = started.elapsed();
        if waited >= wait {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "gave up after {}s waiting for the lock `{}`{} (writing {what})",
                    wait.as_secs(),
                    lock_path.display(),
                    holder_text(&file)
                ),
            ));
        }
        if !logged && waited >= LOG_AFTER {
            logged = true;
            tracing::info!(
                lock = %lock_path.display(),
                "waiting for the lock{} before writing {what}",
                holder_text(&file)
            );
        }
        std::thread::sleep(pause.min(wait - waited));
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

fn holder_text(file: &File) -> String {
    holder(file).map_or_else(String::new, |pid| format!(", held by process {pid}"))
}

/// The process holding a lock on `file`, from `/proc/locks` (Linux).
#[cfg(target_os = "linux")]
fn holder(file: &File) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    let meta = file.metadata().ok()?;
    let (ino, dev) = (meta.ino(), meta.dev());
    let (major, minor) = (nix::libc::major(dev), nix::libc::minor(dev));
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    locks.lines().find_map(|line| {
        // "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"
        let fields: Vec<&str> = line.split_whitespace().collect();
        let pid = fields.get(4)?.parse::<u32>().ok()?;
        let mut id = fields.get(5)?.split(':');
        let maj = u32::from_str_radix(id.next()?, 16).ok()?;
        let min = u32::from_str_radix(id.next()?, 16).ok()?;
        let inode = id.next()?.parse::<u64>().ok()?;
        (maj == major && min == minor && inode == ino && pid != std::process::id()).then_some(pid)
    })
}

#[cfg(not(target_os = "linux"))]
fn holder(_file: &File) -> Option<u32> {
    None
}

/// The lock file that guards `target`: `.NAME.lock` in the same folder.
pub fn lock_path_for(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "awscredd".into());
    target.with_file_name(format!(".{name}.lock"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: Duration = Duration::from_secs(30);

    #[test]
    fn second_lock_in_another_handle_waits_until_release() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".x.lock");
        let first = lock_exclusive(&path, "x", LONG).unwrap();
        let p2 = path.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let t = std::thread::spawn(move || {
            let _second = lock_exclusive(&p2, "x", LONG).unwrap();
            tx.send(()).unwrap();
        });
        // The second locker must not get the lock while the first holds it.
        assert!(rx
            .recv_timeout(std::time::Duration::from_millis(300))
            .is_err());
        drop(first);
        rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
        t.join().unwrap();
    }

    #[test]
    fn a_held_lock_is_given_up_after_the_limit_naming_the_lock_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".y.lock");
        let _first = lock_exclusive(&path, "y", LONG).unwrap();
        let p2 = path.clone();
        let started = Instant::now();
        let e = std::thread::spawn(move || {
            lock_exclusive(&p2, "y", Duration::from_millis(300)).unwrap_err()
        })
        .join()
        .unwrap();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(e.to_string().contains(&path.display().to_string()), "{e}");
    }

    #[test]
    fn lock_file_sits_next_to_target() {
        assert_eq!(
            lock_path_for(Path::new("/a/b/credentials")),
            PathBuf::from("/a/b/.credentials.lock")
        );
    }
}
