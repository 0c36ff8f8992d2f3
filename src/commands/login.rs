//! `awscredd login`: interactive device authorization for SSO sessions. A human is at the
//! keyboard, so the URL and code are printed (and a browser opened when there is one), and
//! `login_command` is not run. With `--sso-session` it always signs in afresh, as
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
    pub no_browser: bool,
}

pub async fn exec(config_path: Option<&Path>, args: &LoginArgs) -> u8 {
    let cfg = match load(config_path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let names: Vec<String> = match &args.sso_session {
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
        let signed_in = if args.sso_session.is_some() {
            tokens.sign_in_afresh().await.map(|_| ())
        } else {
            tokens.access_token(None).await.map(|_| ())
        };
        match signed_in {
            Ok(()) => match tokens.status().await {
                Some(t) => println!(
                    "SSO session `{name}`: signed in; the access token is valid until {}{}",
                    crate::credentials::format_utc(t.expires_at),
                    match (t.refresh_token.is_some(), t.registration_expires_at) {
                        (true, Some(r)) => format!(
                            " and is renewed without you until {}",
                            crate::credentials::format_utc(r)
                        ),
                        _ => String::new(),
                    }
                ),
                None => println!("SSO session `{name}`: signed in"),
            },
            Err(e) => {
                eprintln!("awscredd: {e}");
                code = exit::FAILED;
            }
        }
    }
    code
}
