//! Config validation: every kind of bad input names the file, line and column.

use super::*;

fn env(name: &str) -> Option<String> {
    (name == "HOME").then(|| "/home/u".to_string())
}

fn parse(text: &str) -> (Option<Config>, Vec<String>) {
    let (cfg, report) = parse_str(text, Path::new("/etc/awscredd/c.toml"), &env);
    let lines = report
        .lines()
        .into_iter()
        .map(|l| l.replacen("/etc/awscredd/c.toml:", "", 1))
        .collect();
    (cfg, lines)
}

/// Asserts the config is rejected with exactly one error, at `at` (`LINE:COL`), containing
/// `needle`.
fn rejects(text: &str, at: &str, needle: &str) {
    let (cfg, lines) = parse(text);
    assert!(cfg.is_none(), "accepted:\n{text}");
    let errors: Vec<&String> = lines
        .iter()
        .filter(|l| !l.contains("warning:") && !l.contains(" note: "))
        .collect();
    assert_eq!(errors.len(), 1, "{text}\n{lines:#?}");
    assert!(
        errors[0].starts_with(&format!("{at}: ")) && errors[0].contains(needle),
        "want {at}: ...{needle}... got {:?}",
        errors[0]
    );
}

const PROC: &str = "[profile.p]\ncredential_process = \"x\"\n";

#[test]
fn listen_takes_localhost_or_a_port_alone_as_loopback() {
    for (listen, want) in [
        ("localhost:9911", "127.0.0.1:9911"),
        ("9911", "127.0.0.1:9911"),
        ("0.0.0.0:9911", "0.0.0.0:9911"),
    ] {
        let (cfg, lines) = parse(&format!(
            "[server]\nlisten = \"{listen}\"\ntoken_file = \"/t\"\n[metrics]\nlisten = \"{listen}\"\n{PROC}"
        ));
        // The same address twice is refused; the server's alone shows how it was read.
        assert!(cfg.is_none(), "{lines:#?}");
        let (cfg, lines) = parse(&format!(
            "[server]\nlisten = \"{listen}\"\ntoken_file = \"/t\"\n{PROC}"
        ));
        let cfg = cfg.unwrap_or_else(|| panic!("{listen}: {lines:#?}"));
        assert_eq!(cfg.server.unwrap().listen.to_string(), want);
    }
}

#[test]
fn the_example_config_is_valid_and_covers_every_source() {
    let text = include_str!("../../config/example.toml");
    let (cfg, lines) = parse(text);
    let cfg = cfg.unwrap_or_else(|| panic!("{lines:#?}"));
    assert!(lines.is_empty(), "{lines:#?}");
    let kinds: BTreeSet<&str> = cfg.profiles.values().map(|p| p.source.kind()).collect();
    assert_eq!(kinds.len(), 5);
    assert_eq!(cfg.outputs.len(), 2);
    assert_eq!(cfg.outputs[1].owner, Some(UserRef::Name("app".into())));
    assert_eq!(cfg.outputs[1].group, Some(UserRef::Id(1001)));
    assert_eq!(
        cfg.outputs[0].path,
        PathBuf::from("/home/u/.aws/credentials")
    );
    assert_eq!(cfg.daemon.refresh_before, Duration::from_secs(900));
    assert!(cfg.server.is_some());
    assert_eq!(
        cfg.metrics.map(|m| m.listen.to_string()).as_deref(),
        Some("127.0.0.1:9464")
    );
    assert_eq!(cfg.profiles["deploy"].source.source_profile(), Some("dev"));
}

use std::collections::BTreeSet;

#[test]
fn the_demo_config_is_valid() {
    let (cfg, lines) = parse(include_str!("../../config/demo.toml"));
    assert!(cfg.is_some(), "{lines:#?}");
}

#[test]
fn defaults() {
    let (cfg, lines) = parse(PROC);
    let cfg = cfg.unwrap_or_else(|| panic!("{lines:#?}"));
    assert_eq!(cfg.outputs.len(), 1);
    assert_eq!(
        cfg.outputs[0].path,
        PathBuf::from("/home/u/.aws/credentials")
    );
    assert_eq!(cfg.outputs[0].mode, 0o600);
    assert_eq!(cfg.outputs[0].profiles, vec!["p".to_string()]);
    assert_eq!(
        cfg.daemon.state_dir,
        PathBuf::from("/home/u/.local/state/awscredd")
    );
}

