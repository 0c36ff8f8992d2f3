//! A Roles Anywhere profile's certificate, chain and private key, parsed from PEM: the leaf
//! (and any certificates after it in the same file: its chain), the `intermediates` file, and
//! the key in PKCS#8, PKCS#1 (RSA) or SEC1 (EC) form. [`Material::parse`] is pure: it checks
//! that the key is the certificate's and knows how to sign with it ([`Key::sign`]); reading
//! the files is [`read`]'s.
//!
//! RSA and P-256 keys sign with aws-lc-rs (already under rustls); P-384 with RustCrypto's
//! `p384`, because Roles Anywhere wants the signature over SHA-256 for every curve and
//! aws-lc-rs has no P-384 signing algorithm over SHA-256 (its `sign_digest` refuses a digest
//! of another hash than the algorithm's).

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self as lc, KeyPair as _};
use base64::Engine as _;
use std::path::Path;
use time::OffsetDateTime;
use x509_cert::der::{Decode, Encode};
use x509_cert::Certificate;

/// The largest PEM file read (a certificate with a long chain is a few KiB).
pub const PEM_MAX: u64 = 1024 * 1024;

/// The files of one profile, as configured.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Files<'a> {
    pub certificate: &'a Path,
    pub private_key: &'a Path,
    pub intermediates: Option<&'a Path>,
}

/// Which configured key a problem is about, so `check` can point at it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Certificate,
    PrivateKey,
    Intermediates,
}

impl Part {
    pub fn key(self) -> &'static str {
        match self {
            Part::Certificate => "certificate",
            Part::PrivateKey => "private_key",
            Part::Intermediates => "intermediates",
        }
    }
}

/// A certificate or key that cannot be used; `message` names the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaterialError {
    pub part: Part,
    /// The file could not be read because of its permissions (`check` run as another user).
    pub permission: bool,
    pub message: String,
}

impl MaterialError {
    fn new(part: Part, message: String) -> Self {
        MaterialError {
            part,
            permission: false,
            message,
        }
    }
}

impl std::fmt::Display for MaterialError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The bytes of the three files, read at one refresh.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Contents {
    pub certificate: Vec<u8>,
    pub private_key: Vec<u8>,
    pub intermediates: Option<Vec<u8>>,
}

/// Reads the files (symlinks followed: certbot's `live/` folder is links), each up to
/// [`PEM_MAX`].
pub fn read(files: &Files<'_>) -> Result<Contents, MaterialError> {
    let one = |path: &Path, part: Part| {
        let fail = |why: String| {
            MaterialError::new(part, format!("{} `{}`: {why}", part.key(), path.display()))
        };
        match crate::files::read_regular(path, PEM_MAX) {
            Ok(Some(bytes)) => Ok(bytes),
            Ok(None) => Err(fail("no such file".into())),
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Err(MaterialError {
                permission: true,
                ..fail(format!("cannot read it: {e}"))
            }),
            Err(e) => Err(fail(format!("cannot read it: {e}"))),
        }
    };
    Ok(Contents {
        certificate: one(files.certificate, Part::Certificate)?,
        private_key: one(files.private_key, Part::PrivateKey)?,
        intermediates: match files.intermediates {
            Some(p) => Some(one(p, Part::Intermediates)?),
            None => None,
        },
    })
}

/// A private key that can sign a Roles Anywhere request.
pub enum Key {
    Rsa(lc::RsaKeyPair),
    P256(lc::EcdsaKeyPair),
    P384(Box<p384::ecdsa::SigningKey>),
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.kind())
    }
}

impl Key {
    /// RSA, P-256 or P-384, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Key::Rsa(_) => "RSA",
            Key::P256(_) => "EC P-256",
            Key::P384(_) => "EC P-384",
        }
    }

    /// The `Authorization` algorithm.
    pub fn algorithm(&self) -> &'static str {
        match self {
            Key::Rsa(_) => "AWS4-X509-RSA-SHA256",
            Key::P256(_) | Key::P384(_) => "AWS4-X509-ECDSA-SHA256",
        }
    }

    /// The public key as a certificate's `subjectPublicKey` holds it: `RSAPublicKey` DER, or
    /// the uncompressed EC point.
    fn public_key(&self) -> Vec<u8> {
        match self {
            Key::Rsa(k) => k.public_key().as_ref().to_vec(),
            Key::P256(k) => k.public_key().as_ref().to_vec(),
            Key::P384(k) => k
                .verifying_key()
                .to_encoded_point(false)
                .as_bytes()
                .to_vec(),
        }
    }

    /// Signs `message` over its SHA-256: RSA PKCS#1 v1.5, or ECDSA (DER) for both curves.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, String> {
        let failed = |e: &dyn std::fmt::Display| format!("signing failed: {e}");
        match self {
            Key::Rsa(k) => {
                let mut sig = vec![0; k.public_modulus_len()];
                k.sign(
                    &lc::RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    message,
                    &mut sig,
                )
                .map_err(|e| failed(&e))?;
                Ok(sig)
            }
            Key::P256(k) => Ok(k
                .sign(&SystemRandom::new(), message)
                .map_err(|e| failed(&e))?
                .as_ref()
                .to_vec()),
            Key::P384(k) => {
                use p384::ecdsa::signature::hazmat::PrehashSigner;
                let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, message);
                let sig: p384::ecdsa::Signature =
                    k.sign_prehash(digest.as_ref()).map_err(|e| failed(&e))?;
                Ok(sig.to_der().as_bytes().to_vec())
            }
        }
    }
}

