//! The session's state machine on a clock the test moves and a fake OIDC service: fresh tokens
//! used as they are, renewal inside the window (once, the rotated refresh token stored), a
//! refused refresh token (the valid access token used while it lasts, then a human asked, and
//! the refused token never renewed again), transient failures, the older form never renewed,
//! and the daemon's pause after a sign-in that ended without a token.

use super::*;
use crate::clock::Clock;
use std::collections::VecDeque;
use std::sync::Mutex;

/// A wall clock that moves only when told.
struct TestClock(Mutex<OffsetDateTime>);

impl TestClock {
    fn advance(&self, by: time::Duration) {
        *self.0.lock().unwrap() += by;
    }
}

impl Clock for TestClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap()
    }
}

/// A fake SSO OIDC service: answers the refresh-token grant and the device-code poll from
/// scripts (for refresh, a new token when the script is empty; for polls, `Ok` is the approval
/// and an empty script `authorization_pending`), and counts every call.
struct FakeOidc {
    clock: Arc<TestClock>,
    refresh_answers: Mutex<VecDeque<ApiError>>,
    poll_answers: Mutex<VecDeque<Result<(), ApiError>>>,
    calls: Mutex<Vec<&'static str>>,
    issued: Mutex<u32>,
    /// Runs once, while the next refresh-token grant is on the wire.
    during_refresh: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl FakeOidc {
    fn new(clock: Arc<TestClock>) -> Self {
        FakeOidc {
            clock,
            refresh_answers: Mutex::new(VecDeque::new()),
            poll_answers: Mutex::new(VecDeque::new()),
            calls: Mutex::new(Vec::new()),
            issued: Mutex::new(0),
            during_refresh: Mutex::new(None),
        }
    }

    fn count(&self, call: &str) -> usize {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| **c == call)
            .count()
    }

    fn token(&self) -> TokenResponse {
        let mut n = self.issued.lock().unwrap();
        *n += 1;
        TokenResponse {
            access_token: Secret::new(format!("access-{n}")),
            expires_at: self.clock.now() + time::Duration::hours(1),
            refresh_token: Some(Secret::new(format!("refresh-{n}"))),
        }
    }
}

impl OidcApi for FakeOidc {
    fn register<'a>(
        &'a self,
        _client_name: &'a str,
        _scopes: &'a [String],
    ) -> super::super::oidc::OidcFuture<'a, Registration> {
        self.calls.lock().unwrap().push("register");
        let reg = registration(self.clock.now());
        Box::pin(async move { Ok(reg) })
    }

    fn start_device_authorization<'a>(
        &'a self,
        _reg: &'a Registration,
        _start_url: &'a str,
    ) -> super::super::oidc::OidcFuture<'a, DeviceAuthorization> {
        self.calls.lock().unwrap().push("start");
        Box::pin(async move {
            Ok(DeviceAuthorization {
                device_code: Secret::new("device"),
                user_code: "ABCD-EFGH".into(),
                verification_uri: "https://device.example/".into(),
                verification_uri_complete: None,
                expires_in: Duration::from_secs(600),
                interval: Duration::from_millis(5),
            })
        })
    }

    fn poll_device_token<'a>(
        &'a self,
        _reg: &'a Registration,
        _device_code: &'a Secret,
    ) -> super::super::oidc::OidcFuture<'a, TokenResponse> {
        self.calls.lock().unwrap().push("poll");
        let answer = self.poll_answers.lock().unwrap().pop_front();
        let result = match answer {
            Some(Ok(())) => Ok(self.token()),
            Some(Err(e)) => Err(e),
            None => Err(ApiError::Pending),
        };
        Box::pin(async move { result })
    }

    fn refresh<'a>(
        &'a self,
        _reg: &'a Registration,
        _refresh_token: &'a Secret,
    ) -> super::super::oidc::OidcFuture<'a, TokenResponse> {
        self.calls.lock().unwrap().push("refresh");
        if let Some(meanwhile) = self.during_refresh.lock().unwrap().take() {
            meanwhile();
        }
        let answer = self.refresh_answers.lock().unwrap().pop_front();
        let result = match answer {
            Some(e) => Err(e),
            None => Ok(self.token()),
        };
        Box::pin(async move { result })
    }
}

