//! The scheduler on tokio's paused time with a scripted fetcher: hours of refreshes, backoff
//! and reloads in milliseconds. Files are really written (in a temporary folder); only the
//! sources and the clock are the test's.

use super::*;
use crate::clock::TokioClock;
use crate::credentials::{Credentials, Secret};
use crate::sources::fetch::BoxFuture;
use crate::sources::ErrorKind;
use crate::sources::{FetchResult, SourceError};
use std::collections::BTreeMap;
use std::sync::Mutex;
use time::macros::datetime;

const START: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);

/// What a scripted profile does at each fetch.
#[derive(Clone, Copy)]
enum Behave {
    /// Credentials valid this long.
    Lives(Duration),
    /// Fails (transient) this many times, then lives an hour.
    FailsTransient(u32),
    /// Needs a sign-in until one is seen, then lives an hour.
    NeedsSignIn,
    /// Never answers.
    Hangs,
    /// An `aws login` sign-in as `sources::login` keeps it: credentials of 15 minutes, used
    /// as they are while more than `FRESH_ENOUGH` is left, else renewed by a token call.
    LoginSession,
}

struct Scripted {
    clock: Arc<TokioClock>,
    behave: BTreeMap<String, Behave>,
    /// Every fetch: profile, wall-clock time, monotonic time.
    log: Mutex<Vec<(String, OffsetDateTime, tokio::time::Instant)>>,
    signed_in: Arc<Mutex<Option<OffsetDateTime>>>,
    /// `LoginSession`: the cached credentials' expiry, and the token calls made.
    login_cache: Mutex<(Option<OffsetDateTime>, u32)>,
}

impl Scripted {
    fn attempts(&self, name: &str) -> Vec<OffsetDateTime> {
        let log = self.log.lock().unwrap();
        log.iter()
            .filter(|(n, ..)| n == name)
            .map(|(_, t, _)| *t)
            .collect()
    }
}

impl Fetcher for Scripted {
    fn fetch<'a>(
        &'a self,
        profile: &'a crate::config::Profile,
        _source: Option<Credentials>,
    ) -> BoxFuture<'a, FetchResult> {
        Box::pin(async move {
            let name = profile.name.clone();
            let now = self.clock.now();
            let n = {
                let mut log = self.log.lock().unwrap();
                log.push((name.clone(), now, tokio::time::Instant::now()));
                log.iter().filter(|(x, ..)| *x == name).count() as u32
            };
            let lives = |d: Duration| {
                Ok(Credentials {
                    access_key_id: format!("ASIA{n:016}"),
                    secret_access_key: Secret::new("s"),
                    session_token: Some(Secret::new("t")),
                    expiration: Some(now + d),
                    account_id: None,
                })
            };
            // A profile without a script (one a reload added) lives an hour.
            let behave = self.behave.get(&name).copied();
            match behave.unwrap_or(Behave::Lives(Duration::from_secs(3600))) {
                Behave::Lives(d) => lives(d),
                Behave::FailsTransient(k) if n <= k => {
                    Err(SourceError::transient("connection refused by https://sts"))
                }
                Behave::FailsTransient(_) => lives(Duration::from_secs(3600)),
                Behave::NeedsSignIn if self.signed_in.lock().unwrap().is_none() => {
                    Err(SourceError {
                        kind: ErrorKind::NeedsLogin,
                        message: "the device code expired before anyone signed in".into(),
                    })
                }
                Behave::NeedsSignIn => lives(Duration::from_secs(3600)),
                Behave::Hangs => {
                    tokio::time::sleep(Duration::from_secs(86_400)).await;
                    lives(Duration::from_secs(3600))
                }
                Behave::LoginSession => {
                    let mut cache = self.login_cache.lock().unwrap();
                    let cached = cache
                        .0
                        .filter(|e| *e - now > crate::sources::login::FRESH_ENOUGH);
                    match cached {
                        Some(e) => lives((e - now).try_into().unwrap()),
                        None => {
                            cache.1 += 1;
                            cache.0 = Some(now + 15 * M);
                            lives(15 * M)
                        }
                    }
                }
            }
        })
    }
}

/// A daemon on paused time over `profiles`, with its config in a temporary folder.
struct Harness {
    dir: tempfile::TempDir,
    clock: Arc<TokioClock>,
    scripted: Arc<Scripted>,
    sign_ins: Arc<SignIns>,
    /// When `run_with` said it was ready.
    ready: Arc<Mutex<Option<OffsetDateTime>>>,
    stop: watch::Sender<bool>,
    controls: mpsc::UnboundedSender<Control>,
    task: tokio::task::JoinHandle<()>,
}

