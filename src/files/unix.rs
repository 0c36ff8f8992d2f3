//! The Unix walk: `openat`/`fstatat` with `O_NOFOLLOW` from an opened folder, the symlink
//! rule for a privileged process, folder creation with owners, and the replace itself.

use super::*;
use nix::errno::Errno;
use nix::fcntl::{openat, readlinkat, renameat, AtFlags, OFlag};
use nix::sys::stat::{fchmod, fstat, fstatat, mkdirat, FileStat, Mode, SFlag};
use nix::unistd::{fchown, unlinkat, Gid, Uid, UnlinkatFlags};
use std::collections::VecDeque;
use std::ffi::OsStr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Component;

const MAX_LINKS: usize = 40;

fn open_at(dir: Option<&OwnedFd>, name: &Path, flags: OFlag, mode: Mode) -> nix::Result<OwnedFd> {
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
    let pending: VecDeque<OsString> = components(&abs).collect();
    if pending.is_empty() {
        return Err(not_a_file(path));
    }
    let mut walk = Walk {
        path,
        pending,
        dir: root_dir().map_err(errno)?,
        resolved: PathBuf::from("/"),
        links: 0,
    };
    while let Some(comp) = walk.pending.pop_front() {
        if let Some(here) = walk.step(&comp, create)? {
            return Ok(finish(walk.dir, comp, path, here));
        }
    }
    Err(not_a_file(path))
}

fn not_a_file(path: &Path) -> io::Error {
    named(
        io::ErrorKind::InvalidInput,
        format!("`{}` is not a file", path.display()),
    )
}

fn root_dir() -> nix::Result<OwnedFd> {
    open_at(
        None,
        Path::new("/"),
        OFlag::O_PATH | OFlag::O_DIRECTORY,
        Mode::empty(),
    )
}

/// The named and `..` components of `p`, the ones a walk takes.
fn components(p: &Path) -> impl DoubleEndedIterator<Item = OsString> + '_ {
    p.components().filter_map(|c| match c {
        Component::Normal(n) => Some(n.to_os_string()),
        Component::ParentDir => Some(OsString::from("..")),
        _ => None,
    })
}

/// Where the walk of [`open`] is: the components still to go (a link's target goes in front
/// of them), the folder reached and its path, and how many links it has followed.
struct Walk<'p> {
    /// The path asked for, as messages name it.
    path: &'p Path,
    pending: VecDeque<OsString>,
    dir: OwnedFd,
    resolved: PathBuf,
    links: usize,
}

impl Walk<'_> {
    /// Takes the component `comp` from the folder reached: follows a link, enters a folder
    /// (creates a missing one if `create` is given), or, for the last component, returns the
    /// target's resolved path.
    fn step(&mut self, comp: &OsStr, create: Option<Ownership>) -> io::Result<Option<PathBuf>> {
        let last = self.pending.is_empty();
        let here = self.resolved.join(comp);
        match fstatat(
            Some(self.dir.as_raw_fd()),
            comp,
            AtFlags::AT_SYMLINK_NOFOLLOW,
        ) {
            Ok(st) if is(&st, SFlag::S_IFLNK) => self.follow_link(comp, &st, &here)?,
            Ok(st) if !last => self.enter(comp, &st, &here)?,
            Ok(st) => {
                if !is(&st, SFlag::S_IFREG) {
                    return Err(not_regular(&here, file_kind(&st)));
                }
                return Ok(Some(here));
            }
            Err(Errno::ENOENT) if last => return Ok(Some(here)),
            Err(Errno::ENOENT) if create.is_some() => {
                create_folder(&self.dir, comp, &here, create.unwrap_or_default())?;
                self.pending.push_front(comp.to_os_string());
            }
            Err(e) => {
                return Err(named(
                    errno(e).kind(),
                    format!("`{}`: {}", here.display(), errno(e)),
                ))
            }
        }
        Ok(None)
    }

    /// Follows the link `comp` (`st` is its own status) if the privileged rule allows it: its
    /// target's components go first, from the root for an absolute target.
    fn follow_link(&mut self, comp: &OsStr, st: &FileStat, here: &Path) -> io::Result<()> {
        self.links += 1;
        if self.links > MAX_LINKS {
            return Err(named(
                io::ErrorKind::InvalidInput,
                format!(
                    "too many levels of symbolic links at `{}`",
                    self.path.display()
                ),
            ));
        }
        may_follow(&self.dir, st, here)?;
        let dest = readlinkat(Some(self.dir.as_raw_fd()), comp).map_err(errno)?;
        let dest = PathBuf::from(dest);
        if dest.is_absolute() {
            self.dir = root_dir().map_err(errno)?;
            self.resolved = PathBuf::from("/");
        }
        for part in components(&dest).rev() {
            self.pending.push_front(part);
        }
        Ok(())
    }

    /// Enters `comp` (`st` is its own status), which must be a folder.
    fn enter(&mut self, comp: &OsStr, st: &FileStat, here: &Path) -> io::Result<()> {
        if !is(st, SFlag::S_IFDIR) {
            return Err(named(
                io::ErrorKind::NotADirectory,
                format!(
                    "`{}` is {}, not a folder, so `{}` cannot be written",
                    here.display(),
                    file_kind(st),
                    self.path.display()
                ),
            ));
        }
        self.dir = open_at(
            Some(&self.dir),
            Path::new(comp),
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW,
            Mode::empty(),
        )
        .map_err(errno)?;
        self.resolved = normal_join(&self.resolved, comp);
        Ok(())
    }
}

