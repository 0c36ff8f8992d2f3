//! STS (awsQuery: `POST /` with a form body, XML answers): AssumeRole, GetSessionToken and
//! AssumeRoleWithWebIdentity, with SigV4 signatures checked.

use super::*;

/// The XML namespace of every STS answer.
pub const STS_XMLNS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
pub(super) const STS_REQUEST_ID: &str = "00000000-fake-0000-0000-0000000005f5";

/// One STS request as the fake saw it.
#[derive(Clone, Debug)]
pub struct StsRequest {
    /// The form's `Action`.
    pub action: String,
    /// Every form parameter, decoded (`Action` and `Version` too).
    pub params: BTreeMap<String, String>,
    /// The access key id of the SigV4 credential scope; `None`: the request was not signed.
    pub access_key_id: Option<String>,
    /// Signing region and service from the credential scope.
    pub region: Option<String>,
    pub service: Option<String>,
    /// The `X-Amz-Security-Token` header.
    pub security_token: Option<String>,
    /// Whether the signature matches the secret of a key the fake knows; `None`: unsigned, or
    /// signed with a key it does not know.
    pub signature_valid: Option<bool>,
    /// The HTTP status of the answer.
    pub status: u16,
    /// The access key id of the credentials this request was handed (200 answers only).
    pub issued: Option<String>,
}

impl StsRequest {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum KeyKind {
    /// An IAM user's long-term keys.
    LongTerm,
    /// GetSessionToken credentials.
    SessionToken,
    /// A role session (AssumeRole, AssumeRoleWithWebIdentity, SSO): AssumeRole from it is
    /// role chaining.
    RoleSession,
}

#[derive(Clone, Debug)]
pub(super) struct StsKey {
    pub(super) secret: String,
    pub(super) session_token: Option<String>,
    pub(super) kind: KeyKind,
}

/// A parsed STS request.
pub(super) struct StsCall {
    pub(super) action: String,
    pub(super) params: BTreeMap<String, String>,
    pub(super) access_key_id: Option<String>,
    pub(super) date: Option<String>,
    pub(super) region: Option<String>,
    pub(super) service: Option<String>,
    pub(super) signed_headers: Option<String>,
    pub(super) signature: Option<String>,
    pub(super) security_token: Option<String>,
    pub(super) signature_valid: Option<bool>,
    pub(super) method: String,
    pub(super) url: String,
    /// Lower-case name, value.
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: String,
}

impl StsCall {
    pub(super) fn parse(method: &str, url: &str, headers: &[(String, String)], body: &str) -> Self {
        let headers: Vec<(String, String)> = headers.to_vec();
        let params: BTreeMap<String, String> = body
            .split('&')
            .filter(|kv| !kv.is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (form_decode(k), form_decode(v))
            })
            .collect();
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        // AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/SERVICE/aws4_request,
        // SignedHeaders=a;b, Signature=hex
        let mut call = StsCall {
            action: params.get("Action").cloned().unwrap_or_default(),
            params,
            access_key_id: None,
            date: None,
            region: None,
            service: None,
            signed_headers: None,
            signature: None,
            security_token: header("x-amz-security-token"),
            signature_valid: None,
            method: method.to_string(),
            url: url.to_string(),
            headers: headers.clone(),
            body: body.to_string(),
        };
        if let Some(auth) = header("authorization") {
            let rest = auth.strip_prefix("AWS4-HMAC-SHA256").unwrap_or(&auth);
            for part in rest.split(',') {
                let Some((k, v)) = part.trim().split_once('=') else {
                    continue;
                };
                match k {
                    "Credential" => {
                        let scope: Vec<&str> = v.split('/').collect();
                        call.access_key_id = scope.first().map(|s| s.to_string());
                        call.date = scope.get(1).map(|s| s.to_string());
                        call.region = scope.get(2).map(|s| s.to_string());
                        call.service = scope.get(3).map(|s| s.to_string());
                    }
                    "SignedHeaders" => call.signed_headers = Some(v.to_string()),
                    "Signature" => call.signature = Some(v.to_string()),
                    _ => {}
                }
            }
        }
        call
    }

    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// Sets `signature_valid` when the signing key is one the fake knows.
    pub(super) fn check_signature(&mut self, s: &State) {
        let Some(key) = self.access_key_id.as_ref().and_then(|k| s.sts_keys.get(k)) else {
            return;
        };
        let expected = self.signature_with(&key.secret);
        self.signature_valid = Some(expected.is_some() && expected == self.signature);
    }

