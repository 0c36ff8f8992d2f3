//! STS sources end to end: the real binary against moto's STS (AssumeRole from static keys,
//! from a `credential_process` and from another role, GetSessionToken, web identity, and a
//! three-link chain SSO -> role A -> role B, checked with botocore's `get_caller_identity`) and
//! against the fake STS for what moto cannot do: SigV4 keys and signing regions, retried
//! throttling and 5xx, refusals, slow and malformed answers, the role-chaining one-hour cap,
//! `mfa_command`, the web identity token re-read on every refresh, and `--profile`.

use crate::fake_aws::{
    FakeAws, Fault, StsRequest, STS_ASSUME_ROLE, STS_SESSION_TOKEN, STS_WEB_IDENTITY, STS_XMLNS,
};
use crate::util::{show, Guard, Sandbox};
use awscredd::credentials::{Credentials, Secret};
use awscredd::profile_file::ProfileFile;
use awscredd::sources::sso::cache::{CachedToken, TokenCache};
use awscredd::store::credentials_in;
use serde_json::Value;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// No single `once` (or botocore run) may take longer than this.
const LIMIT: Duration = Duration::from_secs(60);

const ACCOUNT: &str = "444455556666";
const SSO_ACCOUNT: &str = "111122223333";
const SSO_ROLE: &str = "Developer";
const START_URL: &str = "https://x.awsapps.com/start";

/// Long-term keys of the unmanaged source profile `[base]` in `HOME/.aws/credentials`.
const BASE_KEY: &str = "AKIAFAKEBASE00000001";
const BASE_SECRET: &str = "base/secret+key=0000000000000000000000";

fn role(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:role/{name}")
}

// --- running awscredd --------------------------------------------------------------------

static RUNS: AtomicUsize = AtomicUsize::new(0);

/// Runs `cmd` to the end, at most [`LIMIT`], its output in files (a chatty log never blocks on
/// a full pipe); killed and reported if it hangs.
fn run(sb: &Sandbox, mut cmd: Command) -> Output {
    let n = RUNS.fetch_add(1, Ordering::Relaxed);
    let (out, err) = (
        sb.file(&format!("run-{n}.stdout")),
        sb.file(&format!("run-{n}.stderr")),
    );
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(File::create(&out).unwrap())
        .stderr(File::create(&err).unwrap())
        .spawn()
        .expect("start the program");
    let deadline = Instant::now() + LIMIT;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let output = Output {
        status: status.unwrap_or_else(|| child.wait().unwrap()),
        stdout: fs::read(&out).unwrap_or_default(),
        stderr: fs::read(&err).unwrap_or_default(),
    };
    assert!(
        status.is_some(),
        "did not finish within {LIMIT:?} (killed):\n{}",
        show(&output)
    );
    output
}

/// `awscredd --config HOME/config.toml ARGS` with STS (and, when given, SSO) on `sts` / `sso`.
fn awscredd(sb: &Sandbox, sts: &str, sso: Option<&str>, args: &[&str]) -> Command {
    let mut c = sb.command();
    c.arg("--config")
        .arg(sb.file("config.toml"))
        .args(args)
        .env("AWS_ENDPOINT_URL_STS", sts);
    if let Some(u) = sso {
        c.env("AWS_ENDPOINT_URL_SSO", u)
            .env("AWS_ENDPOINT_URL_SSO_OIDC", u);
    }
    c
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Writes `HOME/config.toml`: state in `HOME/state`, every profile into `HOME/credentials`.
fn config(sb: &Sandbox, body: &str) {
    sb.config(&format!(
        "[daemon]\nstate_dir = \"state\"\n\n[[output]]\npath = \"credentials\"\n\n{body}"
    ));
}

/// `[base]` with long-term keys in `HOME/.aws/credentials`, where the SDKs (and awscredd, for
/// an unmanaged `source_profile`) read them; returns the file's text.
fn base_keys(sb: &Sandbox) -> String {
    let text = format!(
        "# long-term keys, not managed by awscredd\n[base]\naws_access_key_id = {BASE_KEY}\n\
         aws_secret_access_key = {BASE_SECRET}\n"
    );
    fs::create_dir_all(sb.file(".aws")).unwrap();
    fs::write(sb.file(".aws/credentials"), &text).unwrap();
    text
}

/// The credentials of every profile in `HOME/credentials`.
fn written(sb: &Sandbox) -> BTreeMap<String, Credentials> {
    let text = fs::read_to_string(sb.file("credentials")).unwrap_or_default();
    credentials_in(&ProfileFile::parse(&text).unwrap())
}

fn creds<'a>(all: &'a BTreeMap<String, Credentials>, name: &str) -> &'a Credentials {
    all.get(name)
        .unwrap_or_else(|| panic!("no [{name}] in the credentials file: {all:?}"))
}

fn token(c: &Credentials) -> Option<&str> {
    c.session_token.as_ref().map(|t| t.expose())
}

/// An executable script `HOME/name` with this body.
fn script(sb: &Sandbox, name: &str, body: &str) -> PathBuf {
    let p = sb.file(name);
    fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    }
    p
}

/// A usable SSO token for session `corp` in the AWS CLI v2 cache, issued by `fake`.
fn sso_signed_in(sb: &Sandbox, fake: &FakeAws) {
    let (client_id, client_secret, access, refresh) = fake.issue_token(8 * 3600);
    let now = OffsetDateTime::now_utc();
    TokenCache {
        dir: sb.file(".aws/sso/cache"),
    }
    .store(
        "corp",
        &CachedToken {
            start_url: Some(START_URL.into()),
            region: Some("us-east-1".into()),
            access_token: Secret::new(access),
            expires_at: now + time::Duration::hours(7),
            client_id: Some(client_id),
            client_secret: Some(Secret::new(client_secret)),
            registration_expires_at: Some(now + time::Duration::days(80)),
            refresh_token: Some(Secret::new(refresh)),
        },
    )
    .unwrap();
}

