//! The optional `[server]`: every managed profile in the container-credentials format at
//! `/profiles/NAME`, behind an authorization token, so an AWS SDK given
//! `AWS_CONTAINER_CREDENTIALS_FULL_URI` and `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` refreshes
//! from the daemon with no code change. `/healthz` and `/readyz` ([`health`]) answer without
//! a token.
//!
//! [`http`] serves the connections under [`Limits`] (the `[metrics]` listener, [`metrics`],
//! and the `[imds]` endpoint, [`imds`], reuse it with their own routes); this module owns the routes, the token, and the start-up
//! checks: [`bind`]
//! fails, and `run` exits 78, when the address cannot be bound or the token file is empty.
//!
//! The token file is created with mode 0600 and a random token when missing, and kept across
//! restarts; it has no trailing newline, since the SDKs refuse a token that ends in one. A
//! reload (SIGHUP) reads it again, so a token rotated in the file is used without a restart
//! (a file that cannot be read then keeps the previous token, with a warning). It is
//! read up to [`TOKEN_MAX_BYTES`]; a token shorter than [`TOKEN_MIN_CHARS`] or a file readable
//! by group or others is a warning. The token is compared in constant time. The credentials
//! come from the files the daemon keeps; the server itself never fetches.

pub mod health;
pub mod http;
pub mod imds;
pub mod metrics;

pub use http::Limits;

use crate::config::{Config, Server};
use crate::credentials::{format_utc, Credentials, Secret};
use crate::files;
use crate::metrics::Metrics;
use crate::store::CredentialsFile;
use http::{Request, Response};
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, StatusCode};
use std::fmt;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// The largest token file read.
pub const TOKEN_MAX_BYTES: u64 = 64 * 1024;
/// Tokens shorter than this are guessable enough for a warning (a created one has 64).
pub const TOKEN_MIN_CHARS: usize = 32;

/// The server's authorization token.
pub struct Token(Secret);

impl Token {
    pub fn new(value: impl Into<String>) -> Self {
        Token(Secret::new(value))
    }

    /// Whether `presented` (an `Authorization` header's value) is the token, in time that
    /// does not depend on where they differ.
    pub fn matches(&self, presented: &[u8]) -> bool {
        self.0.expose().as_bytes().ct_eq(presented).into()
    }
}

/// Why the `[server]` cannot start: a configuration problem (`run` exits 78).
#[derive(Debug)]
pub enum StartError {
    Token {
        path: PathBuf,
        source: io::Error,
    },
    Bind {
        listen: SocketAddr,
        source: io::Error,
    },
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Token { path, source } => write!(
                f,
                "the [server] token file `{}` cannot be used: {source}",
                path.display()
            ),
            StartError::Bind { listen, source } => {
                write!(f, "the [server] cannot listen on {listen}: {source}")
            }
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::Token { source, .. } | StartError::Bind { source, .. } => Some(source),
        }
    }
}

/// A bound `[server]` with its token, ready for [`serve`].
pub struct Listener {
    tcp: TcpListener,
    listen: SocketAddr,
    token: Token,
    token_file: PathBuf,
}

/// Loads (or creates) the token and binds the address: everything that can fail at start.
pub async fn bind(server: &Server) -> Result<Listener, StartError> {
    let path = server.token_file.clone();
    let token = tokio::task::spawn_blocking(move || load_or_create_token(&path))
        .await
        .map_err(io::Error::other)
        .and_then(|t| t)
        .map_err(|source| StartError::Token {
            path: server.token_file.clone(),
            source,
        })?;
    let tcp = TcpListener::bind(server.listen)
        .await
        .map_err(|source| StartError::Bind {
            listen: server.listen,
            source,
        })?;
    Ok(Listener {
        tcp,
        listen: server.listen,
        token: Token::new(token),
        token_file: server.token_file.clone(),
    })
}

/// Serves until `stop` turns true. `config` follows reloads (new profiles are served; a new
/// `listen` address needs a restart).
pub async fn serve(
    listener: Listener,
    limits: Limits,
    config: watch::Receiver<Config>,
    health: Arc<Metrics>,
    stop: watch::Receiver<bool>,
) {
    tracing::info!(
        listen = %listener.listen,
        max_connections = limits.max_connections,
        "serving credentials at /profiles/NAME"
    );
    let token = Arc::new(RwLock::new(listener.token));
    tokio::spawn(reread_token_on_reload(
        config.clone(),
        Arc::clone(&token),
        listener.token_file,
        stop.clone(),
    ));
    let router = move |req: Request| {
        let token = Arc::clone(&token);
        let config = config.clone();
        let health = Arc::clone(&health);
        async move { route(req, &token, &config, &health).await }
    };
    http::serve(listener.tcp, router, limits, stop).await;
}

