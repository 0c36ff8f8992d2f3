//! The optional `[imds]` endpoint of `run`: one managed profile served the way the EC2
//! instance metadata service (IMDSv2) serves role credentials, for programs that look nowhere
//! else (`AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:PORT`). Served by [`super::http`]
//! under the same [`Limits`] as the `[server]`; loopback only (the config refuses another
//! address), since anyone who reaches it gets credentials, as on EC2.
//!
//! This module owns the routes and the session tokens:
//! - `PUT /latest/api/token` with `X-aws-ec2-metadata-token-ttl-seconds` (1 to
//!   [`TTL_MAX_SECONDS`]) answers a new random token and echoes the header; a missing, zero,
//!   too large or non-numeric TTL is 400, and a `PUT` carrying `X-Forwarded-For` is 403 (a
//!   proxy must not fetch a token), as EC2 does.
//! - Every `GET` needs a live token in `X-aws-ec2-metadata-token` (401 otherwise, which also
//!   closes the connection: see [`super::http`]), then:
//!   `/latest/meta-data/iam/security-credentials/` lists the role (the profile's name),
//!   `.../security-credentials/NAME` answers its credentials, `.../security-credentials-extended/`
//!   the same with `AccountId`, `/latest/meta-data/placement/region` the profile's region.
//!
//! Tokens live in memory only, with their expiry; at most [`MAX_TOKENS`] at once: past that,
//! the expired ones go first, then the one that expires soonest (its client gets a 401 and,
//! as every SDK does, asks for a new token). The credentials are the ones the daemon keeps in
//! the profile's first output, read at each request (see [`super::kept`]): 503 until they are
//! valid. A reload (SIGHUP) serves the profile the new config names; a new `listen` needs a
//! restart, as for the `[server]`.

use super::http::{self, Limits, Request, Response};
use crate::config::{Config, Imds};
use crate::credentials::{format_utc, Credentials};
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use hyper::{Method, StatusCode};
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// The longest token lifetime a client may ask for (six hours, as on EC2).
pub const TTL_MAX_SECONDS: u32 = 21600;
/// Tokens kept at once (a few hundred kilobytes at most).
pub const MAX_TOKENS: usize = 4096;

const TOKEN_PATH: &str = "/latest/api/token";
const TTL_HEADER: &str = "x-aws-ec2-metadata-token-ttl-seconds";
const TOKEN_HEADER: &str = "x-aws-ec2-metadata-token";
const CREDENTIALS: &str = "/latest/meta-data/iam/security-credentials";
const CREDENTIALS_EXTENDED: &str = "/latest/meta-data/iam/security-credentials-extended";
const REGION: &str = "/latest/meta-data/placement/region";

/// The `[imds]` address cannot be bound: a configuration problem (`run` exits 78).
pub use super::http::BindError;

/// A bound `[imds]` endpoint, ready for [`serve`].
pub struct Listener {
    tcp: TcpListener,
    listen: SocketAddr,
    profile: String,
}

/// Binds the address: the one thing that can fail at start.
pub async fn bind(imds: &Imds) -> Result<Listener, BindError> {
    let tcp = TcpListener::bind(imds.listen)
        .await
        .map_err(|source| BindError {
            what: "[imds] endpoint",
            listen: imds.listen,
            source,
        })?;
    Ok(Listener {
        tcp,
        listen: imds.listen,
        profile: imds.profile.clone(),
    })
}

/// Serves until `stop` turns true. `config` follows reloads (the profile it names is served;
/// a config without `[imds]` any more serves the one it started with until the restart, as
/// the `[server]` goes on serving).
pub async fn serve(
    listener: Listener,
    limits: Limits,
    config: watch::Receiver<Config>,
    stop: watch::Receiver<bool>,
) {
    tracing::info!(
        listen = %listener.listen,
        profile = %listener.profile,
        "serving instance metadata (IMDSv2) credentials"
    );
    let tokens = Arc::new(Mutex::new(Tokens::default()));
    let first = Arc::new(listener.profile);
    let router = move |req: Request| {
        let tokens = Arc::clone(&tokens);
        let config = config.clone();
        let first = Arc::clone(&first);
        async move {
            let cfg = config.borrow().clone();
            let profile = cfg
                .imds
                .as_ref()
                .map_or(first.as_str(), |i| i.profile.as_str());
            route(&req, &tokens, &cfg, profile, crate::clock::now()).await
        }
    };
    http::serve(listener.tcp, router, limits, stop).await;
}

