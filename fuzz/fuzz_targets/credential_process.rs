//! A `credential_process` program's output: any bytes give credentials or an error, never a
//! panic; credentials have both keys, and an expiry only where one was printed.
#![no_main]

use awscredd::sources::process::parse_output;
use libfuzzer_sys::fuzz_target;
use time::macros::datetime;

fuzz_target!(|data: &[u8]| {
    let now = datetime!(2026-01-02 03:04:05 UTC);
    if let Ok(c) = parse_output(data, now) {
        assert!(!c.access_key_id.is_empty());
        assert!(!c.secret_access_key.expose().is_empty());
        // An expiry, once written by awscredd, must read back as the same time.
        if let Some(e) = c.expiration {
            let written = awscredd::credentials::format_utc(e);
            let back = awscredd::credentials::parse_rfc3339(&written)
                .unwrap_or_else(|err| panic!("an accepted expiry cannot be written: {err}"));
            assert_eq!(back, e.replace_nanosecond(0).expect("0 is a nanosecond"));
        }
    }
});
