//! Durable, atomic replacement of a file, reached safely.
//!
//! [`Target::open`] walks the path one component at a time from an opened folder (Unix:
//! `openat`/`fstatat` with `O_NOFOLLOW`), so the path cannot change between check and use:
//! - symlinks are followed (a symlinked output stays a link), except that a privileged process
//!   (euid 0, or `CAP_CHOWN`/`CAP_DAC_OVERRIDE`) follows a link only when root or its own user
//!   owns it and it sits in a folder nobody else can write — the kernel's `protected_symlinks`
//!   reasoning, made stricter: the owner of an output's folder must never be able to point a
//!   root daemon at another file;
//! - only regular files are read or replaced: a device, FIFO, socket or folder is refused and
//!   left as it is;
//! - missing folders are created with mode 0700; a privileged process gives each one the
//!   configured owner and group, else those of the folder it is created in (a user's
//!   `~/.aws` stays the user's: giving a user a folder inside their own folder is no
//!   escalation). Lock files it creates get the owner of the file they lock, or of its folder,
//!   so every awscredd that may write the file can take its lock.
//!
//! [`Target::replace`] creates a temporary file in the target's folder with the final mode (so
//! it is never readable by others, not even for a moment), gives it its owner (only this file,
//! which awscredd created itself), writes and `sync_all`s it, renames it over the target, and
//! syncs the folder so the rename survives a power cut.

use std::ffi::OsString;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// File ownership to set on the new file (Unix, as root).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ownership {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// The most a JSON document awscredd reads (SSO cache, state, registration) may hold.
pub const JSON_MAX: u64 = 1024 * 1024;
/// The most a token file (web identity, server token) may hold.
pub const TOKEN_MAX: u64 = 64 * 1024;
/// The most a credentials file may hold (100,000 profiles of temporary credentials are 55 MB).
pub const CREDENTIALS_MAX: u64 = 512 * 1024 * 1024;

/// What is in a file that exists.
#[derive(Debug)]
pub struct Existing {
    pub bytes: Vec<u8>,
    pub uid: u32,
    pub gid: u32,
    /// Permission bits (`0o7777`).
    pub mode: u32,
}

/// Who owns a file that exists, and its mode (its bytes read into the caller's buffer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Found {
    pub uid: u32,
    pub gid: u32,
    /// Permission bits (`0o7777`).
    pub mode: u32,
}

/// Prefix of our temporary files; stale ones (left by a killed process) are removed under the
/// lock by [`Target::remove_stale_temp_files`].
pub fn temp_prefix(target: &Path) -> String {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!(".{name}.awscredd-")
}

/// A temporary name beside `name`, unique to this process and call (`O_EXCL` makes a clash
/// an error to retry, never a shared file). No OS randomness: it is not there in an empty
/// chroot or a `scratch` image without `/dev/urandom`.
#[cfg(unix)]
fn temp_name(name: &std::ffi::OsStr, attempt: u32) -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = crate::clock::now().unix_timestamp_nanos() as u64;
    format!(
        "{}{:x}-{n:x}-{:x}.tmp",
        temp_prefix(Path::new(name)),
        std::process::id(),
        nanos ^ u64::from(attempt).rotate_left(32)
    )
}

/// An error about `path` with a message that names it.
fn named(kind: io::ErrorKind, msg: String) -> io::Error {
    io::Error::new(kind, msg)
}

/// A file to read or replace: its folder held open, its name in it.
#[derive(Debug)]
pub struct Target {
    /// The path as asked for, for messages.
    shown: PathBuf,
    /// The path really used, symlinks followed, for messages.
    resolved: PathBuf,
    #[cfg(unix)]
    dir: std::os::fd::OwnedFd,
    #[cfg_attr(not(unix), allow(dead_code))]
    name: OsString,
}

impl Target {
    /// The path as asked for.
    pub fn path(&self) -> &Path {
        &self.shown
    }

    /// The file really read and written (symlinks followed).
    pub fn resolved(&self) -> &Path {
        &self.resolved
    }

    /// The lock file that guards this target: `.NAME.lock` in the same folder.
    pub fn lock_path(&self) -> PathBuf {
        crate::store::lock::lock_path_for(&self.resolved)
    }
}

/// Replaces `path` with `contents` (resolving it safely first, creating its folders).
pub fn write_atomic(
    path: &Path,
    contents: &[u8],
    mode: u32,
    owner: Ownership,
    durable: bool,
) -> io::Result<()> {
    Target::open(path, true)?.replace(contents, mode, owner, durable)
}

