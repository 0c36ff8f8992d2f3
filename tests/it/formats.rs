//! The other output formats, each read back by a reader nobody here wrote: `env` by
//! python-dotenv, `json` by botocore's `credential_process` provider (`cat FILE`),
//! `launch-settings` by Python's `json` — plus the guarantees every format shares: an invalid
//! file is never written, a pass with nothing due writes nothing, a killed write leaves the old
//! file or the new one.
#![cfg(unix)]

use crate::util::{botocore_python, show, Sandbox};
use awscredd::credentials::{Credentials, Secret};
use awscredd::formats;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

const EXPIRES: &str = "2099-01-01T00:00:00Z";

/// A `credential_process` script printing key id `$KEY` (default `akid`) with a fixed expiry.
fn script(sb: &Sandbox, akid: &str) -> String {
    let p = sb.file("src.sh");
    fs::write(
        &p,
        format!(
            "#!/bin/sh\nk=${{CRASH_KEY:-{akid}}}\nprintf '{{\"Version\":1,\"AccessKeyId\":\"%s\",\"SecretAccessKey\":\"secret-%s\",\"SessionToken\":\"token-%s\",\"Expiration\":\"{EXPIRES}\"}}' $k $k $k\n"
        ),
    )
    .unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    p.display().to_string()
}

fn config(sb: &Sandbox, output: &str) {
    let src = script(sb, "ASIAFORMAT");
    sb.config(&format!(
        "[daemon]\nstate_dir = \"state\"\n[[output]]\n{output}\nprofiles = [\"app\"]\n\
         [profile.app]\ncredential_process = \"{src}\"\n"
    ));
}

fn python(sb: &Sandbox, code: &str) -> Option<String> {
    let mut c = botocore_python(sb)?;
    let o = c.arg("-c").arg(code).output().unwrap();
    assert!(o.status.success(), "python: {}", show(&o));
    Some(String::from_utf8_lossy(&o.stdout).trim().to_string())
}