/// The session tokens handed out, by a hash of their value (so a lookup compares hashes,
/// never the secret), with their expiry.
#[derive(Default)]
struct Tokens {
    live: HashMap<String, OffsetDateTime>,
}

impl Tokens {
    /// A new random token valid for `ttl` seconds from `now`.
    fn issue(&mut self, ttl: u32, now: OffsetDateTime) -> io::Result<String> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| io::Error::other(e.to_string()))?;
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        if self.live.len() >= MAX_TOKENS {
            self.live.retain(|_, expires| *expires > now);
        }
        if self.live.len() >= MAX_TOKENS {
            let soonest = self
                .live
                .iter()
                .min_by_key(|(_, expires)| **expires)
                .map(|(k, _)| k.clone());
            if let Some(k) = soonest {
                self.live.remove(&k);
            }
        }
        let expires = now + time::Duration::seconds(i64::from(ttl));
        self.live
            .insert(crate::credentials::sha1_hex(&token), expires);
        Ok(token)
    }

    /// Whether `presented` is a token handed out and not expired at `now`.
    fn valid(&self, presented: &[u8], now: OffsetDateTime) -> bool {
        let Ok(text) = std::str::from_utf8(presented) else {
            return false;
        };
        self.live
            .get(&crate::credentials::sha1_hex(text))
            .is_some_and(|expires| *expires > now)
    }
}

/// The TTL a token `PUT` asks for, or why it is refused (400).
fn requested_ttl(req: &Request) -> Result<u32, &'static str> {
    let Some(v) = req.headers().get(TTL_HEADER) else {
        return Err("the X-aws-ec2-metadata-token-ttl-seconds header is missing");
    };
    match v.to_str().ok().and_then(|t| t.trim().parse::<u32>().ok()) {
        Some(ttl) if (1..=TTL_MAX_SECONDS).contains(&ttl) => Ok(ttl),
        _ => {
            Err("X-aws-ec2-metadata-token-ttl-seconds must be a number of seconds from 1 to 21600")
        }
    }
}

/// Every route; `profile` is the one served, `now` decides which tokens are live.
async fn route(
    req: &Request,
    tokens: &Mutex<Tokens>,
    cfg: &Config,
    profile: &str,
    now: OffsetDateTime,
) -> Response {
    if !local_host(req) {
        return text(
            403,
            "the Host header must name this endpoint by its address or as localhost (a request for another name is refused: DNS rebinding)",
        );
    }
    let path = req.uri().path();
    if req.method() == Method::PUT {
        return if path == TOKEN_PATH {
            put_token(req, tokens, now)
        } else {
            text(405, "only /latest/api/token is PUT")
        };
    }
    if req.method() != Method::GET {
        return text(405, "only GET and the token PUT are served");
    }
    if path == TOKEN_PATH {
        return text(405, "a token is asked for with PUT");
    }
    let live = req
        .headers()
        .get(TOKEN_HEADER)
        .is_some_and(|t| lock(tokens).valid(t.as_bytes(), now));
    if !live {
        return text(
            401,
            "a valid X-aws-ec2-metadata-token is required (PUT /latest/api/token)",
        );
    }
    if path == REGION {
        return match cfg.profiles.get(profile).and_then(|p| p.region.as_deref()) {
            Some(region) => text(200, region),
            None => text(404, "the profile has no region"),
        };
    }
    // The extended path first: the other is a prefix of it.
    for (prefix, extended) in [(CREDENTIALS_EXTENDED, true), (CREDENTIALS, false)] {
        let Some(rest) = path.strip_prefix(prefix) else {
            continue;
        };
        return match rest {
            "" | "/" => text(200, profile),
            role if role.strip_prefix('/') == Some(profile) => {
                credentials(cfg, profile, extended, now).await
            }
            _ => text(404, "no such role"),
        };
    }
    text(404, "not found")
}