/// Replaces `path` like [`write_atomic`] (mode, durability), keeping the owner and group of the
/// file it replaces — or, for a new file, of its folder — when running privileged: root renewing
/// a user's SSO token must not lock that user's own tools out of it.
pub fn write_atomic_keeping_owner(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let target = Target::open(path, true)?;
    let owner = if privileged() {
        target.current_owner()?
    } else {
        Ownership::default()
    };
    target.replace(contents, mode, owner, true)
}

/// Reads `path` if it is a regular file (symlinks followed), up to `limit` bytes: a FIFO or a
/// device is an error, not a hang; a larger file is an error naming the limit. `None` if
/// missing.
pub fn read_regular(path: &Path, limit: u64) -> io::Result<Option<Vec<u8>>> {
    let mut opts = fs::OpenOptions::new();
    opts.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC);
    }
    let file = match opts.open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(named(
            io::ErrorKind::InvalidInput,
            format!(
                "`{}` is {}, not a regular file",
                path.display(),
                kind_of(&meta.file_type())
            ),
        ));
    }
    let mut bytes = Vec::new();
    read_limited(file, path, limit, meta.len(), &mut bytes)?;
    Ok(Some(bytes))
}

/// Reads `file` into `bytes` (cleared first), up to `limit`. `size` (the file's, from its
/// metadata) is reserved up front: one allocation, not a series of doublings, and none at all
/// when `bytes` is a buffer kept from an earlier read.
fn read_limited(
    file: fs::File,
    path: &Path,
    limit: u64,
    size: u64,
    bytes: &mut Vec<u8>,
) -> io::Result<()> {
    bytes.clear();
    // One byte more than the file, so that reading up to its end needs no growth; a file that
    // grows meanwhile is still read whole (up to the limit).
    let expected = usize::try_from(size.min(limit)).unwrap_or(0);
    bytes.reserve(expected.saturating_add(1));
    file.take(limit + 1).read_to_end(bytes)?;
    if bytes.len() as u64 > limit {
        return Err(named(
            io::ErrorKind::InvalidData,
            format!(
                "`{}` is larger than the limit of {}",
                path.display(),
                human(limit)
            ),
        ));
    }
    Ok(())
}

/// Writes all of `parts` in order with vectored writes: `write_all` for several buffers.
fn write_all_parts(out: &mut impl Write, parts: &[&[u8]]) -> io::Result<()> {
    // The most buffers one `writev` takes (POSIX's IOV_MAX on Linux and the BSDs).
    const MAX_SLICES: usize = 1024;
    let mut slices: Vec<io::IoSlice<'_>> = parts
        .iter()
        .filter(|p| !p.is_empty())
        .map(|p| io::IoSlice::new(p))
        .collect();
    let mut left = &mut slices[..];
    while !left.is_empty() {
        let n = left.len().min(MAX_SLICES);
        match out.write_vectored(&left[..n]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(written) => io::IoSlice::advance_slices(&mut left, written),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn human(n: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if n >= MIB && n % MIB == 0 {
        format!("{} MiB", n / MIB)
    } else if n >= 1024 && n % 1024 == 0 {
        format!("{} KiB", n / 1024)
    } else {
        format!("{n} bytes")
    }
}

/// "a character device", "a FIFO", ... for messages.
pub fn kind_of(t: &fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if t.is_dir() {
        "a folder"
    } else if t.is_symlink() {
        "a symbolic link"
    } else if t.is_file() {
        "a regular file"
    } else {
        "not a regular file"
    }
}

/// Whether this process is privileged: root, or holding `CAP_CHOWN` or `CAP_DAC_OVERRIDE`.
#[cfg(unix)]
pub fn privileged() -> bool {
    static PRIVILEGED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *PRIVILEGED.get_or_init(|| {
        if nix::unistd::geteuid().is_root() {
            return true;
        }
        // CapEff in /proc/self/status; bit 0 is CAP_CHOWN, bit 1 CAP_DAC_OVERRIDE.
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("CapEff:"))
                    .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            })
            .is_some_and(|caps| caps & 0b11 != 0)
    })
}

#[cfg(not(unix))]
pub fn privileged() -> bool {
    false
}

#[cfg(unix)]
mod unix {
    use super::*;
    use nix::errno::Errno;
    use nix::fcntl::{openat, readlinkat, renameat, AtFlags, OFlag};
    use nix::sys::stat::{fchmod, fstat, fstatat, mkdirat, FileStat, Mode, SFlag};
    use nix::unistd::{fchown, unlinkat, Gid, Uid, UnlinkatFlags};
    use std::collections::VecDeque;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::path::Component;

    const MAX_LINKS: usize = 40;

