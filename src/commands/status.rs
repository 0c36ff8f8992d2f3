//! `awscredd status [--json]`: every profile (source, expiry, last refresh, last error, state)
//! and every SSO session (token expiry, how long it can still be renewed without a human).
//! Read-only: it looks at the credentials files, `state.json` and the SSO token cache, and
//! refreshes nothing. Exit 0 when every profile is `ok`, else 1. The model is
//! [`crate::status`]; this module only prints it.

use super::exit;
use crate::commands::once::load;
use crate::credentials::parse_rfc3339;
use crate::sources::sso::cache::TokenCache;
use crate::status::{gather, State, Status};
use std::path::Path;
use time::OffsetDateTime;

pub fn exec(config_path: Option<&Path>, json: bool) -> u8 {
    let cfg = match load(config_path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let cache = TokenCache::default_location(&crate::paths::process_env);
    let status = gather(&cfg, cache.as_ref(), crate::clock::now());
    if let Some(w) = state_not_writable(&cfg.daemon.state_dir) {
        eprintln!("awscredd: warning: {w}");
    }
    if json {
        match serde_json::to_string_pretty(&status) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("awscredd: {}", crate::text::shown(&e));
                return exit::FAILED;
            }
        }
    } else {
        print!("{}", render(&status, crate::clock::now()));
    }
    if status.profiles.iter().all(|p| p.state == State::Ok) {
        exit::OK
    } else {
        exit::FAILED
    }
}

/// Why the state file cannot be written by this user, if it cannot: then what `status` shows
/// may be older than what the files hold.
fn state_not_writable(dir: &Path) -> Option<String> {
    #[cfg(unix)]
    {
        use nix::unistd::{access, AccessFlags};
        let file = dir.join("state.json");
        let (what, res) = if file.exists() {
            (file.clone(), access(&file, AccessFlags::W_OK))
        } else if dir.exists() {
            (
                dir.to_path_buf(),
                access(dir, AccessFlags::W_OK | AccessFlags::X_OK),
            )
        } else {
            return None;
        };
        res.err().map(|e| {
            format!(
                "`{}` cannot be written by this user ({e}): the state shown may be out of date",
                what.display()
            )
        })
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        None
    }
}

/// Time left until an RFC 3339 time, for people (`42m`, `3h05m`, `expired`).
fn left(t: Option<&str>, now: OffsetDateTime) -> String {
    let Some(t) = t.and_then(|t| parse_rfc3339(t).ok()) else {
        return "-".into();
    };
    let secs = (t - now).whole_seconds();
    if secs <= 0 {
        return "expired".into();
    }
    let (h, m) = (secs / 3600, (secs % 3600) / 60);
    match (h / 24, h) {
        (d, _) if d > 0 => format!("{d}d{:02}h", h % 24),
        (_, h) if h > 0 => format!("{h}h{m:02}m"),
        _ => format!("{m}m"),
    }
}

/// The table for people; every value from outside on one line (control characters escaped).
fn render(s: &Status, now: OffsetDateTime) -> String {
    use crate::text::shown;
    let mut out = String::new();
    out.push_str(&format!(
        "{:<24} {:<18} {:<18} {:<21} {:>8}  {:<21} {}\n",
        "PROFILE", "SOURCE", "STATE", "EXPIRES", "LEFT", "LAST REFRESH", "LAST ERROR"
    ));
    for p in &s.profiles {
        out.push_str(&format!(
            "{:<24} {:<18} {:<18} {:<21} {:>8}  {:<21} {}\n",
            shown(&p.name),
            p.source,
            p.state,
            shown(p.expires_at.as_deref().unwrap_or("-")),
            left(p.expires_at.as_deref(), now),
            shown(p.last_refresh.as_deref().unwrap_or("-")),
            shown(p.last_error.as_deref().unwrap_or(""))
        ));
    }
    if !s.login_sessions.is_empty() {
        out.push_str(&format!(
            "\n{:<44} {:<18} {:<21} {:>8}  {}\n",
            "AWS LOGIN SIGN-IN", "STATE", "CREDENTIALS EXPIRE", "LEFT", "SIGN-IN ENDS"
        ));
        for x in &s.login_sessions {
            out.push_str(&format!(
                "{:<44} {:<18} {:<21} {:>8}  {}\n",
                shown(&x.name),
                x.state,
                x.token_expires_at.as_deref().unwrap_or("-"),
                left(x.token_expires_at.as_deref(), now),
                x.refreshable_until.as_deref().unwrap_or("-")
            ));
            if x.state == crate::status::State::WaitingForLogin {
                out.push_str("  sign in again: `aws login`, or `awscredd login --profile NAME` on a host with no browser\n");
            }
        }
    }
    if !s.sso_sessions.is_empty() {
        out.push_str(&format!(
            "\n{:<24} {:<18} {:<21} {:>8}  {}\n",
            "SSO SESSION", "STATE", "TOKEN EXPIRES", "LEFT", "RENEWABLE AT MOST UNTIL"
        ));
        for x in &s.sso_sessions {
            out.push_str(&format!(
                "{:<24} {:<18} {:<21} {:>8}  {}\n",
                shown(&x.name),
                x.state,
                x.token_expires_at.as_deref().unwrap_or("-"),
                left(x.token_expires_at.as_deref(), now),
                x.refreshable_until.as_deref().unwrap_or("-")
            ));
        }
    }
    out
}