/// `[sso_session.corp]` in `region` and the SSO profile `[profile.NAME]` (no region).
fn sso_profile(name: &str, region: &str) -> String {
    format!(
        "[sso_session.corp]\nsso_start_url = \"{START_URL}\"\nsso_region = \"{region}\"\n\n\
         [profile.{name}]\nsso_session = \"corp\"\nsso_account_id = \"{SSO_ACCOUNT}\"\n\
         sso_role_name = \"{SSO_ROLE}\"\n\n"
    )
}

/// The fake's requests for the role named `name` (AssumeRole and web identity).
fn for_role(all: &[StsRequest], name: &str) -> Vec<StsRequest> {
    all.iter()
        .filter(|r| r.param("RoleArn") == Some(role(name).as_str()))
        .cloned()
        .collect()
}

/// The one request for role `name`.
fn one(all: &[StsRequest], name: &str) -> StsRequest {
    let mut v = for_role(all, name);
    assert_eq!(v.len(), 1, "one request for role {name}: {all:#?}");
    v.remove(0)
}

fn count(all: &[StsRequest], action: &str) -> usize {
    all.iter().filter(|r| r.action == action).count()
}

/// Seconds from now until `c` expires.
fn lifetime(c: &Credentials) -> i64 {
    (c.expiration.expect("an expiry") - OffsetDateTime::now_utc()).whole_seconds()
}

// --- moto --------------------------------------------------------------------------------

/// A Python that can import moto and botocore, and the PYTHONPATH they are in. `python3` may
/// be a pyenv shim that needs the real HOME, so it is asked once with the inherited
/// environment; the interpreter it names is then run with a clean one.
struct Python {
    exe: PathBuf,
    path: OsString,
}

fn find_python() -> Option<Python> {
    let out = Command::new(crate::util::python3())
        .args([
            "-c",
            "import os, sys, moto, botocore, moto.moto_server.threaded_moto_server\n\
             print(sys.executable)\n\
             print(os.pathsep.join(sorted({os.path.dirname(os.path.dirname(os.path.abspath(m.__file__))) for m in (moto, botocore)})))",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let mut lines = text.lines();
    Some(Python {
        exe: PathBuf::from(lines.next()?),
        path: OsString::from(lines.next()?),
    })
}

impl Python {
    /// The interpreter with a clean environment (no AWS variables, a throwaway HOME).
    fn command(&self, home: &Path) -> Command {
        let mut c = Command::new(&self.exe);
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home)
            .env("PYTHONPATH", &self.path)
            .env("AWS_EC2_METADATA_DISABLED", "true");
        c
    }
}

/// moto's server on a free port of 127.0.0.1. Killed (by its PID) when dropped; it also exits
/// by itself when its stdin closes, so even a test process that dies leaves nothing behind.
struct Moto {
    url: String,
    python: Python,
    _child: Guard,
    _lifeline: ChildStdin,
    home: tempfile::TempDir,
}

const MOTO_SERVER: &str = "\
import os, sys
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address='127.0.0.1', port=0, verbose=False)
server.start()
print('http://%s:%d' % server.get_host_and_port(), flush=True)
sys.stdin.read()
os._exit(0)
";

impl Moto {
    fn start(python: Python) -> Moto {
        let home = tempfile::tempdir().unwrap();
        let log = File::create(home.path().join("moto.log")).unwrap();
        let mut child = python
            .command(home.path())
            .args(["-c", MOTO_SERVER])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start moto");
        let lifeline = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let mut moto = Moto {
            url: String::new(),
            python,
            _child: Guard(child),
            _lifeline: lifeline,
            home,
        };
        let log = |m: &Moto| fs::read_to_string(m.home.path().join("moto.log")).unwrap_or_default();
        let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
        let url = line.trim();
        assert!(
            url.starts_with("http://127.0.0.1:"),
            "moto did not start within 30 s: {}",
            log(&moto)
        );
        moto.url = url.to_string();
        // Bounded: it answers HTTP before any test uses it.
        let addr = url.trim_start_matches("http://").to_string();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if std::net::TcpStream::connect(&addr).is_ok() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "moto does not accept connections: {}",
                log(&moto)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        moto
    }

    /// `sts.get_caller_identity()["Arn"]` for each profile of `HOME/credentials`, through
    /// botocore with moto as the STS endpoint.
    fn caller_arns(&self, sb: &Sandbox, profiles: &[&str]) -> Value {
        let code = r#"
import json, sys
import botocore.session

out = {}
for name in sys.argv[2:]:
    s = botocore.session.Session(profile=name)
    sts = s.create_client("sts", region_name="us-east-1", endpoint_url=sys.argv[1])
    out[name] = sts.get_caller_identity()["Arn"]
print(json.dumps(out))
"#;
        let mut c = self.python.command(sb.path());
        c.env("AWS_SHARED_CREDENTIALS_FILE", sb.file("credentials"))
            .env("AWS_CONFIG_FILE", sb.file("no-such-config"))
            .arg("-c")
            .arg(code)
            .arg(&self.url)
            .args(profiles);
        let out = run(sb, c);
        assert!(out.status.success(), "botocore failed: {}", show(&out));
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("botocore printed no JSON ({e}): {}", show(&out)))
    }
}

