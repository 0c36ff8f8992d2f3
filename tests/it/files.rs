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
        assert!(
            !text.contains("ASIAODD") && !text.contains(secret),
            "{text}"
        );
    }
}

#[test]
fn a_header_with_whitespace_in_its_brackets_is_refused_naming_the_line_and_the_others_written() {
    for header in ["[ odd ]", "[odd ]", "[\todd]"] {
        let sb = Sandbox::new();
        two_profiles(&sb, "oddsecret");
        let before = format!("# mine\n{header}\nregion = eu-west-1\n");
        fs::write(sb.file("credentials"), &before).unwrap();
        let o = sb.run(&["once"]);
        assert_eq!(o.status.code(), Some(1), "{header}: {}", show(&o));
        let err = stderr(&o);
        let path = sb.file("credentials").display().to_string();
        assert!(
            err.contains(&path)
                && err.contains("line 2:")
                && err.contains("write the header as [odd]"),
            "{header}: {}",
            show(&o)
        );
        let text = fs::read_to_string(sb.file("credentials")).unwrap();
        assert!(text.starts_with(&before), "{header}: {text}");
        assert!(
            text.contains("[good]\naws_access_key_id = ASIAGOOD"),
            "{text}"
        );
        assert!(!text.contains("ASIAODD"), "{text}");
        let state: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(sb.file("state/state.json")).unwrap())
                .unwrap();
        assert!(state["profiles"]["good"]["last_error"].is_null(), "{state}");
        assert!(
            state["profiles"]["odd"]["last_error"].is_string(),
            "{state}"
        );
    }
}