    /// The SigV4 signature of this request with `secret` (header-signed, as the SDKs do).
    fn signature_with(&self, secret: &str) -> Option<String> {
        let (date, region, service) = (
            self.date.as_deref()?,
            self.region.as_deref()?,
            self.service.as_deref()?,
        );
        let signed = self.signed_headers.as_deref()?;
        let header = |name: &str| -> Option<String> {
            let values: Vec<String> = self
                .headers
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, v)| {
                    v.trim()
                        .split(' ')
                        .filter(|w| !w.is_empty())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect();
            (!values.is_empty()).then(|| values.join(","))
        };
        let amz_date = header("x-amz-date")?;
        let mut canonical_headers = String::new();
        for name in signed.split(';') {
            canonical_headers.push_str(&format!("{name}:{}\n", header(name)?));
        }
        let payload_hash =
            header("x-amz-content-sha256").unwrap_or_else(|| hex(&sha256(self.body.as_bytes())));
        let (path, query) = self.url.split_once('?').unwrap_or((&self.url, ""));
        let mut query: Vec<&str> = query.split('&').filter(|q| !q.is_empty()).collect();
        query.sort_unstable();
        let canonical_request = format!(
            "{}\n{path}\n{}\n{canonical_headers}\n{signed}\n{payload_hash}",
            self.method,
            query.join("&")
        );
        let scope = format!("{date}/{region}/{service}/aws4_request");
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
            hex(&sha256(canonical_request.as_bytes()))
        );
        let mut k = hmac_sha256(format!("AWS4{secret}").as_bytes(), date.as_bytes());
        for part in [region, service, "aws4_request"] {
            k = hmac_sha256(&k, part.as_bytes());
        }
        Some(hex(&hmac_sha256(&k, string_to_sign.as_bytes())))
    }
}

/// Decodes one `application/x-www-form-urlencoded` name or value.
pub(super) fn form_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(super) fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An STS error as AWS sends it (awsQuery XML).
pub(super) fn sts_error(status: u16, code: &str, message: &str) -> Answer {
    let kind = if status >= 500 { "Receiver" } else { "Sender" };
    Answer {
        status,
        body: format!(
            "<ErrorResponse xmlns=\"{STS_XMLNS}\">\n  <Error>\n    <Type>{kind}</Type>\n    \
             <Code>{code}</Code>\n    <Message>{}</Message>\n  </Error>\n  \
             <RequestId>{STS_REQUEST_ID}</RequestId>\n</ErrorResponse>\n",
            xml_escape(message)
        ),
        error_type: None,
        content_type: "text/xml",
    }
}

/// The message AWS sends with an error code, for injected faults.
pub(super) fn injected_sts_message(code: &str) -> String {
    match code {
        "ValidationError" => ROLE_CHAINING_MESSAGE.into(),
        "AccessDenied" => "User: arn:aws:iam::123456789012:user/fake is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::444455556666:role/Fake".into(),
        "ExpiredToken" => "The security token included in the request is expired".into(),
        "MalformedPolicyDocument" => "Syntax errors in policy.".into(),
        "Throttling" => "Rate exceeded".into(),
        "InternalFailure" => "The request processing has failed because of an unknown error, exception or failure.".into(),
        "InvalidClientTokenId" => "The security token included in the request is invalid.".into(),
        "RegionDisabledException" => "STS is not activated in this region for account:123456789012. Your account administrator can activate STS in this region using the IAM Console.".into(),
        "InvalidIdentityToken" => "Couldn't retrieve verification key from your identity provider, please reference AssumeRoleWithWebIdentity documentation for requirements".into(),
        _ => "injected fault".into(),
    }
}

pub(super) fn format_rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "2030-01-01T00:00:00Z".into())
}

