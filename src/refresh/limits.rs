//! How many requests a pass sends to one service at once, adapted to throttling.
//!
//! Each service (the SSO portal of one session, STS in one region) has its own limit,
//! starting at `[daemon] max_concurrent_fetches`: a throttled STS never slows the portal.
//! A throttling answer halves that service's limit, once per burst: only an answer to a
//! request sent at the current limit halves it (the others of its burst were sent before the
//! last halving, and are throttled together); every success adds `1/limit`, so the limit
//! grows back by about one per round of requests — additive increase, multiplicative
//! decrease, as TCP and the AWS SDKs' adaptive retry mode do. A throttled fetch is tried
//! again within the pass, after a short pause, up to [`MAX_THROTTLED_TRIES`] times. A service
//! that refuses [`GIVE_UP_AFTER`] requests in a row even one at a time is not asked again in
//! that pass: its profiles left wait for the next one (with backoff), so a throttle that lasts
//! costs a few requests, not the tries of every profile.

use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::Notify;

/// How often a throttled fetch is tried within one pass.
pub const MAX_THROTTLED_TRIES: u32 = 6;
/// Refusals in a row, at a limit of one request at a time, after which a pass stops asking a
/// service.
pub const GIVE_UP_AFTER: u32 = MAX_THROTTLED_TRIES;

struct Service {
    limit: f64,
    in_flight: usize,
    /// How often the limit was halved: a request sent before the last halving does not
    /// halve it again.
    halvings: u64,
    /// Throttling answers since the last success, received while the limit was already 1.
    refused_at_one: u32,
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
    /// The service's halvings when it was sent.
    epoch: u64,
}

impl Slot<'_> {
    /// When it was sent, for [`Limits::throttled`].
    pub fn epoch(&self) -> u64 {
        self.epoch
    }
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
                    halvings: 0,
                    refused_at_one: 0,
                });
                if (s.in_flight as f64) < s.limit.floor().max(1.0) {
                    s.in_flight += 1;
                    return Slot {
                        limits: self,
                        service: service.to_string(),
                        epoch: s.halvings,
                    };
                }
            }
            freed.await;
        }
    }

    /// `service` throttled a request sent at `epoch` ([`Slot::epoch`]): halve its limit, once
    /// per burst.
    pub fn throttled(&self, service: &str, epoch: u64) {
        let mut services = self.lock();
        if let Some(s) = services.get_mut(service) {
            if s.limit <= 1.0 {
                s.refused_at_one += 1;
            }
            if epoch == s.halvings {
                s.limit = (s.limit / 2.0).max(1.0);
                s.halvings += 1;
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
            s.refused_at_one = 0;
        }
    }

    /// Whether this pass stopped asking `service`: it refused [`GIVE_UP_AFTER`] requests in a
    /// row even one at a time.
    pub fn gave_up(&self, service: &str) -> bool {
        self.lock()
            .get(service)
            .is_some_and(|s| s.refused_at_one >= GIVE_UP_AFTER)
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
    use std::time::Duration;

    /// A request sent now to `service` and throttled.
    async fn refused(l: &Limits, service: &str) {
        let slot = l.acquire(service).await;
        let epoch = slot.epoch();
        drop(slot);
        l.throttled(service, epoch);
    }

    #[tokio::test]
    async fn throttling_halves_one_service_once_per_burst_and_success_grows_it_back() {
        let l = Limits::new(32);
        let burst: Vec<u64> = {
            let slots = [l.acquire("sso:corp").await, l.acquire("sso:corp").await];
            slots.iter().map(Slot::epoch).collect()
        };
        let _b = l.acquire("sts:us-east-1").await;
        l.throttled("sso:corp", burst[0]);
        assert_eq!(l.limit("sso:corp"), 16);
        // The rest of the burst, sent at 32, halves no more.
        l.throttled("sso:corp", burst[1]);
        assert_eq!(l.limit("sso:corp"), 16);
        // A request sent at 16 and throttled halves again.
        refused(&l, "sso:corp").await;
        assert_eq!(l.limit("sso:corp"), 8);
        // The other service is not slowed.
        assert_eq!(l.limit("sts:us-east-1"), 32);
        // About one more per round of `limit` successes.
        for _ in 0..10 {
            l.succeeded("sso:corp");
        }
        assert_eq!(l.limit("sso:corp"), 9);
        for _ in 0..1000 {
            l.succeeded("sso:corp");
        }
        assert_eq!(l.limit("sso:corp"), 32, "never above the cap");
    }

    #[tokio::test]
    async fn a_service_refusing_even_one_at_a_time_is_given_up_and_a_success_resets_it() {
        let l = Limits::new(4);
        let ra = "rolesanywhere:us-east-1";
        // 4, 2, 1: halved by each request sent at the limit of its time.
        refused(&l, ra).await;
        refused(&l, ra).await;
        assert_eq!(l.limit(ra), 1);
        assert!(!l.gave_up(ra), "refused only above one at a time");
        for _ in 0..GIVE_UP_AFTER - 1 {
            refused(&l, ra).await;
        }
        assert!(!l.gave_up(ra));
        // A success: the count starts again (the limit grows to 2; the next refusal halves
        // it back to 1 and does not count).
        l.succeeded(ra);
        for _ in 0..GIVE_UP_AFTER {
            refused(&l, ra).await;
        }
        assert_eq!(l.limit(ra), 1);
        assert!(!l.gave_up(ra), "a success starts the count again");
        refused(&l, ra).await;
        assert!(l.gave_up(ra));
        assert!(
            !l.gave_up("sts:us-east-1"),
            "another service is still asked"
        );
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
