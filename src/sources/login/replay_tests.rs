//! AWS's own conformance cases for the `aws login` credentials provider, replayed against
//! [`LoginSources`]: `tests/data/login-provider-test-cases.json` (the AWS SDKs' cases, from
//! smithy-rs; `tests/data/README.md` says what differs from the originals). Each case's cache
//! file goes into a temporary login cache; the Sign-In token endpoint is a canned HTTP server
//! on 127.0.0.1 that answers as the case says (500 to a call the case does not expect) and
//! records every request. Then each outcome is checked: the credentials, the error, the cache
//! file afterwards; and every request: its grant, and a DPoP proof that verifies with the
//! cache's key.
//!
//! Time: the cases' clock is 2025-11-19T00:00:00Z. awscredd's login source reads the wall
//! clock, so a renewed expiry is checked as the SDKs compute it: the time of the request plus
//! the answer's `expiresIn` (the case's expiry minus the case's clock).

use super::*;
use crate::credentials::{parse_rfc3339, Credentials};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use time::OffsetDateTime;

const CASES: &str = include_str!("../../../tests/data/login-provider-test-cases.json");

/// What the SDKs' harnesses answer to a case's `responseCode`: smithy-rs sends this body, the
/// Kotlin SDK none. Both are replayed.
const FAILED_BODIES: [&str; 2] = [r#"{"error":"refresh_failed"}"#, ""];

/// One request the canned endpoint received.
struct Request {
    path: String,
    dpop: Option<String>,
    body: Value,
}

/// A token endpoint with canned answers (status, body), given in order.
struct Canned {
    url: String,
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn read_request(conn: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = conn.read(&mut chunk).ok().filter(|n| *n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.lines();
    let path = lines.next()?.split(' ').nth(1)?.to_string();
    let header = |name: &str| {
        head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    };
    let length: usize = header("content-length")?.parse().ok()?;
    while buf.len() < head_end + length {
        let n = conn.read(&mut chunk).ok().filter(|n| *n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(Request {
        path,
        dpop: header("dpop"),
        body: serde_json::from_slice(&buf[head_end..head_end + length]).ok()?,
    })
}

impl Canned {
    fn start(answers: Vec<(u16, String)>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (record, stopped) = (seen.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut answers = answers.into_iter();
            for conn in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                conn.set_read_timeout(Some(Duration::from_secs(10))).ok();
                let Some(request) = read_request(&mut conn) else {
                    continue;
                };
                record.lock().unwrap().push(request);
                let (status, body) = answers
                    .next()
                    .unwrap_or((500, r#"{"error":"no_mock"}"#.to_string()));
                let reason = match status {
                    200 => "OK",
                    400 => "Bad Request",
                    _ => "Internal Server Error",
                };
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Canned {
            url: format!("http://{addr}"),
            addr,
            seen,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Canned {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop, which then sees `stop`.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A login source whose profile `signin` is the sign-in `arn` (and `extra` config lines),
/// its login cache `cache` (file name -> content) in a temporary folder, and its token
/// endpoint a [`Canned`] one.
struct Replay {
    _dir: tempfile::TempDir,
    cache: LoginCache,
    server: Canned,
    sources: LoginSources,
    profile: Profile,
}

impl Replay {
    fn new(arn: &str, extra: &str, files: &[(&str, &Value)], answers: Vec<(u16, String)>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let cache = LoginCache {
            dir: dir.path().join("cache"),
        };
        std::fs::create_dir(&cache.dir).unwrap();
        for (name, contents) in files {
            std::fs::write(cache.dir.join(name), serde_json::to_vec(contents).unwrap()).unwrap();
        }
        let server = Canned::start(answers);
        let text = format!(
            "[daemon]\nstate_dir = 'state'\n[[output]]\npath = 'credentials'\n\
             [profile.signin]\nlogin_session = '{arn}'\nendpoint_url = '{}'\n{extra}",
            server.url
        );
        let (cfg, report) =
            crate::config::parse_str(&text, &dir.path().join("config.toml"), &|_| None);
        let cfg = cfg.unwrap_or_else(|| panic!("{:?}", report.diagnostics));
        let mut sources = LoginSources::new(&cfg, LoginMode::Never, |_| None);
        sources.cache = Some(cache.clone());
        let profile = cfg.profiles["signin"].clone();
        Replay {
            _dir: dir,
            cache,
            server,
            sources,
            profile,
        }
    }

    fn requests(&self) -> std::sync::MutexGuard<'_, Vec<Request>> {
        self.server.seen.lock().unwrap()
    }

    fn file(&self, name: &str) -> Option<Vec<u8>> {
        std::fs::read(self.cache.dir.join(name)).ok()
    }
}

fn base64_json(part: &str) -> Value {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// The request carries a DPoP proof of `dpop_pem`'s key for `POST {url}/v1/token`, whose
/// signature verifies with the public key it names.
fn assert_proof(what: &str, request: &Request, dpop_pem: &str, url: &str) {
    use aws_lc_rs::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    assert_eq!(request.path, "/v1/token", "{what}");
    let proof = request
        .dpop
        .as_deref()
        .unwrap_or_else(|| panic!("{what}: no DPoP"));
    let parts: Vec<&str> = proof.split('.').collect();
    assert_eq!(parts.len(), 3, "{what}: {proof}");
    let (header, claims) = (base64_json(parts[0]), base64_json(parts[1]));
    let key = super::dpop::DpopKey::from_pem(dpop_pem).unwrap();
    assert_eq!(
        header["jwk"],
        key.jwk(),
        "{what}: the proof names the cache's key"
    );
    assert_eq!(header["alg"], "ES256", "{what}");
    assert_eq!(claims["htm"], "POST", "{what}");
    assert_eq!(claims["htu"], format!("{url}/v1/token"), "{what}");
    let coordinate = |c: &str| b64.decode(header["jwk"][c].as_str().unwrap()).unwrap();
    let point = [&[4u8][..], &coordinate("x"), &coordinate("y")].concat();
    let signature = b64.decode(parts[2]).unwrap();
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point)
        .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
        .unwrap_or_else(|_| panic!("{what}: the proof's signature does not verify"));
}

/// What awscredd says for each failure case (the cases only say "error"): the kind of error
/// (what the daemon does about it) and words of its message.
fn expected_error(case: &str) -> (ErrorKind, &'static str) {
    match case {
        "Failure - No cache file" => (ErrorKind::NeedsLogin, "no `aws login` sign-in of"),
        "Failure - Missing accessToken" => (ErrorKind::Failed, "no `accessToken` object"),
        "Failure - Missing refreshToken" => (ErrorKind::Failed, "no `refreshToken`"),
        "Failure - Missing clientId in cache" => (ErrorKind::Failed, "no `clientId`"),
        "Failure - Missing dpopKey" => (ErrorKind::Failed, "no `dpopKey`"),
        "Failure - Expired token triggers failed refresh" => {
            (ErrorKind::Failed, "CreateOAuth2Token failed: HTTP 400")
        }
        other => panic!("a failure case this table does not know: {other}"),
    }
}

/// For credentials a refresh returned: the case's clock, and when the request was sent and
/// answered.
type Renewed = (OffsetDateTime, OffsetDateTime, OffsetDateTime);

/// An expiry of a case: as the cache holds it, or (for credentials a refresh returned, made
/// between `sent` and `back`) the case's lifetime counted from the request.
fn assert_expiry(what: &str, actual: OffsetDateTime, expected: &Value, renewed: Option<Renewed>) {
    let expected = parse_rfc3339(expected.as_str().unwrap()).unwrap();
    match renewed {
        None => assert_eq!(actual, expected, "{what}"),
        Some((clock, sent, back)) => {
            let lifetime = expected - clock;
            // Written in whole seconds: up to one second before the request.
            let earliest = sent + lifetime - time::Duration::seconds(1);
            assert!(
                actual >= earliest && actual <= back + lifetime,
                "{what}: {actual} is not {lifetime} after the request ({sent} to {back})"
            );
        }
    }
}

/// The credentials of a `credentials` outcome.
fn assert_credentials(what: &str, c: &Credentials, outcome: &Value, renewed: Option<Renewed>) {
    assert_eq!(c.access_key_id, outcome["accessKeyId"], "{what}");
    assert_eq!(
        c.secret_access_key.expose(),
        outcome["secretAccessKey"],
        "{what}"
    );
    let token = c.session_token.as_ref().map(|t| t.expose());
    assert_eq!(token, outcome["sessionToken"].as_str(), "{what}");
    assert_eq!(
        c.account_id.as_deref(),
        outcome["accountId"].as_str(),
        "{what}"
    );
    let expiry = c.expiration.unwrap();
    assert_expiry(what, expiry, &outcome["expiresAt"], renewed);
}

/// The files of a `cacheContents` outcome: every field as the SDKs write it, and no other
/// (the Kotlin SDK's check).
fn assert_cache_files(what: &str, r: &Replay, outcome: &Value, renewed: Option<Renewed>) {
    let expected = outcome.as_object().unwrap();
    for (file, want) in expected.iter().filter(|(k, _)| *k != "result") {
        let bytes = r.file(file).unwrap_or_else(|| panic!("{what}: no {file}"));
        let mut have: Value = serde_json::from_slice(&bytes).unwrap();
        let written = have["accessToken"]["expiresAt"].take();
        let written = parse_rfc3339(written.as_str().unwrap()).unwrap();
        assert_expiry(what, written, &want["accessToken"]["expiresAt"], renewed);
        let mut want = want.clone();
        want["accessToken"]["expiresAt"] = Value::Null;
        assert_eq!(have, want, "{what}: the cache file afterwards");
    }
}

/// Replays one case with `failed_body` as the body of any `responseCode` answer.
async fn replay(case: &Value, arn: &str, clock: OffsetDateTime, failed_body: &str) {
    let name = case["documentation"].as_str().unwrap();
    let what = format!("{name} (failed body {failed_body:?})");
    let calls = case["mockApiCalls"].as_array().cloned().unwrap_or_default();
    let answers = calls
        .iter()
        .map(|c| match c["responseCode"].as_u64() {
            Some(code) => (u16::try_from(code).unwrap(), failed_body.to_string()),
            None => (200, c["response"]["tokenOutput"].to_string()),
        })
        .collect();
    let files: Vec<(&str, &Value)> = case["cacheContents"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    let r = Replay::new(arn, "", &files, answers);
    let before: Vec<Option<Vec<u8>>> = files.iter().map(|(f, _)| r.file(f)).collect();

    let sent = crate::clock::now();
    let got = r.sources.credentials(&r.profile, arn).await;
    let back = crate::clock::now();

    let requests = r.requests();
    assert_eq!(requests.len(), calls.len(), "{what}: the calls made");
    for (call, request) in calls.iter().zip(requests.iter()) {
        let sent_input = request.body.get("tokenInput").unwrap_or(&request.body);
        for (k, v) in call["request"]["tokenInput"].as_object().unwrap() {
            assert_eq!(&sent_input[k], v, "{what}: the request's {k}");
        }
        let (_, cached) = files[0];
        assert_proof(
            &what,
            request,
            cached["dpopKey"].as_str().unwrap(),
            &r.server.url,
        );
    }
    let renewed = (!calls.is_empty()).then_some((clock, sent, back));
    for outcome in case["outcomes"].as_array().unwrap() {
        match outcome["result"].as_str().unwrap() {
            "credentials" => {
                let c = got.as_ref().unwrap_or_else(|e| panic!("{what}: {e:?}"));
                assert_credentials(&what, c, outcome, renewed);
            }
            "error" => {
                let e = got
                    .as_ref()
                    .err()
                    .unwrap_or_else(|| panic!("{what}: no error"));
                let (kind, says) = expected_error(name);
                assert_eq!(e.kind, kind, "{what}: {}", e.message);
                assert!(e.message.contains(says), "{what}: {}", e.message);
                let after: Vec<Option<Vec<u8>>> = files.iter().map(|(f, _)| r.file(f)).collect();
                assert_eq!(after, before, "{what}: the cache is left as it was");
            }
            "cacheContents" => assert_cache_files(&what, &r, outcome, renewed),
            other => panic!("{what}: an outcome this replay does not know: {other}"),
        }
    }
}

#[tokio::test]
async fn the_aws_sdks_login_provider_cases_pass() {
    let doc: Value = serde_json::from_str(CASES).unwrap();
    let arn = doc["loginSession"].as_str().unwrap();
    let clock = parse_rfc3339(doc["clock"].as_str().unwrap()).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 8, "every case of the file is replayed");
    for case in cases {
        // Each case's config is one profile with that sign-in.
        let config = case["configContents"].as_str().unwrap();
        assert!(
            config.contains(&format!("\nlogin_session = {arn}\n")),
            "{config}"
        );
        let fails = case["mockApiCalls"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c.get("responseCode").is_some()));
        let bodies: &[&str] = if fails { &FAILED_BODIES } else { &[""] };
        for body in bodies {
            replay(case, arn, clock, body).await;
        }
    }
}

/// The `login_session` case of the SDKs' profile-provider tests: its ARN (an account of 13
/// digits) is refused by awscredd's config check; its cache (`identityToken` instead of
/// `idToken`, a `dpopKey` whose line breaks are written `\n`) is read, and its key signs a
/// refresh that keeps every field of the file as it was.
#[tokio::test]
async fn the_aws_sdks_login_session_profile_case_is_read_and_refreshed() {
    let doc: Value = serde_json::from_str(CASES).unwrap();
    let case = &doc["profileProviderCase"];
    let config = case["config"].as_str().unwrap();
    let arn = config
        .lines()
        .find_map(|l| l.strip_prefix("login_session = "))
        .unwrap();
    let problem = crate::config::login_arn_problem(arn).unwrap_or_default();
    assert!(problem.contains("is not the ARN"), "{problem:?}");

    let contents = &case["cacheContents"];
    let file = case["cacheFile"].as_str().unwrap();
    let output = &contents["accessToken"];
    let token_output = serde_json::json!({
        "accessToken": {"accessKeyId": "ASIARENEWED", "secretAccessKey": "renewed-secret",
            "sessionToken": "renewed-token"},
        "refreshToken": "<rotated-refresh-token>",
        "expiresIn": 900,
    });
    let r = Replay::new(
        "arn:aws:iam::012345678901:user/Admin",
        "region = 'us-east-2'",
        &[(file, contents)],
        vec![(200, token_output.to_string())],
    );
    assert_eq!(r.cache.path(arn), r.cache.dir.join(file));
    let mut regional = r.profile.clone();
    regional.endpoint_url = None;
    assert_eq!(
        r.sources.endpoint(&regional, None).base,
        "https://us-east-2.signin.aws.amazon.com"
    );

    let login = r.cache.load(arn).unwrap().unwrap();
    let ok = &case["result"]["Ok"];
    assert_eq!(login.credentials.access_key_id, ok["access_key_id"]);
    assert_eq!(
        login.credentials.secret_access_key.expose(),
        ok["secret_access_key"]
    );
    let token = login.credentials.session_token.as_ref().map(|t| t.expose());
    assert_eq!(token, ok["session_token"].as_str());
    assert_eq!(
        login.credentials.account_id.as_deref(),
        ok["account_id"].as_str()
    );
    // The file's expiresAt (the case's `expiry` is two hours before it: see tests/data/README.md).
    let expiry = parse_rfc3339(output["expiresAt"].as_str().unwrap()).unwrap();
    assert_eq!(login.credentials.expiration, Some(expiry));
    assert_eq!(login.identity, None, "no idToken: no identity");

    // Its credentials (2022) have expired: renewed with its key.
    let got = r.sources.credentials(&r.profile, arn).await.unwrap();
    assert_eq!(got.access_key_id, "ASIARENEWED");
    assert_eq!(got.account_id.as_deref(), Some("012345678901"));
    let requests = r.requests();
    assert_eq!(requests.len(), 1);
    let input = requests[0]
        .body
        .get("tokenInput")
        .unwrap_or(&requests[0].body);
    assert_eq!(input["refreshToken"], contents["refreshToken"]);
    assert_eq!(input["clientId"], contents["clientId"]);
    let pem = contents["dpopKey"].as_str().unwrap();
    assert!(!pem.contains('\n') && pem.contains("\\n"), "{pem}");
    assert_proof("profile case", &requests[0], pem, &r.server.url);
    let after: Value = serde_json::from_slice(&r.file(file).unwrap()).unwrap();
    let mut want = contents.clone();
    want["accessToken"] = after["accessToken"].clone();
    want["refreshToken"] = Value::from("<rotated-refresh-token>");
    assert_eq!(
        after, want,
        "every other field as it was, the dpopKey as written"
    );
    assert_eq!(after["accessToken"]["accessKeyId"], "ASIARENEWED");
    assert_eq!(after["accessToken"]["accountId"], output["accountId"]);
}