#[test]
fn relative_paths_are_relative_to_the_config_file() {
    let (cfg, _) = parse(&format!(
        "[daemon]\nstate_dir = \"st\"\n[[output]]\npath = \"../out/creds\"\n{PROC}"
    ));
    let cfg = cfg.unwrap();
    assert_eq!(cfg.daemon.state_dir, PathBuf::from("/etc/awscredd/st"));
    assert_eq!(cfg.outputs[0].path, PathBuf::from("/etc/out/creds"));
}

#[test]
fn toml_syntax_and_type_errors_point_at_the_value() {
    rejects(
        "[profile.p]\ncredential_process = \"x\n",
        "2:24",
        "invalid basic string",
    );
    rejects(&format!("{PROC}bogus = 1\n"), "3:1", "unknown key `bogus`");
    rejects(
        "[profile.p]\nrole_arn = \"arn:aws:iam::123456789012:role/r\"\nsource_profile = \"s\"\nduration_seconds = \"3600\"\n",
        "4:20",
        "invalid type",
    );
    rejects(
        &format!("[daemon]\nfrobnicate = true\n{PROC}"),
        "2:1",
        "unknown key",
    );
    rejects(
        &format!("[[output]]\nmode = \"0600\"\n{PROC}"),
        "1:1",
        "missing field `path`",
    );
}

#[test]
fn bad_values() {
    rejects(
        &format!("[daemon]\nrefresh_before = \"15 minutes\"\n{PROC}"),
        "2:18",
        "not a duration",
    );
    rejects(
        &format!("[[output]]\npath = \"/x\"\nmode = \"0644x\"\n{PROC}"),
        "3:8",
        "octal file mode",
    );
    rejects(
        &format!("[[output]]\npath = \"/x\"\nmode = \"0400\"\n{PROC}"),
        "3:8",
        "read and write",
    );
    rejects(
        "[profile.a]\nrole_arn = \"arn:aws:iam::1234:role/x\"\nsource_profile = \"s\"\n",
        "2:12",
        "not an IAM role ARN",
    );
    rejects(
        "[sso_session.c]\nsso_start_url = \"https://x.awsapps.com/start\"\nsso_region = \"us-east-1\"\n[profile.a]\nsso_session = \"c\"\nsso_account_id = \"11112222333\"\nsso_role_name = \"R\"\n",
        "6:18",
        "12-digit",
    );
    rejects(
        "[sso_session.c]\nsso_start_url = \"https://x.awsapps.com/start\"\nsso_region = \"useast1\"\n[profile.a]\nsso_session = \"c\"\nsso_account_id = \"111122223333\"\nsso_role_name = \"R\"\n",
        "3:14",
        "not an AWS region",
    );
    rejects(
        "[profile.a]\nrole_arn = \"arn:aws:iam::123456789012:role/x\"\nsource_profile = \"s\"\nduration_seconds = 60\n",
        "4:20",
        "between 900 and 43200",
    );
    rejects(
        "[profile.q]\ncredential_process = \"x\"\nregion = \"mars\"\n",
        "3:10",
        "not an AWS region",
    );
    rejects(
        &format!("[server]\nlisten = \"localhost\"\n{PROC}"),
        "2:10",
        "not an address",
    );
    rejects(
        &format!("[metrics]\nlisten = \"example.com:9464\"\n{PROC}"),
        "2:10",
        "not an address like 127.0.0.1:9464",
    );
    rejects(
        &format!("[metrics]\n{PROC}"),
        "1:1",
        "[metrics] needs listen",
    );
    rejects(
        &format!("[server]\nlisten = \"127.0.0.1:9911\"\ntoken_file = \"/t\"\n[metrics]\nlisten = \"127.0.0.1:9911\"\n{PROC}"),
        "5:10",
        "the [server]'s address too",
    );
    rejects(
        &format!("[metrics]\nlisten = \"127.0.0.1:9464\"\ntoken_file = \"/t\"\n{PROC}"),
        "3:1",
        "unknown",
    );
    rejects(
        "[profile.\"a b\"]\ncredential_process = \"x\"\n",
        "1:10",
        "not a profile name",
    );
}

