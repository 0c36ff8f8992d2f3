//! `awscredd login`: interactive device authorization for SSO sessions. A human is at the
//! keyboard, so the URL and code are printed (and a browser opened when there is one), and
//! `login_command` is not run. With `--sso-session` (or `--profile`, for the sign-in that
//! profile uses, also of the older per-profile form) it always signs in afresh, as
//! `aws sso login` does; without it, only sessions with no usable token do (a token still
//! fresh, or renewable with its refresh token, and not refused by the service, is usable). A
//! sign-in already in progress in another awscredd process is waited for and its token used.
//!
//! `--profile` of a `login_session` profile (or of one chained from it) makes a new `aws
//! login` sign-in the way `aws login --remote` does: a URL to open on any machine, the code
//! that page shows read from standard input, and the sign-in stored in the login cache (under
//! its lock) only when its identity is the profile's `login_session`.

use super::exit;
use crate::commands::once::load;
use crate::sources::sso::session::LoginMode;
use crate::sources::sso::SsoSources;
use std::path::Path;

/// Options of `login`.
#[derive(Clone, Debug, Default)]
pub struct LoginArgs {
    pub sso_session: Option<String>,
    /// Sign in the session of this profile (or of the profile it chains from).
    pub profile: Option<String>,
    pub no_browser: bool,
}

pub async fn exec(config_path: Option<&Path>, args: &LoginArgs) -> u8 {
    let cfg = match load(config_path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if let Some(p) = &args.profile {
        if let Some(arn) = cfg.root_login_session(p) {
            return aws_login(&cfg, p, arn).await;
        }
    }
    let names = match sessions_to_sign_in(&cfg, args) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("awscredd: {}", crate::text::shown(&e));
            return exit::USAGE;
        }
    };
    let afresh = args.sso_session.is_some() || args.profile.is_some();
    let mode = LoginMode::Interactive {
        open_browser: !args.no_browser,
    };
    let sso = match SsoSources::new(&cfg, mode, &crate::paths::process_env) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("awscredd: {}", crate::text::shown(&e));
            return exit::FAILED;
        }
    };
    let mut code = exit::OK;
    for name in names {
        if let Some(tokens) = sso.session(&name) {
            if !sign_in_one(tokens, afresh).await {
                code = exit::FAILED;
            }
        }
    }
    code
}

