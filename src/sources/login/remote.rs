//! A new `aws login` sign-in on a host with no browser, the way `aws login --remote` makes
//! it: an authorization URL with PKCE to open on any machine, the code that page shows
//! (base64 of `state=…&code=…`) pasted back, and the code redeemed with a proof of a fresh
//! DPoP key. The sign-in is kept only when its identity (the `idToken`'s `sub`) is the one
//! asked for.

use super::cache::{id_token_claims, CachedLogin};
use super::client::{Grant, Signin, TokenError, CROSS_DEVICE_CLIENT};
use super::dpop::{uuid4, DpopKey};
use crate::credentials::Secret;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use std::sync::Arc;

/// Where the cross-device flow sends the browser: the page that shows the code to paste.
const CONFIRMATION_PATH: &str = "/v1/sessions/confirmation";

/// An authorization request: the URL for a browser, and what redeeming its code needs.
pub struct Authorization {
    pub url: String,
    state: String,
    verifier: Secret,
    redirect_uri: String,
}

/// The 66 characters RFC 7636 allows in a code verifier.
const UNRESERVED: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if UNRESERVED.contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Authorization {
    /// A new request to the Sign-In service at `base`: a fresh `state` and PKCE verifier.
    pub fn new(base: &str) -> Result<Self, String> {
        let mut random = [0u8; 64];
        aws_lc_rs::rand::fill(&mut random).map_err(|_| "no random numbers".to_string())?;
        let verifier: String = random
            .iter()
            .map(|b| UNRESERVED[usize::from(*b) % UNRESERVED.len()] as char)
            .collect();
        let challenge = URL_SAFE_NO_PAD.encode(
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes()).as_ref(),
        );
        let state = uuid4()?;
        let redirect_uri = format!("{base}{CONFIRMATION_PATH}");
        let query = [
            ("response_type", "code"),
            ("client_id", CROSS_DEVICE_CLIENT),
            ("state", &state),
            ("code_challenge_method", "SHA-256"),
            ("scope", "openid"),
            ("redirect_uri", &redirect_uri),
            ("code_challenge", &challenge),
        ]
        .iter()
        .map(|(k, v)| format!("{k}={}", percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
        Ok(Authorization {
            url: format!("{base}/v1/authorize?{query}"),
            state,
            verifier: Secret::new(verifier),
            redirect_uri,
        })
    }

    /// The authorization code in what the user pasted: base64 of `state=…&code=…`, with
    /// this request's `state`.
    pub fn code_from(&self, pasted: &str) -> Result<Secret, String> {
        let decoded = STANDARD
            .decode(pasted.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or("that is not the code the sign-in page shows (it is not base64)")?;
        let mut state = None;
        let mut code = None;
        for pair in decoded.split('&') {
            match pair.split_once('=') {
                Some(("state", v)) => state = Some(percent_decode(v)),
                Some(("code", v)) => code = Some(percent_decode(v)),
                _ => {}
            }
        }
        match (state, code) {
            (Some(s), Some(c)) if s == self.state && !c.is_empty() => Ok(Secret::new(c)),
            (Some(_), Some(_)) => Err(
                "that code belongs to another sign-in (its state does not match this one's)".into(),
            ),
            _ => {
                Err("that is not the code the sign-in page shows (no state and code in it)".into())
            }
        }
    }

    /// Redeems `code` with a fresh DPoP key; the sign-in is refused (and nothing returned)
    /// unless its identity is `expected`.
    pub async fn redeem(
        &self,
        signin: &Signin,
        code: &Secret,
        expected: &str,
    ) -> Result<CachedLogin, String> {
        let key = DpopKey::generate()?;
        let dpop_pem = Secret::new(key.to_pem()?);
        let grant = Grant::Code {
            client_id: CROSS_DEVICE_CLIENT,
            code,
            code_verifier: &self.verifier,
            redirect_uri: &self.redirect_uri,
        };
        let got = signin
            .token(Arc::new(key), grant)
            .await
            .map_err(|e| match e {
                TokenError::SignInEnded(m)
                | TokenError::Throttled(m)
                | TokenError::Transient(m)
                | TokenError::Failed(m) => m,
            })?;
        let id_token = got
            .id_token
            .ok_or("the Sign-In service returned no idToken: who signed in is unknown")?;
        let (identity, _) = id_token_claims(&id_token);
        let identity = identity.ok_or("the idToken names no identity (no `sub`)")?;
        if identity != expected {
            return Err(format!(
                "the sign-in is of {identity}, not of {expected} (the profile's login_session): \
                 nothing was written; sign in as {expected}, or change the profile"
            ));
        }
        let account = identity.split(':').nth(4).unwrap_or_default().to_string();
        Ok(CachedLogin::new_sign_in(
            got.credentials,
            &account,
            CROSS_DEVICE_CLIENT,
            got.refresh_token,
            &id_token,
            dpop_pem,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_carries_pkce_and_the_pasted_code_must_match_its_state() {
        let a = Authorization::new("http://127.0.0.1:9").unwrap();
        assert!(a.url.starts_with("http://127.0.0.1:9/v1/authorize?response_type=code&client_id=arn%3Aaws%3Asignin%3A%3A%3Adevtools%2Fcross-device&state="), "{}", a.url);
        assert!(a.url.contains("&code_challenge_method=SHA-256&scope=openid&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fv1%2Fsessions%2Fconfirmation&code_challenge="));
        assert_eq!(a.verifier.expose().len(), 64);
        let challenge = a.url.rsplit("code_challenge=").next().unwrap();
        let want = URL_SAFE_NO_PAD.encode(
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, a.verifier.expose().as_bytes())
                .as_ref(),
        );
        assert_eq!(challenge, want);
        let pasted = STANDARD.encode(format!("state={}&code=abc-_1", a.state));
        assert_eq!(
            a.code_from(&format!(" {pasted}\n")).unwrap().expose(),
            "abc-_1"
        );
        let other = STANDARD.encode("state=another&code=abc");
        assert!(a.code_from(&other).unwrap_err().contains("another sign-in"));
        assert!(a
            .code_from("not base64!")
            .unwrap_err()
            .contains("not base64"));
        assert!(a
            .code_from(&STANDARD.encode("hello"))
            .unwrap_err()
            .contains("no state and code"));
        assert_eq!(percent_decode("a%2Fb+c"), "a/b c");
    }
}