/// Issue 27 item 7: with `[server]`, a profile named `.` or `..`, or with a `%` or a `/`, could
/// not be reached at `/profiles/NAME` (botocore's urllib3 rewrites such paths): refused at its
/// name. Without `[server]` the names stay valid (the SDKs read them from the file).
#[test]
fn served_profile_names_must_be_reachable_in_a_url() {
    let server = "[server]\nlisten = \"127.0.0.1:9911\"\ntoken_file = \"/t\"\n";
    for (name, why) in [
        ("a%b", "with a `%`"),
        ("a%41", "with a `%`"),
        ("team/dev", "with a `/`"),
        (".", "named `.`"),
        ("..", "named `..`"),
    ] {
        let profile = format!("[profile.\"{name}\"]\ncredential_process = \"x\"\n");
        rejects(&format!("{server}{profile}"), "4:10", why);
        let (cfg, lines) = parse(&profile);
        assert!(cfg.is_some(), "{name}: {lines:#?}");
    }
    for ok in ["a.b", "a@b", "a:b", "a+b", "a_b-c"] {
        let (cfg, lines) = parse(&format!(
            "{server}[profile.\"{ok}\"]\ncredential_process = \"x\"\n"
        ));
        assert!(cfg.is_some(), "{ok}: {lines:#?}");
    }
}

#[test]
fn references_and_sources() {
    rejects(
        "[profile.a]\nsso_session = \"nope\"\nsso_account_id = \"111122223333\"\nsso_role_name = \"R\"\n",
        "2:15",
        "sso_session `nope` is not defined",
    );
    rejects(
        &format!("[[output]]\npath = \"/x\"\nprofiles = [\"p\", \"missing\"]\n{PROC}"),
        "3:18",
        "profile `missing` is not defined",
    );
    rejects(
        "[profile.a]\nregion = \"us-east-1\"\n",
        "1:10",
        "has no source",
    );
    rejects(
        "[profile.a]\ncredential_process = \"x\"\nrole_arn = \"arn:aws:iam::123456789012:role/r\"\nsource_profile = \"b\"\n",
        "2:22",
        "two sources",
    );
    rejects(
        "[profile.a]\nrole_arn = \"arn:aws:iam::123456789012:role/r\"\n",
        "1:10",
        "needs source_profile",
    );
    rejects(
        "[profile.a]\ncredential_process = \"x\"\nexternal_id = \"abc\"\n",
        "3:15",
        "`external_id` does not apply to a credential_process profile",
    );
    rejects(
        &format!("{PROC}[profile.b]\nsource_profile = \"p\"\nget_session_token = true\n"),
        "4:18",
        "long-term IAM user keys",
    );
    rejects(
        "[profile.b]\nsource_profile = \"long\"\nget_session_token = true\nmfa_serial = \"arn:aws:iam::111122223333:mfa/u\"\n",
        "4:14",
        "mfa_serial needs mfa_command",
    );
    rejects(
        "[profile.a]\nrole_arn = \"arn:aws:iam::123456789012:role/r\"\nsource_profile = \"a\"\n",
        "3:18",
        "its own source_profile",
    );
}

#[test]
fn source_profile_cycles_are_reported_once() {
    let text = "[profile.a]\nrole_arn = \"arn:aws:iam::123456789012:role/r\"\nsource_profile = \"b\"\n\
                [profile.b]\nrole_arn = \"arn:aws:iam::123456789012:role/r\"\nsource_profile = \"c\"\n\
                [profile.c]\nrole_arn = \"arn:aws:iam::123456789012:role/r\"\nsource_profile = \"a\"\n";
    let (cfg, lines) = parse(text);
    assert!(cfg.is_none());
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(
        lines[0].contains("source_profile cycle: a -> b -> c -> a"),
        "{lines:#?}"
    );
}

#[test]
fn every_error_is_reported_not_just_the_first() {
    let (_, lines) = parse(
        "[daemon]\nrefresh_before = \"soon\"\n[profile.a]\nregion = \"x\"\ncredential_process = \"c\"\n[profile.b]\n",
    );
    assert_eq!(lines.len(), 3, "{lines:#?}");
}

#[test]
fn role_chaining_beyond_an_hour_is_a_warning() {
    let text = "[sso_session.c]\nsso_start_url = \"https://x.awsapps.com/start\"\nsso_region = \"us-east-1\"\n\
                [profile.a]\nsso_session = \"c\"\nsso_account_id = \"111122223333\"\nsso_role_name = \"R\"\n\
                [profile.b]\nsource_profile = \"a\"\nrole_arn = \"arn:aws:iam::123456789012:role/r\"\nduration_seconds = 7200\n";
    let (cfg, lines) = parse(text);
    assert!(cfg.is_some(), "{lines:#?}");
    assert_eq!(lines.len(), 1);
    assert!(
        lines[0].starts_with("11:20: warning:") && lines[0].contains("1 hour"),
        "{lines:#?}"
    );
}

