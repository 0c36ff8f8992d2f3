//! `on_change`: run after a write that changed credentials in its file — the environment, the
//! arguments as written, no secret, not run when nothing changed, only the changed file's
//! hook, one run at a time under `run`, the 60 s limit, a failing hook leaving the exit status.
#![cfg(unix)]

use crate::util::{show, Sandbox};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

/// A source printing key id `akid` (secret `secret-akid`), valid `lifetime` seconds.
fn source(sb: &Sandbox, name: &str, akid: &str, lifetime: u32) -> String {
    let p = sb.file(name);
    fs::write(
        &p,
        format!("#!/bin/sh\nprintf '{{\"Version\":1,\"AccessKeyId\":\"{akid}\",\"SecretAccessKey\":\"secret-{akid}\",\"SessionToken\":\"token-{akid}\",\"Expiration\":\"%s\"}}' $(date -u -d '{lifetime} seconds' +%Y-%m-%dT%H:%M:%SZ)\n"),
    )
    .unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    p.display().to_string()
}

/// A hook script `name` that appends what it sees to `name.log`: its arguments, the two
/// variables, the key ids in the file, and its whole environment to `name.env`.
fn hook(sb: &Sandbox, name: &str, extra: &str) -> String {
    let p = sb.file(name);
    let log = sb.file(&format!("{name}.log"));
    let env = sb.file(&format!("{name}.env"));
    fs::write(
        &p,
        format!(
            "#!/bin/sh\n{{\n echo \"start $(date +%s%N)\"\n for a in \"$@\"; do echo \"arg=$a\"; done\n echo \"output=$AWSCREDD_OUTPUT\"\n echo \"profiles=$AWSCREDD_PROFILES\"\n grep aws_access_key_id \"$AWSCREDD_OUTPUT\" | sed 's/^/file: /'\n}} >> '{log}'\nenv >> '{env}'\n{extra}\necho \"end $(date +%s%N)\" >> '{log}'\n",
            log = log.display(),
            env = env.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    p.display().to_string()
}

fn log(sb: &Sandbox, name: &str) -> String {
    fs::read_to_string(sb.file(&format!("{name}.log"))).unwrap_or_default()
}

fn runs(sb: &Sandbox, name: &str) -> usize {
    log(sb, name)
        .lines()
        .filter(|l| l.starts_with("start "))
        .count()
}

#[test]
fn on_change_runs_after_the_new_file_is_in_place_with_its_exact_environment() {
    let sb = Sandbox::new();
    let src = source(&sb, "src.sh", "ASIAHOOKED", 3600);
    let h = hook(&sb, "hook.sh", "");
    sb.config(&format!(
        "[daemon]\nstate_dir = \"state\"\n[[output]]\npath = \"~/creds\"\nprofiles = [\"b\", \"a\"]\n\
         on_change = [\"{h}\", \"two words\", \"$HOME\", \"*\"]\n\
         [profile.a]\ncredential_process = \"{src}\"\n[profile.b]\ncredential_process = \"{src}\"\n"
    ));
    let o = sb.run(&["once"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let l = log(&sb, "hook.sh");
    assert_eq!(runs(&sb, "hook.sh"), 1, "{l}");
    // The arguments as written, no shell; `~` expanded in AWSCREDD_OUTPUT; profiles sorted.
    assert!(l.contains("arg=two words\narg=$HOME\narg=*\n"), "{l}");
    assert!(
        l.contains(&format!("output={}\n", sb.file("creds").display())),
        "{l}"
    );
    assert!(l.contains("profiles=a,b\n"), "{l}");
    // The hook read the new file.
    assert!(l.contains("file: aws_access_key_id = ASIAHOOKED"), "{l}");
    let env = fs::read_to_string(sb.file("hook.sh.env")).unwrap();
    for secret in ["secret-ASIAHOOKED", "token-ASIAHOOKED"] {
        assert!(
            !env.contains(secret) && !l.contains(secret),
            "{secret} given to the hook"
        );
    }
    // Nothing changed: not run again.
    let o = sb.run(&["once"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(runs(&sb, "hook.sh"), 1);
    // Forced, with the same credentials: the file does not change, no run either.
    let o = sb.run(&["once", "--force"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
}

#[test]
fn only_the_changed_files_hook_runs_and_a_failing_hook_leaves_the_exit_status_alone() {
    let sb = Sandbox::new();
    let a = source(&sb, "a.sh", "ASIAFILEA", 3600);
    let b = source(&sb, "b.sh", "ASIAFILEB", 3600);
    let ha = hook(&sb, "hook-a.sh", "exit 3");
    let hb = hook(&sb, "hook-b.sh", "");
    sb.config(&format!(
        "[daemon]\nstate_dir = \"state\"\n\
         [[output]]\npath = \"file-a\"\nprofiles = [\"a\"]\non_change = [\"{ha}\"]\n\
         [[output]]\npath = \"file-b\"\nprofiles = [\"b\"]\non_change = [\"{hb}\"]\n\
         [profile.a]\ncredential_process = \"{a}\"\n[profile.b]\ncredential_process = \"{b}\"\n"
    ));
    let o = sb.run(&["once"]);
    assert_eq!(o.status.code(), Some(0), "a failing hook: {}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("failed"),
        "{}",
        show(&o)
    );
    assert_eq!((runs(&sb, "hook-a.sh"), runs(&sb, "hook-b.sh")), (1, 1));
    // A new key for `a` only: only file-a's hook.
    source(&sb, "a.sh", "ASIAFILEA2", 3600);
    let o = sb.run(&["once", "--profile", "a", "--force"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!((runs(&sb, "hook-a.sh"), runs(&sb, "hook-b.sh")), (2, 1));
}

#[test]
fn under_run_a_slow_hook_never_runs_twice_at_once_and_later_changes_coalesce() {
    let sb = Sandbox::new();
    // Credentials of 4 s are refreshed every 2 to 3 s; the hook takes 5 s.
    let src = source(&sb, "src.sh", "ASIASLOW", 4);
    let counter = sb.file("n");
    let p = sb.file("src.sh");
    fs::write(
        &p,
        format!("#!/bin/sh\nn=$(cat '{c}' 2>/dev/null || echo 0); n=$((n+1)); echo $n > '{c}'\nprintf '{{\"Version\":1,\"AccessKeyId\":\"ASIASLOW%04d\",\"SecretAccessKey\":\"s\",\"Expiration\":\"%s\"}}' $n $(date -u -d '4 seconds' +%Y-%m-%dT%H:%M:%SZ)\n", c = counter.display()),
    )
    .unwrap();
    let _ = src;
    let h = hook(&sb, "hook.sh", "sleep 5");
    sb.config(&format!(
        "[daemon]\nstate_dir = \"state\"\n[[output]]\npath = \"creds\"\non_change = [\"{h}\"]\n\
         [profile.a]\ncredential_process = \"{}\"\n",
        p.display()
    ));
    let mut child = sb.spawn_run();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(16) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = child.wait();
    let l = log(&sb, "hook.sh");
    assert!(
        runs(&sb, "hook.sh") >= 2,
        "{l}\n{}",
        fs::read_to_string(sb.file("daemon.log")).unwrap()
    );
    // Starts and ends alternate: never two runs at once.
    let marks: Vec<&str> = l
        .lines()
        .filter_map(|x| x.split_whitespace().next())
        .filter(|w| *w == "start" || *w == "end")
        .collect();
    for pair in marks.chunks(2) {
        if pair.len() == 2 {
            assert_eq!(pair, ["start", "end"], "{l}");
        }
    }
    // More refreshes than hook runs: the changes made during a run were merged.
    let refreshes: usize = fs::read_to_string(&counter)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        refreshes > runs(&sb, "hook.sh"),
        "{refreshes} refreshes, {} runs",
        runs(&sb, "hook.sh")
    );
}

#[test]
fn a_hanging_hook_is_killed_after_60_seconds_and_once_still_succeeds() {
    let sb = Sandbox::new();
    let src = source(&sb, "src.sh", "ASIAHANG", 3600);
    let h = hook(&sb, "hook.sh", "sleep 600");
    sb.config(&format!(
        "[daemon]\nstate_dir = \"state\"\n[[output]]\npath = \"creds\"\non_change = [\"{h}\"]\n\
         [profile.a]\ncredential_process = \"{src}\"\n"
    ));
    let started = Instant::now();
    let o = sb.run(&["once"]);
    let took = started.elapsed();
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(
        took >= Duration::from_secs(59) && took < Duration::from_secs(90),
        "{took:?}"
    );
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("did not finish within 60s"),
        "{}",
        show(&o)
    );
    assert!(fs::read_to_string(sb.file("creds"))
        .unwrap()
        .contains("ASIAHANG"));
}

/// Whether process `pid` has ended (gone, or a zombie nobody reaped yet).
fn ended(pid: i32) -> bool {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.is_empty()
        || stat
            .rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
}

/// Waits up to `limit` for every pid in `file` (one a line) to end; those still running.
fn still_running(file: &std::path::Path, limit: Duration) -> Vec<i32> {
    let started = Instant::now();
    loop {
        let pids: Vec<i32> = fs::read_to_string(file)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        let running: Vec<i32> = pids.into_iter().filter(|p| !ended(*p)).collect();
        if running.is_empty() || started.elapsed() > limit {
            return running;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits up to `limit` for `file` to have `n` lines.
fn wait_lines(file: &std::path::Path, n: usize, limit: Duration) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if fs::read_to_string(file).unwrap_or_default().lines().count() >= n {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn kill_all(pids: &[i32]) {
    for p in pids {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(*p),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// Issue 27 item 4: a "restart the app" hook had the app it started killed as it exited.
/// A hook that exited is done: what it started is left running, under `once` (the app's
/// output sent elsewhere, since `once` exits) and under `run` (the app writing to the output
/// it inherited, which the daemon keeps reading).
#[test]
fn what_a_hook_starts_in_the_background_outlives_the_hook() {
    let sb = Sandbox::new();
    let src = source(&sb, "src.sh", "ASIAAPP", 3600);
    let pids = sb.file("app.pids");
    let quiet_app = format!(
        "sleep 300 >/dev/null 2>&1 &\necho $! >> '{}'",
        pids.display()
    );
    let h = hook(&sb, "hook.sh", &quiet_app);
    sb.config(&format!(
        "[daemon]\nstate_dir = \"state\"\n[[output]]\npath = \"creds\"\non_change = [\"{h}\"]\n\
         [profile.a]\ncredential_process = \"{src}\"\n"
    ));
    let o = sb.run(&["once"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(log(&sb, "hook.sh").contains("end "), "the hook ended");
    std::thread::sleep(Duration::from_secs(1));
    let running = still_running(&pids, Duration::ZERO);
    assert_eq!(
        running.len(),
        1,
        "the app the hook started under once was killed"
    );
    kill_all(&running);

    // Under `run`, an app that keeps writing to the stdout it inherited from the hook.
    let sb = Sandbox::new();
    let src = source(&sb, "src.sh", "ASIAAPP", 3600);
    let pids = sb.file("app.pids");
    let chatty_app = format!(
        "sh -c 'while :; do echo tick; sleep 0.1; done' &\necho $! >> '{}'",
        pids.display()
    );
    let h = hook(&sb, "hook.sh", &chatty_app);
    sb.config(&format!(
        "[daemon]\nstate_dir = \"state\"\n[[output]]\npath = \"creds\"\non_change = [\"{h}\"]\n\
         [profile.a]\ncredential_process = \"{src}\"\n"
    ));
    let mut d = crate::util::Guard(sb.spawn_run());
    assert!(
        wait_lines(&pids, 1, Duration::from_secs(20)),
        "{}",
        sb.daemon_log()
    );
    // Past the time the daemon drains a finished hook's output.
    std::thread::sleep(Duration::from_secs(4));
    let running = still_running(&pids, Duration::ZERO);
    let _ = d.0.kill();
    let _ = d.0.wait();
    kill_all(&running);
    assert_eq!(
        running.len(),
        1,
        "the app the hook started under run was killed:\n{}",
        sb.daemon_log()
    );
}

/// Issue 27 item 4: hooks started by `credential-process` were never killed (5 calls, 5
/// hanging hooks). Each now runs under a supervisor with the same 60 s limit, and the calls
/// still answer at once.
#[test]
fn hooks_started_by_credential_process_are_bounded() {
    let sb = Sandbox::new();
    // 30 s left: every call refreshes (less than a minute) and gets new keys, so every call
    // runs the hook.
    let src = sb.file("src.sh");
    fs::write(
        &src,
        "#!/bin/sh\nn=$(cat \"$0.n\" 2>/dev/null || echo 0); n=$((n+1)); echo $n > \"$0.n\"\n\
         printf '{\"Version\":1,\"AccessKeyId\":\"ASIASHORT%s\",\"SecretAccessKey\":\"s\",\"Expiration\":\"%s\"}' \
         $n $(date -u -d '30 seconds' +%Y-%m-%dT%H:%M:%SZ)\n",
    )
    .unwrap();
    fs::set_permissions(&src, fs::Permissions::from_mode(0o755)).unwrap();
    let src = src.display().to_string();
    let pids = sb.file("hook.pids");
    let hang = format!(
        "sleep 600 &\necho $! >> '{p}'\necho $$ >> '{p}'\nwait",
        p = pids.display()
    );
    let h = hook(&sb, "hook.sh", &hang);
    sb.config(&format!(
        "[daemon]\nstate_dir = \"state\"\n[[output]]\npath = \"creds\"\non_change = [\"{h}\"]\n\
         [profile.a]\ncredential_process = \"{src}\"\n"
    ));
    let started = Instant::now();
    for i in 0..5 {
        let call = Instant::now();
        let o = sb.run(&["credential-process", "--profile", "a"]);
        assert_eq!(o.status.code(), Some(0), "call {i}: {}", show(&o));
        assert!(
            call.elapsed() < Duration::from_secs(10),
            "call {i} waited for its hook: {:?}",
            call.elapsed()
        );
        // Each call writes new keys only if the file changed: wait for this call's hook.
        assert!(
            wait_lines(&pids, 2 * (i + 1), Duration::from_secs(10)),
            "call {i}: its hook did not start"
        );
    }
    let left = Duration::from_secs(80).saturating_sub(started.elapsed());
    let running = still_running(&pids, left);
    kill_all(&running);
    assert!(
        running.is_empty(),
        "{} hook processes still run {:?} after the first call",
        running.len(),
        started.elapsed()
    );
}

/// Issue 27 item 4: a `once` or `credential-process` ended by SIGTERM left its running source
/// and hooks behind, without a limit. They are stopped with it.
#[test]
fn sigterm_stops_the_running_source_and_hooks_of_once_and_credential_process() {
    for (what, hanging) in [
        ("once", "source"),
        ("credential-process", "source"),
        ("once", "hook"),
    ] {
        let sb = Sandbox::new();
        let pids = sb.file("hung.pids");
        let hang = format!(
            "sleep 600 &\necho $! >> '{p}'\necho $$ >> '{p}'\nwait",
            p = pids.display()
        );
        let (src, hook_cmd) = if hanging == "source" {
            let p = sb.file("src.sh");
            fs::write(&p, format!("#!/bin/sh\n{hang}\n")).unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
            (p.display().to_string(), String::new())
        } else {
            let h = hook(&sb, "hook.sh", &hang);
            (
                source(&sb, "src.sh", "ASIAHOOK", 3600),
                format!("on_change = [\"{h}\"]\n"),
            )
        };
        sb.config(&format!(
            "[daemon]\nstate_dir = \"state\"\n[[output]]\npath = \"creds\"\n{hook_cmd}\
             [profile.a]\ncredential_process = \"{src}\"\n"
        ));
        let args: &[&str] = if what == "once" {
            &["once"]
        } else {
            &["credential-process", "--profile", "a"]
        };
        let child = sb
            .command()
            .arg("--config")
            .arg(sb.file("config.toml"))
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut child = crate::util::Guard(child);
        assert!(
            wait_lines(&pids, 2, Duration::from_secs(20)),
            "{what}: the {hanging} did not start"
        );
        let pid = nix::unistd::Pid::from_raw(child.0.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let stopped = Instant::now();
        let mut status = None;
        while stopped.elapsed() < Duration::from_secs(10) {
            if let Some(s) = child.0.try_wait().unwrap() {
                status = Some(s);
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        drop(child);
        let running = still_running(&pids, Duration::from_secs(3));
        kill_all(&running);
        assert!(
            status.is_some(),
            "{what}: still running 10 s after SIGTERM ({hanging})"
        );
        assert!(
            running.is_empty(),
            "{what}: its {hanging} still runs after SIGTERM: {running:?}"
        );
        assert_eq!(
            status.and_then(|s| s.code()),
            Some(143),
            "{what}: the exit status says SIGTERM"
        );
    }
}

/// Issue 27 item 7: `check` accepted `on_change` programs that do not exist or are not
/// executable, and a relative one was run from the working directory. Now `check` refuses
/// them at `FILE:LINE:COL` (exit 2), and a relative program is taken from the config's folder,
/// by `check` and by the run alike, wherever awscredd is started from.
#[test]
fn on_change_programs_are_checked_and_relative_ones_are_from_the_configs_folder() {
    let sb = Sandbox::new();
    let src = source(&sb, "src.sh", "ASIAHOOKREL", 3600);
    let config = |program: &str| {
        sb.config(&format!(
            "[daemon]\nstate_dir = \"state\"\n[[output]]\npath = \"credentials\"\n\
             profiles = [\"a\"]\non_change = [\"{program}\", \"x\"]\n\
             [profile.a]\ncredential_process = \"{src}\"\n"
        ));
    };
    fs::create_dir_all(sb.file("hooks")).unwrap();
    fs::write(sb.file("hooks/plain.txt"), "not a program\n").unwrap();
    let abs = |rel: &str| sb.file(rel).display().to_string();
    for (program, why) in [
        (
            "hooks/missing.sh",
            format!("`{}`: does not exist", abs("hooks/missing.sh")),
        ),
        (
            "./hooks/plain.txt",
            format!("`{}`: is not executable", abs("hooks/plain.txt")),
        ),
        ("./hooks", format!("`{}`: is not a file", abs("hooks"))),
        (
            "no-such-program-awscredd",
            "is not found in PATH".to_string(),
        ),
    ] {
        config(program);
        let o = sb.run(&["check"]);
        assert_eq!(o.status.code(), Some(2), "{program}: {}", show(&o));
        let want = format!("{}:6:14: on_change ", abs("config.toml"));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(&want) && err.contains(&why),
            "{program}: wants {want}...{why}: {}",
            show(&o)
        );
    }

    // A relative program runs from the config's folder, started from elsewhere.
    let h = sb.file("hooks/reload.sh");
    fs::write(
        &h,
        format!(
            "#!/bin/sh\necho \"ran $1\" >> '{}'\n",
            sb.file("hook.log").display()
        ),
    )
    .unwrap();
    fs::set_permissions(&h, fs::Permissions::from_mode(0o755)).unwrap();
    config("hooks/reload.sh");
    let o = sb.run(&["check"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let o = sb
        .command()
        .current_dir("/")
        .arg("--config")
        .arg(sb.file("config.toml"))
        .arg("once")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(
        fs::read_to_string(sb.file("hook.log")).unwrap_or_default(),
        "ran x\n",
        "{}",
        show(&o)
    );
}
