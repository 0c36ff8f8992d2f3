//! The `[server]` of `awscredd run`: container credentials for SDK clients, behind a token.
#![cfg(unix)]

use crate::util::{botocore_python, show, Sandbox};
use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// GET `path` with an optional Authorization header; (status, body).
fn get(port: u16, path: &str, token: Option<&str>) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let auth = token.map_or(String::new(), |t| format!("Authorization: {t}\r\n"));
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Accept: application/json\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let status = out.split_whitespace().nth(1)?.parse().ok()?;
    let body = out.split_once("\r\n\r\n")?.1.to_string();
    Some((status, body))
}

fn start(sb: &Sandbox, port: u16) -> Running {
    let script = sb.process_script("src.sh", "ASIASERVED", Some(3600));
    sb.config(&format!(
        "[daemon]\nstate_dir = \"state\"\n[[output]]\npath = \"shared/credentials\"\n\
         [profile.app]\ncredential_process = \"{}\"\n[server]\nlisten = \"127.0.0.1:{port}\"\n",
        script.display()
    ));
    let child = sb
        .command()
        .arg("--config")
        .arg(sb.file("config.toml"))
        .arg("run")
        .stdout(Stdio::null())
        .stderr(fs::File::create(sb.file("daemon.log")).unwrap())
        .spawn()
        .unwrap();
    let running = Running(child);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(15) {
        if let Some((200, body)) = get(port, "/profiles/app", Some(&token(sb))) {
            if body.contains("ASIASERVED") {
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

fn token(sb: &Sandbox) -> String {
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
