//! Benchmark: rewriting one managed profile in a credentials file of 1,000 profiles.
//!
//! Run with `cargo bench --bench rewrite`. A plain timing harness (no criterion): each figure
//! is the median of [`ITERATIONS`] timed rewrites, after a few untimed warm-up rounds. In the
//! same run, `bench/configparser_rewrite.py` does the same job the way today's refresh scripts
//! do it (Python `configparser` read + write), for comparison.
#![allow(clippy::disallowed_methods)] // tests and tools read the clock and environment directly

use awscredd::credentials::{Credentials, Secret};
use awscredd::profile_file::{credentials_profile_name, edit, ProfileFile};
use awscredd::store::{update_for, CredentialsFile};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const PROFILES: usize = 1000;
const TARGET: &str = "profile-0500";
const ITERATIONS: usize = 200;
const WARMUP: usize = 5;
/// Roughly the length of a real STS session token.
const REAL_TOKEN_LEN: usize = 700;

/// A tiny deterministic generator (xorshift64*), so the file is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn string(&mut self, alphabet: &[u8], len: usize) -> String {
        (0..len)
            .map(|_| alphabet[(self.next() % alphabet.len() as u64) as usize] as char)
            .collect()
    }

    fn base64(&mut self, len: usize) -> String {
        self.string(
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
            len,
        )
    }

    fn key_id(&mut self) -> String {
        format!(
            "ASIA{}",
            self.string(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)
        )
    }
}

const REGIONS: [&str; 4] = ["us-east-1", "eu-west-1", "ap-southeast-2", "eu-central-1"];

/// A credentials file like the ones refresh scripts keep: every profile with temporary
/// credentials (a session token of `token_len` characters; none and no expiry for 0, as with
/// long-term keys), some with a region and comments, blank lines between profiles.
fn credentials_file(rng: &mut Rng, token_len: usize) -> String {
    let mut out = String::new();
    out.push_str("# AWS credentials, refreshed automatically. Do not edit by hand.\n\n");
    for i in 0..PROFILES {
        if i % 10 == 0 {
            out.push_str(&format!("# team {} accounts\n", i / 10));
        }
        out.push_str(&format!("[profile-{i:04}]\n"));
        if i % 7 == 0 {
            out.push_str("# assumed through the deploy role\n");
        }
        out.push_str(&format!("aws_access_key_id = {}\n", rng.key_id()));
        out.push_str(&format!("aws_secret_access_key = {}\n", rng.base64(40)));
        if token_len > 0 {
            out.push_str(&format!(
                "aws_session_token = IQoJb3JpZ2luX2Vj{}\n",
                rng.base64(token_len - 16)
            ));
            out.push_str(&format!(
                "aws_credential_expiration = 2030-01-{:02}T{:02}:{:02}:00Z\n",
                1 + i % 28,
                i % 24,
                i % 60
            ));
        }
        if i % 3 == 0 {
            out.push_str(&format!("region = {}\n", REGIONS[i % REGIONS.len()]));
        }
        out.push('\n');
    }
    out
}

