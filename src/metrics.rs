//! What `run` tells operators: the Prometheus metrics of `[metrics]`, and the health that
//! `/healthz` and `/readyz` answer on both listeners.
//!
//! [`Metrics`] is updated as things happen, never by a scrape: the scheduler calls
//! [`Metrics::after_pass`] with each pass's outcomes (counters, last success) and then looks
//! at the files the way `status` does (expiry, state, SSO token expiry, the end of each
//! `aws login` sign-in), once per pass, after the pass has written; it runs its passes and
//! sleeps inside [`Metrics::alive`], the heartbeat `/healthz` reads. A scrape only encodes what is already there, so it never runs a
//! source, reads a file or takes a lock. Sign-ins are counted by the daemon's
//! [`crate::sources::sso::sign_ins::SignIns`], which the scheduler reads after each pass
//! ([`Metrics::record_sign_ins`]).
//!
//! Labels are profile and session names only: the number of series is bounded by the config.
//! Series of a profile or session that a reload removed are removed with it.

use crate::clock::Clock;
use crate::config::Config;
use crate::credentials::parse_rfc3339;
use crate::refresh::{Outcome, PassReport};
use crate::sources::sso::cache::TokenCache;
use crate::status::{self, ProfileStatus, SessionStatus, State, Status};
use prometheus_client::encoding::{prometheus_text, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use time::OffsetDateTime;
use tokio::time::Instant;

/// The `Content-Type` of `/metrics`.
pub(crate) const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// How often [`Metrics::alive`] beats while the scheduler waits or runs a pass.
const BEAT_EVERY: Duration = Duration::from_secs(10);
/// `/healthz` fails when the scheduler has not beaten for this long: a dozen beats missed.
pub(crate) const STALE_AFTER: Duration = Duration::from_secs(120);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProfileLabels {
    profile: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefreshLabels {
    profile: String,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    profile: String,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SessionLabels {
    sso_session: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LoginLabels {
    login_session: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

/// The daemon's metrics and health.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    expiry: Family<ProfileLabels, Gauge>,
    refreshes: Family<RefreshLabels, Counter>,
    last_success: Family<ProfileLabels, Gauge>,
    state: Family<StateLabels, Gauge>,
    sso_expiry: Family<SessionLabels, Gauge>,
    /// Device authorizations started, per SSO session, by this daemon.
    sign_ins: Family<SessionLabels, Counter>,
    /// When each `aws login` sign-in ends (a human must sign in again by then).
    login_end: Family<LoginLabels, Gauge>,
    /// When each Roles Anywhere profile's certificate expires.
    cert_expiry: Family<ProfileLabels, Gauge>,
    seen: Mutex<Seen>,
    beat: Mutex<Instant>,
    /// Whether the per-profile and per-session series are kept (see [`Metrics::keep_series`]).
    series: std::sync::atomic::AtomicBool,
}

/// What the last look found, for `/readyz` and for removing the series of what is gone.
#[derive(Debug, Default)]
struct Seen {
    /// Each profile's state; `None` before the first look.
    states: Option<BTreeMap<String, State>>,
    sessions: BTreeSet<String>,
    logins: BTreeSet<String>,
    /// The Roles Anywhere profiles with a certificate series.
    cert_profiles: BTreeSet<String>,
    /// Per certificate file: the `notAfter` last warned about, and when.
    cert_warned: BTreeMap<PathBuf, (OffsetDateTime, OffsetDateTime)>,
    /// When this daemon last refreshed each profile.
    succeeded: BTreeMap<String, OffsetDateTime>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let m = Metrics {
            registry: Registry::default(),
            expiry: Family::default(),
            refreshes: Family::default(),
            last_success: Family::default(),
            state: Family::default(),
            sso_expiry: Family::default(),
            sign_ins: Family::default(),
            login_end: Family::default(),
            cert_expiry: Family::default(),
            seen: Mutex::default(),
            beat: Mutex::new(Instant::now()),
            series: std::sync::atomic::AtomicBool::new(true),
        };
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        let mut registry = Registry::default();
        registry.register(
            "awscredd_credentials_expiry_timestamp_seconds",
            "When the profile's credentials expire (Unix time), the earliest across its outputs; absent for credentials without an expiry",
            m.expiry.clone(),
        );
        registry.register(
            "awscredd_refresh",
            "Refreshes of the profile by this daemon, by result (success, failure)",
            m.refreshes.clone(),
        );
        registry.register(
            "awscredd_last_refresh_success_timestamp_seconds",
            "When the profile was last refreshed successfully (Unix time)",
            m.last_success.clone(),
        );
        registry.register(
            "awscredd_profile_state",
            "1 for the profile's state as `awscredd status` shows it, 0 for the other states",
            m.state.clone(),
        );
        registry.register(
            "awscredd_sso_token_expiry_timestamp_seconds",
            "When the SSO session's access token expires (Unix time)",
            m.sso_expiry.clone(),
        );
        registry.register(
            "awscredd_sso_sign_ins",
            "Device authorizations started for the SSO session (a human was asked to sign in)",
            m.sign_ins.clone(),
        );
        registry.register(
            "awscredd_login_session_end_timestamp_seconds",
            "When the `aws login` sign-in ends (Unix time): a human must sign in again by then",
            m.login_end.clone(),
        );
        registry.register(
            "awscredd_certificate_expiry_timestamp_seconds",
            "When the certificate of a Roles Anywhere profile expires (Unix time): renew it before then",
            m.cert_expiry.clone(),
        );
        registry.register("awscredd_build_info", "awscredd's version", build);
        Metrics { registry, ..m }
    }

    /// Whether to keep the Prometheus series of each profile and session (the default). A
    /// daemon without a `[metrics]` listener (which only a restart adds) serves them to nobody:
    /// with 10,000 profiles they are about 11 MB. The states (`/readyz`, the systemd status
    /// line) are kept either way.
    pub fn keep_series(&self, keep: bool) {
        self.series
            .store(keep, std::sync::atomic::Ordering::Relaxed);
    }

    fn series(&self) -> bool {
        self.series.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// `/metrics`: every series in the Prometheus text format (version 0.0.4).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_text::encode(&mut out, &self.registry);
        out
    }

    /// Records a pass's outcomes, then looks at the files it wrote, as `status` does.
    pub async fn after_pass(&self, cfg: &Config, report: Option<&PassReport>, now: OffsetDateTime) {
        if let Some(report) = report {
            self.record_outcomes(report, now);
        }
        self.look(cfg, now).await;
    }

    /// Reads what `status` reads (the credentials files, `state.json`, the SSO token cache),
    /// without a lock, and sets the gauges and the states `/readyz` answers from.
    pub async fn look(&self, cfg: &Config, now: OffsetDateTime) {
        let owned = cfg.clone();
        let gathered = tokio::task::spawn_blocking(move || {
            let cache = TokenCache::default_location(&crate::paths::process_env);
            let certificates = certificates(&owned);
            (status::gather(&owned, cache.as_ref(), now), certificates)
        })
        .await;
        match gathered {
            Ok((s, certificates)) => {
                self.record_status(&s);
                self.record_certificates(&certificates, now);
            }
            Err(e) => tracing::warn!("cannot update the metrics: {e}"),
        }
    }

    /// Sets each Roles Anywhere profile's certificate expiry, and warns (once a day per file)
    /// about a certificate whose renewal is late: less than a third of its lifetime, or less
    /// than 7 days, is left. Once it has expired, the profile's refreshes fail and say so.
    /// Returns the warnings logged.
    pub(crate) fn record_certificates(
        &self,
        certs: &Certificates,
        now: OffsetDateTime,
    ) -> Vec<String> {
        let mut seen = lock(&self.seen);
        for (profile, (_, validity)) in certs {
            let labels = ProfileLabels {
                profile: profile.clone(),
            };
            let end = validity.as_ref().ok().map(|(_, end)| *end);
            if self.series() {
                set_or_remove(&self.cert_expiry, &labels, end);
            }
        }
        for gone in seen
            .cert_profiles
            .iter()
            .filter(|p| !certs.contains_key(*p))
        {
            self.cert_expiry.remove(&ProfileLabels {
                profile: gone.clone(),
            });
        }
        seen.cert_profiles = certs.keys().cloned().collect();
        let mut by_file: BTreeMap<&Path, (Vec<&str>, (OffsetDateTime, OffsetDateTime))> =
            BTreeMap::new();
        for (profile, (path, validity)) in certs {
            if let Ok(v) = validity {
                by_file
                    .entry(path)
                    .or_insert((Vec::new(), *v))
                    .0
                    .push(profile);
            }
        }
        seen.cert_warned
            .retain(|p, _| by_file.contains_key(p.as_path()));
        let mut warnings = Vec::new();
        for (path, (profiles, (start, end))) in by_file {
            let left = end - now;
            let late = left < time::Duration::days(7).min((end - start) / 3);
            let told = seen
                .cert_warned
                .get(path)
                .is_some_and(|(e, at)| *e == end && now - *at < time::Duration::days(1));
            if !late || left <= time::Duration::ZERO || told {
                continue;
            }
            seen.cert_warned.insert(path.to_path_buf(), (end, now));
            let warning = format!(
                "certificate `{}` (profile {}) expires at {}, in {}: renew it before then, or the profile fails",
                crate::text::shown(path.display()),
                crate::text::shown(profiles.join(", ")),
                crate::credentials::format_utc(end),
                left_in_words(left)
            );
            tracing::warn!("{warning}");
            warnings.push(warning);
        }
        warnings
    }

    /// Counts each profile fetched (`success`) or failed (`failure`) in `report`.
    pub fn record_outcomes(&self, report: &PassReport, now: OffsetDateTime) {
        let mut seen = lock(&self.seen);
        for (name, outcome) in &report.outcomes {
            let result = match outcome {
                Outcome::Refreshed { .. } | Outcome::UsedAsSource { .. } => "success",
                // Written to its other outputs, if due: that much succeeded.
                Outcome::BrokenOutputs {
                    refreshed: Some(_), ..
                } => {
                    seen.succeeded.insert(name.clone(), now);
                    "failure"
                }
                Outcome::Failed(_) => "failure",
                // Nothing was attempted: the gauges of `status` tell the broken output.
                Outcome::NotDue | Outcome::BrokenOutputs { .. } => continue,
            };
            if self.series() {
                let labels = RefreshLabels {
                    profile: name.clone(),
                    result,
                };
                self.refreshes.get_or_create(&labels).inc();
            }
            if result == "success" {
                seen.succeeded.insert(name.clone(), now);
            }
        }
    }

    /// Sets every gauge from a `status`, and removes the series of profiles and sessions it
    /// no longer has (a reload removed them).
    pub fn record_status(&self, s: &Status) {
        let mut seen = lock(&self.seen);
        let series = self.series();
        let states: BTreeMap<String, State> = s
            .profiles
            .iter()
            .map(|p| {
                if series {
                    self.record_profile(p, seen.succeeded.get(&p.name).copied());
                }
                (p.name.clone(), p.state)
            })
            .collect();
        let sessions: BTreeSet<String> = s
            .sso_sessions
            .iter()
            .map(|x| {
                if series {
                    self.record_session(x);
                }
                x.name.clone()
            })
            .collect();
        let logins: BTreeSet<String> = s
            .login_sessions
            .iter()
            .map(|x| {
                if series {
                    let labels = LoginLabels {
                        login_session: x.name.clone(),
                    };
                    let end = timestamp(x.refreshable_until.as_deref());
                    set_or_remove(&self.login_end, &labels, end);
                }
                x.name.clone()
            })
            .collect();
        for gone in seen.logins.difference(&logins) {
            self.login_end.remove(&LoginLabels {
                login_session: gone.clone(),
            });
        }
        seen.logins = logins;
        let before = seen.states.take().unwrap_or_default();
        for gone in before.keys().filter(|n| !states.contains_key(*n)) {
            self.forget_profile(gone);
        }
        for gone in seen.sessions.difference(&sessions) {
            let labels = SessionLabels {
                sso_session: gone.clone(),
            };
            self.sso_expiry.remove(&labels);
            self.sign_ins.remove(&labels);
        }
        seen.succeeded.retain(|n, _| states.contains_key(n));
        seen.states = Some(states);
        seen.sessions = sessions;
    }

    /// One profile's series; `ours` is when this daemon last refreshed it.
    fn record_profile(&self, p: &ProfileStatus, ours: Option<OffsetDateTime>) {
        let labels = ProfileLabels {
            profile: p.name.clone(),
        };
        set_or_remove(&self.expiry, &labels, timestamp(p.expires_at.as_deref()));
        // The later of what `state.json` says (kept across restarts, and written by `once`
        // too) and this daemon's own last success.
        if let Some(t) = timestamp(p.last_refresh.as_deref()).max(ours) {
            self.last_success
                .get_or_create(&labels)
                .set(t.unix_timestamp());
        }
        for state in State::ALL {
            let labels = StateLabels {
                profile: p.name.clone(),
                state: state.as_str(),
            };
            self.state
                .get_or_create(&labels)
                .set(i64::from(p.state == state));
        }
        for result in ["success", "failure"] {
            // Present from the start at 0, so `increase()` sees the first one.
            let _ = self.refreshes.get_or_create(&RefreshLabels {
                profile: p.name.clone(),
                result,
            });
        }
    }

    /// One SSO session's series.
    fn record_session(&self, x: &SessionStatus) {
        let labels = SessionLabels {
            sso_session: x.name.clone(),
        };
        set_or_remove(
            &self.sso_expiry,
            &labels,
            timestamp(x.token_expires_at.as_deref()),
        );
        let _ = self.sign_ins.get_or_create(&labels);
    }

    fn forget_profile(&self, name: &str) {
        let labels = ProfileLabels {
            profile: name.to_string(),
        };
        self.expiry.remove(&labels);
        self.last_success.remove(&labels);
        for result in ["success", "failure"] {
            self.refreshes.remove(&RefreshLabels {
                profile: name.to_string(),
                result,
            });
        }
        for state in State::ALL {
            self.state.remove(&StateLabels {
                profile: name.to_string(),
                state: state.as_str(),
            });
        }
    }

    /// Brings `awscredd_sso_sign_ins_total` up to the counts of device authorizations started
    /// per session (a counter only goes up: a count below it changes nothing).
    pub fn record_sign_ins(&self, started: &BTreeMap<String, u64>) {
        for (session, count) in started {
            let counter = self.sign_ins.get_or_create(&SessionLabels {
                sso_session: session.clone(),
            });
            let have = counter.get();
            if *count > have {
                counter.inc_by(count - have);
            }
        }
    }

    /// How many profiles are `ok`, of how many, as of the last look.
    pub fn ok_count(&self) -> (usize, usize) {
        let seen = lock(&self.seen);
        let states = seen.states.as_ref();
        let total = states.map_or(0, |s| s.len());
        let ok = states.map_or(0, |s| s.values().filter(|s| **s == State::Ok).count());
        (ok, total)
    }

    /// The profiles that are not `ok`, with their state, as of the last look (`None` before
    /// the first).
    pub fn not_ready(&self) -> Option<BTreeMap<String, &'static str>> {
        let seen = lock(&self.seen);
        let states = seen.states.as_ref()?;
        Some(
            states
                .iter()
                .filter(|(_, s)| **s != State::Ok)
                .map(|(n, s)| (n.clone(), s.as_str()))
                .collect(),
        )
    }

    /// Runs `work` (a sleep of the scheduler) to its end, beating meanwhile (every
    /// [`BEAT_EVERY`]): a loop that stops turning stops beating.
    pub async fn alive<F: Future>(&self, work: F) -> F::Output {
        self.beating(work, None).await
    }

    /// Runs a pass to its end, beating meanwhile, and at each beat also looks at the files:
    /// a pass held up by one source (a sign-in waits up to ten minutes for a human) has
    /// already written what the others fetched, and the gauges and `/readyz` say so.
    pub async fn alive_pass<F: Future>(
        &self,
        cfg: &Config,
        clock: &dyn Clock,
        work: F,
    ) -> F::Output {
        self.beating(work, Some((cfg, clock))).await
    }

    async fn beating<F: Future>(&self, work: F, look: Option<(&Config, &dyn Clock)>) -> F::Output {
        tokio::pin!(work);
        let mut first = true;
        loop {
            self.beat();
            if let (Some((cfg, clock)), false) = (look, first) {
                self.look(cfg, clock.now()).await;
            }
            first = false;
            tokio::select! {
                out = &mut work => {
                    self.beat();
                    return out;
                }
                _ = tokio::time::sleep(BEAT_EVERY) => {}
            }
        }
    }

    fn beat(&self) {
        *lock(&self.beat) = Instant::now();
    }

    /// How long ago the scheduler last beat (or the metrics were made, before its first beat).
    pub fn since_beat(&self) -> Duration {
        lock(&self.beat).elapsed()
    }

    /// Whether the scheduler has beaten within [`STALE_AFTER`].
    pub fn scheduler_alive(&self) -> bool {
        self.since_beat() <= STALE_AFTER
    }
}

/// An RFC 3339 time of `status`.
fn timestamp(t: Option<&str>) -> Option<OffsetDateTime> {
    t.and_then(|t| parse_rfc3339(t).ok())
}

/// Sets the gauge to the Unix time `t`, or removes it when there is none.
fn set_or_remove<L>(family: &Family<L, Gauge>, labels: &L, t: Option<OffsetDateTime>)
where
    L: Clone + std::hash::Hash + Eq,
{
    match t {
        Some(t) => {
            family.get_or_create(labels).set(t.unix_timestamp());
        }
        None => {
            family.remove(labels);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Per Roles Anywhere profile: its certificate file, and that certificate's validity (or why
/// it cannot be read).
pub(crate) type Certificates =
    BTreeMap<String, (PathBuf, Result<(OffsetDateTime, OffsetDateTime), String>)>;

/// Reads the certificate of every Roles Anywhere profile of `cfg` (each file once).
pub(crate) fn certificates(cfg: &Config) -> Certificates {
    use crate::config::Source;
    use crate::sources::roles_anywhere::material::leaf_validity;
    let mut read: BTreeMap<PathBuf, Result<(OffsetDateTime, OffsetDateTime), String>> =
        BTreeMap::new();
    let mut out = Certificates::new();
    for (name, p) in cfg.profiles.iter() {
        if let Source::RolesAnywhere(ra) = &p.source {
            let path = ra.certificate.clone();
            let validity = read
                .entry(path.clone())
                .or_insert_with(|| leaf_validity(&path))
                .clone();
            out.insert(name.clone(), (path, validity));
        }
    }
    out
}

/// `d` as people say it: `3 days 4 h`, `5 h 12 min`, `40 min`.
fn left_in_words(d: time::Duration) -> String {
    let (days, hours, minutes) = (d.whole_days(), d.whole_hours() % 24, d.whole_minutes() % 60);
    match (days, hours) {
        (0, 0) => format!("{minutes} min"),
        (0, h) => format!("{h} h {minutes} min"),
        (days, h) => format!("{days} days {h} h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::SourceError;

    fn profile(name: &str, state: State, expires_at: Option<&str>) -> ProfileStatus {
        ProfileStatus {
            name: name.into(),
            source: "credential_process",
            state,
            expires_at: expires_at.map(str::to_string),
            last_refresh: Some("2026-01-01T00:00:00Z".into()),
            last_error: None,
        }
    }

    const ALICE: &str = "arn:aws:iam::111122223333:user/alice";

    fn lines_of(m: &Metrics, name: &str) -> Vec<String> {
        m.encode()
            .lines()
            .filter(|l| l.starts_with(name))
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn without_series_only_the_states_are_kept() {
        let m = Metrics::new();
        m.keep_series(false);
        let now = time::macros::datetime!(2026-01-01 00:10 UTC);
        let mut report = PassReport::default();
        report.outcomes.insert(
            "a".into(),
            Outcome::Refreshed {
                expires: Some(now + time::Duration::hours(1)),
            },
        );
        m.record_outcomes(&report, now);
        m.record_status(&Status {
            profiles: vec![
                profile("a", State::Ok, Some("2026-01-01T01:10:00Z")),
                profile("b", State::Failing, None),
            ],
            sso_sessions: vec![],
            login_sessions: vec![],
        });
        assert!(!m.encode().contains("profile=\""), "{}", m.encode());
        assert!(m.encode().contains("awscredd_build_info"));
        assert_eq!(m.ok_count(), (1, 2));
    }

    #[test]
    fn the_gauges_follow_status_and_the_counters_the_outcomes() {
        let m = Metrics::new();
        let now = time::macros::datetime!(2026-01-01 00:10 UTC);
        let mut report = PassReport::default();
        report.outcomes.insert(
            "a".into(),
            Outcome::Refreshed {
                expires: Some(now + time::Duration::hours(1)),
            },
        );
        report
            .outcomes
            .insert("b".into(), Outcome::Failed(SourceError::failed("boom")));
        m.record_outcomes(&report, now);
        let status = Status {
            profiles: vec![
                profile("a", State::Ok, Some("2026-01-01T01:10:00Z")),
                profile("b", State::Failing, None),
            ],
            sso_sessions: vec![],
            login_sessions: vec![],
        };
        m.record_status(&status);
        let text = m.encode();
        assert!(text
            .contains("awscredd_credentials_expiry_timestamp_seconds{profile=\"a\"} 1767229800\n"));
        assert!(!text.contains("awscredd_credentials_expiry_timestamp_seconds{profile=\"b\"}"));
        assert!(text.contains("awscredd_refresh_total{profile=\"a\",result=\"success\"} 1\n"));
        assert!(text.contains("awscredd_refresh_total{profile=\"a\",result=\"failure\"} 0\n"));
        assert!(text.contains("awscredd_refresh_total{profile=\"b\",result=\"failure\"} 1\n"));
        // Ours (00:10) is later than state.json's (00:00) for a; b only has state.json's.
        assert!(text.contains(
            "awscredd_last_refresh_success_timestamp_seconds{profile=\"a\"} 1767226200\n"
        ));
        assert!(text.contains(
            "awscredd_last_refresh_success_timestamp_seconds{profile=\"b\"} 1767225600\n"
        ));
        assert!(text.contains("awscredd_profile_state{profile=\"b\",state=\"failing\"} 1\n"));
        assert!(text.contains("awscredd_profile_state{profile=\"b\",state=\"ok\"} 0\n"));
        assert_eq!(lines_of(&m, "awscredd_profile_state{").len(), 8);
        assert!(text.contains(&format!(
            "awscredd_build_info{{version=\"{}\"}} 1\n",
            env!("CARGO_PKG_VERSION")
        )));
        assert_eq!(
            m.not_ready(),
            Some(BTreeMap::from([("b".to_string(), "failing")]))
        );
    }

    #[test]
    fn a_reload_removes_the_series_of_what_is_gone() {
        let m = Metrics::new();
        m.record_status(&Status {
            profiles: vec![
                profile("a", State::Ok, Some("2026-01-01T01:10:00Z")),
                profile("b", State::Ok, Some("2026-01-01T01:10:00Z")),
                profile("s", State::Ok, Some("2026-01-01T01:10:00Z")),
            ],
            sso_sessions: vec![SessionStatus {
                name: "gone_corp".into(),
                state: State::Ok,
                token_expires_at: Some("2026-01-01T08:00:00Z".into()),
                refreshable_until: None,
            }],
            login_sessions: vec![
                SessionStatus {
                    name: ALICE.into(),
                    state: State::Ok,
                    token_expires_at: Some("2026-01-01T00:15:00Z".into()),
                    refreshable_until: Some("2026-01-01T12:00:00Z".into()),
                },
                SessionStatus {
                    name: "arn:aws:iam::111122223333:user/bob".into(),
                    state: State::Failing,
                    token_expires_at: None,
                    refreshable_until: None,
                },
            ],
        });
        assert!(m.encode().contains(
            "awscredd_sso_token_expiry_timestamp_seconds{sso_session=\"gone_corp\"} 1767254400\n"
        ));
        // The end of a sign-in, when it is known; none for one that cannot be read.
        assert_eq!(
            lines_of(&m, "awscredd_login_session_end_timestamp_seconds{"),
            [format!(
                "awscredd_login_session_end_timestamp_seconds{{login_session=\"{ALICE}\"}} 1767268800"
            )]
        );
        assert!(m
            .encode()
            .contains("awscredd_sso_sign_ins_total{sso_session=\"gone_corp\"} 0\n"));
        assert_eq!(m.not_ready(), Some(BTreeMap::new()));
        m.record_status(&Status {
            profiles: vec![profile("a", State::Expired, Some("2026-01-01T01:10:00Z"))],
            sso_sessions: vec![],
            login_sessions: vec![],
        });
        let text = m.encode();
        assert!(!text.contains("profile=\"b\"") && !text.contains("profile=\"s\""));
        assert!(!text.contains("gone_corp"), "{text}");
        assert!(!text.contains("login_session="), "{text}");
        assert_eq!(lines_of(&m, "awscredd_profile_state{").len(), 4);
        assert_eq!(
            m.not_ready(),
            Some(BTreeMap::from([("a".to_string(), "expired")]))
        );
    }

    #[test]
    fn a_certificate_whose_renewal_is_late_is_a_warning_a_day_and_its_expiry_a_gauge() {
        use time::Duration as D;
        let m = Metrics::new();
        let now = time::macros::datetime!(2026-03-01 00:00 UTC);
        let cert = |path: &str, start: OffsetDateTime, end: OffsetDateTime| {
            (PathBuf::from(path), Ok((start, end)))
        };
        // A 90-day certificate with 10 days left, shared by two profiles; a day certificate
        // with 10 hours left (a third of its life is 8 h); one that cannot be read.
        let mut certs = Certificates::from([
            (
                "a".to_string(),
                cert("/pki/long.crt", now - D::days(80), now + D::days(10)),
            ),
            (
                "b".to_string(),
                cert("/pki/long.crt", now - D::days(80), now + D::days(10)),
            ),
            (
                "c".to_string(),
                cert("/pki/day.crt", now - D::hours(14), now + D::hours(10)),
            ),
            (
                "d".to_string(),
                (PathBuf::from("/pki/x.crt"), Err("no such file".into())),
            ),
        ]);
        assert!(m.record_certificates(&certs, now).is_empty());
        let gauges = lines_of(&m, "awscredd_certificate_expiry_timestamp_seconds{");
        assert_eq!(gauges.len(), 3, "{gauges:?}");
        let in_ten_days = (now + D::days(10)).unix_timestamp();
        assert!(gauges.contains(&format!(
            "awscredd_certificate_expiry_timestamp_seconds{{profile=\"a\"}} {in_ten_days}"
        )));
        // Four days later, the long one is late: told once that day, for both profiles.
        let later = now + D::days(4);
        let told = m.record_certificates(&certs, later);
        assert_eq!(told.len(), 1, "{told:?}");
        assert!(
            told[0].contains(
                "`/pki/long.crt` (profile a, b) expires at 2026-03-11T00:00:00Z, in 6 days 0 h"
            ),
            "{told:?}"
        );
        assert!(m
            .record_certificates(&certs, later + D::hours(23))
            .is_empty());
        assert_eq!(m.record_certificates(&certs, later + D::hours(24)).len(), 1);
        // The day certificate 3 hours on: 7 h left, under a third of its life.
        let told = m.record_certificates(&certs, now + D::hours(3));
        assert!(
            told.iter()
                .any(|w| w.contains("`/pki/day.crt` (profile c)") && w.contains("in 7 h 0 min")),
            "{told:?}"
        );
        // Renewed: a new end is told again only when it too is late; an expired one is the
        // refresh's error to tell.
        certs.insert(
            "c".into(),
            cert("/pki/day.crt", now - D::days(1), now - D::hours(1)),
        );
        certs.remove("a");
        certs.remove("b");
        assert!(m.record_certificates(&certs, now + D::hours(4)).is_empty());
        assert!(lines_of(
            &m,
            "awscredd_certificate_expiry_timestamp_seconds{profile=\"a\"}"
        )
        .is_empty());
    }

    #[test]
    fn nothing_is_ready_before_the_first_look() {
        assert_eq!(Metrics::new().not_ready(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn the_heartbeat_goes_on_while_the_scheduler_waits_and_stops_with_it() {
        let m = Metrics::new();
        m.alive(tokio::time::sleep(Duration::from_secs(600))).await;
        assert!(m.since_beat() < Duration::from_secs(1));
        // Inside a long wait, it beats every BEAT_EVERY.
        let waiting = m.alive(tokio::time::sleep(Duration::from_secs(3600)));
        let _ = tokio::time::timeout(Duration::from_secs(1000), waiting).await;
        assert!(m.since_beat() <= BEAT_EVERY, "{:?}", m.since_beat());
        assert!(m.scheduler_alive());
        // A loop that stopped: no more beats.
        tokio::time::advance(STALE_AFTER + Duration::from_secs(1)).await;
        assert!(!m.scheduler_alive());
    }
}
