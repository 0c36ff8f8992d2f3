//! The floor every file awscredd reads or writes stands on: bounded reads, the no-follow walk
//! and its symlink rule, ownership, temporary names, atomic replacement, and lock files
//! ([`lock`]). It uses nothing else of awscredd's (but the clock): the credentials files
//! (`store`), the state file, the SSO token cache and the config all go through it.
//!
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

pub mod lock;
#[cfg(windows)]
pub mod replace_windows;
pub mod spare;

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
    // Process-wide on purpose: temp names must differ across every caller in this process.
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
        lock::lock_path_for(&self.resolved)
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

/// [`read_regular`] for a file another user may control the folder of (the SSO and login
/// caches under a user's home): a privileged process follows symbolic links only as it does
/// to write (links owned by root or itself, in folders nobody else can write), so a link
/// planted there cannot make it read, and use, another user's token. `None` if the file or
/// a folder on its path is missing.
pub fn read_private(path: &Path, limit: u64) -> io::Result<Option<Vec<u8>>> {
    let target = match Target::open(path, false) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(target.read(limit)?.map(|e| e.bytes))
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
    // A file larger than the limit is refused at once, by its size: not read up to the limit
    // first (512 MiB of a 600 MB credentials file), nor given a buffer that large.
    if size > limit {
        return Err(too_large(path, limit));
    }
    // One byte more than the file, so that reading up to its end needs no growth; a file that
    // grows meanwhile is still read whole (up to the limit).
    let expected = usize::try_from(size.min(limit)).unwrap_or(0);
    bytes.reserve(expected.saturating_add(1));
    file.take(limit + 1).read_to_end(bytes)?;
    if bytes.len() as u64 > limit {
        return Err(too_large(path, limit));
    }
    Ok(())
}

fn too_large(path: &Path, limit: u64) -> io::Error {
    named(
        io::ErrorKind::InvalidData,
        format!(
            "`{}` is larger than the limit of {}",
            path.display(),
            human(limit)
        ),
    )
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
    // Process-wide on purpose: the privileges of the process, read once (they do not change).
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
mod unix;

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
mod other;

/// How long a writer waits for a lock before it gives up (the holder of a credentials-file
/// lock holds it for milliseconds).
pub const LOCK_WAIT: Duration = Duration::from_secs(30);

#[cfg(test)]
mod write_parts_tests {
    use super::*;

    /// Issue 27 item 7: a 600 MB file was read up to the 512 MiB limit (into a buffer that
    /// large) before it was refused; it is refused by its size, with no buffer and no read.
    #[test]
    fn a_file_over_the_limit_is_refused_by_its_size_before_any_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials");
        let f = fs::File::create(&path).unwrap();
        f.set_len(600_000_000).unwrap(); // sparse: no disk used
        drop(f);
        let started = std::time::Instant::now();
        let mut bytes = Vec::new();
        let e = Target::open(&path, false)
            .unwrap()
            .read_into(CREDENTIALS_MAX, &mut bytes)
            .unwrap_err();
        assert!(
            e.to_string().contains("larger than the limit of 512 MiB"),
            "{e}"
        );
        assert!(
            bytes.capacity() < 1024,
            "a buffer of {} bytes",
            bytes.capacity()
        );
        let e = read_regular(&path, CREDENTIALS_MAX).unwrap_err();
        assert!(e.to_string().contains("larger than the limit"), "{e}");
        println!("refused in {:?}", started.elapsed());
    }

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