/// A parsed certificate, chain and key that belong together.
#[derive(Debug)]
pub struct Material {
    /// The leaf, DER (`X-Amz-X509`).
    pub leaf: Vec<u8>,
    /// The intermediates, DER, the leaf's issuer first (`X-Amz-X509-Chain`).
    pub chain: Vec<Vec<u8>>,
    /// The leaf's serial in decimal: the credential scope's key id.
    pub serial: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub key: Key,
}

impl Material {
    /// Parses and matches the three files' contents; `files` names them in errors.
    pub fn parse(contents: &Contents, files: &Files<'_>) -> Result<Material, MaterialError> {
        let cert_err = |m: String| {
            MaterialError::new(
                Part::Certificate,
                format!("certificate `{}`: {m}", files.certificate.display()),
            )
        };
        let mut certs = certificates(&contents.certificate).map_err(cert_err)?;
        if certs.is_empty() {
            return Err(cert_err(
                "no CERTIFICATE in it (PEM is needed; a DER file converts with `openssl x509 -inform der -in FILE -out FILE.pem`)".into(),
            ));
        }
        let leaf_der = certs.remove(0);
        let leaf = Certificate::from_der(&leaf_der)
            .map_err(|e| cert_err(format!("not an X.509 certificate: {e}")))?;
        let mut chain = certs;
        if let (Some(path), Some(bytes)) = (files.intermediates, &contents.intermediates) {
            let more = certificates(bytes).map_err(|m| {
                MaterialError::new(
                    Part::Intermediates,
                    format!("intermediates `{}`: {m}", path.display()),
                )
            })?;
            chain.extend(more);
        }
        let key = private_key(&contents.private_key).map_err(|m| {
            MaterialError::new(
                Part::PrivateKey,
                format!("private_key `{}`: {m}", files.private_key.display()),
            )
        })?;
        let tbs = &leaf.tbs_certificate;
        let spki = tbs.subject_public_key_info.subject_public_key.raw_bytes();
        if key.public_key() != spki {
            return Err(MaterialError::new(
                Part::PrivateKey,
                format!(
                    "private_key `{}` does not match certificate `{}` (the key is {}; the certificate is for another key)",
                    files.private_key.display(),
                    files.certificate.display(),
                    key.kind()
                ),
            ));
        }
        let time = |t: x509_cert::time::Time| {
            OffsetDateTime::from_unix_timestamp(t.to_unix_duration().as_secs() as i64)
                .map_err(|e| cert_err(format!("a validity date out of range: {e}")))
        };
        Ok(Material {
            serial: decimal(tbs.serial_number.as_bytes()),
            not_before: time(tbs.validity.not_before)?,
            not_after: time(tbs.validity.not_after)?,
            leaf: leaf_der,
            chain,
            key,
        })
    }

    /// Why the certificate cannot be used at `now`, if it cannot (`path` names it).
    pub fn unusable_at(&self, now: OffsetDateTime, path: &Path) -> Option<String> {
        let fmt = crate::credentials::format_utc;
        if now >= self.not_after {
            Some(format!(
                "certificate `{}` expired at {} (serial {}): renew it",
                path.display(),
                fmt(self.not_after),
                self.serial
            ))
        } else if now < self.not_before {
            Some(format!(
                "certificate `{}` is not valid before {} (serial {}): check this machine's clock",
                path.display(),
                fmt(self.not_before),
                self.serial
            ))
        } else {
            None
        }
    }

    /// `X-Amz-X509`: the leaf, base64 DER.
    pub fn leaf_header(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.leaf)
    }

    /// `X-Amz-X509-Chain`: the intermediates, base64 DER, comma-separated; `None` without.
    pub fn chain_header(&self) -> Option<String> {
        if self.chain.is_empty() {
            return None;
        }
        let parts: Vec<String> = self
            .chain
            .iter()
            .map(|c| base64::engine::general_purpose::STANDARD.encode(c))
            .collect();
        Some(parts.join(","))
    }
}

