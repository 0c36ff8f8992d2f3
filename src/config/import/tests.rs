//! Converting `~/.aws/config`: every form a real file has, what is taken, what is not and why.

use super::*;

fn env(name: &str) -> Option<String> {
    (name == "HOME").then(|| "/home/u".to_string())
}

fn convert(text: &str, only: &[&str]) -> Result<Imported, ImportError> {
    let only: Vec<String> = only.iter().map(|s| s.to_string()).collect();
    import(&Request {
        text,
        shown: "~/.aws/config",
        only: &only,
        output: None,
        config_path: Path::new("/home/u/.config/awscredd/config.toml"),
        env: &env,
    })
}

/// Every form, with comments, odd spacing, CRLF, sub-properties, a dotted name.
pub(super) const EVERY_FORM: &str = "# my config\r\n\
[default]\r\n\
region = eu-west-1\r\n\
output = json\r\n\
credential_process = /usr/local/bin/creds --json\r\n\
\r\n\
[sso-session corp]\r\n\
sso_start_url = https://corp.awsapps.com/start\r\n\
sso_region = us-east-1 ; the portal's region\r\n\
sso_registration_scopes = sso:account:access\r\n\
\r\n\
[profile   dev ]   # odd spacing\r\n\
sso_session = corp\r\n\
sso_account_id = 111122223333\r\n\
sso_role_name = Developer\r\n\
region = eu-west-1\r\n\
s3 =\r\n\
\x20 max_concurrent_requests = 10\r\n\
\r\n\
; the older form\r\n\
[profile legacy]\r\n\
sso_start_url = https://old.awsapps.com/start\r\n\
sso_region = us-west-2\r\n\
sso_account_id = 444455556666\r\n\
sso_role_name = ReadOnly\r\n\
\r\n\
[profile prod.admin]\r\n\
source_profile = dev\r\n\
role_arn = arn:aws:iam::777788889999:role/Admin\r\n\
duration_seconds = 3600\r\n\
external_id = ext-1\r\n\
\r\n\
[profile pod]\r\n\
role_arn = arn:aws:iam::777788889999:role/Pod\r\n\
web_identity_token_file = /var/run/token\r\n\
\r\n\
[profile keys]\r\n\
aws_access_key_id = AKIAEXAMPLE\r\n\
aws_secret_access_key = secret\r\n\
\r\n\
[profile batch]\r\n\
source_profile = keys\r\n\
role_arn = arn:aws:iam::777788889999:role/Batch\r\n\
\r\n\
[profile ec2]\r\n\
role_arn = arn:aws:iam::777788889999:role/Ec2\r\n\
credential_source = Ec2InstanceMetadata\r\n\
\r\n\
[profile onthebox]\r\n\
source_profile = ec2\r\n\
role_arn = arn:aws:iam::777788889999:role/Chained\r\n\
\r\n\
[profile signin]\r\n\
login_session = arn:aws:iam::111122223333:user/alice\r\n\
region = eu-west-1\r\n\
\r\n\
[profile notanarn]\r\n\
login_session = alice\r\n\
\r\n\
[profile bad]\r\n\
role_arn = not-an-arn\r\n\
source_profile = dev\r\n\
\r\n\
[services local]\r\n\
s3 =\r\n\
\x20 endpoint_url = http://localhost:4566\r\n";

