//! `awscredd run`: the daemon, driven with signals as systemd drives it.
#![cfg(unix)]

use crate::util::{counting_source, eventually, runs, show, Guard, Sandbox};
use std::fs;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A running daemon, killed if a test fails before stopping it.
struct Daemon(Guard);

impl Daemon {
    fn start(sb: &Sandbox, extra_env: &[(&str, &str)]) -> Self {
        let mut c = sb.command();
        c.arg("--config")
            .arg(sb.file("config.toml"))
            .arg("run")
            .stdout(Stdio::null())
            .stderr(fs::File::create(sb.file("daemon.log")).unwrap());
        for (k, v) in extra_env {
            c.env(k, v);
        }
        Daemon(Guard(c.spawn().unwrap()))
    }

    fn signal(&self, sig: &str) {
        let pid = self.0 .0.id().to_string();
        let ok = Command::new("kill")
            .args(["-s", sig, &pid])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// Waits up to `limit` for the daemon to exit; its exit code.
    fn wait(&mut self, limit: Duration) -> Option<i32> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = self.0 .0.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

fn config(sb: &Sandbox, profiles: &[(&str, String)]) {
    let mut text =
        String::from("[daemon]\nstate_dir = \"state\"\n[[output]]\npath = \"credentials\"\n");
    for (name, cmd) in profiles {
        text.push_str(&format!(
            "[profile.{name}]\ncredential_process = \"{cmd}\"\n"
        ));
    }
    sb.config(&text);
}

#[test]
fn a_bad_config_at_start_up_exits_78() {
    let sb = Sandbox::new();
    sb.config("[profile.p]\nbogus = 1\n");
    let o = sb.run(&["run"]);
    assert_eq!(o.status.code(), Some(78), "{}", show(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("config.toml:2:1"));
}

#[test]
fn a_bad_config_at_start_up_is_reported_once_and_as_json_under_log_format_json() {
    let sb = Sandbox::new();
    sb.config("[profile.p]\nbogus = 1\n");
    let o = sb.run(&["run"]);
    assert_eq!(o.status.code(), Some(78), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.matches("config.toml:2:1").count(), 1, "{err}");
    let o = sb.run(&["--log-format", "json", "run"]);
    assert_eq!(o.status.code(), Some(78), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    for line in err.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        if v["message"]
            .as_str()
            .is_some_and(|m| m.contains("config.toml:2:1"))
        {
            assert_eq!(v["level"], "ERROR", "{line}");
        }
    }
    assert_eq!(err.matches("config.toml:2:1").count(), 1, "{err}");
}

#[test]
fn a_config_with_no_profiles_exits_78_at_start_up_and_is_refused_by_sighup() {
    let sb = Sandbox::new();
    sb.config("# every profile commented out\n# [profile.dev]\n");
    let o = sb.run(&["run"]);
    assert_eq!(o.status.code(), Some(78), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no profiles are configured"),
        "{}",
        show(&o)
    );
    let long = counting_source(&sb, "long", 3600);
    config(&sb, &[("long", long)]);
    let mut d = Daemon::start(&sb, &[]);
    assert!(eventually(Duration::from_secs(10), || runs(&sb, "long") == 1));
    // Truncated to 0 bytes: refused like any invalid config, the old one kept.
    sb.config("");
    d.signal("HUP");
    assert!(
        eventually(Duration::from_secs(10), || sb
            .daemon_log()
            .contains("the old one keeps running")),
        "{}",
        sb.daemon_log()
    );
    assert!(sb.daemon_log().contains("no profiles are configured"));
    d.signal("USR1");
    assert!(eventually(Duration::from_secs(10), || runs(&sb, "long") == 2));
    d.signal("TERM");
    assert_eq!(d.wait(Duration::from_secs(2)), Some(0));
}

#[test]
fn refreshes_before_expiry_and_stops_on_sigterm_within_two_seconds() {
    let sb = Sandbox::new();
    // 6 s credentials are refreshed at half their lifetime: about every 3 s. (The schedule
    // itself is tested on paused time in src/daemon_schedule_tests.rs; this proves the binary.)
    let cmd = counting_source(&sb, "short", 6);
    config(&sb, &[("short", cmd)]);
    let mut d = Daemon::start(&sb, &[]);
    assert!(
        eventually(Duration::from_secs(15), || runs(&sb, "short") >= 2),
        "{}",
        fs::read_to_string(sb.file("daemon.log")).unwrap_or_default()
    );
    let text = fs::read_to_string(sb.file("credentials")).unwrap();
    assert!(text.contains("ASIASHORT"), "{text}");
    let asked = Instant::now();
    d.signal("TERM");
    assert_eq!(d.wait(Duration::from_secs(2)), Some(0));
    assert!(asked.elapsed() < Duration::from_secs(2));
}

#[test]
fn sigusr1_refreshes_now_and_sighup_reloads_or_keeps_the_old_config() {
    let sb = Sandbox::new();
    let long = counting_source(&sb, "long", 3600);
    config(&sb, &[("long", long.clone())]);
    let mut d = Daemon::start(&sb, &[]);
    assert!(eventually(Duration::from_secs(10), || runs(&sb, "long") == 1));
    // Valid for an hour: nothing more happens by itself (the schedule is tested on paused
    // time in src/daemon_schedule_tests.rs).
    assert_eq!(runs(&sb, "long"), 1);
    d.signal("USR1");
    assert!(eventually(Duration::from_secs(10), || runs(&sb, "long") == 2));

    // A new profile in the config: SIGHUP picks it up.
    let extra = counting_source(&sb, "extra", 3600);
    config(&sb, &[("long", long.clone()), ("extra", extra)]);
    d.signal("HUP");
    assert!(
        eventually(Duration::from_secs(10), || runs(&sb, "extra") == 1),
        "{}",
        fs::read_to_string(sb.file("daemon.log")).unwrap_or_default()
    );
    // The script has run; the write follows it.
    assert!(eventually(Duration::from_secs(10), || fs::read_to_string(
        sb.file("credentials")
    )
    .unwrap_or_default()
    .contains("[extra]")));

    // An invalid config is logged, and the old one keeps running.
    sb.config("[profile.broken\n");
    d.signal("HUP");
    assert!(eventually(Duration::from_secs(10), || fs::read_to_string(
        sb.file("daemon.log")
    )
    .unwrap_or_default()
    .contains("the old one keeps running")));
    d.signal("USR1");
    assert!(eventually(Duration::from_secs(10), || runs(&sb, "long") == 3));
    d.signal("INT");
    assert_eq!(d.wait(Duration::from_secs(2)), Some(0));
}

#[test]
fn a_slow_source_holds_nobody_back_and_sigterm_stops_at_once() {
    let sb = Sandbox::new();
    let long = counting_source(&sb, "long", 3600);
    let slow = sb.file("slow.sh");
    fs::write(&slow, "#!/bin/sh\nsleep 30\n").unwrap();
    config(
        &sb,
        &[("long", long), ("slow", format!("sh {}", slow.display()))],
    );
    fs::write(sb.file("credentials"), "# mine\n[other]\nk = v\n").unwrap();
    let mut d = Daemon::start(&sb, &[]);
    assert!(eventually(Duration::from_secs(10), || runs(&sb, "long") == 1));
    // The slow source does not hold the others back: they are written after a few seconds.
    assert!(
        eventually(Duration::from_secs(10), || fs::read_to_string(
            sb.file("credentials")
        )
        .unwrap_or_default()
        .contains("ASIALONG1")),
        "{}",
        fs::read_to_string(sb.file("daemon.log")).unwrap_or_default()
    );
    let asked = Instant::now();
    d.signal("TERM");
    assert_eq!(d.wait(Duration::from_secs(2)), Some(0));
    assert!(asked.elapsed() < Duration::from_secs(2));
    let text = fs::read_to_string(sb.file("credentials")).unwrap();
    assert!(text.starts_with("# mine\n[other]\nk = v\n"), "{text}");
    assert!(
        text.contains("ASIALONG1") && !text.contains("[slow]"),
        "{text}"
    );
}

#[test]
fn tells_systemd_it_is_ready_once_the_first_pass_is_written() {
    use std::os::unix::net::UnixDatagram;
    let sb = Sandbox::new();
    let cmd = counting_source(&sb, "p", 3600);
    config(&sb, &[("p", cmd)]);
    let socket_path = sb.file("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let mut d = Daemon::start(&sb, &[("NOTIFY_SOCKET", socket_path.to_str().unwrap())]);
    let mut buf = [0u8; 256];
    let n = socket.recv(&mut buf).expect("READY=1 within 15 s");
    let msg = String::from_utf8_lossy(&buf[..n]);
    assert!(msg.contains("READY=1"), "{msg}");
    // Ready means written.
    assert!(fs::read_to_string(sb.file("credentials"))
        .unwrap()
        .contains("ASIAP1"));
    d.signal("TERM");
    assert_eq!(d.wait(Duration::from_secs(2)), Some(0));
}

/// Every datagram that arrives on `socket` within `window`, with its arrival time.
fn datagrams(
    socket: &std::os::unix::net::UnixDatagram,
    window: Duration,
) -> Vec<(Instant, String)> {
    let end = Instant::now() + window;
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        socket
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match socket.recv(&mut buf) {
            Ok(n) => got.push((
                Instant::now(),
                String::from_utf8_lossy(&buf[..n]).into_owned(),
            )),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => break,
            Err(e) => panic!("recv: {e}"),
        }
    }
    got
}

#[test]
fn pings_the_systemd_watchdog_after_ready_while_it_sleeps_and_while_a_pass_waits() {
    use std::os::unix::net::UnixDatagram;
    let sb = Sandbox::new();
    // Fast the first time; from the second run on it takes 4 s, so that pass waits on it.
    let counter = sb.file("p.runs");
    let script = sb.file("p.sh");
    fs::write(
        &script,
        format!(
            "#!/bin/sh\necho x >> '{c}'\nn=$(wc -l < '{c}' | tr -d ' ')\n[ \"$n\" -ge 2 ] && sleep 4\nprintf '{{\"Version\":1,\"AccessKeyId\":\"ASIAP%s\",\"SecretAccessKey\":\"s\",\"Expiration\":\"%s\"}}' $n $(date -u -d '3600 seconds' +%Y-%m-%dT%H:%M:%SZ)\n",
            c = counter.display()
        ),
    )
    .unwrap();
    config(&sb, &[("p", format!("sh {}", script.display()))]);
    let socket_path = sb.file("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    // WatchdogSec=3s: a ping at least every 1.5 s.
    let half = Duration::from_millis(1500);
    let mut d = Daemon::start(
        &sb,
        &[
            ("NOTIFY_SOCKET", socket_path.to_str().unwrap()),
            ("WATCHDOG_USEC", "3000000"),
        ],
    );
    // The first pass, then the daemon sleeps (the credentials are good for an hour).
    let mut got = datagrams(&socket, Duration::from_secs(4));
    let log = || fs::read_to_string(sb.file("daemon.log")).unwrap_or_default();
    assert!(
        got.first().is_some_and(|(_, m)| m.contains("READY=1")),
        "READY=1 must come first: {got:?}\n{}",
        log()
    );
    // A pass that waits 4 s for its source.
    d.signal("USR1");
    let usr1 = Instant::now();
    got.extend(datagrams(&socket, Duration::from_secs(7)));
    let ready_at = got[0].0;
    let pings: Vec<Instant> = got
        .iter()
        .filter(|(_, m)| m.trim() == "WATCHDOG=1")
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(
        pings.len() + 1,
        got.len(),
        "only READY=1 and pings: {got:?}"
    );
    assert!(
        pings.first().is_some_and(|t| *t - ready_at < half),
        "first ping: {got:?}"
    );
    let gaps: Vec<Duration> = pings.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        gaps.iter().all(|g| *g < half),
        "a gap over half the watchdog interval: {gaps:?}"
    );
    assert!(
        pings.last().is_some_and(|t| t.elapsed() < half),
        "the pings stopped: {got:?}\n{}",
        log()
    );
    // The slow pass ran within the window, and the pings went on through it.
    assert_eq!(runs(&sb, "p"), 2, "{}", log());
    assert!(fs::read_to_string(sb.file("credentials"))
        .unwrap()
        .contains("ASIAP2"));
    assert!(
        pings
            .iter()
            .filter(|t| **t > usr1 + Duration::from_secs(1))
            .count()
            >= 3,
        "{gaps:?}"
    );
    d.signal("TERM");
    assert_eq!(d.wait(Duration::from_secs(2)), Some(0));
}

/// SIGTERM while a source runs: its whole process group goes, grandchildren included (a
/// `sleep` the source started is not left orphaned).
#[test]
fn sigterm_kills_a_running_source_with_its_grandchildren() {
    let sb = Sandbox::new();
    let pidfile = sb.file("grandchild.pid");
    let slow = sb.file("slow.sh");
    fs::write(
        &slow,
        format!(
            "#!/bin/sh\nsleep 30 &\necho $! > '{p}.tmp'\nmv '{p}.tmp' '{p}'\nwait\n",
            p = pidfile.display()
        ),
    )
    .unwrap();
    config(&sb, &[("slow", format!("sh {}", slow.display()))]);
    let mut d = Daemon::start(&sb, &[]);
    assert!(
        eventually(Duration::from_secs(10), || pidfile.exists()),
        "{}",
        sb.daemon_log()
    );
    let pid = fs::read_to_string(&pidfile).unwrap().trim().to_string();
    d.signal("TERM");
    assert_eq!(
        d.wait(Duration::from_secs(3)),
        Some(0),
        "{}",
        sb.daemon_log()
    );
    let gone = eventually(Duration::from_secs(2), || {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        stat.is_empty() || stat.contains(") Z ")
    });
    if !gone {
        let _ = Command::new("kill").args(["-9", &pid]).status();
    }
    assert!(gone, "the source's child {pid} outlived the daemon");
}
