//! DPoP proofs of possession (RFC 9449) for the Sign-In token endpoint: the P-256 key an
//! `aws login` sign-in is bound to (the cache's `dpopKey`, SEC1 PEM as the AWS CLI writes it),
//! and the ES256 JWS that proves it for one request (`htm`, `htu`, `iat`, a fresh `jti`).
//! Signed with aws-lc-rs.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;

/// A sign-in's DPoP key. It is a secret: `Debug` never prints it.
pub struct DpopKey {
    pair: EcdsaKeyPair,
}

impl std::fmt::Debug for DpopKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DpopKey(** redacted **)")
    }
}

/// The DER inside a PEM block, and its label.
fn pem_der(pem: &str) -> Result<(String, Vec<u8>), String> {
    let mut lines = pem.lines().map(str::trim).filter(|l| !l.is_empty());
    let label = lines
        .next()
        .and_then(|l| l.strip_prefix("-----BEGIN "))
        .and_then(|l| l.strip_suffix("-----"))
        .ok_or("it is not a PEM key (no -----BEGIN line)")?
        .to_string();
    // A label is a few words in capitals. Anything else is the key's own text on the same
    // line (line breaks lost or mangled): never repeated in a message.
    let plain = |c: char| c.is_ascii_uppercase() || c.is_ascii_digit() || c == ' ';
    if label.len() > 40 || !label.chars().all(plain) {
        return Err(
            "it is not a PEM key (its first line is not a -----BEGIN LABEL----- line of its own)"
                .into(),
        );
    }
    let mut body = String::new();
    let mut ended = false;
    for l in lines {
        if l.starts_with("-----END ") {
            ended = true;
            break;
        }
        body.push_str(l);
    }
    if !ended {
        return Err(format!("its PEM block `{label}` has no -----END line"));
    }
    let der = STANDARD
        .decode(body.as_bytes())
        .map_err(|e| format!("its PEM block `{label}` is not base64 ({e})"))?;
    Ok((label, der))
}

impl DpopKey {
    /// The key of a login cache's `dpopKey`: a P-256 private key, SEC1 (`EC PRIVATE KEY`, as
    /// the AWS CLI writes it) or PKCS#8 (`PRIVATE KEY`). Anything else is refused with why.
    ///
    /// A key whose line breaks were written as the two characters `\n` (one line of text,
    /// as the AWS Rust SDK's own test data has it, and which that SDK reads) is the same key.
    pub fn from_pem(pem: &str) -> Result<Self, String> {
        let unescaped;
        let pem = if !pem.trim().contains('\n') && pem.contains("\\n") {
            unescaped = pem.replace("\\n", "\n");
            unescaped.as_str()
        } else {
            pem
        };
        let (label, der) = pem_der(pem)?;
        if !matches!(label.as_str(), "EC PRIVATE KEY" | "PRIVATE KEY") {
            return Err(format!(
                "it is a `{label}`, not the P-256 EC private key a sign-in is bound to"
            ));
        }
        let pair = EcdsaKeyPair::from_private_key_der(&ECDSA_P256_SHA256_FIXED_SIGNING, &der)
            .map_err(|e| {
                format!("it is not a P-256 EC private key (an EC key of another curve, or of another type: {e})")
            })?;
        Ok(DpopKey { pair })
    }

    /// A new random key, for a new sign-in.
    pub fn generate() -> Result<Self, String> {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .map_err(|_| "cannot make a P-256 key".to_string())?;
        Ok(DpopKey { pair })
    }

    /// The key as the AWS CLI writes it: SEC1 DER in an `EC PRIVATE KEY` PEM block of 64
    /// columns.
    pub fn to_pem(&self) -> Result<String, String> {
        let der = self
            .pair
            .private_key()
            .as_der()
            .map_err(|_| "cannot encode the P-256 key".to_string())?;
        let b64 = STANDARD.encode(der.as_ref());
        let mut out = String::from("-----BEGIN EC PRIVATE KEY-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            out.push_str(&String::from_utf8_lossy(chunk));
            out.push('\n');
        }
        out.push_str("-----END EC PRIVATE KEY-----\n");
        Ok(out)
    }

    /// The public key as a JWK (`kty`, `x`, `y`, `crv`, in botocore's order).
    pub fn jwk(&self) -> serde_json::Value {
        // An uncompressed point: 0x04, then x and y of 32 bytes each.
        let coordinates = self.pair.public_key().as_ref().get(1..).unwrap_or_default();
        let (x, y) = coordinates.split_at(coordinates.len() / 2);
        serde_json::json!({
            "kty": "EC",
            "x": URL_SAFE_NO_PAD.encode(x),
            "y": URL_SAFE_NO_PAD.encode(y),
            "crv": "P-256",
        })
    }

    /// A proof for one request: `htm` the method, `htu` the URL without query or fragment,
    /// `iat` the time in Unix seconds, and a random `jti` never used before.
    pub fn proof(&self, htm: &str, htu: &str, iat: i64) -> Result<String, String> {
        let htu = htu.split(['?', '#']).next().unwrap_or(htu);
        let header = serde_json::json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk()});
        let claims = serde_json::json!({"htm": htm, "htu": htu, "iat": iat, "jti": uuid4()?});
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let sig = self
            .pair
            .sign(&rng, signing_input.as_bytes())
            .map_err(|_| "cannot sign the DPoP proof".to_string())?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(sig.as_ref())
        ))
    }
}