/// The moto server the tests running now share; started by the first, stopped when the last
/// one is done. `None` (after a note) when moto is not installed and `CI` is not set.
fn moto(test: &str) -> Option<Arc<Moto>> {
    static SHARED: Mutex<Weak<Moto>> = Mutex::new(Weak::new());
    let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(m) = shared.upgrade() {
        return Some(m);
    }
    let Some(python) = find_python() else {
        if std::env::var_os("CI").is_some() {
            panic!(
                "{test} needs moto's server and botocore, and CI is set: \
                 `pip install -r tests/requirements.txt` (python3 cannot import moto)"
            );
        }
        println!(
            "SKIPPED sts::{test}: python3 cannot import moto's server and botocore \
             (pip install -r tests/requirements.txt to run it)"
        );
        return None;
    };
    let m = Arc::new(Moto::start(python));
    *shared = Arc::downgrade(&m);
    Some(m)
}

// --- against moto ------------------------------------------------------------------------

#[test]
fn moto_static_keys_session_token_and_web_identity() {
    let Some(moto) = moto("moto_static_keys_session_token_and_web_identity") else {
        return;
    };
    let sb = Sandbox::new();
    let keys = base_keys(&sb);
    fs::write(
        sb.file("pod-token"),
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6YXBwIn0.c2lnbmF0dXJl\n",
    )
    .unwrap();
    config(
        &sb,
        &format!(
            "[profile.reader]\nsource_profile = \"base\"\nrole_arn = \"{}\"\n\
             external_id = \"reader-ext-1\"\nduration_seconds = 1800\n\n\
             [profile.batch]\nsource_profile = \"base\"\nget_session_token = true\n\
             duration_seconds = 900\n\n\
             [profile.pod]\nrole_arn = \"{}\"\nweb_identity_token_file = \"pod-token\"\n",
            role("Reader"),
            role("Pod")
        ),
    );
    let o = run(&sb, awscredd(&sb, &moto.url, None, &["once"]));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));

    let all = written(&sb);
    for name in ["reader", "batch", "pod"] {
        let c = creds(&all, name);
        assert!(token(c).is_some_and(|t| !t.is_empty()), "[{name}]: {c:?}");
    }
    // duration_seconds reached STS: moto's expiry is now + DurationSeconds.
    let reader = lifetime(creds(&all, "reader"));
    assert!((1700..=1800).contains(&reader), "reader lives {reader} s");
    let batch = lifetime(creds(&all, "batch"));
    assert!((800..=900).contains(&batch), "batch lives {batch} s");
    assert!(creds(&all, "reader").access_key_id.starts_with("ASIA"));
    assert_eq!(
        fs::read_to_string(sb.file(".aws/credentials")).unwrap(),
        keys,
        "the source keys are left alone"
    );

    let arns = moto.caller_arns(&sb, &["reader", "batch", "pod"]);
    assert_eq!(
        arns["reader"],
        format!("arn:aws:sts::{ACCOUNT}:assumed-role/Reader/awscredd-reader"),
        "{arns:#}"
    );
    assert_eq!(
        arns["pod"],
        format!("arn:aws:sts::{ACCOUNT}:assumed-role/Pod/awscredd-pod"),
        "{arns:#}"
    );
    // GetSessionToken credentials act as the IAM user itself.
    assert!(
        arns["batch"].as_str().unwrap().contains(":user/"),
        "{arns:#}"
    );
}

#[test]
fn moto_roles_from_a_credential_process_and_from_a_role() {
    let Some(moto) = moto("moto_roles_from_a_credential_process_and_from_a_role") else {
        return;
    };
    let sb = Sandbox::new();
    base_keys(&sb);
    let proc = sb.process_script("proc.sh", "ASIAPROCMOTO00000001", Some(3600));
    config(
        &sb,
        &format!(
            "[profile.proc]\ncredential_process = \"{}\"\n\n\
             [profile.from-proc]\nsource_profile = \"proc\"\nrole_arn = \"{}\"\n\n\
             [profile.first]\nsource_profile = \"base\"\nrole_arn = \"{}\"\n\n\
             [profile.second]\nsource_profile = \"first\"\nrole_arn = \"{}\"\n\
             role_session_name = \"second-hop\"\n",
            proc.display(),
            role("FromProcess"),
            role("First"),
            role("Second")
        ),
    );
    let o = run(&sb, awscredd(&sb, &moto.url, None, &["once"]));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let all = written(&sb);
    assert_eq!(creds(&all, "proc").access_key_id, "ASIAPROCMOTO00000001");
    let arns = moto.caller_arns(&sb, &["proc", "from-proc", "first", "second"]);
    // moto takes the process's made-up keys like any IAM user's.
    assert!(arns["proc"].is_string(), "{arns:#}");
    assert_eq!(
        arns,
        serde_json::json!({
            "proc": arns["proc"],
            "from-proc": format!("arn:aws:sts::{ACCOUNT}:assumed-role/FromProcess/awscredd-from-proc"),
            "first": format!("arn:aws:sts::{ACCOUNT}:assumed-role/First/awscredd-first"),
            "second": format!("arn:aws:sts::{ACCOUNT}:assumed-role/Second/second-hop"),
        })
    );
}