/// Whether the request names this endpoint as a program on this host does: by an IP address
/// or `localhost` (or names nothing: HTTP/1.0). A web page whose name an attacker pointed at
/// 127.0.0.1 (DNS rebinding) sends its own name: the browser then treats the endpoint as the
/// page's origin and lets it `PUT` with the custom header, so that name is refused.
fn local_host(req: &Request) -> bool {
    let Some(host) = req.headers().get(hyper::header::HOST) else {
        return true;
    };
    let Ok(host) = host.to_str() else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        Some(v6) => {
            return v6
                .split_once(']')
                .is_some_and(|(ip, _)| ip.parse::<std::net::Ipv6Addr>().is_ok())
        }
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::Ipv4Addr>().is_ok()
}

/// `PUT /latest/api/token`.
fn put_token(req: &Request, tokens: &Mutex<Tokens>, now: OffsetDateTime) -> Response {
    if req.headers().contains_key("x-forwarded-for") {
        return text(
            403,
            "a token is not handed out through a proxy (X-Forwarded-For)",
        );
    }
    let ttl = match requested_ttl(req) {
        Ok(ttl) => ttl,
        Err(why) => return text(400, why),
    };
    match lock(tokens).issue(ttl, now) {
        Ok(token) => {
            let mut r = text(200, &token);
            r.headers_mut()
                .insert(HeaderName::from_static(TTL_HEADER), HeaderValue::from(ttl));
            r
        }
        Err(e) => {
            tracing::warn!("cannot make an [imds] token: {e}");
            text(500, "no token could be made")
        }
    }
}

/// The credentials answer of `profile` (with `AccountId` when `extended`).
async fn credentials(cfg: &Config, profile: &str, extended: bool, now: OffsetDateTime) -> Response {
    let creds = match super::kept(cfg, profile).await {
        Ok(c) => c,
        Err((status, body)) => {
            let mut r = super::answer(status, body);
            r.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            return r;
        }
    };
    let record = recorded(cfg, profile, &creds).await;
    let account = record
        .account_id
        .or_else(|| cfg.profiles.get(profile)?.source.account_id())
        .filter(|_| extended);
    let last_updated = record.last_refresh.unwrap_or(now);
    text(
        200,
        &credentials_json(&creds, last_updated, account.as_deref(), now),
    )
}

/// What the state file says of the credentials served, when they are the ones awscredd
/// wrote last for the profile (another tool's keys in the file get neither).
#[derive(Default)]
struct Recorded {
    last_refresh: Option<OffsetDateTime>,
    account_id: Option<String>,
}

async fn recorded(cfg: &Config, profile: &str, creds: &Credentials) -> Recorded {
    let state = crate::store::state::StateFile::in_dir(&cfg.daemon.state_dir);
    let (name, key) = (profile.to_string(), creds.access_key_id.clone());
    let found = tokio::task::spawn_blocking(move || {
        state
            .load()
            .profiles
            .remove(&name)
            .filter(|p| p.wrote(&key))
    })
    .await
    .ok()
    .flatten();
    let Some(p) = found else {
        return Recorded::default();
    };
    let rfc3339 = &time::format_description::well_known::Rfc3339;
    Recorded {
        last_refresh: p
            .last_refresh
            .and_then(|t| OffsetDateTime::parse(&t, rfc3339).ok()),
        account_id: p.account_id,
    }
}

/// The IMDS credentials document. Credentials without an expiry are given one 15 minutes
/// ahead, so the SDK asks again; without a session token, `Token` is empty.
pub fn credentials_json(
    c: &Credentials,
    last_updated: OffsetDateTime,
    account_id: Option<&str>,
    now: OffsetDateTime,
) -> String {
    let expiration = c.expiration.unwrap_or(now + time::Duration::minutes(15));
    let mut doc = serde_json::json!({
        "Code": "Success",
        "LastUpdated": format_utc(last_updated),
        "Type": "AWS-HMAC",
        "AccessKeyId": c.access_key_id,
        "SecretAccessKey": c.secret_access_key.expose(),
        "Token": c.session_token.as_ref().map(|t| t.expose()).unwrap_or(""),
        "Expiration": format_utc(expiration),
    });
    if let (Some(account), Some(map)) = (account_id, doc.as_object_mut()) {
        map.insert("AccountId".into(), account.into());
    }
    doc.to_string()
}

