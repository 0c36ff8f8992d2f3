//! Several `once` processes on one credentials file: the lock serialises their
//! read-modify-writes, so no process loses another's profiles, and a run waits for the lock.

use crate::util::{show, Guard, Sandbox};
use awscredd::profile_file::{FileKind, ProfileFile};
use awscredd::store::credentials_in;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PROCESSES: usize = 4;
const PROFILES_EACH: usize = 5;
const ROUNDS: usize = 10;
const LIMIT: Duration = Duration::from_secs(60);

/// Unmanaged content before the managed profiles: comments, blank lines, user profiles.
const HEAD: &str = "\
# Shared credentials file, written by four awscredd configs at once.
; Nobody manages the profiles in this header.

[default]
aws_access_key_id = AKIADEFAULT0000000
aws_secret_access_key = default-secret
region = us-east-1

# A hand-written profile with a comment between its keys
[user-one]
aws_access_key_id = AKIAUSERONE0000000
# do not touch
aws_secret_access_key = user-one-secret
output = json

";

/// Unmanaged content after the pre-existing managed profiles.
const TAIL: &str = "\
; Another hand-written profile, after the managed ones.
[user-two]
aws_access_key_id = AKIAUSERTWO0000000
aws_secret_access_key = user-two-secret
";

fn profile(process: usize, j: usize) -> String {
    format!("p{process}-{}", (b'a' + j as u8) as char)
}

fn key(round: usize, profile: &str) -> String {
    format!("R{round:02}-{profile}")
}

