//! The systemd notification protocol (`Type=notify`): `READY=1` once the first pass is
//! written (see [`Readiness`]), `STATUS=` lines that `systemctl status` shows while a sign-in
//! waits for a human, and the watchdog. All silent without `$NOTIFY_SOCKET`.

use crate::refresh::{Outcome, PassReport};
use crate::sources::sso::sign_ins::Waiting;
use crate::sources::ErrorKind;
use std::collections::BTreeSet;
use std::time::Duration;
use time::OffsetDateTime;

/// How long `run` waits, after its first pass, for a human to approve a sign-in that pass
/// started before it tells systemd it is ready anyway (the sign-in goes on).
pub(crate) const SIGN_IN_READY_WAIT: time::Duration = time::Duration::seconds(60);

/// When `run` is ready (SPEC.md, the `run` row): once every profile that needs no human holds
/// credentials or has failed, and a sign-in the first pass started has been approved and its
/// profiles written, or has waited [`SIGN_IN_READY_WAIT`] (or ended without a token).
#[derive(Debug, Default)]
pub(crate) struct Readiness {
    phase: Phase,
}

#[derive(Debug, Default)]
enum Phase {
    #[default]
    FirstPass,
    /// Profiles of the first pass that wait for a sign-in, and until when they are waited for.
    SignIn {
        until: OffsetDateTime,
        profiles: BTreeSet<String>,
    },
    Ready,
}

impl Readiness {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    #[cfg(test)]
    pub(crate) fn is_ready(&self) -> bool {
        matches!(self.phase, Phase::Ready)
    }

    /// Takes a pass's report (`None`: the pass ran nothing); true when `run` has just become
    /// ready. `signing_in`: whether a sign-in of this daemon still waits for a human.
    pub(crate) fn after_pass(
        &mut self,
        report: Option<&PassReport>,
        signing_in: bool,
        now: OffsetDateTime,
    ) -> bool {
        let waits = |name: &String, o: &Outcome| -> Option<String> {
            matches!(o, Outcome::Failed(e) if e.kind == ErrorKind::NeedsLogin).then(|| name.clone())
        };
        match &mut self.phase {
            Phase::Ready => return false,
            Phase::FirstPass => {
                let profiles: BTreeSet<String> = report
                    .map(|r| r.outcomes.iter().filter_map(|(n, o)| waits(n, o)).collect())
                    .unwrap_or_default();
                self.phase = Phase::SignIn {
                    until: now + SIGN_IN_READY_WAIT,
                    profiles,
                };
            }
            Phase::SignIn { profiles, .. } => {
                // Written, or failed for another reason than a human: no longer waited for.
                // (Skipped ones, `NotDue` while they back off, still are.)
                for (name, o) in report.map(|r| &r.outcomes).into_iter().flatten() {
                    if !matches!(o, Outcome::NotDue) && waits(name, o).is_none() {
                        profiles.remove(name);
                    }
                }
            }
        }
        let Phase::SignIn { until, profiles } = &self.phase else {
            return false;
        };
        if profiles.is_empty() || !signing_in || now >= *until {
            self.phase = Phase::Ready;
            return true;
        }
        false
    }

    /// When the wait for a sign-in ends (the scheduler wakes then at the latest).
    pub(crate) fn deadline(&self) -> Option<OffsetDateTime> {
        match &self.phase {
            Phase::SignIn { until, .. } => Some(*until),
            _ => None,
        }
    }
}

/// What `systemctl status` shows: the sign-ins that wait for a human, with what to open and
/// which code to enter; else how many profiles hold valid credentials.
pub(crate) fn status_line(waiting: &[Waiting], ok: usize, total: usize) -> String {
    let asks: Vec<String> = waiting
        .iter()
        .filter(|w| !w.ended)
        .map(|w| match &w.code {
            Some((uri, code)) => format!(
                "waiting for a sign-in to SSO session {}: open {uri} and enter the code {code}",
                w.session
            ),
            None => format!("starting a sign-in to SSO session {}", w.session),
        })
        .collect();
    if asks.is_empty() {
        format!("{ok} of {total} profiles hold valid credentials")
    } else {
        asks.join("; ")
    }
}

/// Sends `READY=1` and `STATUS=` lines to `$NOTIFY_SOCKET`, each status once per change.
#[derive(Debug, Default)]
pub(crate) struct Notifier {
    target: Option<std::ffi::OsString>,
    /// The last status sent, and whether it told of a sign-in.
    last: Option<(String, bool)>,
    warned: bool,
}

