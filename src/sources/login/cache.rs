//! The AWS CLI's login cache (`aws login`): `$AWS_LOGIN_CACHE_DIRECTORY`, else
//! `~/.aws/login/cache/`, one file per sign-in named `hex(sha256(ARN)).json`, with the fields
//! the CLI writes (`accessToken` {accessKeyId, secretAccessKey, sessionToken, accountId,
//! expiresAt}, `tokenType`, `clientId`, `refreshToken`, `idToken`, `dpopKey`).
//!
//! Unlike the SSO cache, a file here that cannot be read is an error naming the file and what
//! is wrong (nobody can sign in for the daemon by itself). A rewrite keeps every field as it
//! was, unknown ones included, and replaces only `accessToken` and `refreshToken`, as botocore
//! does; it is atomic, mode 0600, and made under the per-sign-in lock `.NAME.lock` beside it.

use super::dpop::DpopKey;
use crate::credentials::{format_utc, parse_rfc3339, Credentials, Secret};
use crate::files;
use crate::paths::{self, Env};
use base64::Engine as _;
use serde_json::{Map, Value};
use std::path::PathBuf;
use time::OffsetDateTime;

/// The login cache folder.
#[derive(Clone, Debug)]
pub struct LoginCache {
    pub dir: PathBuf,
}

/// One sign-in as the cache holds it. `fields` is the whole file (every field kept on
/// rewrite); the others are what awscredd reads from it.
#[derive(Clone)]
pub struct CachedLogin {
    fields: Map<String, Value>,
    pub credentials: Credentials,
    pub account_id: Option<String>,
    pub client_id: String,
    pub refresh_token: Secret,
    dpop_pem: Secret,
    /// The `idToken`'s claims `sub` (the identity) and `iat` (when the sign-in began), if it
    /// has an `idToken` that can be read.
    pub identity: Option<String>,
    pub signed_in_at: Option<OffsetDateTime>,
    /// `signInRegion`, which newer CLIs write: where the sign-in was made.
    pub sign_in_region: Option<String>,
}

impl std::fmt::Debug for CachedLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedLogin")
            .field("credentials", &self.credentials)
            .field("client_id", &self.client_id)
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

/// How long one sign-in lasts at most (the service ends it then: `TOKEN_EXPIRED`).
pub const SIGN_IN_LIFETIME: time::Duration = time::Duration::hours(12);

