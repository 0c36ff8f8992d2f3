//! Benchmark: IAM Roles Anywhere. Run with `cargo bench --bench roles_anywhere` (needs the
//! test Python with `cryptography`: `target/venv`, see tests/requirements.txt).
//!
//! 1. Signing cost per `CreateSession` request (canonical request, string to sign and the
//!    signature), for RSA 2048, EC P-256 and EC P-384 keys: the median of [`SIGNATURES`]
//!    signatures after a warm-up; and what a fetch costs before it signs, reading the three
//!    files and finding the shared signer (unchanged files), and parsing them (a renewal).
//! 2. One pass of [`PROFILES`] profiles sharing one certificate against the fake service
//!    (`tests/fakes/rolesanywhere.py`, HTTPS) answering each call after [`DELAY_MS`] ms:
//!    the wall time of `awscredd once --force`, median of [`PASSES`].
#![allow(clippy::disallowed_methods)] // tests and tools read the clock and environment directly

use awscredd::config::RolesAnywhereSource;
use awscredd::sources::roles_anywhere::material::{self, Files, Material};
use awscredd::sources::roles_anywhere::{sign, RolesAnywhere};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SIGNATURES: usize = 300;
const PROFILES: usize = 100;
const DELAY_MS: u32 = 20;
const PASSES: usize = 5;
const TRUST_ANCHOR: &str =
    "arn:aws:rolesanywhere:eu-west-1:111122223333:trust-anchor/11111111-2222-3333-4444-555555555555";
const PROFILE: &str =
    "arn:aws:rolesanywhere:eu-west-1:111122223333:profile/66666666-7777-8888-9999-000000000000";
const ROLE: &str = "arn:aws:iam::111122223333:role/Server";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn python() -> PathBuf {
    let venv = root().join("target/venv/bin/python3");
    if venv.exists() {
        venv
    } else {
        PathBuf::from("python3")
    }
}

