//! `awscredd login`: interactive device authorization for SSO sessions. A human is at the
//! keyboard, so the URL and code are printed (and a browser opened when there is one), and
//! `login_command` is not run. With `--sso-session` (or `--profile`, for the sign-in that
//! profile uses, also of the older per-profile form) it always signs in afresh, as
//! `aws sso login` does; without it, only sessions with no usable token do (a token still
//! fresh, or renewable with its refresh token, and not refused by the service, is usable). A
//! sign-in already in progress in another awscredd process is waited for and its token used.

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
    // `--profile`: its session, signed in afresh as `--sso-session` is.
    let by_profile = match &args.profile {
        None => None,
        Some(p) => match session_of_profile(&cfg, p) {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("awscredd: {e}");
                return exit::USAGE;
            }
        },
    };
    let afresh = args.sso_session.is_some() || by_profile.is_some();
    let names: Vec<String> = match by_profile.as_ref().or(args.sso_session.as_ref()) {
        Some(n) if !cfg.sso_sessions.contains_key(n) => {
            let known: Vec<&str> = cfg.sso_sessions.keys().map(String::as_str).collect();
            eprintln!(
                "awscredd: unknown SSO session `{n}` (configured: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            );
            return exit::USAGE;
        }
        Some(n) => vec![n.clone()],
        None if cfg.sso_sessions.is_empty() => {
            eprintln!("awscredd: no [sso_session] in {}", cfg.path.display());
            return exit::USAGE;
        }
        None => cfg.sso_sessions.keys().cloned().collect(),
    };
    let mode = LoginMode::Interactive {
        open_browser: !args.no_browser,
    };
    let sso = match SsoSources::new(&cfg, mode, &crate::paths::process_env) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("awscredd: {e}");
            return exit::FAILED;
        }
    };
    let mut code = exit::OK;
    for name in names {
        let Some(tokens) = sso.session(&name) else {
            continue;
        };
        let signed_in = if afresh {
            tokens.sign_in_afresh().await.map(|_| ())
        } else {
            tokens.access_token(None).await.map(|_| ())
        };
        match signed_in {
            Ok(()) => match tokens.status().await {
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
            },
            Err(e) => {
                eprintln!("awscredd: {e}");
                code = exit::FAILED;
            }
        }
    }
    code
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