impl Notifier {
    /// The socket systemd gave this process, if any.
    pub(crate) fn from_env() -> Self {
        Self::to(crate::paths::process_env("NOTIFY_SOCKET").map(std::ffi::OsString::from))
    }

    pub(crate) fn to(target: Option<std::ffi::OsString>) -> Self {
        Notifier {
            target: target.filter(|t| !t.is_empty()),
            last: None,
            warned: false,
        }
    }

    /// `READY=1` with `status`.
    pub(crate) fn ready(&mut self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={status}\n"));
        self.last = Some((status.to_string(), false));
    }

    /// `status` when it tells of a sign-in and changed, or when a sign-in was told before and
    /// is over: other changes (every pass's count) are not worth a message.
    pub(crate) fn status(&mut self, status: &str, sign_in: bool) {
        let told_sign_in = self.last.as_ref().is_some_and(|(_, s)| *s);
        let changed = self.last.as_ref().is_none_or(|(l, _)| l != status);
        if changed && (sign_in || told_sign_in) {
            self.send(&format!("STATUS={status}\n"));
            self.last = Some((status.to_string(), sign_in));
        }
    }

    fn send(&mut self, msg: &str) {
        let Some(target) = &self.target else {
            return;
        };
        #[cfg(unix)]
        if let Err(e) = send_notify(target, msg.as_bytes()) {
            if !self.warned {
                tracing::warn!("cannot notify systemd: {e}");
                self.warned = true;
            }
        }
        #[cfg(not(unix))]
        let _ = (target, msg, &mut self.warned);
    }
}

#[cfg(unix)]
fn send_notify(target: &std::ffi::OsStr, msg: &[u8]) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::net::UnixDatagram;
    let sock = UnixDatagram::unbound()?;
    let bytes = target.as_bytes();
    if let Some(name) = bytes.strip_prefix(b"@") {
        #[cfg(target_os = "linux")]
        {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            sock.send_to_addr(msg, &addr)?;
            return Ok(());
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = name;
            return Err(std::io::Error::other("abstract sockets need Linux"));
        }
    }
    sock.send_to(msg, std::path::Path::new(target))?;
    Ok(())
}

/// systemd's watchdog (`WatchdogSec=` in the unit): when `$WATCHDOG_USEC` is set, and
/// `$WATCHDOG_PID` is unset or ours, `WATCHDOG=1` goes to `$NOTIFY_SOCKET` every third of that
/// interval (the contract says at least every half; the third leaves room for a busy machine).
/// The pings come from the scheduler loop itself, through [`Watchdog::while_running`] around
/// its sleeps and passes, so a loop that stops turning is restarted by systemd. Silent until
/// [`Watchdog::arm`], which follows `READY=1`.
pub(crate) struct Watchdog {
    /// Where to ping and how often; `None`: no watchdog was asked for.
    target: Option<(std::ffi::OsString, Duration)>,
    /// When the next ping is due; `None` until armed.
    next: Option<tokio::time::Instant>,
    /// A failed ping is logged once, not every few seconds.
    warned: bool,
}

impl Watchdog {
    /// The watchdog systemd asked for in this process's environment, if any.
    pub(crate) fn from_env() -> Self {
        Self::from_vars(
            crate::paths::process_env("NOTIFY_SOCKET").map(std::ffi::OsString::from),
            crate::paths::process_env("WATCHDOG_USEC").as_deref(),
            crate::paths::process_env("WATCHDOG_PID").as_deref(),
            std::process::id(),
        )
    }

    fn from_vars(
        socket: Option<std::ffi::OsString>,
        usec: Option<&str>,
        pid: Option<&str>,
        own_pid: u32,
    ) -> Self {
        let every = usec
            .and_then(|u| u.trim().parse::<u64>().ok())
            .filter(|&u| u > 0)
            .map(|u| (Duration::from_micros(u) / 3).max(Duration::from_millis(10)));
        let ours = pid.is_none_or(|p| p.trim().parse::<u32>().ok() == Some(own_pid));
        let target = match (socket, every) {
            (Some(s), Some(every)) if ours && !s.is_empty() => Some((s, every)),
            _ => None,
        };
        Watchdog {
            target,
            next: None,
            warned: false,
        }
    }

