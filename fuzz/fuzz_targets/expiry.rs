//! Expiry timestamps (RFC 3339, as every format and cache holds them): a time that parses is
//! written (`format_utc`) as text that parses back to the same second; one that does not is
//! long past for `held_expiry`, never "does not expire".
#![no_main]

use awscredd::credentials::{format_utc, held_expiry, parse_rfc3339};
use libfuzzer_sys::fuzz_target;
use time::OffsetDateTime;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_rfc3339(text) {
        Ok(t) => {
            let written = format_utc(t);
            let back = parse_rfc3339(&written)
                .unwrap_or_else(|e| panic!("{text:?} parses, but its UTC form does not: {e}"));
            assert_eq!(
                back.unix_timestamp(),
                t.unix_timestamp(),
                "{text:?} -> {written}"
            );
            assert_eq!(held_expiry(text), t);
        }
        Err(e) => {
            assert!(!e.is_empty());
            assert_eq!(held_expiry(text), OffsetDateTime::UNIX_EPOCH);
        }
    }
});
