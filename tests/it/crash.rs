//! Crash safety: `once --force` is SIGKILLed at random moments while it rewrites a large
//! credentials file, and the file must be complete every time: byte for byte either what it
//! was before the run or what the run meant to write, never a mix, never truncated.

#![cfg(unix)]

use crate::util::{show, Sandbox};
use awscredd::profile_file::ProfileFile;
use awscredd::store::credentials_in;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Runs that are killed.
const KILLED_RUNS: u64 = 200;
/// Unmanaged profiles in the file: about 400 bytes each. 1,500 (~600 kB) make one debug-build
/// `once --force` take roughly 50-100 ms here, most of it parsing and editing before the
/// rename, so kills land at every stage within the time budget.
const USER_PROFILES: usize = 1500;
/// A clean (unkilled) run every this many killed runs, to re-measure how long a run takes.
const RECALIBRATE_EVERY: u64 = 20;
/// The key id marker of the file as the test writes it, before awscredd ever touched it.
const ORIGINAL_KEY: &str = "CRASHORIGINAL";

/// SplitMix64: a tiny deterministic PRNG, seeded per run.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The key id marker of run `n`; fixed width, so every rewrite has the same size.
fn key(n: u64) -> String {
    format!("CRASH{n:08}")
}

/// One managed profile as awscredd writes it, with a user key in the middle that it keeps.
fn managed_section(name: &str, prefix: &str, k: &str) -> String {
    format!(
        "# {name}: kept by awscredd; this comment and `region` stay\n\
         [{name}]\n\
         aws_access_key_id = {prefix}{k}\n\
         aws_secret_access_key = secret-{prefix}{k}\n\
         region = eu-west-1\n\
         aws_session_token = token-{prefix}{k}\n\
         aws_credential_expiration = 2099-01-01T00:00:00Z\n\
         output = json\n\n"
    )
}

/// The large file: `USER_PROFILES` unmanaged profiles with comments, and the two managed
/// profiles `crash-a` and `crash-b` a third and two thirds of the way in.
fn big_file() -> String {
    let mut s = String::from(
        "# A large credentials file for the crash test.\n; Both comment styles, blank lines.\n\n",
    );
    for i in 0..USER_PROFILES {
        if i == USER_PROFILES / 3 {
            s.push_str(&managed_section("crash-a", "A", ORIGINAL_KEY));
        }
        if i == 2 * USER_PROFILES / 3 {
            s.push_str(&managed_section("crash-b", "B", ORIGINAL_KEY));
        }
        s.push_str(&format!(
            "# profile {i}: lorem ipsum dolor sit amet, consectetur adipiscing elit\n\
             [user-{i:05}]\n\
             aws_access_key_id = AKIAUSER{i:012}\n\
             aws_secret_access_key = {secret}\n\
             aws_session_token = {token}\n\
             region = us-east-1\n\
             ; end of profile {i}\n\n",
            secret = format!("{i:08}").repeat(5),
            token = format!("IQoJb3JpZ2luX2VjE{i:08}").repeat(8),
        ));
    }
    s
}

/// Checks that `bytes` parse as the SDKs parse them and hold the managed credentials of `k`
/// and every unmanaged profile.
fn check_parses(bytes: &[u8], k: &str) {
    let text = ProfileFile::check_bytes(bytes).expect("the file is UTF-8 without NUL");
    let parsed = ProfileFile::parse(text).expect("the file parses");
    let creds = credentials_in(&parsed);
    assert_eq!(creds.len(), USER_PROFILES + 2, "profiles with credentials");
    for (name, prefix) in [("crash-a", "A"), ("crash-b", "B")] {
        let c = &creds[name];
        assert_eq!(c.access_key_id, format!("{prefix}{k}"), "{name}");
        assert_eq!(c.secret_access_key.expose(), format!("secret-{prefix}{k}"));
        assert_eq!(
            c.session_token.as_ref().map(|t| t.expose().to_string()),
            Some(format!("token-{prefix}{k}"))
        );
    }
    let last = USER_PROFILES - 1;
    assert_eq!(
        creds[&format!("user-{last:05}")].access_key_id,
        format!("AKIAUSER{last:012}")
    );
}

/// Our temporary files next to `file` (left only by a killed run).
fn temp_files(file: &Path, stem: &str) -> Vec<PathBuf> {
    let prefix = format!(".{stem}.awscredd-");
    std::fs::read_dir(file.parent().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with(&prefix) && n.ends_with(".tmp")
        })
        .collect()
}

fn spawn(sb: &Sandbox, k: &str, quiet: bool) -> Child {
    let mut c = sb.command();
    c.env("CRASH_KEY", k)
        .arg("--config")
        .arg(sb.file("config.toml"))
        .args(["once", "--force"])
        .stdin(Stdio::null());
    if quiet {
        c.stdout(Stdio::null()).stderr(Stdio::null());
    } else {
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
    }
    c.spawn().expect("spawn awscredd")
}