/// A script printing credentials for the profile named by `$1` in the round `$ROUND`.
fn round_script(sb: &Sandbox) -> PathBuf {
    let p = sb.file("round.sh");
    std::fs::write(
        &p,
        "#!/bin/sh\nk=\"R$ROUND-$1\"\ncat <<JSON\n{\"Version\": 1, \"AccessKeyId\": \"$k\", \
         \"SecretAccessKey\": \"secret-$k\", \"SessionToken\": \"token-$k\", \
         \"Expiration\": \"2099-01-01T00:00:00Z\"}\nJSON\n",
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    p
}

/// Checks that `bytes` parse and hold every profile of every process with the values of
/// `round`, once each, the unmanaged content unchanged, and the user keys in managed profiles.
fn check_file(bytes: &[u8], round: usize) {
    let text = ProfileFile::check_bytes(bytes).expect("UTF-8 without NUL");
    assert!(
        text.starts_with(HEAD),
        "the unmanaged head changed in round {round}:\n{text}"
    );
    assert_eq!(text.matches(TAIL).count(), 1, "round {round}:\n{text}");
    let parsed = ProfileFile::parse(text).unwrap_or_else(|e| panic!("{e}:\n{text}"));
    let creds = credentials_in(&parsed);
    assert_eq!(
        creds.len(),
        PROCESSES * PROFILES_EACH + 3,
        "round {round}:\n{text}"
    );
    for p in 1..=PROCESSES {
        for j in 0..PROFILES_EACH {
            let name = profile(p, j);
            let want = key(round, &name);
            assert_eq!(
                text.matches(&format!("[{name}]")).count(),
                1,
                "[{name}] in round {round}:\n{text}"
            );
            let c = creds
                .get(&name)
                .unwrap_or_else(|| panic!("{name} missing in round {round}:\n{text}"));
            assert_eq!(c.access_key_id, want, "{name} in round {round}:\n{text}");
            assert_eq!(c.secret_access_key.expose(), format!("secret-{want}"));
            assert_eq!(
                c.session_token.as_ref().map(|t| t.expose()),
                Some(format!("token-{want}").as_str())
            );
        }
    }
    for (name, akid) in [
        ("default", "AKIADEFAULT0000000"),
        ("user-one", "AKIAUSERONE0000000"),
        ("user-two", "AKIAUSERTWO0000000"),
    ] {
        assert_eq!(creds[name].access_key_id, akid);
    }
    // The user's key inside each pre-existing managed profile stays.
    let profiles = parsed.normalized(FileKind::Credentials).profiles;
    for p in 1..=PROCESSES {
        assert_eq!(profiles[&profile(p, 0)]["region"], format!("eu-west-{p}"));
    }
}

#[test]
fn four_processes_on_one_file_lose_nothing() {
    let sb = Sandbox::new();
    let script = round_script(&sb);
    let creds = sb.file("shared/credentials");
    std::fs::create_dir_all(creds.parent().unwrap()).unwrap();

    // The first profile of each process is already in the file (with stale keys and a user
    // key); the other four are new and get appended by whichever process comes first.
    let mut original = String::from(HEAD);
    for p in 1..=PROCESSES {
        original.push_str(&format!(
            "# managed by config {p}\n[{}]\naws_access_key_id = STALE\n\
             aws_secret_access_key = STALE\nregion = eu-west-{p}\n\n",
            profile(p, 0)
        ));
    }
    original.push_str(TAIL);
    std::fs::write(&creds, &original).unwrap();

    let configs: Vec<PathBuf> = (1..=PROCESSES)
        .map(|p| {
            let mut cfg = format!(
                "[daemon]\nstate_dir = \"state-{p}\"\n\n[[output]]\npath = \"{}\"\n\n",
                creds.display()
            );
            for j in 0..PROFILES_EACH {
                let name = profile(p, j);
                cfg.push_str(&format!(
                    "[profile.{name}]\ncredential_process = \"{} {name}\"\n\n",
                    script.display()
                ));
            }
            let path = sb.file(&format!("config-{p}.toml"));
            std::fs::write(&path, cfg).unwrap();
            path
        })
        .collect();

    let started = Instant::now();
    let mut waited = 0;
    for round in 1..=ROUNDS {
        let mut children: Vec<Guard> = configs
            .iter()
            .map(|cfg| {
                sb.command()
                    .env("ROUND", format!("{round:02}"))
                    .arg("--config")
                    .arg(cfg)
                    .args(["once", "--force"])
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("spawn awscredd")
            })
            .map(Guard)
            .collect();
        while let Some(mut child) = children.pop() {
            let out = child.output(LIMIT);
            assert!(out.status.success(), "round {round}: {}", show(&out));
            if String::from_utf8_lossy(&out.stderr).contains("waiting for another awscredd") {
                waited += 1;
            }
        }
        check_file(&std::fs::read(&creds).unwrap(), round);
    }
    println!(
        "concurrency: {ROUNDS} rounds of {PROCESSES} processes in {:?}; {waited} runs waited \
         for a lock",
        started.elapsed()
    );
    for p in 1..=PROCESSES {
        let state = std::fs::read_to_string(sb.file(&format!("state-{p}/state.json"))).unwrap();
        for j in 0..PROFILES_EACH {
            assert!(state.contains(&format!("\"{}\"", profile(p, j))), "{state}");
        }
    }
}

fn lock_path(creds: &Path) -> PathBuf {
    awscredd::files::lock::lock_path_for(creds)
}

#[test]
fn once_waits_for_the_lock_and_then_writes() {
    let sb = Sandbox::new();
    sb.process_script("dev.sh", "ASIAAFTERLOCK", Some(3600));
    sb.config(&format!(
        "[daemon]\nstate_dir = \"state\"\n\n[[output]]\npath = \"credentials\"\n\n\
         [profile.dev]\ncredential_process = \"{}\"\n",
        sb.file("dev.sh").display()
    ));
    let creds = sb.file("credentials");
    let original = "# held\n[other]\naws_access_key_id = AKIAOTHER\naws_secret_access_key = s\n";
    std::fs::write(&creds, original).unwrap();

    let lock = awscredd::files::lock::lock_exclusive(
        &lock_path(&creds),
        "test",
        std::time::Duration::from_secs(30),
    )
    .unwrap();
    let err_path = sb.file("once.stderr");
    let mut command: Command = sb.command();
    command
        .arg("--config")
        .arg(sb.file("config.toml"))
        .args(["once", "--force"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&err_path).unwrap());
    let mut child = Guard(command.spawn().expect("spawn awscredd"));
    let err = || std::fs::read_to_string(&err_path).unwrap_or_default();

    // While the test holds the lock, the run waits (and says so after a second), and the file
    // stays as it was.
    let asked = Instant::now();
    while !err().contains("waiting for the lock") && asked.elapsed() < LIMIT {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(err().contains("waiting for the lock"), "{}", err());
    assert!(
        child.0.try_wait().unwrap().is_none(),
        "once finished while another process held the lock"
    );
    assert_eq!(std::fs::read_to_string(&creds).unwrap(), original);

    let released = Instant::now();
    drop(lock);
    let out = child.output(LIMIT);
    println!(
        "concurrency: once finished {:?} after the lock was released",
        released.elapsed()
    );
    let stderr = err();
    assert!(out.status.success(), "{}\n{stderr}", show(&out));
    assert!(
        stderr.contains("waiting for the lock")
            && stderr.contains(&format!("held by process {}", std::process::id())),
        "{stderr}"
    );
    assert!(stderr.contains("lock acquired"), "{stderr}");

    let text = std::fs::read_to_string(&creds).unwrap();
    assert!(text.starts_with(original), "{text}");
    let parsed = ProfileFile::parse(&text).unwrap();
    let c = credentials_in(&parsed);
    assert_eq!(c["dev"].access_key_id, "ASIAAFTERLOCK");
    assert_eq!(c["other"].access_key_id, "AKIAOTHER");
}