    /// How often it pings, if a watchdog was asked for.
    #[cfg(test)]
    pub(crate) fn interval(&self) -> Option<Duration> {
        self.target.as_ref().map(|(_, every)| *every)
    }

    /// Starts pinging, now and then every interval (call it once `READY=1` is sent).
    pub(crate) fn arm(&mut self) {
        if self.target.is_some() && self.next.is_none() {
            self.next = Some(tokio::time::Instant::now());
        }
    }

    /// Runs `work` to its end, pinging whenever a ping falls due meanwhile.
    pub(crate) async fn while_running<F: std::future::Future>(&mut self, work: F) -> F::Output {
        tokio::pin!(work);
        loop {
            let Some(next) = self.next else {
                return work.await;
            };
            tokio::select! {
                out = &mut work => return out,
                _ = tokio::time::sleep_until(next) => self.ping(),
            }
        }
    }

    fn ping(&mut self) {
        let Some((socket, every)) = &self.target else {
            return;
        };
        #[cfg(unix)]
        if let Err(e) = send_notify(socket, b"WATCHDOG=1\n") {
            if !self.warned {
                tracing::warn!("cannot ping the systemd watchdog: {e}");
                self.warned = true;
            }
        }
        #[cfg(not(unix))]
        let _ = (socket, self.warned);
        self.next = Some(tokio::time::Instant::now() + *every);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::SourceError;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-01-01 00:00 UTC);

    fn report(outcomes: &[(&str, Option<ErrorKind>)]) -> PassReport {
        PassReport {
            outcomes: outcomes
                .iter()
                .map(|(n, k)| {
                    let o = match k {
                        None => Outcome::Refreshed { expires: None },
                        Some(kind) => Outcome::Failed(SourceError {
                            kind: *kind,
                            message: "m".into(),
                        }),
                    };
                    (n.to_string(), o)
                })
                .collect(),
        }
    }

    #[test]
    fn ready_after_a_first_pass_that_needs_no_human() {
        let mut r = Readiness::new();
        let pass = report(&[("a", None), ("b", Some(ErrorKind::Failed))]);
        assert!(r.after_pass(Some(&pass), false, T0));
        assert!(r.is_ready());
        // Told once.
        assert!(!r.after_pass(Some(&pass), false, T0));
    }

    #[test]
    fn a_sign_in_is_waited_for_until_its_profiles_are_written() {
        let mut r = Readiness::new();
        let first = report(&[
            ("a", None),
            ("sso1", Some(ErrorKind::NeedsLogin)),
            ("sso2", Some(ErrorKind::NeedsLogin)),
        ]);
        assert!(!r.after_pass(Some(&first), true, T0));
        assert_eq!(r.deadline(), Some(T0 + SIGN_IN_READY_WAIT));
        // A pass that skipped them (backing off) changes nothing.
        let t = T0 + time::Duration::seconds(5);
        let skipped = PassReport {
            outcomes: [("sso1".to_string(), Outcome::NotDue)]
                .into_iter()
                .collect(),
        };
        assert!(!r.after_pass(Some(&skipped), true, t));
        // One written, the other still waiting.
        assert!(!r.after_pass(
            Some(&report(&[
                ("sso1", None),
                ("sso2", Some(ErrorKind::NeedsLogin))
            ])),
            true,
            t
        ));
        assert!(r.after_pass(Some(&report(&[("sso2", None)])), true, t));
        assert!(r.is_ready());
        assert_eq!(r.deadline(), None);
    }

    #[test]
    fn a_sign_in_nobody_approves_is_waited_for_60_seconds() {
        let mut r = Readiness::new();
        let first = report(&[("sso", Some(ErrorKind::NeedsLogin))]);
        assert!(!r.after_pass(Some(&first), true, T0));
        assert!(!r.after_pass(None, true, T0 + time::Duration::seconds(59)));
        assert!(r.after_pass(None, true, T0 + time::Duration::seconds(60)));
    }

    #[test]
    fn a_sign_in_that_ended_without_a_token_is_not_waited_for() {
        let mut r = Readiness::new();
        let first = report(&[("sso", Some(ErrorKind::NeedsLogin))]);
        assert!(!r.after_pass(Some(&first), true, T0));
        assert!(r.after_pass(None, false, T0 + time::Duration::seconds(3)));
    }

