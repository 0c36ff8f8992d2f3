//! The one way awscredd runs another program (`credential_process`, `mfa_command`,
//! `login_command`): no standard input, its output read up to a limit, a time limit, and its
//! whole process group killed when it is stopped.
//!
//! - stdout is read up to [`Limits::stdout_max`]; past it the run fails (a process printing
//!   without end must not make the daemon ask for gigabytes).
//! - stderr is kept line by line, each line cut at [`MAX_LINE`], the last [`MAX_LINES`] lines
//!   (errors come last) and the number of earlier ones dropped, for the caller to log (after
//!   redacting what must not be logged).
//! - The child leads a process group of its own (Unix). On a timeout the whole group is
//!   killed, and so it is when the run is abandoned (its future dropped, as at shutdown or
//!   when `once` is stopped by a signal). When the child exits, what is left of its group (a
//!   grandchild that kept stdout open) is killed for a source ([`AfterExit::KillGroup`]: a
//!   process that exited has finished, whatever its children still do), and left running
//!   for a hook ([`AfterExit::Leave`]: what a hook starts in the background is what it was
//!   run for); the pipes such a program holds are then read to their end and dropped while
//!   awscredd runs, so its writes never fail.
//! - Every child gets [`RUNNING_FOR_VAR`], the profiles whose sources are being run in this
//!   chain of processes, so an `awscredd credential-process` started by its own profile's
//!   source sees the loop and fails instead of forking again.
//! - Every child is recorded as awscredd's own until its exit status is taken, so that
//!   [`orphans`], which reaps the processes that end up awscredd's children when it is PID 1
//!   (a container's init), never takes a status the code waits for.

pub(crate) mod orphans;

use std::io;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

/// The environment variable that carries the profiles whose sources are running, comma-separated,
/// outermost first.
pub(crate) const RUNNING_FOR_VAR: &str = "AWSCREDD_RUNNING_FOR";
/// The longest stderr line kept; the rest of the line is dropped.
pub(crate) const MAX_LINE: usize = 16 * 1024;
/// At most this many stderr lines are kept.
pub(crate) const MAX_LINES: usize = 200;
/// How long to drain the pipes after the child exited and its group was killed (a grandchild
/// that escaped the group may hold them open).
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(2);

/// What a run may use.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub timeout: Duration,
    pub stdout_max: usize,
    /// What becomes of the child's process group once the child has exited.
    pub after_exit: AfterExit,
}

/// What becomes of what a child started, once the child has exited by itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AfterExit {
    /// Killed: the child's work is done (sources, `mfa_command`).
    KillGroup,
    /// Left running (`on_change` hooks, which may start a program).
    Leave,
}

/// A child that exited.
#[derive(Debug)]
pub(crate) struct Finished {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    /// The last non-empty stderr lines (at most [`MAX_LINES`]), each at most [`MAX_LINE`]
    /// bytes (lossy UTF-8).
    pub stderr_lines: Vec<String>,
    /// How many earlier non-empty stderr lines were not kept.
    pub stderr_cut: usize,
}

impl Finished {
    /// What to log before the stderr lines when some were cut: `None` when none were.
    pub(crate) fn stderr_cut_note(&self) -> Option<String> {
        (self.stderr_cut > 0).then(|| {
            format!(
                "{} earlier stderr line{} not kept (the last {} follow)",
                self.stderr_cut,
                if self.stderr_cut == 1 {
                    " was"
                } else {
                    "s were"
                },
                self.stderr_lines.len()
            )
        })
    }
}

/// Why a run did not finish.
#[derive(Debug)]
pub(crate) enum RunError {
    /// It could not be started.
    Start(io::Error),
    /// It ran past the time limit and was killed, with its process group.
    TimedOut(Duration),
    /// It printed more than the limit on stdout and was killed.
    StdoutTooLarge(usize),
    /// Waiting for it failed.
    Wait(io::Error),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Start(e) => write!(f, "cannot start it: {e}"),
            RunError::TimedOut(d) => write!(
                f,
                "did not finish within {}s and was killed",
                d.as_secs_f64()
            ),
            RunError::StdoutTooLarge(n) => write!(
                f,
                "printed more than the limit of {} on stdout and was killed",
                human_bytes(*n)
            ),
            RunError::Wait(e) => write!(f, "waiting for it failed: {e}"),
        }
    }
}

