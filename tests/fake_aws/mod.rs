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

fn new_client(s: &mut State) -> (String, String) {
    s.counter += 1;
    let id = format!("fake-client-{}", s.counter);
    let secret = format!("fake-client-secret-{}", s.counter);
    s.clients.insert(id.clone(), secret.clone());
    (id, secret)
}

fn new_tokens(s: &mut State, client_id: &str, ttl: i64) -> (String, String) {
    s.counter += 1;
    let access = format!("fake-access-token-{}", s.counter);
    let refresh = format!("fake-refresh-token-{}", s.counter);
    s.access_tokens.insert(access.clone(), unix_now() + ttl);
    s.refresh_tokens
        .insert(refresh.clone(), client_id.to_string());
    (access, refresh)
}

struct Answer {
    status: u16,
    body: String,
    error_type: Option<String>,
    content_type: &'static str,
}

fn json(status: u16, body: serde_json::Value) -> Answer {
    Answer {
        status,
        body: body.to_string(),
        error_type: None,
        content_type: "application/json",
    }
}

/// An SSO OIDC error as AWS sends it: type in `x-amzn-ErrorType`, OAuth code in the body.
fn oidc_error(status: u16, error_type: &str, code: &str, description: &str) -> Answer {
    Answer {
        status,
        body: serde_json::json!({"error": code, "error_description": description}).to_string(),
        error_type: Some(format!(
            "{error_type}:http://internal.amazon.com/coral/com.amazonaws.sso.oidc/"
        )),
        content_type: "application/json",
    }
}

/// An SSO portal error as AWS sends it: the type in the body's `__type`.
fn portal_error(status: u16, error_type: &str, message: &str) -> Answer {
    json(
        status,
        serde_json::json!({
            "message": message,
            "__type": format!("com.amazonaws.switchboard.portal#{error_type}"),
        }),
    )
}

fn oauth_code(error_type: &str) -> &'static str {
    match error_type {
        "InternalServerException" => "server_error",
        "SlowDownException" => "slow_down",
        "InvalidClientException" => "invalid_client",
        "InvalidGrantException" => "invalid_grant",
        "AccessDeniedException" => "access_denied",
        _ => "invalid_request",
    }
}

/// One HTTP/1.1 request as read off the wire.
struct HttpRequest {
    method: String,
    url: String,
    /// Lower-case name, value.
    headers: Vec<(String, String)>,
    body: String,
}