/// The account and role name of `arn:aws:iam::ACCOUNT:role/PATH/NAME`.
pub(super) fn split_role_arn(arn: &str) -> Option<(&str, &str)> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" || parts[2] != "iam" {
        return None;
    }
    let name = parts[5].strip_prefix("role/")?.rsplit('/').next()?;
    (!name.is_empty() && parts[4].len() == 12).then_some((parts[4], name))
}

/// DurationSeconds, checked against `min..=max`.
pub(super) fn sts_duration(call: &StsCall, default: i64, max: i64) -> Result<i64, Answer> {
    let Some(d) = call.param("DurationSeconds") else {
        return Ok(default);
    };
    match d.parse::<i64>() {
        Ok(d) if d < 900 => Err(sts_error(
            400,
            "ValidationError",
            &format!("1 validation error detected: Value '{d}' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900"),
        )),
        Ok(d) if d > max => Err(sts_error(
            400,
            "ValidationError",
            &format!("The requested DurationSeconds exceeds the MaxSessionDuration set for this role ({max} seconds)."),
        )),
        Ok(d) => Ok(d),
        Err(_) => Err(sts_error(
            400,
            "ValidationError",
            "DurationSeconds must be a number",
        )),
    }
}

pub(super) fn missing(field: &str) -> Answer {
    sts_error(
        400,
        "ValidationError",
        &format!("1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null"),
    )
}