/// At every reload of the config, reads the token file again (the one configured now): a
/// token rotated in the file is used from then on; a file that cannot be read leaves the
/// previous token in use, with a warning.
async fn reread_token_on_reload(
    mut config: watch::Receiver<Config>,
    token: Arc<RwLock<Token>>,
    mut path: PathBuf,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            changed = config.changed() => if changed.is_err() { return },
            _ = stop.wait_for(|s| *s) => return,
        }
        if let Some(s) = &config.borrow().server {
            path.clone_from(&s.token_file);
        }
        let reading = path.clone();
        let read = tokio::task::spawn_blocking(move || load_or_create_token(&reading))
            .await
            .map_err(io::Error::other)
            .and_then(|t| t);
        match read {
            Ok(new) => {
                let mut current = token.write().unwrap_or_else(|p| p.into_inner());
                if !current.matches(new.as_bytes()) {
                    *current = Token::new(new);
                    tracing::info!(path = %path.display(), "the [server] token was read again: the new one is in use");
                }
            }
            Err(e) => tracing::warn!(
                path = %path.display(),
                "cannot read the [server] token file again, the previous token stays in use: {e}"
            ),
        }
    }
}

/// The credentials routes: `/healthz` and `/readyz`, and `/profiles/NAME` behind the token.
pub(crate) async fn route(
    req: Request,
    token: &RwLock<Token>,
    config: &watch::Receiver<Config>,
    health: &Metrics,
) -> Response {
    if req.method() != Method::GET {
        return answer(405, error_json("MethodNotAllowed", "only GET is served"));
    }
    let path = req.uri().path();
    if let Some(r) = health::route(path, health) {
        return r;
    }
    let Some(name) = path.strip_prefix("/profiles/") else {
        return answer(404, error_json("NotFound", "unknown path"));
    };
    let authorized = req.headers().get(AUTHORIZATION).is_some_and(|v| {
        token
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .matches(v.as_bytes())
    });
    if !authorized {
        return answer(
            401,
            error_json("Unauthorized", "a valid Authorization token is required"),
        );
    }
    let cfg = config.borrow().clone();
    let (status, body) = profile_answer(&cfg, name).await;
    answer(status, body)
}

/// A JSON answer.
pub(crate) fn answer(status: u16, body: String) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// Reads the token file, or creates it (0600) with a new random token.
pub fn load_or_create_token(path: &Path) -> io::Result<String> {
    match read_token_file(path) {
        Ok(t) => {
            if t.ends_with('\n') || t.ends_with('\r') {
                tracing::warn!(
                    path = %path.display(),
                    "the token file ends with a line break, which the AWS SDKs refuse in an Authorization header"
                );
            }
            let t = t.trim().to_string();
            if t.is_empty() {
                return Err(io::Error::other("it is empty"));
            }
            let chars = t.chars().count();
            if chars < TOKEN_MIN_CHARS {
                tracing::warn!(
                    path = %path.display(),
                    "the server token is short ({chars} characters): use at least {TOKEN_MIN_CHARS}, or delete the file to have a 64-character one created"
                );
            }
            Ok(t)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes).map_err(|e| io::Error::other(e.to_string()))?;
            let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            // Owned like its folder when root creates it (the app beside the output reads it).
            files::write_atomic_keeping_owner(path, token.as_bytes(), 0o600)?;
            tracing::info!(path = %path.display(), "created the credentials server's token file");
            Ok(token)
        }
        Err(e) => Err(e),
    }
}