/// Creates the missing folder `comp` in `dir` (mode 0700; privileged, given its owner by
/// [`own_new_folder`]). One that appeared meanwhile will do.
fn create_folder(
    dir: &OwnedFd,
    comp: &OsStr,
    here: &Path,
    configured: Ownership,
) -> io::Result<()> {
    match mkdirat(Some(dir.as_raw_fd()), comp, Mode::from_bits_truncate(0o700)) {
        Ok(()) => {
            if privileged() {
                own_new_folder(dir, comp, here, configured)?;
            }
            Ok(())
        }
        Err(Errno::EEXIST) => Ok(()),
        Err(e) => Err(named(
            errno(e).kind(),
            format!(
                "cannot create the folder `{}`: {}",
                here.display(),
                errno(e)
            ),
        )),
    }
}

fn normal_join(base: &Path, comp: &OsStr) -> PathBuf {
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

/// Gives an existing lock file `f` (`st` its status; `at` its path) to `uid`/`gid` if only
/// this uid could have made it: ours, empty and with one link (an older awscredd's).
fn give_over_lock(f: &fs::File, st: &FileStat, uid: Option<Uid>, gid: Option<Gid>, at: &Path) {
    let ours = st.st_uid == nix::unistd::geteuid().as_raw() && st.st_size == 0 && st.st_nlink == 1;
    let wanted = (
        uid.map_or(st.st_uid, Uid::as_raw),
        gid.map_or(st.st_gid, Gid::as_raw),
    );
    if ours && wanted != (st.st_uid, st.st_gid) {
        if let Err(e) = fchown(f.as_raw_fd(), uid, gid) {
            tracing::debug!(lock = %at.display(), "cannot give the lock file to its file's owner: {e}");
        }
    }
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
        let Some((file, st)) = self.open_regular_in(&self.name, OFlag::O_RDONLY, Mode::empty())?
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

    /// Opens the target for reading (a regular file, as [`Self::read_into`] reads it); `None`
    /// if it does not exist.
    pub fn open_read(&self) -> io::Result<Option<fs::File>> {
        Ok(self
            .open_regular_in(&self.name, OFlag::O_RDONLY, Mode::empty())?
            .map(|(file, _)| file))
    }

    /// Reads the target into `bytes` (cleared first), up to `limit` bytes; `None` if it
    /// does not exist.
    pub fn read_into(&self, limit: u64, bytes: &mut Vec<u8>) -> io::Result<Option<Found>> {
        let Some((file, st)) = self.open_regular_in(&self.name, OFlag::O_RDONLY, Mode::empty())?
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
                give_over_lock(&f, &st, uid, gid, &at);
                return Ok(f);
            }
            if let Some(f) = self.place_new_lock(name, attempt, (uid, gid), &at)? {
                return Ok(f);
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

    /// Creates a lock file under a temporary name, gives it `uid` and `gid` and links it into
    /// place as `name` (the lock file `at`); `None` if another process placed one meanwhile.
    fn place_new_lock(
        &self,
        name: &OsStr,
        attempt: u32,
        (uid, gid): (Option<Uid>, Option<Gid>),
        at: &Path,
    ) -> io::Result<Option<fs::File>> {
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
            return Ok(Some(fs::File::from(fd)));
        }
        Ok(None)
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
        let (tmp, fd) = self.create_temp(mode)?;
        if let Err(e) = self.fill_and_rename(fd, &tmp, parts, mode, owner, durable) {
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

    /// A new temporary file beside the target (its name and descriptor), created with no
    /// more than `mode`'s owner read and write bits.
    fn create_temp(&self, mode: u32) -> io::Result<(String, OwnedFd)> {
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
        Ok((tmp, fd))
    }

    /// Gives the temporary file `fd` (named `tmp`) its owner and mode, writes `parts` into it
    /// and renames it over the target.
    fn fill_and_rename(
        &self,
        fd: OwnedFd,
        tmp: &str,
        parts: &[&[u8]],
        mode: u32,
        owner: Ownership,
        durable: bool,
    ) -> io::Result<()> {
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
        self.rename_over(tmp)
    }

    /// Renames `tmp` (in the target's folder) over the target.
    fn rename_over(&self, tmp: &str) -> io::Result<()> {
        renameat(
            Some(self.dir.as_raw_fd()),
            Path::new(tmp),
            Some(self.dir.as_raw_fd()),
            self.name.as_os_str(),
        )
        .map_err(|e| {
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
        })
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
