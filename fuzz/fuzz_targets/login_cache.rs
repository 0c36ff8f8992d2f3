//! The `aws login` cache (`~/.aws/login/cache/*.json`, written by the AWS CLI): any bytes give
//! a sign-in or a reason, never a panic; what is read can be written back, and reads back the
//! same, with every field that awscredd does not rewrite kept as it was (unknown ones too);
//! a refresh's rewrite (new credentials and refresh token) reads back as that refresh; the
//! sign-in's end, its DPoP key and the status of a profile using it can be decided.
#![no_main]

use awscredd::credentials::{Credentials, Secret};
use awscredd::fuzzing::login_cache_json;
use awscredd::sources::login::cache::{parse, remaining, CachedLogin};
use awscredd::status::{decide, Observed};
use awscredd_fuzz::{credentials, pick, Fixture};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use std::sync::OnceLock;
use time::macros::datetime;

static FIXTURE: OnceLock<Fixture> = OnceLock::new();
const ARN: &str = "arn:aws:iam::111122223333:user/alice";
/// The fields a rewrite sets; every other one is kept as it was.
const REWRITTEN: [&str; 3] = ["accessToken", "refreshToken", "dpopKey"];

fn same(a: &CachedLogin, b: &CachedLogin) {
    let (x, y) = (&a.credentials, &b.credentials);
    assert_eq!(x.access_key_id, y.access_key_id);
    assert_eq!(x.secret_access_key.expose(), y.secret_access_key.expose());
    assert_eq!(
        x.session_token.as_ref().map(|t| t.expose()),
        y.session_token.as_ref().map(|t| t.expose())
    );
    assert_eq!(
        x.expiration.map(|t| t.unix_timestamp()),
        y.expiration.map(|t| t.unix_timestamp())
    );
    assert_eq!(a.refresh_token.expose(), b.refresh_token.expose());
    assert_eq!(a.account_id, b.account_id);
    assert_eq!(a.client_id, b.client_id);
    assert_eq!(a.identity, b.identity);
    assert_eq!(a.signed_in_at, b.signed_in_at);
    assert_eq!(a.sign_in_region, b.sign_in_region);
}

fn fields(bytes: &[u8]) -> Map<String, Value> {
    serde_json::from_slice(bytes).expect("a JSON object")
}

fuzz_target!(|data: &[u8]| {
    let Ok(login) = parse(data) else { return };
    let now = datetime!(2026-01-02 03:04:05 UTC);
    let _ = login.dpop_key();
    let _ = login.ends_at();
    let _ = remaining(&login, now);

    let written = login_cache_json(&login).expect("a sign-in read can be written back");
    let back = parse(&written).unwrap_or_else(|e| panic!("a rewrite cannot be read back: {e}"));
    same(&login, &back);
    let (before, after) = (fields(data), fields(&written));
    for (k, v) in before
        .iter()
        .filter(|(k, _)| !REWRITTEN.contains(&k.as_str()))
    {
        assert_eq!(after.get(k), Some(v), "field `{k}` changed");
    }
    // Inside `accessToken`, what awscredd does not set is kept too.
    let inner = |m: &Map<String, Value>| match m.get("accessToken") {
        Some(Value::Object(at)) => at.clone(),
        _ => unreachable!("a sign-in read has an accessToken object"),
    };
    let (at_before, at_after) = (inner(&before), inner(&after));
    for (k, v) in at_before.iter().filter(|(k, _)| {
        ![
            "accessKeyId",
            "secretAccessKey",
            "sessionToken",
            "expiresAt",
        ]
        .contains(&k.as_str())
            && (k.as_str() != "accountId" || login.account_id.is_none())
    }) {
        assert_eq!(at_after.get(k), Some(v), "accessToken.{k} changed");
    }

    // A refresh: new credentials (a session always has a token) and a new refresh token.
    let mut c = credentials(pick(data));
    if c.session_token.is_none() {
        c.session_token = Some(Secret::new("renewed-token"));
    }
    let c = Credentials {
        expiration: c.expiration.or(Some(now)),
        ..c
    };
    let renewed = login.renewed(c, Secret::new("renewed-refresh"));
    let again = login_cache_json(&renewed).expect("a refresh can be written");
    match parse(&again) {
        Ok(read) => same(&renewed, &read),
        // Only a key that is empty cannot be stored (the fuzz fixture's credentials never are).
        Err(e) => panic!("a refresh's rewrite cannot be read back: {e}"),
    }

    let fixture = FIXTURE.get_or_init(Fixture::new);
    let seen = Observed {
        logins: [(ARN.to_string(), Ok(login))].into(),
        ..Observed::default()
    };
    let status = decide(&fixture.config, &seen, now);
    assert_eq!(status.login_sessions.len(), 1);
});