/// Waits for `child`, killing it after `limit` (a hung run fails the test, never blocks it).
fn wait_bounded(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("awscredd did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// One clean run with key `k`: exits 0, writes exactly `expected`, and leaves no temporary
/// file (it removes those a killed run left). Returns how long it took.
fn clean_run(sb: &Sandbox, creds: &Path, k: &str, expected: &[u8]) -> Duration {
    let start = Instant::now();
    let mut child = spawn(sb, k, false);
    let status = wait_bounded(&mut child, Duration::from_secs(60));
    let took = start.elapsed();
    let out = child.wait_with_output().unwrap();
    assert!(status.success(), "clean run failed: {}", show(&out));
    let bytes = std::fs::read(creds).unwrap();
    assert!(
        bytes == expected,
        "clean run with {k} wrote unexpected content"
    );
    assert_eq!(
        temp_files(creds, "credentials"),
        Vec::<PathBuf>::new(),
        "temporary files remain after a clean run"
    );
    took
}

fn median(times: &[Duration]) -> Duration {
    let mut t = times.to_vec();
    t.sort();
    t[t.len() / 2]
}

/// The first byte where two contents differ, for failure messages.
fn first_difference(a: &[u8], b: &[u8]) -> usize {
    a.iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()))
}

#[test]
fn sigkill_at_random_moments_never_tears_the_file() {
    let started = Instant::now();
    let sb = Sandbox::new();
    let script = sb.file("key.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\nk=\"$1$CRASH_KEY\"\ncat <<JSON\n{\"Version\": 1, \"AccessKeyId\": \"$k\", \
         \"SecretAccessKey\": \"secret-$k\", \"SessionToken\": \"token-$k\", \
         \"Expiration\": \"2099-01-01T00:00:00Z\"}\nJSON\n",
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    sb.config(&format!(
        "[daemon]\nstate_dir = \"state\"\n\n[[output]]\npath = \"credentials\"\n\n\
         [profile.crash-a]\ncredential_process = \"{s} A\"\n\n\
         [profile.crash-b]\ncredential_process = \"{s} B\"\n",
        s = script.display()
    ));
    let creds = sb.file("credentials");
    let original = big_file();
    std::fs::write(&creds, &original).unwrap();
    let expected = |k: &str| original.replace(ORIGINAL_KEY, k).into_bytes();

    // Calibrate: how long a whole run takes. The first run also shows that awscredd changes
    // nothing but the managed values.
    let mut times = Vec::new();
    let mut run = 0u64;
    for _ in 0..5 {
        run += 1;
        times.push(clean_run(&sb, &creds, &key(run), &expected(&key(run))));
    }
    check_parses(&std::fs::read(&creds).unwrap(), &key(run));
    println!(
        "crash test: {} byte file, a clean run takes {:?} (median of {times:?})",
        original.len(),
        median(&times)
    );

    let mut previous = expected(&key(run));
    let (mut old, mut new_killed, mut new_finished, mut temp_left) = (0u32, 0u32, 0u32, 0u32);
    for i in 0..KILLED_RUNS {
        if i > 0 && i % RECALIBRATE_EVERY == 0 {
            run += 1;
            previous = expected(&key(run));
            times.push(clean_run(&sb, &creds, &key(run), &previous));
        }
        let typical = median(&times[times.len().saturating_sub(5)..]).as_secs_f64();
        // Half the kills anywhere in [0, 1.2 x a run], half near its end, where the temporary
        // file is written and renamed.
        let mut rng = SplitMix(0xC0FF_EE00 ^ i);
        let factor = if rng.next() % 2 == 0 {
            1.2 * rng.unit()
        } else {
            0.8 + 0.25 * rng.unit()
        };
        run += 1;
        let k = key(run);
        let new = expected(&k);

        let mut child = spawn(&sb, &k, true);
        std::thread::sleep(Duration::from_secs_f64(typical * factor));
        let _ = child.kill(); // SIGKILL; a no-op if it already exited
        let status = wait_bounded(&mut child, Duration::from_secs(60));
        let killed = status.signal() == Some(9);
        assert!(
            killed || status.success(),
            "run {run} neither finished nor was killed: {status:?}"
        );
        if !temp_files(&creds, "credentials").is_empty() {
            temp_left += 1;
        }

        let bytes = std::fs::read(&creds).unwrap();
        if bytes == previous {
            assert!(killed, "run {run} exited 0 but did not write the file");
            old += 1;
        } else if bytes == new {
            check_parses(&bytes, &k);
            if killed {
                new_killed += 1;
            } else {
                new_finished += 1;
            }
            previous = new;
        } else {
            let text = String::from_utf8_lossy(&bytes);
            let at = first_difference(&bytes, &new).min(first_difference(&bytes, &previous));
            panic!(
                "run {run} (killed after {:.1} ms) left a file that is neither the old nor the \
                 new content: {} bytes (old {}, new {}), first difference at byte {at}: {:?}",
                typical * factor * 1000.0,
                bytes.len(),
                previous.len(),
                new.len(),
                text.get(at.saturating_sub(80)..(at + 80).min(text.len()))
            );
        }
    }

    // A clean run after the last kill removes every temporary file a kill left.
    run += 1;
    clean_run(&sb, &creds, &key(run), &expected(&key(run)));
    check_parses(&std::fs::read(&creds).unwrap(), &key(run));
    let state_temps = temp_files(&sb.file("state/state.json"), "state.json").len();

    println!(
        "crash test: {KILLED_RUNS} kills: {old} old, {} new ({new_killed} killed after the \
         rename, {new_finished} finished before the kill); {temp_left} kills left a temporary \
         file; {state_temps} state temporary files remain; typical run {:?}; total {:?}",
        new_killed + new_finished,
        median(&times),
        started.elapsed()
    );
    assert!(old >= 5, "too few kills landed before the rename: {old}");
    assert!(
        new_killed + new_finished >= 5,
        "too few runs got to the rename: {}",
        new_killed + new_finished
    );
}