/// `hex(sha256(s))`.
pub fn sha256_hex(s: &str) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, s.as_bytes());
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The claims of a JWT, not verified (the CLI does not verify them either: the token came from
/// the service over TLS, and only names who signed in).
pub fn jwt_claims(jwt: &str) -> Option<Map<String, Value>> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

/// The identity (`sub`, else `session_arn`) and the start of the sign-in (`iat`) of an
/// `idToken`.
pub fn id_token_claims(jwt: &str) -> (Option<String>, Option<OffsetDateTime>) {
    let Some(c) = jwt_claims(jwt) else {
        return (None, None);
    };
    let identity = c
        .get("sub")
        .or_else(|| c.get("session_arn"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let iat = c
        .get("iat")
        .and_then(Value::as_i64)
        .and_then(crate::credentials::from_unix_utc);
    (identity, iat)
}

fn string(m: &Map<String, Value>, key: &str) -> Result<String, String> {
    match m.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Value::String(_)) => Err(format!("its `{key}` is empty")),
        Some(_) => Err(format!("its `{key}` is not a string")),
        None => Err(format!("it has no `{key}`")),
    }
}

/// Reads a cache file's content (see [`CachedLogin`]); why not, in words.
pub fn parse(bytes: &[u8]) -> Result<CachedLogin, String> {
    let fields: Map<String, Value> = match serde_json::from_slice(bytes) {
        Ok(Value::Object(m)) => m,
        Ok(_) => return Err("it is not a JSON object".into()),
        Err(e) if e.is_eof() => return Err(format!("it is cut short (not valid JSON: {e})")),
        Err(e) => return Err(format!("it is not valid JSON ({e})")),
    };
    let Some(Value::Object(at)) = fields.get("accessToken") else {
        return Err("it has no `accessToken` object".into());
    };
    let expires_at = string(at, "expiresAt")
        .map_err(|e| format!("accessToken: {e}"))
        .and_then(|t| parse_rfc3339(&t).map_err(|e| format!("accessToken.expiresAt: {e}")))?;
    let credentials = Credentials {
        access_key_id: string(at, "accessKeyId").map_err(|e| format!("accessToken: {e}"))?,
        secret_access_key: Secret::new(
            string(at, "secretAccessKey").map_err(|e| format!("accessToken: {e}"))?,
        ),
        session_token: Some(Secret::new(
            string(at, "sessionToken").map_err(|e| format!("accessToken: {e}"))?,
        )),
        expiration: Some(expires_at),
        account_id: at
            .get("accountId")
            .and_then(Value::as_str)
            .map(str::to_string),
    };
    let dpop_pem = Secret::new(string(&fields, "dpopKey")?);
    let (identity, signed_in_at) = fields
        .get("idToken")
        .and_then(Value::as_str)
        .map_or((None, None), id_token_claims);
    Ok(CachedLogin {
        account_id: credentials.account_id.clone(),
        client_id: string(&fields, "clientId")?,
        refresh_token: Secret::new(string(&fields, "refreshToken")?),
        sign_in_region: fields
            .get("signInRegion")
            .and_then(Value::as_str)
            .map(str::to_string),
        credentials,
        dpop_pem,
        identity,
        signed_in_at,
        fields,
    })
}

impl CachedLogin {
    /// The sign-in's DPoP key; why it cannot be used, in words.
    pub fn dpop_key(&self) -> Result<DpopKey, String> {
        DpopKey::from_pem(self.dpop_pem.expose()).map_err(|e| format!("its `dpopKey`: {e}"))
    }

    /// When the sign-in ends: 12 hours after it began, if the `idToken` says when (and that is
    /// a time that can be written: not past the year 9999).
    pub fn ends_at(&self) -> Option<OffsetDateTime> {
        let end = self.signed_in_at?.unix_timestamp() + SIGN_IN_LIFETIME.whole_seconds();
        crate::credentials::from_unix_utc(end)
    }

    /// This sign-in with the credentials and refresh token a refresh returned: every other
    /// field as it was.
    pub fn renewed(&self, credentials: Credentials, refresh_token: Secret) -> CachedLogin {
        let mut next = self.clone();
        next.credentials = credentials;
        next.refresh_token = refresh_token;
        next
    }

    /// A new sign-in (`awscredd login --profile`), in the fields and order `aws login` writes.
    pub fn new_sign_in(
        credentials: Credentials,
        account_id: &str,
        client_id: &str,
        refresh_token: Secret,
        id_token: &str,
        dpop_pem: Secret,
    ) -> CachedLogin {
        let mut fields = Map::new();
        fields.insert("accessToken".into(), Value::Object(Map::new()));
        fields.insert("tokenType".into(), Value::from("aws_sigv4"));
        fields.insert("clientId".into(), Value::from(client_id));
        fields.insert("refreshToken".into(), Value::Null);
        fields.insert("idToken".into(), Value::from(id_token));
        fields.insert("dpopKey".into(), Value::Null);
        let (identity, signed_in_at) = id_token_claims(id_token);
        CachedLogin {
            fields,
            credentials,
            account_id: Some(account_id.to_string()),
            client_id: client_id.to_string(),
            refresh_token,
            dpop_pem,
            identity,
            signed_in_at,
            sign_in_region: None,
        }
    }

    /// The file's content: the fields read, with `accessToken`, `refreshToken` (and `dpopKey`)
    /// set from this sign-in.
    pub(crate) fn to_json(&self) -> Result<Vec<u8>, String> {
        let mut fields = self.fields.clone();
        let mut at = match fields.get("accessToken") {
            Some(Value::Object(m)) => m.clone(),
            _ => Map::new(),
        };
        let c = &self.credentials;
        at.insert("accessKeyId".into(), Value::from(c.access_key_id.as_str()));
        at.insert(
            "secretAccessKey".into(),
            Value::from(c.secret_access_key.expose()),
        );
        let token = c.session_token.as_ref().map_or("", |t| t.expose());
        at.insert("sessionToken".into(), Value::from(token));
        if let Some(a) = &self.account_id {
            at.insert("accountId".into(), Value::from(a.as_str()));
        }
        let expires = c.expiration.map(format_utc).unwrap_or_default();
        at.insert("expiresAt".into(), Value::from(expires));
        fields.insert("accessToken".into(), Value::Object(at));
        fields.insert(
            "refreshToken".into(),
            Value::from(self.refresh_token.expose()),
        );
        fields.insert("dpopKey".into(), Value::from(self.dpop_pem.expose()));
        serde_json::to_vec(&Value::Object(fields)).map_err(|e| e.to_string())
    }
}

impl LoginCache {
    /// `$AWS_LOGIN_CACHE_DIRECTORY`, else `~/.aws/login/cache` (the home folder found as the
    /// SDKs find it).
    pub fn default_location(env: Env<'_>) -> Option<Self> {
        if let Some(dir) = env("AWS_LOGIN_CACHE_DIRECTORY") {
            let dir = paths::expand_tilde(&dir, env, cfg!(windows)).unwrap_or(dir);
            return Some(LoginCache {
                dir: PathBuf::from(dir),
            });
        }
        let home = paths::home_dir(env, cfg!(windows))?;
        Some(LoginCache {
            dir: PathBuf::from(home).join(".aws").join("login").join("cache"),
        })
    }

    /// The file of the sign-in of `arn`.
    pub fn path(&self, arn: &str) -> PathBuf {
        self.dir.join(format!("{}.json", sha256_hex(arn)))
    }

    /// The lock every awscredd process takes before it refreshes or writes that sign-in.
    pub fn lock_path(&self, arn: &str) -> PathBuf {
        files::lock::lock_path_for(&self.path(arn))
    }

    /// The sign-in of `arn`: `Ok(None)` when there is no file; an error naming the file and
    /// what is wrong with it when it cannot be used.
    pub fn load(&self, arn: &str) -> Result<Option<CachedLogin>, String> {
        let path = self.path(arn);
        let mut problem = String::new();
        // Some SDKs rewrite this file in place (truncate, then write): one that does not
        // parse is read again shortly before it counts as broken, as the SSO cache is.
        for attempt in 0..3 {
            if attempt > 0 {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            let bytes = match files::read_private(&path, files::JSON_MAX) {
                Ok(Some(b)) => b,
                Ok(None) => return Ok(None),
                Err(e) => {
                    return Err(format!(
                        "cannot read the login cache `{}`: {e}",
                        path.display()
                    ))
                }
            };
            match parse(&bytes) {
                Ok(login) => return Ok(Some(login)),
                Err(e) => problem = e,
            }
        }
        Err(format!(
            "the login cache `{}` cannot be used: {problem}",
            path.display()
        ))
    }

    /// Writes `renewed`, the sign-in of `arn` refreshed from the refresh token `used`, unless
    /// the file no longer holds `used`: another tool that does not take awscredd's lock (`aws
    /// login`, botocore) wrote a newer sign-in or refresh meanwhile, and that one is kept; or
    /// it removed the file (`aws logout`), which is not undone. `Ok(false)` when not written.
    pub fn store_renewal(
        &self,
        arn: &str,
        renewed: &CachedLogin,
        used: &Secret,
    ) -> Result<bool, String> {
        match self.load(arn) {
            // Removed (`aws logout`), or another sign-in or refresh stored meanwhile.
            Ok(None) => Ok(false),
            Ok(Some(c)) if c.refresh_token != *used => Ok(false),
            // Still the sign-in renewed, or a file that cannot be used: written.
            Ok(Some(_)) | Err(_) => self.store(arn, renewed).map(|()| true),
        }
    }

    /// Writes the sign-in of `arn`, atomically, mode 0600 (keeping the file's owner).
    pub fn store(&self, arn: &str, login: &CachedLogin) -> Result<(), String> {
        let path = self.path(arn);
        let json = login.to_json()?;
        files::write_atomic_keeping_owner(&path, &json, 0o600)
            .map_err(|e| format!("cannot write the login cache `{}`: {e}", path.display()))
    }
}

/// What a sign-in's credentials are worth now.
pub fn remaining(login: &CachedLogin, now: OffsetDateTime) -> time::Duration {
    login
        .credentials
        .expiration
        .map_or(time::Duration::ZERO, |e| e - now)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const ARN: &str = "arn:aws:iam::111122223333:user/alice";

    /// Found by the third adversarial pass: an SDK that rewrites the login cache in place
    /// (the AWS SDK for Rust's `aws-config` truncates, then writes) lets a read find it empty
    /// or cut short; that failed the profile (and a `credential-process` call) as a cache that
    /// cannot be used. A read that finds it so is tried again shortly, as for the SSO cache.
    #[test]
    fn a_cache_caught_while_another_sdk_rewrites_it_in_place_is_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let cache = LoginCache {
            dir: dir.path().to_path_buf(),
        };
        let path = cache.path(ARN);
        let whole = cli_file("k");
        for partial in [String::new(), whole[..whole.len() / 2].to_string()] {
            std::fs::write(&path, &partial).unwrap();
            let (p, w) = (path.clone(), whole.clone());
            let writer = std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(20));
                std::fs::write(p, w).unwrap();
            });
            let got = cache.load(ARN);
            writer.join().unwrap();
            let got = got.unwrap().expect("a sign-in");
            assert_eq!(got.refresh_token.expose(), "old-refresh");
        }
        // One that stays cut short is still an error naming the file.
        std::fs::write(&path, &whole[..10]).unwrap();
        let e = cache.load(ARN).unwrap_err();
        assert!(
            e.contains("cut short") && e.contains(&path.display().to_string()),
            "{e}"
        );
    }

    fn cli_file(key_pem: &str) -> String {
        serde_json::json!({
            "accessToken": {"accessKeyId": "ASIAOLD", "secretAccessKey": "old-secret",
                "sessionToken": "old-token", "accountId": "111122223333",
                "expiresAt": "2030-01-01T00:15:00Z"},
            "tokenType": "aws_sigv4",
            "clientId": "arn:aws:signin:::devtools/same-device",
            "refreshToken": "old-refresh",
            "idToken": "x.eyJzdWIiOiJhcm46YXdzOmlhbTo6MTExMTIyMjIzMzMzOnVzZXIvYWxpY2UiLCJpYXQiOjE4OTM0NTYwMDB9.y",
            "dpopKey": key_pem,
            "somethingNew": {"kept": true},
        })
        .to_string()
    }

    /// Found by the fuzzer (`login_cache`): an `idToken` whose `iat` is in the last 12 hours
    /// of the year 9999 made `ends_at` overflow and panic (in `status`, `login` and the
    /// daemon); one before the year 1 gave an end that `format_utc` cannot write as a time.
    #[test]
    fn a_sign_in_that_began_at_the_ends_of_time_has_no_end_and_no_panic() {
        let jwt = |iat: i64| {
            let claims = serde_json::json!({"sub": "alice", "iat": iat}).to_string();
            let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims);
            format!("x.{b64}.y")
        };
        for iat in [253_402_300_000, 253_402_300_799, -62_135_596_801, i64::MIN] {
            let mut file: Map<String, Value> = serde_json::from_str(&cli_file("k")).unwrap();
            file.insert("idToken".into(), Value::from(jwt(iat)));
            let login = parse(serde_json::to_string(&file).unwrap().as_bytes()).unwrap();
            assert_eq!(login.ends_at(), None, "iat {iat}");
        }
        let mut file: Map<String, Value> = serde_json::from_str(&cli_file("k")).unwrap();
        file.insert("idToken".into(), Value::from(jwt(1_893_456_000)));
        let login = parse(serde_json::to_string(&file).unwrap().as_bytes()).unwrap();
        assert_eq!(
            login.ends_at().map(format_utc).as_deref(),
            Some("2030-01-01T12:00:00Z")
        );
    }

    /// Found by the fuzzer (`login_cache`): a number another tool wrote into the file with
    /// more digits than a float holds (`78888880000...2400`, 118 digits) was read back as a
    /// slightly different number after a rewrite (serde_json's fast float parsing is not
    /// exact); serde_json now parses floats exactly (`float_roundtrip`), so the rewrite keeps
    /// the value the file held.
    #[test]
    fn a_rewrite_keeps_numbers_of_other_tools_as_they_were() {
        let long = format!("78888880{}2049638230412172400", "0".repeat(91));
        let mut file: Map<String, Value> = serde_json::from_str(&cli_file("k")).unwrap();
        let extra =
            format!(r#"{{"n": {long}, "f": 0.30000000000000004, "e": 1.7976931348623157e308}}"#);
        file.insert("other".into(), serde_json::from_str(&extra).unwrap());
        let text = serde_json::to_string(&file).unwrap();
        let login = parse(text.as_bytes()).unwrap();
        let back: Map<String, Value> = serde_json::from_slice(&login.to_json().unwrap()).unwrap();
        let before: Map<String, Value> = serde_json::from_str(&text).unwrap();
        assert_eq!(back["other"], before["other"]);
        assert_eq!(back["other"]["f"].as_f64(), Some(0.30000000000000004));
    }

    #[test]
    fn the_file_name_is_the_sha256_of_the_arn() {
        // smithy-rs login-provider-test-cases.json names the file this way.
        assert_eq!(
            sha256_hex("arn:aws:sts::012345678910:assumed-role/Admin/admin"),
            sha256_hex("arn:aws:sts::012345678910:assumed-role/Admin/admin")
        );
        assert_eq!(
            sha256_hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let env = |k: &str| (k == "AWS_LOGIN_CACHE_DIRECTORY").then(|| "/x/cache".to_string());
        let c = LoginCache::default_location(&env).unwrap();
        assert_eq!(
            c.path("a"),
            PathBuf::from(format!("/x/cache/{}.json", sha256_hex("a")))
        );
        let env = |k: &str| (k == "HOME").then(|| "/home/u".to_string());
        let c = LoginCache::default_location(&env).unwrap();
        assert_eq!(c.dir, PathBuf::from("/home/u/.aws/login/cache"));
    }

    /// Found by the third adversarial pass: `aws logout` (it deletes the cache file) while a
    /// renewal was on the wire was undone: the renewal wrote the sign-in back. Only a file
    /// still holding the refresh token renewed from is rewritten.
    #[test]
    fn a_renewal_is_written_back_only_over_the_sign_in_it_renewed() {
        let dir = tempfile::tempdir().unwrap();
        let cache = LoginCache {
            dir: dir.path().to_path_buf(),
        };
        std::fs::write(cache.path(ARN), cli_file("k")).unwrap();
        let l = cache.load(ARN).unwrap().unwrap();
        let renewed = l.renewed(l.credentials.clone(), Secret::new("new-refresh"));
        let used = l.refresh_token.clone();
        // Logged out meanwhile: not written back.
        std::fs::remove_file(cache.path(ARN)).unwrap();
        assert_eq!(cache.store_renewal(ARN, &renewed, &used), Ok(false));
        assert!(!cache.path(ARN).exists());
        // Signed in anew meanwhile: kept.
        let other = cli_file("k").replace("old-refresh", "cli-refresh");
        std::fs::write(cache.path(ARN), &other).unwrap();
        assert_eq!(cache.store_renewal(ARN, &renewed, &used), Ok(false));
        assert_eq!(std::fs::read_to_string(cache.path(ARN)).unwrap(), other);
        // Still the one renewed: written.
        std::fs::write(cache.path(ARN), cli_file("k")).unwrap();
        assert_eq!(cache.store_renewal(ARN, &renewed, &used), Ok(true));
        let now = cache.load(ARN).unwrap().unwrap();
        assert_eq!(now.refresh_token.expose(), "new-refresh");
    }

    #[test]
    fn a_rewrite_keeps_every_field_and_replaces_the_credentials_and_refresh_token() {
        let dir = tempfile::tempdir().unwrap();
        let cache = LoginCache {
            dir: dir.path().to_path_buf(),
        };
        let pem = DpopKey::generate().unwrap().to_pem().unwrap();
        std::fs::write(cache.path(ARN), cli_file(&pem)).unwrap();
        let l = cache.load(ARN).unwrap().unwrap();
        assert_eq!(l.identity.as_deref(), Some(ARN));
        assert_eq!(
            l.signed_in_at.map(|t| t.unix_timestamp()),
            Some(1_893_456_000)
        );
        assert!(l.dpop_key().is_ok());
        let fresh = Credentials {
            access_key_id: "ASIANEW".into(),
            secret_access_key: Secret::new("new-secret"),
            session_token: Some(Secret::new("new-token")),
            expiration: Some(time::macros::datetime!(2030-01-01 00:30 UTC)),
            account_id: None,
        };
        cache
            .store(ARN, &l.renewed(fresh, Secret::new("new-refresh")))
            .unwrap();
        let v: Value = serde_json::from_slice(&std::fs::read(cache.path(ARN)).unwrap()).unwrap();
        assert_eq!(v["accessToken"]["accessKeyId"], "ASIANEW");
        assert_eq!(v["accessToken"]["accountId"], "111122223333");
        assert_eq!(v["accessToken"]["expiresAt"], "2030-01-01T00:30:00Z");
        assert_eq!(v["refreshToken"], "new-refresh");
        assert_eq!(v["dpopKey"], pem.as_str());
        assert_eq!(v["somethingNew"]["kept"], true);
        assert_eq!(v["tokenType"], "aws_sigv4");
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys[0], "accessToken", "the order is kept: {keys:?}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(cache.path(ARN))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn bad_files_are_errors_naming_the_file_and_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let cache = LoginCache {
            dir: dir.path().to_path_buf(),
        };
        assert!(cache.load(ARN).unwrap().is_none());
        let good = cli_file("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n");
        let cases = [
            (good[..good.len() / 2].to_string(), "cut short"),
            ("[]".to_string(), "not a JSON object"),
            (
                good.replace("\"refreshToken\"", "\"other\""),
                "no `refreshToken`",
            ),
            (
                good.replace("expiresAt\":\"2030-01-01T00:15:00Z", "expiresAt\":\"soon"),
                "accessToken.expiresAt",
            ),
            (
                good.replace("\"accessToken\"", "\"x\""),
                "no `accessToken` object",
            ),
        ];
        for (text, why) in cases {
            std::fs::write(cache.path(ARN), &text).unwrap();
            let e = cache.load(ARN).unwrap_err();
            assert!(
                e.contains(why) && e.contains(&sha256_hex(ARN)),
                "{why}: {e}"
            );
            assert!(
                !e.contains("old-secret") && !e.contains("old-refresh"),
                "{e}"
            );
        }
        std::fs::write(cache.path(ARN), &good).unwrap();
        let e = cache.load(ARN).unwrap().unwrap().dpop_key().unwrap_err();
        assert!(e.starts_with("its `dpopKey`"), "{e}");
    }
}
