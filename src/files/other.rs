//! Where there is no `openat` walk (Windows): symlinks resolved by path, then the same
//! regular-file checks and the replace through `replace_windows` (a reader holding the file
//! is waited out).

use super::*;

/// Follows symlinks to the file that is really written. A dangling link resolves to where
/// it points.
fn resolve(path: &Path) -> io::Result<PathBuf> {
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

pub(super) fn open(path: &Path, create: bool) -> io::Result<Target> {
    let resolved = resolve(path)?;
    if let Ok(m) = fs::metadata(&resolved) {
        if !m.is_file() {
            return Err(named(
                io::ErrorKind::InvalidInput,
                format!(
                    "`{}` is {}, not a regular file: awscredd writes only regular files and left it as it is",
                    resolved.display(),
                    kind_of(&m.file_type())
                ),
            ));
        }
    }
    if create {
        if let Some(dir) = resolved.parent() {
            create_dirs(dir)?;
        }
    }
    let name = resolved
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    Ok(Target {
        shown: path.to_path_buf(),
        resolved,
        name,
    })
}

impl Target {
    /// Opens the target for reading (a regular file); `None` if it does not exist.
    pub fn open_read(&self) -> io::Result<Option<fs::File>> {
        let file = match fs::File::open(&self.resolved) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(super::named(
                io::ErrorKind::InvalidInput,
                format!(
                    "`{}` is {}, not a regular file",
                    self.resolved.display(),
                    super::kind_of(&meta.file_type())
                ),
            ));
        }
        Ok(Some(file))
    }

    pub fn read_into(&self, limit: u64, bytes: &mut Vec<u8>) -> io::Result<Option<Found>> {
        bytes.clear();
        let Some(read) = read_regular(&self.resolved, limit)? else {
            return Ok(None);
        };
        *bytes = read;
        Ok(Some(Found {
            uid: 0,
            gid: 0,
            mode: 0o600,
        }))
    }

    pub fn current_owner(&self) -> io::Result<Ownership> {
        Ok(Ownership::default())
    }

    /// Windows files have ACLs, not modes: nothing to restore.
    pub fn restore_mode(&self, _mode: u32) -> io::Result<Option<u32>> {
        Ok(None)
    }

    fn open_rw(path: &Path) -> io::Result<fs::File> {
        fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
    }

    pub fn folder_owner(&self) -> io::Result<Ownership> {
        Ok(Ownership::default())
    }

    pub fn open_lock_file(&self, _owner: Ownership) -> io::Result<fs::File> {
        Self::open_rw(&self.lock_path())
    }

    pub fn open_as_lock_file(&self) -> io::Result<fs::File> {
        Self::open_rw(&self.resolved)
    }

    pub fn replace(
        &self,
        contents: &[u8],
        mode: u32,
        owner: Ownership,
        durable: bool,
    ) -> io::Result<()> {
        self.replace_with(&[contents], mode, owner, durable)
    }

    pub fn replace_with(
        &self,
        parts: &[&[u8]],
        _mode: u32,
        _owner: Ownership,
        durable: bool,
    ) -> io::Result<()> {
        let dir = self.resolved.parent().unwrap_or_else(|| Path::new("."));
        let prefix = temp_prefix(&self.resolved);
        let mut tmp = tempfile::Builder::new()
            .prefix(&prefix)
            .suffix(".tmp")
            .tempfile_in(dir)?;
        write_all_parts(&mut tmp, parts)?;
        if durable {
            tmp.as_file().sync_all()?;
        }
        #[cfg(not(windows))]
        tmp.persist(&self.resolved).map_err(|e| e.error)?;
        #[cfg(windows)]
        {
            // Closed and no longer marked temporary, then put in place (waiting for a
            // reader that holds the target open; keeping its ACL).
            let tmp = tmp.into_temp_path().keep().map_err(|e| e.error)?;
            if let Err(e) = super::replace_windows::replace(&tmp, &self.resolved) {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        }
        Ok(())
    }

    pub fn remove_stale_temp_files(&self) {
        let Some(dir) = self.resolved.parent() else {
            return;
        };
        let prefix = temp_prefix(&self.resolved);
        if let Ok(entries) = fs::read_dir(dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with(&prefix) && name.ends_with(".tmp") {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
    }
}