/// A plain text answer, as IMDS gives them.
fn text(status: u16, body: &str) -> Response {
    let mut response = Response::new(body.to_string());
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

fn lock(tokens: &Mutex<Tokens>) -> std::sync::MutexGuard<'_, Tokens> {
    tokens.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn tokens_expire_and_only_issued_ones_are_valid() {
        let now = datetime!(2026-01-01 00:00 UTC);
        let mut t = Tokens::default();
        let a = t.issue(10, now).unwrap();
        assert_eq!(a.len(), 64);
        assert!(t.valid(a.as_bytes(), now + time::Duration::seconds(9)));
        assert!(!t.valid(a.as_bytes(), now + time::Duration::seconds(10)));
        assert!(!t.valid(b"0000", now));
        assert!(!t.valid(&[0xff, 0xfe], now));
        let b = t.issue(10, now).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn past_the_bound_the_soonest_to_expire_token_goes() {
        let now = datetime!(2026-01-01 00:00 UTC);
        let mut t = Tokens::default();
        let first = t.issue(5, now).unwrap();
        let long: Vec<String> = (1..MAX_TOKENS)
            .map(|_| t.issue(TTL_MAX_SECONDS, now).unwrap())
            .collect();
        assert_eq!(t.live.len(), MAX_TOKENS);
        let newest = t.issue(60, now).unwrap();
        assert_eq!(t.live.len(), MAX_TOKENS);
        assert!(
            !t.valid(first.as_bytes(), now),
            "the soonest to expire went"
        );
        assert!(t.valid(newest.as_bytes(), now));
        assert!(long.iter().all(|k| t.valid(k.as_bytes(), now)));
        // Expired ones go first, all at once.
        let later = now + time::Duration::seconds(61);
        t.issue(60, later).unwrap();
        assert_eq!(t.live.len(), MAX_TOKENS);
        assert!(!t.valid(newest.as_bytes(), later));
    }

    #[test]
    fn the_ttl_header_is_checked() {
        let req = |ttl: Option<&str>| {
            let mut b = hyper::Request::builder()
                .method(Method::PUT)
                .uri(TOKEN_PATH);
            if let Some(v) = ttl {
                b = b.header(TTL_HEADER, v);
            }
            b.body(()).unwrap()
        };
        assert_eq!(requested_ttl(&req(Some("1"))), Ok(1));
        assert_eq!(requested_ttl(&req(Some("21600"))), Ok(21600));
        for bad in [
            None,
            Some("0"),
            Some("21601"),
            Some("-1"),
            Some("ten"),
            Some(""),
        ] {
            assert!(requested_ttl(&req(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_credentials_document() {
        let now = datetime!(2026-01-01 00:00 UTC);
        let c = Credentials {
            access_key_id: "ASIA1".into(),
            secret_access_key: crate::credentials::Secret::new("S"),
            session_token: None,
            expiration: None,
            account_id: None,
        };
        let v: serde_json::Value =
            serde_json::from_str(&credentials_json(&c, now, Some("123456789012"), now)).unwrap();
        assert_eq!(v["Code"], "Success");
        assert_eq!(v["Type"], "AWS-HMAC");
        assert_eq!(v["Token"], "");
        assert_eq!(v["LastUpdated"], "2026-01-01T00:00:00Z");
        assert_eq!(v["Expiration"], "2026-01-01T00:15:00Z");
        assert_eq!(v["AccountId"], "123456789012");
        let v: serde_json::Value =
            serde_json::from_str(&credentials_json(&c, now, None, now)).unwrap();
        assert!(v.get("AccountId").is_none());
    }
}