fn registration(now: OffsetDateTime) -> Registration {
    Registration {
        client_id: "client".into(),
        client_secret: Secret::new("secret"),
        expires_at: now + time::Duration::days(90),
    }
}

struct Setup {
    dir: tempfile::TempDir,
    clock: Arc<TestClock>,
    oidc: Arc<FakeOidc>,
    session: SsoSession,
}

fn setup(legacy: bool) -> Setup {
    let clock = Arc::new(TestClock(Mutex::new(
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap(),
    )));
    Setup {
        dir: tempfile::tempdir().unwrap(),
        oidc: Arc::new(FakeOidc::new(clock.clone())),
        clock,
        session: SsoSession {
            name: if legacy {
                "https://corp.example/start".into()
            } else {
                "corp".into()
            },
            start_url: "https://corp.example/start".into(),
            region: "us-east-1".into(),
            registration_scopes: if legacy {
                vec![]
            } else {
                vec!["sso:account:access".into()]
            },
            endpoint_url: None,
            legacy,
        },
    }
}

impl Setup {
    fn cache(&self) -> TokenCache {
        TokenCache {
            dir: self.dir.path().join("cache"),
        }
    }

    fn keeper(&self, mode: LoginMode) -> SessionTokens {
        SessionTokens::new(self.session.clone(), self.cache(), self.oidc.clone(), mode)
            .with_clock(self.clock.clone())
            .with_state(StateFile::in_dir(&self.dir.path().join("state")))
    }

    /// Puts a token expiring in `left` in the cache.
    fn cached(&self, left: time::Duration) -> CachedToken {
        let now = self.clock.now();
        let reg = registration(now);
        let t = CachedToken {
            start_url: Some(self.session.start_url.clone()),
            region: Some(self.session.region.clone()),
            access_token: Secret::new("access-0"),
            expires_at: now + left,
            client_id: (!self.session.legacy).then(|| reg.client_id.clone()),
            client_secret: (!self.session.legacy).then(|| reg.client_secret.clone()),
            registration_expires_at: (!self.session.legacy).then_some(reg.expires_at),
            refresh_token: (!self.session.legacy).then(|| Secret::new("refresh-0")),
        };
        std::fs::create_dir_all(&self.cache().dir).unwrap();
        self.cache().store(&self.session.name, &t).unwrap();
        t
    }

    fn in_cache(&self) -> Option<CachedToken> {
        self.cache().load(&self.session.name)
    }
}

fn unattended(background: Option<Arc<SignIns>>) -> LoginMode {
    LoginMode::Unattended {
        login_command: None,
        background,
    }
}