/// A random UUID (version 4), as the AWS CLI makes a `jti` or a `state`.
pub fn uuid4() -> Result<String, String> {
    let mut b = [0u8; 16];
    aws_lc_rs::rand::fill(&mut b).map_err(|_| "no random numbers".to_string())?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};

    fn part(jws: &str, i: usize) -> serde_json::Value {
        let p = jws.split('.').nth(i).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap()
    }

    #[test]
    fn a_proof_verifies_with_its_jwk_and_says_what_the_request_is() {
        let key = DpopKey::generate().unwrap();
        let pem = key.to_pem().unwrap();
        assert!(pem.starts_with("-----BEGIN EC PRIVATE KEY-----\n"), "{pem}");
        assert!(pem.lines().all(|l| l.len() <= 64));
        let key = DpopKey::from_pem(&pem).unwrap();
        let a = key
            .proof("POST", "http://127.0.0.1:1/v1/token?x=1", 1_700_000_000)
            .unwrap();
        let b = key
            .proof("POST", "http://127.0.0.1:1/v1/token", 1_700_000_000)
            .unwrap();
        let (header, claims) = (part(&a, 0), part(&a, 1));
        assert_eq!(header["typ"], "dpop+jwt");
        assert_eq!(header["alg"], "ES256");
        assert!(header["jwk"].get("d").is_none());
        assert_eq!(claims["htu"], "http://127.0.0.1:1/v1/token");
        assert_eq!(claims["htm"], "POST");
        assert_eq!(claims["iat"], 1_700_000_000);
        assert_ne!(claims["jti"], part(&b, 1)["jti"], "a fresh jti per proof");
        // The signature (raw r||s) checks with the public key the header carries.
        let x = URL_SAFE_NO_PAD
            .decode(header["jwk"]["x"].as_str().unwrap())
            .unwrap();
        let y = URL_SAFE_NO_PAD
            .decode(header["jwk"]["y"].as_str().unwrap())
            .unwrap();
        let point = [&[4u8][..], &x, &y].concat();
        let (input, sig) = a.rsplit_once('.').unwrap();
        let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
        assert_eq!(sig.len(), 64);
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point)
            .verify(input.as_bytes(), &sig)
            .unwrap();
    }

    #[test]
    fn a_key_with_its_line_breaks_written_as_backslash_n_is_the_same_key() {
        let key = DpopKey::generate().unwrap();
        let pem = key.to_pem().unwrap();
        let one_line = pem.trim_end().replace('\n', "\\n");
        assert!(!one_line.contains('\n'));
        let read = DpopKey::from_pem(&one_line).unwrap();
        assert_eq!(read.jwk(), key.jwk());
        // With a line break at its end too.
        let read = DpopKey::from_pem(&format!("{one_line}\n")).unwrap();
        assert_eq!(read.jwk(), key.jwk());
    }

    /// A key whose line breaks became other characters (here spaces) is one line that starts
    /// with `-----BEGIN ` and ends with `-----`: its middle was taken for the PEM label and
    /// shown in the error, the private key with it.
    #[test]
    fn a_key_on_one_line_is_refused_without_showing_the_key() {
        let pem = DpopKey::generate().unwrap().to_pem().unwrap();
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        for sep in [" ", "\\r\\n", "\t", "|"] {
            let one_line = pem.trim_end().replace('\n', sep);
            let e = DpopKey::from_pem(&one_line).unwrap_err();
            assert!(e.contains("not a PEM key"), "{e}");
            assert!(!e.contains(&body[..16]), "the key is in the message: {e}");
        }
    }

    #[test]
    fn keys_of_another_type_or_curve_are_refused_with_why() {
        // P-384 (SEC1) and an RSA label.
        let p384 =
            EcdsaKeyPair::generate(&aws_lc_rs::signature::ECDSA_P384_SHA384_FIXED_SIGNING).unwrap();
        let der = p384.private_key().as_der().unwrap();
        let pem = format!(
            "-----BEGIN EC PRIVATE KEY-----\n{}\n-----END EC PRIVATE KEY-----\n",
            STANDARD.encode(der.as_ref())
        );
        let e = DpopKey::from_pem(&pem).unwrap_err();
        assert!(e.contains("not a P-256 EC private key"), "{e}");
        let e = DpopKey::from_pem(
            "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n",
        )
        .unwrap_err();
        assert!(e.contains("`RSA PRIVATE KEY`"), "{e}");
        let e = DpopKey::from_pem("-----BEGIN EC PRIVATE KEY-----\nAAAA").unwrap_err();
        assert!(e.contains("no -----END line"), "{e}");
        assert!(DpopKey::from_pem("secret")
            .unwrap_err()
            .contains("not a PEM key"));
        assert_eq!(
            format!("{:?}", DpopKey::generate().unwrap()),
            "DpopKey(** redacted **)"
        );
        let u = uuid4().unwrap();
        assert_eq!((u.len(), &u[14..15]), (36, "4"));
    }
}
