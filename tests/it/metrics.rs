//! `[metrics]` of `awscredd run` end to end: `/metrics` scraped and parsed by Python's
//! `prometheus_client` (the Prometheus project's parser, which nobody here wrote), every metric
//! of SPEC.md with the value the files hold, a failing profile and its recovery in the state
//! gauge and in `/readyz` on both listeners, a sign-in that waits for a human, scrapes that run
//! no source, and a `[metrics]` address that cannot be bound (exit 78).
#![cfg(unix)]

use crate::fake_aws::FakeAws;
use crate::server::{free_port, get};
use crate::util::{prometheus_python, runs, Guard, Sandbox};
use awscredd::credentials::Credentials;
use awscredd::profile_file::ProfileFile;
use awscredd::sources::sso::cache::TokenCache;
use awscredd::store::credentials_in;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Every metric SPEC.md names, as the parser names its samples.
pub const SPEC_METRICS: [&str; 7] = [
    "awscredd_credentials_expiry_timestamp_seconds",
    "awscredd_refresh_total",
    "awscredd_last_refresh_success_timestamp_seconds",
    "awscredd_profile_state",
    "awscredd_sso_token_expiry_timestamp_seconds",
    "awscredd_sso_sign_ins_total",
    "awscredd_build_info",
];

/// Exported only with a `login_session` profile (checked in `login_session.rs`).
pub const LOGIN_METRICS: [&str; 1] = ["awscredd_login_session_end_timestamp_seconds"];

const STATES: [&str; 4] = ["ok", "expired", "failing", "waiting_for_login"];

/// One sample as `prometheus_client` parsed it.
#[derive(Debug)]
pub struct Sample {
    pub family_type: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// GET `path`: (status, headers, body).
fn fetch(port: u16, path: &str) -> Option<(u16, String, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let status = out.split_whitespace().nth(1)?.parse().ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    Some((status, head.to_string(), body.to_string()))
}

/// Parses Prometheus text with `prometheus_client.parser.text_string_to_metric_families`.
pub fn parse(python: &Path, text: &str) -> Vec<Sample> {
    let script = "import json, sys\n\
        from prometheus_client.parser import text_string_to_metric_families\n\
        out = []\n\
        for f in text_string_to_metric_families(sys.stdin.read()):\n\
        \x20   for s in f.samples:\n\
        \x20       out.append([f.type, s.name, s.labels, s.value])\n\
        print(json.dumps(out))\n";
    let mut child = Command::new(python)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "prometheus_client refused the text: {}\n{text}",
        String::from_utf8_lossy(&o.stderr)
    );
    let rows: Vec<(String, String, BTreeMap<String, String>, f64)> =
        serde_json::from_slice(&o.stdout).unwrap();
    rows.into_iter()
        .map(|(family_type, name, labels, value)| Sample {
            family_type,
            name,
            labels,
            value,
        })
        .collect()
}