/// The validity of the leaf certificate (the first in the file) at `path`: `(notBefore,
/// notAfter)`, for what operators are told ahead of its end; why not, naming the file.
pub fn leaf_validity(path: &Path) -> Result<(OffsetDateTime, OffsetDateTime), String> {
    let fail = |why: String| format!("certificate `{}`: {why}", path.display());
    let bytes = match crate::files::read_regular(path, PEM_MAX) {
        Ok(Some(b)) => b,
        Ok(None) => return Err(fail("no such file".into())),
        Err(e) => return Err(fail(format!("cannot read it: {e}"))),
    };
    let der = certificates(&bytes)
        .map_err(fail)?
        .into_iter()
        .next()
        .ok_or_else(|| fail("no CERTIFICATE in it".into()))?;
    let leaf = Certificate::from_der(&der).map_err(|e| fail(e.to_string()))?;
    let time = |t: x509_cert::time::Time| {
        OffsetDateTime::from_unix_timestamp(t.to_unix_duration().as_secs() as i64)
            .map_err(|e| fail(format!("a validity date out of range: {e}")))
    };
    let v = &leaf.tbs_certificate.validity;
    Ok((time(v.not_before)?, time(v.not_after)?))
}

/// A big-endian unsigned integer in decimal.
pub fn decimal(bytes: &[u8]) -> String {
    let mut digits: Vec<u8> = Vec::new(); // little-endian decimal digits
    for &b in bytes {
        let mut carry = u32::from(b);
        for d in digits.iter_mut() {
            let v = u32::from(*d) * 256 + carry;
            *d = (v % 10) as u8;
            carry = v / 10;
        }
        while carry > 0 {
            digits.push((carry % 10) as u8);
            carry /= 10;
        }
    }
    if digits.is_empty() {
        return "0".into();
    }
    digits.iter().rev().map(|d| char::from(b'0' + d)).collect()
}

/// One PEM block: its label and its decoded bytes.
#[derive(Debug)]
struct Block {
    label: String,
    der: Vec<u8>,
}

/// Every PEM block of `bytes`, in order; what is between blocks is ignored (OpenSSL writes
/// `Bag Attributes` and `subject=` lines there, in whatever encoding). A block without its END line, or with
/// bad base64, is an error that says which block.
fn blocks(bytes: &[u8]) -> Result<Vec<Block>, String> {
    // Bytes that are not UTF-8 outside the blocks are ignored, as OpenSSL ignores them;
    // inside one they fail its base64.
    let text = String::from_utf8_lossy(bytes);
    let mut out = Vec::new();
    let mut rest = &*text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + 11..];
        let label_end = after
            .find("-----")
            .ok_or_else(|| "a BEGIN line that does not end with -----".to_string())?;
        let label = after[..label_end].to_string();
        let body_start = &after[label_end + 5..];
        let end_line = format!("-----END {label}-----");
        let body_end = body_start.find(&end_line).ok_or_else(|| {
            format!(
                "the PEM block {} is cut short (no `{end_line}` line): the file is truncated",
                out.len() + 1
            )
        })?;
        let body = &body_start[..body_end];
        if body.contains("Proc-Type:") || label.starts_with("ENCRYPTED") {
            return Err(format!(
                "the {label} is encrypted; awscredd needs an unencrypted key file (mode 0600): `openssl pkey -in KEY -out KEY.plain`"
            ));
        }
        let b64: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64.as_bytes())
            .map_err(|e| format!("the {label} block is not valid base64 ({e})"))?;
        out.push(Block { label, der });
        rest = &body_start[body_end + end_line.len()..];
    }
    Ok(out)
}

/// The DER of each CERTIFICATE block, each checked to parse.
fn certificates(bytes: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    for b in blocks(bytes)? {
        if b.label != "CERTIFICATE" {
            continue;
        }
        let parsed = Certificate::from_der(&b.der).map_err(|e| {
            format!(
                "certificate {} in it is not an X.509 certificate ({e})",
                out.len() + 1
            )
        })?;
        // Re-encoded as read: the service verifies the bytes the CA signed.
        if parsed.to_der().map_or(true, |d| d != b.der) {
            return Err(format!(
                "certificate {} in it is not DER-encoded as its issuer signed it",
                out.len() + 1
            ));
        }
        out.push(b.der);
    }
    Ok(out)
}

