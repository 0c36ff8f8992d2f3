//! What a new user trips over: `check` names paths that cannot work, and says which folders
//! `once` will create.
#![cfg(unix)]

use crate::util::{show, Sandbox};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

const PROC: &str = "[profile.p]\ncredential_process = \"true\"\n";

#[test]
fn check_refuses_an_output_whose_parent_is_a_file() {
    let sb = Sandbox::new();
    fs::write(sb.file("plain"), "x").unwrap();
    sb.config(&format!(
        "[daemon]\nstate_dir = \"state\"\n[[output]]\npath = \"plain/credentials\"\n{PROC}"
    ));
    let o = sb.run(&["check"]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("is a regular file, not a folder"),
        "{}",
        show(&o)
    );
}

#[test]
fn check_says_which_folders_once_will_create() {
    let sb = Sandbox::new();
    sb.config(&format!(
        "[daemon]\nstate_dir = \"state\"\n[[output]]\npath = \"new/deeper/credentials\"\n{PROC}"
    ));
    let o = sb.run(&["check"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let want = format!(
        "will create the folder {} (mode 0700)",
        sb.file("new").display()
    );
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(&want),
        "{}",
        show(&o)
    );
}

#[test]
fn check_warns_about_a_missing_web_identity_token_file() {
    let sb = Sandbox::new();
    sb.config("[daemon]\nstate_dir = \"state\"\n[[output]]\npath = \"credentials\"\n[profile.pod]\nrole_arn = \"arn:aws:iam::111122223333:role/Pod\"\nweb_identity_token_file = \"token\"\n");
    let o = sb.run(&["check"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("web_identity_token_file"),
        "{}",
        show(&o)
    );
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("does not exist"),
        "{}",
        show(&o)
    );
}

#[test]
fn check_warns_about_an_output_folder_this_user_cannot_write() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIPPED: needs root to become another user");
        return;
    }
    let sb = Sandbox::new();
    fs::set_permissions(sb.path(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::create_dir(sb.file("root-only")).unwrap();
    fs::set_permissions(sb.file("root-only"), fs::Permissions::from_mode(0o755)).unwrap();
    let cfg = sb.config(&format!(
        "[daemon]\nstate_dir = \"/tmp\"\n[[output]]\npath = \"root-only/credentials\"\n{PROC}"
    ));
    fs::set_permissions(&cfg, fs::Permissions::from_mode(0o644)).unwrap();
    let o = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(crate::util::bin())
        .arg("--config")
        .arg(&cfg)
        .arg("check")
        .env_clear()
        .env("HOME", "/tmp")
        .output()
        .unwrap();
    // A warning: the config may be checked as another user than the one it runs as.
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("warning: [[output]]")
            && String::from_utf8_lossy(&o.stderr).contains("this user cannot write in"),
        "{}",
        show(&o)
    );
}

const SSO: &str = "[daemon]\nstate_dir = \"state\"\n[[output]]\npath = \"credentials\"\n\
    [sso_session.corp]\nsso_start_url = \"https://x.awsapps.com/start\"\nsso_region = \"us-east-1\"\n\
    [profile.dev]\nsso_session = \"corp\"\nsso_account_id = \"111122223333\"\nsso_role_name = \"Developer\"\n";