/// New credentials for each iteration (untimed), so every rewrite really changes bytes.
fn fresh_credentials(rng: &mut Rng, n: usize, token_len: usize) -> Vec<Credentials> {
    let now = time::OffsetDateTime::now_utc();
    (0..n)
        .map(|i| Credentials {
            access_key_id: rng.key_id(),
            secret_access_key: Secret::new(rng.base64(40)),
            session_token: (token_len > 0)
                .then(|| Secret::new(format!("IQoJb3JpZ2luX2Vj{}", rng.base64(token_len - 16)))),
            expiration: (token_len > 0)
                .then(|| now + time::Duration::hours(1) + time::Duration::seconds(i as i64)),
            account_id: None,
        })
        .collect()
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    let n = samples.len();
    if n % 2 == 1 {
        samples[n / 2]
    } else {
        (samples[n / 2 - 1] + samples[n / 2]) / 2
    }
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Times `f` once per credentials set (after `WARMUP` untimed calls) and returns the median.
fn time_each(creds: &[Credentials], mut f: impl FnMut(&Credentials)) -> Duration {
    for c in creds.iter().take(WARMUP) {
        f(c);
    }
    let samples = creds
        .iter()
        .map(|c| {
            let start = Instant::now();
            f(c);
            start.elapsed()
        })
        .collect();
    median(samples)
}

fn store_file(path: &Path, durable: bool) -> CredentialsFile {
    CredentialsFile::ini(path, 0o600, durable)
}

/// Checks that the store run left a file with every profile and the last credentials written.
fn check_file(path: &Path, last: &Credentials) {
    let read = store_file(path, false)
        .read()
        .expect("read back the benchmark file");
    assert_eq!(read.len(), PROFILES, "profiles in the rewritten file");
    assert_eq!(
        read[TARGET].access_key_id, last.access_key_id,
        "last write of {TARGET}"
    );
}

/// What the Python script reported.
struct PythonFigures {
    version: String,
    no_fsync: Duration,
    fsync: Duration,
}

/// Runs `bench/configparser_rewrite.py` on a copy of the file; `Err` says why it was skipped.
fn run_python(copy: &Path, iterations: usize, token_len: usize) -> Result<PythonFigures, String> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bench/configparser_rewrite.py");
    let output = Command::new("python3")
        .arg(&script)
        .arg(copy)
        .arg(iterations.to_string())
        .arg(token_len.to_string())
        .output()
        .map_err(|e| format!("cannot run python3: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "python3 {} failed ({}): {}",
            script.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let field = |name: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
            .map(str::trim)
    };
    let micros = |name: &str| -> Result<Duration, String> {
        let v: f64 = field(name)
            .ok_or_else(|| format!("no `{name}=` line in the script's output:\n{stdout}"))?
            .parse()
            .map_err(|e| format!("bad `{name}` in the script's output: {e}"))?;
        Ok(Duration::from_secs_f64(v / 1e6))
    };
    Ok(PythonFigures {
        version: field("python").unwrap_or("?").to_string(),
        no_fsync: micros("median_us")?,
        fsync: micros("median_fsync_us")?,
    })
}

fn row(label: &str, median: Duration) {
    println!("{label:<44} {:>10.1}", us(median));
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn main() {
    println!("command: cargo bench --bench rewrite");
    println!("\n== temporary credentials: {REAL_TOKEN_LEN}-char session tokens and expiries");
    scenario(REAL_TOKEN_LEN);
    println!("\n== long-term keys: no session tokens, no expiries");
    scenario(0);
}

/// Times every variant on a file whose profiles carry `token_len`-char tokens.
fn scenario(token_len: usize) {
    let mut rng = Rng(0x5eed_a5c1_2024_0001);
    let text = credentials_file(&mut rng, token_len);
    let dir = tempfile::tempdir().expect("create a temp dir");
    let path = dir.path().join("credentials");
    std::fs::write(&path, &text).expect("write the benchmark file");
    let python_copy = dir.path().join("credentials.python");
    std::fs::write(&python_copy, &text).expect("write the copy for Python");
    println!(
        "file: {PROFILES} profiles, {} bytes, {token_len}-char session tokens, in {}",
        text.len(),
        dir.path().display()
    );
    println!(
        "job: rewrite [{TARGET}] with new credentials; median of {ITERATIONS} runs \
         (after {WARMUP} warm-up runs)"
    );

    let creds = fresh_credentials(&mut rng, ITERATIONS, token_len);

    // a. The pure edit in memory: a full parse (every line in a table) + rewrite, and the
    //    store's own way, a parse that checks every line but keeps only the section written.
    let edit = time_each(&creds, |c| {
        let parsed = ProfileFile::parse(black_box(&text)).expect("parse");
        let out = edit::rewrite(&parsed, &[update_for(TARGET, c)]).expect("rewrite");
        black_box(out);
    });
    //    Its output is pieces: runs of the old text and the new lines, for one `writev`.
    let keep = |raw: &str| credentials_profile_name(raw) == Some(TARGET);
    let edit_sparse = time_each(&creds, |c| {
        let parsed = ProfileFile::parse_sections(black_box(&text), &keep).expect("parse");
        let mut out = edit::Pieces::default();
        edit::rewrite_into(&parsed, &[update_for(TARGET, c)], &mut out).expect("rewrite");
        black_box(out.slices());
    });

    // b. The store's whole write: lock, read, parse, edit, temp file, rename.
    let plain = store_file(&path, false);
    let write = time_each(&creds, |c| {
        let changed = plain
            .write(&[(TARGET.to_string(), c.clone())])
            .expect("write");
        assert!(changed);
    });
    check_file(&path, &creds[ITERATIONS - 1]);

    // c. The same with `sync_all` of the file and its folder.
    std::fs::write(&path, &text).expect("reset the benchmark file");
    let durable = store_file(&path, true);
    let write_fsync = time_each(&creds, |c| {
        let changed = durable
            .write(&[(TARGET.to_string(), c.clone())])
            .expect("write");
        assert!(changed);
    });
    check_file(&path, &creds[ITERATIONS - 1]);

    // d. The floor no rewrite can go under on this file system: writing the same number of
    //    bytes to a new file in the folder and renaming it over another, nothing else.
    let floor_target = dir.path().join("floor");
    let floor_tmp = dir.path().join("floor.tmp");
    let bytes = std::fs::read(&path).expect("read the benchmark file");
    let floor = time_each(&creds, |_| {
        std::fs::write(&floor_tmp, black_box(&bytes)).expect("write");
        std::fs::rename(&floor_tmp, &floor_target).expect("rename");
    });

    let python = run_python(&python_copy, ITERATIONS, token_len);

    println!();
    println!("{:<44} {:>10}", "median per rewrite", "µs");
    row("rust edit (in memory: full parse + rewrite)", edit);
    row("rust edit (in memory: the store's way)", edit_sparse);
    row("rust write, no fsync", write);
    row("rust write, fsync (file + folder)", write_fsync);
    row("floor: write same bytes + rename, no fsync", floor);
    match &python {
        Ok(p) => {
            row("python configparser, no fsync", p.no_fsync);
            row("python configparser, fsync (temp + replace)", p.fsync);
        }
        Err(why) => println!("python comparison skipped: {why}"),
    }
    println!();

    let ratios = python.as_ref().ok().map(|p| {
        let ratio = |py: Duration, rust: Duration| py.as_secs_f64() / rust.as_secs_f64();
        println!("python: {}", p.version);
        let ratios = (ratio(p.no_fsync, write), ratio(p.fsync, write_fsync));
        println!("ratio python/rust, no fsync: {:.1}x", ratios.0);
        println!("ratio python/rust, fsync:    {:.1}x", ratios.1);
        ratios
    });
    println!(
        "awscredd's own cost above the floor, no fsync: {:.1} µs",
        us(write.saturating_sub(floor))
    );
    println!(
        "target < 1 ms per rewrite without fsync: {}",
        yes_no(write < Duration::from_millis(1))
    );
    match ratios {
        Some((plain, synced)) => {
            println!(
                "target >= 10x faster than Python, no fsync: {}",
                yes_no(plain >= 10.0)
            );
            println!(
                "target >= 10x faster than Python, fsync:    {}",
                yes_no(synced >= 10.0)
            );
        }
        None => println!("target >= 10x faster than Python: not measured (comparison skipped)"),
    }
}
