//! `check` and `once` as a user runs them.

use crate::util::{show, Sandbox};
use std::fs;

fn creds_config(sb: &Sandbox, profiles: &[(&str, &str)]) -> std::path::PathBuf {
    let mut text =
        String::from("[daemon]\nstate_dir = \"state\"\n[[output]]\npath = \"aws/credentials\"\n");
    for (name, script) in profiles {
        text.push_str(&format!(
            "[profile.{name}]\ncredential_process = \"{script}\"\n"
        ));
    }
    sb.config(&text)
}

#[test]
fn check_prints_what_would_be_managed_and_exits_0() {
    let sb = Sandbox::new();
    creds_config(&sb, &[("dev", "/bin/true")]);
    let o = sb.run(&["check"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("valid"), "{}", show(&o));
    assert!(out.contains("aws/credentials (mode 0600)"), "{}", show(&o));
    assert!(
        out.contains("[dev] credential_process: /bin/true"),
        "{}",
        show(&o)
    );
}

#[test]
fn check_reports_file_line_col_and_exits_2() {
    let sb = Sandbox::new();
    let path = sb.config("[profile.dev]\ncredential_process = \"x\"\nduration_seconds = 5\n");
    let o = sb.run(&["check"]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("{}:3:20: ", path.display())),
        "{}",
        show(&o)
    );
    // The global option is accepted after the subcommand too.
    let o = sb
        .command()
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
}

#[test]
fn config_is_found_through_env_and_search_path() {
    let sb = Sandbox::new();
    // Nothing anywhere: exit 2 naming where it looked.
    let o = sb.command().arg("check").output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains(".config/awscredd/config.toml"));
    // ~/.config/awscredd/config.toml
    let dir = sb.file(".config/awscredd");
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("config.toml"),
        "[profile.p]\ncredential_process = \"x\"\n",
    )
    .unwrap();
    let o = sb.command().arg("check").output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    // AWSCREDD_CONFIG wins.
    let other = sb.file("other.toml");
    fs::write(&other, "[profile.q]\ncredential_process = \"x\"\n").unwrap();
    let o = sb
        .command()
        .arg("check")
        .env("AWSCREDD_CONFIG", &other)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("[q]"),
        "{}",
        show(&o)
    );
}

#[test]
fn an_empty_awscredd_config_means_unset_and_a_leading_tilde_is_expanded() {
    let sb = Sandbox::new();
    let dir = sb.file(".config/awscredd");
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("config.toml"),
        "[profile.p]\ncredential_process = \"x\"\n",
    )
    .unwrap();
    // Set but empty: the default search finds ~/.config/awscredd/config.toml.
    let o = sb
        .command()
        .arg("check")
        .env("AWSCREDD_CONFIG", "")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("[p]"),
        "{}",
        show(&o)
    );
    // `~/` as no shell expands it (quoted, or systemd's Environment=).
    fs::write(
        sb.file("other.toml"),
        "[profile.q]\ncredential_process = \"x\"\n",
    )
    .unwrap();
    for args in [vec!["check"], vec!["--config", "~/other.toml", "check"]] {
        let o = sb
            .command()
            .args(&args)
            .env("AWSCREDD_CONFIG", "~/other.toml")
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{args:?} {}", show(&o));
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("[q]"),
            "{}",
            show(&o)
        );
    }
    // `~NAME`: refused, not read as a folder named `~NAME`.
    let o = sb
        .command()
        .args(["--config", "~root/x.toml", "check"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("`~root` (a user's home by name) is not expanded"),
        "{}",
        show(&o)
    );
    sb.config("[[output]]\npath = \"~root/creds\"\n[profile.p]\ncredential_process = \"x\"\n");
    let o = sb.run(&["check"]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("config.toml:2:8: path `~root/creds`: `~root`"),
        "{}",
        show(&o)
    );
}