fn human_bytes(n: usize) -> String {
    if n >= 1024 * 1024 && n % (1024 * 1024) == 0 {
        format!("{} MiB", n / (1024 * 1024))
    } else if n >= 1024 && n % 1024 == 0 {
        format!("{} KiB", n / 1024)
    } else {
        format!("{n} bytes")
    }
}

/// The profiles of [`RUNNING_FOR_VAR`] in this process's environment.
pub(crate) fn running_for() -> Vec<String> {
    crate::paths::process_env(RUNNING_FOR_VAR)
        .map(|v| {
            v.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Prepares `cmd` the way every child is run: no stdin, piped output, its own process group,
/// killed if dropped, and `profile` added to [`RUNNING_FOR_VAR`].
fn prepare(cmd: &mut Command, profile: Option<&str>) {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    #[cfg(unix)]
    cmd.process_group(0);
    if let Some(p) = profile {
        let mut chain = running_for();
        chain.push(p.to_string());
        cmd.env(RUNNING_FOR_VAR, chain.join(","));
    }
}

/// The pids of the children awscredd started and waits for (through tokio), kept from the
/// fork until their exit status is taken, so that [`orphans`] never reaps one of them.
static OWN_CHILDREN: std::sync::Mutex<std::collections::BTreeSet<u32>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

/// A child recorded in [`OWN_CHILDREN`]; the record goes when this is dropped.
struct Own(Option<u32>);

impl Drop for Own {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            lock(&OWN_CHILDREN).remove(&pid);
        }
    }
}

/// Starts `cmd`, recorded as our own from before the fork (the lock held across it: a child
/// that exits at once is never seen as an orphan).
fn spawn_own(cmd: &mut Command) -> io::Result<(tokio::process::Child, Own)> {
    let mut own = lock(&OWN_CHILDREN);
    let child = cmd.spawn()?;
    let pid = child.id();
    if let Some(pid) = pid {
        own.insert(pid);
    }
    Ok((child, Own(pid)))
}

/// Runs `cmd` (for the source of `profile`, if any) to its end within `limits`.
pub(crate) async fn run(
    mut cmd: Command,
    profile: Option<&str>,
    limits: Limits,
) -> Result<Finished, RunError> {
    prepare(&mut cmd, profile);
    let (mut child, _own) = spawn_own(&mut cmd).map_err(RunError::Start)?;
    // Declared after `child`, so dropped before it: a run abandoned at shutdown (this future
    // dropped) takes the whole group with it, not only the child `kill_on_drop` kills.
    let mut group = ProcessGroup(child.id());
    let (overflow_tx, mut overflow_rx) = tokio::sync::oneshot::channel::<()>();
    let stdout = Reader::spawn(
        child.stdout.take(),
        Bounded {
            bytes: Vec::new(),
            max: limits.stdout_max,
            overflow: Some(overflow_tx),
            overflowed: false,
        },
    );
    let stderr = Reader::spawn(child.stderr.take(), Lines::default());

    let outcome = tokio::select! {
        s = child.wait() => s.map_err(RunError::Wait),
        _ = tokio::time::sleep(limits.timeout) => Err(RunError::TimedOut(limits.timeout)),
        Ok(()) = &mut overflow_rx => Err(RunError::StdoutTooLarge(limits.stdout_max)),
    };
    if outcome.is_ok() && limits.after_exit == AfterExit::Leave {
        group.leave();
    } else {
        group.kill();
    }
    if outcome.is_err() {
        let _ = child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
    }
    let status = outcome?;
    let stdout = stdout.take(DRAIN_AFTER_EXIT).await;
    if stdout.overflowed {
        return Err(RunError::StdoutTooLarge(limits.stdout_max));
    }
    let stderr = stderr.take(DRAIN_AFTER_EXIT).await;
    Ok(Finished {
        status,
        stdout: stdout.bytes,
        stderr_lines: stderr.lines.into(),
        stderr_cut: stderr.cut,
    })
}

/// Starts `cmd` and returns at once; it is neither waited for nor killed. When it ends while
/// awscredd still runs, `done` gets its status and output lines (each bounded).
pub(crate) fn spawn_detached(
    mut cmd: Command,
    done: impl FnOnce(io::Result<ExitStatus>, Vec<String>) + Send + 'static,
) -> io::Result<()> {
    prepare(&mut cmd, None);
    cmd.kill_on_drop(false);
    let (mut child, own) = spawn_own(&mut cmd)?;
    let stdout = Reader::spawn(child.stdout.take(), Lines::default());
    let stderr = Reader::spawn(child.stderr.take(), Lines::default());
    tokio::spawn(async move {
        let status = child.wait().await;
        drop(own);
        let (out, err) = tokio::join!(stdout.take(DRAIN_AFTER_EXIT), stderr.take(DRAIN_AFTER_EXIT));
        let mut lines: Vec<String> = out.lines.into();
        lines.extend(err.lines);
        lines.truncate(MAX_LINES);
        done(status, lines);
    });
    Ok(())
}

/// The process group a child leads; killed when dropped, unless killed or left already.
struct ProcessGroup(Option<u32>);

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.kill();
    }
}

