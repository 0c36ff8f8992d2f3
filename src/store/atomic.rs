//! Durable, atomic replacement of a file.
//!
//! A temporary file in the target's folder, created with the final mode (so it is never
//! readable by others, not even for a moment), written, `sync_all`ed, given its owner, renamed
//! over the target, and the folder synced so the rename survives a power cut.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// File ownership to set on the new file (Unix, as root).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ownership {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// Prefix of our temporary files; stale ones (left by a killed process) are removed under the
/// lock by [`remove_stale_temp_files`].
pub fn temp_prefix(target: &Path) -> String {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!(".{name}.awscredd-")
}

/// Follows symlinks to the file that is really written, so a symlinked target stays a link.
/// A dangling link resolves to where it points.
pub fn resolve_target(path: &Path) -> io::Result<PathBuf> {
    let mut current = path.to_path_buf();
    for _ in 0..40 {
        match fs::symlink_metadata(&current) {
            Ok(m) if m.file_type().is_symlink() => {
                let dest = fs::read_link(&current)?;
                current = if dest.is_absolute() {
                    dest
                } else {
                    current.parent().map(|p| p.join(&dest)).unwrap_or(dest)
                };
            }
            Ok(_) => return Ok(current),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(current),
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(format!(
        "too many levels of symbolic links at `{}`",
        path.display()
    )))
}

/// Creates `dir` and its missing parents with mode 0700.
pub fn create_dirs(dir: &Path) -> io::Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
}

/// Replaces `target` (already resolved, its folder existing) with `contents`.
pub fn write_atomic(
    target: &Path,
    contents: &[u8],
    mode: u32,
    owner: Ownership,
    durable: bool,
) -> io::Result<()> {
    let dir = target.parent().unwrap_or_else(|| Path::new("."));
    let prefix = temp_prefix(target);
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(mode & 0o600));
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut tmp = builder.tempfile_in(dir)?;
    #[cfg(unix)]
    {
        // The umask may have narrowed the mode further; set ownership first, then the exact
        // mode, so group/other bits appear only once the right owner holds the file.
        use std::os::unix::fs::PermissionsExt;
        if owner.uid.is_some() || owner.gid.is_some() {
            std::os::unix::fs::fchown(tmp.as_file(), owner.uid, owner.gid)?;
        }
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(mode))?;
    }
    #[cfg(not(unix))]
    let _ = owner;
    tmp.write_all(contents)?;
    if durable {
        tmp.as_file().sync_all()?;
    }
    #[cfg(not(windows))]
    tmp.persist(target).map_err(|e| e.error)?;
    #[cfg(windows)]
    {
        // Closed and no longer marked temporary, then put in place (waiting for readers).
        let tmp = tmp.into_temp_path().keep().map_err(|e| e.error)?;
        if let Err(e) = super::replace_windows::replace(&tmp, target) {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
    }
    if durable {
        sync_dir(dir)?;
    }
    Ok(())
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

/// Removes temporary files a killed writer left next to `target`. Call only under the lock.
pub fn remove_stale_temp_files(target: &Path) {
    let Some(dir) = target.parent() else { return };
    let prefix = temp_prefix(target);
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(&prefix) && name.ends_with(".tmp") {
                let _ = fs::remove_file(e.path());
            }
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn writes_with_exact_mode_and_through_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        fs::write(&real, "old").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink("real", &link).unwrap();
        let target = resolve_target(&link).unwrap();
        assert_eq!(target, real);
        write_atomic(&target, b"new", 0o640, Ownership::default(), true).unwrap();
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read_to_string(&link).unwrap(), "new");
        assert_eq!(
            fs::metadata(&real).unwrap().permissions().mode() & 0o777,
            0o640
        );
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn missing_folders_are_created_private() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("a/b");
        create_dirs(&deep).unwrap();
        for d in [dir.path().join("a"), deep] {
            assert_eq!(
                fs::metadata(&d).unwrap().permissions().mode() & 0o777,
                0o700
            );
        }
    }

    #[test]
    fn stale_temp_files_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("credentials");
        let stale = dir.path().join(format!("{}abc.tmp", temp_prefix(&target)));
        fs::write(&stale, "x").unwrap();
        fs::write(dir.path().join("keep.tmp"), "x").unwrap();
        remove_stale_temp_files(&target);
        assert!(!stale.exists());
        assert!(dir.path().join("keep.tmp").exists());
    }
}
