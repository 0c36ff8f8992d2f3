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
            .args([
                "-c",
                "import hashlib, sys; print(hashlib.sha256(sys.argv[1].encode()).hexdigest())",
                arn,
            ])
            .output()
            .unwrap();
        self.cache_dir().join(format!(
            "{}.json",
            String::from_utf8_lossy(&out.stdout).trim()
        ))
    }

    /// A sign-in of `arn` as `aws login` leaves it (credentials expired unless `valid`).
    fn sign_in(&self, arn: &str, extra: &[&str]) -> PathBuf {
        let out = Command::new(venv_python())
            .arg(fakes_dir().join("signin.py"))
            .args([
                "write-cache",
                "--fake-url",
                &self.fake.url,
                "--arn",
                arn,
                "--cache-dir",
            ])
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
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                self.sb.file("no-credentials"),
            )
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
    let key = after["accessToken"]["accessKeyId"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(calls[0]["access_key_id"], key.as_str());
    assert_ne!(after["refreshToken"], before["refreshToken"]);
    for field in ["clientId", "idToken", "dpopKey", "tokenType"] {
        assert_eq!(after[field], before[field], "{field}");
    }
    assert_eq!(after["accessToken"]["accountId"], "111122223333");
    assert!(s
        .credentials()
        .contains(&format!("aws_access_key_id = {key}")));
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
    assert_eq!(
        s.cache(ALICE)["accessToken"]["accessKeyId"],
        boto_key.as_str()
    );
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

fn status_json(s: &Setup) -> Value {
    let o = s.run(&["status", "--json"]);
    serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("{}", show(&o)))
}

