//! Windows: putting a finished temporary file in place of its target, even while a reader holds
//! the target open.
//!
//! A .NET program reading a credentials file (`File.ReadAllText`, `StreamReader`) opens it
//! without `FILE_SHARE_DELETE`; while it does, a rename over the file fails with a sharing
//! violation or access denied. Such failures are retried with a short, bounded backoff (up to
//! [`MAX_WAIT`]), and a log line says that the write waits; the target is never missing or
//! half-written meanwhile, because nothing touches it until the one call that replaces it.
//!
//! An existing target is replaced with `ReplaceFileW`, which keeps its ACL, owner and attributes
//! (a file under `C:\Users\svc\.aws` stays readable by `svc` after a LocalSystem service rewrote
//! it); a new one is moved into place with `MoveFileExW(MOVEFILE_REPLACE_EXISTING |
//! MOVEFILE_WRITE_THROUGH)` and gets its folder's inherited ACL, as any new file does.

use std::io;
use std::os::windows::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, Instant};
use windows_sys::Win32::Foundation::{
    ERROR_ACCESS_DENIED, ERROR_FILE_NOT_FOUND, ERROR_LOCK_VIOLATION, ERROR_SHARING_VIOLATION,
    ERROR_UNABLE_TO_MOVE_REPLACEMENT, ERROR_UNABLE_TO_REMOVE_REPLACED,
};
use windows_sys::Win32::Storage::FileSystem::{
    MoveFileExW, ReplaceFileW, MOVEFILE_REPLACE_EXISTING, MOVEFILE_WRITE_THROUGH,
    REPLACEFILE_IGNORE_ACL_ERRORS, REPLACEFILE_IGNORE_MERGE_ERRORS,
};

/// How long a write waits for readers to let go of its target before it fails (the profile is
/// then retried on the next pass).
pub const MAX_WAIT: Duration = Duration::from_secs(10);
/// The first pause between two attempts, doubled up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(20);
const MAX_PAUSE: Duration = Duration::from_millis(500);

/// Puts `tmp` (closed, in the same folder) in place of `target`, waiting up to [`MAX_WAIT`]
/// while another program holds `target` open. On error `tmp` is left where it is.
pub fn replace(tmp: &Path, target: &Path) -> io::Result<()> {
    let started = Instant::now();
    let mut pause = FIRST_PAUSE;
    let mut logged = false;
    loop {
        let err = match replace_once(tmp, target) {
            Ok(()) => {
                if logged {
                    tracing::info!(
                        path = %target.display(),
                        waited_ms = started.elapsed().as_millis() as u64,
                        "replaced the file once the other program let go of it"
                    );
                }
                return Ok(());
            }
            Err(e) if is_held_open(&e) => e,
            Err(e) => return Err(e),
        };
        let waited = started.elapsed();
        if waited >= MAX_WAIT {
            return Err(io::Error::new(
                err.kind(),
                format!(
                    "could not replace the file for {} s (another program may hold it open); its old content is intact: {err}",
                    MAX_WAIT.as_secs()
                ),
            ));
        }
        if !logged {
            logged = true;
            tracing::warn!(
                path = %target.display(),
                "another program holds the file open ({err}); waiting up to {} s to replace it",
                MAX_WAIT.as_secs()
            );
        }
        std::thread::sleep(pause.min(MAX_WAIT - waited));
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

/// Whether an error means another handle is in the way (worth waiting for), rather than a
/// failure that waiting does not cure.
fn is_held_open(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error().map(|c| c as u32),
        Some(
            ERROR_SHARING_VIOLATION
                | ERROR_ACCESS_DENIED
                | ERROR_LOCK_VIOLATION
                | ERROR_UNABLE_TO_REMOVE_REPLACED
        )
    )
}

fn wide(p: &Path) -> Vec<u16> {
    p.as_os_str().encode_wide().chain(Some(0)).collect()
}

fn replace_once(tmp: &Path, target: &Path) -> io::Result<()> {
    let (tmp_w, target_w) = (wide(tmp), wide(target));
    if std::fs::symlink_metadata(target).is_ok() {
        // SAFETY: both names are NUL-terminated UTF-16 that outlive the call; the backup name
        // and the two reserved pointers are null, as documented.
        let ok = unsafe {
            ReplaceFileW(
                target_w.as_ptr(),
                tmp_w.as_ptr(),
                std::ptr::null(),
                REPLACEFILE_IGNORE_MERGE_ERRORS | REPLACEFILE_IGNORE_ACL_ERRORS,
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        if ok != 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error().map(|c| c as u32) {
            // The target went away meanwhile, or (without a backup name) it was removed but the
            // replacement could not be renamed over it: move the replacement into place.
            Some(ERROR_FILE_NOT_FOUND | ERROR_UNABLE_TO_MOVE_REPLACEMENT) => {}
            _ => return Err(e),
        }
    }
    // SAFETY: both names are NUL-terminated UTF-16 that outlive the call.
    let ok = unsafe {
        MoveFileExW(
            tmp_w.as_ptr(),
            target_w.as_ptr(),
            MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH,
        )
    };
    if ok != 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
