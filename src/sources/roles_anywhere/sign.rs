//! The SigV4 variant Roles Anywhere's `CreateSession` requires: the request signed with the
//! certificate's private key (`AWS4-X509-RSA-SHA256` / `AWS4-X509-ECDSA-SHA256`) instead of an
//! HMAC, the leaf in `X-Amz-X509`, the intermediates in `X-Amz-X509-Chain`, and the leaf's
//! serial in decimal as the credential scope's key id. A pure function of the request, the
//! material and the time: the canonical request and string to sign are tested as text.

use super::material::Material;
use std::fmt::Write as _;
use time::OffsetDateTime;

/// The service name in the credential scope.
const SERVICE: &str = "rolesanywhere";

/// What is signed: a `POST` of `body` (JSON) to `host` + `path`, no query.
pub struct Request<'a> {
    /// `host[:port]`, exactly as the `Host` header carries it.
    pub host: &'a str,
    pub path: &'a str,
    pub body: &'a [u8],
    pub region: &'a str,
}

/// The headers to send, `authorization` last, in lower case.
pub type Headers = Vec<(&'static str, String)>;

pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes).as_ref())
}

/// `YYYYMMDDTHHMMSSZ`.
pub fn amz_date(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// The signed headers (sorted, lower case) with their values.
fn signed_headers(req: &Request<'_>, m: &Material, date: &str) -> Headers {
    let mut h: Headers = vec![
        ("content-type", "application/json".to_string()),
        ("host", req.host.to_string()),
        ("x-amz-date", date.to_string()),
        ("x-amz-x509", m.leaf_header()),
    ];
    if let Some(chain) = m.chain_header() {
        h.push(("x-amz-x509-chain", chain));
    }
    h
}

/// The canonical request (SigV4 task 1).
pub fn canonical_request(req: &Request<'_>, headers: &Headers) -> String {
    let mut s = format!("POST\n{}\n\n", req.path);
    for (k, v) in headers {
        let _ = writeln!(
            s,
            "{k}:{}",
            v.split_whitespace().collect::<Vec<_>>().join(" ")
        );
    }
    let names: Vec<&str> = headers.iter().map(|(k, _)| *k).collect();
    let _ = write!(s, "\n{}\n{}", names.join(";"), sha256_hex(req.body));
    s
}

/// The string to sign (SigV4 task 2).
pub fn string_to_sign(algorithm: &str, date: &str, scope: &str, creq: &str) -> String {
    format!(
        "{algorithm}\n{date}\n{scope}\n{}",
        sha256_hex(creq.as_bytes())
    )
}

/// The headers of a signed request at `now`: the signed ones and `authorization`.
pub fn sign(req: &Request<'_>, m: &Material, now: OffsetDateTime) -> Result<Headers, String> {
    let date = amz_date(now);
    let mut headers = signed_headers(req, m, &date);
    let creq = canonical_request(req, &headers);
    let scope = format!("{}/{}/{SERVICE}/aws4_request", &date[..8], req.region);
    let algorithm = m.key.algorithm();
    let to_sign = string_to_sign(algorithm, &date, &scope, &creq);
    let signature = m.key.sign(to_sign.as_bytes())?;
    let names: Vec<&str> = headers.iter().map(|(k, _)| *k).collect();
    let auth = format!(
        "{algorithm} Credential={}/{scope}, SignedHeaders={}, Signature={}",
        m.serial,
        names.join(";"),
        hex(&signature)
    );
    headers.push(("authorization", auth));
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn the_canonical_request_and_string_to_sign_are_sigv4s() {
        let req = Request {
            host: "127.0.0.1:8443",
            path: "/sessions",
            body: b"{}",
            region: "eu-west-1",
        };
        let headers: Headers = vec![
            ("content-type", "application/json".into()),
            ("host", "127.0.0.1:8443".into()),
            ("x-amz-date", "20260102T030405Z".into()),
            ("x-amz-x509", "  TUlJ  QQ==".into()),
        ];
        let creq = canonical_request(&req, &headers);
        assert_eq!(
            creq,
            "POST\n/sessions\n\ncontent-type:application/json\nhost:127.0.0.1:8443\n\
             x-amz-date:20260102T030405Z\nx-amz-x509:TUlJ QQ==\n\n\
             content-type;host;x-amz-date;x-amz-x509\n\
             44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        let sts = string_to_sign(
            "AWS4-X509-ECDSA-SHA256",
            "20260102T030405Z",
            "20260102/eu-west-1/rolesanywhere/aws4_request",
            &creq,
        );
        let lines: Vec<&str> = sts.lines().collect();
        assert_eq!(
            lines[..3],
            [
                "AWS4-X509-ECDSA-SHA256",
                "20260102T030405Z",
                "20260102/eu-west-1/rolesanywhere/aws4_request"
            ]
        );
        assert_eq!(lines[3], sha256_hex(creq.as_bytes()));
        assert_eq!(
            amz_date(datetime!(2026-01-02 03:04:05 UTC)),
            "20260102T030405Z"
        );
    }
}