#[tokio::test]
async fn a_fresh_token_is_used_without_a_call() {
    let s = setup(false);
    s.cached(time::Duration::hours(1));
    let keeper = s.keeper(LoginMode::Never);
    assert_eq!(
        keeper.access_token(None).await.unwrap().expose(),
        "access-0"
    );
    assert!(s.oidc.calls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn inside_the_window_the_token_is_renewed_once_and_the_rotated_refresh_token_stored() {
    let s = setup(false);
    s.cached(REFRESH_WINDOW - time::Duration::minutes(1));
    let keeper = s.keeper(LoginMode::Never);
    assert_eq!(
        keeper.access_token(None).await.unwrap().expose(),
        "access-1"
    );
    let stored = s.in_cache().unwrap();
    assert_eq!(stored.access_token.expose(), "access-1");
    assert_eq!(stored.refresh_token.unwrap().expose(), "refresh-1");
    // A hundred profiles of the session later, still one renewal.
    for _ in 0..100 {
        keeper.access_token(None).await.unwrap();
    }
    assert_eq!(s.oidc.count("refresh"), 1);
    // The token this keeper renewed serves while valid, even inside the window (renewing it
    // for every profile would only rotate the refresh token), and is renewed before it expires.
    s.clock.advance(time::Duration::minutes(50));
    assert_eq!(
        keeper.access_token(None).await.unwrap().expose(),
        "access-1"
    );
    assert_eq!(s.oidc.count("refresh"), 1);
    s.clock
        .advance(time::Duration::minutes(9) + time::Duration::seconds(30));
    assert_eq!(
        keeper.access_token(None).await.unwrap().expose(),
        "access-2"
    );
    assert_eq!(s.oidc.count("refresh"), 2);
}

/// Found by the third adversarial pass: `aws sso login` (which does not take awscredd's lock)
/// stored a new sign-in while awscredd's refresh-token grant was on the wire, and awscredd
/// then wrote the old session's renewal over it: the new session's refresh token was lost.
#[tokio::test]
async fn a_sign_in_stored_by_the_cli_during_a_renewal_is_not_overwritten() {
    let s = setup(false);
    s.cached(REFRESH_WINDOW - time::Duration::minutes(1));
    let (cache, name) = (s.cache(), s.session.name.clone());
    let mut newer = s.in_cache().unwrap();
    newer.access_token = Secret::new("cli-access");
    newer.refresh_token = Some(Secret::new("cli-refresh"));
    newer.expires_at = s.clock.now() + time::Duration::hours(8);
    let written = newer.clone();
    *s.oidc.during_refresh.lock().unwrap() =
        Some(Box::new(move || cache.store(&name, &written).unwrap()));
    let keeper = s.keeper(LoginMode::Never);
    let got = keeper.access_token(None).await.unwrap();
    assert_eq!(s.oidc.count("refresh"), 1);
    let stored = s.in_cache().unwrap();
    assert_eq!(stored.access_token.expose(), "cli-access");
    assert_eq!(stored.refresh_token.unwrap().expose(), "cli-refresh");
    // The renewal got is valid and may serve; either way nothing more is asked.
    assert!(
        ["access-1", "cli-access"].contains(&got.expose()),
        "{}",
        got.expose()
    );
    keeper.access_token(None).await.unwrap();
    assert_eq!(s.oidc.count("refresh"), 1);
}

/// Found with the one above: `aws sso logout` (it deletes the token file) during a renewal was
/// undone by the renewal's write.
#[tokio::test]
async fn a_logout_during_a_renewal_is_not_undone() {
    let s = setup(false);
    s.cached(REFRESH_WINDOW - time::Duration::minutes(1));
    let path = s.cache().token_path(&s.session.name);
    let removed = path.clone();
    *s.oidc.during_refresh.lock().unwrap() =
        Some(Box::new(move || std::fs::remove_file(&removed).unwrap()));
    let keeper = s.keeper(LoginMode::Never);
    keeper.access_token(None).await.unwrap();
    assert_eq!(s.oidc.count("refresh"), 1);
    assert!(!path.exists(), "the logout was undone");
}

#[tokio::test]
async fn a_refused_refresh_token_serves_the_valid_token_then_asks_a_human_and_is_not_retried() {
    let s = setup(false);
    s.cached(time::Duration::minutes(10));
    s.oidc
        .refresh_answers
        .lock()
        .unwrap()
        .extend([ApiError::InvalidGrant, ApiError::InvalidGrant]);
    let keeper = s.keeper(LoginMode::Never);
    // Refused, but the access token is valid for 10 more minutes: it serves meanwhile.
    assert_eq!(
        keeper.access_token(None).await.unwrap().expose(),
        "access-0"
    );
    assert_eq!(s.oidc.count("refresh"), 1);
    // Once it has expired, a human must sign in.
    s.clock.advance(time::Duration::minutes(10));
    let e = keeper.access_token(None).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NeedsLogin, "{}", e.message);
    assert!(
        e.message.contains("awscredd login --sso-session corp"),
        "{}",
        e.message
    );
    assert_eq!(s.oidc.count("refresh"), 2);
    // The refused token is recorded (by fingerprint), and never offered to the service again,
    // by this keeper or a new one (another pass, another process).
    let state = StateFile::in_dir(&s.dir.path().join("state")).load();
    let fingerprint = super::super::cache::fingerprint(&s.in_cache().unwrap());
    assert!(state.token_refused("corp", &fingerprint));
    for keeper in [keeper, s.keeper(LoginMode::Never)] {
        let e = keeper.access_token(None).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::NeedsLogin);
    }
    assert_eq!(s.oidc.count("refresh"), 2);
    // The shared cache is left as it was (other tools own it too).
    assert_eq!(s.in_cache().unwrap().access_token.expose(), "access-0");
}