#[test]
fn moto_sso_then_role_a_then_role_b() {
    let Some(moto) = moto("moto_sso_then_role_a_then_role_b") else {
        return;
    };
    let sb = Sandbox::new();
    let fake = FakeAws::start();
    sso_signed_in(&sb, &fake);
    config(
        &sb,
        &format!(
            "{}[profile.a]\nsource_profile = \"sso\"\nrole_arn = \"{}\"\n\n\
             [profile.b]\nsource_profile = \"a\"\nrole_arn = \"{}\"\n",
            sso_profile("sso", "us-east-1"),
            role("A"),
            role("B")
        ),
    );
    let o = run(&sb, awscredd(&sb, &moto.url, Some(&fake.url), &["once"]));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(
        fake.role_requests(),
        vec![(SSO_ACCOUNT.to_string(), SSO_ROLE.to_string())]
    );
    assert!(
        fake.sts_requests().is_empty(),
        "STS went to moto, not to the fake"
    );
    let all = written(&sb);
    assert!(creds(&all, "sso").access_key_id.starts_with("ASIAFAKE"));
    let arns = moto.caller_arns(&sb, &["sso", "a", "b"]);
    assert_eq!(
        arns["a"],
        format!("arn:aws:sts::{ACCOUNT}:assumed-role/A/awscredd-a"),
        "{arns:#}"
    );
    assert_eq!(
        arns["b"],
        format!("arn:aws:sts::{ACCOUNT}:assumed-role/B/awscredd-b"),
        "{arns:#}"
    );
    // moto does not know the SSO keys, but takes them like any IAM user's.
    assert!(arns["sso"].is_string(), "{arns:#}");
}

// --- against the fake STS ----------------------------------------------------------------

/// A fake that knows `[base]`'s keys, and a sandbox with them.
fn fake_with_base() -> (Sandbox, FakeAws) {
    let sb = Sandbox::new();
    base_keys(&sb);
    let fake = FakeAws::start();
    fake.add_sts_key(BASE_KEY, BASE_SECRET);
    (sb, fake)
}

#[test]
fn fake_sigv4_key_chain_and_signing_regions() {
    let (sb, fake) = fake_with_base();
    fs::write(sb.file("token"), "eyJ.web-identity-1.sig\n").unwrap();
    config(
        &sb,
        &format!(
            "[profile.a]\nsource_profile = \"base\"\nrole_arn = \"{}\"\nregion = \"eu-west-2\"\n\
             external_id = \"ext-a\"\nduration_seconds = 1800\n\n\
             [profile.b]\nsource_profile = \"a\"\nrole_arn = \"{}\"\nregion = \"ap-south-1\"\n\
             role_session_name = \"b@team\"\n\n\
             [profile.w]\nrole_arn = \"{}\"\nweb_identity_token_file = \"token\"\n\
             region = \"ca-central-1\"\n\n\
             [profile.s]\nsource_profile = \"base\"\nget_session_token = true\n",
            role("A"),
            role("B"),
            role("W")
        ),
    );
    let o = run(&sb, awscredd(&sb, &fake.url, None, &["once"]));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let reqs = fake.sts_requests();
    assert_eq!(reqs.len(), 4, "{reqs:#?}");
    let all = written(&sb);

    let a = one(&reqs, "A");
    assert_eq!(a.access_key_id.as_deref(), Some(BASE_KEY), "{a:#?}");
    assert_eq!(a.security_token, None, "{a:#?}");
    assert_eq!(a.signature_valid, Some(true), "{a:#?}");
    assert_eq!(a.region.as_deref(), Some("eu-west-2"));
    assert_eq!(a.service.as_deref(), Some("sts"));
    assert_eq!(a.param("Version"), Some("2011-06-15"));
    assert_eq!(a.param("RoleSessionName"), Some("awscredd-a"));
    assert_eq!(a.param("ExternalId"), Some("ext-a"));
    assert_eq!(a.param("DurationSeconds"), Some("1800"));
    assert_eq!(
        a.issued.as_deref(),
        Some(creds(&all, "a").access_key_id.as_str())
    );

    // Role B is signed with role A's fresh key and session token.
    let b = one(&reqs, "B");
    assert_eq!(b.access_key_id, a.issued, "{b:#?}");
    assert_eq!(b.security_token.as_deref(), token(creds(&all, "a")));
    assert_eq!(b.signature_valid, Some(true), "{b:#?}");
    assert_eq!(b.region.as_deref(), Some("ap-south-1"));
    assert_eq!(b.service.as_deref(), Some("sts"));
    assert_eq!(b.param("RoleSessionName"), Some("b@team"));
    assert_eq!(b.param("ExternalId"), None);
    assert_eq!(b.param("DurationSeconds"), None);
    assert_eq!(
        b.issued.as_deref(),
        Some(creds(&all, "b").access_key_id.as_str())
    );

    // Web identity is not signed.
    let w = one(&reqs, "W");
    assert_eq!(w.action, STS_WEB_IDENTITY);
    assert_eq!(
        (w.access_key_id.as_deref(), w.region.as_deref()),
        (None, None),
        "{w:#?}"
    );
    assert_eq!(w.param("WebIdentityToken"), Some("eyJ.web-identity-1.sig"));
    assert_eq!(w.param("RoleSessionName"), Some("awscredd-w"));

    let s: Vec<&StsRequest> = reqs
        .iter()
        .filter(|r| r.action == STS_SESSION_TOKEN)
        .collect();
    assert_eq!(s.len(), 1, "{reqs:#?}");
    assert_eq!(s[0].access_key_id.as_deref(), Some(BASE_KEY));
    assert_eq!(s[0].signature_valid, Some(true));
    assert_eq!(s[0].region.as_deref(), Some("us-east-1"), "the default");
    assert_eq!(s[0].param("SerialNumber"), None);
    assert_eq!(
        s[0].issued.as_deref(),
        Some(creds(&all, "s").access_key_id.as_str())
    );

    // No secret in the log.
    let err = stderr(&o);
    for secret in [BASE_SECRET, "fake-sts-secret-", "fake-sts-session-token-"] {
        assert!(!err.contains(secret), "a secret in the log: {err}");
    }
}

