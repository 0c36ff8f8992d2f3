//! Hostile and clumsy inputs, each done the way an attacker or a careless user did it: a root
//! daemon pointed by a folder's owner at another file, devices and FIFOs as outputs, an
//! output that is the config, a process printing without end, a `credential_process` that
//! calls itself, a grandchild holding stdout, a held lock, 50 concurrent `credential-process`
//! calls, a script echoing its secret, a burst of signals, root renewing a user's SSO token.
#![cfg(unix)]

use crate::util::{bin, show, Sandbox};
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// An application user that is not root (nobody needs to exist under this id).
const APP_UID: u32 = 4242;

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn json_script(sb: &Sandbox, name: &str, akid: &str, secret: &str, pre: &str) -> String {
    let p = sb.file(name);
    fs::write(
        &p,
        format!(
            "#!/bin/sh\n{pre}\nprintf '{{\"Version\":1,\"AccessKeyId\":\"{akid}\",\"SecretAccessKey\":\"{secret}\",\"SessionToken\":\"tok-{akid}\",\"Expiration\":\"%s\"}}' $(date -u -d '3600 seconds' +%Y-%m-%dT%H:%M:%SZ)\n"
        ),
    )
    .unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    p.display().to_string()
}

fn timed(sb: &Sandbox, args: &[&str]) -> (Output, Duration) {
    let started = Instant::now();
    let o = sb.run(args);
    (o, started.elapsed())
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn root_does_not_follow_links_planted_by_the_owner_of_an_output_folder() {
    if !crate::util::require_root() {
        return;
    }
    let sb = Sandbox::new();
    let app = sb.file("app");
    fs::create_dir(&app).unwrap();
    fs::set_permissions(&app, fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(&app, Some(APP_UID), Some(APP_UID)).unwrap();
    // A system file the attacker wants root to overwrite and chown, and one it wants created.
    let victim = sb.file("ld.so.preload");
    fs::write(&victim, "precious\n").unwrap();
    let missing = sb.file("created-by-root");
    let link = app.join("credentials");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    std::os::unix::fs::lchown(&link, Some(APP_UID), Some(APP_UID)).unwrap();
    let link2 = app.join("other");
    std::os::unix::fs::symlink(&missing, &link2).unwrap();
    std::os::unix::fs::lchown(&link2, Some(APP_UID), Some(APP_UID)).unwrap();
    // Even a root-owned link is not followed in a folder the app user can write.
    let link3 = app.join("rootlink");
    std::os::unix::fs::symlink(&victim, &link3).unwrap();
    let src = json_script(&sb, "src.sh", "ASIAHOSTILE", "s3cret", "");
    sb.config(&format!(
        "[daemon]\nstate_dir = \"state\"\n\
         [[output]]\npath = \"app/credentials\"\nowner = {APP_UID}\nprofiles = [\"a\"]\n\
         [[output]]\npath = \"app/other\"\nowner = {APP_UID}\nprofiles = [\"a\"]\n\
         [[output]]\npath = \"app/rootlink\"\nprofiles = [\"a\"]\n\
         [[output]]\npath = \"good/credentials\"\nprofiles = [\"a\"]\n\
         [profile.a]\ncredential_process = \"{src}\"\n"
    ));
    let (o, _) = timed(&sb, &["once"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let err = stderr(&o);
    assert!(
        err.contains("refusing to follow the symbolic link"),
        "{err}"
    );
    assert!(err.contains(&link.display().to_string()), "{err}");
    assert!(err.contains(&format!("owned by uid {APP_UID}")), "{err}");
    assert!(err.contains("its folder can be written by others"), "{err}");
    // The targets are untouched: same bytes, still root's, nothing created.
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
    assert_eq!(fs::metadata(&victim).unwrap().uid(), 0);
    assert!(!missing.exists());
    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    // Other outputs are still written.
    assert!(fs::read_to_string(sb.file("good/credentials"))
        .unwrap()
        .contains("ASIAHOSTILE"));
    // `check` says so too.
    let o = sb.run(&["check"]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(stderr(&o).contains("refusing to follow"), "{}", show(&o));
}

#[test]
fn root_follows_its_own_links_in_its_own_folders() {
    if !crate::util::require_root() {
        return;
    }
    let sb = Sandbox::new();
    fs::create_dir(sb.file("real")).unwrap();
    std::os::unix::fs::symlink(sb.file("real"), sb.file("linked-dir")).unwrap();
    std::os::unix::fs::symlink("real-credentials", sb.file("real/credentials")).unwrap();
    let src = json_script(&sb, "src.sh", "ASIAOWNLINK", "s3cret", "");
    sb.config(&format!(
        "[daemon]\nstate_dir = \"state\"\n[[output]]\npath = \"linked-dir/credentials\"\n\
         [profile.a]\ncredential_process = \"{src}\"\n"
    ));
    let o = sb.run(&["once"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(fs::symlink_metadata(sb.file("real/credentials"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(fs::read_to_string(sb.file("real/real-credentials"))
        .unwrap()
        .contains("ASIAOWNLINK"));
}

#[test]
fn devices_fifos_and_folders_as_outputs_are_left_as_they_are() {
    let sb = Sandbox::new();
    let fifo = sb.file("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    std::os::unix::fs::symlink("/dev/null", sb.file("null-link")).unwrap();
    fs::create_dir(sb.file("folder")).unwrap();
    let mut outputs = vec!["fifo", "null-link", "folder"];
    if is_root() {
        // A character device of our own (the same numbers as /dev/null).
        nix::sys::stat::mknod(
            &sb.file("chardev"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o666),
            nix::sys::stat::makedev(1, 3),
        )
        .unwrap();
        outputs.push("chardev");
    }
    let src = json_script(&sb, "src.sh", "ASIADEVICES", "s3cret", "");
    let mut config = String::from("[daemon]\nstate_dir = \"state\"\n");
    for o in outputs.iter().chain(["good"].iter()) {
        config.push_str(&format!("[[output]]\npath = \"{o}\"\n"));
    }
    config.push_str(&format!("[profile.a]\ncredential_process = \"{src}\"\n"));
    sb.config(&config);

    let o = sb.run(&["check"]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    for (name, kind) in [
        ("fifo", "a FIFO"),
        ("null-link", "a character device"),
        ("folder", "a folder"),
    ] {
        assert!(
            stderr(&o).contains(&format!("[[output]] `{}`", sb.file(name).display())),
            "{name}: {}",
            show(&o)
        );
        assert!(stderr(&o).contains(kind), "{kind}: {}", show(&o));
    }

    let (o, took) = timed(&sb, &["once"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(took < Duration::from_secs(20), "once took {took:?}");
    assert!(stderr(&o).contains("left it as it is"), "{}", show(&o));
    assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    assert!(fs::metadata("/dev/null")
        .unwrap()
        .file_type()
        .is_char_device());
    assert!(fs::symlink_metadata(sb.file("null-link"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(fs::metadata(sb.file("folder")).unwrap().is_dir());
    if is_root() {
        assert!(fs::symlink_metadata(sb.file("chardev"))
            .unwrap()
            .file_type()
            .is_char_device());
    }
    assert!(fs::read_to_string(sb.file("good"))
        .unwrap()
        .contains("ASIADEVICES"));
}

#[test]
fn an_output_that_is_the_config_the_state_or_a_lock_file_is_refused() {
    let sb = Sandbox::new();
    let src = json_script(&sb, "src.sh", "ASIACONF", "s3cret", "");
    for (outputs, want) in [
        (vec!["config.toml"], "is the config file"),
        (vec!["./state/state.json"], "is the state file"),
        (vec!["credentials", ".credentials.lock"], "lock file"),
        (vec![".aws/sso/cache/abc.json"], "SSO token cache"),
    ] {
        let mut config = String::from("[daemon]\nstate_dir = \"state\"\n");
        for o in &outputs {
            config.push_str(&format!("[[output]]\npath = \"{o}\"\n"));
        }
        config.push_str(&format!("[profile.a]\ncredential_process = \"{src}\"\n"));
        let path = sb.config(&config);
        let o = sb.run(&["check"]);
        assert_eq!(o.status.code(), Some(2), "{outputs:?}: {}", show(&o));
        assert!(stderr(&o).contains(want), "{want}: {}", show(&o));
        assert!(
            stderr(&o).contains("config.toml:"),
            "FILE:LINE:COL: {}",
            show(&o)
        );
        let o = sb.run(&["once"]);
        assert_eq!(o.status.code(), Some(2), "{}", show(&o));
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            config,
            "the config was written"
        );
    }
}

#[test]
fn a_process_printing_without_end_fails_its_profile_naming_the_limit() {
    let sb = Sandbox::new();
    let src = json_script(&sb, "src.sh", "ASIAFINE", "s3cret", "");
    sb.config(&format!(
        "[daemon]\nstate_dir = \"state\"\n[[output]]\npath = \"credentials\"\n\
         [profile.flood]\ncredential_process = \"yes\"\n\
         [profile.fine]\ncredential_process = \"{src}\"\n"
    ));
    let (o, took) = timed(&sb, &["once"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(took < Duration::from_secs(20), "{took:?}");
    assert!(
        stderr(&o).contains("more than the limit of 1 MiB"),
        "{}",
        show(&o)
    );
    assert!(fs::read_to_string(sb.file("credentials"))
        .unwrap()
        .contains("ASIAFINE"));

    // The daemon lives on and keeps the other profile.
    let mut child = sb.spawn_run();
    let started = Instant::now();
    let mut seen = false;
    while started.elapsed() < Duration::from_secs(20) {
        if fs::read_to_string(sb.file("daemon.log"))
            .unwrap_or_default()
            .contains("will retry")
        {
            seen = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let alive = child.try_wait().unwrap().is_none();
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(
        seen && alive,
        "{}",
        fs::read_to_string(sb.file("daemon.log")).unwrap()
    );
    assert_eq!(status.code(), Some(0));
}

#[test]
fn a_credential_process_that_calls_itself_fails_without_forking_again() {
    let sb = Sandbox::new();
    let count = sb.file("count");
    let cfg = sb.file("config.toml");
    sb.config(&format!(
        "[daemon]\nstate_dir = \"state\"\n[[output]]\npath = \"credentials\"\n\
         [profile.self]\ncredential_process = \"sh -c 'echo x >> {c}; exec {bin} --config {cfg} credential-process --profile self'\"\n",
        c = count.display(),
        bin = bin().display(),
        cfg = cfg.display()
    ));
    let runs = || {
        fs::read_to_string(&count)
            .map(|s| s.lines().count())
            .unwrap_or(0)
    };
    let (o, took) = timed(&sb, &["once"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(took < Duration::from_secs(20), "{took:?}");
    assert!(
        stderr(&o).contains("credential_process loop"),
        "{}",
        show(&o)
    );
    let state = fs::read_to_string(sb.file("state/state.json")).unwrap();
    assert!(state.contains("credential_process loop"), "{state}");
    // What an SDK does with `credential_process = awscredd credential-process --profile self`.
    let o = sb.run(&["credential-process", "--profile", "self"]);
    assert_ne!(o.status.code(), Some(0), "{}", show(&o));
    assert!(o.stdout.is_empty());
    println!(
        "self-reference: the source ran {} times for two entries",
        runs()
    );
    assert_eq!(runs(), 2, "one source run per entry, no fork loop");
}

#[test]
fn a_grandchild_holding_stdout_is_killed_and_the_credentials_are_used() {
    let sb = Sandbox::new();
    let pidfile = sb.file("grandchild.pid");
    let src = json_script(
        &sb,
        "src.sh",
        "ASIAGRAND",
        "s3cret",
        &format!("sleep 120 & echo $! > {}", pidfile.display()),
    );
    sb.one_profile_config(&src);
    let (o, took) = timed(&sb, &["once"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(
        took < Duration::from_secs(10),
        "waited for the grandchild: {took:?}"
    );
    assert!(fs::read_to_string(sb.file("credentials"))
        .unwrap()
        .contains("ASIAGRAND"));
    let pid = fs::read_to_string(&pidfile).unwrap().trim().to_string();
    let started = Instant::now();
    let gone = loop {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat.is_empty() || stat.contains(") Z ") {
            break true;
        }
        if started.elapsed() > Duration::from_secs(5) {
            break false;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(gone, "the grandchild {pid} still runs");
}

#[test]
fn a_held_lock_never_stops_credential_process_from_answering() {
    let sb = Sandbox::new();
    let src = json_script(&sb, "src.sh", "ASIALOCKED", "s3cret", "");
    sb.one_profile_config(&src);
    assert_eq!(sb.run(&["once"]).status.code(), Some(0));
    let lock = awscredd::files::lock::lock_exclusive(
        &sb.file(".credentials.lock"),
        "test",
        Duration::from_secs(5),
    )
    .unwrap();
    let (o, took) = timed(&sb, &["credential-process", "--profile", "a"]);
    drop(lock);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("ASIALOCKED"));
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn fifty_concurrent_credential_process_calls_run_the_source_once() {
    let sb = Sandbox::new();
    let count = sb.file("count");
    let src = json_script(
        &sb,
        "src.sh",
        "ASIACONCURRENT",
        "s3cret",
        &format!("echo x >> {}; sleep 0.5", count.display()),
    );
    sb.one_profile_config(&src);
    let children: Vec<_> = (0..50)
        .map(|_| {
            let mut c = sb.command();
            c.arg("--config")
                .arg(sb.file("config.toml"))
                .args(["credential-process", "--profile", "a"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            c.spawn().unwrap()
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", show(&o));
        assert!(String::from_utf8_lossy(&o.stdout).contains("ASIACONCURRENT"));
    }
    let runs = fs::read_to_string(&count).unwrap().lines().count();
    println!("50 concurrent credential-process calls: the source ran {runs} time(s)");
    assert_eq!(runs, 1);
}

#[test]
fn a_script_echoing_its_secret_keeps_it_out_of_the_log_and_the_state() {
    let sb = Sandbox::new();
    let secret = "Zq9dV3kLm2Xp7Rt5Wn8Yb4Hc6Jf1Ga0Se3Ud2Ti";
    let shaped = "AbCdEfGhIj0123456789KlMnOpQrStUvWxYz+/AB";
    let ok = json_script(
        &sb,
        "ok.sh",
        "ASIASECRET",
        secret,
        &format!("echo \"debug: got {secret} and {shaped}\" >&2; echo progress >&2"),
    );
    let bad = sb.file("bad.sh");
    fs::write(
        &bad,
        format!("#!/bin/sh\necho \"failed with {shaped}\" >&2\nexit 3\n"),
    )
    .unwrap();
    fs::set_permissions(&bad, fs::Permissions::from_mode(0o755)).unwrap();
    sb.config(&format!(
        "[daemon]\nstate_dir = \"state\"\n[[output]]\npath = \"credentials\"\n\
         [profile.ok]\ncredential_process = \"{ok}\"\n\
         [profile.bad]\ncredential_process = \"{} --password ARGSECRET123\"\n",
        bad.display()
    ));
    let o = sb.run(&["--log-level", "debug", "once"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let log = stderr(&o);
    assert!(log.contains("progress"), "stderr is logged: {log}");
    let state = fs::read_to_string(sb.file("state/state.json")).unwrap();
    for leak in [secret, shaped, "ARGSECRET123"] {
        assert!(!log.contains(leak), "{leak} in the log: {log}");
        assert!(!state.contains(leak), "{leak} in the state: {state}");
    }
    assert!(state.contains("exited with status 3"), "{state}");
    assert!(
        state.contains(&format!("`{}`", bad.display())),
        "names the program: {state}"
    );
    let o = sb.run(&["status"]);
    for leak in [secret, shaped, "ARGSECRET123"] {
        assert!(
            !String::from_utf8_lossy(&o.stdout).contains(leak),
            "{}",
            show(&o)
        );
    }
}

#[test]
fn a_burst_of_sigusr1_then_sighup_reloads_within_seconds() {
    let sb = Sandbox::new();
    let count = sb.file("count");
    let src = json_script(
        &sb,
        "src.sh",
        "ASIABURST",
        "s3cret",
        &format!("echo x >> {}; sleep 0.2", count.display()),
    );
    let second = json_script(&sb, "second.sh", "ASIASECOND", "s3cret", "");
    let base = format!(
        "[daemon]\nstate_dir = \"state\"\n[[output]]\npath = \"credentials\"\n\
         [profile.a]\ncredential_process = \"{src}\"\n"
    );
    sb.config(&base);
    let mut child = sb.spawn_run();
    let pid = child.id() as i32;
    let log = || fs::read_to_string(sb.file("daemon.log")).unwrap_or_default();
    let wait_for = |what: &str, limit: Duration| {
        let started = Instant::now();
        while started.elapsed() < limit {
            if log().contains(what) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    };
    let first_ok = wait_for("refreshed", Duration::from_secs(20));
    let signal = |s| nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), s).unwrap();
    for _ in 0..100 {
        signal(nix::sys::signal::Signal::SIGUSR1);
    }
    sb.config(&format!(
        "{base}[profile.b]\ncredential_process = \"{second}\"\n"
    ));
    let sent = Instant::now();
    signal(nix::sys::signal::Signal::SIGHUP);
    let reloaded = wait_for("config reloaded", Duration::from_secs(10));
    let took = sent.elapsed();
    let written = {
        let started = Instant::now();
        loop {
            if fs::read_to_string(sb.file("credentials"))
                .unwrap_or_default()
                .contains("ASIASECOND")
            {
                break true;
            }
            if started.elapsed() > Duration::from_secs(10) {
                break false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    signal(nix::sys::signal::Signal::SIGTERM);
    let status = child.wait().unwrap();
    let runs = fs::read_to_string(&count)
        .unwrap_or_default()
        .lines()
        .count();
    println!("100 SIGUSR1 + SIGHUP: reloaded after {took:?}; the source ran {runs} times");
    assert!(first_ok && reloaded && written, "{}", log());
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(
        runs <= 4,
        "the burst was not merged: {runs} runs\n{}",
        log()
    );
    assert_eq!(status.code(), Some(0));
}

#[test]
fn root_renewing_a_users_token_cache_keeps_its_owner() {
    if !crate::util::require_root() {
        return;
    }
    use crate::fake_aws::FakeAws;
    use crate::sso::{bare, cli_token, run, sso_config, token_file, write_cli_token};
    let sb = Sandbox::new();
    let fake = FakeAws::start();
    sso_config(&sb, "", &format!("endpoint_url = \"{}\"", fake.url), "");
    write_cli_token(&sb, &cli_token(&fake, 300));
    let token = token_file(&sb);
    std::os::unix::fs::chown(&token, Some(APP_UID), Some(APP_UID)).unwrap();
    let before = fs::read_to_string(&token).unwrap();
    let o = run(&sb, bare(&sb, &["once", "--force"]));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_ne!(
        fs::read_to_string(&token).unwrap(),
        before,
        "the token was renewed"
    );
    let meta = fs::metadata(&token).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (APP_UID, APP_UID));
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
}

#[test]
fn an_endless_answer_from_aws_fails_the_profile_naming_the_limit() {
    use crate::fake_aws::{FakeAws, Fault, ROLE_CREDENTIALS};
    use crate::sso::{awscredd, cli_token, run, sso_config, write_cli_token};
    let sb = Sandbox::new();
    let fake = FakeAws::start();
    sso_config(&sb, "", "", "");
    write_cli_token(&sb, &cli_token(&fake, 3600));
    let huge = format!("{{\"roleCredentials\": \"{}\"}}", "x".repeat(3 << 20));
    for _ in 0..3 {
        fake.inject(ROLE_CREDENTIALS, Fault::Raw(200, huge.clone()));
    }
    let o = run(&sb, awscredd(&sb, &fake, &["once"]));
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(
        stderr(&o).contains("more than the limit of 1024 KiB"),
        "{}",
        show(&o)
    );
}

#[test]
fn a_refused_connection_is_one_readable_line_naming_the_endpoint() {
    let sb = Sandbox::new();
    fs::create_dir(sb.file(".aws")).unwrap();
    fs::write(
        sb.file(".aws/credentials"),
        "[long]\naws_access_key_id = AKIALONGTERM\naws_secret_access_key = longsecret\n",
    )
    .unwrap();
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    sb.config(&format!(
        "[daemon]\nstate_dir = \"state\"\n[[output]]\npath = \"credentials\"\n\
         [profile.r]\nsource_profile = \"long\"\nrole_arn = \"arn:aws:iam::111122223333:role/R\"\n\
         endpoint_url = \"http://127.0.0.1:{port}\"\n"
    ));
    let o = sb.run(&["once"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let want = format!("connection refused by http://127.0.0.1:{port}");
    assert!(stderr(&o).contains(&want), "{}", show(&o));
    let state: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(sb.file("state/state.json")).unwrap()).unwrap();
    let last = state["profiles"]["r"]["last_error"].as_str().unwrap();
    assert!(last.contains(&want), "{last}");
    assert!(
        !last.contains("DispatchFailure") && !last.contains('{'),
        "a Debug dump: {last}"
    );
    assert!(last.len() < 300 && !last.contains('\n'), "{last}");
}

#[test]
fn status_says_why_a_profile_is_expired_when_its_file_cannot_be_parsed() {
    let sb = Sandbox::new();
    let src = json_script(&sb, "src.sh", "ASIASTATUS", "s3cret", "");
    sb.one_profile_config(&src);
    fs::write(sb.file("credentials"), "[a]\naws_access_key_id = \0\n").unwrap();
    let o = sb.run(&["status", "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["profiles"][0]["state"], "expired");
    let why = v["profiles"][0]["last_error"].as_str().unwrap_or_default();
    assert!(why.contains("cannot parse") && why.contains(":2:"), "{why}");
}

/// Unmounts a bind mount when dropped, even when the test fails.
struct BindMount(std::path::PathBuf);

impl Drop for BindMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_single_file_bind_mount_gets_a_message_to_mount_the_folder() {
    if !crate::util::require_root() {
        return;
    }
    let sb = Sandbox::new();
    let src = json_script(&sb, "src.sh", "ASIABIND", "s3cret", "");
    sb.one_profile_config(&src);
    fs::write(sb.file("credentials"), "# mounted\n").unwrap();
    fs::write(sb.file("host-file"), "# host\n").unwrap();
    let ok = Command::new("mount")
        .arg("--bind")
        .arg(sb.file("host-file"))
        .arg(sb.file("credentials"))
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI can bind-mount as root"
        );
        eprintln!("SKIPPED: cannot bind-mount here");
        return;
    }
    let _mount = BindMount(sb.file("credentials"));
    let o = sb.run(&["once"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(
        stderr(&o).contains("mount its folder instead"),
        "{}",
        show(&o)
    );
    assert_eq!(
        fs::read_to_string(sb.file("credentials")).unwrap(),
        "# host\n"
    );
}

#[test]
fn stale_foreign_keys_are_due() {
    // What a cron script left in ~/.aws/credentials before awscredd managed the profile.
    let sb = Sandbox::new();
    let src = json_script(&sb, "src.sh", "ASIAMANAGED", "s3cret", "");
    sb.config(&format!(
        "[daemon]\nstate_dir = \"state\"\n[[output]]\npath = \"credentials\"\nprofiles = [\"app\"]\n\
         [profile.app]\ncredential_process = \"{src}\"\n"
    ));
    let before = "# written by the old cron job\n[app]\naws_access_key_id = ASIASTALE\naws_secret_access_key = stale\nregion = eu-west-1\n\n[other]\naws_access_key_id = AKIAOTHER\naws_secret_access_key = o\n";
    fs::write(sb.file("credentials"), before).unwrap();
    let o = sb.run(&["once"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let after = fs::read_to_string(sb.file("credentials")).unwrap();
    assert!(after.contains("aws_access_key_id = ASIAMANAGED"), "{after}");
    assert!(!after.contains("ASIASTALE"), "{after}");
    // Every other byte kept.
    assert!(
        after.starts_with("# written by the old cron job\n[app]\n"),
        "{after}"
    );
    assert!(after.contains("region = eu-west-1\n"), "{after}");
    assert!(
        after.contains("[other]\naws_access_key_id = AKIAOTHER\naws_secret_access_key = o\n"),
        "{after}"
    );
}

#[test]
fn status_says_when_the_state_file_cannot_be_written() {
    if !crate::util::require_root() {
        return;
    }
    let sb = Sandbox::new();
    fs::set_permissions(sb.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let src = json_script(&sb, "src.sh", "ASIASTATE", "s3cret", "");
    let cfg = sb.one_profile_config(&src);
    fs::set_permissions(&cfg, fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(sb.run(&["once"]).status.code(), Some(0));
    // Another user (as an operator who is not root) runs `status`.
    let o = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(bin())
        .arg("--config")
        .arg(&cfg)
        .arg("status")
        .env_clear()
        .env("HOME", sb.path())
        .output()
        .unwrap();
    let err = stderr(&o);
    assert!(
        err.contains("cannot be written by this user"),
        "{}",
        show(&o)
    );
    assert!(err.contains("may be out of date"), "{}", show(&o));
}

/// Issue 27 item 3: once awscredd had refreshed a profile, keys without an expiry that
/// another tool wrote into its section later counted as awscredd's own: `once` never refreshed
/// them, `status` said `ok`, and `credential-process` printed them without `Expiration` (the
/// SDK caches such keys for its whole life). The state file now says which key awscredd wrote.
#[test]
fn keys_another_tool_writes_after_a_refresh_are_foreign() {
    let sb = Sandbox::new();
    // A source whose keys carry no expiry, numbered by run: ASIARUN1, ASIARUN2, ...
    let src = sb.file("src.sh");
    fs::write(
        &src,
        "#!/bin/sh\nn=$(cat \"$0.n\" 2>/dev/null || echo 0); n=$((n+1)); echo $n > \"$0.n\"\n\
         printf '{\"Version\":1,\"AccessKeyId\":\"ASIARUN%s\",\"SecretAccessKey\":\"s\"}' $n\n",
    )
    .unwrap();
    fs::set_permissions(&src, fs::Permissions::from_mode(0o755)).unwrap();
    sb.one_profile_config(&src.display().to_string());
    let held = || fs::read_to_string(sb.file("credentials")).unwrap();
    let state_of_a = |sb: &Sandbox| {
        let o = sb.run(&["status", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        (o.status.code(), v["profiles"][0]["state"].clone())
    };
    let other_tool_writes = || {
        fs::write(
            sb.file("credentials"),
            "[a]\naws_access_key_id = AKIAOTHERTOOL\naws_secret_access_key = theirs\n",
        )
        .unwrap()
    };

    assert_eq!(sb.run(&["once"]).status.code(), Some(0));
    assert!(held().contains("ASIARUN1"), "{}", held());
    assert_eq!(state_of_a(&sb), (Some(0), serde_json::json!("ok")));
    let state = fs::read_to_string(sb.file("state/state.json")).unwrap();
    assert!(
        !state.contains("ASIARUN1"),
        "the key id itself is never recorded: {state}"
    );

    // Awscredd's own keys without an expiry: served, with an Expiration so the SDK asks again.
    let o = sb.run(&["credential-process", "--profile", "a"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["AccessKeyId"], "ASIARUN1", "{}", show(&o));
    assert!(v["Expiration"].is_string(), "{}", show(&o));

    other_tool_writes();
    assert_eq!(state_of_a(&sb), (Some(1), serde_json::json!("expired")));
    let o = sb.run(&["once"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(
        held().contains("ASIARUN2"),
        "once left the other tool's keys: {}",
        held()
    );
    assert_eq!(state_of_a(&sb), (Some(0), serde_json::json!("ok")));

    other_tool_writes();
    let o = sb.run(&["credential-process", "--profile", "a"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["AccessKeyId"], "ASIARUN3", "{}", show(&o));
    assert!(v["Expiration"].is_string(), "{}", show(&o));
}

/// The zombies among the children of `pid` (from `/proc`).
fn zombie_children(pid: u32) -> Vec<u32> {
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            let stat = fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
            let Some((_, rest)) = stat.rsplit_once(')') else {
                return false;
            };
            let f: Vec<&str> = rest.split_whitespace().collect();
            f.len() > 1 && f[0] == "Z" && f[1] == pid.to_string()
        })
        .collect()
}

/// Issue 27 item 5: in the `FROM scratch` image awscredd is PID 1 and never reaped orphans: a
/// zombie per refresh whose source left a child. `run` as PID 1 of a PID namespace, with a
/// source that leaves children behind (one killed with its group, one in a session of its
/// own) and a hook that starts one: no zombie stays, and every source still runs and is
/// waited for.
#[test]
fn as_pid_1_run_reaps_the_orphans_sources_and_hooks_leave() {
    if !crate::util::require_root() {
        return;
    }
    let sb = Sandbox::new();
    let src = sb.file("src.sh");
    fs::write(
        &src,
        "#!/bin/sh\nn=$(cat \"$0.n\" 2>/dev/null || echo 0); n=$((n+1)); echo $n > \"$0.n\"\n\
         sleep 30 >/dev/null 2>&1 &\nsetsid sleep 0.3 >/dev/null 2>&1 &\n\
         printf '{\"Version\":1,\"AccessKeyId\":\"ASIAPID%s\",\"SecretAccessKey\":\"s\",\"Expiration\":\"%s\"}' \
         $n $(date -u -d '3600 seconds' +%Y-%m-%dT%H:%M:%SZ)\n",
    )
    .unwrap();
    fs::set_permissions(&src, fs::Permissions::from_mode(0o755)).unwrap();
    let cfg = sb.config(&format!(
        "[daemon]\nstate_dir = \"state\"\n[[output]]\npath = \"credentials\"\n\
         on_change = [\"sh\", \"-c\", \"sleep 0.2 >/dev/null 2>&1 &\"]\n\
         [profile.a]\ncredential_process = \"{}\"\n",
        src.display()
    ));
    let unshare = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc"])
        .arg(bin())
        .arg("--config")
        .arg(&cfg)
        .arg("run")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", sb.path())
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(sb.file("daemon.log")).unwrap())
        .spawn()
        .expect("unshare (util-linux) runs");
    let _unshare = crate::util::Guard(unshare);
    let outer = _unshare.0.id();
    // The daemon, PID 1 inside, is unshare's child.
    let started = Instant::now();
    let mut daemon = None;
    while daemon.is_none() && started.elapsed() < Duration::from_secs(10) {
        daemon = fs::read_to_string(format!("/proc/{outer}/task/{outer}/children"))
            .ok()
            .and_then(|c| c.split_whitespace().next()?.parse::<u32>().ok());
        std::thread::sleep(Duration::from_millis(20));
    }
    let daemon = daemon.expect("the daemon started in its namespace");
    let holds = |n: u32| {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(15) {
            let text = fs::read_to_string(sb.file("credentials")).unwrap_or_default();
            if text.contains(&format!("ASIAPID{n}\n")) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    };
    assert!(holds(1), "{}", sb.daemon_log());
    for n in 2..=6 {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(daemon as i32),
            nix::sys::signal::Signal::SIGUSR1,
        );
        assert!(holds(n), "refresh {n}:\n{}", sb.daemon_log());
    }
    // The session's and the hook's sleeps end within half a second.
    std::thread::sleep(Duration::from_millis(1500));
    let zombies = zombie_children(daemon);
    let log = sb.daemon_log();
    eprintln!(
        "PID 1: {} zombies after 6 refreshes that each left 3 orphans",
        zombies.len()
    );
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    assert!(zombies.is_empty(), "zombies {zombies:?}:\n{log}");
    assert!(log.contains("running as PID 1"), "{log}");
    assert!(!log.contains("waiting for it failed"), "{log}");
    assert!(!log.contains("refresh failed"), "{log}");
}

/// Issue 27 item 7: `status` showed 1970 for an expiry it could not parse. It shows no time,
/// and says what is there and that it cannot be read.
#[test]
fn status_shows_an_expiry_that_is_not_a_time_as_it_is_written() {
    let sb = Sandbox::new();
    let src = json_script(&sb, "src.sh", "ASIASTATUS", "s3cret", "");
    sb.one_profile_config(&src);
    fs::write(
        sb.file("credentials"),
        "[a]\naws_access_key_id = AKIAHAND\naws_secret_access_key = s\naws_credential_expiration = next tuesday\n",
    )
    .unwrap();
    let o = sb.run(&["status", "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let a = &v["profiles"][0];
    assert_eq!(a["state"], "expired", "{v}");
    assert!(a["expires_at"].is_null(), "{v}");
    let why = a["last_error"].as_str().unwrap_or_default();
    assert!(
        why.contains("`next tuesday`") && why.contains("not a time"),
        "{v}"
    );
    let o = sb.run(&["status"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(!text.contains("1970"), "{text}");
    assert!(text.contains("next tuesday"), "{text}");
}

/// Issue 27 item 6: a profile with one output that cannot be parsed was due at every pass:
/// every `once` ran the source again, put new keys in the good outputs and fired their
/// `on_change`; and a `launch-settings` output (whose expiry is the state's record, which the
/// failure left stale) made `credential-process` fail. Now the good output is kept fresh
/// without churn, and the bad one is reported at every pass (exit 1, the log, `status`).
#[test]
fn one_broken_output_does_not_churn_the_good_ones() {
    let sb = Sandbox::new();
    let src = sb.file("src.sh");
    fs::write(
        &src,
        format!(
            "#!/bin/sh\necho run >> {runs}\nn=$(wc -l < {runs} | tr -d ' ')\n\
             printf '{{\"Version\":1,\"AccessKeyId\":\"ASIARUN%s\",\"SecretAccessKey\":\"s%s\",\
             \"SessionToken\":\"t%s\",\"Expiration\":\"%s\"}}' $n $n $n \
             $(date -u -d '3600 seconds' +%Y-%m-%dT%H:%M:%SZ)\n",
            runs = sb.file("runs").display()
        ),
    )
    .unwrap();
    fs::set_permissions(&src, fs::Permissions::from_mode(0o755)).unwrap();
    let hook = sb.file("hook.sh");
    fs::write(
        &hook,
        format!("#!/bin/sh\necho hook >> {}\n", sb.file("hooks").display()),
    )
    .unwrap();
    fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).unwrap();
    sb.config(&format!(
        "[daemon]\nstate_dir = \"state\"\n\
         [[output]]\npath = \"launchSettings.json\"\nformat = \"launch-settings\"\n\
         profiles = [\"app\"]\non_change = [\"{}\"]\n\
         [[output]]\npath = \"bad\"\nprofiles = [\"app\"]\n\
         [profile.app]\ncredential_process = \"{}\"\n",
        hook.display(),
        src.display()
    ));
    let bad = "[app]\nkey : value\n";
    fs::write(sb.file("bad"), bad).unwrap();
    let count = |name: &str| {
        fs::read_to_string(sb.file(name))
            .map(|t| t.lines().count())
            .unwrap_or(0)
    };
    let want = format!("{}:2:", sb.file("bad").display());
    for pass in 1..=3 {
        let o = sb.run(&["once"]);
        assert_eq!(o.status.code(), Some(1), "pass {pass}: {}", show(&o));
        let err = stderr(&o);
        assert!(
            err.contains(&want),
            "pass {pass}: the bad output is told: {err}"
        );
        assert_eq!(count("runs"), 1, "pass {pass}: the source ran again");
        assert_eq!(count("hooks"), 1, "pass {pass}: on_change fired again");
        let launch = fs::read_to_string(sb.file("launchSettings.json")).unwrap();
        assert!(launch.contains("\"ASIARUN1\""), "pass {pass}: {launch}");
        assert_eq!(fs::read_to_string(sb.file("bad")).unwrap(), bad);
    }
    let o = sb.run(&["status"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains(&want),
        "status tells the bad output: {}",
        show(&o)
    );

    // credential-process serves the launch-settings output, fresh, and runs nothing.
    let o = sb.run(&["credential-process", "--profile", "app"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["AccessKeyId"], "ASIARUN1");
    assert!(v["Expiration"].is_string(), "{v}");
    assert_eq!(count("runs"), 1);

    // Fixed, the output lacks the profile: due at once, and both outputs written.
    fs::write(sb.file("bad"), "").unwrap();
    let o = sb.run(&["once"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(count("runs"), 2);
    assert!(fs::read_to_string(sb.file("bad"))
        .unwrap()
        .contains("ASIARUN2"));
    let o = sb.run(&["status"]);
    assert!(
        !String::from_utf8_lossy(&o.stdout).contains(&want),
        "{}",
        show(&o)
    );
}

/// Issue 27 item 7: a deleted output came back only at the next due time (up to 5 minutes, or
/// 45 for fresh credentials). `run` looks every 2 s whether an output it wrote is gone, and
/// writes it again at once.
#[test]
fn a_deleted_output_comes_back_within_seconds() {
    let sb = Sandbox::new();
    let src = sb.process_script("src.sh", "ASIADELETED", Some(3600));
    sb.one_profile_config(src.to_str().unwrap());
    let mut child = sb.spawn_run();
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let creds = sb.file("credentials");
    let wait_for = |limit: Duration| {
        let started = Instant::now();
        while started.elapsed() < limit {
            if fs::read_to_string(&creds).is_ok_and(|t| t.contains("ASIADELETED")) {
                return Some(started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    };
    let first = wait_for(Duration::from_secs(20));
    let mut back = Vec::new();
    if first.is_some() {
        for _ in 0..3 {
            if fs::remove_file(&creds).is_err() {
                break;
            }
            let b = wait_for(Duration::from_secs(10));
            back.push(b);
            if b.is_none() {
                break;
            }
        }
    }
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    let _ = child.wait();
    assert!(first.is_some(), "first write: {}", sb.daemon_log());
    println!("deleted output back after {back:?}");
    assert!(
        back.len() == 3
            && back
                .iter()
                .all(|b| b.is_some_and(|d| d < Duration::from_secs(5))),
        "{back:?}: {}",
        sb.daemon_log()
    );
}

/// Every line of `text` that is not empty starts with `start`, and no escape byte is left.
fn lines_all_start_with(text: &str, start: impl Fn(&str) -> bool) -> bool {
    !text.contains('\u{1b}') && text.lines().filter(|l| !l.is_empty()).all(start)
}

/// Issue 27 item 7: a newline in a path or a name forged log lines, and `check` printed
/// control characters raw (an escape sequence drives the operator's terminal). Each is now
/// shown escaped, on its own line: in `check`'s summary and diagnostics, in the log of `once`,
/// and in `status`'s table.
#[test]
fn a_newline_or_an_escape_in_a_path_or_a_name_cannot_forge_a_line() {
    let sb = Sandbox::new();
    let src = json_script(&sb, "src.sh", "ASIAFORGE", "s3cret", "");
    let forged = r#"creds\n2026-12-06T00:00:00Z ERROR forged \u001b[31m"#;
    let config = |profiles: &str| {
        sb.config(&format!(
            "[daemon]\nstate_dir = \"state\"\n[[output]]\npath = \"{forged}\"\nprofiles = [{profiles}]\n\
             [profile.a]\ncredential_process = \"{src}\"\n"
        ))
    };
    config(r#""a""#);
    let o = sb.run(&["check"]);
    assert!(o.status.success(), "{}", show(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains(r"creds\n2026-12-06T00:00:00Z ERROR forged \u{1b}[31m"),
        "{out}"
    );
    assert!(
        !out.contains("\nERROR") && !out.contains("\n2026-12-06"),
        "{out}"
    );
    assert!(!out.contains('\u{1b}'), "{out:?}");

    // The log of `once`: each line is one event, starting with its time.
    let mut c = sb.command();
    c.env("RUST_LOG", "debug")
        .arg("--config")
        .arg(sb.file("config.toml"))
        .arg("once");
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", show(&o));
    let log = stderr(&o);
    assert!(
        log.contains(r"\n2026-12-06T00:00:00Z ERROR forged \u{1b}[31m"),
        "{log}"
    );
    assert!(
        lines_all_start_with(&log, |l| l.starts_with("20")
            && !l.starts_with("2026-12-06T00:00:00Z")),
        "{log:?}"
    );
    let written = sb.file("creds\n2026-12-06T00:00:00Z ERROR forged \u{1b}[31m");
    assert!(fs::read_to_string(written).unwrap().contains("ASIAFORGE"));

    // A diagnostic naming a profile with a newline in its name stays one line per problem.
    config(r#""a", "b\nERROR forged""#);
    let o = sb.run(&["check"]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    let err = stderr(&o);
    let file = sb.file("config.toml").display().to_string();
    assert!(
        lines_all_start_with(&err, |l| l.starts_with(&file)),
        "{err:?}"
    );
    assert!(err.contains(r"b\nERROR forged"), "{err}");

    // A program's stderr with a carriage return and an escape: each line one event, in the
    // log and as `status` tells the last error.
    let bad = sb.file("bad.sh");
    fs::write(
        &bad,
        "#!/bin/sh\nprintf 'first\\n2026-12-06T00:00:00Z ERROR forged\\r\\033[2J\\n' >&2\nexit 3\n",
    )
    .unwrap();
    fs::set_permissions(&bad, fs::Permissions::from_mode(0o755)).unwrap();
    sb.one_profile_config(&bad.display().to_string());
    let o = sb.run(&["once"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let log = stderr(&o);
    assert!(log.contains(r"ERROR forged\r"), "{log}");
    assert!(
        lines_all_start_with(&log, |l| l.starts_with("20")
            && !l.starts_with("2026-12-06T00:00:00Z")),
        "{log:?}"
    );
    let o = sb.run(&["status"]);
    let table = String::from_utf8_lossy(&o.stdout);
    assert_eq!(table.lines().count(), 2, "{table:?}");
    assert!(table.contains("exited with status 3"), "{table}");
}