/// The first private key of `bytes`: PKCS#8, PKCS#1 (RSA) or SEC1 (EC P-256, P-384).
fn private_key(bytes: &[u8]) -> Result<Key, String> {
    let all = blocks(bytes)?;
    let Some(b) = all.iter().find(|b| b.label.ends_with("PRIVATE KEY")) else {
        return Err("no PRIVATE KEY in it (PEM: PKCS#8, PKCS#1 or SEC1)".into());
    };
    let der = b.der.as_slice();
    let p256 = &lc::ECDSA_P256_SHA256_ASN1_SIGNING;
    let p384 = |der: &[u8], pkcs8: bool| {
        use p384::pkcs8::DecodePrivateKey;
        let secret = if pkcs8 {
            p384::SecretKey::from_pkcs8_der(der).ok()
        } else {
            p384::SecretKey::from_sec1_der(der).ok()
        };
        secret.map(|s| Key::P384(Box::new(p384::ecdsa::SigningKey::from(s))))
    };
    let key = match b.label.as_str() {
        "PRIVATE KEY" => lc::RsaKeyPair::from_pkcs8(der)
            .ok()
            .map(Key::Rsa)
            .or_else(|| lc::EcdsaKeyPair::from_pkcs8(p256, der).ok().map(Key::P256))
            .or_else(|| p384(der, true)),
        "RSA PRIVATE KEY" => lc::RsaKeyPair::from_der(der).ok().map(Key::Rsa),
        "EC PRIVATE KEY" => lc::EcdsaKeyPair::from_private_key_der(p256, der)
            .ok()
            .map(Key::P256)
            .or_else(|| p384(der, false)),
        other => return Err(format!("a {other} is not a key awscredd can use")),
    };
    key.ok_or_else(|| {
        format!(
            "the {} is not an RSA (2048 bits or more), EC P-256 or EC P-384 key awscredd can read",
            b.label
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_are_written_in_decimal() {
        assert_eq!(decimal(&[]), "0");
        assert_eq!(decimal(&[0]), "0");
        assert_eq!(decimal(&[0x01, 0x00]), "256");
        assert_eq!(decimal(&[0x00, 0xff]), "255");
        // 2^64 + 1: more than a machine word.
        assert_eq!(
            decimal(&[1, 0, 0, 0, 0, 0, 0, 0, 1]),
            "18446744073709551617"
        );
        // A 20-byte serial as CAs make them.
        let big = [0x7f; 20];
        let expect = "727885129180488904360266563744972327436484050815"; // Python: int.from_bytes(b"\x7f" * 20, "big")
        assert_eq!(decimal(&big), expect);
    }

    #[test]
    fn pem_blocks_that_are_cut_short_or_encrypted_are_named() {
        let cut = b"-----BEGIN CERTIFICATE-----\nMIIB\n";
        let e = blocks(cut).unwrap_err();
        assert!(e.contains("truncated") && e.contains("block 1"), "{e}");
        let enc =
            b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n";
        let e = private_key(enc).unwrap_err();
        assert!(e.contains("encrypted"), "{e}");
        let legacy = b"-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES\n\nMIIB\n-----END RSA PRIVATE KEY-----\n";
        let e = private_key(legacy).unwrap_err();
        assert!(e.contains("encrypted"), "{e}");
        let e = private_key(b"hello").unwrap_err();
        assert!(e.contains("no PRIVATE KEY"), "{e}");
        let bad = b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        let e = certificates(bad).unwrap_err();
        assert!(e.contains("base64"), "{e}");
    }

    /// Found by the third adversarial pass: `openssl pkcs12` writes `Bag Attributes` with the
    /// friendly name's bytes as they are (Latin-1 `Zürich`), and a file preallocated then
    /// written can end in NULs; OpenSSL reads such a chain, awscredd refused it as "not text".
    #[test]
    fn bytes_that_are_not_text_around_blocks_are_ignored_as_openssl_does() {
        let text = b"Bag Attributes\n    friendlyName: Z\xfcrich\n-----BEGIN X-----\nAAEC\n-----END X-----\n\xff\xfe\x00\x00";
        let b = blocks(text).unwrap();
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].der, [0, 1, 2]);
        // Inside a block they are still an error that names it.
        let bad = b"-----BEGIN X-----\nAA\xffEC\n-----END X-----\n";
        let e = blocks(bad).unwrap_err();
        assert!(e.contains("X block is not valid base64"), "{e}");
    }

    #[test]
    fn text_around_blocks_is_ignored() {
        let text = b"Bag Attributes\nsubject=CN = x\n-----BEGIN X-----\nAAEC\n-----END X-----\ntrailer\n-----BEGIN Y-----\nAw==\n-----END Y-----";
        let b = blocks(text).unwrap();
        assert_eq!(b.len(), 2);
        assert_eq!(
            (b[0].label.as_str(), b[0].der.as_slice()),
            ("X", &[0, 1, 2][..])
        );
        assert_eq!((b[1].label.as_str(), b[1].der.as_slice()), ("Y", &[3][..]));
    }
}
