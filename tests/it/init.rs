//! `awscredd init`: a config written from a real-looking `~/.aws/config` (every form, comments,
//! odd spacing, CRLF, sub-properties, a dotted name, a profile it cannot take) that `check`
//! passes; `--profile`; never replacing a config without `--force`; the template; and
//! `check`'s advice for a `~/.aws/config` that hides awscredd's keys.

use crate::util::{show, Sandbox};
use std::fs;
use std::path::PathBuf;
use std::process::Output;

const AWS_CONFIG: &str = "# written by aws configure sso\r\n\
[default]\r\n\
region = eu-west-1\r\n\
output = json\r\n\
\r\n\
[sso-session corp]\r\n\
sso_start_url = https://corp.awsapps.com/start\r\n\
sso_region = us-east-1\r\n\
sso_registration_scopes = sso:account:access\r\n\
\r\n\
[profile   dev ]   ; odd spacing\r\n\
sso_session = corp\r\n\
sso_account_id = 111122223333\r\n\
sso_role_name = Developer\r\n\
region = eu-west-1\r\n\
s3 =\r\n\
\x20 max_concurrent_requests = 10\r\n\
\r\n\
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
\r\n\
[profile pod]\r\n\
role_arn = arn:aws:iam::777788889999:role/Pod\r\n\
web_identity_token_file = /var/run/token\r\n\
\r\n\
[profile tool]\r\n\
credential_process = /usr/local/bin/creds --json\r\n\
\r\n\
[profile ec2]\r\n\
role_arn = arn:aws:iam::777788889999:role/Ec2\r\n\
credential_source = Ec2InstanceMetadata\r\n";

/// `HOME/.config/awscredd/config.toml`, where `init` writes by default.
fn default_config(sb: &Sandbox) -> PathBuf {
    sb.file(".config/awscredd/config.toml")
}

fn init(sb: &Sandbox, args: &[&str]) -> Output {
    sb.command()
        .arg("init")
        .args(args)
        .output()
        .expect("run awscredd init")
}