#[test]
fn fake_signing_region_from_env_then_sso_root() {
    let (sb, fake) = fake_with_base();
    sso_signed_in(&sb, &fake);
    config(
        &sb,
        &format!(
            "{}[profile.r]\nsource_profile = \"dev\"\nrole_arn = \"{}\"\n\n\
             [profile.x]\nsource_profile = \"base\"\nrole_arn = \"{}\"\n",
            sso_profile("dev", "ap-northeast-1"),
            role("R"),
            role("X")
        ),
    );
    let regions = |from: usize| -> (Option<String>, Option<String>) {
        let reqs: Vec<StsRequest> = fake.sts_requests().split_off(from);
        (one(&reqs, "R").region, one(&reqs, "X").region)
    };
    let s = |v: &str| Some(v.to_string());

    let mut c = awscredd(&sb, &fake.url, Some(&fake.url), &["once"]);
    c.env("AWS_REGION", "eu-north-1")
        .env("AWS_DEFAULT_REGION", "eu-south-1");
    let o = run(&sb, c);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(regions(0), (s("eu-north-1"), s("eu-north-1")));
    // R is signed with the SSO role credentials.
    let r = one(&fake.sts_requests(), "R");
    assert_eq!(
        r.access_key_id.as_deref(),
        Some(creds(&written(&sb), "dev").access_key_id.as_str())
    );
    assert_eq!(r.signature_valid, Some(true), "{r:#?}");

    let mut c = awscredd(&sb, &fake.url, Some(&fake.url), &["once", "--force"]);
    c.env("AWS_DEFAULT_REGION", "eu-south-1");
    let o = run(&sb, c);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(regions(2), (s("eu-south-1"), s("eu-south-1")));

    // Nothing set: the sso_region at the root of R's chain; X has no SSO root: us-east-1.
    let o = run(
        &sb,
        awscredd(&sb, &fake.url, Some(&fake.url), &["once", "--force"]),
    );
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(regions(4), (s("ap-northeast-1"), s("us-east-1")));
}

#[test]
fn fake_throttling_and_5xx_once_are_retried() {
    let (sb, fake) = fake_with_base();
    config(
        &sb,
        &format!(
            "[profile.a]\nsource_profile = \"base\"\nrole_arn = \"{}\"\n\n\
             [profile.s]\nsource_profile = \"base\"\nget_session_token = true\n",
            role("A")
        ),
    );
    fake.inject(STS_ASSUME_ROLE, Fault::Error(400, "Throttling"));
    fake.inject(STS_SESSION_TOKEN, Fault::Error(500, "InternalFailure"));
    let o = run(&sb, awscredd(&sb, &fake.url, None, &["once"]));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let reqs = fake.sts_requests();
    let statuses = |action: &str| -> Vec<u16> {
        reqs.iter()
            .filter(|r| r.action == action)
            .map(|r| r.status)
            .collect()
    };
    assert_eq!(statuses(STS_ASSUME_ROLE), [400, 200], "{reqs:#?}");
    assert_eq!(statuses(STS_SESSION_TOKEN), [500, 200], "{reqs:#?}");
    let all = written(&sb);
    assert!(creds(&all, "a").access_key_id.starts_with("ASIASTS"));
    assert!(creds(&all, "s").access_key_id.starts_with("ASIASTS"));
}

#[test]
fn fake_three_throttles_fail_only_that_profile() {
    let (sb, fake) = fake_with_base();
    let p = sb.process_script("p.sh", "ASIAPROCESS000000001", Some(3600));
    config(
        &sb,
        &format!(
            "[profile.deploy]\nsource_profile = \"base\"\nrole_arn = \"{}\"\n\n\
             [profile.s]\nsource_profile = \"base\"\nget_session_token = true\n\n\
             [profile.p]\ncredential_process = \"{}\"\n",
            role("Deploy"),
            p.display()
        ),
    );
    // Throttling is also retried within the pass, more slowly and fewer at once
    // (refresh::limits): the SDK's three attempts times its six tries.
    let throttled_attempts = 3 * awscredd::refresh::limits::MAX_THROTTLED_TRIES as usize;
    for (status, code, attempts) in [
        (400, "Throttling", throttled_attempts),
        (500, "InternalFailure", 3),
    ] {
        for _ in 0..attempts {
            fake.inject(STS_ASSUME_ROLE, Fault::Error(status, code));
        }
        let before = count(&fake.sts_requests(), STS_ASSUME_ROLE);
        let _ = fs::remove_file(sb.file("credentials"));
        let o = run(&sb, awscredd(&sb, &fake.url, None, &["once", "--force"]));
        assert_eq!(o.status.code(), Some(1), "{}", show(&o));
        assert_eq!(
            count(&fake.sts_requests(), STS_ASSUME_ROLE) - before,
            attempts,
            "{attempts} attempts"
        );
        let err = stderr(&o);
        let failed: Vec<&str> = err
            .lines()
            .filter(|l| l.contains("refresh failed"))
            .collect();
        assert_eq!(failed.len(), 1, "{}", show(&o));
        assert!(
            failed[0].contains("deploy") && failed[0].contains(code),
            "{}",
            show(&o)
        );
        // A bad source never stops the other profiles.
        let all = written(&sb);
        assert!(!all.contains_key("deploy"), "{all:?}");
        assert!(creds(&all, "s").access_key_id.starts_with("ASIASTS"));
        assert_eq!(creds(&all, "p").access_key_id, "ASIAPROCESS000000001");
    }
    // Three throttles are taken in stride: the pass tries again, fewer at once, and succeeds.
    for _ in 0..3 {
        fake.inject(STS_ASSUME_ROLE, Fault::Error(400, "Throttling"));
    }
    let o = run(&sb, awscredd(&sb, &fake.url, None, &["once", "--force"]));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(
        stderr(&o).contains("throttled: asking fewer at once"),
        "{}",
        show(&o)
    );
}