#[test]
fn once_writes_profiles_and_keeps_every_other_byte() {
    let sb = Sandbox::new();
    let a = sb.process_script("a.sh", "ASIAAAAA", Some(3600));
    let b = sb.process_script("b.sh", "ASIABBBB", None);
    creds_config(
        &sb,
        &[("a", a.to_str().unwrap()), ("b", b.to_str().unwrap())],
    );
    fs::create_dir_all(sb.file("aws")).unwrap();
    let original = "; managed by hand\r\n[other]\r\naws_access_key_id = KEEP\r\naws_secret_access_key = KEEP\r\n\r\n[a]\r\nregion = eu-west-1 # mine\r\naws_access_key_id = OLD\r\n";
    fs::write(sb.file("aws/credentials"), original).unwrap();
    let o = sb.run(&["once"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let text = fs::read_to_string(sb.file("aws/credentials")).unwrap();
    assert!(
        text.starts_with("; managed by hand\r\n[other]\r\naws_access_key_id = KEEP\r\naws_secret_access_key = KEEP\r\n\r\n[a]\r\nregion = eu-west-1 # mine\r\naws_access_key_id = ASIAAAAA\r\naws_secret_access_key = secret-ASIAAAAA\r\naws_session_token = token-ASIAAAAA\r\naws_credential_expiration = "),
        "{text}"
    );
    assert!(text.ends_with("\r\n\r\n[b]\r\naws_access_key_id = ASIABBBB\r\naws_secret_access_key = secret-ASIABBBB\r\naws_session_token = token-ASIABBBB\r\n"), "{text:?}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(sb.file("aws/credentials"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let state: serde_json::Value =
        serde_json::from_slice(&fs::read(sb.file("state/state.json")).unwrap()).unwrap();
    assert_eq!(state["profiles"]["a"]["source"], "credential_process");
    assert!(state["profiles"]["a"]["expires_at"].is_string());
    assert!(state["profiles"]["b"]["expires_at"].is_null());
}

#[test]
fn once_refreshes_only_what_is_due_unless_forced() {
    let sb = Sandbox::new();
    // A script that counts its runs.
    let counter = sb.file("runs");
    let script = sb.file("count.sh");
    fs::write(
        &script,
        format!(
            "#!/bin/sh\necho x >> '{}'\nprintf '{{\"Version\":1,\"AccessKeyId\":\"A%s\",\"SecretAccessKey\":\"S\",\"Expiration\":\"%s\"}}' $(wc -l < '{}') $(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)\n",
            counter.display(),
            counter.display()
        ),
    )
    .unwrap();
    let short = sb.process_script("short.sh", "ASIASHORT", Some(300));
    creds_config(
        &sb,
        &[
            ("hour", &format!("sh {}", script.display())),
            ("short", short.to_str().unwrap()),
        ],
    );
    let runs = || {
        fs::read_to_string(&counter)
            .map(|s| s.lines().count())
            .unwrap_or(0)
    };
    assert_eq!(sb.run(&["once"]).status.code(), Some(0));
    assert_eq!(runs(), 1);
    // Valid for an hour: not due, the script is not run again.
    let o = sb.run(&["once"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(runs(), 1);
    // --force runs it, and --profile narrows the pass.
    let o = sb.run(&["once", "--force", "--profile", "hour"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(runs(), 2);
    assert!(
        !String::from_utf8_lossy(&o.stderr).contains("profile=short"),
        "{}",
        show(&o)
    );
    // A 5-minute credential refreshed just now is due only at half its lifetime...
    let o = sb.run(&["once"]);
    assert!(
        !String::from_utf8_lossy(&o.stderr).contains("profile=short"),
        "{}",
        show(&o)
    );
    // ...but without a recorded refresh, less than refresh_before (15 min) left makes it due.
    fs::remove_file(sb.file("state/state.json")).unwrap();
    let o = sb.run(&["once"]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("profile=short"),
        "{}",
        show(&o)
    );
    // An unknown profile is a usage error.
    let o = sb.run(&["once", "--profile", "nope"]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("nope"));
}

#[test]
fn one_failing_profile_exits_1_and_the_others_are_written() {
    let sb = Sandbox::new();
    let good = sb.process_script("good.sh", "ASIAGOOD", Some(3600));
    let bad = sb.file("bad.sh");
    fs::write(
        &bad,
        "#!/bin/sh\necho 'corp-sso: token expired' >&2\nexit 3\n",
    )
    .unwrap();
    let garbage = sb.file("garbage.sh");
    fs::write(&garbage, "#!/bin/sh\necho 'SECRETISH not json'\n").unwrap();
    creds_config(
        &sb,
        &[
            ("good", good.to_str().unwrap()),
            ("bad", &format!("sh {}", bad.display())),
            ("garbage", &format!("sh {}", garbage.display())),
        ],
    );
    let o = sb.run(&["once"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("status 3") && err.contains("corp-sso: token expired"),
        "{}",
        show(&o)
    );
    assert!(err.contains("not credential_process JSON"), "{}", show(&o));
    assert!(
        !err.contains("SECRETISH"),
        "output of a process must not be logged: {}",
        show(&o)
    );
    let text = fs::read_to_string(sb.file("aws/credentials")).unwrap();
    assert!(
        text.contains("ASIAGOOD") && !text.contains("[bad]"),
        "{text}"
    );
    let state: serde_json::Value =
        serde_json::from_slice(&fs::read(sb.file("state/state.json")).unwrap()).unwrap();
    assert!(state["profiles"]["bad"]["last_error"]
        .as_str()
        .unwrap()
        .contains("status 3"));
}

#[test]
fn an_unparseable_file_is_never_written_and_the_error_names_file_and_line() {
    let sb = Sandbox::new();
    let good = sb.process_script("good.sh", "ASIAGOOD", Some(3600));
    creds_config(&sb, &[("good", good.to_str().unwrap())]);
    fs::create_dir_all(sb.file("aws")).unwrap();
    let cases: [&[u8]; 3] = [
        b"[a]\nkey : value\n",
        b"[a]\nk = v\n\xff\xfe\n",
        b"[a]\nk = \0\n",
    ];
    for bad in cases {
        fs::write(sb.file("aws/credentials"), bad).unwrap();
        let o = sb.run(&["once"]);
        assert_eq!(o.status.code(), Some(1), "{}", show(&o));
        let want = format!("{}:", sb.file("aws/credentials").display());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(&want) && err.contains("left untouched"),
            "{}",
            show(&o)
        );
        assert_eq!(fs::read(sb.file("aws/credentials")).unwrap(), bad);
    }
}

#[test]
fn no_secret_reaches_the_logs() {
    let sb = Sandbox::new();
    let script = sb.process_script("s.sh", "ASIASECRETKEYID99", Some(3600));
    creds_config(&sb, &[("p", script.to_str().unwrap())]);
    for format in ["text", "json"] {
        let o = sb.run(&[
            "once",
            "--force",
            "--log-level",
            "trace",
            "--log-format",
            format,
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", show(&o));
        let logs = String::from_utf8_lossy(&o.stderr);
        assert!(logs.contains("refreshed"), "{logs}");
        for secret in [
            "secret-ASIASECRETKEYID99",
            "token-ASIASECRETKEYID99",
            "ASIASECRETKEYID99",
        ] {
            assert!(!logs.contains(secret), "{secret} in logs:\n{logs}");
        }
        if format == "json" {
            for line in logs.lines() {
                serde_json::from_str::<serde_json::Value>(line)
                    .unwrap_or_else(|e| panic!("not JSON: {line}: {e}"));
            }
        }
    }
}

#[test]
fn missing_folders_are_created_and_symlinks_kept() {
    let sb = Sandbox::new();
    let script = sb.process_script("s.sh", "ASIALINK", Some(3600));
    #[cfg(unix)]
    {
        fs::create_dir_all(sb.file("real")).unwrap();
        fs::write(sb.file("real/creds"), "[x]\nk = v\n").unwrap();
        fs::create_dir_all(sb.file("aws")).unwrap();
        std::os::unix::fs::symlink(sb.file("real/creds"), sb.file("aws/credentials")).unwrap();
    }
    sb.config(&format!(
        "[daemon]\nstate_dir = \"state\"\n[[output]]\npath = \"aws/credentials\"\n[[output]]\npath = \"deep/er/creds\"\n[profile.p]\ncredential_process = \"{}\"\n",
        script.display()
    ));
    let o = sb.run(&["once"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(fs::read_to_string(sb.file("deep/er/creds"))
        .unwrap()
        .contains("ASIALINK"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = fs::symlink_metadata(sb.file("aws/credentials")).unwrap();
        assert!(meta.file_type().is_symlink());
        let real = fs::read_to_string(sb.file("real/creds")).unwrap();
        assert!(
            real.starts_with("[x]\nk = v\n") && real.contains("ASIALINK"),
            "{real}"
        );
        let mode = fs::metadata(sb.file("deep")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }
}

#[test]
fn unmanaged_source_profile_missing_fails_at_run_time_and_check_warns() {
    let sb = Sandbox::new();
    sb.config(
        "[daemon]\nstate_dir = \"state\"\n[[output]]\npath = \"out\"\n[profile.batch]\nsource_profile = \"longterm\"\nget_session_token = true\n",
    );
    let o = sb.run(&["check"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("warning: profile `batch`"),
        "{}",
        show(&o)
    );
    let o = sb.run(&["once"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("longterm"),
        "{}",
        show(&o)
    );
}

#[test]
fn check_warns_about_profiles_shadowed_in_aws_config() {
    let sb = Sandbox::new();
    creds_config(&sb, &[("dev", "/bin/true")]);
    fs::create_dir_all(sb.file(".aws")).unwrap();
    fs::write(
        sb.file(".aws/config"),
        "[profile dev]\nsso_session = corp\nregion = us-east-1\n",
    )
    .unwrap();
    let o = sb.run(&["check"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("profile `dev`") && err.contains("sso_session"),
        "{}",
        show(&o)
    );
}

#[cfg(unix)]
#[test]
fn owner_group_and_mode_are_applied_when_root() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    if !crate::util::require_root() {
        return;
    }
    let sb = Sandbox::new();
    let script = sb.process_script("s.sh", "ASIAOWNED", Some(3600));
    sb.config(&format!(
        "[daemon]\nstate_dir = \"state\"\n[[output]]\npath = \"shared/credentials\"\nmode = \"0640\"\nowner = 4242\ngroup = \"4343\"\n[profile.p]\ncredential_process = \"{}\"\n",
        script.display()
    ));
    let o = sb.run(&["once"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let meta = fs::metadata(sb.file("shared/credentials")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (4242, 4343));
    assert_eq!(meta.permissions().mode() & 0o777, 0o640);
    // A later write without owner keeps the file's owner (root rewriting an app user's file).
    sb.config(&format!(
        "[daemon]\nstate_dir = \"state\"\n[[output]]\npath = \"shared/credentials\"\n[profile.p]\ncredential_process = \"{}\"\n",
        script.display()
    ));
    let o = sb.run(&["once", "--force"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let meta = fs::metadata(sb.file("shared/credentials")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (4242, 4343));
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    // An unknown user name fails that output with a clear message.
    sb.config(&format!(
        "[daemon]\nstate_dir = \"state\"\n[[output]]\npath = \"shared/credentials\"\nowner = \"no-such-user-xyz\"\n[profile.p]\ncredential_process = \"{}\"\n",
        script.display()
    ));
    let o = sb.run(&["once", "--force"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no-such-user-xyz"),
        "{}",
        show(&o)
    );
}

/// Regression: a value the writer refuses used to fail the whole file's write, so one bad
/// source stopped every profile sharing its output file.
#[test]
fn an_unwritable_value_fails_only_its_profile() {
    let sb = Sandbox::new();
    let good = sb.process_script("good.sh", "ASIAGOOD", Some(3600));
    let odd = sb.file("odd.sh");
    fs::write(
        &odd,
        "#!/bin/sh\nprintf '{\"Version\":1,\"AccessKeyId\":\"ASIAODD\",\"SecretAccessKey\":\"abc #x\"}'\n",
    )
    .unwrap();
    creds_config(
        &sb,
        &[
            ("good", good.to_str().unwrap()),
            ("odd", &format!("sh {}", odd.display())),
        ],
    );
    let o = sb.run(&["once"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let text = fs::read_to_string(sb.file("aws/credentials")).unwrap();
    assert!(
        text.contains("ASIAGOOD") && !text.contains("ASIAODD"),
        "{text}"
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("profile=odd") && err.contains("cannot be written safely"),
        "{}",
        show(&o)
    );
    assert!(!err.contains("abc #x"), "{}", show(&o));
}
