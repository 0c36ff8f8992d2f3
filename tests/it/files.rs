//! The files awscredd writes, as the AWS tools read them: values the SDK parser would read as
//! a comment, section headers botocore does not trim, a byte-order mark, the XDG folders, and
//! (as root) who owns the folders, files and lock files it creates for another user.

use crate::util::{show, Sandbox};
use std::fs;

/// A `credential_process` script `HOME/name` printing `secret` as the secret key, an hour
/// valid.
fn script_with_secret(sb: &Sandbox, name: &str, akid: &str, secret: &str) -> String {
    let p = sb.file(name);
    fs::write(
        &p,
        format!(
            "#!/bin/sh\nprintf '{{\"Version\":1,\"AccessKeyId\":\"{akid}\",\"SecretAccessKey\":\"{secret}\",\"SessionToken\":\"tok-{akid}\",\"Expiration\":\"%s\"}}' $(date -u -d '3600 seconds' +%Y-%m-%dT%H:%M:%SZ)\n"
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    }
    format!("sh {}", p.display())
}

/// A config with output `HOME/credentials` and profiles `good` and `odd` from scripts.
fn two_profiles(sb: &Sandbox, odd_secret: &str) {
    let good = script_with_secret(sb, "good.sh", "ASIAGOOD", "goodsecret");
    let odd = script_with_secret(sb, "odd.sh", "ASIAODD", odd_secret);
    sb.config(&format!(
        "[daemon]\nstate_dir = \"state\"\n[[output]]\npath = \"credentials\"\n\
         [profile.good]\ncredential_process = \"{good}\"\n\
         [profile.odd]\ncredential_process = \"{odd}\"\n"
    ));
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_secret_starting_with_a_comment_character_is_refused_and_the_others_written() {
    for secret in ["#abc", ";abc"] {
        let sb = Sandbox::new();
        two_profiles(&sb, secret);
        let o = sb.run(&["once"]);
        assert_eq!(o.status.code(), Some(1), "{secret}: {}", show(&o));
        let err = stderr(&o);
        assert!(
            err.contains("odd") && err.contains("cannot be written safely"),
            "{secret}: {}",
            show(&o)
        );
        assert!(!err.contains(secret), "the value is not shown: {err}");
        let text = fs::read_to_string(sb.file("credentials")).unwrap();
        assert!(text.contains("aws_access_key_id = ASIAGOOD"), "{text}");
        assert!(!text.contains("ASIAODD") && !text.contains(secret), "{text}");
    }
}

#[test]
fn a_credentials_file_with_a_byte_order_mark_is_left_untouched_with_a_message_saying_so() {
    let sb = Sandbox::new();
    let src = script_with_secret(&sb, "src.sh", "ASIABOM", "s3cret");
    sb.one_profile_config(&src);
    let before = "\u{feff}[other]\r\naws_access_key_id = AKIAOTHER\r\n";
    fs::write(sb.file("credentials"), before).unwrap();
    let o = sb.run(&["once"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let err = stderr(&o);
    let at = format!("{}:1:", sb.file("credentials").display());
    assert!(err.contains(&at), "{}", show(&o));
    assert!(
        err.contains("byte-order mark") && err.contains("without a BOM"),
        "{}",
        show(&o)
    );
    assert_eq!(fs::read_to_string(sb.file("credentials")).unwrap(), before);
}