#[test]
fn fake_refusals_name_the_profile_code_and_message() {
    let (sb, fake) = fake_with_base();
    let p = sb.process_script("p.sh", "ASIAPROCESS000000002", Some(3600));
    config(
        &sb,
        &format!(
            "[profile.deploy]\nsource_profile = \"base\"\nrole_arn = \"{}\"\n\n\
             [profile.p]\ncredential_process = \"{}\"\n",
            role("Deploy"),
            p.display()
        ),
    );
    let cases = [
        (
            403,
            "AccessDenied",
            "is not authorized to perform: sts:AssumeRole",
        ),
        (
            400,
            "ExpiredToken",
            "The security token included in the request is expired",
        ),
        (400, "MalformedPolicyDocument", "Syntax errors in policy."),
    ];
    for (status, code, message) in cases {
        fake.inject(STS_ASSUME_ROLE, Fault::Error(status, code));
        let before = count(&fake.sts_requests(), STS_ASSUME_ROLE);
        let o = run(&sb, awscredd(&sb, &fake.url, None, &["once", "--force"]));
        assert_eq!(o.status.code(), Some(1), "{code}: {}", show(&o));
        assert_eq!(
            count(&fake.sts_requests(), STS_ASSUME_ROLE) - before,
            1,
            "{code} is not retried"
        );
        let err = stderr(&o);
        let lines: Vec<&str> = err.lines().filter(|l| l.contains(code)).collect();
        assert_eq!(lines.len(), 1, "{code} reported once: {}", show(&o));
        assert!(
            lines[0].contains("deploy")
                && lines[0].contains(message)
                && lines[0].contains(&role("Deploy")),
            "{code}: {}",
            show(&o)
        );
        assert!(!err.contains("panicked"), "{}", show(&o));
        assert_eq!(
            creds(&written(&sb), "p").access_key_id,
            "ASIAPROCESS000000002"
        );
    }
}

#[test]
fn fake_slow_answer_succeeds_and_malformed_xml_fails_cleanly() {
    let (sb, fake) = fake_with_base();
    config(
        &sb,
        &format!(
            "[profile.slow]\nsource_profile = \"base\"\nrole_arn = \"{}\"\n",
            role("Slow")
        ),
    );
    fake.inject(STS_ASSUME_ROLE, Fault::Delay(Duration::from_secs(2)));
    let started = Instant::now();
    let o = run(&sb, awscredd(&sb, &fake.url, None, &["once"]));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert_eq!(count(&fake.sts_requests(), STS_ASSUME_ROLE), 1);
    let first = creds(&written(&sb), "slow").access_key_id.clone();

    for _ in 0..3 {
        fake.inject(STS_ASSUME_ROLE, Fault::Malformed);
    }
    let o = run(&sb, awscredd(&sb, &fake.url, None, &["once", "--force"]));
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let err = stderr(&o);
    assert!(!err.contains("panicked"), "{}", show(&o));
    let failed: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("refresh failed"))
        .collect();
    assert_eq!(failed.len(), 1, "{}", show(&o));
    assert!(failed[0].contains("profile=slow"), "{}", show(&o));
    assert_eq!(
        creds(&written(&sb), "slow").access_key_id,
        first,
        "the last good credentials stay"
    );
}

/// The config and fake of the malformed-answer tests: `[odd]`, AssumeRole from `[base]`, and
/// `[good]`, a `credential_process`, in the same file.
fn odd_and_good() -> (Sandbox, FakeAws) {
    let (sb, fake) = fake_with_base();
    let good = sb.process_script("good.sh", "ASIAGOODPROCESS00001", Some(3600));
    config(
        &sb,
        &format!(
            "[profile.odd]\nsource_profile = \"base\"\nrole_arn = \"{}\"\n\n\
             [profile.good]\ncredential_process = \"{}\"\n",
            role("Odd"),
            good.display()
        ),
    );
    (sb, fake)
}

/// `[good]` was written and `[odd]` was not.
fn only_good_written(sb: &Sandbox, what: &str) {
    let all = written(sb);
    assert!(!all.contains_key("odd"), "{what}: [odd] written: {all:?}");
    assert!(
        all.get("good")
            .is_some_and(|c| c.access_key_id == "ASIAGOODPROCESS00001"),
        "{what}: a bad STS answer must not stop [good] from being written: {all:?}"
    );
}

/// The one `refresh failed` line of a run that failed.
fn failure_line(o: &Output) -> String {
    assert_eq!(o.status.code(), Some(1), "{}", show(o));
    let err = stderr(o);
    assert!(!err.contains("panicked"), "{}", show(o));
    let failed: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("refresh failed"))
        .collect();
    assert_eq!(failed.len(), 1, "{}", show(o));
    failed[0].to_string()
}