/// Reads requests off one connection and answers each, until the client closes it.
fn serve_connection(stream: TcpStream, state: &Mutex<State>, base: &str) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(120)));
    let _ = stream.set_nodelay(true);
    let Ok(writer) = stream.try_clone() else {
        return;
    };
    let mut writer = writer;
    let mut reader = BufReader::new(stream);
    while let Some(request) = read_request(&mut reader) {
        let (status, headers, body) = handle(&request, state, base);
        let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
        for (k, v) in &headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        // One write per answer: a head and a body in two segments would wait on the
        // client's delayed ACK (Nagle), 40 ms a request.
        head.push_str(&body);
        if writer.write_all(head.as_bytes()).is_err() || writer.flush().is_err() {
            return;
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// Reads one request (request line, headers, a `Content-Length` body); `None` at the end of
/// the connection or on anything unreadable.
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<HttpRequest> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let url = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end_matches(['\r', '\n']);
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body).ok()?;
    Some(HttpRequest {
        method,
        url,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
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

fn answer_headers(answer: &Answer) -> Vec<(String, String)> {
    let mut headers = vec![
        ("Content-Type".to_string(), answer.content_type.to_string()),
        (
            "x-amzn-RequestId".to_string(),
            "00000000-fake-0000-0000-000000000000".to_string(),
        ),
    ];
    if let Some(t) = &answer.error_type {
        headers.push(("x-amzn-ErrorType".to_string(), t.clone()));
    }
    headers
}

fn register(s: &mut State, req: &serde_json::Value) -> Answer {
    if req["clientType"] != "public" || !req["clientName"].is_string() {
        return oidc_error(
            400,
            "InvalidClientMetadataException",
            "invalid_client_metadata",
            "clientName and clientType=public are required",
        );
    }
    let (id, secret) = new_client(s);
    if req["scopes"].as_array().is_none_or(|a| a.is_empty()) {
        s.scopeless_clients.insert(id.clone());
    }
    let now = unix_now();
    json(
        200,
        serde_json::json!({
            "clientId": id,
            "clientSecret": secret,
            "clientIdIssuedAt": now,
            "clientSecretExpiresAt": now + s.settings.registration_ttl,
        }),
    )
}

fn client_ok(s: &State, req: &serde_json::Value) -> bool {
    let id = req["clientId"].as_str().unwrap_or("");
    s.clients.get(id).map(String::as_str) == req["clientSecret"].as_str()
}

fn device_authorization(s: &mut State, req: &serde_json::Value, base: &str) -> Answer {
    if !client_ok(s, req) {
        return oidc_error(
            401,
            "InvalidClientException",
            "invalid_client",
            "unknown client",
        );
    }
    if !req["startUrl"].is_string() {
        return oidc_error(
            400,
            "InvalidRequestException",
            "invalid_request",
            "startUrl is required",
        );
    }
    s.counter += 1;
    let device_code = format!("fake-device-code-{}", s.counter);
    let user_code = format!("FAKE-{:04}", s.counter);
    s.devices.insert(
        device_code.clone(),
        Device {
            client_id: req["clientId"].as_str().unwrap_or("").to_string(),
            user_code: user_code.clone(),
            expires: Instant::now() + Duration::from_secs(s.settings.device_expires_in as u64),
            polls: 0,
            approved: false,
            denied: false,
            used: false,
        },
    );
    s.last_user_code = Some(user_code.clone());
    json(
        200,
        serde_json::json!({
            "deviceCode": device_code,
            "userCode": user_code,
            "verificationUri": format!("{base}/device"),
            "verificationUriComplete": format!("{base}/device?user_code={user_code}"),
            "expiresIn": s.settings.device_expires_in,
            "interval": s.settings.interval,
        }),
    )
}

fn issue(s: &mut State, client_id: &str) -> Answer {
    let ttl = s.settings.access_token_ttl;
    let (access, refresh) = new_tokens(s, client_id, ttl);
    let mut body = serde_json::json!({
        "accessToken": access,
        "tokenType": "Bearer",
        "expiresIn": ttl,
    });
    if s.settings.refresh_tokens && !s.scopeless_clients.contains(client_id) {
        body["refreshToken"] = serde_json::Value::String(refresh);
    } else {
        s.refresh_tokens.remove(&refresh);
    }
    json(200, body)
}

fn token_device(s: &mut State, req: &serde_json::Value) -> Answer {
    if !client_ok(s, req) {
        return oidc_error(
            401,
            "InvalidClientException",
            "invalid_client",
            "unknown client",
        );
    }
    let code = req["deviceCode"].as_str().unwrap_or("").to_string();
    let approve_after = s.settings.approve_after_polls;
    let Some(d) = s.devices.get_mut(&code) else {
        return oidc_error(
            400,
            "InvalidGrantException",
            "invalid_grant",
            "unknown device code",
        );
    };
    if d.used {
        return oidc_error(
            400,
            "InvalidGrantException",
            "invalid_grant",
            "device code already used",
        );
    }
    if Instant::now() > d.expires {
        return oidc_error(
            400,
            "ExpiredTokenException",
            "expired_token",
            "device code expired",
        );
    }
    if d.denied {
        return oidc_error(
            400,
            "AccessDeniedException",
            "access_denied",
            "the user denied access",
        );
    }
    d.polls += 1;
    if approve_after.is_some_and(|n| d.polls >= n) {
        d.approved = true;
    }
    if !d.approved {
        return oidc_error(
            400,
            "AuthorizationPendingException",
            "authorization_pending",
            "Authorization is still pending",
        );
    }
    d.used = true;
    let client = d.client_id.clone();
    issue(s, &client)
}

fn token_refresh(s: &mut State, req: &serde_json::Value) -> Answer {
    if !client_ok(s, req) {
        return oidc_error(
            401,
            "InvalidClientException",
            "invalid_client",
            "unknown client",
        );
    }
    let token = req["refreshToken"].as_str().unwrap_or("");
    match s.refresh_tokens.get(token) {
        Some(client) if Some(client.as_str()) == req["clientId"].as_str() => {
            // Refresh tokens rotate: the old one is spent.
            let client = client.clone();
            s.refresh_tokens.remove(token);
            issue(s, &client)
        }
        _ => oidc_error(
            400,
            "InvalidGrantException",
            "invalid_grant",
            "Invalid refresh token",
        ),
    }
}

fn role_credentials(s: &mut State, query: &str, bearer: Option<&str>) -> Answer {
    let valid = bearer
        .and_then(|b| s.access_tokens.get(b))
        .is_some_and(|exp| *exp > unix_now());
    if !valid {
        return portal_error(
            401,
            "UnauthorizedException",
            "Session token not found or invalid",
        );
    }
    let params: HashMap<&str, &str> = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .collect();
    let (Some(account), Some(role)) = (params.get("account_id"), params.get("role_name")) else {
        return portal_error(
            400,
            "InvalidRequestException",
            "account_id and role_name are required",
        );
    };
    s.counter += 1;
    let n = s.counter;
    s.role_requests
        .push((account.to_string(), role.to_string()));
    // STS knows these keys, as AWS does: a chain from them is checked and is role chaining.
    s.sts_keys.insert(
        format!("ASIAFAKE{n:012}"),
        StsKey {
            secret: format!("fake-secret-{account}-{role}-{n}"),
            session_token: Some(format!("fake-session-token-{account}-{role}-{n}")),
            kind: KeyKind::RoleSession,
        },
    );
    let ttl = match s.settings.role_credentials_ttl_spread {
        Some((min, max)) if max > min => {
            // FNV-1a of the role's name: stable per role, spread between roles.
            let h = role.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
            min + (h % (max - min + 1) as u64) as i64
        }
        Some((min, _)) => min,
        None => s.settings.role_credentials_ttl,
    };
    let expiration_ms = (unix_now() + ttl) * 1000;
    json(
        200,
        serde_json::json!({
            "roleCredentials": {
                "accessKeyId": format!("ASIAFAKE{n:012}"),
                "secretAccessKey": format!("fake-secret-{account}-{role}-{n}"),
                "sessionToken": format!("fake-session-token-{account}-{role}-{n}"),
                "expiration": expiration_ms,
            }
        }),
    )
}

// ---------------------------------------------------------------------------------------------
// STS (awsQuery)

/// The XML namespace of every STS answer.
pub const STS_XMLNS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
const STS_REQUEST_ID: &str = "00000000-fake-0000-0000-0000000005f5";

/// One STS request as the fake saw it.
#[derive(Clone, Debug)]
pub struct StsRequest {
    /// The form's `Action`.
    pub action: String,
    /// Every form parameter, decoded (`Action` and `Version` too).
    pub params: BTreeMap<String, String>,
    /// The access key id of the SigV4 credential scope; `None`: the request was not signed.
    pub access_key_id: Option<String>,
    /// Signing region and service from the credential scope.
    pub region: Option<String>,
    pub service: Option<String>,
    /// The `X-Amz-Security-Token` header.
    pub security_token: Option<String>,
    /// Whether the signature matches the secret of a key the fake knows; `None`: unsigned, or
    /// signed with a key it does not know.
    pub signature_valid: Option<bool>,
    /// The HTTP status of the answer.
    pub status: u16,
    /// The access key id of the credentials this request was handed (200 answers only).
    pub issued: Option<String>,
}

impl StsRequest {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeyKind {
    /// An IAM user's long-term keys.
    LongTerm,
    /// GetSessionToken credentials.
    SessionToken,
    /// A role session (AssumeRole, AssumeRoleWithWebIdentity, SSO): AssumeRole from it is
    /// role chaining.
    RoleSession,
}

#[derive(Clone, Debug)]
struct StsKey {
    secret: String,
    session_token: Option<String>,
    kind: KeyKind,
}

/// A parsed STS request.
struct StsCall {
    action: String,
    params: BTreeMap<String, String>,
    access_key_id: Option<String>,
    date: Option<String>,
    region: Option<String>,
    service: Option<String>,
    signed_headers: Option<String>,
    signature: Option<String>,
    security_token: Option<String>,
    signature_valid: Option<bool>,
    method: String,
    url: String,
    /// Lower-case name, value.
    headers: Vec<(String, String)>,
    body: String,
}

impl StsCall {
    fn parse(method: &str, url: &str, headers: &[(String, String)], body: &str) -> Self {
        let headers: Vec<(String, String)> = headers.to_vec();
        let params: BTreeMap<String, String> = body
            .split('&')
            .filter(|kv| !kv.is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (form_decode(k), form_decode(v))
            })
            .collect();
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        // AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/SERVICE/aws4_request,
        // SignedHeaders=a;b, Signature=hex
        let mut call = StsCall {
            action: params.get("Action").cloned().unwrap_or_default(),
            params,
            access_key_id: None,
            date: None,
            region: None,
            service: None,
            signed_headers: None,
            signature: None,
            security_token: header("x-amz-security-token"),
            signature_valid: None,
            method: method.to_string(),
            url: url.to_string(),
            headers: headers.clone(),
            body: body.to_string(),
        };
        if let Some(auth) = header("authorization") {
            let rest = auth.strip_prefix("AWS4-HMAC-SHA256").unwrap_or(&auth);
            for part in rest.split(',') {
                let Some((k, v)) = part.trim().split_once('=') else {
                    continue;
                };
                match k {
                    "Credential" => {
                        let scope: Vec<&str> = v.split('/').collect();
                        call.access_key_id = scope.first().map(|s| s.to_string());
                        call.date = scope.get(1).map(|s| s.to_string());
                        call.region = scope.get(2).map(|s| s.to_string());
                        call.service = scope.get(3).map(|s| s.to_string());
                    }
                    "SignedHeaders" => call.signed_headers = Some(v.to_string()),
                    "Signature" => call.signature = Some(v.to_string()),
                    _ => {}
                }
            }
        }
        call
    }

    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// Sets `signature_valid` when the signing key is one the fake knows.
    fn check_signature(&mut self, s: &State) {
        let Some(key) = self.access_key_id.as_ref().and_then(|k| s.sts_keys.get(k)) else {
            return;
        };
        let expected = self.signature_with(&key.secret);
        self.signature_valid = Some(expected.is_some() && expected == self.signature);
    }

    /// The SigV4 signature of this request with `secret` (header-signed, as the SDKs do).
    fn signature_with(&self, secret: &str) -> Option<String> {
        let (date, region, service) = (
            self.date.as_deref()?,
            self.region.as_deref()?,
            self.service.as_deref()?,
        );
        let signed = self.signed_headers.as_deref()?;
        let header = |name: &str| -> Option<String> {
            let values: Vec<String> = self
                .headers
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, v)| {
                    v.trim()
                        .split(' ')
                        .filter(|w| !w.is_empty())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect();
            (!values.is_empty()).then(|| values.join(","))
        };
        let amz_date = header("x-amz-date")?;
        let mut canonical_headers = String::new();
        for name in signed.split(';') {
            canonical_headers.push_str(&format!("{name}:{}\n", header(name)?));
        }
        let payload_hash =
            header("x-amz-content-sha256").unwrap_or_else(|| hex(&sha256(self.body.as_bytes())));
        let (path, query) = self.url.split_once('?').unwrap_or((&self.url, ""));
        let mut query: Vec<&str> = query.split('&').filter(|q| !q.is_empty()).collect();
        query.sort_unstable();
        let canonical_request = format!(
            "{}\n{path}\n{}\n{canonical_headers}\n{signed}\n{payload_hash}",
            self.method,
            query.join("&")
        );
        let scope = format!("{date}/{region}/{service}/aws4_request");
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
            hex(&sha256(canonical_request.as_bytes()))
        );
        let mut k = hmac_sha256(format!("AWS4{secret}").as_bytes(), date.as_bytes());
        for part in [region, service, "aws4_request"] {
            k = hmac_sha256(&k, part.as_bytes());
        }
        Some(hex(&hmac_sha256(&k, string_to_sign.as_bytes())))
    }
}

/// Decodes one `application/x-www-form-urlencoded` name or value.
fn form_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An STS error as AWS sends it (awsQuery XML).
fn sts_error(status: u16, code: &str, message: &str) -> Answer {
    let kind = if status >= 500 { "Receiver" } else { "Sender" };
    Answer {
        status,
        body: format!(
            "<ErrorResponse xmlns=\"{STS_XMLNS}\">\n  <Error>\n    <Type>{kind}</Type>\n    \
             <Code>{code}</Code>\n    <Message>{}</Message>\n  </Error>\n  \
             <RequestId>{STS_REQUEST_ID}</RequestId>\n</ErrorResponse>\n",
            xml_escape(message)
        ),
        error_type: None,
        content_type: "text/xml",
    }
}

/// The message AWS sends with an error code, for injected faults.
fn injected_sts_message(code: &str) -> String {
    match code {
        "ValidationError" => ROLE_CHAINING_MESSAGE.into(),
        "AccessDenied" => "User: arn:aws:iam::123456789012:user/fake is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::444455556666:role/Fake".into(),
        "ExpiredToken" => "The security token included in the request is expired".into(),
        "MalformedPolicyDocument" => "Syntax errors in policy.".into(),
        "Throttling" => "Rate exceeded".into(),
        "InternalFailure" => "The request processing has failed because of an unknown error, exception or failure.".into(),
        "InvalidClientTokenId" => "The security token included in the request is invalid.".into(),
        "RegionDisabledException" => "STS is not activated in this region for account:123456789012. Your account administrator can activate STS in this region using the IAM Console.".into(),
        "InvalidIdentityToken" => "Couldn't retrieve verification key from your identity provider, please reference AssumeRoleWithWebIdentity documentation for requirements".into(),
        _ => "injected fault".into(),
    }
}

fn format_rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "2030-01-01T00:00:00Z".into())
}