#[test]
fn an_ended_sign_in_waits_for_a_human_keeps_the_old_credentials_and_a_new_one_is_used() {
    let s = Setup::new("");
    s.sb.config(&format!(
        "[daemon]\nstate_dir = \"state\"\nlogin_command = [\"sh\", \"-c\", \"echo \\\"$AWSCREDD_PROFILE $AWSCREDD_LOGIN_SESSION\\\" >> {}\"]\n\
         [[output]]\npath = \"credentials\"\n[profile.console]\nlogin_session = \"{ALICE}\"\n",
        s.sb.file("told").display()
    ));
    s.sign_in(ALICE, &[]);
    let o = s.run(&["once"]);
    assert!(o.status.success(), "{}", show(&o));
    let written = s.credentials();
    let v = status_json(&s);
    assert_eq!(v["login_sessions"][0]["name"], ALICE, "{v}");
    assert_eq!(v["login_sessions"][0]["state"], "ok", "{v}");
    assert!(
        v["login_sessions"][0]["refreshable_until"].is_string(),
        "{v}"
    );
    // The service ends the sign-in (12 hours, or the user's password changed).
    s.fake.post(
        "/_fake/session-state",
        serde_json::json!({"arn": ALICE, "error": "TOKEN_EXPIRED"}),
    );
    s.expire_cache(ALICE);
    let cached = std::fs::read(s.cache_file(ALICE)).unwrap();
    let o = s.run(&["once", "--force"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("has ended") && err.contains("awscredd login --profile console"),
        "{err}"
    );
    assert_eq!(
        err.matches("`aws login` sign-in needed").count(),
        1,
        "{err}"
    );
    assert_eq!(
        std::fs::read(s.cache_file(ALICE)).unwrap(),
        cached,
        "the cache is left alone"
    );
    assert_eq!(s.credentials(), written, "the old credentials stay");
    let v = status_json(&s);
    assert_eq!(v["login_sessions"][0]["state"], "waiting_for_login", "{v}");
    assert_eq!(v["profiles"][0]["state"], "waiting_for_login", "{v}");
    // login_command ran, with the profile named.
    let started = Instant::now();
    while !s.sb.file("told").exists() && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        std::fs::read_to_string(s.sb.file("told")).unwrap().trim(),
        format!("console {ALICE}")
    );
    // Asked again: no call with the refused token, no second warning.
    let calls = s.fake.calls().len();
    let o = s.run(&["once", "--force"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert_eq!(
        s.fake.calls().len(),
        calls,
        "the ended sign-in is not tried again"
    );
    assert!(!String::from_utf8_lossy(&o.stderr).contains("sign-in needed"));
    // A new sign-in (`aws login`) is used.
    s.fake.post(
        "/_fake/session-state",
        serde_json::json!({"arn": ALICE, "error": null}),
    );
    s.sign_in(ALICE, &[]);
    let o = s.run(&["once", "--force"]);
    assert!(o.status.success(), "{}", show(&o));
    assert_ne!(s.credentials(), written);
    assert_eq!(status_json(&s)["login_sessions"][0]["state"], "ok");
}

#[test]
fn login_profile_signs_in_remotely_and_refuses_another_identity() {
    let s = Setup::new("[profile.other]\nlogin_session = \"arn:aws:iam::111122223333:user/bob\"\n");
    // The fake's browser sign-in signs in as alice.
    s.fake
        .post("/_fake/identity", serde_json::json!({"arn": ALICE}));
    for (profile, arn, ok) in [("other", BOB, false), ("console", ALICE, true)] {
        let mut child = s
            .command()
            .args(["login", "--profile", profile])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut url = String::new();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(20) {
            let mut line = String::new();
            if out.read_line(&mut line).unwrap() == 0 {
                break;
            }
            if let Some(u) = line.trim().strip_prefix("http") {
                url = format!("http{u}");
                break;
            }
        }
        let query = url.split_once('?').expect("the authorize URL").1;
        let code = s.fake.get(&format!("/_fake/code?{query}"))["verification_code"]
            .as_str()
            .unwrap()
            .to_string();
        use std::io::Write as _;
        writeln!(child.stdin.take().unwrap(), "{code}").unwrap();
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.success(), ok, "{profile}: {rest}\n{err}");
        if ok {
            assert!(rest.contains(&format!("signed in as {arn}")), "{rest}");
            let c = s.cache(arn);
            assert_eq!(c["clientId"], "arn:aws:signin:::devtools/cross-device");
            assert_eq!(c["accessToken"]["accountId"], "111122223333");
            assert_eq!(c["tokenType"], "aws_sigv4");
            assert!(c["dpopKey"]
                .as_str()
                .unwrap()
                .starts_with("-----BEGIN EC PRIVATE KEY-----\n"));
            assert_no_secret(&format!("{rest}{err}"), &[&c]);
        } else {
            assert!(
                err.contains(&format!("is of {ALICE}, not of {BOB}")),
                "{err}"
            );
            assert!(!s.cache_file(BOB).exists(), "nothing written");
            assert!(!s.cache_file(ALICE).exists(), "nothing written");
        }
    }
    // The sign-in it stored is refreshed like `aws login`'s (and botocore reads it).
    s.expire_cache(ALICE);
    let o = s.run(&["once", "--profile", "console"]);
    assert!(o.status.success(), "{}", show(&o));
    s.expire_cache(ALICE);
    let o = s.botocore();
    assert!(o.status.success(), "{}", show(&o));
}

#[test]
fn bad_caches_and_bad_answers_are_clear_errors_and_nothing_is_lost() {
    let s = Setup::new("");
    let file = s.sign_in(ALICE, &[]);
    s.expire_cache(ALICE);
    let good = std::fs::read(&file).unwrap();
    let cache: Value = serde_json::from_slice(&good).unwrap();
    let mut logs = String::new();
    let mut rsa = cache.clone();
    rsa["dpopKey"] = Value::from(
        "-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAKj3\n-----END RSA PRIVATE KEY-----\n",
    );
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (good[..good.len() / 2].to_vec(), "cut short"),
        (
            rsa.to_string().into_bytes(),
            "`RSA PRIVATE KEY`, not the P-256 EC private key",
        ),
    ];
    for (bytes, why) in cases {
        std::fs::write(&file, &bytes).unwrap();
        let o = s.run(&["once"]);
        logs.push_str(&String::from_utf8_lossy(&o.stderr));
        assert_eq!(o.status.code(), Some(1), "{why}: {}", show(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(why), "{why}: {err}");
        assert_eq!(
            std::fs::read(&file).unwrap(),
            bytes,
            "{why}: the cache is left alone"
        );
    }
    assert_eq!(
        s.fake.calls().len(),
        0,
        "no call for a cache that cannot be used"
    );
    // Answers that are 2 MB or not JSON: an error, the cache (and its refresh token) kept.
    for (fault, why) in [("huge", "limit"), ("not_json", "CreateOAuth2Token failed")] {
        std::fs::write(&file, &good).unwrap();
        s.fake.post("/_fake/faults", serde_json::json!({"clear": true, "next": [{"body": fault}, {"body": fault}, {"body": fault}]}));
        let o = s.run(&["once"]);
        logs.push_str(&String::from_utf8_lossy(&o.stderr));
        assert_eq!(o.status.code(), Some(1), "{fault}: {}", show(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(why), "{fault}: {err}");
        assert_eq!(
            std::fs::read(&file).unwrap(),
            good,
            "{fault}: the cache is left alone"
        );
    }
    s.fake
        .post("/_fake/faults", serde_json::json!({"clear": true}));
    // A fresh proof per attempt: a 500 then success is two proofs with two jti.
    s.fake.post(
        "/_fake/faults",
        serde_json::json!({"next": [{"status": 500}]}),
    );
    let before = s.fake.calls().len();
    let o = s.run(&["once"]);
    logs.push_str(&String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "{}", show(&o));
    let calls = s.fake.calls();
    let jtis: Vec<&Value> = calls[before..].iter().map(|c| &c["jti"]).collect();
    assert_eq!(jtis.len(), 2, "{calls:#?}");
    assert_ne!(jtis[0], jtis[1]);
    // An idToken that says the sign-in began 13 hours ago: the service, not awscredd, says
    // whether it has ended (as botocore and the AWS SDKs let it; a host clock ahead of the
    // service's must not end sign-ins early). This one takes its refresh token.
    let mut started_long_ago = s.cache(ALICE);
    let iat = time::OffsetDateTime::now_utc().unix_timestamp() - 13 * 3600;
    let claims =
        base64_url(&serde_json::json!({"sub": ALICE, "iat": iat, "exp": iat + 900}).to_string());
    started_long_ago["idToken"] = Value::from(format!("eyJhbGciOiJFUzM4NCJ9.{claims}.c2ln"));
    started_long_ago["accessToken"]["expiresAt"] = Value::from("2020-01-01T00:00:00Z");
    std::fs::write(&file, started_long_ago.to_string()).unwrap();
    let before = s.fake.calls().len();
    let o = s.run(&["once", "--force"]);
    logs.push_str(&String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "{}", show(&o));
    assert_eq!(s.fake.calls().len(), before + 1, "the service was asked");
    assert_eq!(s.cache(ALICE)["idToken"], started_long_ago["idToken"]);
    assert_no_secret(&logs, &[&cache, &started_long_ago, &s.cache(ALICE)]);
}

fn base64_url(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

/// Waits up to `limit` for `cond`.
fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    cond()
}

#[cfg(unix)]
#[test]
fn the_daemon_tells_an_ended_sign_in_once_and_picks_up_a_new_one_without_restart() {
    use crate::server::{free_port, get};
    use crate::util::Guard;
    let port = free_port();
    // Credentials of a minute: the profile falls due within the test once a new sign-in is
    // there (as credentials of an ended sign-in do in life).
    let s = Setup::with_fake(FakeSignin::start(&["--access-token-seconds", "60"]), "");
    let config = std::fs::read_to_string(s.sb.file("config.toml")).unwrap();
    s.sb.config(&format!(
        "{config}[metrics]\nlisten = \"127.0.0.1:{port}\"\n"
    ));
    s.sign_in(ALICE, &[]);
    let log = s.sb.file("daemon.log");
    let d = Guard(
        s.command()
            .arg("run")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let readyz = || get(port, "/readyz", None);
    assert!(
        eventually(Duration::from_secs(20), || readyz()
            .is_some_and(|r| r.0 == 200)),
        "{}",
        read_log()
    );
    // The sign-in's end is a metric, as `status` tells it.
    let (_, metrics) = get(port, "/metrics", None).unwrap();
    let end = crate::metrics::LOGIN_METRICS[0];
    let series = format!("{end}{{login_session=\"{ALICE}\"}} ");
    let value: i64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix(&series))
        .unwrap_or_else(|| panic!("no {series}in {metrics}"))
        .parse()
        .unwrap();
    let status: serde_json::Value =
        serde_json::from_slice(&s.run(&["status", "--json"]).stdout).unwrap();
    let until = status["login_sessions"][0]["refreshable_until"]
        .as_str()
        .unwrap()
        .to_string();
    let until = time::OffsetDateTime::parse(&until, &time::format_description::well_known::Rfc3339)
        .unwrap();
    assert_eq!(value, until.unix_timestamp(), "{metrics}");
    // The sign-in ends; the next refresh (SIGUSR1) is refused.
    s.fake.post(
        "/_fake/session-state",
        serde_json::json!({"arn": ALICE, "error": "TOKEN_EXPIRED"}),
    );
    s.expire_cache(ALICE);
    let usr1 = || {
        let _ = Command::new("kill")
            .args(["-USR1", &d.0.id().to_string()])
            .status();
    };
    usr1();
    assert!(
        eventually(Duration::from_secs(20), || readyz().is_some_and(
            |(status, body)| {
                status == 503 && body.contains("\"console\":\"waiting_for_login\"")
            }
        )),
        "{:?}\n{}\n{}\n{}",
        readyz(),
        read_log(),
        show(&s.run(&["status", "--json"])),
        std::fs::read_to_string(s.sb.file("state/state.json")).unwrap_or_default()
    );
    let (_, metrics) = get(port, "/metrics", None).unwrap();
    assert!(
        metrics
            .contains("awscredd_profile_state{profile=\"console\",state=\"waiting_for_login\"} 1"),
        "{metrics}"
    );
    // Asked again: told once, and the ended sign-in is not tried again.
    let calls = s.fake.calls().len();
    usr1();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(s.fake.calls().len(), calls);
    assert_eq!(
        read_log().matches("`aws login` sign-in needed").count(),
        1,
        "{}",
        read_log()
    );
    // A new sign-in appears in the cache (`aws login`): used within a poll, no restart.
    s.fake.post(
        "/_fake/session-state",
        serde_json::json!({"arn": ALICE, "error": null}),
    );
    s.sign_in(ALICE, &[]);
    assert!(
        eventually(Duration::from_secs(75), || readyz()
            .is_some_and(|r| r.0 == 200)),
        "{:?}\n{}",
        readyz(),
        read_log()
    );
    assert_no_secret(&read_log(), &[&s.cache(ALICE)]);
    drop(d);
}

#[test]
fn a_role_chained_from_an_aws_login_profile_uses_its_credentials_capped_at_one_hour() {
    let sts = crate::fake_aws::FakeAws::start();
    let s = Setup::new(
        "[profile.deploy]\nsource_profile = \"console\"\n\
         role_arn = \"arn:aws:iam::444455556666:role/Deploy\"\nduration_seconds = 7200\n",
    );
    s.sign_in(ALICE, &[]);
    let o = s
        .command()
        .env("AWS_ENDPOINT_URL_STS", &sts.url)
        .args(["once", "--profile", "deploy"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("role chaining"), "{err}");
    let login = s.cache(ALICE);
    let reqs = sts.sts_requests();
    assert_eq!(reqs.len(), 1, "{reqs:#?}");
    let r = &reqs[0];
    assert_eq!(
        r.access_key_id.as_deref(),
        login["accessToken"]["accessKeyId"].as_str(),
        "signed with the aws login credentials"
    );
    assert_eq!(
        r.params.get("DurationSeconds").map(String::as_str),
        Some("3600")
    );
    assert!(s.credentials().contains("[deploy]"), "{}", s.credentials());
    assert_no_secret(&err, &[&login]);
}

/// Found by the third adversarial pass: `aws login` (which does not take awscredd's lock) wrote
/// a new sign-in while awscredd's refresh of the old one was on the wire, and awscredd's write
/// replaced it with the old sign-in renewed: the newer refresh token and DPoP key were lost,
/// so the user's fresh 12 hours became the old sign-in's remainder.
#[test]
fn a_sign_in_written_by_the_cli_during_a_refresh_is_not_overwritten() {
    let s = Setup::new("");
    let file = s.sign_in(ALICE, &[]);
    // The token call takes 2 s: time for `aws login` to write a new sign-in meanwhile.
    s.fake.post(
        "/_fake/faults",
        serde_json::json!({"next": [{"delay_ms": 2000}]}),
    );
    let once = s
        .command()
        .arg("once")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let old = s.cache(ALICE);
    std::thread::sleep(Duration::from_millis(500));
    s.sign_in(ALICE, &["--valid"]);
    let newer = s.cache(ALICE);
    assert_ne!(newer["refreshToken"], old["refreshToken"]);
    assert!(
        started.elapsed() < Duration::from_millis(1800),
        "the new sign-in was written after the refresh ended: the test proves nothing"
    );
    let o = once.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", show(&o));
    let after: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    for field in ["refreshToken", "dpopKey", "idToken"] {
        assert_eq!(
            after[field], newer[field],
            "{field}: the newer sign-in was lost"
        );
    }
    assert_eq!(after["accessToken"], newer["accessToken"]);
    let calls = s.fake.calls();
    assert_eq!(calls.len(), 1, "{calls:#?}");
    // The renewal awscredd got is still served (the old sign-in's credentials are valid).
    let key = calls[0]["access_key_id"].as_str().unwrap();
    assert!(s.credentials().contains(key), "{}", s.credentials());
}

/// Found by the third adversarial pass: a root daemon whose `aws login` cache folder belongs
/// to a user followed a link that user planted there to another user's sign-in, and wrote
/// that user's credentials into the output (or renewed with, and so used up, their refresh
/// token). The cache is read as outputs are written: such a link is not followed.
#[cfg(unix)]
#[test]
fn root_does_not_read_another_user_s_sign_in_through_a_planted_link() {
    use std::os::unix::fs::PermissionsExt;
    if !crate::util::require_root() {
        return;
    }
    const APP_UID: u32 = 4242;
    let s = Setup::new("");
    // Bob's sign-in, fresh, in a folder of root's (as another user's home would be).
    let bobs = s.sign_in(BOB, &["--valid"]);
    let private = s.sb.file("bob");
    std::fs::create_dir(&private).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    let victim = private.join("bob.json");
    std::fs::rename(&bobs, &victim).unwrap();
    let bob_key = serde_json::from_slice::<Value>(&std::fs::read(&victim).unwrap()).unwrap()
        ["accessToken"]["accessKeyId"]
        .as_str()
        .unwrap()
        .to_string();
    let before = std::fs::read(&victim).unwrap();
    // The cache folder is the app user's, who plants a link named as Alice's sign-in.
    let dir = s.cache_dir();
    std::os::unix::fs::chown(&dir, Some(APP_UID), Some(APP_UID)).unwrap();
    let link = s.cache_file(ALICE);
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    std::os::unix::fs::lchown(&link, Some(APP_UID), Some(APP_UID)).unwrap();
    let o = s.run(&["once"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("refusing to follow the symbolic link"),
        "{err}"
    );
    assert!(!s.credentials().contains(&bob_key), "{}", s.credentials());
    assert!(s.fake.calls().is_empty(), "{:#?}", s.fake.calls());
    assert_eq!(std::fs::read(&victim).unwrap(), before);
}