/// The SSO sessions to sign in: the one named (by `--sso-session`, or the session of
/// `--profile`), else every configured one.
fn sessions_to_sign_in(
    cfg: &crate::config::Config,
    args: &LoginArgs,
) -> Result<Vec<String>, String> {
    let by_profile = match &args.profile {
        None => None,
        Some(p) => Some(session_of_profile(cfg, p)?),
    };
    match by_profile.as_ref().or(args.sso_session.as_ref()) {
        Some(n) if !cfg.sso_sessions.contains_key(n) => {
            let known: Vec<&str> = cfg.sso_sessions.keys().map(String::as_str).collect();
            Err(format!(
                "unknown SSO session `{n}` (configured: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ))
        }
        Some(n) => Ok(vec![n.clone()]),
        None if cfg.sso_sessions.is_empty() => {
            Err(format!("no [sso_session] in {}", cfg.path.display()))
        }
        None => Ok(cfg.sso_sessions.keys().cloned().collect()),
    }
}

/// Signs in one SSO session (afresh, or only without a usable token) and says how long it
/// lasts; whether it succeeded.
async fn sign_in_one(tokens: &crate::sources::sso::session::SessionTokens, afresh: bool) -> bool {
    let signed_in = if afresh {
        tokens.sign_in_afresh().await.map(|_| ())
    } else {
        tokens.access_token(None).await.map(|_| ())
    };
    if let Err(e) = signed_in {
        eprintln!("awscredd: {}", crate::text::shown(&e));
        return false;
    }
    match tokens.status().await {
        Some(t) => println!(
            "{}: signed in; the access token is valid until {}{}",
            describe(&tokens.session),
            crate::credentials::format_utc(t.expires_at),
            match (t.refresh_token.is_some(), t.registration_expires_at) {
                (true, Some(r)) => format!(
                    " and is renewed without you until {}",
                    crate::credentials::format_utc(r)
                ),
                _ => String::new(),
            }
        ),
        None => println!("{}: signed in", describe(&tokens.session)),
    }
    true
}

/// How long the pasted code is waited for: the service's codes last minutes.
const PASTE_WAIT: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// A new `aws login` sign-in of `arn` for `profile` (see the module's header).
async fn aws_login(cfg: &crate::config::Config, profile: &str, arn: &str) -> u8 {
    match aws_login_inner(cfg, profile, arn).await {
        Ok(ends) => {
            println!(
                "signed in as {arn}; profile `{profile}` is renewed without you until {ends} \
                 (a sign-in lasts at most 12 hours)"
            );
            exit::OK
        }
        Err(e) => {
            eprintln!("awscredd: {}", crate::text::shown(&e));
            exit::FAILED
        }
    }
}

async fn aws_login_inner(
    cfg: &crate::config::Config,
    profile: &str,
    arn: &str,
) -> Result<String, String> {
    use crate::sources::login::{remote::Authorization, LoginSources};
    let root = cfg
        .chain(profile)
        .find(|p| matches!(&p.source, crate::config::Source::LoginSession { .. }))
        .ok_or_else(|| format!("profile `{profile}` has no login_session"))?;
    let sources = LoginSources::new(cfg, LoginMode::Never, crate::paths::process_env);
    let cache = sources.cache().map_err(|e| e.message)?.clone();
    let signin = sources.endpoint(root, None);
    let auth = Authorization::new(&signin.base)?;
    println!(
        "To sign in as {arn} (profile `{profile}`), open this URL in a browser on any \
         machine:\n\n    {}\n\nsign in, then paste here the code the page shows, and press Enter:",
        auth.url
    );
    let line = tokio::time::timeout(PASTE_WAIT, tokio::task::spawn_blocking(read_line))
        .await
        .map_err(|_| "no code was pasted within 15 minutes".to_string())?
        .map_err(|e| e.to_string())??;
    let code = auth.code_from(&line)?;
    let login = auth.redeem(&signin, &code, arn).await?;
    let ends = login.ends_at().map_or_else(
        || "the sign-in ends".to_string(),
        crate::credentials::format_utc,
    );
    let (lock_path, what) = (
        cache.lock_path(arn),
        format!("the `aws login` sign-in of {arn}"),
    );
    let (state, a) = (
        crate::store::state::StateFile::in_dir(&cfg.daemon.state_dir),
        arn.to_string(),
    );
    tokio::task::spawn_blocking(move || {
        let _lock = crate::files::lock::lock_exclusive(
            &lock_path,
            &what,
            std::time::Duration::from_secs(60),
        )
        .map_err(|e| {
            format!(
                "cannot lock the login cache in `{}`: {e}",
                cache.dir.display()
            )
        })?;
        cache.store(&a, &login)?;
        // A sign-in recorded as ended is over: its new one is not.
        let _ = state.update(|s| {
            s.login_sessions.remove(&a);
        });
        Ok::<(), String>(())
    })
    .await
    .map_err(|e| e.to_string())??;
    Ok(ends)
}

/// One line of standard input (the pasted code).
fn read_line() -> Result<String, String> {
    let mut line = String::new();
    match std::io::stdin().read_line(&mut line) {
        Ok(0) => Err("no code was pasted (standard input is closed)".to_string()),
        Ok(_) => Ok(line),
        Err(e) => Err(format!("cannot read the code from standard input: {e}")),
    }
}

/// The SSO sign-in `profile` uses: its own, or that of the profile it chains from.
fn session_of_profile(cfg: &crate::config::Config, profile: &str) -> Result<String, String> {
    if !cfg.profiles.contains_key(profile) {
        let known: Vec<&str> = cfg.profiles.keys().map(String::as_str).collect();
        return Err(format!(
            "unknown profile `{profile}` (configured: {})",
            known.join(", ")
        ));
    }
    cfg.root_sso_session(profile)
        .map(str::to_string)
        .ok_or_else(|| {
            format!("profile `{profile}` does not sign in through SSO, nor chains from a profile that does")
        })
}

/// How a sign-in is named for people: `SSO session `corp``, or the start URL of the older
/// per-profile form.
fn describe(s: &crate::config::SsoSession) -> String {
    if s.legacy {
        format!("SSO sign-in `{}` (the older per-profile form)", s.start_url)
    } else {
        format!("SSO session `{}`", s.name)
    }
}