/// The account and role name of `arn:aws:iam::ACCOUNT:role/PATH/NAME`.
fn split_role_arn(arn: &str) -> Option<(&str, &str)> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" || parts[2] != "iam" {
        return None;
    }
    let name = parts[5].strip_prefix("role/")?.rsplit('/').next()?;
    (!name.is_empty() && parts[4].len() == 12).then_some((parts[4], name))
}

/// DurationSeconds, checked against `min..=max`.
fn sts_duration(call: &StsCall, default: i64, max: i64) -> Result<i64, Answer> {
    let Some(d) = call.param("DurationSeconds") else {
        return Ok(default);
    };
    match d.parse::<i64>() {
        Ok(d) if d < 900 => Err(sts_error(
            400,
            "ValidationError",
            &format!("1 validation error detected: Value '{d}' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900"),
        )),
        Ok(d) if d > max => Err(sts_error(
            400,
            "ValidationError",
            &format!("The requested DurationSeconds exceeds the MaxSessionDuration set for this role ({max} seconds)."),
        )),
        Ok(d) => Ok(d),
        Err(_) => Err(sts_error(
            400,
            "ValidationError",
            "DurationSeconds must be a number",
        )),
    }
}

fn missing(field: &str) -> Answer {
    sts_error(
        400,
        "ValidationError",
        &format!("1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null"),
    )
}

