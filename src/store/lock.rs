//! Exclusive advisory locks on stable lock files; every lock awscredd takes goes through here.
//!
//! The data files themselves are replaced by rename, so a lock on them would protect nothing:
//! each locked resource has a separate lock file that is never renamed or deleted.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

/// A held lock; released when dropped (and by the OS if the process dies).
#[derive(Debug)]
pub struct FileLock {
    _file: File,
}

/// Takes the exclusive lock on `lock_path`, creating the file (mode 0600) if needed. If another
/// process holds it, logs that we wait (naming `what`), then blocks until it is free.
pub fn lock_exclusive(lock_path: &Path, what: &str) -> io::Result<FileLock> {
    let mut opts = OpenOptions::new();
    opts.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let file = opts.open(lock_path)?;
    match fs4::FileExt::try_lock(&file) {
        Ok(()) => {}
        Err(fs4::TryLockError::WouldBlock) => {
            tracing::info!(
                lock = %lock_path.display(),
                "waiting for another awscredd process that is writing {what}"
            );
            fs4::FileExt::lock(&file)?;
            tracing::info!(lock = %lock_path.display(), "lock acquired");
        }
        Err(fs4::TryLockError::Error(e)) => return Err(e),
    }
    Ok(FileLock { _file: file })
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

    #[test]
    fn second_lock_in_another_handle_waits_until_release() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".x.lock");
        let first = lock_exclusive(&path, "x").unwrap();
        let p2 = path.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let t = std::thread::spawn(move || {
            let _second = lock_exclusive(&p2, "x").unwrap();
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
    fn lock_file_sits_next_to_target() {
        assert_eq!(
            lock_path_for(Path::new("/a/b/credentials")),
            PathBuf::from("/a/b/.credentials.lock")
        );
    }
}