    fn open_at(
        dir: Option<&OwnedFd>,
        name: &Path,
        flags: OFlag,
        mode: Mode,
    ) -> nix::Result<OwnedFd> {
        let fd = openat(
            dir.map(|d| d.as_raw_fd()),
            name,
            flags | OFlag::O_CLOEXEC,
            mode,
        )?;
        // SAFETY: openat returned a new descriptor that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    fn errno(e: Errno) -> io::Error {
        io::Error::from_raw_os_error(e as i32)
    }

    fn file_kind(st: &FileStat) -> &'static str {
        match SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT {
            SFlag::S_IFCHR => "a character device",
            SFlag::S_IFBLK => "a block device",
            SFlag::S_IFIFO => "a FIFO",
            SFlag::S_IFSOCK => "a socket",
            SFlag::S_IFDIR => "a folder",
            SFlag::S_IFLNK => "a symbolic link",
            SFlag::S_IFREG => "a regular file",
            _ => "not a regular file",
        }
    }

    fn is(st: &FileStat, kind: SFlag) -> bool {
        SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == kind
    }

    /// The privileged rule for a link found in `dir`.
    fn may_follow(dir: &OwnedFd, link: &FileStat, at: &Path) -> io::Result<()> {
        if !privileged() {
            return Ok(());
        }
        let me = nix::unistd::geteuid().as_raw();
        let dir_st = fstat(dir.as_raw_fd()).map_err(errno)?;
        let link_ok = link.st_uid == 0 || link.st_uid == me;
        let dir_owner_ok = dir_st.st_uid == 0 || dir_st.st_uid == me;
        let others_write = dir_st.st_mode & 0o002 != 0;
        let group_write = dir_st.st_mode & 0o020 != 0 && dir_st.st_gid != 0;
        if link_ok && dir_owner_ok && !others_write && !group_write {
            return Ok(());
        }
        let why = if !link_ok {
            format!("the link is owned by uid {}", link.st_uid)
        } else {
            "its folder can be written by others".to_string()
        };
        Err(named(
            io::ErrorKind::PermissionDenied,
            format!(
                "refusing to follow the symbolic link `{}`: {why}; running privileged, awscredd follows only links owned by root or by itself in folders nobody else can write, and left the link's target untouched",
                at.display()
            ),
        ))
    }

    /// Whose a folder created in `parent` becomes (privileged only): the configured owner and
    /// group, else the parent's.
    fn new_folder_owner(parent: &OwnedFd, configured: Ownership) -> io::Result<(Uid, Gid)> {
        let st = fstat(parent.as_raw_fd()).map_err(errno)?;
        Ok((
            Uid::from_raw(configured.uid.unwrap_or(st.st_uid)),
            Gid::from_raw(configured.gid.unwrap_or(st.st_gid)),
        ))
    }

    /// Gives the folder `name` that this process just created in `parent` its owner (see
    /// [`new_folder_owner`]); on failure the empty folder is removed again. Only a folder
    /// that is still ours (owned by our uid, not a link) is chowned.
    fn own_new_folder(
        parent: &OwnedFd,
        name: &std::ffi::OsStr,
        here: &Path,
        configured: Ownership,
    ) -> io::Result<()> {
        let (uid, gid) = new_folder_owner(parent, configured)?;
        let result = (|| -> io::Result<()> {
            let fd = open_at(
                Some(parent),
                Path::new(name),
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW,
                Mode::empty(),
            )
            .map_err(errno)?;
            let st = fstat(fd.as_raw_fd()).map_err(errno)?;
            if st.st_uid != nix::unistd::geteuid().as_raw() {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    "it changed hands while awscredd was creating it",
                ));
            }
            if (st.st_uid, st.st_gid) != (uid.as_raw(), gid.as_raw()) {
                fchown(fd.as_raw_fd(), Some(uid), Some(gid)).map_err(errno)?;
            }
            Ok(())
        })();
        result.map_err(|e| {
            let _ = unlinkat(Some(parent.as_raw_fd()), name, UnlinkatFlags::RemoveDir);
            named(
                e.kind(),
                format!(
                    "cannot give the new folder `{}` to uid {} and gid {}: {e}",
                    here.display(),
                    uid,
                    gid
                ),
            )
        })
    }

    pub(super) fn open(path: &Path, create: Option<Ownership>) -> io::Result<Target> {
        let abs = if path.is_absolute() {
            path.to_path_buf()
        } else {
            std::env::current_dir()?.join(path)
        };
        let mut pending: VecDeque<OsString> = VecDeque::new();
        let push_all = |p: &Path, pending: &mut VecDeque<OsString>, front: bool| {
            let parts: Vec<OsString> = p
                .components()
                .filter_map(|c| match c {
                    Component::Normal(n) => Some(n.to_os_string()),
                    Component::ParentDir => Some(OsString::from("..")),
                    _ => None,
                })
                .collect();
            if front {
                for part in parts.into_iter().rev() {
                    pending.push_front(part);
                }
            } else {
                pending.extend(parts);
            }
        };
        push_all(&abs, &mut pending, false);
        if pending.is_empty() {
            return Err(named(
                io::ErrorKind::InvalidInput,
                format!("`{}` is not a file", path.display()),
            ));
        }
        let root = || {
            open_at(
                None,
                Path::new("/"),
                OFlag::O_PATH | OFlag::O_DIRECTORY,
                Mode::empty(),
            )
        };
        let mut dir = root().map_err(errno)?;
        let mut resolved = PathBuf::from("/");
        let mut links = 0;
        while let Some(comp) = pending.pop_front() {
            let last = pending.is_empty();
            let here = resolved.join(&comp);
            match fstatat(
                Some(dir.as_raw_fd()),
                comp.as_os_str(),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            ) {
                Ok(st) if is(&st, SFlag::S_IFLNK) => {
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(named(
                            io::ErrorKind::InvalidInput,
                            format!("too many levels of symbolic links at `{}`", path.display()),
                        ));
                    }
                    may_follow(&dir, &st, &here)?;
                    let dest =
                        readlinkat(Some(dir.as_raw_fd()), comp.as_os_str()).map_err(errno)?;
                    let dest = PathBuf::from(dest);
                    if dest.is_absolute() {
                        dir = root().map_err(errno)?;
                        resolved = PathBuf::from("/");
                    }
                    push_all(&dest, &mut pending, true);
                }
                Ok(st) if !last => {
                    if !is(&st, SFlag::S_IFDIR) {
                        return Err(named(
                            io::ErrorKind::NotADirectory,
                            format!(
                                "`{}` is {}, not a folder, so `{}` cannot be written",
                                here.display(),
                                file_kind(&st),
                                path.display()
                            ),
                        ));
                    }
                    dir = open_at(
                        Some(&dir),
                        Path::new(&comp),
                        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW,
                        Mode::empty(),
                    )
                    .map_err(errno)?;
                    resolved = normal_join(&resolved, &comp);
                }
                Ok(st) => {
                    if !is(&st, SFlag::S_IFREG) {
                        return Err(not_regular(&here, file_kind(&st)));
                    }
                    return Ok(finish(dir, comp, path, here));
                }
                Err(Errno::ENOENT) if last => return Ok(finish(dir, comp, path, here)),
                Err(Errno::ENOENT) if create.is_some() => {
                    match mkdirat(
                        Some(dir.as_raw_fd()),
                        comp.as_os_str(),
                        Mode::from_bits_truncate(0o700),
                    ) {
                        Ok(()) => {
                            if privileged() {
                                let configured = create.unwrap_or_default();
                                own_new_folder(&dir, comp.as_os_str(), &here, configured)?;
                            }
                        }
                        Err(Errno::EEXIST) => {}
                        Err(e) => {
                            return Err(named(
                                errno(e).kind(),
                                format!(
                                    "cannot create the folder `{}`: {}",
                                    here.display(),
                                    errno(e)
                                ),
                            ))
                        }
                    }
                    pending.push_front(comp);
                }
                Err(e) => {
                    return Err(named(
                        errno(e).kind(),
                        format!("`{}`: {}", here.display(), errno(e)),
                    ))
                }
            }
        }
        Err(named(
            io::ErrorKind::InvalidInput,
            format!("`{}` is not a file", path.display()),
        ))
    }

    fn normal_join(base: &Path, comp: &OsString) -> PathBuf {
        if comp == ".." {
            base.parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from("/"))
        } else {
            base.join(comp)
        }
    }

    fn finish(dir: OwnedFd, name: OsString, shown: &Path, resolved: PathBuf) -> Target {
        Target {
            shown: shown.to_path_buf(),
            resolved,
            dir,
            name,
        }
    }

    /// Why `path` could not be given `owner`, saying what it takes when not permitted.
    fn chown_error(path: &Path, owner: Ownership, e: Errno) -> io::Error {
        let mut to = Vec::new();
        if let Some(uid) = owner.uid {
            to.push(format!("owner uid {uid}"));
        }
        if let Some(gid) = owner.gid {
            to.push(format!("group gid {gid}"));
        }
        let why = if e == Errno::EPERM {
            format!(
                "{}; awscredd runs as uid {}, and only root (or a process with CAP_CHOWN) can give a file to another user or to a group it is not in: run it as root, or remove `owner`/`group` from the output",
                errno(e),
                nix::unistd::geteuid()
            )
        } else {
            errno(e).to_string()
        };
        named(
            errno(e).kind(),
            format!(
                "cannot give `{}` to {}: {why}",
                path.display(),
                to.join(" and ")
            ),
        )
    }

    pub(super) fn not_regular(at: &Path, kind: &str) -> io::Error {
        named(
            io::ErrorKind::InvalidInput,
            format!(
                "`{}` is {kind}, not a regular file: awscredd writes only regular files and left it as it is",
                at.display()
            ),
        )
    }

    impl Target {
        /// A descriptor of the target's folder that can be synced and listed.
        fn dir_fd(&self) -> nix::Result<OwnedFd> {
            open_at(
                Some(&self.dir),
                Path::new("."),
                OFlag::O_RDONLY | OFlag::O_DIRECTORY,
                Mode::empty(),
            )
        }

        /// Opens `name` in the target's folder as a regular file, never through a link.
        fn open_regular_in(
            &self,
            name: &std::ffi::OsStr,
            flags: OFlag,
            mode: Mode,
        ) -> io::Result<Option<(fs::File, FileStat)>> {
            let at = self.resolved.with_file_name(name);
            let fd = match open_at(
                Some(&self.dir),
                Path::new(name),
                flags | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK,
                mode,
            ) {
                Ok(fd) => fd,
                Err(Errno::ENOENT) => return Ok(None),
                Err(Errno::ELOOP) => {
                    return Err(named(
                        io::ErrorKind::InvalidInput,
                        format!(
                        "`{}` became a symbolic link while awscredd was using it; left it as it is",
                        at.display()
                    ),
                    ))
                }
                Err(e) => {
                    return Err(named(
                        errno(e).kind(),
                        format!("`{}`: {}", at.display(), errno(e)),
                    ))
                }
            };
            let st = fstat(fd.as_raw_fd()).map_err(errno)?;
            if !is(&st, SFlag::S_IFREG) {
                return Err(not_regular(&at, file_kind(&st)));
            }
            Ok(Some((fs::File::from(fd), st)))
        }

        /// Sets the file's permission bits back to `mode` if they differ (someone ran `chmod`
        /// on it); returns the bits it had then. A missing file is left missing.
        pub fn restore_mode(&self, mode: u32) -> io::Result<Option<u32>> {
            let Some((file, st)) =
                self.open_regular_in(&self.name, OFlag::O_RDONLY, Mode::empty())?
            else {
                return Ok(None);
            };
            let had = st.st_mode & 0o7777;
            if had == mode {
                return Ok(None);
            }
            fchmod(file.as_raw_fd(), Mode::from_bits_truncate(mode)).map_err(errno)?;
            Ok(Some(had))
        }

        /// The owner and group of the file, or of its folder when the file does not exist.
        pub fn current_owner(&self) -> io::Result<Ownership> {
            let st = match self.open_regular_in(&self.name, OFlag::O_RDONLY, Mode::empty())? {
                Some((_, st)) => st,
                None => fstat(self.dir.as_raw_fd()).map_err(errno)?,
            };
            Ok(Ownership {
                uid: Some(st.st_uid),
                gid: Some(st.st_gid),
            })
        }

        /// Reads the target into `bytes` (cleared first), up to `limit` bytes; `None` if it
        /// does not exist.
        pub fn read_into(&self, limit: u64, bytes: &mut Vec<u8>) -> io::Result<Option<Found>> {
            let Some((file, st)) =
                self.open_regular_in(&self.name, OFlag::O_RDONLY, Mode::empty())?
            else {
                bytes.clear();
                return Ok(None);
            };
            let size = u64::try_from(st.st_size).unwrap_or(0);
            read_limited(file, &self.resolved, limit, size, bytes)?;
            Ok(Some(Found {
                uid: st.st_uid,
                gid: st.st_gid,
                mode: st.st_mode & 0o7777,
            }))
        }

        /// The owner and group of the target's folder.
        pub fn folder_owner(&self) -> io::Result<Ownership> {
            let st = fstat(self.dir.as_raw_fd()).map_err(errno)?;
            Ok(Ownership {
                uid: Some(st.st_uid),
                gid: Some(st.st_gid),
            })
        }

        /// Opens the lock file `name` in the target's folder, creating it (mode 0600) if
        /// missing. A privileged process gives a lock file `owner` (the fields it leaves out
        /// filled by `fallback`), so that the user who owns the locked file can still take the
        /// lock with an awscredd of their own: a new one is created under a temporary name,
        /// chowned, and only then linked into place (a lock file is never deleted or replaced:
        /// someone may hold it); an empty one that only this uid could have made (an older
        /// awscredd's) is given over too.
        fn open_lock_named(
            &self,
            name: &std::ffi::OsStr,
            owner: Ownership,
            fallback: impl FnOnce() -> io::Result<Ownership>,
        ) -> io::Result<fs::File> {
            if !privileged() {
                return self
                    .open_regular_in(
                        name,
                        OFlag::O_RDWR | OFlag::O_CREAT,
                        Mode::from_bits_truncate(0o600),
                    )?
                    .map(|(f, _)| f)
                    .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound));
            }
            let at = self.resolved.with_file_name(name);
            let more = fallback()?;
            let uid = owner.uid.or(more.uid).map(Uid::from_raw);
            let gid = owner.gid.or(more.gid).map(Gid::from_raw);
            for attempt in 0..10 {
                if let Some((f, st)) = self.open_regular_in(name, OFlag::O_RDWR, Mode::empty())? {
                    let ours = st.st_uid == nix::unistd::geteuid().as_raw()
                        && st.st_size == 0
                        && st.st_nlink == 1;
                    let wanted = (
                        uid.map_or(st.st_uid, Uid::as_raw),
                        gid.map_or(st.st_gid, Gid::as_raw),
                    );
                    if ours && wanted != (st.st_uid, st.st_gid) {
                        if let Err(e) = fchown(f.as_raw_fd(), uid, gid) {
                            tracing::debug!(lock = %at.display(), "cannot give the lock file to its file's owner: {e}");
                        }
                    }
                    return Ok(f);
                }
                let tmp = temp_name(name, attempt);
                let fd = open_at(
                    Some(&self.dir),
                    Path::new(&tmp),
                    OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW,
                    Mode::from_bits_truncate(0o600),
                );
                let lock_err = |e: Errno| {
                    named(
                        errno(e).kind(),
                        format!(
                            "cannot create the lock file `{}`: {}",
                            at.display(),
                            errno(e)
                        ),
                    )
                };
                let fd = fd.map_err(lock_err)?;
                let placed = fchown(fd.as_raw_fd(), uid, gid)
                    .map_err(|e| {
                        named(
                            errno(e).kind(),
                            format!(
                                "cannot give the new lock file `{}` to the owner of the file it locks: {}",
                                at.display(),
                                errno(e)
                            ),
                        )
                    })
                    .and_then(|()| {
                        match nix::unistd::linkat(
                            Some(self.dir.as_raw_fd()),
                            Path::new(&tmp),
                            Some(self.dir.as_raw_fd()),
                            Path::new(name),
                            AtFlags::empty(),
                        ) {
                            Ok(()) => Ok(true),
                            // Another process placed one meanwhile: open that one.
                            Err(Errno::EEXIST) => Ok(false),
                            Err(e) => Err(lock_err(e)),
                        }
                    });
                let _ = unlinkat(
                    Some(self.dir.as_raw_fd()),
                    Path::new(&tmp),
                    UnlinkatFlags::NoRemoveDir,
                );
                if placed? {
                    return Ok(fs::File::from(fd));
                }
            }
            Err(named(
                io::ErrorKind::Other,
                format!(
                    "cannot open the lock file `{}`: it keeps being replaced",
                    at.display()
                ),
            ))
        }

        /// Opens (creating, mode 0600) the lock file `.NAME.lock` beside the target. A new one
        /// is given `owner` as far as configured, else the owner of the target (or, when it
        /// does not exist yet, of its folder).
        pub fn open_lock_file(&self, owner: Ownership) -> io::Result<fs::File> {
            let name = self
                .lock_path()
                .file_name()
                .map(|n| n.to_os_string())
                .unwrap_or_default();
            self.open_lock_named(&name, owner, || self.current_owner())
        }

        /// Opens (creating, mode 0600) the target itself as a lock file; a new one is given
        /// the owner and group of its folder.
        pub fn open_as_lock_file(&self) -> io::Result<fs::File> {
            self.open_lock_named(&self.name, Ownership::default(), || self.folder_owner())
        }

        /// Replaces the target with `contents`.
        pub fn replace(
            &self,
            contents: &[u8],
            mode: u32,
            owner: Ownership,
            durable: bool,
        ) -> io::Result<()> {
            self.replace_with(&[contents], mode, owner, durable)
        }

        /// Replaces the target with the concatenation of `parts`, written with vectored
        /// writes (no copy of them into one buffer first).
        pub fn replace_with(
            &self,
            parts: &[&[u8]],
            mode: u32,
            owner: Ownership,
            durable: bool,
        ) -> io::Result<()> {
            let create = |tmp: &str| {
                open_at(
                    Some(&self.dir),
                    Path::new(tmp),
                    OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW,
                    Mode::from_bits_truncate(mode & 0o600),
                )
            };
            let mut attempt = 0;
            let (tmp, fd) = loop {
                let tmp = temp_name(&self.name, attempt);
                match create(&tmp) {
                    Err(Errno::EEXIST) if attempt < 100 => attempt += 1,
                    other => break (tmp, other),
                }
            };
            let fd = fd.map_err(|e| {
                named(
                    errno(e).kind(),
                    format!(
                        "cannot create a temporary file in the folder of `{}`: {}",
                        self.resolved.display(),
                        errno(e)
                    ),
                )
            })?;
            let result = (|| -> io::Result<()> {
                // Ownership first, then the exact mode, so group/other bits appear only once the
                // right owner holds the file. Only this file, which we created, is chowned.
                if owner.uid.is_some() || owner.gid.is_some() {
                    fchown(
                        fd.as_raw_fd(),
                        owner.uid.map(Uid::from_raw),
                        owner.gid.map(Gid::from_raw),
                    )
                    .map_err(|e| chown_error(&self.resolved, owner, e))?;
                }
                fchmod(fd.as_raw_fd(), Mode::from_bits_truncate(mode)).map_err(errno)?;
                let mut file = fs::File::from(fd);
                write_all_parts(&mut file, parts)?;
                if durable {
                    file.sync_all()?;
                }
                drop(file);
                renameat(Some(self.dir.as_raw_fd()), Path::new(&tmp), Some(self.dir.as_raw_fd()), self.name.as_os_str()).map_err(|e| {
                    if e == Errno::EBUSY {
                        named(
                            io::ErrorKind::ResourceBusy,
                            format!(
                                "cannot replace `{}`: it is busy (a single file bind-mounted into a container cannot be replaced by rename: mount its folder instead)",
                                self.resolved.display()
                            ),
                        )
                    } else {
                        errno(e)
                    }
                })?;
                Ok(())
            })();
            if let Err(e) = result {
                let _ = unlinkat(
                    Some(self.dir.as_raw_fd()),
                    Path::new(&tmp),
                    UnlinkatFlags::NoRemoveDir,
                );
                return Err(e);
            }
            if durable {
                if let Ok(d) = self.dir_fd() {
                    fs::File::from(d).sync_all()?;
                }
            }
            Ok(())
        }

        /// Removes temporary files a killed writer left next to the target. Call only under
        /// the lock.
        pub fn remove_stale_temp_files(&self) {
            let prefix = temp_prefix(Path::new(&self.name));
            use std::os::fd::IntoRawFd;
            use std::os::unix::ffi::OsStrExt;
            let Ok(d) = self.dir_fd() else { return };
            // Dir takes the descriptor over.
            let Ok(mut listing) = nix::dir::Dir::from_fd(d.into_raw_fd()) else {
                return;
            };
            let names: Vec<OsString> = listing
                .iter()
                .flatten()
                .map(|e| std::ffi::OsStr::from_bytes(e.file_name().to_bytes()).to_os_string())
                .filter(|n| {
                    let n = n.to_string_lossy();
                    n.starts_with(&prefix) && n.ends_with(".tmp")
                })
                .collect();
            for n in names {
                let regular = fstatat(
                    Some(self.dir.as_raw_fd()),
                    n.as_os_str(),
                    AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .is_ok_and(|st| is(&st, SFlag::S_IFREG));
                if regular {
                    let _ = unlinkat(
                        Some(self.dir.as_raw_fd()),
                        n.as_os_str(),
                        UnlinkatFlags::NoRemoveDir,
                    );
                }
            }
        }
    }
}