#[test]
fn fake_malformed_answer_is_reported_as_such() {
    let (sb, fake) = odd_and_good();
    for body in [
        // Cut off in the middle.
        format!("<AssumeRoleResponse xmlns=\"{STS_XMLNS}\"><AssumeRoleResult><Credentials><AccessKeyId>ASIA"),
        // A proxy's page.
        "<html><body><h1>502 Bad Gateway</h1></body></html>".to_string(),
        String::new(),
    ] {
        for _ in 0..3 {
            fake.inject(STS_ASSUME_ROLE, Fault::Raw(200, body.clone()));
        }
        let o = run(&sb, awscredd(&sb, &fake.url, None, &["once", "--force"]));
        let line = failure_line(&o);
        assert!(
            line.contains(&format!("AssumeRole {}", role("Odd")))
                && !line.contains(": HTTP 200 ")
                && !line.contains("cannot update"),
            "{body:?}: the message should say STS sent an answer awscredd cannot read: {line}"
        );
        only_good_written(&sb, &body);
        let _ = fs::remove_file(sb.file("credentials"));
    }
}

#[test]
fn fake_answer_without_expiration_or_token_is_refused() {
    let (sb, fake) = odd_and_good();
    let credentials = [
        "<AccessKeyId>ASIANOEXPIRY00000001</AccessKeyId><SecretAccessKey>s</SecretAccessKey>\
         <SessionToken>t</SessionToken>",
        "<AccessKeyId>ASIANOTOKEN000000001</AccessKeyId><SecretAccessKey>s</SecretAccessKey>\
         <Expiration>2099-01-01T00:00:00Z</Expiration>",
    ];
    for c in credentials {
        let body = format!(
            "<AssumeRoleResponse xmlns=\"{STS_XMLNS}\"><AssumeRoleResult><Credentials>{c}\
             </Credentials></AssumeRoleResult></AssumeRoleResponse>"
        );
        for _ in 0..3 {
            fake.inject(STS_ASSUME_ROLE, Fault::Raw(200, body.clone()));
        }
        let o = run(&sb, awscredd(&sb, &fake.url, None, &["once", "--force"]));
        let line = failure_line(&o);
        assert!(
            line.contains(&format!("AssumeRole {}", role("Odd")))
                && !line.contains("cannot update"),
            "{c}: {line}"
        );
        only_good_written(&sb, c);
        let _ = fs::remove_file(sb.file("credentials"));
    }
}

#[test]
fn fake_role_chaining_is_capped_at_one_hour() {
    let (sb, fake) = fake_with_base();
    let proc = sb.process_script("proc.sh", "ASIAPROCESS000000003", Some(3600));
    config(
        &sb,
        &format!(
            "[profile.a]\nsource_profile = \"base\"\nrole_arn = \"{}\"\n\n\
             [profile.b]\nsource_profile = \"a\"\nrole_arn = \"{}\"\nduration_seconds = 7200\n\n\
             [profile.proc]\ncredential_process = \"{}\"\n\n\
             [profile.c]\nsource_profile = \"proc\"\nrole_arn = \"{}\"\nduration_seconds = 7200\n",
            role("A"),
            role("B"),
            proc.display(),
            role("C")
        ),
    );
    let o = run(&sb, awscredd(&sb, &fake.url, None, &["check"]));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let err = stderr(&o);
    let warnings: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("role chaining"))
        .collect();
    assert_eq!(warnings.len(), 1, "only b is known to chain: {}", show(&o));
    assert!(warnings[0].contains("3600"), "{}", show(&o));

    let o = run(&sb, awscredd(&sb, &fake.url, None, &["once"]));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let reqs = fake.sts_requests();
    // From an assumed role: asked for one hour at once.
    let b = one(&reqs, "B");
    assert_eq!(b.param("DurationSeconds"), Some("3600"), "{b:#?}");
    assert_eq!(b.status, 200);
    // From a credential_process: AWS refuses 7200, awscredd asks again for 3600.
    let c = for_role(&reqs, "C");
    let asked: Vec<(Option<&str>, u16)> = c
        .iter()
        .map(|r| (r.param("DurationSeconds"), r.status))
        .collect();
    assert_eq!(asked, [(Some("7200"), 400), (Some("3600"), 200)], "{c:#?}");
    assert_eq!(c[0].access_key_id.as_deref(), Some("ASIAPROCESS000000003"));
    let all = written(&sb);
    assert_eq!(
        c[1].issued.as_deref(),
        Some(creds(&all, "c").access_key_id.as_str())
    );
    let life = lifetime(creds(&all, "c"));
    assert!((3500..=3600).contains(&life), "c lives {life} s");
    assert!(
        stderr(&o).contains("role chaining caps the session at one hour"),
        "{}",
        show(&o)
    );
    assert!(!stderr(&o).contains("refresh failed"), "{}", show(&o));
}

