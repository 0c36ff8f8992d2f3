//! When a profile is due: a pure function of what the files hold, the last refresh and now.

use crate::credentials::Credentials;
use std::time::Duration;
use time::OffsetDateTime;

/// The margin before expiry at which credentials are refreshed: `refresh_before`, or half
/// their lifetime (from the last refresh) if that is shorter.
pub fn refresh_margin(
    expires: OffsetDateTime,
    last_refresh: Option<OffsetDateTime>,
    refresh_before: Duration,
) -> time::Duration {
    let configured = time::Duration::try_from(refresh_before).unwrap_or(time::Duration::MAX);
    match last_refresh {
        Some(start) if start < expires => configured.min((expires - start) / 2),
        _ => configured,
    }
}

/// How much earlier than due a profile may join a pass that runs anyway: its refresh margin
/// divided by `divisor` (the daemon: 4). Refreshed that early, credentials are still used for
/// their lifetime less a margin and a quarter (at least 3/8 of it, when the margin is half the
/// lifetime), never wasted; and profiles falling due within that window of each other are
/// written in one rewrite of their file instead of one each.
pub fn join_window(margin: time::Duration, divisor: u32) -> time::Duration {
    if divisor == 0 {
        return time::Duration::ZERO;
    }
    margin / divisor
}

/// When a profile becomes due (`None`: never, as things stand): at once when one of its output
/// files lacks its credentials, or holds credentials without an expiry that are not the key
/// awscredd last wrote for it (`written_key`, the [`crate::store::state::key_id_hash`] on
/// record, with a `last_refresh`), else when less than the refresh margin is left before they
/// expire. Credentials without an expiry become due `unexpiring_every` after the last refresh
/// (the daemon re-runs such sources hourly), or never (`once` refreshes them only with
/// `--force`).
pub fn due_at(
    holders: &[Option<&Credentials>],
    last_refresh: Option<OffsetDateTime>,
    written_key: Option<&str>,
    refresh_before: Duration,
    unexpiring_every: Option<Duration>,
) -> Option<OffsetDateTime> {
    let ours = |c: &Credentials| {
        last_refresh.is_some()
            && written_key == Some(crate::store::state::key_id_hash(&c.access_key_id).as_str())
    };
    holders
        .iter()
        .filter_map(|held| match held {
            None => Some(OffsetDateTime::UNIX_EPOCH),
            Some(c) => match c.expiration {
                Some(exp) => Some(exp - refresh_margin(exp, last_refresh, refresh_before)),
                // Keys without an expiry that awscredd did not write (another tool wrote them
                // into a profile that is managed, before or since): nobody knows whether they
                // work, nor for how long.
                None if !ours(c) => Some(OffsetDateTime::UNIX_EPOCH),
                None => unexpiring_every.map(|every| {
                    last_refresh.map_or(OffsetDateTime::UNIX_EPOCH, |l| {
                        l + time::Duration::try_from(every).unwrap_or(time::Duration::HOUR)
                    })
                }),
            },
        })
        .min()
}

/// Whether a profile is due now (see [`due_at`]).
pub fn is_due(
    holders: &[Option<&Credentials>],
    last_refresh: Option<OffsetDateTime>,
    written_key: Option<&str>,
    refresh_before: Duration,
    now: OffsetDateTime,
) -> bool {
    due_at(holders, last_refresh, written_key, refresh_before, None).is_some_and(|t| t < now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::Secret;
    use time::macros::datetime;

    fn creds(exp: Option<OffsetDateTime>) -> Credentials {
        Credentials {
            access_key_id: "A".into(),
            secret_access_key: Secret::new("S"),
            session_token: None,
            expiration: exp,
            account_id: None,
        }
    }

    const NOW: OffsetDateTime = datetime!(2026-01-01 12:00 UTC);
    const M15: Duration = Duration::from_secs(900);

    #[test]
    fn due_rules() {
        let in_1h = creds(Some(datetime!(2026-01-01 13:00 UTC)));
        let in_10m = creds(Some(datetime!(2026-01-01 12:10 UTC)));
        let expired = creds(Some(datetime!(2026-01-01 11:00 UTC)));
        let forever = creds(None);
        assert!(!is_due(&[Some(&in_1h)], None, None, M15, NOW));
        assert!(is_due(&[Some(&in_10m)], None, None, M15, NOW));
        assert!(is_due(&[Some(&expired)], None, None, M15, NOW));
        // Keys without an expiry that awscredd wrote are never due for `once`...
        let ours = crate::store::state::key_id_hash("A");
        assert!(!is_due(&[Some(&forever)], Some(NOW), Some(&ours), M15, NOW));
        // ...but keys without an expiry that it never refreshed (another tool's) are due...
        assert!(is_due(&[Some(&forever)], None, None, M15, NOW));
        assert!(is_due(&[Some(&forever)], None, Some(&ours), M15, NOW));
        // ...and so are keys another tool wrote after awscredd's last refresh (issue 27), or
        // keys from before the written key was recorded.
        let theirs = crate::store::state::key_id_hash("AKIAOTHERTOOL");
        assert!(is_due(
            &[Some(&forever)],
            Some(NOW),
            Some(&theirs),
            M15,
            NOW
        ));
        assert!(is_due(&[Some(&forever)], Some(NOW), None, M15, NOW));
        // One output lacking the profile makes it due.
        assert!(is_due(&[Some(&in_1h), None], None, None, M15, NOW));
        assert!(!is_due(&[], None, None, M15, NOW));
        // Short-lived credentials refresh at half their lifetime: 20 min lifetime, refreshed at
        // 11:50, expiring 12:10 -> margin 10 min, so at 12:00 exactly not yet due...
        let short = creds(Some(datetime!(2026-01-01 12:10 UTC)));
        let refreshed = Some(datetime!(2026-01-01 11:50 UTC));
        assert!(!is_due(&[Some(&short)], refreshed, None, M15, NOW));
        // ...and due a minute later.
        assert!(is_due(
            &[Some(&short)],
            refreshed,
            None,
            M15,
            datetime!(2026-01-01 12:01 UTC)
        ));
    }

    #[test]
    fn due_times() {
        let in_1h = creds(Some(datetime!(2026-01-01 13:00 UTC)));
        assert_eq!(
            due_at(&[Some(&in_1h)], None, None, M15, None),
            Some(datetime!(2026-01-01 12:45 UTC))
        );
        assert_eq!(
            due_at(&[Some(&in_1h), None], None, None, M15, None),
            Some(OffsetDateTime::UNIX_EPOCH)
        );
        let forever = creds(None);
        let ours = crate::store::state::key_id_hash("A");
        assert_eq!(
            due_at(&[Some(&forever)], Some(NOW), Some(&ours), M15, None),
            None
        );
        assert_eq!(
            due_at(
                &[Some(&forever)],
                Some(NOW),
                Some(&ours),
                M15,
                Some(Duration::from_secs(3600))
            ),
            Some(datetime!(2026-01-01 13:00 UTC))
        );
    }
}
