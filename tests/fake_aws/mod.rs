//! A fake of the AWS IAM Identity Center APIs on 127.0.0.1, speaking their real wire format:
//! SSO OIDC (RegisterClient, StartDeviceAuthorization, CreateToken) and the SSO portal
//! (GetRoleCredentials) — restJson1 paths and fields, status codes, `x-amzn-ErrorType` headers
//! and error bodies as AWS sends them. Faults can be injected per operation: error statuses,
//! throttling, slow answers, `slow_down`; tokens can be revoked or expired.
//!
//! Beside it, on the same server, a fake STS (awsQuery: `POST /` with a form body, XML
//! answers): AssumeRole, GetSessionToken and AssumeRoleWithWebIdentity. It checks SigV4
//! signatures made with keys it knows (the ones it issued, SSO role credentials, keys added with
//! [`FakeAws::add_sts_key`]), refuses role chaining beyond one hour as AWS does, and records
//! every request ([`FakeAws::sts_requests`]): action, form, signing key, region and service.
//!
//! Used by the integration tests and by `cargo run --example demo`.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

mod http;
mod sigv4;
mod sso;
mod sts;
use http::*;
use sigv4::*;
use sso::*;
use sts::*;
pub use sts::{StsRequest, STS_XMLNS};

/// Operation names for counters and faults.
pub const REGISTER: &str = "RegisterClient";
pub const DEVICE_AUTH: &str = "StartDeviceAuthorization";
pub const TOKEN_DEVICE: &str = "CreateToken.device_code";
pub const TOKEN_REFRESH: &str = "CreateToken.refresh_token";
pub const ROLE_CREDENTIALS: &str = "GetRoleCredentials";
/// STS operations (the form's `Action`).
pub const STS_ASSUME_ROLE: &str = "AssumeRole";
pub const STS_SESSION_TOKEN: &str = "GetSessionToken";
pub const STS_WEB_IDENTITY: &str = "AssumeRoleWithWebIdentity";

/// The message AWS sends with a role-chaining request for more than one hour.
pub const ROLE_CHAINING_MESSAGE: &str =
    "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.";

/// A fault for the next call of an operation.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer with this HTTP status and AWS error type (e.g. 500 `InternalServerException`).
    Error(u16, &'static str),
    /// Answer normally after this delay.
    Delay(Duration),
    /// CreateToken: answer `slow_down`.
    SlowDown,
    /// Answer 200 with a truncated body (broken JSON, or broken XML for STS).
    Malformed,
    /// Answer with this status and body, as is (`text/xml` for STS, else JSON).
    Raw(u16, String),
}

/// How the fake behaves; change with [`FakeAws::configure`].
#[derive(Clone, Debug)]
pub struct Settings {
    /// Approve a device code on its Nth poll by itself; `None`: only [`FakeAws::approve`].
    pub approve_after_polls: Option<u32>,
    pub device_expires_in: i64,
    pub interval: i64,
    pub access_token_ttl: i64,
    /// Issue refresh tokens (rotated on every use).
    pub refresh_tokens: bool,
    pub registration_ttl: i64,
    pub role_credentials_ttl: i64,
    /// GetRoleCredentials: when set, `(min, max)` seconds instead, the same for a role every
    /// time and spread over the range between roles (`bench/scale.sh`'s steady state).
    pub role_credentials_ttl_spread: Option<(i64, i64)>,
    /// STS: lifetime of issued credentials when the request has no DurationSeconds.
    pub sts_default_duration: i64,
    /// STS AssumeRole: the role's MaxSessionDuration.
    pub sts_max_session_duration: i64,
    /// Every answer waits this long first (a real region's round trip).
    pub latency: Duration,
    /// GetRoleCredentials: past this many requests in flight, answer 429
    /// `TooManyRequestsException`, as a throttled portal does.
    pub portal_max_in_flight: Option<usize>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            approve_after_polls: None,
            device_expires_in: 600,
            interval: 1,
            access_token_ttl: 3600,
            refresh_tokens: true,
            registration_ttl: 90 * 86_400,
            role_credentials_ttl: 3600,
            role_credentials_ttl_spread: None,
            sts_default_duration: 3600,
            sts_max_session_duration: 43_200,
            latency: Duration::ZERO,
            portal_max_in_flight: None,
        }
    }
}

struct Device {
    client_id: String,
    user_code: String,
    expires: Instant,
    polls: u32,
    approved: bool,
    denied: bool,
    used: bool,
}