#[test]
fn fake_mfa_command_supplies_the_token_code() {
    let (sb, fake) = fake_with_base();
    let good = script(&sb, "totp.sh", "echo 123456");
    let failing = script(&sb, "broken-totp.sh", "echo 'no device' >&2\nexit 3");
    let garbled = script(&sb, "garbled-totp.sh", "echo 'code: 12'");
    let serial = "arn:aws:iam::111122223333:mfa/batch-user";
    config(
        &sb,
        &format!(
            "[profile.s]\nsource_profile = \"base\"\nget_session_token = true\n\
             mfa_serial = \"{serial}\"\nmfa_command = [\"{}\"]\n\n\
             [profile.r]\nsource_profile = \"base\"\nrole_arn = \"{}\"\n\
             mfa_serial = \"{serial}\"\nmfa_command = [\"{}\", \"--account\", \"r\"]\n\n\
             [profile.bad]\nsource_profile = \"base\"\nget_session_token = true\n\
             mfa_serial = \"{serial}\"\nmfa_command = [\"{}\"]\n\n\
             [profile.garbled]\nsource_profile = \"base\"\nget_session_token = true\n\
             mfa_serial = \"{serial}\"\nmfa_command = [\"{}\"]\n",
            good.display(),
            role("R"),
            good.display(),
            failing.display(),
            garbled.display(),
        ),
    );
    let o = run(&sb, awscredd(&sb, &fake.url, None, &["once"]));
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let reqs = fake.sts_requests();
    let s: Vec<&StsRequest> = reqs
        .iter()
        .filter(|r| r.action == STS_SESSION_TOKEN)
        .collect();
    assert_eq!(s.len(), 1, "only s reached STS: {reqs:#?}");
    assert_eq!(
        (s[0].param("SerialNumber"), s[0].param("TokenCode")),
        (Some(serial), Some("123456"))
    );
    let r = one(&reqs, "R");
    assert_eq!(
        (r.param("SerialNumber"), r.param("TokenCode")),
        (Some(serial), Some("123456"))
    );
    let all = written(&sb);
    assert!(all.contains_key("s") && all.contains_key("r"), "{all:?}");
    assert!(!all.contains_key("bad") && !all.contains_key("garbled"));
    let err = stderr(&o);
    let failed = |name: &str| -> String {
        let lines: Vec<&str> = err
            .lines()
            .filter(|l| l.contains("refresh failed") && l.contains(&format!("profile={name}")))
            .collect();
        assert_eq!(lines.len(), 1, "[{name}] failed once: {}", show(&o));
        lines[0].to_string()
    };
    let bad = failed("bad");
    assert!(
        bad.contains(&format!("mfa_command `{}`", failing.display())) && bad.contains("exit"),
        "{bad}"
    );
    let garbled_line = failed("garbled");
    assert!(garbled_line.contains("six-digit code"), "{garbled_line}");
}

#[test]
fn fake_web_identity_token_file_is_read_on_every_refresh() {
    let (sb, fake) = fake_with_base();
    let token_file = sb.file("sa/token");
    fs::create_dir_all(token_file.parent().unwrap()).unwrap();
    fs::write(&token_file, "eyJ.first.sig").unwrap();
    config(
        &sb,
        &format!(
            "[profile.pod]\nrole_arn = \"{}\"\nweb_identity_token_file = \"sa/token\"\n\
             duration_seconds = 7200\n",
            role("Pod")
        ),
    );
    let tokens = || -> Vec<String> {
        fake.sts_requests()
            .iter()
            .map(|r| r.param("WebIdentityToken").unwrap_or("").to_string())
            .collect()
    };
    let o = run(&sb, awscredd(&sb, &fake.url, None, &["once"]));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(tokens(), ["eyJ.first.sig"]);
    assert_eq!(
        fake.sts_requests()[0].param("DurationSeconds"),
        Some("7200"),
        "not role chaining"
    );

    // The kubelet rotates the token.
    fs::write(&token_file, "eyJ.second.sig\n").unwrap();
    let o = run(&sb, awscredd(&sb, &fake.url, None, &["once", "--force"]));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(tokens(), ["eyJ.first.sig", "eyJ.second.sig"]);

    fs::remove_file(&token_file).unwrap();
    let o = run(&sb, awscredd(&sb, &fake.url, None, &["once", "--force"]));
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert_eq!(tokens().len(), 2, "no request without a token");
    let err = stderr(&o);
    assert!(
        err.lines().any(|l| l.contains("pod")
            && l.contains("cannot read web_identity_token_file")
            && l.contains(&token_file.display().to_string())),
        "{}",
        show(&o)
    );
    assert!(!err.contains("panicked"), "{}", show(&o));
}

#[test]
fn fake_profile_option_narrows_the_pass_to_the_chain() {
    let (sb, fake) = fake_with_base();
    sso_signed_in(&sb, &fake);
    fs::write(sb.file("token"), "eyJ.w.sig").unwrap();
    let p = sb.process_script("p.sh", "ASIAPROCESS000000004", Some(3600));
    config(
        &sb,
        &format!(
            "{}[profile.a]\nsource_profile = \"sso\"\nrole_arn = \"{}\"\n\n\
             [profile.b]\nsource_profile = \"a\"\nrole_arn = \"{}\"\n\n\
             [profile.c]\nsource_profile = \"base\"\nrole_arn = \"{}\"\n\n\
             [profile.w]\nrole_arn = \"{}\"\nweb_identity_token_file = \"token\"\n\n\
             [profile.p]\ncredential_process = \"{}\"\n",
            sso_profile("sso", "us-east-1"),
            role("A"),
            role("B"),
            role("C"),
            role("W"),
            p.display()
        ),
    );
    let o = run(
        &sb,
        awscredd(&sb, &fake.url, Some(&fake.url), &["once", "--profile", "b"]),
    );
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let reqs = fake.sts_requests();
    let roles: Vec<&str> = reqs.iter().filter_map(|r| r.param("RoleArn")).collect();
    assert_eq!(roles, [role("A"), role("B")], "A first, then B");
    assert_eq!(fake.role_requests().len(), 1);
    let all = written(&sb);
    let names: Vec<&str> = all.keys().map(String::as_str).collect();
    assert_eq!(names, ["a", "b", "sso"]);
    assert_eq!(
        reqs[1].access_key_id.as_deref(),
        Some(creds(&all, "a").access_key_id.as_str())
    );
    assert_eq!(
        reqs[0].access_key_id.as_deref(),
        Some(creds(&all, "sso").access_key_id.as_str())
    );
}
