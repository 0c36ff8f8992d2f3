//! `awscredd credential-process`: an SDK's `credential_process` served from the managed file.

use crate::util::{bin, botocore_python, counting_source, runs, show, Sandbox};
use std::fs;

/// A config with one profile whose credential_process script counts its runs and prints
/// credentials expiring in `expires_in` seconds.
fn setup(expires_in: i64) -> Sandbox {
    let sb = Sandbox::new();
    let source = counting_source(&sb, "run", expires_in);
    sb.config(&format!(
        "[daemon]\nstate_dir = \"state\"\n[[output]]\npath = \"credentials\"\n[profile.app]\ncredential_process = \"{}\"\n[profile.broken]\ncredential_process = \"sh -c 'echo nope >&2; exit 4'\"\n",
        source
    ));
    sb
}

#[test]
fn prints_version_1_json_refreshing_only_when_needed() {
    let sb = setup(3600);
    // Nothing in the file yet: refreshed first, then printed.
    let o = sb.run(&["credential-process", "--profile", "app"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["Version"], 1);
    assert_eq!(v["AccessKeyId"], "ASIARUN1");
    assert_eq!(v["SecretAccessKey"], "secret1");
    assert_eq!(v["SessionToken"], "token1");
    assert!(v["Expiration"].as_str().unwrap().ends_with('Z'));
    assert!(o.stderr.is_empty(), "no logs by default: {}", show(&o));
    assert!(fs::read_to_string(sb.file("credentials"))
        .unwrap()
        .contains("ASIARUN1"));
    // Fresh in the file: served from it, the source is not run again.
    let o = sb.run(&["credential-process", "--profile", "app"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("ASIARUN1"));
    assert_eq!(runs(&sb, "run"), 1);
}

#[test]
fn credentials_expiring_within_a_minute_are_refreshed_first() {
    let sb = setup(30);
    let o = sb.run(&["once", "--profile", "app"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(runs(&sb, "run"), 1);
    // 30 s left: refreshed first; the source again gives 30 s, and that is what is printed:
    // refreshing again would give no better.
    let o = sb.run(&["credential-process", "--profile", "app"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["AccessKeyId"], "ASIARUN2", "{}", show(&o));
    assert!(v["Expiration"].is_string(), "{}", show(&o));
    assert_eq!(runs(&sb, "run"), 2);
    // Now the source gives an hour: refreshed, and the new credentials printed.
    let script = fs::read_to_string(sb.file("run.sh"))
        .unwrap()
        .replace("30 seconds", "3600 seconds");
    fs::write(sb.file("run.sh"), script).unwrap();
    let o = sb.run(&["credential-process", "--profile", "app"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("ASIARUN3"),
        "{}",
        show(&o)
    );
    assert_eq!(runs(&sb, "run"), 3);
}

#[test]
fn failures_are_one_line_on_stderr_and_nothing_on_stdout() {
    let sb = setup(3600);
    let o = sb.run(&["credential-process", "--profile", "broken"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(o.stdout.is_empty());
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{}", show(&o));
    assert!(
        err.contains("broken") && err.contains("status 4"),
        "{}",
        show(&o)
    );
    // Nothing is logged by default: the message says how to see the source's stderr.
    assert!(
        err.contains("--log-level info credential-process --profile broken"),
        "{}",
        show(&o)
    );
    assert!(!err.contains("is in the log"), "{}", show(&o));
    let o = sb.run(&["credential-process", "--profile", "nope"]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(o.stdout.is_empty());
}

/// botocore runs `awscredd credential-process` as its credential_process and gets our keys.
#[test]
fn botocore_uses_it_as_its_credential_process() {
    let sb = setup(3600);
    let Some(mut python) = botocore_python(&sb) else {
        return;
    };
    let aws_config = sb.file("aws-config");
    fs::write(
        &aws_config,
        format!(
            "[profile app]\ncredential_process = {} --config {} credential-process --profile app\n",
            bin().display(),
            sb.file("config.toml").display()
        ),
    )
    .unwrap();
    let o = python
        .env("AWS_CONFIG_FILE", &aws_config)
        .env("AWS_SHARED_CREDENTIALS_FILE", sb.file("none"))
        .args([
            "-c",
            "import botocore.session\nc = botocore.session.Session(profile='app').get_credentials().get_frozen_credentials()\nprint(c.access_key, c.secret_key, c.token)",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", show(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "ASIARUN1 secret1 token1"
    );
}

/// Fresh credentials are served by the fast path (no runtime, no source): byte for byte the JSON
/// the refresh path printed, in every output format (`launch-settings` keeps the expiry in
/// `state.json`), with nothing on stderr.
#[test]
fn the_fast_path_prints_what_the_refresh_printed_in_every_format() {
    for output in [
        "path = \"credentials\"",
        "path = \"app.env\"\nformat = \"env\"",
        "path = \"app.json\"\nformat = \"json\"",
        "path = \"launchSettings.json\"\nformat = \"launch-settings\"",
    ] {
        let sb = setup(3600);
        let config = fs::read_to_string(sb.file("config.toml")).unwrap().replace(
            "[[output]]\npath = \"credentials\"\n",
            &format!("[[output]]\n{output}\nprofiles = [\"app\"]\n"),
        );
        sb.config(&config);
        let slow = sb.run(&["credential-process", "--profile", "app"]);
        assert_eq!(slow.status.code(), Some(0), "{output}: {}", show(&slow));
        assert_eq!(runs(&sb, "run"), 1, "{output}");
        for _ in 0..3 {
            let fast = sb.run(&["credential-process", "--profile", "app"]);
            assert_eq!(fast.status.code(), Some(0), "{output}: {}", show(&fast));
            assert_eq!(fast.stdout, slow.stdout, "{output}");
            assert!(fast.stderr.is_empty(), "{output}: {}", show(&fast));
        }
        assert_eq!(
            runs(&sb, "run"),
            1,
            "{output}: the fast path ran the source"
        );
        let v: serde_json::Value = serde_json::from_slice(&slow.stdout).unwrap();
        assert_eq!(v["AccessKeyId"], "ASIARUN1", "{output}");
        assert!(v["Expiration"].is_string(), "{output}");
    }
}

/// Without `--log-level` neither path prints anything on stderr (no subscriber is installed),
/// not even the config's warnings; with it, both paths log.
#[cfg(unix)]
#[test]
fn logs_only_with_log_level_on_either_path() {
    use std::os::unix::fs::PermissionsExt;
    let sb = setup(3600);
    // A config writable by others: a warning at every load.
    fs::set_permissions(sb.file("config.toml"), fs::Permissions::from_mode(0o666)).unwrap();
    let quiet = |sb: &Sandbox| {
        let o = sb.run(&["credential-process", "--profile", "app"]);
        assert_eq!(o.status.code(), Some(0), "{}", show(&o));
        assert!(o.stderr.is_empty(), "{}", show(&o));
    };
    let logged = |sb: &Sandbox, expect: &str| {
        let o = sb.run(&[
            "--log-level",
            "info",
            "credential-process",
            "--profile",
            "app",
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", show(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("writable by others"), "{}", show(&o));
        assert!(err.contains(expect), "{}", show(&o));
    };
    quiet(&sb); // refreshed
    quiet(&sb); // fresh
    fs::remove_file(sb.file("credentials")).unwrap();
    logged(&sb, "refreshed");
    logged(&sb, "");
    assert_eq!(runs(&sb, "run"), 2);
}

/// Keys another tool wrote into a managed profile (no expiry key, no refresh on record) are
/// refreshed before they are served, as `once` does; so are keys whose expiry is not a time.
#[test]
fn keys_without_a_known_expiry_are_refreshed_first() {
    for held in ["", "aws_credential_expiration = garbage\n"] {
        let sb = setup(3600);
        fs::write(
            sb.file("credentials"),
            format!("[app]\naws_access_key_id = AKIAOTHERTOOL\naws_secret_access_key = s\n{held}"),
        )
        .unwrap();
        let status = sb.run(&["status", "--json"]);
        assert_eq!(status.status.code(), Some(1), "{held}: {}", show(&status));
        let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
        let app = v["profiles"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "app")
            .unwrap();
        assert_eq!(app["state"], "expired", "{held}: {v}");
        let o = sb.run(&["credential-process", "--profile", "app"]);
        assert_eq!(o.status.code(), Some(0), "{held}: {}", show(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["AccessKeyId"], "ASIARUN1", "{held}: {}", show(&o));
        assert!(v["Expiration"].is_string(), "{held}: {}", show(&o));
        assert_eq!(runs(&sb, "run"), 1, "{held}");
    }
}

/// Keys without an expiry that awscredd itself wrote (a source that prints no `Expiration`)
/// are served from the file, without running the source again.
#[test]
fn keys_awscredd_refreshed_without_an_expiry_are_served() {
    let sb = Sandbox::new();
    let src = sb.process_script("src.sh", "ASIANOEXPIRY", None);
    sb.one_profile_config(&src.display().to_string());
    let o = sb.run(&["once"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    fs::remove_file(&src).unwrap();
    let o = sb.run(&["credential-process", "--profile", "a"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("ASIANOEXPIRY"),
        "{}",
        show(&o)
    );
}

/// A profile in two outputs, the first of which cannot be written: the second one's
/// credentials are served.
#[test]
fn any_output_holding_valid_credentials_is_used() {
    let sb = setup(3600);
    // A NUL byte: the AWS SDKs cannot parse it, so awscredd never overwrites it.
    fs::write(sb.file("broken"), "[app]\naws_access_key_id = A\0\n").unwrap();
    let config = fs::read_to_string(sb.file("config.toml")).unwrap().replace(
        "[[output]]\npath = \"credentials\"\n",
        "[[output]]\npath = \"broken\"\nprofiles = [\"app\"]\n[[output]]\npath = \"credentials\"\n",
    );
    sb.config(&config);
    for n in 0..2 {
        let o = sb.run(&["credential-process", "--profile", "app"]);
        assert_eq!(o.status.code(), Some(0), "call {n}: {}", show(&o));
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("ASIARUN1"),
            "call {n}: {}",
            show(&o)
        );
    }
    assert_eq!(
        runs(&sb, "run"),
        1,
        "the second call is served from the second output"
    );
    assert!(fs::read(sb.file("broken")).unwrap().contains(&0));
}

/// A config with several problems, or a command line clap refuses, is one line on stderr too.
#[test]
fn config_and_usage_errors_are_one_line() {
    let sb = setup(3600);
    let one_line = |o: &std::process::Output| {
        assert_eq!(o.status.code(), Some(2), "{}", show(o));
        assert!(o.stdout.is_empty(), "{}", show(o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{}", show(o));
        assert!(err.starts_with("awscredd: "), "{}", show(o));
        err.into_owned()
    };
    for args in [
        &[
            "credential-process",
            "--profile",
            "app",
            "--profile",
            "broken",
        ][..],
        &["credential-process"][..],
        &["credential-process", "--bogus"][..],
    ] {
        let err = one_line(&sb.run(args));
        assert!(err.contains("--help"), "{args:?}: {err}");
    }
    let config = fs::read_to_string(sb.file("config.toml")).unwrap();
    sb.config(&config.replace(
        "[profile.app]\n",
        "bogus = 1\n[profile.app]\nfoo = 2\nbar = 3\nbaz = 4\n",
    ));
    let err = one_line(&sb.run(&["credential-process", "--profile", "app"]));
    assert!(
        err.contains("config.toml:") && err.contains("(and 3 more; run `awscredd check`)"),
        "{err}"
    );
}