impl ProcessGroup {
    /// Kills every process left in the group (none left is fine), once.
    fn kill(&mut self) {
        #[cfg(unix)]
        if let Some(pid) = self.0.take() {
            if let Ok(pid) = i32::try_from(pid) {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        #[cfg(not(unix))]
        let _ = self.0.take();
    }

    /// Leaves what is left of the group running.
    fn leave(&mut self) {
        self.0 = None;
    }
}

/// What is kept of a pipe's bytes as they come.
trait Keep: Send + 'static {
    /// Keeps `bytes`; false when the pipe must be closed at once (too much).
    fn feed(&mut self, bytes: &[u8]) -> bool;
    /// The pipe ended (or is no longer listened to).
    fn end(&mut self) {}
}

/// stdout: everything up to `max` bytes; one byte more and `overflow` fires.
#[derive(Default)]
struct Bounded {
    bytes: Vec<u8>,
    max: usize,
    overflow: Option<tokio::sync::oneshot::Sender<()>>,
    overflowed: bool,
}

impl Keep for Bounded {
    fn feed(&mut self, bytes: &[u8]) -> bool {
        if self.bytes.len() + bytes.len() > self.max {
            self.overflowed = true;
            if let Some(tx) = self.overflow.take() {
                let _ = tx.send(());
            }
            return false;
        }
        self.bytes.extend_from_slice(bytes);
        true
    }
}

/// stderr: the last [`MAX_LINES`] non-empty lines of at most [`MAX_LINE`] bytes, and how
/// many earlier ones were dropped.
#[derive(Default)]
struct Lines {
    lines: std::collections::VecDeque<String>,
    cut: usize,
    current: Vec<u8>,
}

impl Lines {
    fn push_current(&mut self) {
        let text = String::from_utf8_lossy(&self.current);
        let text = text.trim_end_matches('\r');
        if !text.trim().is_empty() {
            if self.lines.len() == MAX_LINES {
                self.lines.pop_front();
                self.cut += 1;
            }
            self.lines.push_back(text.to_string());
        }
        self.current.clear();
    }
}

impl Keep for Lines {
    fn feed(&mut self, bytes: &[u8]) -> bool {
        for &b in bytes {
            if b == b'\n' {
                self.push_current();
            } else if self.current.len() < MAX_LINE {
                self.current.push(b);
            }
        }
        true
    }

    fn end(&mut self) {
        self.push_current();
    }
}

/// A pipe read in a task of its own, so the child never blocks on it. What it keeps is
/// [`Reader::take`]n once the pipe ends or the child's drain time is over; after that the
/// pipe is read to its end and what comes is dropped (a program a hook left running may hold
/// it: its writes must not fail while awscredd runs).
struct Reader<K> {
    kept: std::sync::Arc<std::sync::Mutex<Option<K>>>,
    ended: tokio::sync::watch::Receiver<bool>,
}

impl<K: Keep> Reader<K> {
    fn spawn(pipe: Option<impl AsyncRead + Unpin + Send + 'static>, keep: K) -> Self {
        let kept = std::sync::Arc::new(std::sync::Mutex::new(Some(keep)));
        let (tx, ended) = tokio::sync::watch::channel(false);
        let task_kept = std::sync::Arc::clone(&kept);
        tokio::spawn(async move {
            if let Some(mut pipe) = pipe {
                let mut buf = [0u8; 8192];
                loop {
                    let n = match pipe.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if let Some(k) = lock(&task_kept).as_mut() {
                        if !k.feed(&buf[..n]) {
                            let _ = tx.send(true);
                            return; // closes the pipe
                        }
                    }
                }
            }
            if let Some(k) = lock(&task_kept).as_mut() {
                k.end();
            }
            let _ = tx.send(true);
        });
        Reader { kept, ended }
    }