/// The token file's text: a regular file (never a FIFO or a device, which could block), read
/// up to [`TOKEN_MAX_BYTES`]; a warning when group or others may read it.
fn read_token_file(path: &Path) -> io::Result<String> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(io::Error::other("it is not a regular file"));
    }
    warn_if_readable_by_others(path, &meta);
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(TOKEN_MAX_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > TOKEN_MAX_BYTES {
        return Err(io::Error::other(format!(
            "it is larger than {} KiB",
            TOKEN_MAX_BYTES / 1024
        )));
    }
    String::from_utf8(bytes).map_err(|_| io::Error::other("it is not UTF-8 text"))
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path, meta: &std::fs::Metadata) {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o044 != 0 {
        tracing::warn!(
            path = %path.display(),
            "the server token file is readable by group or others (mode {mode:04o}): `chmod 600` it unless an app of another user must read it"
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path, _meta: &std::fs::Metadata) {}

/// The container-credentials JSON for a set of credentials. Credentials without an expiry are
/// given one 15 minutes ahead, so the SDK asks again.
pub fn container_json(c: &Credentials, now: OffsetDateTime) -> String {
    let expiration = c.expiration.unwrap_or(now + time::Duration::minutes(15));
    serde_json::json!({
        "AccessKeyId": c.access_key_id,
        "SecretAccessKey": c.secret_access_key.expose(),
        "Token": c.session_token.as_ref().map(|t| t.expose()).unwrap_or(""),
        "Expiration": format_utc(expiration),
    })
    .to_string()
}

fn error_json(code: &str, message: &str) -> String {
    serde_json::json!({"Code": code, "Message": message}).to_string()
}

async fn profile_answer(cfg: &Config, name: &str) -> (u16, String) {
    match kept(cfg, name).await {
        Ok(c) => (200, container_json(&c, crate::clock::now())),
        Err(refused) => refused,
    }
}

/// The valid credentials the daemon keeps for the managed profile `name`, read from the first
/// output that holds it (the server itself never fetches); else the answer that says why
/// there are none: 404 (not a managed profile, or written nowhere) or 503 (none valid yet).
pub(crate) async fn kept(cfg: &Config, name: &str) -> Result<Credentials, (u16, String)> {
    if !cfg.profiles.contains_key(name) {
        return Err((
            404,
            error_json("NotFound", &format!("not a managed profile: `{name}`")),
        ));
    }
    let Some(output) = cfg.outputs_of(name).next() else {
        return Err((
            404,
            error_json("NotFound", &format!("`{name}` is not written to any file")),
        ));
    };
    let file = CredentialsFile::from_output(output);
    let name_owned = name.to_string();
    let creds = tokio::task::spawn_blocking(move || file.read().ok()?.remove(&name_owned))
        .await
        .ok()
        .flatten();
    let now = crate::clock::now();
    match creds {
        Some(c) if c.expiration.is_none_or(|e| e > now) => Ok(c),
        _ => Err((
            503,
            error_json(
                "NotReady",
                &format!("no valid credentials for `{name}` yet; see `awscredd status`"),
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn token_file_is_created_private_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/token");
        let t1 = load_or_create_token(&path).unwrap();
        assert_eq!(t1.len(), 64);
        assert!(!std::fs::read_to_string(&path).unwrap().ends_with('\n'));
        assert_eq!(load_or_create_token(&path).unwrap(), t1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    /// Root creating the token beside an app's output leaves it, and its folder, to the
    /// owner of the folder they are made in (the app that reads it).
    #[cfg(unix)]
    #[test]
    fn a_token_file_root_creates_is_owned_like_its_folder() {
        use std::os::unix::fs::MetadataExt;
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::chown(dir.path(), Some(4244), Some(4245)).unwrap();
        let path = dir.path().join("aws/token");
        load_or_create_token(&path).unwrap();
        for p in [dir.path().join("aws"), path] {
            let m = std::fs::metadata(&p).unwrap();
            assert_eq!((m.uid(), m.gid()), (4244, 4245), "{}", p.display());
        }
    }

    #[test]
    fn empty_or_oversized_token_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, " \n").unwrap();
        assert_eq!(
            load_or_create_token(&path).unwrap_err().to_string(),
            "it is empty"
        );
        std::fs::write(&path, vec![b'a'; 64 * 1024 + 1]).unwrap();
        let e = load_or_create_token(&path).unwrap_err().to_string();
        assert!(e.contains("64 KiB"), "{e}");
        assert!(load_or_create_token(dir.path()).is_err());
    }

    #[test]
    fn the_token_matches_only_itself() {
        let t = Token::new("0123456789abcdef0123456789abcdef");
        assert!(t.matches(b"0123456789abcdef0123456789abcdef"));
        assert!(!t.matches(b"0123456789abcdef0123456789abcdeF"));
        assert!(!t.matches(b"0123456789abcdef"));
        assert!(!t.matches(b""));
        assert_eq!(format!("{:?}", t.0), "** redacted **");
    }

    #[test]
    fn container_format() {
        let now = datetime!(2026-01-01 00:00 UTC);
        let c = Credentials {
            access_key_id: "A".into(),
            secret_access_key: Secret::new("S"),
            session_token: None,
            expiration: None,
            account_id: None,
        };
        let v: serde_json::Value = serde_json::from_str(&container_json(&c, now)).unwrap();
        assert_eq!(v["Token"], "");
        assert_eq!(v["Expiration"], "2026-01-01T00:15:00Z");
    }
}
