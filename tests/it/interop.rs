//! Interop: botocore (the AWS CLI's and boto3's core) reads every profile `once` wrote into a
//! file full of comments, blank lines, user keys, nested values and CRLF line endings, and
//! still reads the profiles and keys awscredd does not manage.

use crate::util::{find_botocore, show, Sandbox};
use awscredd::profile_file::ProfileFile;
use awscredd::store::credentials_in;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A `credential_process` script; with `token`, a session token and an expiry too.
fn script(sb: &Sandbox, name: &str, akid: &str, token: bool) -> PathBuf {
    let extra = if token {
        format!(r#", "SessionToken": "token-{akid}", "Expiration": "2099-01-01T00:00:00Z""#)
    } else {
        String::new()
    };
    let p = sb.file(name);
    std::fs::write(
        &p,
        format!(
            "#!/bin/sh\ncat <<'JSON'\n{{\"Version\": 1, \"AccessKeyId\": \"{akid}\", \
             \"SecretAccessKey\": \"secret-{akid}\"{extra}}}\nJSON\n"
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    p
}

/// The file before `once`: LF lines, then CRLF lines, no newline at the very end.
const HEAD: &str = "\
# Credentials for the interop test: botocore must read every profile below.
; Semicolon comments too, and blank lines.


[default]
aws_access_key_id = AKIADEFAULTUNMANAGED
aws_secret_access_key = default/secret+key=
region = us-east-2

# dev is managed: stale keys are replaced, comments and user keys stay.
[dev]
";
const DEV_BEFORE: &str = "\
AWS_Access_Key_Id = STALEDEV
# a comment between keys
aws_secret_access_key\t=\tstale-dev-secret
region = eu-west-1
; the token and its legacy alias are both there
aws_session_token = stale-dev-token
aws_security_token = stale-dev-token
s3 =
    addressing_style = path
    max_concurrent_requests = 20
";
const MIDDLE: &str = "
; an unmanaged profile
[hand-made]
aws_access_key_id = AKIAHANDMADE
aws_secret_access_key = hand-made-secret
output = json

# from here on, lines end in CRLF\r
[ci]\r
";
const CI_BEFORE: &str = "\
aws_access_key_id = STALECI\r
aws_secret_access_key = stale-ci-secret\r
aws_session_token = stale-ci-token\r
aws_credential_expiration = 2000-01-01T00:00:00Z\r
region = ap-southeast-2\r
";
const TAIL: &str = "\
\r
[last-unmanaged]\r
aws_access_key_id = AKIALAST\r
aws_secret_access_key = last-secret";

#[test]
fn botocore_reads_every_profile_we_wrote() {
    let Some((python, site)) = find_botocore() else {
        if std::env::var_os("CI").is_some() {
            panic!(
                "the interop test needs botocore, and CI is set: `pip install boto3` \
                 (python3 -c \"import botocore\" failed)"
            );
        }
        println!(
            "SKIPPED interop::botocore_reads_every_profile_we_wrote: python3 cannot import \
             botocore (pip install boto3 to run it)"
        );
        return;
    };

    let sb = Sandbox::new();
    let dev = script(&sb, "dev.sh", "ASIADEVNEW", true);
    let ci = script(&sb, "ci.sh", "AKIACINEW", false);
    let new_one = script(&sb, "new-one.sh", "ASIANEWONE", true);
    let team = script(&sb, "team.sh", "ASIATEAMPROD", true);
    sb.config(&format!(
        "[daemon]\nstate_dir = \"state\"\n\n\
         [[output]]\npath = \"aws/credentials\"\n\
         profiles = [\"dev\", \"ci\", \"new-one\", \"team/prod@eu\"]\n\n\
         [profile.dev]\ncredential_process = \"{}\"\n\n\
         [profile.ci]\ncredential_process = \"{}\"\n\n\
         [profile.new-one]\ncredential_process = \"{}\"\n\n\
         [profile.\"team/prod@eu\"]\ncredential_process = \"{}\"\n",
        dev.display(),
        ci.display(),
        new_one.display(),
        team.display()
    ));
    let creds = sb.file("aws/credentials");
    std::fs::create_dir_all(creds.parent().unwrap()).unwrap();
    std::fs::write(
        &creds,
        format!("{HEAD}{DEV_BEFORE}{MIDDLE}{CI_BEFORE}{TAIL}"),
    )
    .unwrap();

    let out = sb.run(&["once", "--force"]);
    assert!(out.status.success(), "{}", show(&out));

    // Exactly the managed lines changed; new keys go after the last line of the section
    // (after the nested `s3` value), new profiles at the end after a blank line.
    let dev_after = "\
aws_access_key_id = ASIADEVNEW
# a comment between keys
aws_secret_access_key = secret-ASIADEVNEW
region = eu-west-1
; the token and its legacy alias are both there
aws_session_token = token-ASIADEVNEW
aws_security_token = token-ASIADEVNEW
s3 =
    addressing_style = path
    max_concurrent_requests = 20
aws_credential_expiration = 2099-01-01T00:00:00Z
";
    let ci_after = "\
aws_access_key_id = AKIACINEW\r
aws_secret_access_key = secret-AKIACINEW\r
region = ap-southeast-2\r
";
    let appended = "

[new-one]
aws_access_key_id = ASIANEWONE
aws_secret_access_key = secret-ASIANEWONE
aws_session_token = token-ASIANEWONE
aws_credential_expiration = 2099-01-01T00:00:00Z

[team/prod@eu]
aws_access_key_id = ASIATEAMPROD
aws_secret_access_key = secret-ASIATEAMPROD
aws_session_token = token-ASIATEAMPROD
aws_credential_expiration = 2099-01-01T00:00:00Z
";
    let text = std::fs::read_to_string(&creds).unwrap();
    assert_eq!(
        text,
        format!("{HEAD}{dev_after}{MIDDLE}{ci_after}{TAIL}{appended}"),
        "the file after once"
    );

    let profiles = [
        "default",
        "dev",
        "hand-made",
        "ci",
        "last-unmanaged",
        "new-one",
        "team/prod@eu",
    ];
    let got = botocore_view(&python, &site, &sb, &creds, &profiles);

    let available: Vec<&str> = got["available"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for p in profiles {
        assert!(available.contains(&p), "botocore lists no [{p}]: {got:#}");
    }
    let want: [(&str, Value, Value); 7] = [
        (
            "default",
            json!(["AKIADEFAULTUNMANAGED", "default/secret+key=", null]),
            json!("us-east-2"),
        ),
        (
            "dev",
            json!(["ASIADEVNEW", "secret-ASIADEVNEW", "token-ASIADEVNEW"]),
            json!("eu-west-1"),
        ),
        (
            "hand-made",
            json!(["AKIAHANDMADE", "hand-made-secret", null]),
            Value::Null,
        ),
        (
            "ci",
            json!(["AKIACINEW", "secret-AKIACINEW", null]),
            json!("ap-southeast-2"),
        ),
        (
            "last-unmanaged",
            json!(["AKIALAST", "last-secret", null]),
            Value::Null,
        ),
        (
            "new-one",
            json!(["ASIANEWONE", "secret-ASIANEWONE", "token-ASIANEWONE"]),
            Value::Null,
        ),
        (
            "team/prod@eu",
            json!(["ASIATEAMPROD", "secret-ASIATEAMPROD", "token-ASIATEAMPROD"]),
            Value::Null,
        ),
    ];
    for (name, credentials, region) in &want {
        let p = &got["profiles"][*name];
        assert_eq!(&p["credentials"], credentials, "botocore's [{name}]: {p:#}");
        assert_eq!(p["method"], "shared-credentials-file", "[{name}]: {p:#}");
        assert_eq!(&p["region"], region, "botocore's region of [{name}]: {p:#}");
    }
    assert_eq!(
        got["profiles"]["dev"]["scoped"]["s3"],
        json!({"addressing_style": "path", "max_concurrent_requests": "20"}),
        "{got:#}"
    );
    assert_eq!(
        got["profiles"]["hand-made"]["scoped"]["output"], "json",
        "{got:#}"
    );

    // Our own parser agrees with botocore on every profile.
    let parsed = ProfileFile::parse(&text).unwrap();
    let ours = credentials_in(&parsed);
    assert_eq!(ours.len(), profiles.len());
    for (name, credentials, _) in &want {
        let c = &ours[*name];
        let token = c.session_token.as_ref().map(|t| t.expose());
        assert_eq!(
            &json!([c.access_key_id, c.secret_access_key.expose(), token]),
            credentials,
            "our [{name}]"
        );
    }
}

/// What botocore makes of `creds`, per profile: credentials, where they came from, region
/// and the scoped config; plus the profiles it lists.
fn botocore_view(
    python: &Path,
    site: &Path,
    sb: &Sandbox,
    creds: &Path,
    profiles: &[&str],
) -> Value {
    let code = r#"
import json, sys
import botocore.session

out = {"available": botocore.session.Session().available_profiles, "profiles": {}}
for name in sys.argv[1:]:
    s = botocore.session.Session(profile=name)
    c = s.get_credentials()
    f = c.get_frozen_credentials() if c is not None else None
    out["profiles"][name] = {
        "credentials": [f.access_key, f.secret_key, f.token] if f else None,
        "method": c.method if c is not None else None,
        "region": s.get_config_variable("region"),
        "scoped": s.get_scoped_config(),
    }
print(json.dumps(out))
"#;
    let out = Command::new(python)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", sb.path())
        .env("PYTHONPATH", site)
        .env("AWS_SHARED_CREDENTIALS_FILE", creds)
        .env("AWS_CONFIG_FILE", sb.file("no-such-config"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .arg("-c")
        .arg(code)
        .args(profiles)
        .stdin(Stdio::null())
        .output()
        .expect("run python");
    assert!(out.status.success(), "botocore failed: {}", show(&out));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("botocore printed no JSON ({e}): {}", show(&out)))
}
