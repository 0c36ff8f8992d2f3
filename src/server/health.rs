//! `/healthz` and `/readyz`, answered the same way on the `[server]` and `[metrics]`
//! listeners from what [`Metrics`] already holds (no file is read for a probe).
//!
//! - `/healthz`: 200 `{"status":"ok"}` while the scheduler's loop beats (see
//!   [`Metrics::alive`]), else 503 `{"status":"stalled","seconds_since_last_beat":N}`.
//! - `/readyz`: 200 `{"not_ready":{}}` when every profile is `ok` as `awscredd status` would
//!   say after the last pass, else 503 `{"not_ready":{"PROFILE":"STATE",...}}`.

use super::answer;
use super::http::Response;
use crate::metrics::Metrics;

/// The answer to a health path (`/healthz`, `/readyz`); `None` for any other path.
pub fn route(path: &str, metrics: &Metrics) -> Option<Response> {
    match path {
        "/healthz" => Some(healthz(metrics)),
        "/readyz" => Some(readyz(metrics)),
        _ => None,
    }
}

fn healthz(metrics: &Metrics) -> Response {
    if metrics.scheduler_alive() {
        answer(200, r#"{"status":"ok"}"#.to_string())
    } else {
        let body = serde_json::json!({
            "status": "stalled",
            "seconds_since_last_beat": metrics.since_beat().as_secs(),
        });
        answer(503, body.to_string())
    }
}

fn readyz(metrics: &Metrics) -> Response {
    let not_ready = metrics.not_ready();
    let status = match &not_ready {
        Some(n) if n.is_empty() => 200,
        _ => 503,
    };
    let body = serde_json::json!({ "not_ready": not_ready.unwrap_or_default() });
    answer(status, body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{ProfileStatus, State, Status};

    fn status(states: &[(&str, State)]) -> Status {
        Status {
            profiles: states
                .iter()
                .map(|(name, state)| ProfileStatus {
                    name: name.to_string(),
                    source: "credential_process",
                    state: *state,
                    expires_at: None,
                    last_refresh: None,
                    last_error: None,
                })
                .collect(),
            sso_sessions: vec![],
            login_sessions: vec![],
        }
    }

    #[test]
    fn readyz_names_each_profile_that_is_not_ok() {
        let m = Metrics::new();
        let r = route("/readyz", &m).unwrap();
        assert_eq!(
            (r.status().as_u16(), r.body().as_str()),
            (503, r#"{"not_ready":{}}"#)
        );
        m.record_status(&status(&[
            ("a", State::Ok),
            ("b", State::Failing),
            ("c", State::WaitingForLogin),
        ]));
        let r = route("/readyz", &m).unwrap();
        assert_eq!(r.status().as_u16(), 503);
        assert_eq!(
            r.body(),
            r#"{"not_ready":{"b":"failing","c":"waiting_for_login"}}"#
        );
        m.record_status(&status(&[
            ("a", State::Ok),
            ("b", State::Ok),
            ("c", State::Ok),
        ]));
        let r = route("/readyz", &m).unwrap();
        assert_eq!(
            (r.status().as_u16(), r.body().as_str()),
            (200, r#"{"not_ready":{}}"#)
        );
        let r = route("/healthz", &m).unwrap();
        assert_eq!(
            (r.status().as_u16(), r.body().as_str()),
            (200, r#"{"status":"ok"}"#)
        );
        assert!(route("/metrics", &m).is_none());
    }
}
