//! `login_session` profiles (`aws login`) end to end: the real binary against the fake Sign-In
//! service of `tests/fakes/signin.py` (which verifies DPoP and the refresh token's binding to
//! the key), and botocore (with awscrt) reading and refreshing the same login cache.

use crate::util::{show, Sandbox};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ALICE: &str = "arn:aws:iam::111122223333:user/alice";
const BOB: &str = "arn:aws:iam::111122223333:user/bob";

/// The Python of `target/venv` (tests/requirements.txt: botocore, awscrt, cryptography): the
/// fake needs it, so a missing one fails the test.
fn venv_python() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/venv/bin/python");
    assert!(
        p.exists(),
        "{} is missing: python3 -m venv target/venv && target/venv/bin/pip install -r tests/requirements.txt",
        p.display()
    );
    p
}

fn fakes_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fakes")
}

/// The fake Sign-In service, stopped (by its PID) when dropped.
struct FakeSignin {
    child: Child,
    url: String,
}

impl FakeSignin {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(venv_python())
            .arg(fakes_dir().join("signin.py"))
            .args(["--port", "0", "--exit-after", "600"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the fake Sign-In service");
        let mut url = None;
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            let Some(Ok(line)) = lines.next() else { break };
            if let Some(u) = line.strip_prefix("url=") {
                url = Some(u.trim().to_string());
            }
            if line.trim() == "ready" {
                break;
            }
        }
        let url = url.expect("the fake printed its url");
        FakeSignin { child, url }
    }

    fn get(&self, path: &str) -> Value {
        http(&format!("{}{path}", self.url), "GET", None)
    }

    fn post(&self, path: &str, body: Value) -> Value {
        http(&format!("{}{path}", self.url), "POST", Some(body))
    }