fn hierarchy(dir: &Path, kind: &str) {
    let o = Command::new(python())
        .arg(root().join("tests/fakes/pki.py"))
        .args(["hierarchy", "--dir"])
        .arg(dir)
        .args(["--kind", kind])
        .output()
        .expect("run tests/fakes/pki.py");
    assert!(
        o.status.success(),
        "pki.py: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn source(dir: &Path) -> RolesAnywhereSource {
    RolesAnywhereSource {
        certificate: dir.join("leaf.pem"),
        private_key: dir.join("leaf.key"),
        intermediates: Some(dir.join("chain.pem")),
        trust_anchor_arn: TRUST_ANCHOR.into(),
        profile_arn: PROFILE.into(),
        role_arn: ROLE.into(),
        duration_seconds: None,
        role_session_name: None,
    }
}

/// The median of `n` timings of `f`, after `n / 10` untimed runs.
fn median(n: usize, mut f: impl FnMut()) -> Duration {
    for _ in 0..n / 10 {
        f();
    }
    let mut times: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[n / 2]
}

fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

fn signing(tmp: &Path) {
    println!("| key | sign one request | read files + shared signer | parse (a renewal) |");
    println!("|---|---|---|---|");
    for kind in ["rsa2048", "p256", "p384"] {
        let dir = tmp.join(kind);
        hierarchy(&dir, kind);
        let src = source(&dir);
        let files = Files {
            certificate: &src.certificate,
            private_key: &src.private_key,
            intermediates: src.intermediates.as_deref(),
        };
        let contents = material::read(&files).unwrap();
        let m = Material::parse(&contents, &files).unwrap();
        let body = br#"{"profileArn":"x","roleArn":"y","trustAnchorArn":"z"}"#;
        let req = sign::Request {
            host: "rolesanywhere.eu-west-1.amazonaws.com",
            path: "/sessions",
            body,
            region: "eu-west-1",
        };
        let now = time::OffsetDateTime::now_utc();
        let signing = median(SIGNATURES, || {
            std::hint::black_box(sign::sign(&req, &m, now).unwrap());
        });
        let shared = RolesAnywhere::default();
        let cached = median(SIGNATURES, || {
            std::hint::black_box(shared.material(&src).unwrap());
        });
        let parse = median(SIGNATURES / 3, || {
            std::hint::black_box(Material::parse(&contents, &files).unwrap());
        });
        println!(
            "| {kind} | {} | {} | {} |",
            us(signing),
            us(cached),
            us(parse)
        );
    }
}

/// The fake on a free port, answering after `DELAY_MS`; its URL and CA bundle.
fn start_fake(tmp: &Path, anchor: &Path) -> (std::process::Child, String, String) {
    let mut child = Command::new(python())
        .arg(root().join("tests/fakes/rolesanywhere.py"))
        .args(["--port", "0", "--exit-after", "600", "--ca-dir"])
        .arg(tmp.join("tls"))
        .arg("--trust-anchor")
        .arg(anchor)
        .args(["--trust-anchor-arn", TRUST_ANCHOR, "--profile-arn", PROFILE])
        .args(["--role-arn", ROLE, "--delay-ms", &DELAY_MS.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the fake");
    let (mut url, mut ca) = (String::new(), String::new());
    let stdout = child.stdout.take().unwrap();
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        for word in line.split_whitespace() {
            if let Some(u) = word.strip_prefix("url=") {
                url = u.into();
            }
            if let Some(c) = word.strip_prefix("ca_bundle=") {
                ca = c.into();
            }
        }
        if line.trim() == "ready" {
            break;
        }
    }
    assert!(url.starts_with("https://"), "the fake did not start");
    (child, url, ca)
}

fn pass(tmp: &Path) {
    let dir = tmp.join("shared");
    hierarchy(&dir, "p256");
    let mut config = String::from(
        "[daemon]\nstate_dir = \"state\"\nrefresh_before = \"15m\"\n\n[[output]]\npath = \"credentials\"\n\n",
    );
    for i in 0..PROFILES {
        config += &format!(
            "[profile.p{i:03}]\ntrust_anchor_arn = \"{TRUST_ANCHOR}\"\nprofile_arn = \"{PROFILE}\"\n\
             role_arn = \"{ROLE}\"\ncertificate = \"shared/leaf.pem\"\nprivate_key = \"shared/leaf.key\"\n\
             intermediates = \"shared/chain.pem\"\n\n"
        );
    }
    std::fs::write(tmp.join("config.toml"), config).unwrap();
    let (mut fake, url, ca) = start_fake(tmp, &dir.join("root.pem"));
    let run = || {
        let t = Instant::now();
        let o = Command::new(env!("CARGO_BIN_EXE_awscredd"))
            .env_clear()
            .env("HOME", tmp)
            .env("AWS_ENDPOINT_URL_ROLESANYWHERE", &url)
            .env("SSL_CERT_FILE", &ca)
            .env("RUST_LOG", "warn")
            .arg("--config")
            .arg(tmp.join("config.toml"))
            .args(["once", "--force"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let took = t.elapsed();
        assert!(
            o.status.success(),
            "once: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        took
    };
    run(); // warm-up: page cache, the fake's first TLS handshakes
    let mut times: Vec<Duration> = (0..PASSES).map(|_| run()).collect();
    times.sort();
    let _ = fake.kill();
    let _ = fake.wait();
    println!(
        "\n{PROFILES} profiles sharing one P-256 certificate, fake answering after {DELAY_MS} ms: \
         `once --force` {:.2} s (median of {PASSES}; min {:.2} s, max {:.2} s); \
         {PROFILES} calls one after another would take at least {:.1} s",
        times[PASSES / 2].as_secs_f64(),
        times[0].as_secs_f64(),
        times[PASSES - 1].as_secs_f64(),
        (PROFILES as f64) * f64::from(DELAY_MS) / 1000.0
    );
}

fn main() {
    let tmp = tempfile::tempdir().unwrap();
    signing(tmp.path());
    pass(tmp.path());
}
