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