    /// What was kept, once the pipe ended or after `wait` at most.
    async fn take(mut self, wait: Duration) -> K
    where
        K: Default,
    {
        let _ = tokio::time::timeout(wait, self.ended.wait_for(|e| *e)).await;
        let mut kept = lock(&self.kept).take().unwrap_or_default();
        if !*self.ended.borrow() {
            kept.end();
        }
        kept
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Replaces every occurrence of `secrets` in `line`, anything shaped like an AWS secret key
/// (40 characters of base64) or a session token (100 or more), and the value of a
/// `NAME=value` whose name speaks of a secret, token or password (what `set -x` and `env`
/// print), with `** redacted **`.
pub(crate) fn redact(line: &str, secrets: &[&str]) -> String {
    let mut out = redact_named_values(line);
    for s in secrets.iter().filter(|s| s.len() >= 4) {
        out = out.replace(s, "** redacted **");
    }
    // `=` is base64's padding, only ever at the end: as a separator (`KEY=value`) it must not
    // join a name and a secret into one longer run.
    let is_b64 = |c: char| c.is_ascii_alphanumeric() || matches!(c, '+' | '/');
    let mut result = String::with_capacity(out.len());
    let mut run = String::new();
    let flush = |run: &mut String, result: &mut String| {
        let n = run.chars().count();
        let has_digit_and_letter =
            run.chars().any(|c| c.is_ascii_digit()) && run.chars().any(|c| c.is_ascii_alphabetic());
        if (n == 40 && has_digit_and_letter) || n >= 100 {
            result.push_str("** redacted **");
        } else {
            result.push_str(run);
        }
        run.clear();
    };
    for c in out.chars() {
        if is_b64(c) {
            run.push(c);
        } else {
            flush(&mut run, &mut result);
            result.push(c);
        }
    }
    flush(&mut run, &mut result);
    result
}

/// `..._SECRET_ACCESS_KEY=value`, `token=value`, `password=value`: the value (up to the next
/// space or quote) redacted.
fn redact_named_values(line: &str) -> String {
    const NAMES: [&str; 4] = ["secret", "token", "password", "passwd"];
    let mut result = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(eq) = rest.find('=') {
        let (before, after) = rest.split_at(eq);
        let name_start = before
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .map_or(0, |i| i + 1);
        let name = before[name_start..].to_ascii_lowercase();
        let mut after = &after[1..];
        result.push_str(before);
        result.push('=');
        // A quoted value ends at its closing quote, a bare one at a space or quote.
        let quote = after.chars().next().filter(|c| *c == '"' || *c == '\'');
        if let Some(q) = quote {
            result.push(q);
            after = &after[1..];
        }
        let value_len = after
            .find(|c: char| match quote {
                Some(q) => c == q,
                None => c.is_whitespace() || c == '"' || c == '\'',
            })
            .unwrap_or(after.len());
        if value_len > 0 && NAMES.iter().any(|n| name.contains(n)) {
            result.push_str("** redacted **");
        } else {
            result.push_str(&after[..value_len]);
        }
        rest = &after[value_len..];
    }
    result.push_str(rest);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_named_values_and_secret_shapes_after_an_equals_sign() {
        let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
        assert_eq!(
            redact(&format!("error: AWS_SECRET_ACCESS_KEY={secret} x"), &[]),
            "error: AWS_SECRET_ACCESS_KEY=** redacted ** x"
        );
        assert_eq!(
            redact(&format!("+ export KEY={secret}"), &[]),
            "+ export KEY=** redacted **"
        );
        assert_eq!(
            redact("AWS_SESSION_TOKEN=short password='hunter2' user=me", &[]),
            "AWS_SESSION_TOKEN=** redacted ** password='** redacted **' user=me"
        );
        let token = format!("{}==", "A1".repeat(60));
        assert_eq!(redact(&format!("t={token}"), &[]), "t=** redacted **==");
        assert_eq!(
            redact("region=eu-west-1 count=3", &[]),
            "region=eu-west-1 count=3"
        );
    }

    #[test]
    fn redacts_values_and_secret_shapes() {
        let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
        assert_eq!(secret.len(), 40);
        let line = format!("got key {secret} ok");
        assert_eq!(redact(&line, &[]), "got key ** redacted ** ok");
        assert_eq!(
            redact("token=abcd1234 done", &["abcd1234"]),
            "token=** redacted ** done"
        );
        let token = "A1".repeat(80);
        assert_eq!(redact(&format!("t {token}"), &[]), "t ** redacted **");
        // Ordinary progress lines are left alone.
        assert_eq!(
            redact("signing in to https://example.com/start ...", &[]),
            "signing in to https://example.com/start ..."
        );
    }

    #[cfg(unix)]
    fn sh(script: &str) -> Command {
        let mut c = Command::new("sh");
        c.arg("-c").arg(script);
        c
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn stdout_past_the_limit_fails_fast() {
        let limits = Limits {
            timeout: Duration::from_secs(20),
            stdout_max: 64 * 1024,
            after_exit: AfterExit::KillGroup,
        };
        let started = std::time::Instant::now();
        let e = run(sh("yes"), None, limits).await.unwrap_err();
        assert!(matches!(e, RunError::StdoutTooLarge(_)), "{e}");
        assert!(e.to_string().contains("64 KiB"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_grandchild_holding_stdout_does_not_hold_the_run() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("grandchild.pid");
        let script = format!("sleep 30 & echo $! > {}; printf done", pidfile.display());
        let limits = Limits {
            timeout: Duration::from_secs(20),
            stdout_max: 1024,
            after_exit: AfterExit::KillGroup,
        };
        let started = std::time::Instant::now();
        let f = run(sh(&script), None, limits).await.unwrap();
        assert!(f.status.success());
        assert_eq!(f.stdout, b"done");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // The grandchild was killed with the group (give the kernel a moment to reap it).
        let mut gone = false;
        for _ in 0..50 {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            if stat.is_empty() || stat.contains(") Z ") {
                gone = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(gone, "grandchild {pid} still runs");
    }

    /// Whether `pid` has exited (gone or a zombie), waiting up to a second.
    #[cfg(unix)]
    fn exits_soon(pid: i32) -> bool {
        for _ in 0..50 {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            if stat.is_empty() || stat.contains(") Z ") {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn an_abandoned_run_kills_the_grandchildren_too() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("grandchild.pid");
        let script = format!(
            "sleep 30 & echo $! > {p}.tmp; mv {p}.tmp {p}; wait",
            p = pidfile.display()
        );
        let limits = Limits {
            timeout: Duration::from_secs(60),
            stdout_max: 1024,
            after_exit: AfterExit::KillGroup,
        };
        let run = tokio::spawn(run(sh(&script), None, limits));
        let mut waited = 0;
        while !pidfile.exists() && waited < 200 {
            tokio::time::sleep(Duration::from_millis(25)).await;
            waited += 1;
        }
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // As at shutdown: the run's future is dropped while the source still runs.
        run.abort();
        let _ = run.await;
        assert!(exits_soon(pid), "grandchild {pid} still runs");
    }

    /// Issue 27 item 7: stderr was cut after 200 lines without saying so, and the lines kept
    /// were the first ones, though errors come last.
    #[cfg(unix)]
    #[tokio::test]
    async fn stderr_keeps_its_last_lines_and_says_how_many_were_cut() {
        let limits = Limits {
            timeout: Duration::from_secs(20),
            stdout_max: 1024,
            after_exit: AfterExit::KillGroup,
        };
        let n = MAX_LINES + 50;
        let script =
            format!("i=1; while [ $i -le {n} ]; do echo \"line $i\" >&2; i=$((i+1)); done");
        let f = run(sh(&script), None, limits).await.unwrap();
        assert_eq!(f.stderr_lines.len(), MAX_LINES);
        assert_eq!(f.stderr_lines[0], "line 51");
        assert_eq!(f.stderr_lines[MAX_LINES - 1], format!("line {n}"));
        assert_eq!(f.stderr_cut, 50);
        assert_eq!(
            f.stderr_cut_note().unwrap(),
            "50 earlier stderr lines were not kept (the last 200 follow)"
        );
        let f = run(sh("echo one >&2"), None, limits).await.unwrap();
        assert_eq!((f.stderr_lines.len(), f.stderr_cut_note()), (1, None));
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn stderr_lines_are_bounded_and_the_chain_is_passed_on() {
        let limits = Limits {
            timeout: Duration::from_secs(20),
            stdout_max: 1024,
            after_exit: AfterExit::KillGroup,
        };
        let script = format!(
            "head -c {} /dev/zero | tr '\\0' x >&2; echo >&2; printf \"$AWSCREDD_RUNNING_FOR\"",
            MAX_LINE * 3
        );
        let f = run(sh(&script), Some("dev"), limits).await.unwrap();
        assert_eq!(f.stderr_lines.len(), 1);
        assert_eq!(f.stderr_lines[0].len(), MAX_LINE);
        assert!(String::from_utf8_lossy(&f.stdout).ends_with("dev"));
    }
}