#[test]
fn a_duplicated_section_fails_its_profile_alone() {
    let sb = Sandbox::new();
    two_profiles(&sb, "oddsecret");
    let before = "[odd]\nregion = a\n\n[odd]\nregion = b\n";
    fs::write(sb.file("credentials"), before).unwrap();
    let o = sb.run(&["once"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(stderr(&o).contains("lines 1, 4"), "{}", show(&o));
    let text = fs::read_to_string(sb.file("credentials")).unwrap();
    assert!(text.starts_with(before), "{text}");
    assert!(
        text.contains("ASIAGOOD") && !text.contains("ASIAODD"),
        "{text}"
    );
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

/// Root-only tests and the user they give files to (nobody needs to exist under this id).
#[cfg(unix)]
mod as_root {
    use super::*;
    use crate::util::bin;
    use std::os::unix::fs::{chown, MetadataExt, PermissionsExt};
    use std::path::Path;
    use std::process::Command;

    const APP_UID: u32 = 4243;

    fn owner(p: &Path) -> (u32, u32, u32) {
        let m = fs::symlink_metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        (m.uid(), m.gid(), m.permissions().mode() & 0o777)
    }

    /// A sandbox readable by others, with `HOME/home` owned by the app user.
    fn with_app_home() -> (Sandbox, std::path::PathBuf) {
        let sb = Sandbox::new();
        fs::set_permissions(sb.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let home = sb.file("home");
        fs::create_dir(&home).unwrap();
        chown(&home, Some(APP_UID), Some(APP_UID)).unwrap();
        (sb, home)
    }

    /// `awscredd --config CONFIG once` as the app user.
    fn once_as_app(sb: &Sandbox, config: &Path) -> std::process::Output {
        Command::new("setpriv")
            .args([
                &format!("--reuid={APP_UID}"),
                &format!("--regid={APP_UID}"),
                "--clear-groups",
            ])
            .arg(bin())
            .arg("--config")
            .arg(config)
            .args(["once", "--force"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", sb.file("home"))
            .output()
            .unwrap()
    }

    fn config_for(sb: &Sandbox, owner_line: &str) -> std::path::PathBuf {
        let src = script_with_secret(sb, "src.sh", "ASIAOWNED", "s3cret");
        let cfg = sb.config(&format!(
            "[daemon]\nstate_dir = \"home/state\"\n[[output]]\npath = \"home/.aws/credentials\"\n\
             {owner_line}\n[profile.a]\ncredential_process = \"{src}\"\n"
        ));
        fs::set_permissions(&cfg, fs::Permissions::from_mode(0o644)).unwrap();
        cfg
    }

    #[test]
    fn folders_and_lock_files_root_creates_for_an_output_go_to_its_owner() {
        if !crate::util::require_root() {
            return;
        }
        for owner_line in [format!("owner = \"{APP_UID}\""), String::new()] {
            let (sb, home) = with_app_home();
            let cfg = config_for(&sb, &owner_line);
            let o = sb.run(&["once"]);
            assert_eq!(o.status.code(), Some(0), "{owner_line}: {}", show(&o));
            let aws = home.join(".aws");
            assert_eq!(owner(&aws), (APP_UID, APP_UID, 0o700), "{owner_line}");
            assert_eq!(
                owner(&aws.join("credentials")),
                (APP_UID, APP_UID, 0o600),
                "{owner_line}"
            );
            assert_eq!(
                owner(&aws.join(".credentials.lock")),
                (APP_UID, APP_UID, 0o600),
                "{owner_line}"
            );
            assert_eq!(owner(&home.join("state")).0, APP_UID, "{owner_line}");
            assert_eq!(
                owner(&home.join("state/.state.json.lock")).0,
                APP_UID,
                "{owner_line}"
            );
            // The app user's own awscredd can take the locks and write the file afterwards.
            let o = once_as_app(&sb, &cfg);
            assert_eq!(o.status.code(), Some(0), "{owner_line}: {}", show(&o));
            let text = fs::read_to_string(aws.join("credentials")).unwrap();
            assert!(text.contains("ASIAOWNED"), "{text}");
        }
    }

    #[test]
    fn an_empty_lock_file_an_older_root_awscredd_left_is_given_to_the_files_owner() {
        if !crate::util::require_root() {
            return;
        }
        let (sb, home) = with_app_home();
        let cfg = config_for(&sb, "");
        let aws = home.join(".aws");
        fs::create_dir(&aws).unwrap();
        chown(&aws, Some(APP_UID), Some(APP_UID)).unwrap();
        fs::write(aws.join("credentials"), "# mine\n").unwrap();
        chown(aws.join("credentials"), Some(APP_UID), Some(APP_UID)).unwrap();
        fs::write(aws.join(".credentials.lock"), "").unwrap();
        let o = sb.run(&["once"]);
        assert_eq!(o.status.code(), Some(0), "{}", show(&o));
        assert_eq!(owner(&aws.join(".credentials.lock")).0, APP_UID);
        assert_eq!(owner(&aws.join("credentials")).0, APP_UID);
        let o = once_as_app(&sb, &cfg);
        assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    }

    #[test]
    fn an_unprivileged_awscredd_says_it_takes_root_to_give_a_file_to_another_user() {
        if !crate::util::require_root() {
            return;
        }
        let (sb, home) = with_app_home();
        let cfg = config_for(&sb, "owner = \"root\"");
        let aws = home.join(".aws");
        fs::create_dir(&aws).unwrap();
        chown(&aws, Some(APP_UID), Some(APP_UID)).unwrap();
        let o = once_as_app(&sb, &cfg);
        assert_eq!(o.status.code(), Some(1), "{}", show(&o));
        let err = stderr(&o);
        assert!(
            err.contains("cannot give") && err.contains("owner uid 0"),
            "{err}"
        );
        assert!(err.contains("Operation not permitted"), "{err}");
        assert!(
            err.contains(&format!("runs as uid {APP_UID}")) && err.contains("run it as root"),
            "{err}"
        );
        // Nothing is left behind: no file, no temporary file.
        let left: Vec<_> = fs::read_dir(&aws)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != ".credentials.lock")
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn a_configured_owner_is_given_every_folder_root_creates_on_the_path() {
        if !crate::util::require_root() {
            return;
        }
        let sb = Sandbox::new();
        let src = script_with_secret(&sb, "src.sh", "ASIADEEP", "s3cret");
        sb.config(&format!(
            "[daemon]\nstate_dir = \"state\"\n[[output]]\npath = \"srv/app/credentials\"\n\
             owner = \"{APP_UID}\"\ngroup = \"{}\"\n[profile.a]\ncredential_process = \"{src}\"\n",
            APP_UID + 1
        ));
        let o = sb.run(&["once"]);
        assert_eq!(o.status.code(), Some(0), "{}", show(&o));
        for p in ["srv", "srv/app"] {
            assert_eq!(owner(&sb.file(p)), (APP_UID, APP_UID + 1, 0o700), "{p}");
        }
        let file = owner(&sb.file("srv/app/credentials"));
        assert_eq!(file, (APP_UID, APP_UID + 1, 0o600));
        // Folders outside the output's path stay root's.
        assert_eq!(owner(&sb.file("state")).0, 0);
    }

    #[test]
    fn a_sign_in_as_root_in_a_users_empty_home_leaves_the_cache_to_that_user() {
        if !crate::util::require_root() {
            return;
        }
        use crate::fake_aws::FakeAws;
        use crate::sso::{awscredd, run, sso_config, token_file};
        let sb = Sandbox::new();
        chown(sb.path(), Some(APP_UID), Some(APP_UID)).unwrap();
        let fake = FakeAws::start();
        fake.configure(|s| s.approve_after_polls = Some(1));
        sso_config(&sb, "", "", "");
        let o = run(&sb, awscredd(&sb, &fake, &["once"]));
        assert_eq!(o.status.code(), Some(0), "{}", show(&o));
        for dir in [".aws", ".aws/sso", ".aws/sso/cache"] {
            assert_eq!(owner(&sb.file(dir)), (APP_UID, APP_UID, 0o700), "{dir}");
        }
        let token = token_file(&sb);
        assert_eq!(owner(&token), (APP_UID, APP_UID, 0o600));
        let name = token.file_name().unwrap().to_string_lossy().into_owned();
        let lock = token.with_file_name(format!(".{name}.lock"));
        assert_eq!(owner(&lock), (APP_UID, APP_UID, 0o600));
        // Everything else root wrote in the cache is the user's too (the registration).
        for e in fs::read_dir(sb.file(".aws/sso/cache")).unwrap() {
            let p = e.unwrap().path();
            assert_eq!(owner(&p).0, APP_UID, "{}", p.display());
        }
        assert_eq!(owner(&sb.file("credentials")).0, APP_UID);
    }
}

/// SPEC: a file's mode is never looser than configured. A `chmod` by hand is undone by the
/// next pass, also when nothing is due and nothing is written.
#[cfg(unix)]
#[test]
fn a_mode_loosened_by_hand_is_set_back_by_a_pass_that_writes_nothing() {
    use std::os::unix::fs::PermissionsExt;
    let sb = Sandbox::new();
    let good = script_with_secret(&sb, "good.sh", "ASIAGOOD", "goodsecret");
    sb.config(&format!(
        "[daemon]\nstate_dir = \"state\"\n[[output]]\npath = \"credentials\"\nmode = \"0640\"\n\
         [[output]]\npath = \"app.env\"\nformat = \"env\"\nprofiles = [\"good\"]\n\
         [profile.good]\ncredential_process = \"{good}\"\n"
    ));
    let o = sb.run(&["once"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let mode = |name: &str| fs::metadata(sb.file(name)).unwrap().permissions().mode() & 0o7777;
    assert_eq!((mode("credentials"), mode("app.env")), (0o640, 0o600));
    let before = fs::read(sb.file("credentials")).unwrap();
    for name in ["credentials", "app.env"] {
        fs::set_permissions(sb.file(name), fs::Permissions::from_mode(0o666)).unwrap();
    }

    let o = sb.run(&["once"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!((mode("credentials"), mode("app.env")), (0o640, 0o600));
    assert_eq!(
        fs::read(sb.file("credentials")).unwrap(),
        before,
        "nothing was due"
    );
    let err = stderr(&o);
    assert!(
        err.contains("was 0666: set back to 0640") && err.contains("was 0666: set back to 0600"),
        "{}",
        show(&o)
    );
}

/// `check` tells about an existing credentials file that a pass would have to leave
/// untouched (its profiles failing), and about an output that is the AWS config file.
#[test]
fn check_reports_an_existing_credentials_file_it_could_not_write() {
    let sb = Sandbox::new();
    let good = script_with_secret(&sb, "good.sh", "ASIAGOOD", "goodsecret");
    sb.config(&format!(
        "[daemon]\nstate_dir = \"state\"\n[[output]]\npath = \"credentials\"\n\
         [profile.good]\ncredential_process = \"{good}\"\n"
    ));
    for (text, want) in [
        (
            "stray line\n[good]\nx = 1\n",
            "cannot parse the credentials file",
        ),
        (
            "[good]\nx = 1\n[other]\n[good]\ny = 2\n",
            "appears more than once",
        ),
        ("[ good ]\nx = 1\n", "[good]"),
    ] {
        fs::write(sb.file("credentials"), text).unwrap();
        let o = sb.run(&["check"]);
        assert_eq!(o.status.code(), Some(2), "{text:?}: {}", show(&o));
        let err = stderr(&o);
        assert!(
            err.contains(want) && err.contains("config.toml:4:"),
            "{text:?}: {}",
            show(&o)
        );
        assert_eq!(fs::read_to_string(sb.file("credentials")).unwrap(), text);
    }
    // An output that is the AWS config file: valid, with a warning.
    fs::create_dir_all(sb.file(".aws")).unwrap();
    sb.config(&format!(
        "[daemon]\nstate_dir = \"state\"\n[[output]]\npath = \"~/.aws/config\"\n\
         [profile.good]\ncredential_process = \"{good}\"\n"
    ));
    fs::write(sb.file(".aws/config"), "[profile x]\nregion = eu-west-1\n").unwrap();
    let o = sb.run(&["check"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(
        stderr(&o).contains("is the AWS config file"),
        "{}",
        show(&o)
    );
}