/// `GET url` on 127.0.0.1 with std only; the body.
fn http_get(url: &str) -> String {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let mut s = std::net::TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[test]
fn login_can_be_tried_by_hand_against_the_fake_by_opening_its_url() {
    use std::io::{BufRead, BufReader};
    let fake = crate::fake_aws::FakeAws::start();
    let sb = Sandbox::new();
    sb.config(SSO);
    let mut c = sb.command();
    c.env("AWS_ENDPOINT_URL_SSO_OIDC", &fake.url)
        .env("AWS_ENDPOINT_URL_SSO", &fake.url)
        .arg("--config")
        .arg(sb.file("config.toml"))
        .args(["login", "--no-browser"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let mut child = c.spawn().unwrap();
    let mut url = None;
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref().map_while(Result::ok) {
        if let Some(u) = line
            .split_whitespace()
            .find(|w| w.contains("/device?user_code="))
        {
            url = Some(u.trim_end_matches(')').to_string());
            break;
        }
    }
    let url = url.expect("login printed the verification URL");
    // Keep reading what it prints after, so it never writes into a closed pipe.
    let drain = std::thread::spawn(move || lines.count());
    assert!(http_get(&url).contains("approved 1 sign-in"));
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "login hangs"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let _ = drain.join();
    assert!(status.success());
}

/// `cargo run --example fake_aws -- --serve` started from a script, in the background or by
/// CI has no terminal on stdin: it must keep serving (it used to stop at once on EOF), and
/// with `--auto-approve` sign `awscredd login` and `once` in. Stopped by its PID.
#[test]
fn the_standalone_fake_keeps_serving_without_a_terminal_and_signs_in_awscredd_login() {
    use std::io::{BufRead, BufReader};
    let exe = std::env::current_exe().unwrap();
    let fake_bin = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/fake_aws");
    assert!(
        fake_bin.exists(),
        "{} is missing: cargo test builds the examples",
        fake_bin.display()
    );
    let mut fake = Command::new(&fake_bin)
        .args(["--serve", "--auto-approve"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(fake.stdout.take().unwrap()).lines();
    let first = out.next().unwrap().unwrap();
    let url = first.rsplit(' ').next().unwrap().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{first}");
    // Keep reading what it prints, so it never writes into a closed pipe.
    let rest = std::thread::spawn(move || out.map_while(Result::ok).collect::<Vec<_>>());
    // Stdin is /dev/null (EOF at once): still serving a second later.
    std::thread::sleep(std::time::Duration::from_secs(1));
    let early_exit = fake.try_wait().unwrap();
    let sb = Sandbox::new();
    sb.config(SSO);
    let run = |args: &[&str]| {
        let mut c = sb.command();
        c.env("AWS_ENDPOINT_URL_SSO_OIDC", &url)
            .env("AWS_ENDPOINT_URL_SSO", &url)
            .arg("--config")
            .arg(sb.file("config.toml"))
            .args(args);
        c.output().unwrap()
    };
    let o = if early_exit.is_none() {
        Some((run(&["login", "--no-browser"]), run(&["once"])))
    } else {
        None
    };
    let _ = fake.kill();
    let _ = fake.wait();
    let printed = rest.join().unwrap().join("\n");
    assert!(
        early_exit.is_none(),
        "fake_aws --serve stopped with stdin from /dev/null: {early_exit:?}"
    );
    assert!(printed.contains("Serving until stopped"), "{printed}");
    let (o, o2) = o.unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(o2.status.code(), Some(0), "{}", show(&o2));
    assert!(fs::read_to_string(sb.file("credentials"))
        .unwrap()
        .contains("[dev]"));
}

#[test]
fn the_demo_shows_the_daemon_refreshing_by_itself() {
    let exe = std::env::current_exe().unwrap();
    let demo = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/demo");
    if !demo.exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "cargo test builds the examples"
        );
        eprintln!("SKIPPED: {} not built", demo.display());
        return;
    }
    let o = Command::new(&demo)
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("(rewritten by run)"), "{out}");
    assert!(
        out.contains("sending SIGTERM") && out.contains("run exited with status 0"),
        "{out}"
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !err.contains('\u{1b}'),
        "ANSI colour codes in a log that is not a terminal"
    );
}

#[test]
fn every_commands_help_lists_its_exit_codes() {
    for cmd in [
        "run",
        "once",
        "login",
        "status",
        "check",
        "credential-process",
    ] {
        let o = Command::new(crate::util::bin())
            .args([cmd, "--help"])
            .env("AWSCREDD_CONFIG", "")
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{cmd}: {}", show(&o));
        let help = String::from_utf8_lossy(&o.stdout);
        assert!(help.contains("Exit status:"), "{cmd} --help: {help}");
        assert!(
            !help.contains("AWSCREDD_CONFIG="),
            "an empty env value shown: {help}"
        );
    }
    let o = Command::new(crate::util::bin())
        .args(["credential-process", "--help"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).contains("RUST_LOG is not read"));
}

#[test]
fn run_says_when_the_next_refresh_is_due() {
    let sb = Sandbox::new();
    let script = sb.process_script("src.sh", "ASIANEXT", Some(3600));
    sb.config(&format!(
        "[daemon]\nstate_dir = \"state\"\n[[output]]\npath = \"credentials\"\n[profile.dev]\ncredential_process = \"{}\"\n",
        script.display()
    ));
    let mut c = sb.command();
    c.arg("--config")
        .arg(sb.file("config.toml"))
        .arg("run")
        .stdout(std::process::Stdio::null())
        .stderr(fs::File::create(sb.file("daemon.log")).unwrap());
    let mut child = c.spawn().unwrap();
    let started = std::time::Instant::now();
    let mut seen = String::new();
    while started.elapsed() < std::time::Duration::from_secs(20) {
        seen = fs::read_to_string(sb.file("daemon.log")).unwrap_or_default();
        if seen.contains("next refresh in") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = child.wait();
    // Due 15 minutes before the 60-minute expiry, less a little jitter.
    assert!(
        seen.contains("next refresh in 44m (dev)") || seen.contains("next refresh in 45m (dev)"),
        "{seen}"
    );
}

#[test]
fn check_gives_an_output_that_is_a_folder_the_line_and_column_of_its_path() {
    let sb = Sandbox::new();
    fs::create_dir(sb.file("creds")).unwrap();
    sb.config(&format!(
        "[daemon]\nstate_dir = \"state\"\n[[output]]\npath = \"creds\"\n{PROC}"
    ));
    let o = sb.run(&["check"]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    let want = format!("{}:4:8: [[output]] `", sb.file("config.toml").display());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&want) && err.contains("folder"),
        "{}",
        show(&o)
    );
}

#[test]
fn check_reports_errors_behind_an_unknown_key_in_file_order() {
    let sb = Sandbox::new();
    sb.config(
        "[daemon]\nstate_dir = \"state\"\nrefresh_before = \"abc\"\n[[output]]\npath = \"c\"\nmode = \"999\"\n\
         [profile.p]\ncredential_process = \"true\"\nsso_sesion = \"x\"\n",
    );
    let o = sb.run(&["check"]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    let lines: Vec<&str> = err.lines().collect();
    let cfg = sb.file("config.toml").display().to_string();
    assert!(lines[0].starts_with(&format!("{cfg}:3:18: ")), "{err}");
    assert!(lines[1].starts_with(&format!("{cfg}:6:8: ")), "{err}");
    assert!(
        lines[2].starts_with(&format!("{cfg}:9:1: unknown key")),
        "{err}"
    );
}

#[test]
fn check_warns_about_an_owner_or_group_name_that_does_not_resolve_and_refuses_id_minus_one() {
    let sb = Sandbox::new();
    sb.config(&format!(
        "[daemon]\nstate_dir = \"state\"\n[[output]]\npath = \"c\"\nowner = \"nosuchuser-awscredd\"\ngroup = \"nosuchgroup-awscredd\"\n{PROC}"
    ));
    let o = sb.run(&["check"]);
    // Names may resolve later (SSSD not up yet): warnings, and the config is valid.
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    let cfg = sb.file("config.toml").display().to_string();
    assert!(
        err.contains(&format!("{cfg}:5:9: warning: [[output]]"))
            && err.contains("owner `nosuchuser-awscredd` is not a user on this machine"),
        "{}",
        show(&o)
    );
    assert!(
        err.contains(&format!("{cfg}:6:9: warning: [[output]]"))
            && err.contains("group `nosuchgroup-awscredd` is not a group"),
        "{}",
        show(&o)
    );
    for owner in ["4294967295", "\"4294967295\""] {
        sb.config(&format!(
            "[daemon]\nstate_dir = \"state\"\n[[output]]\npath = \"c\"\nowner = {owner}\n{PROC}"
        ));
        let o = sb.run(&["check"]);
        assert_eq!(o.status.code(), Some(2), "{}", show(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr)
                .contains(&format!("{cfg}:5:9: owner 4294967295 is not a real id")),
            "{}",
            show(&o)
        );
    }
}