#[tokio::test]
async fn a_transient_failure_uses_the_current_token_while_it_is_valid() {
    let s = setup(false);
    s.cached(time::Duration::minutes(10));
    s.oidc.refresh_answers.lock().unwrap().extend([
        ApiError::Transient("connection reset".into()),
        ApiError::Transient("connection reset".into()),
    ]);
    let keeper = s.keeper(LoginMode::Never);
    assert_eq!(
        keeper.access_token(None).await.unwrap().expose(),
        "access-0"
    );
    s.clock.advance(time::Duration::minutes(10));
    let e = keeper.access_token(None).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Transient, "{}", e.message);
    // Nothing was recorded as refused: the next try renews.
    assert_eq!(
        keeper.access_token(None).await.unwrap().expose(),
        "access-1"
    );
}

#[tokio::test]
async fn the_older_form_is_never_renewed_only_used_while_valid() {
    let s = setup(true);
    s.cached(time::Duration::minutes(5));
    let keeper = s.keeper(LoginMode::Never);
    assert_eq!(
        keeper.access_token(None).await.unwrap().expose(),
        "access-0"
    );
    s.clock.advance(time::Duration::minutes(5));
    let e = keeper.access_token(None).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NeedsLogin);
    assert_eq!(s.oidc.count("refresh"), 0);
}

/// Waits (boundedly) until `cond` holds.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..2_000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("not within 10 s: {what}");
}

#[tokio::test]
async fn after_a_sign_in_ends_without_a_token_the_next_one_waits_for_the_pause() {
    let s = setup(false);
    let sign_ins = Arc::new(SignIns::new());
    let keeper = s.keeper(unattended(Some(sign_ins.clone())));
    // The human denies the first sign-in after two polls.
    s.oidc
        .poll_answers
        .lock()
        .unwrap()
        .extend([Err(ApiError::Pending), Err(ApiError::Denied)]);
    let e = keeper.access_token(None).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NeedsLogin);
    assert!(e.message.contains("started one"), "{}", e.message);
    eventually("the sign-in ended", || {
        sign_ins.next_sign_in_at("corp").is_some()
    })
    .await;
    assert_eq!(s.oidc.count("start"), 1);
    assert_eq!(sign_ins.started().get("corp"), Some(&1));
    let ended_at = s.clock.now();
    assert_eq!(
        sign_ins.next_sign_in_at("corp"),
        Some(ended_at + SIGN_IN_PAUSE)
    );

    // During the pause: no new device authorization, and the profiles say when.
    s.clock.advance(SIGN_IN_PAUSE - time::Duration::seconds(1));
    let e = keeper.access_token(None).await.unwrap_err();
    assert!(e.message.contains("was denied"), "{}", e.message);
    assert!(
        e.message.contains("a new sign-in starts at"),
        "{}",
        e.message
    );
    assert_eq!(s.oidc.count("start"), 1);

    // After it: a new sign-in, which this time is approved and stores its token.
    s.clock.advance(time::Duration::seconds(2));
    s.oidc.poll_answers.lock().unwrap().clear();
    let e = keeper.access_token(None).await.unwrap_err();
    assert!(e.message.contains("started one"), "{}", e.message);
    eventually("a second device authorization", || {
        s.oidc.count("start") == 2
    })
    .await;
    assert_eq!(sign_ins.started().get("corp"), Some(&2));
}

#[tokio::test]
async fn an_approved_background_sign_in_stores_the_token_and_the_profiles_use_it() {
    let s = setup(false);
    let sign_ins = Arc::new(SignIns::new());
    let keeper = s.keeper(unattended(Some(sign_ins.clone())));
    let e = keeper.access_token(None).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NeedsLogin);
    // While it waits, the profiles are told the URL and code.
    eventually("the code is known", || {
        sign_ins
            .waiting()
            .iter()
            .any(|w| w.code.as_ref().is_some_and(|(_, c)| c == "ABCD-EFGH"))
    })
    .await;
    let e = keeper.access_token(None).await.unwrap_err();
    assert!(e.message.contains("ABCD-EFGH"), "{}", e.message);
    assert_eq!(s.oidc.count("start"), 1, "one sign-in, not one per lookup");
    // Approved: the token is stored, and the next lookup uses it.
    s.oidc.poll_answers.lock().unwrap().push_back(Ok(()));
    eventually("the token is stored", || {
        s.in_cache()
            .is_some_and(|t| t.access_token.expose() == "access-1")
    })
    .await;
    eventually("the sign-in is done", || sign_ins.waiting().is_empty()).await;
    assert_eq!(
        keeper.access_token(None).await.unwrap().expose(),
        "access-1"
    );
    assert_eq!(s.oidc.count("start"), 1);
}