#[test]
fn every_form_is_taken_or_listed_with_its_reason() {
    let got = convert(EVERY_FORM, &[]).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(got.sessions, ["corp"]);
    assert_eq!(
        got.profiles,
        [
            "default",
            "dev",
            "legacy",
            "prod.admin",
            "pod",
            "batch",
            "signin"
        ]
    );
    let skipped: Vec<(&str, usize, &str)> = got
        .skipped
        .iter()
        .map(|s| (s.header.as_str(), s.line, s.why.as_str()))
        .collect();
    let find = |h: &str| {
        skipped
            .iter()
            .find(|s| s.0 == h)
            .unwrap_or_else(|| panic!("{h} not listed: {skipped:#?}"))
    };
    assert!(find("[profile ec2]")
        .2
        .starts_with("credential_source = Ec2InstanceMetadata"));
    assert_eq!(find("[profile ec2]").1, 45);
    assert!(find("[profile onthebox]")
        .2
        .starts_with("its source_profile `ec2` is not taken"));
    assert!(find("[profile notanarn]")
        .2
        .starts_with("login_session `alice` is not an ARN"));
    assert!(
        find("[profile bad]").2.contains("is not an IAM role ARN"),
        "{skipped:#?}"
    );
    assert_eq!(skipped.len(), 4, "{skipped:#?}");
    // The static source is said to be read from the credentials file, and to be moved there.
    assert!(
        got.notes
            .iter()
            .any(|n| n.starts_with(
                "[profile keys] (~/.aws/config:37) has static keys and is a source_profile"
            ) && n.contains("move aws_access_key_id and aws_secret_access_key there")),
        "{:#?}",
        got.notes
    );
    // The older form gets check's hint.
    assert!(
        got.notes
            .iter()
            .any(|n| n.contains("warning: profile `legacy` uses the older per-profile SSO form")),
        "{:#?}",
        got.notes
    );

    let t = &got.toml;
    for want in [
        "# from ~/.aws/config:7 [sso-session corp]\n[sso_session.corp]\nsso_start_url = \"https://corp.awsapps.com/start\"\nsso_region = \"us-east-1\"\nsso_registration_scopes = \"sso:account:access\"\n",
        "# from ~/.aws/config:2 [default]; left there: output\n[profile.default]\ncredential_process = \"/usr/local/bin/creds --json\"\nregion = \"eu-west-1\"\n",
        "# from ~/.aws/config:12 [profile   dev ]   # odd spacing; left there: s3\n[profile.dev]\nsso_session = \"corp\"\nsso_account_id = \"111122223333\"\nsso_role_name = \"Developer\"\nregion = \"eu-west-1\"\n",
        "[profile.legacy]\nsso_start_url = \"https://old.awsapps.com/start\"\nsso_region = \"us-west-2\"\nsso_account_id = \"444455556666\"\nsso_role_name = \"ReadOnly\"\n",
        "[profile.\"prod.admin\"]\nrole_arn = \"arn:aws:iam::777788889999:role/Admin\"\nsource_profile = \"dev\"\nduration_seconds = 3600\nexternal_id = \"ext-1\"\n",
        "[profile.pod]\nrole_arn = \"arn:aws:iam::777788889999:role/Pod\"\nweb_identity_token_file = \"/var/run/token\"\n",
        "[profile.batch]\nrole_arn = \"arn:aws:iam::777788889999:role/Batch\"\nsource_profile = \"keys\"\n",
    ] {
        assert!(t.contains(want), "missing:\n{want}\nin:\n{t}");
    }
    assert!(
        !t.contains("\r") && !t.contains("[profile.keys]") && !t.contains("AKIA"),
        "{t}"
    );
    // What the checks say of it: valid.
    let (cfg, report) = parse_str(t, Path::new("/home/u/.config/awscredd/config.toml"), &env);
    assert!(cfg.is_some(), "{report}");
    // Every taken profile would still be resolved from ~/.aws/config first.
    let shadowed: Vec<&str> = got.shadows.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(shadowed, got.profiles);
    assert_eq!(got.shadows[1].header, "[profile   dev ]");
    assert_eq!(got.shadows[1].line, 12);
    assert_eq!(
        got.shadows[1].keys,
        ["sso_session", "sso_account_id", "sso_role_name"]
    );
}

#[test]
fn profile_narrows_to_the_named_ones_and_their_sources() {
    let got = convert(EVERY_FORM, &["prod.admin"]).unwrap();
    assert_eq!(got.profiles, ["dev", "prod.admin"]);
    assert_eq!(got.sessions, ["corp"]);
    assert!(got.skipped.is_empty(), "{:#?}", got.skipped);
    let got = convert(EVERY_FORM, &["legacy"]).unwrap();
    assert_eq!(got.profiles, ["legacy"]);
    assert!(got.sessions.is_empty());
    assert!(!got.toml.contains("[sso_session"), "{}", got.toml);
    assert_eq!(
        convert(EVERY_FORM, &["nope"]).unwrap_err(),
        ImportError::UnknownProfile("nope".into())
    );
    match convert(EVERY_FORM, &["ec2"]).unwrap_err() {
        ImportError::Nothing(s) => assert_eq!(s[0].header, "[profile ec2]"),
        e => panic!("{e:?}"),
    }
}

#[test]
fn a_file_the_sdks_reject_is_an_error_with_its_line() {
    assert_eq!(
        convert("[profile a]\nregion = x\nno equals here\n", &[]).unwrap_err(),
        ImportError::Parse {
            line: 3,
            message: "Expected an '=' sign defining a property".into()
        }
    );
}

#[test]
fn mixed_sso_keys_are_taken_when_they_agree_and_left_when_they_differ() {
    let text = "[sso-session c]\nsso_start_url = https://x.awsapps.com/start\nsso_region = us-east-1\n\
                [profile same]\nsso_session = c\nsso_start_url = https://x.awsapps.com/start\nsso_account_id = 111122223333\nsso_role_name = R\n\
                [profile other]\nsso_session = c\nsso_region = eu-west-1\nsso_account_id = 111122223333\nsso_role_name = R\n";
    let got = convert(text, &[]).unwrap();
    assert_eq!(got.profiles, ["same"]);
    assert!(got.skipped[0]
        .why
        .starts_with("sso_region `eu-west-1` differs from `us-east-1`"));
    assert!(!got
        .toml
        .contains("[profile.same]\nsso_session = \"c\"\nsso_start_url"));
}