#[test]
fn columns_count_characters_not_bytes() {
    rejects(
        "# ünïcödé\n[profile.p]\ncredential_process = \"x\"\nregion = \"é\"\n",
        "4:10",
        "not an AWS region",
    );
}

#[test]
fn three_typos_give_three_errors_with_three_suggestions() {
    let text = "[daemon]\nrefresh_befor = \"10m\"\n\n[[output]]\npat = \"creds\"\npath = \"credentials\"\n\n\
                [sso_session.corp]\nsso_start_url = \"https://x.awsapps.com/start\"\nsso_region = \"us-east-1\"\n\n\
                [profile.dev]\nsso_session = \"corp\"\nsso_acount_id = \"111122223333\"\nsso_role_name = \"Dev\"\n";
    let (cfg, lines) = parse(text);
    assert!(cfg.is_none());
    assert_eq!(
        lines,
        [
            "2:1: unknown key `refresh_befor`: did you mean `refresh_before`?",
            "5:1: unknown key `pat`: did you mean `path`?",
            "14:1: unknown key `sso_acount_id`: did you mean `sso_account_id`?",
            // `dev` lacks sso_account_id until the typo is fixed: that waits.
            " note: more problems may be reported after these are fixed",
        ]
    );
}

#[test]
fn what_people_copy_from_aws_config_gets_a_hint() {
    rejects(
        "[profile dev]\ncredential_process = \"x\"\n",
        "1:10",
        "this is ~/.aws/config syntax: write [profile.dev]",
    );
    rejects(
        "[sso-session corp]\nsso_region = \"us-east-1\"\n",
        "1:14",
        "write [sso_session.corp]",
    );
    rejects(
        "[profile.dev]\nsso_session = \"c\"\nsso_account_id = 111122223333\nsso_role_name = \"R\"\n\
         [sso_session.c]\nsso_start_url = \"https://x.awsapps.com/start\"\nsso_region = \"us-east-1\"\n",
        "3:18",
        "quote it: \"111122223333\"",
    );
    rejects(
        &format!("{PROC}sso-session = \"corp\"\n"),
        "3:1",
        "did you mean `sso_session`?",
    );
}

#[test]
fn a_profile_that_fails_validation_still_uses_its_session() {
    let (cfg, lines) = parse(
        "[sso_session.corp]\nsso_start_url = \"https://x.awsapps.com/start\"\nsso_region = \"us-east-1\"\n\
         [profile.dev]\nsso_session = \"corp\"\nsso_account_id = \"1111\"\nsso_role_name = \"R\"\n",
    );
    assert!(cfg.is_none());
    assert!(lines.iter().any(|l| l.contains("12-digit")), "{lines:#?}");
    assert!(
        !lines.iter().any(|l| l.contains("not used by any profile")),
        "{lines:#?}"
    );
}

/// A fresh empty folder for tests that need files on disk.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("awscredd-config-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn parse_in(dir: &Path, text: &str) -> (Option<Config>, Vec<String>) {
    let file = dir.join("c.toml");
    let (cfg, report) = parse_str(text, &file, &env);
    let prefix = format!("{}:", file.display());
    let lines = report
        .lines()
        .into_iter()
        .map(|l| l.replacen(&prefix, "", 1))
        .collect();
    (cfg, lines)
}