/// The normal answer to an STS call, and the access key id it handed out.
fn sts_answer(s: &mut State, call: &StsCall) -> (Answer, Option<String>) {
    let action = call.action.as_str();
    if ![STS_ASSUME_ROLE, STS_SESSION_TOKEN, STS_WEB_IDENTITY].contains(&action) {
        return (
            sts_error(
                400,
                "InvalidAction",
                &format!("Could not find operation {action} for version 2011-06-15"),
            ),
            None,
        );
    }
    // Who signed it (AssumeRoleWithWebIdentity needs no signature).
    let signer = if action == STS_WEB_IDENTITY {
        None
    } else {
        let Some(akid) = call.access_key_id.as_deref() else {
            return (
                sts_error(
                    403,
                    "MissingAuthenticationToken",
                    "Request is missing Authentication Token",
                ),
                None,
            );
        };
        if call.service.as_deref() != Some("sts") {
            return (
                sts_error(
                    403,
                    "SignatureDoesNotMatch",
                    "Credential should be scoped to correct service: 'sts'.",
                ),
                None,
            );
        }
        if call.signature_valid == Some(false) {
            return (
                sts_error(
                    403,
                    "SignatureDoesNotMatch",
                    "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
                ),
                None,
            );
        }
        let known = s.sts_keys.get(akid).cloned();
        if let Some(k) = &known {
            if k.session_token.is_some() && k.session_token != call.security_token {
                return (
                    sts_error(
                        403,
                        "InvalidClientTokenId",
                        "The security token included in the request is invalid.",
                    ),
                    None,
                );
            }
        }
        // Unknown keys: temporary ones (ASIA..., with a token) count as a role session.
        Some(known.map(|k| k.kind).unwrap_or(
            if akid.starts_with("ASIA") && call.security_token.is_some() {
                KeyKind::RoleSession
            } else {
                KeyKind::LongTerm
            },
        ))
    };

    let mut result = String::new();
    let (duration, kind) = match action {
        STS_SESSION_TOKEN => {
            if signer != Some(KeyKind::LongTerm) || call.security_token.is_some() {
                return (
                    sts_error(
                        403,
                        "AccessDenied",
                        "Cannot call GetSessionToken with session credentials",
                    ),
                    None,
                );
            }
            if call.param("SerialNumber").is_some() {
                let code = call.param("TokenCode").unwrap_or("");
                if code.len() != 6 || !code.chars().all(|c| c.is_ascii_digit()) {
                    return (
                        sts_error(
                            403,
                            "AccessDenied",
                            "MultiFactorAuthentication failed with invalid MFA one time pass code.",
                        ),
                        None,
                    );
                }
            }
            match sts_duration(call, 43_200, 129_600) {
                Ok(d) => (d, KeyKind::SessionToken),
                Err(a) => return (a, None),
            }
        }
        _ => {
            let Some(role_arn) = call.param("RoleArn") else {
                return (missing("roleArn"), None);
            };
            let Some(session) = call.param("RoleSessionName") else {
                return (missing("roleSessionName"), None);
            };
            let Some((account, role)) = split_role_arn(role_arn) else {
                return (
                    sts_error(400, "ValidationError", &format!("{role_arn} is invalid")),
                    None,
                );
            };
            if action == STS_WEB_IDENTITY && call.param("WebIdentityToken").is_none() {
                return (missing("webIdentityToken"), None);
            }
            let max = s.settings.sts_max_session_duration;
            let d = match sts_duration(call, s.settings.sts_default_duration, max) {
                Ok(d) => d,
                Err(a) => return (a, None),
            };
            if signer == Some(KeyKind::RoleSession) && d > 3600 {
                return (
                    sts_error(400, "ValidationError", ROLE_CHAINING_MESSAGE),
                    None,
                );
            }
            s.counter += 1;
            let role_id = format!("AROAFAKE{:012}", s.counter);
            result.push_str(&format!(
                "<AssumedRoleUser><AssumedRoleId>{role_id}:{session}</AssumedRoleId>\
                 <Arn>arn:aws:sts::{account}:assumed-role/{role}/{session}</Arn></AssumedRoleUser>",
                session = xml_escape(session),
                role = xml_escape(role),
            ));
            if action == STS_WEB_IDENTITY {
                result.push_str(
                    "<SubjectFromWebIdentityToken>fake-subject</SubjectFromWebIdentityToken>\
                     <Audience>sts.amazonaws.com</Audience><Provider>fake-oidc-provider</Provider>",
                );
            }
            (d, KeyKind::RoleSession)
        }
    };
    s.counter += 1;
    let n = s.counter;
    let akid = format!("ASIASTS{n:013}");
    let secret = format!("fake-sts-secret-{n}");
    let token = format!("fake-sts-session-token-{n}");
    s.sts_keys.insert(
        akid.clone(),
        StsKey {
            secret: secret.clone(),
            session_token: Some(token.clone()),
            kind,
        },
    );
    let expiration = format_rfc3339(unix_now() + duration);
    let body = format!(
        "<{action}Response xmlns=\"{STS_XMLNS}\">\n  <{action}Result>\n    {result}\
         <Credentials>\n      <AccessKeyId>{akid}</AccessKeyId>\n      \
         <SecretAccessKey>{secret}</SecretAccessKey>\n      <SessionToken>{token}</SessionToken>\n      \
         <Expiration>{expiration}</Expiration>\n    </Credentials>\n  </{action}Result>\n  \
         <ResponseMetadata>\n    <RequestId>{STS_REQUEST_ID}</RequestId>\n  </ResponseMetadata>\n\
         </{action}Response>\n"
    );
    (
        Answer {
            status: 200,
            body,
            error_type: None,
            content_type: "text/xml",
        },
        Some(akid),
    )
}

