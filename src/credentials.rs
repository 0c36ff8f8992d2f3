//! AWS credentials and the secret strings inside them.
//!
//! Secrets live in [`Secret`], whose `Debug` and `Display` print `** redacted **`, so no log
//! line, error message or debug print can show one by accident. Access key ids are not secret
//! but are masked in logs ([`Credentials::masked_key_id`]).

use std::fmt;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A string that must never be printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for writing it where it belongs (a credentials file, a request).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("** redacted **")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("** redacted **")
    }
}

/// A set of AWS credentials, temporary or long-term.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: Option<Secret>,
    /// `None` for credentials that do not expire (long-term keys, or a `credential_process`
    /// that printed no `Expiration`).
    pub expiration: Option<OffsetDateTime>,
    /// The account they belong to, when only the source knows it (a `credential_process` that
    /// prints `AccountId`; for the others the config says, see
    /// [`crate::config::Source::account_id`]). Never written to a credentials file: recorded
    /// in the state for the `[imds]` endpoint.
    pub account_id: Option<String>,
}

impl Credentials {
    /// The access key id with all but its first four and last four characters hidden.
    pub fn masked_key_id(&self) -> String {
        mask(&self.access_key_id)
    }
}

/// Shows the first four and last four characters of an identifier.
pub fn mask(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() <= 8 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

/// Formats a time as RFC 3339 UTC with whole seconds and a `Z` (`2026-01-02T03:04:05Z`): the
/// form every AWS SDK (Rust requires the `Z`) and every Python reader accepts.
pub fn format_utc(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// `0001-01-01T00:00:00Z` and `9999-12-31T23:59:59Z` as Unix times.
const FIRST_UTC_SECOND: i64 = -62_135_596_800;
const LAST_UTC_SECOND: i64 = 253_402_300_799;

/// Parses an RFC 3339 time, with or without fractional seconds, with `Z` or an offset. A time
/// whose UTC form falls outside the years 0001-9999 (`0000-01-01T00:00:00+01:00`,
/// `9999-12-31T23:59:59-01:00`) is refused: RFC 3339 cannot write it in UTC, so
/// [`format_utc`] could not write it back as a time anyone reads.
pub fn parse_rfc3339(s: &str) -> Result<OffsetDateTime, String> {
    let t = OffsetDateTime::parse(s.trim(), &Rfc3339)
        .map_err(|e| format!("`{s}` is not an RFC 3339 time: {e}"))?;
    // Checked on the Unix time: converting such a time to UTC panics in the `time` crate.
    if !(FIRST_UTC_SECOND..=LAST_UTC_SECOND).contains(&t.unix_timestamp()) {
        return Err(format!(
            "`{s}` is not an RFC 3339 time: in UTC it falls outside the years 0001-9999"
        ));
    }
    Ok(t)
}

/// The time of a Unix timestamp if it falls in the UTC years 0001-9999 (those that
/// [`format_utc`] writes as a time [`parse_rfc3339`] reads back).
pub fn from_unix_utc(secs: i64) -> Option<OffsetDateTime> {
    (FIRST_UTC_SECOND..=LAST_UTC_SECOND)
        .contains(&secs)
        .then(|| OffsetDateTime::from_unix_timestamp(secs).ok())
        .flatten()
}

/// The expiry a file holds for credentials, from the value of its expiry key. A value that is
/// not a time is taken as long past, never as "does not expire": nobody knows when such
/// credentials end, so they are due at once and no reader calls them valid.
pub fn held_expiry(value: &str) -> OffsetDateTime {
    parse_rfc3339(value).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Lowercase hex SHA-1 of a string.
pub fn sha1_hex(s: &str) -> String {
    use sha1::Digest as _;
    use std::fmt::Write as _;
    let digest = sha1::Sha1::digest(s.as_bytes());
    let mut out = String::with_capacity(40);
    for b in digest {
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn secrets_never_print() {
        let c = Credentials {
            access_key_id: "ASIAEXAMPLEKEY123456".into(),
            secret_access_key: Secret::new("very-secret"),
            session_token: Some(Secret::new("token-secret")),
            expiration: None,
            account_id: None,
        };
        let shown = format!("{c:?} {}", c.secret_access_key);
        assert!(!shown.contains("very-secret") && !shown.contains("token-secret"));
        assert_eq!(c.masked_key_id(), "ASIA…3456");
    }

    #[test]
    fn utc_round_trip() {
        let t = datetime!(2026-03-04 05:06:07.5 +02:00);
        assert_eq!(format_utc(t), "2026-03-04T03:06:07Z");
        assert_eq!(
            parse_rfc3339("2026-03-04T03:06:07Z").unwrap(),
            datetime!(2026-03-04 03:06:07 UTC)
        );
        assert!(parse_rfc3339("2026-03-04T03:06:07+00:00").is_ok());
        assert!(parse_rfc3339("2026-03-04T03:06:07.123Z").is_ok());
        assert!(parse_rfc3339("yesterday").is_err());
    }

    /// Found by `fuzz/fuzz_targets/expiry.rs`: a time whose UTC form is before year 1 or
    /// after 9999 parsed, and was written back as `-001-12-31T22:45:00Z`, which nothing reads
    /// (or, after 9999, made `format_utc` panic: `time` cannot convert it to UTC).
    #[test]
    fn times_outside_the_utc_years_0001_to_9999_are_refused() {
        for bad in [
            "0000-01-01T00:00:00+01:15",
            "0000-12-31T23:59:59Z",
            "9999-12-31T23:59:59-00:01",
        ] {
            let e = parse_rfc3339(bad).unwrap_err();
            assert!(e.contains("outside the years 0001-9999"), "{bad}: {e}");
            assert_eq!(held_expiry(bad), OffsetDateTime::UNIX_EPOCH);
        }
        for good in [
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59Z",
            "0001-01-01T01:00:00+01:00",
        ] {
            let t = parse_rfc3339(good).unwrap();
            assert_eq!(parse_rfc3339(&format_utc(t)).unwrap(), t, "{good}");
        }
    }

    #[test]
    fn an_unparseable_expiry_is_long_past_not_never() {
        assert_eq!(held_expiry("garbage"), OffsetDateTime::UNIX_EPOCH);
        assert_eq!(
            held_expiry("2026-03-04T03:06:07Z"),
            datetime!(2026-03-04 03:06:07 UTC)
        );
    }
}