/// The normal answer to an STS call, and the access key id it handed out.
pub(super) fn sts_answer(s: &mut State, call: &StsCall) -> (Answer, Option<String>) {
    let action = call.action.as_str();
    if ![STS_ASSUME_ROLE, STS_SESSION_TOKEN, STS_WEB_IDENTITY].contains(&action) {
        return (
            sts_error(
                400,
                "InvalidAction",
                &format!("Could not find operation {action} for version 2011-06-15"),
            ),
            None,
        );
    }
    // Who signed it (AssumeRoleWithWebIdentity needs no signature).
    let signer = if action == STS_WEB_IDENTITY {
        None
    } else {
        let Some(akid) = call.access_key_id.as_deref() else {
            return (
                sts_error(
                    403,
                    "MissingAuthenticationToken",
                    "Request is missing Authentication Token",
                ),
                None,
            );
        };
        if call.service.as_deref() != Some("sts") {
            return (
                sts_error(
                    403,
                    "SignatureDoesNotMatch",
                    "Credential should be scoped to correct service: 'sts'.",
                ),
                None,
            );
        }
        if call.signature_valid == Some(false) {
            return (
                sts_error(
                    403,
                    "SignatureDoesNotMatch",
                    "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
                ),
                None,
            );
        }
        let known = s.sts_keys.get(akid).cloned();
        if let Some(k) = &known {
            if k.session_token.is_some() && k.session_token != call.security_token {
                return (
                    sts_error(
                        403,
                        "InvalidClientTokenId",
                        "The security token included in the request is invalid.",
                    ),
                    None,
                );
            }
        }
        // Unknown keys: temporary ones (ASIA..., with a token) count as a role session.
        Some(known.map(|k| k.kind).unwrap_or(
            if akid.starts_with("ASIA") && call.security_token.is_some() {
                KeyKind::RoleSession
            } else {
                KeyKind::LongTerm
            },
        ))
    };

    let mut result = String::new();
    let (duration, kind) = match action {
        STS_SESSION_TOKEN => {
            if signer != Some(KeyKind::LongTerm) || call.security_token.is_some() {
                return (
                    sts_error(
                        403,
                        "AccessDenied",
                        "Cannot call GetSessionToken with session credentials",
                    ),
                    None,
                );
            }
            if call.param("SerialNumber").is_some() {
                let code = call.param("TokenCode").unwrap_or("");
                if code.len() != 6 || !code.chars().all(|c| c.is_ascii_digit()) {
                    return (
                        sts_error(
                            403,
                            "AccessDenied",
                            "MultiFactorAuthentication failed with invalid MFA one time pass code.",
                        ),
                        None,
                    );
                }
            }
            match sts_duration(call, 43_200, 129_600) {
                Ok(d) => (d, KeyKind::SessionToken),
                Err(a) => return (a, None),
            }
        }
        _ => {
            let Some(role_arn) = call.param("RoleArn") else {
                return (missing("roleArn"), None);
            };
            let Some(session) = call.param("RoleSessionName") else {
                return (missing("roleSessionName"), None);
            };
            let Some((account, role)) = split_role_arn(role_arn) else {
                return (
                    sts_error(400, "ValidationError", &format!("{role_arn} is invalid")),
                    None,
                );
            };
            if action == STS_WEB_IDENTITY && call.param("WebIdentityToken").is_none() {
                return (missing("webIdentityToken"), None);
            }
            let max = s.settings.sts_max_session_duration;
            let d = match sts_duration(call, s.settings.sts_default_duration, max) {
                Ok(d) => d,
                Err(a) => return (a, None),
            };
            if signer == Some(KeyKind::RoleSession) && d > 3600 {
                return (
                    sts_error(400, "ValidationError", ROLE_CHAINING_MESSAGE),
                    None,
                );
            }
            s.counter += 1;
            let role_id = format!("AROAFAKE{:012}", s.counter);
            result.push_str(&format!(
                "<AssumedRoleUser><AssumedRoleId>{role_id}:{session}</AssumedRoleId>\
                 <Arn>arn:aws:sts::{account}:assumed-role/{role}/{session}</Arn></AssumedRoleUser>",
                session = xml_escape(session),
                role = xml_escape(role),
            ));
            if action == STS_WEB_IDENTITY {
                result.push_str(
                    "<SubjectFromWebIdentityToken>fake-subject</SubjectFromWebIdentityToken>\
                     <Audience>sts.amazonaws.com</Audience><Provider>fake-oidc-provider</Provider>",
                );
            }
            (d, KeyKind::RoleSession)
        }
    };
    s.counter += 1;
    let n = s.counter;
    let akid = format!("ASIASTS{n:013}");
    let secret = format!("fake-sts-secret-{n}");
    let token = format!("fake-sts-session-token-{n}");
    s.sts_keys.insert(
        akid.clone(),
        StsKey {
            secret: secret.clone(),
            session_token: Some(token.clone()),
            kind,
        },
    );
    let expiration = format_rfc3339(unix_now() + duration);
    let body = format!(
        "<{action}Response xmlns=\"{STS_XMLNS}\">\n  <{action}Result>\n    {result}\
         <Credentials>\n      <AccessKeyId>{akid}</AccessKeyId>\n      \
         <SecretAccessKey>{secret}</SecretAccessKey>\n      <SessionToken>{token}</SessionToken>\n      \
         <Expiration>{expiration}</Expiration>\n    </Credentials>\n  </{action}Result>\n  \
         <ResponseMetadata>\n    <RequestId>{STS_REQUEST_ID}</RequestId>\n  </ResponseMetadata>\n\
         </{action}Response>\n"
    );
    (
        Answer {
            status: 200,
            body,
            error_type: None,
            content_type: "text/xml",
        },
        Some(akid),
    )
}

#[cfg(test)]
mod fake_sts_selftest {
    use super::*;

    #[test]
    fn sha256_hmac_and_sigv4_match_published_vectors() {
        assert_eq!(
            hex(&sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            hex(&sha256(&[b'a'; 1000])),
            "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3"
        );
        // RFC 4231 test case 2.
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // The SigV4 test suite's get-vanilla request.
        let call = StsCall {
            action: String::new(),
            params: BTreeMap::new(),
            access_key_id: Some("AKIDEXAMPLE".into()),
            date: Some("20150830".into()),
            region: Some("us-east-1".into()),
            service: Some("service".into()),
            signed_headers: Some("host;x-amz-date".into()),
            signature: None,
            security_token: None,
            signature_valid: None,
            method: "GET".into(),
            url: "/".into(),
            headers: vec![
                ("host".into(), "example.amazonaws.com".into()),
                ("x-amz-date".into(), "20150830T123600Z".into()),
            ],
            body: String::new(),
        };
        assert_eq!(
            call.signature_with("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
                .as_deref(),
            Some("5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
        );
        assert_eq!(form_decode("a%3Ab+c%2F%"), "a:b c/%");
    }
}