fn config_text(profiles: &[&str]) -> String {
    let mut text =
        String::from("[daemon]\nstate_dir = \"state\"\n[[output]]\npath = \"credentials\"\n");
    for p in profiles {
        text.push_str(&format!(
            "[profile.{p}]\ncredential_process = \"scripted\"\n"
        ));
    }
    text
}

fn start(profiles: &[(&str, Behave)]) -> Harness {
    let names: Vec<&str> = profiles.iter().map(|(n, _)| *n).collect();
    start_with(&config_text(&names), profiles)
}

/// A daemon over the config `text`, its profiles behaving as `profiles` say.
fn start_with(text: &str, profiles: &[(&str, Behave)]) -> Harness {
    start_full(text, profiles, None, None)
}

/// [`start_with`] with the daemon's sign-ins and systemd's socket given.
fn start_full(
    text: &str,
    profiles: &[(&str, Behave)],
    sign_ins: Option<Arc<SignIns>>,
    notify: Option<std::ffi::OsString>,
) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, text).unwrap();
    let (cfg, _) = config::load(&path, &|_| None).unwrap();
    let clock = Arc::new(TokioClock::new(START));
    let signed_in = Arc::new(Mutex::new(None));
    let scripted = Arc::new(Scripted {
        clock: clock.clone(),
        behave: profiles.iter().map(|(n, b)| (n.to_string(), *b)).collect(),
        log: Mutex::new(Vec::new()),
        signed_in: signed_in.clone(),
        login_cache: Mutex::new((None, 0)),
    });
    let s = scripted.clone();
    let sign_ins = sign_ins.unwrap_or_default();
    let engine = Engine {
        clock: clock.clone(),
        fetcher: Arc::new(move |_cfg: &Config, _: &Arc<SignIns>| s.clone() as Arc<dyn Fetcher>),
        sign_in_seen: Arc::new(move |_cfg: &Config, _p: &str| *signed_in.lock().unwrap()),
        sign_ins: sign_ins.clone(),
        metrics: Arc::default(),
    };
    let (stop, stop_rx) = watch::channel(false);
    let (controls, controls_rx) = mpsc::unbounded_channel();
    let (published, _) = watch::channel(cfg.clone());
    let ready = Arc::new(Mutex::new(None));
    let ready_at = ready.clone();
    let on_ready_clock = clock.clone();
    let io = Io {
        stop: stop_rx,
        controls: controls_rx,
        published,
        notifier: Notifier::to(notify),
    };
    let task = tokio::spawn(run_with(engine, path, cfg, io, move || {
        *ready_at.lock().unwrap() = Some(on_ready_clock.now());
    }));
    Harness {
        dir,
        clock,
        scripted,
        sign_ins,
        ready,
        stop,
        controls,
        task,
    }
}

impl Harness {
    async fn run_for(&self, d: Duration) {
        tokio::time::sleep(d).await;
    }

    async fn stop(self) {
        self.stop.send_replace(true);
        tokio::time::timeout(Duration::from_secs(2), self.task)
            .await
            .expect("stopped within 2 s")
            .unwrap();
    }

    fn file(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("credentials")).unwrap_or_default()
    }
}

fn intervals(times: &[OffsetDateTime]) -> Vec<Duration> {
    times
        .windows(2)
        .map(|w| (w[1] - w[0]).try_into().unwrap())
        .collect()
}

fn within(d: Duration, lo: Duration, hi: Duration) -> bool {
    d >= lo && d <= hi
}

const S: Duration = Duration::from_secs(1);
const M: Duration = Duration::from_secs(60);