    #[test]
    fn the_status_says_what_to_open_and_which_code_to_enter() {
        let w = |code: Option<(&str, &str)>, ended| Waiting {
            session: "corp".into(),
            code: code.map(|(u, c)| (u.to_string(), c.to_string())),
            ended,
        };
        assert_eq!(
            status_line(&[w(Some(("https://d/", "ABCD-EFGH")), false)], 1, 3),
            "waiting for a sign-in to SSO session corp: open https://d/ and enter the code ABCD-EFGH"
        );
        assert_eq!(
            status_line(&[w(None, false)], 1, 3),
            "starting a sign-in to SSO session corp"
        );
        assert_eq!(
            status_line(&[w(None, true)], 1, 3),
            "1 of 3 profiles hold valid credentials"
        );
        assert_eq!(
            status_line(&[], 3, 3),
            "3 of 3 profiles hold valid credentials"
        );
    }

    #[cfg(unix)]
    #[test]
    fn statuses_are_sent_once_per_change_and_only_about_sign_ins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let socket = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        socket.set_nonblocking(true).unwrap();
        let mut n = Notifier::to(Some(path.into_os_string()));
        n.status("2 of 2 profiles hold valid credentials", false);
        n.status("waiting: code A", true);
        n.status("waiting: code A", true);
        n.status("waiting: code B", true);
        n.status("1 of 2 profiles hold valid credentials", false);
        n.status("2 of 2 profiles hold valid credentials", false);
        n.ready("2 of 2 profiles hold valid credentials");
        let mut got = Vec::new();
        let mut buf = [0u8; 256];
        while let Ok(k) = socket.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..k]).into_owned());
        }
        assert_eq!(
            got,
            [
                "STATUS=waiting: code A\n",
                "STATUS=waiting: code B\n",
                "STATUS=1 of 2 profiles hold valid credentials\n",
                "READY=1\nSTATUS=2 of 2 profiles hold valid credentials\n",
            ]
        );
    }

    #[test]
    fn the_watchdog_pings_every_third_of_watchdog_usec_for_its_own_pid_only() {
        let sock = || Some(std::ffi::OsString::from("/run/notify"));
        let w = Watchdog::from_vars(sock(), Some("60000000"), None, 42);
        assert_eq!(w.interval(), Some(Duration::from_secs(20)));
        let w = Watchdog::from_vars(sock(), Some("60000000"), Some("42"), 42);
        assert_eq!(w.interval(), Some(Duration::from_secs(20)));
        // Another process's watchdog (a parent's variables inherited), none asked for, a bad
        // or zero interval, or nowhere to send: no pings.
        for (socket, usec, pid) in [
            (sock(), Some("60000000"), Some("7")),
            (sock(), None, None),
            (sock(), Some("0"), None),
            (sock(), Some("soon"), None),
            (None, Some("60000000"), None),
            (Some(std::ffi::OsString::new()), Some("60000000"), None),
        ] {
            let w = Watchdog::from_vars(socket, usec, pid, 42);
            assert_eq!(w.interval(), None, "{usec:?} {pid:?}");
        }
        // A tiny interval never turns into a busy loop.
        let w = Watchdog::from_vars(sock(), Some("3"), None, 42);
        assert_eq!(w.interval(), Some(Duration::from_millis(10)));
    }

    #[cfg(unix)]
    #[test]
    fn the_watchdog_is_silent_until_armed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let socket = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        socket.set_nonblocking(true).unwrap();
        // WATCHDOG_USEC=30000: a ping every 10 ms.
        let mut w = Watchdog::from_vars(Some(path.into_os_string()), Some("30000"), None, 1);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let mut buf = [0u8; 64];
        rt.block_on(async {
            w.while_running(tokio::time::sleep(Duration::from_millis(100)))
                .await
        });
        assert!(socket.recv(&mut buf).is_err(), "a ping before arm()");
        w.arm();
        rt.block_on(async {
            w.while_running(tokio::time::sleep(Duration::from_millis(100)))
                .await
        });
        let mut pings = 0;
        while let Ok(n) = socket.recv(&mut buf) {
            assert_eq!(&buf[..n], b"WATCHDOG=1\n");
            pings += 1;
        }
        // About ten in 100 ms; at least a few even on a loaded machine.
        assert!((3..=12).contains(&pings), "{pings} pings");
    }
}