#[derive(Default)]
struct State {
    settings: Settings,
    calls: BTreeMap<String, usize>,
    faults: HashMap<String, VecDeque<Fault>>,
    clients: HashMap<String, String>,
    /// Clients registered without scopes (the AWS CLI's older per-profile SSO form): as AWS
    /// does, they get no refresh token.
    scopeless_clients: std::collections::HashSet<String>,
    devices: HashMap<String, Device>,
    /// access token -> expiry (unix seconds)
    access_tokens: HashMap<String, i64>,
    /// refresh token -> client id
    refresh_tokens: HashMap<String, String>,
    counter: u64,
    last_user_code: Option<String>,
    /// (account, role) of every GetRoleCredentials that succeeded
    role_requests: Vec<(String, String)>,
    /// Every STS request, in the order they arrived.
    sts_requests: Vec<StsRequest>,
    /// Access key id -> secret (and session token) of the keys whose signatures STS checks.
    sts_keys: HashMap<String, StsKey>,
    /// GetRoleCredentials requests being answered now, and how many were throttled.
    portal_in_flight: usize,
    portal_throttled: usize,
}

/// The running fake. Stops when dropped.
pub struct FakeAws {
    pub url: String,
    state: Arc<Mutex<State>>,
    addr: std::net::SocketAddr,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl FakeAws {
    /// Starts on a free port of 127.0.0.1. Every connection gets a thread of its own and is
    /// kept alive as long as the client wants, as real endpoints do for the SDK's pooled
    /// connections.
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local address");
        let url = format!("http://127.0.0.1:{}", addr.port());
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, base, stopping) = (state.clone(), url.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let st = st.clone();
                let base = base.clone();
                std::thread::spawn(move || serve_connection(stream, &st, &base));
            }
        });
        FakeAws {
            url,
            state,
            addr,
            stop,
            thread: Some(thread),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    pub fn configure(&self, f: impl FnOnce(&mut Settings)) {
        self.with(|s| f(&mut s.settings));
    }

    /// How many times an operation was called (faulted calls included).
    pub fn calls(&self, op: &str) -> usize {
        self.with(|s| s.calls.get(op).copied().unwrap_or(0))
    }

    /// Queues a fault for the next call of `op`.
    pub fn inject(&self, op: &str, fault: Fault) {
        self.with(|s| s.faults.entry(op.to_string()).or_default().push_back(fault));
    }

    /// GetRoleCredentials answered 429 because too many were in flight.
    pub fn portal_throttled(&self) -> usize {
        self.with(|s| s.portal_throttled)
    }

    /// Approves every pending device code.
    pub fn approve(&self) {
        self.with(|s| s.devices.values_mut().for_each(|d| d.approved = true));
    }

    /// Denies every pending device code.
    pub fn deny(&self) {
        self.with(|s| s.devices.values_mut().for_each(|d| d.denied = true));
    }

    /// The user code of the last device authorization.
    pub fn last_user_code(&self) -> Option<String> {
        self.with(|s| s.last_user_code.clone())
    }

    /// Revokes every access and refresh token (the SSO session ended).
    /// Refuses every refresh token issued so far (the SSO session ended); access tokens stay
    /// valid until they expire.
    pub fn revoke_refresh_tokens(&self) {
        self.with(|s| s.refresh_tokens.clear());
    }

    pub fn revoke_all(&self) {
        self.with(|s| {
            s.access_tokens.clear();
            s.refresh_tokens.clear();
        });
    }

    /// Every (account, role) the portal handed credentials for.
    pub fn role_requests(&self) -> Vec<(String, String)> {
        self.with(|s| s.role_requests.clone())
    }

    /// Every STS request so far (faulted and refused ones too), in order.
    pub fn sts_requests(&self) -> Vec<StsRequest> {
        self.with(|s| s.sts_requests.clone())
    }

    /// Lets STS check signatures made with these long-term keys (as if they were an IAM
    /// user's): a request signed with `access_key_id` and another secret is refused with
    /// `SignatureDoesNotMatch`.
    pub fn add_sts_key(&self, access_key_id: &str, secret_access_key: &str) {
        self.with(|s| {
            s.sts_keys.insert(
                access_key_id.to_string(),
                StsKey {
                    secret: secret_access_key.to_string(),
                    session_token: None,
                    kind: KeyKind::LongTerm,
                },
            )
        });
    }

    /// Registers a client and issues a token directly, as if someone had signed in; returns
    /// (client id, client secret, access token, refresh token).
    pub fn issue_token(&self, ttl_secs: i64) -> (String, String, String, String) {
        self.with(|s| {
            let (id, secret) = new_client(s);
            let (access, refresh) = new_tokens(s, &id, ttl_secs);
            (id, secret, access, refresh)
        })
    }
}