fn check(sb: &Sandbox) -> Output {
    sb.command()
        .arg("--config")
        .arg(default_config(sb))
        .arg("check")
        .output()
        .expect("run awscredd check")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn aws_config(sb: &Sandbox, text: &str) {
    fs::create_dir_all(sb.file(".aws")).unwrap();
    fs::write(sb.file(".aws/config"), text).unwrap();
}

#[cfg(unix)]
fn mode(p: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn init_from_aws_config_writes_a_config_that_check_passes_and_says_what_it_left() {
    let sb = Sandbox::new();
    aws_config(&sb, AWS_CONFIG);
    let o = init(&sb, &["--from-aws-config"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let out = stdout(&o);
    assert!(
        out.contains("1 sso_session(s) (corp), 5 profile(s) (dev, legacy, prod.admin, pod, tool)"),
        "{}",
        show(&o)
    );
    // Not taken, with the reason and the line.
    assert!(
        out.contains("[profile ec2] (~/.aws/config:37): credential_source = Ec2InstanceMetadata"),
        "{}",
        show(&o)
    );
    assert!(
        out.contains("[default] (~/.aws/config:2): no source of credentials in it (its keys: region, output)"),
        "{}",
        show(&o)
    );
    // What to change in ~/.aws/config, exactly.
    assert!(
        out.contains("in ~/.aws/config, [profile   dev ] (line 11): remove sso_session, sso_account_id, sso_role_name"),
        "{}",
        show(&o)
    );
    assert!(
        out.contains("in ~/.aws/config, [profile tool] (line 34): remove credential_process"),
        "{}",
        show(&o)
    );

    let path = default_config(&sb);
    let text = fs::read_to_string(&path).unwrap();
    for want in [
        "# from ~/.aws/config:6 [sso-session corp]\n[sso_session.corp]\n",
        "# from ~/.aws/config:11 [profile   dev ]   ; odd spacing; left there: s3\n[profile.dev]\n",
        "[profile.\"prod.admin\"]\nrole_arn = \"arn:aws:iam::777788889999:role/Admin\"\nsource_profile = \"dev\"\nduration_seconds = 3600\n",
        "[profile.legacy]\nsso_start_url = \"https://old.awsapps.com/start\"\n",
        "[profile.tool]\ncredential_process = \"/usr/local/bin/creds --json\"\n",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    assert!(!text.contains("ec2") && !text.contains('\r'), "{text}");
    #[cfg(unix)]
    {
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&sb.file(".config/awscredd")), 0o700);
    }

    let o = check(&sb);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    // check's warning says what to change too.
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("warning: profile `dev` in ~/.aws/config sets sso_session, sso_account_id, sso_role_name")
            && err.contains("to fix it, in ~/.aws/config, [profile   dev ] (line 11): remove sso_session, sso_account_id, sso_role_name"),
        "{}",
        show(&o)
    );
    // Once the keys are gone from ~/.aws/config, nothing is left to warn about.
    aws_config(&sb, "[profile dev]\nregion = eu-west-1\n");
    let o = check(&sb);
    assert!(
        !String::from_utf8_lossy(&o.stderr).contains("to fix it"),
        "{}",
        show(&o)
    );
}

#[test]
fn profile_narrows_to_the_named_profiles_and_their_chain() {
    let sb = Sandbox::new();
    aws_config(&sb, AWS_CONFIG);
    let o = init(&sb, &["--from-aws-config", "--profile", "prod.admin"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let text = fs::read_to_string(default_config(&sb)).unwrap();
    let tables: Vec<&str> = text.lines().filter(|l| l.starts_with('[')).collect();
    assert_eq!(
        tables,
        [
            "[sso_session.corp]",
            "[profile.dev]",
            "[profile.\"prod.admin\"]"
        ]
    );
    assert!(!stdout(&o).contains("not taken"), "{}", show(&o));
    assert_eq!(check(&sb).status.code(), Some(0));

    // A profile that is not there: nothing written.
    let sb = Sandbox::new();
    aws_config(&sb, AWS_CONFIG);
    let o = init(&sb, &["--from-aws-config", "--profile", "nope"]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(!default_config(&sb).exists());
}

#[test]
fn an_existing_config_is_replaced_only_with_force() {
    let sb = Sandbox::new();
    aws_config(&sb, AWS_CONFIG);
    let path = default_config(&sb);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mine = "# my own config\n[profile.x]\ncredential_process = \"x\"\n";
    fs::write(&path, mine).unwrap();
    for args in [&["--from-aws-config"][..], &[][..]] {
        let o = init(&sb, args);
        assert_eq!(o.status.code(), Some(2), "{}", show(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr)
                .contains("already exists; nothing written (--force replaces it)"),
            "{}",
            show(&o)
        );
        assert_eq!(fs::read_to_string(&path).unwrap(), mine, "untouched");
    }
    let o = init(&sb, &["--from-aws-config", "--force"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(fs::read_to_string(&path).unwrap().contains("[profile.dev]"));
    #[cfg(unix)]
    assert_eq!(mode(&path), 0o600);
}

#[test]
fn an_aws_config_the_sdks_reject_writes_nothing_and_names_the_line() {
    let sb = Sandbox::new();
    aws_config(
        &sb,
        "[profile a]\nregion = x\nthis line has no equals sign\n",
    );
    let o = init(&sb, &["--from-aws-config"]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("~/.aws/config:3: Expected an '=' sign defining a property"),
        "{}",
        show(&o)
    );
    assert!(!default_config(&sb).exists());
    // Missing: the same.
    let sb = Sandbox::new();
    let o = init(&sb, &["--from-aws-config"]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(!default_config(&sb).exists());
    // Nothing to take: the same, with every reason.
    let sb = Sandbox::new();
    aws_config(&sb, "[default]\nregion = us-east-1\n");
    let o = init(&sb, &["--from-aws-config"]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("[default] (line 1): no source of credentials"),
        "{}",
        show(&o)
    );
}

#[test]
fn explicit_paths_output_and_the_template_pass_check() {
    let sb = Sandbox::new();
    fs::write(
        sb.file("other-config"),
        "[profile tool]\ncredential_process = x\n",
    )
    .unwrap();
    let target = sb.file("conf/awscredd.toml");
    let o = sb
        .command()
        .arg("--config")
        .arg(&target)
        .args(["init", "--from-aws-config"])
        .arg(sb.file("other-config"))
        .args(["--output", "out/credentials"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let text = fs::read_to_string(&target).unwrap();
    assert!(
        text.contains("[[output]]\npath = \"out/credentials\"\n"),
        "{text}"
    );
    let o = sb
        .command()
        .arg("--config")
        .arg(&target)
        .arg("check")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(
        stdout(&o).contains("out/credentials (mode 0600)"),
        "{}",
        show(&o)
    );

    // The template, with and without --output.
    for output in [None, Some("kept/credentials")] {
        let sb = Sandbox::new();
        let args: Vec<&str> = output.map(|o| vec!["--output", o]).unwrap_or_default();
        let o = init(&sb, &args);
        assert_eq!(o.status.code(), Some(0), "{}", show(&o));
        let text = fs::read_to_string(default_config(&sb)).unwrap();
        assert_eq!(
            text.contains("\n[[output]]\npath = \"kept/credentials\"\n"),
            output.is_some(),
            "{text}"
        );
        let o = check(&sb);
        assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    }
    // --profile needs --from-aws-config.
    let o = init(&Sandbox::new(), &["--profile", "dev"]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
}