impl Target {
    /// Reads the target, up to `limit` bytes; `None` if it does not exist.
    pub fn read(&self, limit: u64) -> io::Result<Option<Existing>> {
        let mut bytes = Vec::new();
        Ok(self.read_into(limit, &mut bytes)?.map(|f| Existing {
            bytes,
            uid: f.uid,
            gid: f.gid,
            mode: f.mode,
        }))
    }

    /// Resolves `path` safely (see the module header). With `create`, missing folders on its
    /// path are created with mode 0700 (privileged: owned like the folder each is created in).
    pub fn open(path: &Path, create: bool) -> io::Result<Target> {
        Self::open_with(path, create.then_some(Ownership::default()))
    }

    /// [`Target::open`] creating missing folders for a file that will be given `owner`: when
    /// privileged, each new folder gets the configured owner and group, and for what is not
    /// configured those of the folder it is created in.
    pub fn open_creating(path: &Path, owner: Ownership) -> io::Result<Target> {
        Self::open_with(path, Some(owner))
    }

    fn open_with(path: &Path, create: Option<Ownership>) -> io::Result<Target> {
        #[cfg(unix)]
        {
            unix::open(path, create)
        }
        #[cfg(not(unix))]
        {
            other::open(path, create.is_some())
        }
    }
}

