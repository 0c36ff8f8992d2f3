//! The optional `[server]`: every managed profile in the container-credentials format at
//! `/profiles/NAME`, behind an authorization token, so an AWS SDK given
//! `AWS_CONTAINER_CREDENTIALS_FULL_URI` and `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` refreshes
//! from the daemon with no code change. `/healthz` answers without a token.
//!
//! The token file is created with mode 0600 and a random token when missing, and kept across
//! restarts; it has no trailing newline, since the SDKs refuse a token that ends in one. The
//! credentials come from the files the daemon keeps; the server itself never fetches.

use crate::config::{Config, Server};
use crate::credentials::{format_utc, Credentials};
use crate::store::{atomic, CredentialsFile};
use std::io;
use std::path::Path;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Reads the token file, or creates it (0600) with a new random token.
pub fn load_or_create_token(path: &Path) -> io::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(t) => {
            if t.ends_with('\n') || t.ends_with('\r') {
                tracing::warn!(
                    path = %path.display(),
                    "the token file ends with a line break, which the AWS SDKs refuse in an Authorization header"
                );
            }
            let t = t.trim().to_string();
            if t.is_empty() {
                return Err(io::Error::other(format!(
                    "the token file `{}` is empty",
                    path.display()
                )));
            }
            Ok(t)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes).map_err(|e| io::Error::other(e.to_string()))?;
            let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            if let Some(dir) = path.parent() {
                atomic::create_dirs(dir)?;
            }
            atomic::write_atomic(
                path,
                token.as_bytes(),
                0o600,
                atomic::Ownership::default(),
                true,
            )?;
            tracing::info!(path = %path.display(), "created the credentials server's token file");
            Ok(token)
        }
        Err(e) => Err(e),
    }
}

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

/// Serves until `stop` turns true. `config` follows reloads (new profiles are served; a new
/// `listen` address needs a restart).
pub async fn serve(
    server: Server,
    config: watch::Receiver<Config>,
    mut stop: watch::Receiver<bool>,
) -> io::Result<()> {
    let token = {
        let path = server.token_file.clone();
        tokio::task::spawn_blocking(move || load_or_create_token(&path))
            .await
            .map_err(io::Error::other)??
    };
    let listener = TcpListener::bind(server.listen).await?;
    tracing::info!(listen = %server.listen, "serving credentials at /profiles/NAME");
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let config = config.clone();
                let token = token.clone();
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(Duration::from_secs(10), handle(stream, &config, &token)).await;
                });
            }
            _ = stop.wait_for(|s| *s) => return Ok(()),
        }
    }
}

async fn handle(
    mut stream: TcpStream,
    config: &watch::Receiver<Config>,
    token: &str,
) -> io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await?;
        if n == 0 || buf.len() > 16 * 1024 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buf);
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or("");
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let authorization = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("authorization"))
        .map(|(_, v)| v.trim().to_string());
    let path = target.split('?').next().unwrap_or("");
    let (status, body) = if method != "GET" {
        (405, error_json("MethodNotAllowed", "only GET is served"))
    } else if path == "/healthz" {
        (200, r#"{"status":"ok"}"#.to_string())
    } else if let Some(name) = path.strip_prefix("/profiles/") {
        if authorization.as_deref() != Some(token) {
            (
                401,
                error_json("Unauthorized", "a valid Authorization token is required"),
            )
        } else {
            let cfg = config.borrow().clone();
            profile_answer(&cfg, name).await
        }
    } else {
        (404, error_json("NotFound", "unknown path"))
    };
    let reason = match status {
        200 => "OK",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Service Unavailable",
    };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

fn error_json(code: &str, message: &str) -> String {
    serde_json::json!({"Code": code, "Message": message}).to_string()
}

async fn profile_answer(cfg: &Config, name: &str) -> (u16, String) {
    if !cfg.profiles.contains_key(name) {
        return (
            404,
            error_json("NotFound", &format!("`{name}` is not a managed profile")),
        );
    }
    let Some(output) = cfg.outputs_of(name).next() else {
        return (
            404,
            error_json("NotFound", &format!("`{name}` is not written to any file")),
        );
    };
    let file = CredentialsFile::from_output(output);
    let name_owned = name.to_string();
    let creds = tokio::task::spawn_blocking(move || file.read().ok()?.remove(&name_owned))
        .await
        .ok()
        .flatten();
    let now = OffsetDateTime::now_utc();
    match creds {
        Some(c) if c.expiration.is_none_or(|e| e > now) => (200, container_json(&c, now)),
        _ => (
            503,
            error_json(
                "NotReady",
                &format!("no valid credentials for `{name}` yet; see `awscredd status`"),
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::Secret;
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

    #[test]
    fn container_format() {
        let now = datetime!(2026-01-01 00:00 UTC);
        let c = Credentials {
            access_key_id: "A".into(),
            secret_access_key: Secret::new("S"),
            session_token: None,
            expiration: None,
        };
        let v: serde_json::Value = serde_json::from_str(&container_json(&c, now)).unwrap();
        assert_eq!(v["Token"], "");
        assert_eq!(v["Expiration"], "2026-01-01T00:15:00Z");
    }
}
