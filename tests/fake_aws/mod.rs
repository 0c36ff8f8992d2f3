//! A fake of the AWS IAM Identity Center APIs on 127.0.0.1, speaking their real wire format:
//! SSO OIDC (RegisterClient, StartDeviceAuthorization, CreateToken) and the SSO portal
//! (GetRoleCredentials) — restJson1 paths and fields, status codes, `x-amzn-ErrorType` headers
//! and error bodies as AWS sends them. Faults can be injected per operation: error statuses,
//! throttling, slow answers, `slow_down`; tokens can be revoked or expired.
//!
//! Used by the integration tests and by `cargo run --example demo`.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Operation names for counters and faults.
pub const REGISTER: &str = "RegisterClient";
pub const DEVICE_AUTH: &str = "StartDeviceAuthorization";
pub const TOKEN_DEVICE: &str = "CreateToken.device_code";
pub const TOKEN_REFRESH: &str = "CreateToken.refresh_token";
pub const ROLE_CREDENTIALS: &str = "GetRoleCredentials";

/// A fault for the next call of an operation.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer with this HTTP status and AWS error type (e.g. 500 `InternalServerException`).
    Error(u16, &'static str),
    /// Answer normally after this delay.
    Delay(Duration),
    /// CreateToken: answer `slow_down`.
    SlowDown,
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
    devices: HashMap<String, Device>,
    /// access token -> expiry (unix seconds)
    access_tokens: HashMap<String, i64>,
    /// refresh token -> client id
    refresh_tokens: HashMap<String, String>,
    counter: u64,
    last_user_code: Option<String>,
    /// (account, role) of every GetRoleCredentials that succeeded
    role_requests: Vec<(String, String)>,
}

/// The running fake. Stops when dropped.
pub struct FakeAws {
    pub url: String,
    state: Arc<Mutex<State>>,
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl FakeAws {
    /// Starts on a free port of 127.0.0.1.
    pub fn start() -> Self {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind 127.0.0.1"));
        let port = server
            .server_addr()
            .to_ip()
            .map(|a| a.port())
            .expect("ip address");
        let url = format!("http://127.0.0.1:{port}");
        let state = Arc::new(Mutex::new(State::default()));
        let (s, st, base) = (server.clone(), state.clone(), url.clone());
        let thread = std::thread::spawn(move || {
            for request in s.incoming_requests() {
                let st = st.clone();
                let base = base.clone();
                std::thread::spawn(move || handle(request, &st, &base));
            }
        });
        FakeAws {
            url,
            state,
            server,
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
        self.server.unblock();
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
}

fn json(status: u16, body: serde_json::Value) -> Answer {
    Answer {
        status,
        body: body.to_string(),
        error_type: None,
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

fn handle(mut request: tiny_http::Request, state: &Mutex<State>, base: &str) {
    let mut body = String::new();
    let _ = request.as_reader().read_to_string(&mut body);
    let method = request.method().as_str().to_string();
    let url = request.url().to_string();
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    let bearer = request
        .headers()
        .iter()
        .find(|h| h.field.equiv("x-amz-sso_bearer_token"))
        .map(|h| h.value.as_str().to_string());
    let req: serde_json::Value = serde_json::from_str(&body).unwrap_or(serde_json::Value::Null);
    let op = match (method.as_str(), path) {
        ("POST", "/client/register") => REGISTER,
        ("POST", "/device_authorization") => DEVICE_AUTH,
        ("POST", "/token") if req["grantType"] == "refresh_token" => TOKEN_REFRESH,
        ("POST", "/token") => TOKEN_DEVICE,
        ("GET", "/federation/credentials") => ROLE_CREDENTIALS,
        _ => "",
    };
    let fault = {
        let mut s = state.lock().unwrap();
        *s.calls.entry(op.to_string()).or_default() += 1;
        s.faults.get_mut(op).and_then(|q| q.pop_front())
    };
    let answer = match fault {
        Some(Fault::Delay(d)) => {
            std::thread::sleep(d);
            None
        }
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
    let answer = answer.unwrap_or_else(|| {
        let mut s = state.lock().unwrap();
        match op {
            REGISTER => register(&mut s, &req),
            DEVICE_AUTH => device_authorization(&mut s, &req, base),
            TOKEN_DEVICE => token_device(&mut s, &req),
            TOKEN_REFRESH => token_refresh(&mut s, &req),
            ROLE_CREDENTIALS => role_credentials(&mut s, query, bearer.as_deref()),
            _ => json(404, serde_json::json!({"message": "not found"})),
        }
    });
    let mut response = tiny_http::Response::from_string(answer.body)
        .with_status_code(answer.status)
        .with_header(
            tiny_http::Header::from_bytes("Content-Type", "application/json").expect("header"),
        )
        .with_header(
            tiny_http::Header::from_bytes(
                "x-amzn-RequestId",
                "00000000-fake-0000-0000-000000000000",
            )
            .expect("header"),
        );
    if let Some(t) = answer.error_type {
        response = response
            .with_header(tiny_http::Header::from_bytes("x-amzn-ErrorType", t).expect("header"));
    }
    let _ = request.respond(response);
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
    if s.settings.refresh_tokens {
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
    let expiration_ms = (unix_now() + s.settings.role_credentials_ttl) * 1000;
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