#[tokio::test(start_paused = true)]
async fn profiles_of_different_lifetimes_refresh_in_order_at_their_times() {
    let h = start(&[
        ("hourly", Behave::Lives(60 * M)),
        ("short", Behave::Lives(20 * M)),
    ]);
    h.run_for(125 * M).await;
    let hourly = h.scripted.attempts("hourly");
    let short = h.scripted.attempts("short");
    // Both at once (the file lacks them), then: an hour's credentials 15 minutes before they
    // expire, 20 minutes' at half their lifetime; less up to 30 s of jitter, and up to a
    // quarter of the margin earlier when the other one's pass runs (3m45s and 2m30s).
    assert_eq!(hourly[0], START);
    assert_eq!(short[0], START);
    assert_eq!(hourly.len(), 3, "{hourly:?}");
    for d in intervals(&hourly) {
        assert!(within(d, 45 * M - 225 * S - 31 * S, 45 * M + S), "{d:?}");
    }
    assert!((12..=15).contains(&short.len()), "{}", short.len());
    for d in intervals(&short) {
        assert!(within(d, 10 * M - 150 * S - 31 * S, 10 * M + S), "{d:?}");
    }
    assert!(h.file().contains("[hourly]") && h.file().contains("[short]"));
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_failing_profile_backs_off_exponentially_then_recovers() {
    let h = start(&[
        ("flaky", Behave::FailsTransient(7)),
        ("fine", Behave::Lives(60 * M)),
    ]);
    h.run_for(60 * M).await;
    let flaky = h.scripted.attempts("flaky");
    let gaps = intervals(&flaky);
    // 30 s, 1 min, 2 min, 4 min, 8 min, then capped at 15 min; +-20%.
    let want = [30, 60, 120, 240, 480, 900, 900];
    assert!(gaps.len() >= want.len(), "{gaps:?}");
    for (gap, base) in gaps.iter().zip(want) {
        let base = Duration::from_secs(base);
        assert!(
            within(*gap, base * 4 / 5, base * 6 / 5 + S),
            "{gap:?} for {base:?}"
        );
    }
    // The eighth attempt succeeded, and the profile is in the file.
    assert!(h.file().contains("[flaky]"), "{}", h.file());
    // The other profile was never held back.
    assert_eq!(h.scripted.attempts("fine").len(), 2);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_profile_that_needs_a_sign_in_waits_for_it_instead_of_backing_off_like_the_network() {
    let h = start(&[("sso", Behave::NeedsSignIn)]);
    h.run_for(35 * M).await;
    let tries = h.scripted.attempts("sso");
    // A network error would have been tried 7 times in 35 minutes; a sign-in is waited for.
    assert!(tries.len() <= 5, "{tries:?}");
    for d in intervals(&tries) {
        assert!(d >= 8 * M, "{d:?}");
    }
    // Someone signs in: the profile is tried again within seconds, and succeeds.
    *h.scripted.signed_in.lock().unwrap() = Some(h.clock.now());
    let before = tries.len();
    h.run_for(20 * S).await;
    let tries = h.scripted.attempts("sso");
    assert_eq!(tries.len(), before + 1, "{tries:?}");
    assert!(h.file().contains("[sso]"));
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_profile_waiting_out_a_sign_in_pause_is_tried_when_the_pause_ends() {
    // The session's last sign-in ended 4 minutes before the start: the next may start 6
    // minutes after it, not after the profile's own 10-minute wait.
    let sign_ins = Arc::new(SignIns::new());
    sign_ins.ended_for_tests("pausetest", START - 4 * M);
    let text = "[daemon]\nstate_dir = \"state\"\n[[output]]\npath = \"credentials\"\n\
                [sso_session.pausetest]\nsso_start_url = \"https://p.awsapps.com/start\"\n\
                sso_region = \"us-east-1\"\n\
                [profile.sso]\nsso_session = \"pausetest\"\nsso_account_id = \"111122223333\"\n\
                sso_role_name = \"R\"\n";
    let h = start_full(text, &[("sso", Behave::NeedsSignIn)], Some(sign_ins), None);
    h.run_for(7 * M).await;
    let tries = h.scripted.attempts("sso");
    assert_eq!(tries.len(), 2, "{tries:?}");
    let gap: Duration = (tries[1] - tries[0]).try_into().unwrap();
    assert!(within(gap, 6 * M, 6 * M + 2 * S), "{gap:?}");
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn sighup_reloads_a_valid_config_and_keeps_the_old_one_when_invalid() {
    let h = start(&[("a", Behave::Lives(60 * M))]);
    h.run_for(10 * S).await;
    // A new profile in the config file: SIGHUP picks it up.
    let path = h.dir.path().join("config.toml");
    std::fs::write(&path, config_text(&["a", "b"])).unwrap();
    h.controls.send(Control::Reload).unwrap();
    h.run_for(10 * S).await;
    assert!(h.file().contains("[b]"), "{}", h.file());
    // An invalid config is refused; the old one keeps running (SIGUSR1 still refreshes `a`).
    std::fs::write(&path, "[profile.broken\n").unwrap();
    h.controls.send(Control::Reload).unwrap();
    let before = h.scripted.attempts("a").len();
    h.controls.send(Control::RefreshNow).unwrap();
    h.run_for(10 * S).await;
    assert_eq!(h.scripted.attempts("a").len(), before + 1);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn stop_interrupts_a_hanging_source_at_once() {
    let h = start(&[("stuck", Behave::Hangs)]);
    h.run_for(5 * S).await;
    let asked = tokio::time::Instant::now();
    h.stop().await;
    assert!(asked.elapsed() < 2 * S);
}

#[tokio::test(start_paused = true)]
async fn a_suspended_machine_refreshes_at_once_on_wake_up() {
    let h = start(&[("a", Behave::Lives(60 * M))]);
    h.run_for(60 * S).await;
    assert_eq!(h.scripted.attempts("a").len(), 1);
    // The machine sleeps for two hours: the wall clock jumps, monotonic time does not.
    h.clock.jump(time::Duration::hours(2));
    let woke = tokio::time::Instant::now();
    h.run_for(6 * M).await;
    let log = h.scripted.log.lock().unwrap().clone();
    assert_eq!(log.len(), 2, "refreshed after the wake-up");
    let after = log[1].2 - woke;
    assert!(after <= 5 * M + S, "refreshed {after:?} after waking");
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_profile_used_only_as_a_source_is_kept_fresh_by_its_record() {
    // `src` is in no output: only `role`, chained from it, is written. Its credentials last
    // 20 minutes, `role`'s an hour.
    let text = "[daemon]\nstate_dir = \"state\"\n[[output]]\npath = \"credentials\"\n\
                profiles = [\"role\"]\n[profile.src]\ncredential_process = \"scripted\"\n\
                [profile.role]\nsource_profile = \"src\"\n\
                role_arn = \"arn:aws:iam::111122223333:role/R\"\n";
    let h = start_with(
        text,
        &[
            ("src", Behave::Lives(20 * M)),
            ("role", Behave::Lives(60 * M)),
        ],
    );
    h.run_for(61 * M).await;
    let src = h.scripted.attempts("src");
    // With `role` at the start and at about 45 min, and on its own at half its lifetime.
    assert!(src.len() >= 6, "{src:?}");
    assert_eq!(h.scripted.attempts("role").len(), 2);
    // So `status` (and /readyz) calls it ok by its record all along.
    let (cfg, _) = config::load(&h.dir.path().join("config.toml"), &|_| None).unwrap();
    let status = crate::status::gather(&cfg, None, h.clock.now());
    let states: Vec<(&str, &str)> = status
        .profiles
        .iter()
        .map(|p| (p.name.as_str(), p.state.as_str()))
        .collect();
    assert_eq!(states, [("role", "ok"), ("src", "ok")]);
    h.stop().await;
}

const SSO_TEXT: &str = "[daemon]\nstate_dir = \"state\"\n[[output]]\npath = \"credentials\"\n\
                        [profile.plain]\ncredential_process = \"scripted\"\n\
                        [sso_session.corp]\nsso_start_url = \"https://c.awsapps.com/start\"\n\
                        sso_region = \"us-east-1\"\n\
                        [profile.sso]\nsso_session = \"corp\"\nsso_account_id = \"111122223333\"\n\
                        sso_role_name = \"R\"\n";

/// Every datagram waiting on `socket`.
#[cfg(unix)]
fn datagrams(socket: &std::os::unix::net::UnixDatagram) -> Vec<String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    while let Ok(n) = socket.recv(&mut buf) {
        got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    got
}

#[tokio::test(start_paused = true)]
async fn ready_at_once_when_no_profile_needs_a_human() {
    let h = start(&[
        ("a", Behave::Lives(60 * M)),
        ("b", Behave::FailsTransient(9)),
    ]);
    h.run_for(S).await;
    assert_eq!(*h.ready.lock().unwrap(), Some(START));
    h.stop().await;
}

#[cfg(unix)]
#[tokio::test(start_paused = true)]
async fn ready_waits_for_an_approved_sign_in_and_says_what_it_waits_for() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    socket.set_nonblocking(true).unwrap();
    let sign_ins = Arc::new(SignIns::new());
    // The first pass finds the session without a token and a sign-in running, its code out.
    let _task = sign_ins.running_for_tests(
        "corp",
        START,
        Some(("https://device.example/", "ABCD-EFGH")),
    );
    let h = start_full(
        SSO_TEXT,
        &[
            ("plain", Behave::Lives(60 * M)),
            ("sso", Behave::NeedsSignIn),
        ],
        Some(sign_ins),
        Some(path.into_os_string()),
    );
    h.run_for(20 * S).await;
    assert_eq!(*h.ready.lock().unwrap(), None, "ready before the sign-in");
    assert!(h.file().contains("[plain]"));
    let got = datagrams(&socket);
    assert_eq!(
        got,
        ["STATUS=waiting for a sign-in to SSO session corp: open https://device.example/ and enter the code ABCD-EFGH\n"]
    );
    // Approved 25 s in: the token is stored, the profile written, then READY=1.
    h.run_for(5 * S).await;
    *h.scripted.signed_in.lock().unwrap() = Some(h.clock.now());
    h.sign_ins.signed_in_for_tests("corp");
    h.run_for(2 * S).await;
    let ready = h.ready.lock().unwrap().expect("ready after the sign-in");
    assert!(
        within((ready - START).try_into().unwrap(), 25 * S, 27 * S),
        "{ready}"
    );
    assert!(h.file().contains("[sso]"), "{}", h.file());
    // (How many are `ok` depends on the SSO cache of this machine's HOME, which `status`
    // reads: the scripted source has none.)
    let got = datagrams(&socket);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with("READY=1\nSTATUS=")
            && got[0].ends_with(" of 2 profiles hold valid credentials\n"),
        "{got:?}"
    );
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn ready_after_60_s_when_nobody_approves_and_the_sign_in_goes_on() {
    let sign_ins = Arc::new(SignIns::new());
    let task = sign_ins.running_for_tests("corp", START, None);
    let h = start_full(
        SSO_TEXT,
        &[
            ("plain", Behave::Lives(60 * M)),
            ("sso", Behave::NeedsSignIn),
        ],
        Some(sign_ins),
        None,
    );
    h.run_for(59 * S).await;
    assert_eq!(*h.ready.lock().unwrap(), None);
    h.run_for(3 * S).await;
    let ready = h.ready.lock().unwrap().expect("ready after 60 s");
    assert!(
        within((ready - START).try_into().unwrap(), 60 * S, 61 * S),
        "{ready}"
    );
    // The sign-in goes on: approved later, the profile is written then.
    assert!(!task.is_finished());
    *h.scripted.signed_in.lock().unwrap() = Some(h.clock.now());
    h.sign_ins.signed_in_for_tests("corp");
    h.run_for(2 * S).await;
    assert!(h.file().contains("[sso]"), "{}", h.file());
    h.stop().await;
}

/// Issue 26: `aws login` credentials last 15 minutes; refreshed at half their lifetime, a day
/// of `run` makes about 96-192 token calls, not thousands. (A pass also takes what falls due
/// within a quarter of its margin, issue 28, and the jitter comes first: a few more than a
/// strict 7.5 minutes apart.)
#[tokio::test(start_paused = true)]
async fn a_day_of_an_aws_login_sign_in_makes_96_to_192_token_calls() {
    let text = "[daemon]\nstate_dir = \"state\"\n[[output]]\npath = \"credentials\"\n\
                [profile.console]\nlogin_session = \"arn:aws:iam::111122223333:user/alice\"\n";
    let h = start_with(text, &[("console", Behave::LoginSession)]);
    h.run_for(24 * 60 * M).await;
    let calls = h.scripted.login_cache.lock().unwrap().1;
    assert!((96..=200).contains(&calls), "{calls} token calls in a day");
    // Each refresh comes at about half the 15 minutes, never in a tight loop.
    for d in intervals(&h.scripted.attempts("console")) {
        assert!(within(d, 5 * M, 8 * M), "{d:?}");
    }
    assert!(h.file().contains("[console]"));
    h.stop().await;
}

#[test]
fn a_pass_takes_profiles_due_within_a_quarter_of_their_margin() {
    let mut s = Schedule::new();
    let opts = s.pass_options(START, crate::hooks::Hooks::new());
    assert_eq!(opts.join_divisor, Some(schedule::JOIN_DIVISOR));
    let window = |m: time::Duration| crate::refresh::due::join_window(m, schedule::JOIN_DIVISOR);
    // An hour's credentials (margin: refresh_before, 15 min) join up to 3m45s early...
    assert_eq!(
        window(time::Duration::minutes(15)),
        time::Duration::seconds(225)
    );
    // ...credentials of 60 s (margin: half their lifetime) up to 7.5 s early: refreshed at
    // the earliest with 37.5 s of their 60 s left, so used for at least 22.5 s (3/8).
    assert_eq!(
        window(time::Duration::seconds(30)),
        time::Duration::milliseconds(7500)
    );
    assert_eq!(
        crate::refresh::due::join_window(time::Duration::minutes(15), 0),
        time::Duration::ZERO
    );
}

#[tokio::test(start_paused = true)]
async fn profiles_falling_due_seconds_apart_share_one_pass_and_one_write() {
    let h = start(&[
        ("a", Behave::Lives(60 * M)),
        ("b", Behave::Lives(60 * M + 20 * S)),
        ("c", Behave::Lives(60 * M + 40 * S)),
        ("far", Behave::Lives(70 * M)),
    ]);
    h.run_for(50 * M).await;
    let second = |n: &str| h.scripted.attempts(n)[1];
    // One pass, so one rewrite of the file, for the three due within 40 s of each other...
    assert_eq!(second("a"), second("b"));
    assert_eq!(second("a"), second("c"));
    // ...taken no earlier than a quarter of the margin (3m45s) and the jitter (30 s) allow...
    let earliest = START + (60 * M + 40 * S) - 15 * M - 225 * S - 31 * S;
    assert!(second("c") >= earliest, "{}", second("c"));
    assert!(second("a") <= START + 45 * M + S, "{}", second("a"));
    // ...and not the one due ten minutes later.
    assert_eq!(h.scripted.attempts("far").len(), 1);
    h.run_for(10 * M).await;
    let far = h.scripted.attempts("far");
    assert_eq!(far.len(), 2, "{far:?}");
    assert!(far[1] >= START + 55 * M - 225 * S - 31 * S, "{}", far[1]);
    h.stop().await;
}

/// What a failed Roles Anywhere profile (and one chained from it) is made from: the newest
/// change of its certificate, key and intermediates, so a renewal, or a key made readable
/// again, ends its wait.
#[test]
fn a_roles_anywhere_chain_is_seen_by_its_newest_certificate_or_key_file() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["leaf.pem", "leaf.key", "chain.pem"] {
        std::fs::write(dir.path().join(f), "x").unwrap();
    }
    let text = "[daemon]\nstate_dir = \"state\"\n[[output]]\npath = \"credentials\"\n\
        [profile.server]\ntrust_anchor_arn = \"arn:aws:rolesanywhere:eu-west-1:111122223333:trust-anchor/t\"\n\
        profile_arn = \"arn:aws:rolesanywhere:eu-west-1:111122223333:profile/p\"\n\
        role_arn = \"arn:aws:iam::111122223333:role/Server\"\ncertificate = \"leaf.pem\"\n\
        private_key = \"leaf.key\"\nintermediates = \"chain.pem\"\n\
        [profile.app]\nsource_profile = \"server\"\nrole_arn = \"arn:aws:iam::111122223333:role/App\"\n";
    let path = dir.path().join("config.toml");
    std::fs::write(&path, text).unwrap();
    let (cfg, _) = config::load(&path, &|_| None).unwrap();
    let first = token_written_at(&cfg, "server").expect("a time");
    assert_eq!(token_written_at(&cfg, "app"), Some(first));
    std::thread::sleep(Duration::from_millis(20));
    // The intermediates rewritten: later.
    std::fs::write(dir.path().join("chain.pem"), "y").unwrap();
    let rewritten = token_written_at(&cfg, "server").unwrap();
    assert!(rewritten > first, "{rewritten} > {first}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::thread::sleep(Duration::from_millis(20));
        let key = dir.path().join("leaf.key");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let readable = token_written_at(&cfg, "app").unwrap();
        assert!(readable > rewritten, "{readable} > {rewritten}");
    }
}

#[test]
fn a_reload_says_what_becomes_of_each_listener() {
    use super::listener_change;
    let a: std::net::SocketAddr = "127.0.0.1:9911".parse().unwrap();
    let b: std::net::SocketAddr = "127.0.0.1:9912".parse().unwrap();
    assert_eq!(listener_change("imds", Some(a), Some(a)), None);
    assert_eq!(listener_change("imds", None, None), None);
    assert_eq!(
        listener_change("imds", Some(a), None).as_deref(),
        Some("[imds] was removed: it keeps listening on 127.0.0.1:9911 until the next restart")
    );
    assert_eq!(
        listener_change("metrics", None, Some(b)).as_deref(),
        Some("[metrics] was added: it listens on 127.0.0.1:9912 from the next restart")
    );
    assert_eq!(
        listener_change("server", Some(a), Some(b)).as_deref(),
        Some("[server] listen changed from 127.0.0.1:9911 to 127.0.0.1:9912: it keeps 127.0.0.1:9911 until the next restart")
    );
}
