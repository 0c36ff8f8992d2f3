//! Shared helpers: temporary homes, configs, credential_process scripts, running the binary.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_awscredd"))
}

/// A private home folder with a config file in it.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Self {
        Sandbox {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `HOME/name`.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `HOME/config.toml` and returns its path.
    pub fn config(&self, text: &str) -> PathBuf {
        let p = self.file("config.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    /// Writes an executable `credential_process` script `HOME/name` that prints Version 1 JSON
    /// with key id `akid` expiring in `expires_in_secs` seconds (no Expiration if `None`).
    pub fn process_script(&self, name: &str, akid: &str, expires_in_secs: Option<i64>) -> PathBuf {
        let exp = match expires_in_secs {
            Some(s) => {
                format!(r#", "Expiration": "$(date -u -d '{s} seconds' +%Y-%m-%dT%H:%M:%SZ)""#)
            }
            None => String::new(),
        };
        let script = format!(
            "#!/bin/sh\ncat <<JSON\n{{\"Version\": 1, \"AccessKeyId\": \"{akid}\", \"SecretAccessKey\": \"secret-{akid}\", \"SessionToken\": \"token-{akid}\"{exp}}}\nJSON\n"
        );
        let p = self.file(name);
        std::fs::write(&p, script).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        p
    }

    /// A command for the binary with this sandbox as HOME and no AWS variables from outside.
    pub fn command(&self) -> Command {
        let mut c = Command::new(bin());
        c.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.path())
            .env("RUST_LOG", "info");
        c
    }

    /// Writes a config with `state_dir = "state"`, one output `HOME/credentials` and one
    /// `credential_process` profile `a` running `command`.
    pub fn one_profile_config(&self, command: &str) -> PathBuf {
        self.config(&format!(
            "[daemon]\nstate_dir = \"state\"\n[[output]]\npath = \"credentials\"\n\
             [profile.a]\ncredential_process = \"{command}\"\n"
        ))
    }

    /// Starts `awscredd --config HOME/config.toml run`, its log going to `HOME/daemon.log`.
    pub fn spawn_run(&self) -> std::process::Child {
        let mut c = self.command();
        c.arg("--config")
            .arg(self.file("config.toml"))
            .arg("run")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.file("daemon.log")).unwrap());
        c.spawn().expect("spawn awscredd run")
    }

    /// What the daemon logged so far.
    pub fn daemon_log(&self) -> String {
        std::fs::read_to_string(self.file("daemon.log")).unwrap_or_default()
    }

    /// Waits up to `limit` for `text` in the daemon's log.
    pub fn wait_for_log(&self, text: &str, limit: std::time::Duration) -> bool {
        let started = std::time::Instant::now();
        while started.elapsed() < limit {
            if self.daemon_log().contains(text) {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        false
    }

    /// Runs `awscredd --config HOME/config.toml ARGS`.
    pub fn run(&self, args: &[&str]) -> Output {
        let mut c = self.command();
        c.arg("--config").arg(self.file("config.toml")).args(args);
        c.output().expect("run awscredd")
    }
}

/// stdout and stderr of a finished run, for assertion messages.
pub fn show(o: &Output) -> String {
    format!(
        "status: {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The Python the tests use: the README's test command sets up `target/venv` (PEP 668 forbids
/// `pip install` into a distribution's own Python), else `python3` from `PATH`.
pub fn python3() -> PathBuf {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/venv/bin/python3");
    if venv.exists() {
        venv
    } else {
        PathBuf::from("python3")
    }
}

/// The real Python interpreter that can import botocore, and the folder botocore is in.
/// `python3` may be a pyenv shim that needs the real HOME, so it is asked once with the
/// inherited environment, and the interpreter it names is then run with the sandbox's.
pub fn find_botocore() -> Option<(PathBuf, PathBuf)> {
    let out = Command::new(python3())
        .args([
            "-c",
            "import os, sys, botocore\n\
             print(sys.executable)\n\
             print(os.path.dirname(os.path.dirname(os.path.abspath(botocore.__file__))))",
        ])
        .stdin(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let mut lines = text.lines();
    let python = PathBuf::from(lines.next()?);
    let site = PathBuf::from(lines.next()?);
    Some((python, site))
}

/// botocore's Python, ready to run in `sb` with a clean environment (HOME = the sandbox, no
/// instance metadata); `None` (a skip) when botocore is not installed, which fails under CI.
pub fn botocore_python(sb: &Sandbox) -> Option<Command> {
    let Some((python, site)) = find_botocore() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "botocore is missing and CI is set: pip install -r tests/requirements.txt"
        );
        eprintln!("SKIPPED: botocore is not installed");
        return None;
    };
    let mut c = Command::new(python);
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", sb.path())
        .env("PYTHONPATH", site)
        .env("AWS_EC2_METADATA_DISABLED", "true");
    Some(c)
}

/// The test Python, when it can import `prometheus_client` (the Prometheus project's parser of
/// the text format); `None` (a skip) when it cannot, which fails under CI.
pub fn prometheus_python() -> Option<PathBuf> {
    let python = python3();
    let ok = Command::new(&python)
        .args(["-c", "import prometheus_client.parser"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return Some(python);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "prometheus_client is missing and CI is set: pip install -r tests/requirements.txt"
    );
    eprintln!("SKIPPED: prometheus_client is not installed");
    None
}

/// Whether this test may go on as root: true as root; elsewhere it says it skipped and is
/// false, except under CI (which runs as root), where a missing privilege fails the test
/// instead of letting it pass without running. Every root-only test goes through here.
#[cfg(unix)]
pub fn require_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI runs these tests as root"
    );
    eprintln!("SKIPPED: needs root");
    false
}

/// The one guard for the tests' child processes: killed (by its PID) and reaped when dropped,
/// however the test ends, so that no child outlives a failed test. (After a successful wait,
/// the kill sends nothing: std knows the child was reaped.)
pub struct Guard(pub std::process::Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Guard {
    /// Waits up to `limit` for the child to exit, and collects what it wrote to its pipes;
    /// past `limit`, kills it and fails the test with that output.
    pub fn output(&mut self, limit: std::time::Duration) -> Output {
        use std::io::Read;
        let deadline = std::time::Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                break Some(status);
            }
            if std::time::Instant::now() > deadline {
                let _ = self.0.kill();
                break None;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        if let Some(mut o) = self.0.stdout.take() {
            let _ = o.read_to_end(&mut stdout);
        }
        if let Some(mut e) = self.0.stderr.take() {
            let _ = e.read_to_end(&mut stderr);
        }
        let out = Output {
            status: status.unwrap_or_else(|| self.0.wait().unwrap()),
            stdout,
            stderr,
        };
        assert!(
            status.is_some(),
            "the child did not finish within {limit:?}:\n{}",
            show(&out)
        );
        out
    }
}

/// Waits up to `limit` for `cond`, looking every 50 ms; whether it came true.
pub fn eventually(limit: std::time::Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    cond()
}

/// The one counting source: a `credential_process` command that counts its runs in
/// `HOME/NAME.runs` ([`runs`]) and prints, at its run N, the key id `ASIA<NAME>N`, the secret
/// `secretN` and the token `tokenN`, living `lifetime` seconds.
pub fn counting_source(sb: &Sandbox, name: &str, lifetime: i64) -> String {
    let counter = sb.file(&format!("{name}.runs"));
    let script = sb.file(&format!("{name}.sh"));
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho x >> '{c}'\nn=$(wc -l < '{c}' | tr -d ' ')\nprintf '{{\"Version\":1,\"AccessKeyId\":\"ASIA{up}%s\",\"SecretAccessKey\":\"secret%s\",\"SessionToken\":\"token%s\",\"Expiration\":\"%s\"}}' $n $n $n $(date -u -d '{lifetime} seconds' +%Y-%m-%dT%H:%M:%SZ)\n",
            c = counter.display(),
            up = name.to_uppercase()
        ),
    )
    .unwrap();
    format!("sh {}", script.display())
}

/// How many times the source `name` ran: lines in `HOME/NAME.runs`.
pub fn runs(sb: &Sandbox, name: &str) -> usize {
    std::fs::read_to_string(sb.file(&format!("{name}.runs")))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}