/// Creates `dir` and its missing parents with mode 0700 (where there is no safe walk; on Unix
/// [`Target::open`] creates the folders, with their owners).
#[cfg(not(unix))]
fn create_dirs(dir: &Path) -> io::Result<()> {
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

#[cfg(not(unix))]
mod other {
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
                if let Err(e) = super::super::replace_windows::replace(&tmp, &self.resolved) {
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
}

/// How long a writer waits for a lock before it gives up (the holder of a credentials-file
/// lock holds it for milliseconds).
pub const LOCK_WAIT: Duration = Duration::from_secs(30);

#[cfg(test)]
mod write_parts_tests {
    use super::*;

    /// A writer that takes at most 7 bytes per call, from the first buffer only.
    struct Trickle(Vec<u8>, usize);

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.1 += 1;
            let n = buf.len().min(7);
            self.0.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_part_is_written_in_order_through_short_writes() {
        let parts: Vec<Vec<u8>> = (0..3000)
            .map(|i| format!("<part {i}>").into_bytes())
            .collect();
        let mut slices: Vec<&[u8]> = parts.iter().map(|p| p.as_slice()).collect();
        slices.insert(5, b"");
        let mut out = Trickle(Vec::new(), 0);
        write_all_parts(&mut out, &slices).unwrap();
        assert_eq!(out.0, parts.concat());
        assert!(out.1 > 3000, "short writes were continued");
    }

    #[test]
    fn more_parts_than_one_writev_takes_reach_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials");
        let parts: Vec<Vec<u8>> = (0..5000)
            .map(|i| format!("line {i}\n").into_bytes())
            .collect();
        let slices: Vec<&[u8]> = parts.iter().map(|p| p.as_slice()).collect();
        Target::open(&path, true)
            .unwrap()
            .replace_with(&slices, 0o600, Ownership::default(), false)
            .unwrap();
        assert_eq!(fs::read(&path).unwrap(), parts.concat());
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
        let target = Target::open(&link, true).unwrap();
        assert_eq!(target.resolved(), fs::canonicalize(&real).unwrap());
        target
            .replace(b"new", 0o640, Ownership::default(), true)
            .unwrap();
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
        write_atomic(&deep.join("f"), b"x", 0o600, Ownership::default(), true).unwrap();
        for d in [dir.path().join("a"), deep] {
            assert_eq!(
                fs::metadata(&d).unwrap().permissions().mode() & 0o777,
                0o700
            );
        }
    }

    #[test]
    fn only_regular_files_are_written() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let link = dir.path().join("null-link");
        std::os::unix::fs::symlink("/dev/null", &link).unwrap();
        for (p, kind) in [
            (fifo.clone(), "a FIFO"),
            (PathBuf::from("/dev/null"), "a character device"),
            (link.clone(), "a character device"),
            (dir.path().to_path_buf(), "a folder"),
        ] {
            let e = write_atomic(&p, b"x", 0o600, Ownership::default(), true).unwrap_err();
            assert!(e.to_string().contains(kind), "{p:?}: {e}");
            assert!(e.to_string().contains("left it as it is"), "{e}");
        }
        assert!(fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo_compat());
        // Reading a FIFO as a token file is an error, not a hang.
        let e = read_regular(&fifo, TOKEN_MAX).unwrap_err();
        assert!(e.to_string().contains("a FIFO"), "{e}");
    }

    #[test]
    fn a_parent_that_is_a_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain");
        fs::write(&file, "x").unwrap();
        let e = write_atomic(
            &file.join("credentials"),
            b"x",
            0o600,
            Ownership::default(),
            true,
        )
        .unwrap_err();
        assert!(e.to_string().contains("not a folder"), "{e}");
    }

    #[test]
    fn reads_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("big");
        fs::write(&f, vec![b'x'; 2048]).unwrap();
        assert_eq!(read_regular(&f, 2048).unwrap().unwrap().len(), 2048);
        let e = read_regular(&f, 1024).unwrap_err();
        assert!(e.to_string().contains("limit of 1 KiB"), "{e}");
        assert!(read_regular(&dir.path().join("none"), 10)
            .unwrap()
            .is_none());
    }

    #[test]
    fn stale_temp_files_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("credentials");
        let stale = dir.path().join(format!("{}abc.tmp", temp_prefix(&target)));
        fs::write(&stale, "x").unwrap();
        fs::write(dir.path().join("keep.tmp"), "x").unwrap();
        Target::open(&target, true)
            .unwrap()
            .remove_stale_temp_files();
        assert!(!stale.exists());
        assert!(dir.path().join("keep.tmp").exists());
    }

    trait FifoCompat {
        fn is_fifo_compat(&self) -> bool;
    }
    impl FifoCompat for fs::FileType {
        fn is_fifo_compat(&self) -> bool {
            use std::os::unix::fs::FileTypeExt;
            self.is_fifo()
        }
    }
}
