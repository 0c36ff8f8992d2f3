//! The `[server]` of `awscredd run`: container credentials for SDK clients, behind a token.
#![cfg(unix)]

use crate::util::{botocore_python, show, Guard, Sandbox};
use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// GET `path` with an optional Authorization header, one request per connection; (status, body).
pub fn get(port: u16, path: &str, token: Option<&str>) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let auth = token.map_or(String::new(), |t| format!("Authorization: {t}\r\n"));
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Accept: application/json\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let status = out.split_whitespace().nth(1)?.parse().ok()?;
    let body = out.split_once("\r\n\r\n")?.1.to_string();
    Some((status, body))
}

/// `[server]` config on `port` with one profile `app` from `script`.
pub fn server_config(sb: &Sandbox, port: u16, script: &Path) {
    sb.config(&format!(
        "[daemon]\nstate_dir = \"state\"\n[[output]]\npath = \"shared/credentials\"\n\
         [profile.app]\ncredential_process = \"{}\"\n[server]\nlisten = \"127.0.0.1:{port}\"\n",
        script.display()
    ));
}

/// `awscredd run` on the sandbox's config, logging to `daemon.log`; with `open_files`, under
/// a soft limit of 128 descriptors and a hard limit of `open_files`.
pub fn daemon(sb: &Sandbox, open_files: Option<u32>) -> Command {
    let mut c = sb.command();
    if let Some(hard) = open_files {
        let bin = c.get_program().to_owned();
        let mut sh = Command::new("sh");
        sh.env_clear();
        for (k, v) in c.get_envs() {
            if let Some(v) = v {
                sh.env(k, v);
            }
        }
        sh.arg("-c")
            .arg(format!(
                "ulimit -Sn 128 && ulimit -Hn {hard} && exec \"$0\" \"$@\""
            ))
            .arg(bin);
        c = sh;
    }
    c.arg("--config")
        .arg(sb.file("config.toml"))
        .arg("run")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(sb.file("daemon.log")).unwrap());
    c
}