impl Drop for FakeAws {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn handle(
    request: &HttpRequest,
    state: &Mutex<State>,
    base: &str,
) -> (u16, Vec<(String, String)>, String) {
    let body = request.body.clone();
    let method = request.method.clone();
    let url = request.url.clone();
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    let bearer = request
        .headers
        .iter()
        .find(|(k, _)| k == "x-amz-sso_bearer_token")
        .map(|(_, v)| v.clone());
    let req: serde_json::Value = serde_json::from_str(&body).unwrap_or(serde_json::Value::Null);
    // The verification page: opening it (a browser, or `curl`) approves that sign-in, or every
    // pending one without a `user_code`.
    if method == "GET" && path == "/device" {
        let code = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("user_code="))
            .map(str::to_string);
        let mut s = state.lock().unwrap();
        let mut approved = 0;
        for d in s.devices.values_mut() {
            if code.as_ref().is_none_or(|c| *c == d.user_code) && !d.denied {
                d.approved = true;
                approved += 1;
            }
        }
        return (
            200,
            vec![("content-type".into(), "text/plain".into())],
            format!("fake IAM Identity Center: approved {approved} sign-in(s)\n"),
        );
    }
    // STS (awsQuery): every action is a form POSTed to `/`.
    let sts = (method == "POST" && path == "/").then(|| {
        let mut call = StsCall::parse(&method, &url, &request.headers, &body);
        call.check_signature(&state.lock().unwrap());
        call
    });
    let op = match (method.as_str(), path) {
        ("POST", "/client/register") => REGISTER,
        ("POST", "/device_authorization") => DEVICE_AUTH,
        ("POST", "/token") if req["grantType"] == "refresh_token" => TOKEN_REFRESH,
        ("POST", "/token") => TOKEN_DEVICE,
        ("GET", "/federation/credentials") => ROLE_CREDENTIALS,
        ("POST", "/") => match sts.as_ref().map(|c| c.action.as_str()) {
            Some(STS_ASSUME_ROLE) => STS_ASSUME_ROLE,
            Some(STS_SESSION_TOKEN) => STS_SESSION_TOKEN,
            Some(STS_WEB_IDENTITY) => STS_WEB_IDENTITY,
            _ => "",
        },
        _ => "",
    };
    let fault = {
        let mut s = state.lock().unwrap();
        *s.calls.entry(op.to_string()).or_default() += 1;
        s.faults.get_mut(op).and_then(|q| q.pop_front())
    };
    // A portal that throttles past its limit of requests in flight.
    let (latency, limit) = {
        let s = state.lock().unwrap();
        (s.settings.latency, s.settings.portal_max_in_flight)
    };
    let mut counted = false;
    if op == ROLE_CREDENTIALS {
        let mut s = state.lock().unwrap();
        if limit.is_some_and(|max| s.portal_in_flight >= max) {
            s.portal_throttled += 1;
            drop(s);
            std::thread::sleep(latency);
            let a = portal_error(429, "TooManyRequestsException", "Rate exceeded");
            return (a.status, answer_headers(&a), a.body);
        }
        s.portal_in_flight += 1;
        counted = true;
    }
    std::thread::sleep(latency);
    let answer = match fault {
        Some(Fault::Delay(d)) => {
            std::thread::sleep(d);
            None
        }
        Some(Fault::Error(status, code)) if sts.is_some() => {
            Some(sts_error(status, code, &injected_sts_message(code)))
        }
        Some(Fault::Malformed) if sts.is_some() => Some(Answer {
            status: 200,
            body: format!(
                "<{op}Response xmlns=\"{STS_XMLNS}\"><{op}Result><Credentials><AccessKeyId>ASIA"
            ),
            error_type: None,
            content_type: "text/xml",
        }),
        Some(Fault::Raw(status, body)) => Some(Answer {
            status,
            body,
            error_type: None,
            content_type: if sts.is_some() {
                "text/xml"
            } else {
                "application/json"
            },
        }),
        Some(Fault::Malformed) => Some(Answer {
            status: 200,
            body: "{\"roleCredentials\": {\"accessKeyId\": ".into(),
            error_type: None,
            content_type: "application/json",
        }),
        Some(Fault::Error(status, error_type)) if op == ROLE_CREDENTIALS => {
            Some(portal_error(status, error_type, "injected fault"))
        }
        Some(Fault::Error(status, error_type)) => Some(oidc_error(
            status,
            error_type,
            oauth_code(error_type),
            "injected fault",
        )),
        Some(Fault::SlowDown) => Some(oidc_error(400, "SlowDownException", "slow_down", "")),
        None => None,
    };
    let mut issued = None;
    let answer = answer.unwrap_or_else(|| {
        let mut s = state.lock().unwrap();
        if let Some(call) = &sts {
            let (answer, key) = sts_answer(&mut s, call);
            issued = key;
            return answer;
        }
        match op {
            REGISTER => register(&mut s, &req),
            DEVICE_AUTH => device_authorization(&mut s, &req, base),
            TOKEN_DEVICE => token_device(&mut s, &req),
            TOKEN_REFRESH => token_refresh(&mut s, &req),
            ROLE_CREDENTIALS => role_credentials(&mut s, query, bearer.as_deref()),
            _ => json(404, serde_json::json!({"message": "not found"})),
        }
    });
    if let Some(call) = sts {
        let mut s = state.lock().unwrap();
        s.sts_requests.push(StsRequest {
            action: call.action,
            params: call.params,
            access_key_id: call.access_key_id,
            region: call.region,
            service: call.service,
            security_token: call.security_token,
            signature_valid: call.signature_valid,
            status: answer.status,
            issued,
        });
    }
    if counted {
        state.lock().unwrap().portal_in_flight -= 1;
    }
    (answer.status, answer_headers(&answer), answer.body)
}
