//! What the fuzz targets share: credentials to write, picked from the input so the fuzzer
//! reaches the awkward values too, and the round-trip check every one-profile format passes.

use awscredd::credentials::{Credentials, Secret};
use awscredd::formats::{Codec, CodecError};
use awscredd::profile_file::edit::Pieces;
use time::OffsetDateTime;

/// Key ids, secrets, tokens and expiries a source may hand over: plain ones most of the time,
/// and the characters that need care in one format or another.
const KEY_IDS: [&str; 4] = ["AKIAEXAMPLE", "ASIA0123456789ABCDEF", "AKIA#x", "AKIA x"];
const SECRETS: [&str; 6] = [
    "wJalr/XUtnFEMI+K7MDENG=",
    "s3cr3t",
    "a'b\"c",
    "$(id)`id`;|&<>{}~",
    "back\\slash",
    "é\u{2028}\u{a0}z",
];
const TOKENS: [Option<&str>; 4] = [
    None,
    Some("IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJH+/="),
    Some("tok en#;"),
    Some("line\nbreak"),
];
const EXPIRIES: [Option<i64>; 4] = [
    None,
    Some(1_767_323_045),       // 2026-01-02T03:04:05Z
    Some(253_402_300_799),     // 9999-12-31T23:59:59Z
    Some(-62_135_596_800 + 1), // 0001-01-01T00:00:01Z
];

/// A small, stable hash of the input, so the same input always picks the same credentials.
pub fn pick(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Credentials chosen by `seed`: three times in four plain ones.
pub fn credentials(seed: u64) -> Credentials {
    let plain = seed % 4 != 0;
    let at = |n: usize, shift: u32| {
        if plain {
            0
        } else {
            (seed >> shift) as usize % n
        }
    };
    let expiry = EXPIRIES[if plain { 1 } else { at(EXPIRIES.len(), 8) }];
    Credentials {
        access_key_id: KEY_IDS[at(KEY_IDS.len(), 16)].to_string(),
        secret_access_key: Secret::new(SECRETS[at(SECRETS.len(), 24)]),
        session_token: TOKENS[if plain { 1 } else { at(TOKENS.len(), 32) }].map(Secret::new),
        expiration: expiry.and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok()),
        account_id: None,
    }
}

/// Reads `old` with `codec`, writes `c` over it, and checks what every format promises: a
/// write that succeeds reads back as what was written (the expiry too, where the format holds
/// one), and writing the same again changes nothing. Panics (a finding) otherwise.
pub fn round_trip(codec: &dyn Codec, old: &[u8], c: &Credentials) {
    let profile = Some("p");
    let _ = codec.read(old, profile);
    let profiles = vec![("p".to_string(), c.clone())];
    let mut out = Pieces::default();
    let mut refused = Vec::new();
    let written = match codec.rewrite(Some(old), &profiles, profile, &mut out, &mut refused) {
        Ok(_) => out.concat(),
        Err(CodecError::Format(_) | CodecError::Edit(_) | CodecError::Unparseable(_)) => return,
    };
    assert!(refused.is_empty(), "a one-profile write refused a part");
    let back = match codec.read(written.as_bytes(), profile) {
        Ok(back) => back,
        Err(e) => {
            panic!("what was written cannot be read: {e:?}\n--- old\n{old:?}\n--- new\n{written:?}")
        }
    };
    let got = back.get("p");
    let mut want = c.clone();
    if !codec.holds_expiry() {
        want.expiration = None;
    }
    assert_eq!(
        got,
        Some(&want),
        "read back differs\n--- old\n{old:?}\n--- new\n{written:?}"
    );
    let mut again = Pieces::default();
    let changed = codec
        .rewrite(
            Some(written.as_bytes()),
            &profiles,
            profile,
            &mut again,
            &mut refused,
        )
        .unwrap_or_else(|e| panic!("a second write fails: {e:?}\n--- new\n{written:?}"));
    assert!(
        !changed,
        "a second write changes the file\n--- new\n{written:?}"
    );
    assert_eq!(again.concat(), written);
}

/// A config of every source kind and output format, in a temporary folder that lives as long as
/// the fuzzing process: `credentials` (ini) holds profiles `dev` and `sso`, and a credentials
/// file is written there with valid keys for `dev`.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub config: awscredd::config::Config,
}

pub const FIXTURE_TOML: &str = r#"
[daemon]
state_dir = "state"

[[output]]
path = "credentials"

[[output]]
path = "launchSettings.json"
format = "launch-settings"
profiles = ["dev"]

[sso_session.corp]
sso_start_url = "https://d-123.awsapps.com/start"
sso_region = "us-east-1"

[profile.dev]
credential_process = "true"

[profile.sso]
sso_session = "corp"
sso_account_id = "123456789012"
sso_role_name = "Admin"

[profile.console]
login_session = "arn:aws:iam::111122223333:user/alice"

[server]
listen = "127.0.0.1:9911"
token_file = "token"
"#;

impl Fixture {
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("a temporary folder");
        std::fs::write(
            dir.path().join("credentials"),
            "[dev]\naws_access_key_id = AKIAEXAMPLE\naws_secret_access_key = s3cr3t\n\
             aws_credential_expiration = 9999-12-31T23:59:59Z\n",
        )
        .expect("the credentials file");
        let path = dir.path().join("awscredd.toml");
        let home = dir.path().to_string_lossy().into_owned();
        let env = move |k: &str| (k == "HOME").then(|| home.clone());
        let (config, report) = awscredd::config::parse_str(FIXTURE_TOML, &path, &env);
        let config = config.unwrap_or_else(|| panic!("the fixture config: {:?}", report.lines()));
        Fixture { dir, config }
    }
}