#[cfg(unix)]
#[test]
fn two_outputs_naming_one_file_through_a_symlinked_folder_or_a_hard_link_are_refused() {
    let dir = scratch("same-file");
    std::fs::create_dir(dir.join("real")).unwrap();
    std::os::unix::fs::symlink(dir.join("real"), dir.join("link")).unwrap();
    let two = |a: &str, b: &str| {
        format!("[[output]]\npath = \"{a}\"\n[[output]]\npath = \"{b}\"\nformat = \"env\"\nprofiles = [\"p\"]\n{PROC}")
    };
    // Not written yet: the same name in the same folder once the link is resolved.
    let (cfg, lines) = parse_in(&dir, &two("real/creds", "link/creds"));
    assert!(cfg.is_none(), "{lines:#?}");
    assert!(
        lines[0].starts_with("4:8: ") && lines[0].contains("is already an [[output]]"),
        "{lines:#?}"
    );
    // A folder still to create under the link.
    let (cfg, lines) = parse_in(&dir, &two("real/new/creds", "link/new/creds"));
    assert!(cfg.is_none(), "{lines:#?}");
    // Files that exist: a hard link.
    std::fs::write(dir.join("real/creds"), "").unwrap();
    std::fs::hard_link(dir.join("real/creds"), dir.join("other")).unwrap();
    let (cfg, lines) = parse_in(&dir, &two("real/creds", "other"));
    assert!(cfg.is_none(), "{lines:#?}");
    assert!(lines[0].contains("the same file"), "{lines:#?}");
    // A symlink to the other output, in a folder only its owner can write.
    std::os::unix::fs::symlink(dir.join("real/creds"), dir.join("creds.link")).unwrap();
    let (cfg, lines) = parse_in(&dir, &two("creds.link", "real/creds"));
    assert!(cfg.is_none(), "{lines:#?}");
    // Two files really apart are fine.
    let (cfg, lines) = parse_in(&dir, &two("real/creds", "real/creds.env"));
    assert!(cfg.is_some(), "{lines:#?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_server_token_file_that_is_an_output_or_awscredds_own_file_is_refused() {
    rejects(
        &format!("[[output]]\npath = \"/x/creds\"\n[server]\nlisten = \"127.0.0.1:9911\"\ntoken_file = \"/x/creds\"\n{PROC}"),
        "5:14",
        "would replace its credentials",
    );
    rejects(
        &format!("[daemon]\nstate_dir = \"/s\"\n[[output]]\npath = \"/x/creds\"\n[server]\nlisten = \"127.0.0.1:9911\"\ntoken_file = \"/s/state.json\"\n{PROC}"),
        "7:14",
        "is the state file, not a place for the server token",
    );
    rejects(
        &format!("[[output]]\npath = \"/x/creds\"\n[server]\nlisten = \"127.0.0.1:9911\"\ntoken_file = \"/etc/awscredd/c.toml\"\n{PROC}"),
        "5:14",
        "the config file",
    );
}

#[test]
fn a_profile_named_upper_case_default_is_refused() {
    rejects(
        "[profile.DEFAULT]\ncredential_process = \"x\"\n",
        "1:10",
        "cannot be named `DEFAULT`",
    );
    let (cfg, lines) = parse("[profile.default]\ncredential_process = \"x\"\n");
    assert!(cfg.is_some(), "{lines:#?}");
}

#[test]
fn a_config_without_profiles_is_refused() {
    for text in [
        "",
        "# every profile commented out\n# [profile.dev]\n",
        "[daemon]\nrefresh_before = \"15m\"\n",
        include_str!("../../packaging/rpm/config.toml"),
    ] {
        let (cfg, lines) = parse(text);
        assert!(cfg.is_none(), "{text}");
        assert_eq!(lines.len(), 1, "{lines:#?}");
        assert!(
            lines[0].contains("no profiles are configured"),
            "{lines:#?}"
        );
    }
}

#[test]
fn unknown_keys_and_wrong_types_do_not_hide_the_other_errors_which_come_in_file_order() {
    let text = "[daemon]\nbogus = 1\nrefresh_before = \"abc\"\n\
                [[output]]\npath = \"creds\"\nmode = \"999\"\n\
                [profile.a]\nsso_session = \"nope\"\nsso_account_id = \"111122223333\"\nsso_role_name = \"R\"\n\
                [profile.b]\ncredential_process = \"x\"\nduration_seconds = \"1\"\n";
    let (cfg, lines) = parse(text);
    assert!(cfg.is_none());
    let at: Vec<&str> = lines
        .iter()
        .map(|l| l.split(": ").next().unwrap())
        .collect();
    // 2: unknown key, 3: not a duration, 6: mode, 8: undefined session, 13: wrong type.
    assert_eq!(at, ["2:1", "3:18", "6:8", "8:15", "13:20"], "{lines:#?}");
    assert!(lines[1].contains("not a duration") && lines[3].contains("not defined"));
}

#[test]
fn hints_for_durations_and_modes_say_what_to_write() {
    rejects(
        &format!("[daemon]\nrefresh_before = 900\n{PROC}"),
        "2:18",
        "write \"15m\" or \"900s\"",
    );
    let (_, lines) = parse(&format!("[daemon]\nrefresh_before = 900\n{PROC}"));
    assert!(!lines[0].contains("quote it"), "{lines:#?}");
    // 0o600 is the integer 384 to TOML: named as written.
    rejects(
        &format!("[[output]]\npath = \"/x\"\nmode = 0o600\n{PROC}"),
        "3:8",
        "integer `0o600` (384), expected a string; a mode is a quoted octal string: write mode = \"0600\"",
    );
    // Not TOML at all (leading zero).
    rejects(
        &format!("[[output]]\npath = \"/x\"\nmode = 0640\n{PROC}"),
        "3:9",
        "write mode = \"0640\"",
    );
    rejects(
        "[profile.p]\nrole_arn = \"arn:aws:iam::123456789012:role/r\"\nsource_profile = \"s\"\nduration_seconds = \"3600\"\n",
        "4:20",
        "write it as a number, without quotes: 3600",
    );
}

#[test]
fn a_mode_open_to_every_user_is_accepted_with_a_warning() {
    for (mode, what) in [
        ("0666", "readable and writable"),
        ("0777", "readable and writable"),
        ("0644", "readable"),
    ] {
        let (cfg, lines) = parse(&format!(
            "[[output]]\npath = \"/x\"\nmode = \"{mode}\"\n{PROC}"
        ));
        assert!(cfg.is_some(), "{lines:#?}");
        assert_eq!(lines.len(), 1, "{lines:#?}");
        assert!(
            lines[0].starts_with("3:8: warning: ")
                && lines[0].contains(&format!("makes the credentials {what} by every user")),
            "{lines:#?}"
        );
    }
    let (_, lines) = parse(&format!(
        "[[output]]\npath = \"/x\"\nmode = \"0640\"\n{PROC}"
    ));
    assert!(lines.is_empty(), "{lines:#?}");
}

const LEGACY: &str = "[profile.dev]\nsso_start_url = \"https://my-portal.awsapps.com/start\"\nsso_region = \"us-east-1\"\nsso_account_id = \"111122223333\"\nsso_role_name = \"R\"\n";

#[test]
fn the_older_per_profile_sso_form_is_a_sign_in_named_by_its_start_url() {
    let (cfg, lines) = parse(&format!(
        "{LEGACY}[profile.ops]\nsso_start_url = \"https://my-portal.awsapps.com/start\"\nsso_region = \"us-east-1\"\nsso_account_id = \"111122223333\"\nsso_role_name = \"Ops\"\n"
    ));
    let cfg = cfg.unwrap_or_else(|| panic!("{lines:#?}"));
    // One sign-in for both profiles, named by the start URL, so that its token is the AWS
    // CLI's sha1(start URL) file; no scopes, as the CLI registers it.
    assert_eq!(cfg.sso_sessions.len(), 1);
    let s = &cfg.sso_sessions["https://my-portal.awsapps.com/start"];
    assert!(s.legacy && s.registration_scopes.is_empty(), "{s:?}");
    assert_eq!(s.region, "us-east-1");
    for p in ["dev", "ops"] {
        assert!(matches!(&cfg.profiles[p].source,
            Source::Sso { session, .. } if session == "https://my-portal.awsapps.com/start"));
    }
    // A hint, not an error: one warning for the start URL, with the TOML to write.
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(
        lines[0]
            .starts_with("2:17: warning: profiles `dev`, `ops` use the older per-profile SSO form"),
        "{lines:#?}"
    );
    assert!(lines[0].contains("add [sso_session.my-portal] with sso_start_url = \"https://my-portal.awsapps.com/start\" and sso_region = \"us-east-1\""), "{lines:#?}");
    assert!(
        lines[0]
            .contains("write sso_session = \"my-portal\" in place of sso_start_url and sso_region"),
        "{lines:#?}"
    );
}

#[test]
fn the_older_sso_form_needs_both_keys_and_one_region_per_start_url() {
    rejects(
        "[profile.dev]\nsso_start_url = \"https://x.awsapps.com/start\"\nsso_account_id = \"111122223333\"\nsso_role_name = \"R\"\n",
        "1:10",
        "profile `dev` needs sso_region too",
    );
    rejects(
        "[profile.dev]\nsso_region = \"us-east-1\"\nsso_account_id = \"111122223333\"\nsso_role_name = \"R\"\n",
        "1:10",
        "profile `dev` needs sso_start_url too",
    );
    rejects(
        "[profile.dev]\nsso_start_url = \"x.awsapps.com\"\nsso_region = \"us-east-1\"\nsso_account_id = \"111122223333\"\nsso_role_name = \"R\"\n",
        "2:17",
        "is not an http(s) URL",
    );
    rejects(
        &format!("{LEGACY}[profile.ops]\nsso_start_url = \"https://my-portal.awsapps.com/start\"\nsso_region = \"eu-west-1\"\nsso_account_id = \"111122223333\"\nsso_role_name = \"Ops\"\n"),
        "8:14",
        "sso_region `eu-west-1` differs from `us-east-1` of profile `dev`",
    );
    rejects(
        &format!("{LEGACY}credential_process = \"x\"\n"),
        "6:22",
        "two sources",
    );
}

#[test]
fn sso_session_with_the_older_keys_is_accepted_when_they_agree_as_botocore_does() {
    let session = "[sso_session.corp]\nsso_start_url = \"https://x.awsapps.com/start\"\nsso_region = \"us-east-1\"\n";
    let profile = "[profile.dev]\nsso_session = \"corp\"\nsso_account_id = \"111122223333\"\nsso_role_name = \"R\"\n";
    let (cfg, lines) = parse(&format!(
        "{session}{profile}sso_start_url = \"https://x.awsapps.com/start\"\nsso_region = \"us-east-1\"\n"
    ));
    let cfg = cfg.unwrap_or_else(|| panic!("{lines:#?}"));
    assert_eq!(cfg.sso_sessions.len(), 1, "no second sign-in");
    assert!(lines.is_empty(), "{lines:#?}");
    rejects(
        &format!("{session}{profile}sso_region = \"us-west-2\"\n"),
        "8:14",
        "sso_region `us-west-2` differs from `us-east-1` of sso_session `corp`",
    );
    rejects(
        &format!("{session}{profile}sso_start_url = \"https://y.awsapps.com/start\"\n"),
        "8:17",
        "sso_start_url `https://y.awsapps.com/start` differs",
    );
}

#[test]
fn a_dotted_profile_name_says_how_to_quote_it_and_nothing_else() {
    rejects(
        "[profile.prod.admin]\ncredential_process = \"x\"\n",
        "1:10",
        "[profile.prod.admin] is a profile `prod` with a table `admin` in it: a profile name with a dot is quoted: write it as [profile.\"prod.admin\"]",
    );
    let (cfg, lines) = parse("[profile.\"prod.admin\"]\ncredential_process = \"x\"\n");
    let cfg = cfg.unwrap_or_else(|| panic!("{lines:#?}"));
    assert!(cfg.profiles.contains_key("prod.admin"));
}

#[test]
fn a_pasted_aws_config_gets_every_fix_and_the_init_command_once() {
    let (cfg, lines) = parse(
        "[default]\nregion = us-east-1\noutput = json\n\n[sso-session corp]\nsso_start_url = https://x.awsapps.com/start\n\n[profile dev]\nsso_session = corp\n",
    );
    assert!(cfg.is_none());
    let errors: Vec<&String> = lines.iter().filter(|l| !l.contains(" note: ")).collect();
    let starts: Vec<&str> = errors
        .iter()
        .map(|l| l.split(": ").next().unwrap())
        .collect();
    assert_eq!(
        starts,
        ["1:2", "2:10", "3:10", "5:14", "6:17", "8:10", "9:15"],
        "{lines:#?}"
    );
    assert!(errors[0].contains("write [profile.default]; `awscredd init --from-aws-config` converts a whole ~/.aws/config"), "{lines:#?}");
    assert_eq!(
        lines.iter().filter(|l| l.contains("awscredd init")).count(),
        1,
        "{lines:#?}"
    );
    assert!(
        errors[2].contains("`output` is a setting of the AWS CLI"),
        "{lines:#?}"
    );
    assert!(
        errors[4].contains("write sso_start_url = \"https://x.awsapps.com/start\""),
        "{lines:#?}"
    );
}

/// The account `[imds]` answers for each source, as the config says it.
#[test]
fn the_account_of_each_source_as_configured() {
    let (cfg, lines) = parse(
        "[sso_session.s]\nsso_start_url = \"https://x.awsapps.com/start\"\nsso_region = \"us-east-1\"\n\
         [profile.sso]\nsso_session = \"s\"\nsso_account_id = \"111111111111\"\nsso_role_name = \"R\"\n\
         [profile.role]\nsource_profile = \"sso\"\nrole_arn = \"arn:aws:iam::222222222222:role/r\"\n\
         [profile.web]\nrole_arn = \"arn:aws:iam::333333333333:role/w\"\nweb_identity_token_file = \"/t\"\n\
         [profile.mfa]\nsource_profile = \"keys\"\nget_session_token = true\n\
         mfa_serial = \"arn:aws:iam::444444444444:mfa/u\"\nmfa_command = [\"/bin/code\"]\n\
         [profile.plain]\nsource_profile = \"keys\"\nget_session_token = true\n\
         [profile.process]\ncredential_process = \"/bin/true\"\n",
    );
    let cfg = cfg.unwrap_or_else(|| panic!("{lines:#?}"));
    let account = |p: &str| cfg.profiles[p].source.account_id();
    assert_eq!(account("sso").as_deref(), Some("111111111111"));
    assert_eq!(account("role").as_deref(), Some("222222222222"));
    assert_eq!(account("web").as_deref(), Some("333333333333"));
    assert_eq!(account("mfa").as_deref(), Some("444444444444"));
    assert_eq!(account("plain"), None);
    assert_eq!(account("process"), None, "only its output says");
}

#[test]
fn imds_is_loopback_only_with_a_written_profile() {
    let base = "[[output]]\npath = \"/tmp/c\"\nprofiles = [\"a\"]\n\
                [profile.a]\ncredential_process = \"/bin/true\"\nregion = \"eu-west-1\"\n\
                [profile.b]\ncredential_process = \"/bin/true\"\n";
    rejects(
        &format!("{base}[imds]\nlisten = \"0.0.0.0:9911\"\nprofile = \"a\"\n"),
        "10:10",
        "not a loopback address",
    );
    rejects(
        &format!("{base}[imds]\nlisten = \"9911\"\nprofile = \"b\"\n"),
        "11:11",
        "not written to any [[output]]",
    );
    let (cfg, lines) = parse(&format!(
        "{base}[imds]\nlisten = \"[::1]:9911\"\nprofile = \"a\"\n"
    ));
    let imds = cfg
        .and_then(|c| c.imds)
        .unwrap_or_else(|| panic!("{lines:#?}"));
    assert_eq!(
        (imds.listen.to_string().as_str(), imds.profile.as_str()),
        ("[::1]:9911", "a")
    );
    assert!(lines.is_empty(), "{lines:#?}");
}

/// `credential-process`'s load: `profile`'s chain and the tables that are not profiles are
/// validated, other profiles are not; lines and columns are the file's.
#[test]
fn a_profile_load_validates_its_chain_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    let text = "[daemon]\nstate_dir = \"s\"\n[[output]]\npath = \"creds\"\nprofiles = [\"role\", \"bad\"]\n\
        [profile.bad]\nregion = \"nowhere\"\ncredential_process = \"x\"\n\
        [profile.base]\ncredential_process = \"x\"\n\
        [profile.role]\nsource_profile = \"base\"\nrole_arn = \"arn:aws:iam::111122223333:role/r\"\n\
        [profile.broken_role]\nsource_profile = \"base\"\nrole_arn = \"not an arn\"\n";
    std::fs::write(&path, text).unwrap();
    // The whole file has two errors...
    assert!(load(&path, &env).is_err());
    // ...that `role` does not have: its chain is validated, the output holds it alone.
    let (cfg, _) = load_for_profile(&path, &env, "role").unwrap();
    assert_eq!(cfg.profiles.keys().collect::<Vec<_>>(), ["base", "role"]);
    assert_eq!(cfg.outputs[0].profiles, ["role"]);
    assert_eq!(cfg.chain("role").count(), 2);
    // A profile's own error is reported at its place in the file, and only it.
    let Err(LoadError::Invalid(report)) = load_for_profile(&path, &env, "broken_role") else {
        panic!("accepted");
    };
    let lines = report.lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("c.toml:16:12: "), "{lines:?}");
    let Err(LoadError::Invalid(report)) = load_for_profile(&path, &env, "bad") else {
        panic!("accepted");
    };
    assert!(
        report.lines()[0].contains("c.toml:7:10: "),
        "{:?}",
        report.lines()
    );
    // A profile the file does not define: the whole file, its errors first.
    let Err(LoadError::Invalid(report)) = load_for_profile(&path, &env, "nope") else {
        panic!("accepted");
    };
    assert_eq!(report.lines().len(), 2, "{:?}", report.lines());
}
