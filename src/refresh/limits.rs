//! How many requests a pass sends to one service at once, adapted to throttling.
//!
//! Each service (the SSO portal of one session, STS in one region) has its own limit,
//! starting at `[daemon] max_concurrent_fetches`: a throttled STS never slows the portal.
//! A throttling answer halves that service's limit (at most once per [`HALVE_EVERY`], since
//! a burst of requests is throttled together); every success adds `1/limit`, so the limit
//! grows back by about one per round of requests — additive increase, multiplicative
//! decrease, as TCP and the AWS SDKs' adaptive retry mode do. A throttled fetch is tried
//! again within the pass, after a short pause, up to [`MAX_THROTTLED_TRIES`] times.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// How often a throttled fetch is tried within one pass.
pub const MAX_THROTTLED_TRIES: u32 = 6;
/// A limit is halved at most this often.
const HALVE_EVERY: Duration = Duration::from_millis(250);

struct Service {
    limit: f64,
    in_flight: usize,
    halved_at: Option<Instant>,
}

/// The limits of one pass, per service.
pub struct Limits {
    cap: usize,
    services: Mutex<HashMap<String, Service>>,
    freed: Notify,
}

/// A request in flight to a service; the slot is freed when dropped.
pub struct Slot<'a> {
    limits: &'a Limits,
    service: String,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut services = self.limits.lock();
        if let Some(s) = services.get_mut(&self.service) {
            s.in_flight = s.in_flight.saturating_sub(1);
        }
        drop(services);
        self.limits.freed.notify_waiters();
    }
}

impl Limits {
    pub fn new(cap: usize) -> Self {
        Limits {
            cap: cap.max(1),
            services: Mutex::new(HashMap::new()),
            freed: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Service>> {
        self.services.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for a slot of `service` below its limit.
    pub async fn acquire(&self, service: &str) -> Slot<'_> {
        loop {
            let freed = self.freed.notified();
            {
                let mut services = self.lock();
                let s = services.entry(service.to_string()).or_insert(Service {
                    limit: self.cap as f64,
                    in_flight: 0,
                    halved_at: None,
                });
                if (s.in_flight as f64) < s.limit.floor().max(1.0) {
                    s.in_flight += 1;
                    return Slot {
                        limits: self,
                        service: service.to_string(),
                    };
                }
            }
            freed.await;
        }
    }

    /// `service` throttled a request: halve its limit (once per burst).
    pub fn throttled(&self, service: &str) {
        let mut services = self.lock();
        if let Some(s) = services.get_mut(service) {
            let recently = s.halved_at.is_some_and(|t| t.elapsed() < HALVE_EVERY);
            if !recently {
                s.limit = (s.limit / 2.0).max(1.0);
                s.halved_at = Some(Instant::now());
                tracing::info!(
                    service,
                    limit = s.limit as usize,
                    "throttled: asking fewer at once"
                );
            }
        }
    }

    /// `service` answered: its limit grows back slowly.
    pub fn succeeded(&self, service: &str) {
        let mut services = self.lock();
        if let Some(s) = services.get_mut(service) {
            s.limit = (s.limit + 1.0 / s.limit.max(1.0)).min(self.cap as f64);
        }
    }

    /// The current limit of `service` (for tests).
    pub fn limit(&self, service: &str) -> usize {
        self.lock()
            .get(service)
            .map_or(self.cap, |s| s.limit.floor() as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn throttling_halves_one_service_and_success_grows_it_back() {
        let l = Limits::new(32);
        let _a = l.acquire("sso:corp").await;
        let _b = l.acquire("sts:us-east-1").await;
        l.throttled("sso:corp");
        assert_eq!(l.limit("sso:corp"), 16);
        // A burst of throttles halves once.
        l.throttled("sso:corp");
        assert_eq!(l.limit("sso:corp"), 16);
        // The other service is not slowed.
        assert_eq!(l.limit("sts:us-east-1"), 32);
        // About one more per round of `limit` successes.
        for _ in 0..20 {
            l.succeeded("sso:corp");
        }
        assert_eq!(l.limit("sso:corp"), 17);
        for _ in 0..1000 {
            l.succeeded("sso:corp");
        }
        assert_eq!(l.limit("sso:corp"), 32, "never above the cap");
    }

    #[tokio::test]
    async fn no_more_than_the_limit_are_in_flight() {
        let l = std::sync::Arc::new(Limits::new(2));
        let a = l.acquire("s").await;
        let _b = l.acquire("s").await;
        let l2 = l.clone();
        let third = tokio::spawn(async move {
            let _c = l2.acquire("s").await;
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!third.is_finished(), "a third slot was given");
        drop(a);
        tokio::time::timeout(Duration::from_secs(5), third)
            .await
            .unwrap()
            .unwrap();
    }
}