/// `/metrics`, checked for its content type, parsed.
pub fn scrape(python: &Path, port: u16) -> (String, Vec<Sample>) {
    let (status, head, body) = fetch(port, "/metrics").expect("/metrics answers");
    assert_eq!(status, 200, "{head}\n{body}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    let samples = parse(python, &body);
    (body, samples)
}

/// The value of the sample `name` with exactly `labels`.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let want: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    samples
        .iter()
        .find(|s| s.name == name && s.labels == want)
        .map(|s| s.value)
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// `/readyz` on `port`: (status, the JSON body).
fn readyz(port: u16) -> Option<(u16, Value)> {
    let (status, body) = get(port, "/readyz", None)?;
    Some((status, serde_json::from_str(&body).ok()?))
}

/// Waits up to `limit` for `/readyz` on `port` to answer `status` with `body`.
fn wait_for_readyz(sb: &Sandbox, port: u16, status: u16, body: &Value, limit: Duration) {
    let start = Instant::now();
    let mut last = None;
    while start.elapsed() < limit {
        last = readyz(port);
        if last.as_ref() == Some(&(status, body.clone())) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "/readyz never answered {status} {body} in {limit:?} (last: {last:?}):\n{}",
        fs::read_to_string(sb.file("daemon.log")).unwrap_or_default()
    );
}

/// The credentials `shared/credentials` holds.
fn stored(sb: &Sandbox) -> BTreeMap<String, Credentials> {
    let text = fs::read_to_string(sb.file("shared/credentials")).unwrap_or_default();
    credentials_in(&ProfileFile::parse(&text).unwrap())
}

/// Each profile's expiry gauge equals the expiry key its file holds.
fn assert_expiries_match_files(samples: &[Sample], sb: &Sandbox, profiles: &[&str]) {
    for p in profiles {
        assert_eq!(
            value(
                samples,
                "awscredd_credentials_expiry_timestamp_seconds",
                &[("profile", p)]
            ),
            Some(expiry_in_file(sb, p)),
            "{p}"
        );
    }
}

fn expiry_in_file(sb: &Sandbox, profile: &str) -> f64 {
    let exp = stored(sb)[profile]
        .expiration
        .expect("an expiry in the file");
    exp.unix_timestamp() as f64
}

/// A `credential_process` script that counts its runs in `HOME/NAME.runs` and fails while
/// `HOME/NAME.fail` exists.
fn source(sb: &Sandbox, name: &str) -> PathBuf {
    let home = sb.path().display();
    let script = sb.file(&format!("{name}.sh"));
    fs::write(
        &script,
        format!(
            "#!/bin/sh\necho x >> '{home}/{name}.runs'\n\
             if [ -e '{home}/{name}.fail' ]; then echo '{name} is broken on purpose' >&2; exit 1; fi\n\
             printf '{{\"Version\":1,\"AccessKeyId\":\"ASIA{up}\",\"SecretAccessKey\":\"secret-{name}\",\"SessionToken\":\"token-{name}\",\"Expiration\":\"%s\"}}' \
             $(date -u -d '3600 seconds' +%Y-%m-%dT%H:%M:%SZ)\n",
            up = name.to_uppercase()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    script
}

/// `[[output]] shared/credentials`, `[sso_session.corp]` on the fake with `[profile.dev]`,
/// the `process` profiles, `[metrics]` on `metrics_port` and `[server]` on `server_port`.
fn write_config(sb: &Sandbox, process: &[&str], metrics_port: u16, server_port: u16) {
    let mut text = format!(
        "[daemon]\nstate_dir = \"state\"\n[[output]]\npath = \"shared/credentials\"\n\
         [sso_session.corp]\nsso_start_url = \"https://x.awsapps.com/start\"\nsso_region = \"us-east-1\"\n\
         [profile.dev]\nsso_session = \"corp\"\nsso_account_id = \"111122223333\"\nsso_role_name = \"Developer\"\n\
         [metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n\
         [server]\nlisten = \"127.0.0.1:{server_port}\"\n"
    );
    for name in process {
        text.push_str(&format!(
            "[profile.{name}]\ncredential_process = \"{}\"\n",
            source(sb, name).display()
        ));
    }
    sb.config(&text);
}

/// `awscredd run` with the SSO endpoints on `fake`, logging to `HOME/daemon.log`.
fn start_daemon(sb: &Sandbox, fake: &FakeAws) -> Guard {
    let child = sb
        .command()
        .env("AWS_ENDPOINT_URL_SSO_OIDC", &fake.url)
        .env("AWS_ENDPOINT_URL_SSO", &fake.url)
        .arg("--config")
        .arg(sb.file("config.toml"))
        .arg("run")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(sb.file("daemon.log")).unwrap())
        .spawn()
        .unwrap();
    Guard(child)
}

fn signal(d: &Guard, sig: &str) {
    let ok = Command::new("kill")
        .args(["-s", sig, &d.0.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// Asserts each profile has the four state series, 1 for `state` and 0 for the others.
fn assert_state(samples: &[Sample], profile: &str, state: &str) {
    for s in STATES {
        assert_eq!(
            value(
                samples,
                "awscredd_profile_state",
                &[("profile", profile), ("state", s)]
            ),
            Some(if s == state { 1.0 } else { 0.0 }),
            "awscredd_profile_state{{profile={profile},state={s}}}"
        );
    }
}

#[test]
fn every_metric_follows_the_daemon_through_a_failure_and_its_recovery() {
    let Some(python) = prometheus_python() else {
        return;
    };
    let sb = Sandbox::new();
    let fake = FakeAws::start();
    fake.configure(|s| s.approve_after_polls = Some(1));
    let (metrics_port, server_port) = (free_port(), free_port());
    write_config(&sb, &["app", "flaky"], metrics_port, server_port);
    fs::write(sb.file("flaky.fail"), "").unwrap();
    let started = unix_now().floor();
    let d = start_daemon(&sb, &fake);

    // Signed in (by itself: the fake approves), app refreshed, flaky failing.
    let failing = json!({"not_ready": {"flaky": "failing"}});
    wait_for_readyz(&sb, metrics_port, 503, &failing, Duration::from_secs(30));
    assert_eq!(readyz(server_port), Some((503, failing)));
    for port in [metrics_port, server_port] {
        assert_eq!(get(port, "/healthz", None).map(|a| a.0), Some(200));
    }

    let (text, samples) = scrape(&python, metrics_port);
    for name in SPEC_METRICS {
        assert!(
            samples.iter().any(|s| s.name == name),
            "{name} is missing:\n{text}"
        );
    }
    for s in &samples {
        for label in s.labels.keys() {
            assert!(
                ["profile", "result", "state", "sso_session", "version"].contains(&label.as_str()),
                "unexpected label {label} on {}",
                s.name
            );
        }
    }
    for secret in ["secret-app", "token-app", "ASIAAPP"] {
        assert!(!text.contains(secret), "{secret} in /metrics");
    }
    let types: BTreeMap<&str, &str> = samples
        .iter()
        .map(|s| (s.name.as_str(), s.family_type.as_str()))
        .collect();
    assert_eq!(types["awscredd_refresh_total"], "counter");
    assert_eq!(types["awscredd_sso_sign_ins_total"], "counter");
    assert_eq!(types["awscredd_profile_state"], "gauge");
    assert_eq!(
        types["awscredd_credentials_expiry_timestamp_seconds"],
        "gauge"
    );
    assert_eq!(
        value(
            &samples,
            "awscredd_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0)
    );
    // Expiries equal the files' expiry keys; none for flaky, which the file does not hold.
    assert_expiries_match_files(&samples, &sb, &["app", "dev"]);
    assert_eq!(
        value(
            &samples,
            "awscredd_credentials_expiry_timestamp_seconds",
            &[("profile", "flaky")]
        ),
        None
    );
    let env = |name: &str| (name == "HOME").then(|| sb.path().display().to_string());
    let token = TokenCache::default_location(&env)
        .unwrap()
        .load("corp")
        .expect("a token in the cache");
    assert_eq!(
        value(
            &samples,
            "awscredd_sso_token_expiry_timestamp_seconds",
            &[("sso_session", "corp")]
        ),
        Some(token.expires_at.unix_timestamp() as f64)
    );
    assert_eq!(
        value(
            &samples,
            "awscredd_sso_sign_ins_total",
            &[("sso_session", "corp")]
        ),
        Some(1.0)
    );
    let refreshes = |samples: &[Sample], p: &str, result: &str| {
        value(
            samples,
            "awscredd_refresh_total",
            &[("profile", p), ("result", result)],
        )
        .unwrap_or_else(|| panic!("no awscredd_refresh_total{{{p},{result}}}"))
    };
    assert!(refreshes(&samples, "app", "success") >= 1.0);
    assert!(refreshes(&samples, "dev", "success") >= 1.0);
    assert!(refreshes(&samples, "flaky", "failure") >= 1.0);
    assert_eq!(refreshes(&samples, "flaky", "success"), 0.0);
    for p in ["app", "dev"] {
        let t = value(
            &samples,
            "awscredd_last_refresh_success_timestamp_seconds",
            &[("profile", p)],
        )
        .expect("a last success");
        assert!(t >= started && t <= unix_now(), "{p}: {t}");
        assert_state(&samples, p, "ok");
    }
    assert_state(&samples, "flaky", "failing");

    // A scrape runs no source.
    let before = runs(&sb, "app");
    for _ in 0..20 {
        scrape(&python, metrics_port);
    }
    assert_eq!(runs(&sb, "app"), before, "a scrape ran a source");

    // flaky recovers at the next (forced) pass; every counter of a success grows.
    let app_before = refreshes(&samples, "app", "success");
    fs::remove_file(sb.file("flaky.fail")).unwrap();
    signal(&d, "USR1");
    let ready = json!({"not_ready": {}});
    wait_for_readyz(&sb, metrics_port, 200, &ready, Duration::from_secs(20));
    assert_eq!(readyz(server_port), Some((200, ready)));
    let (_, samples) = scrape(&python, metrics_port);
    assert!(refreshes(&samples, "app", "success") > app_before);
    assert_eq!(refreshes(&samples, "flaky", "success"), 1.0);
    assert_state(&samples, "flaky", "ok");
    assert_expiries_match_files(&samples, &sb, &["app", "dev", "flaky"]);
    // A sign-in was not needed again.
    assert_eq!(
        value(
            &samples,
            "awscredd_sso_sign_ins_total",
            &[("sso_session", "corp")]
        ),
        Some(1.0)
    );

    // A reload that drops flaky takes its series with it.
    write_config(&sb, &["app"], metrics_port, server_port);
    signal(&d, "HUP");
    let start = Instant::now();
    let gone = loop {
        let (text, _) = scrape(&python, metrics_port);
        if !text.contains("profile=\"flaky\"") || start.elapsed() > Duration::from_secs(15) {
            break !text.contains("profile=\"flaky\"");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(gone, "flaky's series outlived the reload");
    let (_, samples) = scrape(&python, metrics_port);
    assert_state(&samples, "app", "ok");
    drop(d);
}

#[test]
fn a_sign_in_that_waits_for_a_human_is_told_while_it_waits() {
    let Some(python) = prometheus_python() else {
        return;
    };
    let sb = Sandbox::new();
    let fake = FakeAws::start(); // nobody approves the code
    let (metrics_port, server_port) = (free_port(), free_port());
    write_config(&sb, &["app"], metrics_port, server_port);
    let d = start_daemon(&sb, &fake);
    let waiting = json!({"not_ready": {"dev": "waiting_for_login"}});
    wait_for_readyz(&sb, metrics_port, 503, &waiting, Duration::from_secs(40));
    let start = Instant::now();
    let samples = loop {
        let (_, samples) = scrape(&python, metrics_port);
        let started = value(
            &samples,
            "awscredd_sso_sign_ins_total",
            &[("sso_session", "corp")],
        );
        if started == Some(1.0) || start.elapsed() > Duration::from_secs(20) {
            break samples;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        value(
            &samples,
            "awscredd_sso_sign_ins_total",
            &[("sso_session", "corp")]
        ),
        Some(1.0)
    );
    assert_state(&samples, "dev", "waiting_for_login");
    assert_eq!(
        value(
            &samples,
            "awscredd_sso_token_expiry_timestamp_seconds",
            &[("sso_session", "corp")]
        ),
        None
    );
    // The scheduler is alive while its pass waits for the human.
    assert_eq!(readyz(metrics_port), Some((503, waiting)));
    for port in [metrics_port, server_port] {
        assert_eq!(get(port, "/healthz", None).map(|a| a.0), Some(200));
    }
    drop(d);
}

#[test]
fn a_metrics_address_that_cannot_be_bound_exits_78() {
    let sb = Sandbox::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let script = sb.process_script("src.sh", "ASIAX", Some(3600));
    sb.config(&format!(
        "[daemon]\nstate_dir = \"state\"\n[[output]]\npath = \"credentials\"\n\
         [profile.app]\ncredential_process = \"{}\"\n[metrics]\nlisten = \"127.0.0.1:{port}\"\n",
        script.display()
    ));
    let mut d = Guard(
        sb.command()
            .arg("--config")
            .arg(sb.file("config.toml"))
            .arg("run")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(sb.file("daemon.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    let start = Instant::now();
    let mut code = None;
    while start.elapsed() < Duration::from_secs(15) {
        if let Some(status) = d.0.try_wait().unwrap() {
            code = status.code();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = fs::read_to_string(sb.file("daemon.log")).unwrap_or_default();
    assert_eq!(code, Some(78), "{log}");
    assert!(
        log.contains(&format!(
            "the [metrics] listener cannot listen on 127.0.0.1:{port}"
        )),
        "{log}"
    );
    assert!(!sb.file("credentials").exists(), "a pass ran");
    drop(taken);
}

/// The example alerting rules name only metrics and states awscredd exports (the test above
/// checks every one of [`SPEC_METRICS`] is there), and pass `promtool check rules` and their
/// unit tests when Debian's `prometheus` is installed (CI installs it for its own step too).
#[test]
fn the_example_alert_rules_name_exported_metrics_and_pass_promtool() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rules = root.join("config/awscredd-alerts.yml");
    let text = fs::read_to_string(&rules).unwrap();
    let exprs: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("expr:"))
        .collect();
    assert!(exprs.len() >= 3, "{exprs:?}");
    let mut named = Vec::new();
    for expr in &exprs {
        let mut rest = *expr;
        while let Some(at) = rest.find("awscredd_") {
            let name: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            rest = &rest[at + name.len()..];
            named.push(name);
        }
        if let Some((_, state)) = expr.split_once("state=\"") {
            let state = state.split('"').next().unwrap();
            assert!(STATES.contains(&state), "state {state} in {expr}");
        }
    }
    for name in &named {
        assert!(
            SPEC_METRICS.contains(&name.as_str()) || LOGIN_METRICS.contains(&name.as_str()),
            "{name} is not exported"
        );
    }
    for wanted in [
        "awscredd_credentials_expiry_timestamp_seconds",
        "awscredd_profile_state",
    ] {
        assert!(named.iter().any(|n| n == wanted), "no rule uses {wanted}");
    }
    for state in ["failing", "waiting_for_login"] {
        assert!(
            text.contains(&format!("state=\"{state}\"")),
            "no {state} rule"
        );
    }
    let promtool = |args: &[&str]| {
        Command::new("promtool")
            .args(args)
            .current_dir(root)
            .stdin(Stdio::null())
            .output()
    };
    let Ok(o) = promtool(&["check", "rules", "config/awscredd-alerts.yml"]) else {
        eprintln!("SKIPPED: promtool is not installed (apt-get install prometheus)");
        return;
    };
    assert!(o.status.success(), "{}", crate::util::show(&o));
    let o = promtool(&["test", "rules", "tests/data/awscredd-alerts.test.yml"]).unwrap();
    assert!(o.status.success(), "{}", crate::util::show(&o));
}
