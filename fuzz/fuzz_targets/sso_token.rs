//! The SSO token cache (`~/.aws/sso/cache/*.json`, written by the AWS CLI and others): any
//! bytes give a token or a reason, never a panic; a token read has an access token and an
//! expiry that awscredd can write back as a time that reads the same; the status of a
//! session holding it can be decided.
#![no_main]

use awscredd::credentials::{format_utc, parse_rfc3339};
use awscredd::fuzzing::sso_token;
use awscredd::status::{decide, Observed};
use awscredd_fuzz::Fixture;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use time::macros::datetime;

static FIXTURE: OnceLock<Fixture> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let Ok(token) = sso_token(data) else { return };
    assert!(!token.access_token.expose().is_empty());
    for t in [Some(token.expires_at), token.registration_expires_at]
        .into_iter()
        .flatten()
    {
        let written = format_utc(t);
        let back = parse_rfc3339(&written)
            .unwrap_or_else(|e| panic!("an accepted expiry cannot be written back: {e}"));
        assert_eq!(back.unix_timestamp(), t.unix_timestamp());
    }
    let now = datetime!(2026-01-02 03:04:05 UTC);
    let _ = token.refreshable(now);
    let fixture = FIXTURE.get_or_init(Fixture::new);
    let seen = Observed {
        tokens: [("corp".to_string(), token)].into(),
        ..Observed::default()
    };
    let status = decide(&fixture.config, &seen, now);
    assert_eq!(status.sso_sessions.len(), 1);
});