/// Starts the daemon of [`server_config`] and waits until it serves `app` with `akid`.
pub fn start_serving(sb: &Sandbox, port: u16, akid: &str, open_files: Option<u32>) -> Guard {
    let running = Guard(daemon(sb, open_files).spawn().unwrap());
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(15) {
        if let Some((200, body)) = get(port, "/profiles/app", Some(&token(sb))) {
            if body.contains(akid) {
                return running;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "the server did not serve in 15 s:\n{}",
        fs::read_to_string(sb.file("daemon.log")).unwrap_or_default()
    );
}

fn start(sb: &Sandbox, port: u16) -> Guard {
    let script = sb.process_script("src.sh", "ASIASERVED", Some(3600));
    server_config(sb, port, &script);
    start_serving(sb, port, "ASIASERVED", None)
}

/// Runs the daemon until it exits (at most 15 s, then it is killed): (exit code, its log).
fn run_until_exit(sb: &Sandbox) -> (Option<i32>, String) {
    let mut d = Guard(daemon(sb, None).spawn().unwrap());
    let start = Instant::now();
    let mut code = None;
    while start.elapsed() < Duration::from_secs(15) {
        if let Some(status) = d.0.try_wait().unwrap() {
            code = status.code();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let exited = code.is_some();
    drop(d);
    let log = fs::read_to_string(sb.file("daemon.log")).unwrap_or_default();
    assert!(exited, "the daemon still ran after 15 s:\n{log}");
    (code, log)
}

pub fn token(sb: &Sandbox) -> String {
    fs::read_to_string(sb.file("shared/awscredd-server-token")).unwrap_or_default()
}

#[test]
fn serves_profiles_behind_the_token_and_health_without() {
    let sb = Sandbox::new();
    let port = free_port();
    let _d = start(&sb, port);
    let t = token(&sb);
    assert_eq!(t.len(), 64);
    assert!(!t.ends_with('\n'));
    assert_eq!(get(port, "/healthz", None).unwrap().0, 200);
    assert_eq!(get(port, "/profiles/app", None).unwrap().0, 401);
    assert_eq!(get(port, "/profiles/app", Some("wrong")).unwrap().0, 401);
    assert_eq!(get(port, "/profiles/nope", Some(&t)).unwrap().0, 404);
    let (status, body) = get(port, "/profiles/app", Some(&t)).unwrap();
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["AccessKeyId"], "ASIASERVED");
    assert_eq!(v["SecretAccessKey"], "secret-ASIASERVED");
    assert_eq!(v["Token"], "token-ASIASERVED");
    assert!(v["Expiration"].as_str().unwrap().ends_with('Z'));
    drop(_d);
    // The token is kept across restarts.
    let port2 = free_port();
    let _d2 = start(&sb, port2);
    assert_eq!(token(&sb), t);
}

/// botocore's container provider, as any SDK in the app container would use it.
#[test]
fn botocore_gets_credentials_from_the_server() {
    let sb = Sandbox::new();
    let Some(mut python) = botocore_python(&sb) else {
        return;
    };
    let port = free_port();
    let _d = start(&sb, port);
    let o = python
        .env("AWS_CONFIG_FILE", sb.file("none"))
        .env("AWS_SHARED_CREDENTIALS_FILE", sb.file("none"))
        .env(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            format!("http://127.0.0.1:{port}/profiles/app"),
        )
        .env(
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
            sb.file("shared/awscredd-server-token"),
        )
        .args([
            "-c",
            "import botocore.session\ns = botocore.session.Session()\nc = s.get_credentials()\nf = c.get_frozen_credentials()\nprint(c.method, f.access_key, f.secret_key, f.token)",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", show(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "container-role ASIASERVED secret-ASIASERVED token-ASIASERVED"
    );
}

#[test]
fn a_server_that_cannot_bind_stops_run_with_78() {
    let sb = Sandbox::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let script = sb.process_script("src.sh", "ASIASERVED", Some(3600));
    server_config(&sb, port, &script);
    let (code, log) = run_until_exit(&sb);
    assert_eq!(code, Some(78), "{log}");
    assert!(
        log.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{log}"
    );
    assert!(
        !sb.file("shared/credentials").exists(),
        "no pass runs without the server"
    );
}

#[test]
fn an_empty_token_file_stops_run_with_78() {
    let sb = Sandbox::new();
    let script = sb.process_script("src.sh", "ASIASERVED", Some(3600));
    server_config(&sb, free_port(), &script);
    fs::create_dir_all(sb.file("shared")).unwrap();
    fs::write(sb.file("shared/awscredd-server-token"), "\n").unwrap();
    let (code, log) = run_until_exit(&sb);
    assert_eq!(code, Some(78), "{log}");
    assert!(
        log.contains("awscredd-server-token` cannot be used: it is empty"),
        "{log}"
    );
}

#[test]
fn a_short_or_readable_token_is_a_warning() {
    use std::os::unix::fs::PermissionsExt;
    let sb = Sandbox::new();
    let port = free_port();
    let script = sb.process_script("src.sh", "ASIASERVED", Some(3600));
    server_config(&sb, port, &script);
    fs::create_dir_all(sb.file("shared")).unwrap();
    let path = sb.file("shared/awscredd-server-token");
    fs::write(&path, "short-token").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let _d = start_serving(&sb, port, "ASIASERVED", None);
    let log = fs::read_to_string(sb.file("daemon.log")).unwrap();
    assert!(
        log.contains("the server token is short (11 characters)"),
        "{log}"
    );
    assert!(
        log.contains("readable by group or others (mode 0644)"),
        "{log}"
    );
    assert!(!log.contains("short-token"), "the token was logged:\n{log}");
}

/// Issue 27 item 7: the token file was read at start only; a token rotated in the file was
/// refused until a restart, and nothing said so. A reload (SIGHUP) reads it again.
#[test]
fn a_reload_reads_the_token_file_again() {
    let sb = Sandbox::new();
    let port = free_port();
    let d = start(&sb, port);
    let old = token(&sb);
    let new = "f".repeat(64);
    fs::write(sb.file("shared/awscredd-server-token"), &new).unwrap();
    let hup = Command::new("kill")
        .args(["-HUP", &d.0.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let started = Instant::now();
    let mut answer = None;
    while started.elapsed() < Duration::from_secs(10) {
        answer = get(port, "/profiles/app", Some(&new)).map(|a| a.0);
        if answer == Some(200) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = fs::read_to_string(sb.file("daemon.log")).unwrap_or_default();
    assert_eq!(answer, Some(200), "the new token is refused:\n{log}");
    assert_eq!(
        get(port, "/profiles/app", Some(&old)).map(|a| a.0),
        Some(401)
    );
    assert!(log.contains("the [server] token was read again"), "{log}");
}