// SHA-256 and HMAC-SHA256 (FIPS 180-4, RFC 2104), for checking SigV4 signatures without a
// crypto dependency.

const SHA256_K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

fn sha256(data: &[u8]) -> [u8; 32] {
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64) * 8).to_be_bytes());
    for chunk in msg.chunks(64) {
        let mut w = [0u32; 64];
        for (wi, bytes) in w.iter_mut().zip(chunk.chunks(4)) {
            *wi = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
        for (k, wi) in SHA256_K.iter().zip(w.iter()) {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(*k)
                .wrapping_add(*wi);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (x, v) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *x = x.wrapping_add(v);
        }
    }
    let mut out = [0u8; 32];
    for (o, v) in out.chunks_mut(4).zip(h) {
        o.copy_from_slice(&v.to_be_bytes());
    }
    out
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&sha256(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    inner.extend_from_slice(msg);
    let mut outer: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    outer.extend_from_slice(&sha256(&inner));
    sha256(&outer)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod fake_sts_selftest {
    use super::*;

    #[test]
    fn sha256_hmac_and_sigv4_match_published_vectors() {
        assert_eq!(
            hex(&sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            hex(&sha256(&[b'a'; 1000])),
            "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3"
        );
        // RFC 4231 test case 2.
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // The SigV4 test suite's get-vanilla request.
        let call = StsCall {
            action: String::new(),
            params: BTreeMap::new(),
            access_key_id: Some("AKIDEXAMPLE".into()),
            date: Some("20150830".into()),
            region: Some("us-east-1".into()),
            service: Some("service".into()),
            signed_headers: Some("host;x-amz-date".into()),
            signature: None,
            security_token: None,
            signature_valid: None,
            method: "GET".into(),
            url: "/".into(),
            headers: vec![
                ("host".into(), "example.amazonaws.com".into()),
                ("x-amz-date".into(), "20150830T123600Z".into()),
            ],
            body: String::new(),
        };
        assert_eq!(
            call.signature_with("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
                .as_deref(),
            Some("5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
        );
        assert_eq!(form_decode("a%3Ab+c%2F%"), "a:b c/%");
    }
}