    /// The token calls made so far.
    fn calls(&self) -> Vec<Value> {
        self.get("/_fake/calls")["calls"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

impl Drop for FakeSignin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A JSON call to the fake, through Python's urllib (no HTTP client among the test crates).
fn http(url: &str, method: &str, body: Option<Value>) -> Value {
    let script = "import json, sys, urllib.request\n\
        url, method, body = sys.argv[1], sys.argv[2], sys.argv[3]\n\
        req = urllib.request.Request(url, method=method, data=body.encode() if body else None, headers={'Content-Type': 'application/json'})\n\
        print(urllib.request.urlopen(req, timeout=20).read().decode())";
    let out = Command::new(venv_python())
        .args(["-c", script, url, method])
        .arg(body.map(|b| b.to_string()).unwrap_or_default())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

/// A sandbox with a config of one `login_session` profile `console` (and `extra` lines), the
/// login cache in `HOME/login-cache`.
struct Setup {
    sb: Sandbox,
    fake: FakeSignin,
}

impl Setup {
    fn new(extra: &str) -> Self {
        Self::with_fake(FakeSignin::start(&[]), extra)
    }

    fn with_fake(fake: FakeSignin, extra: &str) -> Self {
        let sb = Sandbox::new();
        sb.config(&format!(
            "[daemon]\nstate_dir = \"state\"\n[[output]]\npath = \"credentials\"\n\
             [profile.console]\nlogin_session = \"{ALICE}\"\n{extra}"
        ));
        Setup { sb, fake }
    }

    fn cache_dir(&self) -> PathBuf {
        self.sb.file("login-cache")
    }

    /// The cache file of `arn` (`hex(sha256(arn)).json`).
    fn cache_file(&self, arn: &str) -> PathBuf {
        let out = Command::new(venv_python())
            .args(["-c", "import hashlib, sys; print(hashlib.sha256(sys.argv[1].encode()).hexdigest())", arn])
            .output()
            .unwrap();
        self.cache_dir()
            .join(format!("{}.json", String::from_utf8_lossy(&out.stdout).trim()))
    }

    /// A sign-in of `arn` as `aws login` leaves it (credentials expired unless `valid`).
    fn sign_in(&self, arn: &str, extra: &[&str]) -> PathBuf {
        let out = Command::new(venv_python())
            .arg(fakes_dir().join("signin.py"))
            .args(["write-cache", "--fake-url", &self.fake.url, "--arn", arn, "--cache-dir"])
            .arg(self.cache_dir())
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", show(&out));
        self.cache_file(arn)
    }

    fn command(&self) -> Command {
        let mut c = self.sb.command();
        c.env("AWS_LOGIN_CACHE_DIRECTORY", self.cache_dir())
            .env("AWS_ENDPOINT_URL_SIGNIN", &self.fake.url)
            .arg("--config")
            .arg(self.sb.file("config.toml"));
        c
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        self.command().args(args).output().unwrap()
    }

    fn cache(&self, arn: &str) -> Value {
        serde_json::from_slice(&std::fs::read(self.cache_file(arn)).unwrap()).unwrap()
    }

    /// Marks the cached credentials expired (as time passing would), nothing else changed.
    fn expire_cache(&self, arn: &str) {
        let mut v = self.cache(arn);
        v["accessToken"]["expiresAt"] = Value::from("2020-01-01T00:00:00Z");
        std::fs::write(self.cache_file(arn), v.to_string()).unwrap();
    }

    fn credentials(&self) -> String {
        std::fs::read_to_string(self.sb.file("credentials")).unwrap_or_default()
    }

    /// botocore's credentials for profile `console` of an AWS config naming the same sign-in.
    fn botocore(&self) -> std::process::Output {
        let aws_config = self.sb.file("aws-config");
        std::fs::write(
            &aws_config,
            format!("[profile console]\nlogin_session = {ALICE}\nregion = us-east-1\n"),
        )
        .unwrap();
        Command::new(venv_python())
            .args([
                "-c",
                "import botocore.session\n\
                 c = botocore.session.Session(profile='console').get_credentials()\n\
                 assert c.method == 'login', c.method\n\
                 print(c.get_frozen_credentials().access_key)",
            ])
            .env_clear()
            .env("HOME", self.sb.path())
            .env("AWS_CONFIG_FILE", &aws_config)
            .env("AWS_SHARED_CREDENTIALS_FILE", self.sb.file("no-credentials"))
            .env("AWS_LOGIN_CACHE_DIRECTORY", self.cache_dir())
            .env("AWS_ENDPOINT_URL_SIGNIN", &self.fake.url)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output()
            .unwrap()
    }
}

/// Fails if any secret of the cache files or the fake's answers appears in `text`.
fn assert_no_secret(text: &str, caches: &[&Value]) {
    for c in caches {
        let at = &c["accessToken"];
        for s in [
            &at["secretAccessKey"],
            &at["sessionToken"],
            &c["refreshToken"],
        ] {
            let s = s.as_str().unwrap();
            assert!(!text.contains(s), "a secret leaked: {text}");
        }
        let key = c["dpopKey"].as_str().unwrap();
        let body = key.lines().nth(1).unwrap();
        assert!(!text.contains(body), "the DPoP key leaked: {text}");
    }
}

#[test]
fn refreshes_through_the_fake_and_botocore_and_awscredd_take_turns_with_one_cache() {
    let s = Setup::new("");
    let file = s.sign_in(ALICE, &[]);
    let before = s.cache(ALICE);
    let o = s.run(&["once"]);
    assert!(o.status.success(), "{}", show(&o));
    let calls = s.fake.calls();
    assert_eq!(calls.len(), 1, "{calls:#?}");
    assert_eq!(calls[0]["status"], 200, "{calls:#?}");
    assert_eq!(calls[0]["key_bound"], true);
    // The rewritten cache: new credentials and refresh token, every other field kept.
    let after = s.cache(ALICE);
    let key = after["accessToken"]["accessKeyId"].as_str().unwrap().to_string();
    assert_eq!(calls[0]["access_key_id"], key.as_str());
    assert_ne!(after["refreshToken"], before["refreshToken"]);
    for field in ["clientId", "idToken", "dpopKey", "tokenType"] {
        assert_eq!(after[field], before[field], "{field}");
    }
    assert_eq!(after["accessToken"]["accountId"], "111122223333");
    assert!(s.credentials().contains(&format!("aws_access_key_id = {key}")));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // botocore refreshes from the refresh token awscredd rotated.
    s.expire_cache(ALICE);
    let o = s.botocore();
    assert!(o.status.success(), "{}", show(&o));
    let boto_key = String::from_utf8_lossy(&o.stdout).trim().to_string();
    assert_ne!(boto_key, key);
    assert_eq!(s.cache(ALICE)["accessToken"]["accessKeyId"], boto_key.as_str());
    assert_eq!(s.fake.calls().len(), 2);
    // Fresh credentials botocore wrote are used as they are (no call) ...
    let o = s.run(&["once", "--force"]);
    assert!(o.status.success(), "{}", show(&o));
    assert_eq!(s.fake.calls().len(), 2);
    assert!(s.credentials().contains(&boto_key));
    // ... and the refresh token botocore rotated works for awscredd.
    s.expire_cache(ALICE);
    let o = s.run(&["once", "--force"]);
    assert!(o.status.success(), "{}", show(&o));
    let calls = s.fake.calls();
    assert_eq!((calls.len(), &calls[2]["status"]), (3, &Value::from(200)));
    let last = s.cache(ALICE);
    assert!(s
        .credentials()
        .contains(last["accessToken"]["accessKeyId"].as_str().unwrap()));
    // `credential-process` serves the same profile.
    let o = s.run(&["credential-process", "--profile", "console"]);
    assert!(o.status.success(), "{}", show(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["AccessKeyId"], last["accessToken"]["accessKeyId"]);
    assert!(v["Expiration"].is_string());
    let state = std::fs::read_to_string(s.sb.file("state/state.json")).unwrap();
    assert_no_secret(&state, &[&before, &after, &last]);
}