#[test]
fn env_files_are_read_by_python_dotenv_and_keep_other_lines() {
    let sb = Sandbox::new();
    config(&sb, "path = \"app.env\"\nformat = \"env\"\nmode = \"0640\"");
    let original = "# settings for app.service\nOTHER=1\nAWS_ACCESS_KEY_ID=OLDKEY\n";
    fs::write(sb.file("app.env"), original).unwrap();
    let o = sb.run(&["once"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let text = fs::read_to_string(sb.file("app.env")).unwrap();
    assert!(
        text.starts_with("# settings for app.service\nOTHER=1\nAWS_ACCESS_KEY_ID=ASIAFORMAT\n"),
        "{text}"
    );
    assert_eq!(
        fs::metadata(sb.file("app.env")).unwrap().mode() & 0o777,
        0o640
    );
    let code = format!(
        "import json, dotenv\nprint(json.dumps(dotenv.dotenv_values({:?}), sort_keys=True))",
        sb.file("app.env").display().to_string()
    );
    let Some(out) = python(&sb, &code) else {
        return;
    };
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["OTHER"], "1");
    assert_eq!(v["AWS_ACCESS_KEY_ID"], "ASIAFORMAT");
    assert_eq!(v["AWS_SECRET_ACCESS_KEY"], "secret-ASIAFORMAT");
    assert_eq!(v["AWS_SESSION_TOKEN"], "token-ASIAFORMAT");
    assert_eq!(v["AWS_CREDENTIAL_EXPIRATION"], EXPIRES);

    // Nothing due: nothing written (same inode, same bytes).
    let ino = fs::metadata(sb.file("app.env")).unwrap().ino();
    let o = sb.run(&["once"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(fs::metadata(sb.file("app.env")).unwrap().ino(), ino);
    assert_eq!(fs::read_to_string(sb.file("app.env")).unwrap(), text);
}

#[test]
fn json_files_are_read_by_botocores_credential_process_provider() {
    let sb = Sandbox::new();
    config(&sb, "path = \"creds.json\"\nformat = \"json\"");
    let o = sb.run(&["once"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    fs::write(
        sb.file("aws-config"),
        format!(
            "[profile app]\ncredential_process = cat {}\n",
            sb.file("creds.json").display()
        ),
    )
    .unwrap();
    let code = format!(
        "import botocore.session\ns = botocore.session.Session(profile='app')\ns.set_config_variable('config_file', {:?})\nc = s.get_credentials().get_frozen_credentials()\nprint(c.access_key, c.secret_key, c.token)",
        sb.file("aws-config").display().to_string()
    );
    let Some(out) = python(&sb, &code) else {
        return;
    };
    assert_eq!(out, "ASIAFORMAT secret-ASIAFORMAT token-ASIAFORMAT");
}

const LAUNCH: &str = r#"{
  "$schema": "http://json.schemastore.org/launchsettings.json",
  "iisSettings": {
    "windowsAuthentication": false,
    "iisExpress": { "applicationUrl": "http://localhost:5000", "sslPort": 44300 },
    "timeout": 12345678901234567890123, "ratio": 1.50, "note": "caf\u00e9 \/"
  },
  "profiles": {
    "Api": {
      "commandName": "Project",
      "launchBrowser": true,
      "environmentVariables": {
        "ASPNETCORE_ENVIRONMENT": "Development",
        "AWS_REGION": "eu-west-1"
      },
      "applicationUrl": "https://localhost:5001;http://localhost:5000"
    },
    "IIS Express": {
      "commandName": "IISExpress",
      "launchBrowser": true
    }
  }
}
"#;

#[test]
fn launch_settings_get_the_variables_and_keep_everything_else() {
    let sb = Sandbox::new();
    config(
        &sb,
        "path = \"Properties/launchSettings.json\"\nformat = \"launch-settings\"\nmode = \"0644\"",
    );
    fs::create_dir(sb.file("Properties")).unwrap();
    let path = sb.file("Properties/launchSettings.json");
    fs::write(&path, LAUNCH.replace('\n', "\r\n")).unwrap();
    let o = sb.run(&["once"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let text = fs::read_to_string(&path).unwrap();
    // Every byte kept but the variables added (CRLF, the inline object, the numbers as written).
    let vars = |indent: &str| {
        [
            "AWS_ACCESS_KEY_ID\": \"ASIAFORMAT",
            "AWS_SECRET_ACCESS_KEY\": \"secret-ASIAFORMAT",
            "AWS_SESSION_TOKEN\": \"token-ASIAFORMAT",
        ]
        .map(|v| format!("{indent}\"{v}\""))
        .join(",\n")
    };
    let want = LAUNCH
        .replace(
            "\"AWS_REGION\": \"eu-west-1\"\n",
            &format!("\"AWS_REGION\": \"eu-west-1\",\n{}\n", vars("        ")),
        )
        .replace(
            "\"launchBrowser\": true\n    }",
            &format!(
                "\"launchBrowser\": true,\n      \"environmentVariables\": {{\n{}\n      }}\n    }}",
                vars("        ")
            ),
        )
        .replace('\n', "\r\n");
    assert_eq!(text, want);
    let code = format!(
        "import json\n\
         old = json.loads(open({orig:?}).read())\n\
         new = json.loads(open({new:?}).read())\n\
         keys = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN']\n\
         got = [[p['environmentVariables'][k] for k in keys] for p in new['profiles'].values()]\n\
         for p in new['profiles'].values():\n\
         \x20   env = p['environmentVariables']\n\
         \x20   for k in keys: del env[k]\n\
         \x20   if not env: del p['environmentVariables']\n\
         assert json.dumps(old, indent=2) == json.dumps(new, indent=2), 'everything else kept in order'\n\
         print(json.dumps(got))",
        orig = sb.file("orig.json").display().to_string(),
        new = path.display().to_string()
    );
    fs::write(sb.file("orig.json"), LAUNCH).unwrap();
    let Some(out) = python(&sb, &code) else {
        return;
    };
    let got: Vec<Vec<String>> = serde_json::from_str(&out).unwrap();
    assert_eq!(got.len(), 2);
    for g in got {
        assert_eq!(g, ["ASIAFORMAT", "secret-ASIAFORMAT", "token-ASIAFORMAT"]);
    }
    // The state file's record says when they expire: not due on a second pass.
    let before = fs::read(&path).unwrap();
    let ino = fs::metadata(&path).unwrap().ino();
    let o = sb.run(&["once"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(fs::read(&path).unwrap(), before);
    assert_eq!(fs::metadata(&path).unwrap().ino(), ino);
    let o = sb.run(&["status", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["profiles"][0]["state"], "ok", "{}", show(&o));
    assert_eq!(v["profiles"][0]["expires_at"], EXPIRES, "{}", show(&o));
}

/// A file with nothing to write into (`"profiles": {}`) used to count as written on every
/// pass (a refresh a second under `run`); it is an error now, and so is invalid JSON, each
/// named with FILE:LINE:COL, the file left untouched.
#[test]
fn an_invalid_launch_settings_file_is_left_untouched_with_an_error() {
    let sb = Sandbox::new();
    config(
        &sb,
        "path = \"launchSettings.json\"\nformat = \"launch-settings\"",
    );
    let path = sb.file("launchSettings.json");
    for (bad, at, want) in [
        (
            "{\n  \"x\": 1,\n  \"profiles\": {}\n}\n",
            "3:15",
            "no launch profile to write the credentials into",
        ),
        (
            "{\n  \"profiles\": {\n    'Api': {}\n  }\n}\n",
            "3:5",
            "found `'` (JSON names take double quotes)",
        ),
    ] {
        fs::write(&path, bad).unwrap();
        let prefix = format!("{}:{at}: cannot use", path.display());
        let o = sb.run(&["check"]);
        assert_eq!(o.status.code(), Some(2), "{}", show(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(&prefix) && err.contains(want), "{}", show(&o));
        let o = sb.run(&["once"]);
        assert_eq!(o.status.code(), Some(1), "{}", show(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(&prefix) && err.contains("left untouched") && err.contains(want),
            "{}",
            show(&o)
        );
        assert_eq!(fs::read_to_string(&path).unwrap(), bad);
    }
}

/// Visual Studio's files have comments and trailing commas (dotnet reads them so): they are
/// written, and keep them.
#[test]
fn launch_settings_with_comments_or_trailing_commas_are_not_json_and_left_untouched() {
    let sb = Sandbox::new();
    config(
        &sb,
        "path = \"launchSettings.json\"\nformat = \"launch-settings\"",
    );
    let path = sb.file("launchSettings.json");
    for (old, at) in [
        (
            "{\n  // local only\n  \"profiles\": {\n    \"Api\": {\n      \"commandName\": \"Project\"\n    }\n  }\n}\n",
            ("launchSettings.json:2:3:", "a `//` comment: JSON has none"),
        ),
        (
            "{\n  \"profiles\": {\n    \"Api\": {\n      \"commandName\": \"Project\",\n    }\n  }\n}\n",
            ("launchSettings.json:4:31:", "a trailing comma: JSON has none"),
        ),
    ] {
        fs::write(&path, old).unwrap();
        let o = sb.run(&["once"]);
        assert_eq!(o.status.code(), Some(1), "{}", show(&o));
        assert_eq!(fs::read_to_string(&path).unwrap(), old, "left untouched");
        let (at, what) = at;
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(at) && err.contains(what), "{at}: {}", show(&o));
        let o = sb.run(&["check"]);
        assert_eq!(o.status.code(), Some(2), "{}", show(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(at) && err.contains(what), "{}", show(&o));
    }
}

#[test]
fn check_refuses_what_the_formats_cannot_hold() {
    let sb = Sandbox::new();
    let src = script(&sb, "A");
    for (output, want) in [
        ("path = \"a.env\"\nformat = \"env\"", "holds one profile"),
        (
            "path = \"a.env\"\nformat = \"yaml\"",
            "unknown format `yaml`",
        ),
        (
            "path = \"a\"\nlaunch_profiles = [\"Api\"]",
            "only to format = \"launch-settings\"",
        ),
        (
            "path = \"a.json\"\nformat = \"json\"\nprofiles = [\"app\", \"other\"]",
            "holds one profile",
        ),
    ] {
        sb.config(&format!(
            "[daemon]\nstate_dir = \"state\"\n[[output]]\n{output}\n\
             [profile.app]\ncredential_process = \"{src}\"\n[profile.other]\ncredential_process = \"{src}\"\n"
        ));
        let o = sb.run(&["check"]);
        assert_eq!(o.status.code(), Some(2), "{output}: {}", show(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(want),
            "{want}: {}",
            show(&o)
        );
    }
}

#[test]
fn a_killed_write_of_an_env_file_leaves_the_old_file_or_the_new_one() {
    let sb = Sandbox::new();
    config(&sb, "path = \"big.env\"\nformat = \"env\"");
    let mut text = String::new();
    for i in 0..20_000 {
        text.push_str(&format!(
            "# line {i}\nUSER_VAR_{i}=value-{i}-xxxxxxxxxxxxxxxxxxxxxxxx\n"
        ));
    }
    fs::write(sb.file("big.env"), &text).unwrap();
    let creds = |k: &str| Credentials {
        access_key_id: k.to_string(),
        secret_access_key: Secret::new(format!("secret-{k}")),
        session_token: Some(Secret::new(format!("token-{k}"))),
        expiration: awscredd::credentials::parse_rfc3339(EXPIRES).ok(),
        account_id: None,
    };
    let mut seed: u64 = 0x5eed;
    let mut killed = 0;
    for run in 0..60u64 {
        let old = fs::read(sb.file("big.env")).unwrap();
        let k = format!("CRASH{run:08}");
        let new = formats::env_rewrite(&old, &creds(&k)).unwrap();
        let mut c = sb.command();
        c.env("CRASH_KEY", &k)
            .arg("--config")
            .arg(sb.file("config.toml"))
            .args(["once", "--force"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = c.spawn().unwrap();
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        std::thread::sleep(Duration::from_micros((seed >> 33) % 60_000));
        let _ = child.kill();
        let started = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "hung");
            std::thread::sleep(Duration::from_millis(2));
        };
        if status.signal().is_some() {
            killed += 1;
        }
        let now = fs::read(sb.file("big.env")).unwrap();
        assert!(
            now == old || now == new.as_bytes(),
            "run {run}: a torn file ({} bytes)",
            now.len()
        );
    }
    println!("env crash test: {killed} of 60 runs killed, the file whole every time");
    assert!(killed > 10, "too few runs were killed mid-way: {killed}");
}

/// systemd's `EnvironmentFile=` ignores `export KEY=` lines (docker refuses them), and joins the
/// line after a `\` to it: awscredd writes its lines without `export`, and refuses a file where
/// systemd would not see them.
#[test]
fn env_files_get_lines_systemd_reads_or_are_refused() {
    let sb = Sandbox::new();
    config(&sb, "path = \"app.env\"\nformat = \"env\"");
    fs::write(
        sb.file("app.env"),
        "export AWS_ACCESS_KEY_ID=old\nOTHER=1\n",
    )
    .unwrap();
    let o = sb.run(&["once"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let text = fs::read_to_string(sb.file("app.env")).unwrap();
    assert!(
        text.starts_with("AWS_ACCESS_KEY_ID=ASIAFORMAT\nOTHER=1\nAWS_SECRET_ACCESS_KEY="),
        "{text}"
    );

    let bad = "OPTS=--a \\\nAWS_ACCESS_KEY_ID=old\n";
    fs::write(sb.file("app.env"), bad).unwrap();
    let o = sb.run(&["check"]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("as an env file") && err.contains("line 1 ends in a `\\`"),
        "{}",
        show(&o)
    );
    let o = sb.run(&["once", "--force"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert_eq!(fs::read_to_string(sb.file("app.env")).unwrap(), bad);
}

/// A `json` write replaces the whole file: a file there that is not awscredd's Version 1 JSON
/// (garbage, someone's appsettings.json) is refused by `check` and left untouched by `once`.
#[test]
fn a_json_output_never_replaces_a_file_that_is_not_credential_process_json() {
    let sb = Sandbox::new();
    config(&sb, "path = \"creds.json\"\nformat = \"json\"");
    for (bad, want) in [
        ("garbage\n", "it is not valid JSON"),
        (
            "{\n  \"Logging\": { \"LogLevel\": { \"Default\": \"Information\" } }\n}\n",
            "a key \"Logging\"",
        ),
    ] {
        fs::write(sb.file("creds.json"), bad).unwrap();
        let o = sb.run(&["check"]);
        assert_eq!(o.status.code(), Some(2), "{}", show(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(want),
            "{}",
            show(&o)
        );
        let o = sb.run(&["once"]);
        assert_eq!(o.status.code(), Some(1), "{}", show(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("as a json file, so it was left untouched") && err.contains(want),
            "{}",
            show(&o)
        );
        assert_eq!(fs::read_to_string(sb.file("creds.json")).unwrap(), bad);
    }
    // An empty file is taken over.
    fs::write(sb.file("creds.json"), "").unwrap();
    let o = sb.run(&["once"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(fs::read_to_string(sb.file("creds.json"))
        .unwrap()
        .contains("\"AccessKeyId\": \"ASIAFORMAT\""));
}

/// A launchSettings.json holds no expiry: the state file's record is used, but only while the
/// file holds the key recorded as written there. A file checked out again with an older key is
/// due, not "ok" until the record's expiry.
#[test]
fn a_launch_settings_file_holding_another_key_than_the_one_written_is_due() {
    let sb = Sandbox::new();
    config(
        &sb,
        "path = \"launchSettings.json\"\nformat = \"launch-settings\"",
    );
    let path = sb.file("launchSettings.json");
    let o = sb.run(&["once"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let written = fs::read_to_string(&path).unwrap();
    let state = fs::read_to_string(sb.file("state/state.json")).unwrap();
    assert!(
        state.contains("\"written_key\"") && !state.contains("ASIAFORMAT"),
        "{state}"
    );
    // `git checkout Properties/launchSettings.json`: the key committed last week.
    fs::write(&path, written.replace("\"ASIAFORMAT\"", "\"ASIAOLDKEY\"")).unwrap();
    let o = sb.run(&["status", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["profiles"][0]["state"], "expired", "{}", show(&o));
    let o = sb.run(&["once"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(fs::read_to_string(&path).unwrap(), written);
    let o = sb.run(&["status", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["profiles"][0]["state"], "ok", "{}", show(&o));
}

/// A `credential_process` script printing the given secret and token (JSON-escaped by the
/// caller), key id `ASIAFORMAT`.
fn script_with(sb: &Sandbox, secret: &str, token: &str) -> String {
    let p = sb.file("src-values.sh");
    let json = serde_json::json!({
        "Version": 1, "AccessKeyId": "ASIAFORMAT", "SecretAccessKey": secret,
        "SessionToken": token, "Expiration": EXPIRES,
    });
    fs::write(&p, format!("#!/bin/sh\ncat <<'EOF'\n{json}\nEOF\n")).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    p.display().to_string()
}

/// What `set -a; . ./app.env` gives `shell` for the four variables (one a line, `-` when
/// unset), run in the sandbox so a command the file runs would leave its mark there.
fn sourced(sb: &Sandbox, shell: &str) -> String {
    let o = std::process::Command::new(shell)
        .current_dir(sb.path())
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .args([
            "-c",
            "set -a; . ./app.env; for v in AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY \
             AWS_SESSION_TOKEN AWS_CREDENTIAL_EXPIRATION; do eval \"printf '%s\\n' \\\"\\${$v--}\\\"\"; done",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{shell}: {}", show(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Issue 27 item 2: an env file is sourced by shells (`set -a; . ./aws.env`), read by systemd,
/// docker (which does not unquote) and dotenv. awscredd writes values unquoted and refuses any
/// value with a character outside those AWS uses (`A-Z a-z 0-9 + / = . _ - :`), so every reader
/// sees the same bytes and a shell runs nothing: a secret `x;>pwned` (once wrote it, and
/// sourcing the file created `pwned`) is refused, the file left as it was.
#[test]
fn env_files_run_nothing_when_sourced_and_read_the_same_everywhere() {
    let sb = Sandbox::new();
    let original = "OTHER=1\n";
    for hostile in [
        "x;>pwned",
        "x&>pwned",
        "x|>pwned",
        "x>pwned",
        "(x)",
        "$(>pwned)",
        "x<y",
        "{x}",
        "~root",
        "a*",
        "a?b",
        "[ab]",
        "x!y",
        "x%y",
        "é",
    ] {
        let src = script_with(&sb, hostile, "token");
        sb.config(&format!(
            "[daemon]\nstate_dir = \"state\"\n[[output]]\npath = \"app.env\"\nformat = \"env\"\n\
             profiles = [\"app\"]\n[profile.app]\ncredential_process = \"{src}\"\n"
        ));
        fs::write(sb.file("app.env"), original).unwrap();
        let o = sb.run(&["once", "--force"]);
        assert_eq!(o.status.code(), Some(1), "{hostile:?}: {}", show(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("AWS_SECRET_ACCESS_KEY")
                && err.contains("outside the characters AWS uses")
                && !err.contains(hostile),
            "{hostile:?}: the error names the variable and the rule, not the secret: {}",
            show(&o)
        );
        assert_eq!(fs::read_to_string(sb.file("app.env")).unwrap(), original);
        for shell in ["sh", "bash"] {
            sourced(&sb, shell);
        }
        assert!(!sb.file("pwned").exists(), "{hostile:?} ran a command");
    }

    // Real-looking values (base64 with `+`, `/`, `=`) read the same in sh, bash and dotenv.
    let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    let token = "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQD+abc=/x==";
    let src = script_with(&sb, secret, token);
    sb.config(&format!(
        "[daemon]\nstate_dir = \"state\"\n[[output]]\npath = \"app.env\"\nformat = \"env\"\n\
         profiles = [\"app\"]\n[profile.app]\ncredential_process = \"{src}\"\n"
    ));
    let o = sb.run(&["once", "--force"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let want = format!("ASIAFORMAT\n{secret}\n{token}\n{EXPIRES}\n");
    for shell in ["sh", "bash"] {
        assert_eq!(sourced(&sb, shell), want, "{shell}");
    }
    let code = format!(
        "import dotenv\nv = dotenv.dotenv_values({:?})\nprint('\\n'.join(v[k] for k in \
         ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', \
         'AWS_CREDENTIAL_EXPIRATION']))",
        sb.file("app.env").display().to_string()
    );
    let out = python(&sb, &code).expect("python-dotenv (tests/requirements.txt) is needed");
    assert_eq!(format!("{out}\n"), want, "dotenv");
    // docker's --env-file takes the bytes after `=` as they are: with no quotes written, they
    // are the same bytes.
    let text = fs::read_to_string(sb.file("app.env")).unwrap();
    assert!(
        text.contains(&format!("\nAWS_SECRET_ACCESS_KEY={secret}\n"))
            && text.contains(&format!("\nAWS_SESSION_TOKEN={token}\n"))
            && !text.contains(['"', '\'']),
        "{text}"
    );
}
