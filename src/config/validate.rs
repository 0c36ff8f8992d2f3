//! Semantic checks of a parsed config: formats, exactly one source per profile, references,
//! `source_profile` cycles. Every problem is collected (not just the first) with its span.

use super::raw::{
    RawConfig, RawDaemon, RawImds, RawMetrics, RawOutput, RawProfile, RawServer, RawSsoSession,
};
use super::{
    parse_duration, Config, Daemon, Diagnostic, Imds, MetricsEndpoint, Mfa, Output, Profile,
    Server, Severity, Source, SsoSession, UserRef,
};
use crate::formats::Format;
use crate::paths::{self, Env};
use crate::profile_file::is_identifier;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

mod login_session;
mod roles_anywhere;
pub use login_session::arn_problem as login_arn_problem;
mod source_table;

use super::{SourceKind, ROLE_CHAINING_MAX_SECONDS};
use source_table::Lookup;

const DEFAULT_REFRESH_BEFORE: Duration = Duration::from_secs(15 * 60);

struct Ctx<'a> {
    diags: &'a mut Vec<Diagnostic>,
    base: &'a Path,
    env: Env<'a>,
    /// Whether the file defines a profile, when only some are validated (see `super::scope`).
    known: Option<&'a dyn Fn(&str) -> bool>,
}

impl Ctx<'_> {
    fn error(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.diags.push(Diagnostic {
            severity: Severity::Error,
            span: Some(span),
            message: message.into(),
        });
    }

    fn warn(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.diags.push(Diagnostic {
            severity: Severity::Warning,
            span: Some(span),
            message: message.into(),
        });
    }

    /// Expands `~` and makes a relative path relative to the config file's folder.
    fn path(&mut self, v: &Spanned<String>, what: &str) -> Option<PathBuf> {
        if v.get_ref().trim().is_empty() {
            self.error(v.span(), format!("{what} must not be empty"));
            return None;
        }
        if let Some(why) = super::other_users_home(v.get_ref(), cfg!(windows)) {
            self.error(v.span(), format!("{what} {why}"));
            return None;
        }
        match paths::expand_tilde(v.get_ref(), self.env, cfg!(windows)) {
            Ok(p) => {
                let p = PathBuf::from(p);
                Some(super::clean(&if p.is_relative() {
                    self.base.join(p)
                } else {
                    p
                }))
            }
            Err(e) => {
                self.error(v.span(), e);
                None
            }
        }
    }
}

/// How the error for a config without profiles begins.
pub(super) const NO_PROFILES: &str = "no profiles are configured";

pub(super) fn validate(
    raw: RawConfig,
    file: &Path,
    base: &Path,
    env: Env<'_>,
    known: Option<&dyn Fn(&str) -> bool>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Config> {
    let mut cx = Ctx {
        diags,
        base,
        env,
        known,
    };
    let errors_before = cx.diags.len();

    if raw.profile.is_empty() {
        cx.diags.push(Diagnostic {
            severity: Severity::Error,
            span: None,
            message: format!("{NO_PROFILES}, so there is nothing to keep fresh: add a [profile.NAME] (config/example.toml shows each source)"),
        });
    }
    let daemon = daemon(&mut cx, raw.daemon);
    let mut sso_sessions = sso_sessions(&mut cx, &raw.sso_session);
    legacy_sessions(&mut cx, &raw.profile, &mut sso_sessions);
    let profiles = profiles(&mut cx, &raw.profile, &sso_sessions);
    let config_path = file
        .file_name()
        .map_or_else(|| file.to_path_buf(), |n| base.join(n));
    let reserved = Reserved::new(&cx, &config_path, daemon.as_ref());
    let mut outputs = outputs(&mut cx, &raw.output, &raw.profile, &reserved);
    if known.is_some() {
        // Only some profiles were validated: the outputs hold those of them.
        for o in &mut outputs {
            o.profiles.retain(|p| profiles.contains_key(p));
        }
    }
    let server = server(&mut cx, raw.server, &outputs, &reserved);
    if server.is_some() {
        served_names(&mut cx, &raw.profile);
    }
    let metrics = metrics(&mut cx, raw.metrics, server.as_ref());
    let taken: Vec<(&str, std::net::SocketAddr)> = [
        server.as_ref().map(|s| ("[server]", s.listen)),
        metrics.as_ref().map(|m| ("[metrics]", m.listen)),
    ]
    .into_iter()
    .flatten()
    .collect();
    let imds = imds(&mut cx, raw.imds, &raw.profile, &outputs, &taken);

    if known.is_none() {
        unused_sessions(&mut cx, &raw.profile, &raw.sso_session);
    }

    let failed = cx
        .diags
        .iter()
        .skip(errors_before)
        .any(|d| d.severity == Severity::Error);
    if failed {
        return None;
    }
    Some(Config::new(
        config_path,
        daemon?,
        outputs,
        sso_sessions,
        profiles,
        server,
        metrics,
        imds,
    ))
}

/// Sessions nobody uses are probably a typo somewhere: a warning each. A profile that failed
/// validation still uses its session: no follow-on warning.
fn unused_sessions(
    cx: &mut Ctx<'_>,
    profiles: &BTreeMap<Spanned<String>, Spanned<RawProfile>>,
    sessions: &BTreeMap<Spanned<String>, Spanned<RawSsoSession>>,
) {
    let used: BTreeSet<&str> = profiles
        .values()
        .filter_map(|p| p.get_ref().sso_session.as_ref())
        .map(|s| s.get_ref().as_str())
        .collect();
    for (name, session) in sessions {
        if !used.contains(name.get_ref().as_str()) {
            cx.warn(
                session.span(),
                format!(
                    "sso_session `{}` is not used by any profile",
                    name.get_ref()
                ),
            );
        }
    }
}

/// Sources asked at once unless `[daemon] max_concurrent_fetches` says otherwise: enough that
/// a pass over hundreds of profiles takes a few round trips.
const DEFAULT_MAX_CONCURRENT_FETCHES: usize = 32;

fn daemon(cx: &mut Ctx<'_>, raw: Option<RawDaemon>) -> Option<Daemon> {
    let raw = raw.unwrap_or(RawDaemon {
        refresh_before: None,
        state_dir: None,
        login_command: None,
        max_concurrent_fetches: None,
    });
    let refresh_before = match &raw.refresh_before {
        None => DEFAULT_REFRESH_BEFORE,
        Some(v) => match parse_duration(v.get_ref()) {
            Ok(d) if d.as_secs() == 0 => {
                cx.error(v.span(), "refresh_before must be more than zero");
                DEFAULT_REFRESH_BEFORE
            }
            Ok(d) => d,
            Err(e) => {
                cx.error(v.span(), format!("refresh_before: {e}"));
                DEFAULT_REFRESH_BEFORE
            }
        },
    };
    let state_dir = match &raw.state_dir {
        Some(v) => cx.path(v, "state_dir"),
        None => paths::default_state_dir(cx.env, cfg!(windows)),
    };
    let login_command = raw
        .login_command
        .as_ref()
        .and_then(|v| command_list(cx, v, "login_command"));
    let state_dir = match state_dir {
        Some(s) => s,
        None => {
            if raw.state_dir.is_none() {
                cx.diags.push(Diagnostic {
                    severity: Severity::Error,
                    span: None,
                    message: "no default state_dir: HOME is not set; set [daemon] state_dir".into(),
                });
            }
            return None;
        }
    };
    let max_concurrent_fetches = match &raw.max_concurrent_fetches {
        None => DEFAULT_MAX_CONCURRENT_FETCHES,
        Some(n) if (1..=256).contains(n.get_ref()) => *n.get_ref() as usize,
        Some(n) => {
            cx.error(n.span(), "max_concurrent_fetches must be between 1 and 256");
            DEFAULT_MAX_CONCURRENT_FETCHES
        }
    };
    Some(Daemon {
        refresh_before,
        state_dir,
        login_command,
        max_concurrent_fetches,
    })
}

/// An argument list: a non-empty array whose first element names a program.
fn command_list(
    cx: &mut Ctx<'_>,
    v: &Spanned<Vec<Spanned<String>>>,
    what: &str,
) -> Option<Vec<String>> {
    let args = v.get_ref();
    match args.first() {
        None => {
            cx.error(
                v.span(),
                format!("{what} must name a program: [\"/path/to/program\", \"arg\", ...]"),
            );
            None
        }
        Some(p) if p.get_ref().trim().is_empty() => {
            cx.error(p.span(), format!("{what}: the program name is empty"));
            None
        }
        Some(_) => Some(args.iter().map(|a| a.get_ref().clone()).collect()),
    }
}

/// An `on_change` list, its program as it is run (see [`hook_program_from`]).
fn hook_command(cx: &mut Ctx<'_>, v: &Spanned<Vec<Spanned<String>>>) -> Option<Vec<String>> {
    command_list(cx, v, "on_change").map(|cmd| hook_program_from(cmd, cx.base))
}

/// A hook's program as it is run: a relative path (`./hooks/reload`, `bin/reload`) is taken
/// from the config file's folder, as `credential_process` runs there; a bare name is looked up
/// in `PATH` when it runs, as a shell would.
fn hook_program_from(mut cmd: Vec<String>, base: &std::path::Path) -> Vec<String> {
    if let Some(program) = cmd.first_mut() {
        let has_separator = program.contains('/') || (cfg!(windows) && program.contains('\\'));
        let p = std::path::Path::new(program.as_str());
        if has_separator && p.is_relative() {
            *program = super::clean(&base.join(p)).display().to_string();
        }
    }
    cmd
}

fn is_region(s: &str) -> bool {
    // e.g. us-east-1, eu-central-2, us-gov-west-1, cn-north-1, ap-southeast-4
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
        && parts[parts.len() - 1].chars().all(|c| c.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty()
}

fn is_url(s: &str) -> bool {
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"));
    match rest {
        Some(r) => {
            let host = r.split(['/', '?', '#']).next().unwrap_or("");
            !host.is_empty() && !s.chars().any(char::is_whitespace)
        }
        None => false,
    }
}

fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.chars().all(|c| c.is_ascii_digit())
}

/// `arn:PARTITION:iam::ACCOUNT:role/PATH/NAME`.
fn check_role_arn(s: &str) -> Result<(), String> {
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    let ok = parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "iam"
        && parts[3].is_empty()
        && is_account_id(parts[4])
        && parts[5].strip_prefix("role/").is_some_and(|n| {
            !n.is_empty()
                && !n.ends_with('/')
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-/".contains(c))
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{s}` is not an IAM role ARN: expected arn:aws:iam::<12-digit account id>:role/<name>"
        ))
    }
}

fn is_session_name(s: &str) -> bool {
    (2..=64).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
}

/// A required key of `[sso_session.NAME]`, checked with `valid` (`(key, valid, what an
/// invalid value is)`): its value, or an error and an empty string.
fn session_key(
    cx: &mut Ctx<'_>,
    name: &Spanned<String>,
    value: &Option<Spanned<String>>,
    (key, valid, invalid): (&str, fn(&str) -> bool, &str),
) -> String {
    match value {
        None => {
            cx.error(
                name.span(),
                format!("sso_session `{}` needs {key}", name.get_ref()),
            );
            String::new()
        }
        Some(v) if !valid(v.get_ref()) => {
            cx.error(v.span(), format!("{key} `{}` {invalid}", v.get_ref()));
            String::new()
        }
        Some(v) => v.get_ref().clone(),
    }
}

fn sso_sessions(
    cx: &mut Ctx<'_>,
    raw: &BTreeMap<Spanned<String>, Spanned<RawSsoSession>>,
) -> BTreeMap<String, SsoSession> {
    let mut out = BTreeMap::new();
    for (name, s) in raw {
        if name.get_ref().is_empty() || !is_identifier(name.get_ref()) {
            cx.error(
                name.span(),
                format!(
                    "`{}` is not a valid sso_session name (letters, digits and _-/.%@:+)",
                    name.get_ref()
                ),
            );
        }
        let body = s.get_ref();
        let start_url = session_key(
            cx,
            name,
            &body.sso_start_url,
            ("sso_start_url", is_url, "is not an http(s) URL"),
        );
        let region = session_key(
            cx,
            name,
            &body.sso_region,
            (
                "sso_region",
                is_region,
                "is not an AWS region like us-east-1",
            ),
        );
        let registration_scopes = match &body.sso_registration_scopes {
            None => vec!["sso:account:access".to_string()],
            Some(v) => {
                let scopes: Vec<String> = v
                    .get_ref()
                    .split(',')
                    .map(|x| x.trim().to_string())
                    .collect();
                if scopes
                    .iter()
                    .any(|x| x.is_empty() || x.contains(char::is_whitespace))
                {
                    cx.error(v.span(), "sso_registration_scopes must be a comma-separated list like \"sso:account:access\"");
                }
                scopes
            }
        };
        let endpoint_url = url_opt(cx, &body.endpoint_url);
        // Kept even when invalid, so profiles that use it are not also reported: the config
        // is rejected anyway.
        out.insert(
            name.get_ref().clone(),
            SsoSession {
                name: name.get_ref().clone(),
                start_url,
                region,
                registration_scopes,
                endpoint_url,
                legacy: false,
            },
        );
    }
    out
}

/// The sign-ins of profiles in the older per-profile SSO form (`sso_start_url` and
/// `sso_region`, no `sso_session`), added to `sessions` under their start URL: profiles with
/// one start URL share one token, as they do in the AWS CLI. Each start URL also gets a
/// warning suggesting the `sso_session` form, with what to write.
fn legacy_sessions(
    cx: &mut Ctx<'_>,
    raw: &BTreeMap<Spanned<String>, Spanned<RawProfile>>,
    sessions: &mut BTreeMap<String, SsoSession>,
) {
    // start URL -> (span of the first profile's sso_start_url, its profiles)
    let mut users: BTreeMap<String, (Range<usize>, Vec<String>)> = BTreeMap::new();
    for (name, p) in raw {
        let body = p.get_ref();
        if body.sso_session.is_some() {
            continue;
        }
        let (Some(url), Some(region)) = (&body.sso_start_url, &body.sso_region) else {
            continue;
        };
        let (u, r) = (url.get_ref(), region.get_ref());
        if !is_url(u) {
            cx.error(
                url.span(),
                format!("sso_start_url `{u}` is not an http(s) URL"),
            );
            continue;
        }
        if !is_region(r) {
            cx.error(
                region.span(),
                format!("sso_region `{r}` is not an AWS region like us-east-1"),
            );
            continue;
        }
        match sessions.get(u) {
            Some(s) if !s.legacy => {
                cx.error(
                    url.span(),
                    format!("sso_start_url `{u}` is also the name of an [sso_session]: write sso_session = \"{u}\" instead"),
                );
                continue;
            }
            Some(s) if s.region != *r => {
                let first = users
                    .get(u)
                    .and_then(|(_, ps)| ps.first())
                    .cloned()
                    .unwrap_or_default();
                cx.error(
                    region.span(),
                    format!(
                        "sso_region `{r}` differs from `{}` of profile `{first}`, which has the same sso_start_url: one start URL is one sign-in, in one region",
                        s.region
                    ),
                );
                continue;
            }
            Some(_) => {}
            None => {
                sessions.insert(
                    u.clone(),
                    SsoSession {
                        name: u.clone(),
                        start_url: u.clone(),
                        region: r.clone(),
                        registration_scopes: Vec::new(),
                        endpoint_url: None,
                        legacy: true,
                    },
                );
            }
        }
        users
            .entry(u.clone())
            .or_insert_with(|| (url.span(), Vec::new()))
            .1
            .push(name.get_ref().clone());
    }
    suggest_sso_sessions(cx, users, sessions);
}

/// For each start URL of the older form (`users`: the span of its first `sso_start_url` and
/// its profiles), a warning suggesting the `sso_session` form, with what to write.
fn suggest_sso_sessions(
    cx: &mut Ctx<'_>,
    users: BTreeMap<String, (Range<usize>, Vec<String>)>,
    sessions: &BTreeMap<String, SsoSession>,
) {
    for (url, (span, profiles)) in users {
        let region = sessions
            .get(&url)
            .map(|s| s.region.clone())
            .unwrap_or_default();
        let session = suggested_session_name(&url, sessions);
        let (who, each) = match profiles.as_slice() {
            [one] => (
                format!("profile `{one}` uses"),
                format!("in [profile.{}]", crate::config::toml_key(one)),
            ),
            many => (
                format!(
                    "profiles {} use",
                    many.iter()
                        .map(|p| format!("`{p}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                "in each of those profiles".to_string(),
            ),
        };
        cx.warn(
            span,
            format!(
                "{who} the older per-profile SSO form, to which AWS issues no refresh token: a \
                 human signs in again each time its access token expires. An sso_session is \
                 renewed without one: add [sso_session.{session}] with sso_start_url = \"{url}\" \
                 and sso_region = \"{region}\", and {each} write sso_session = \"{session}\" in \
                 place of sso_start_url and sso_region (one sign-in follows: its token is cached \
                 under the session's name)"
            ),
        );
    }
}

/// A name for the `[sso_session]` suggested to replace the older form: the first label of the
/// start URL's host (`https://my-portal.awsapps.com/start` -> `my-portal`), else `corp`, made
/// unique among `sessions`.
fn suggested_session_name(url: &str, sessions: &BTreeMap<String, SsoSession>) -> String {
    let host = url
        .split_once("://")
        .map_or(url, |(_, r)| r)
        .split(['/', '?', '#', ':', '.'])
        .next()
        .unwrap_or("");
    let base: String = host
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    let base = if base.is_empty() {
        "corp".to_string()
    } else {
        base
    };
    let mut name = base.clone();
    let mut n = 2;
    while sessions.contains_key(&name) {
        name = format!("{base}-{n}");
        n += 1;
    }
    name
}

fn url_opt(cx: &mut Ctx<'_>, v: &Option<Spanned<String>>) -> Option<String> {
    let v = v.as_ref()?;
    if is_url(v.get_ref()) {
        Some(v.get_ref().trim_end_matches('/').to_string())
    } else {
        cx.error(
            v.span(),
            format!("endpoint_url `{}` is not an http(s) URL", v.get_ref()),
        );
        None
    }
}

/// Every key a `[profile.NAME]` table can hold, in a fixed order (a unit test keeps it equal to
/// the keys the source table reads, plus `region` and `endpoint_url`).
const PROFILE_KEYS: [&str; 23] = [
    "sso_session",
    "sso_account_id",
    "sso_role_name",
    "sso_start_url",
    "sso_region",
    "source_profile",
    "role_arn",
    "role_session_name",
    "duration_seconds",
    "external_id",
    "get_session_token",
    "mfa_serial",
    "mfa_command",
    "web_identity_token_file",
    "credential_process",
    "trust_anchor_arn",
    "profile_arn",
    "certificate",
    "private_key",
    "intermediates",
    "login_session",
    "region",
    "endpoint_url",
];

/// The keys of a profile that were set, with their spans, in [`PROFILE_KEYS`] order.
fn present_keys(p: &RawProfile) -> Vec<(&'static str, Range<usize>)> {
    let mut keys = Vec::new();
    macro_rules! key {
        ($($f:ident),*) => {$(
            if let Some(v) = &p.$f { keys.push((stringify!($f), v.span())); }
        )*};
    }
    key!(
        sso_session,
        sso_account_id,
        sso_role_name,
        sso_start_url,
        sso_region,
        source_profile,
        role_arn,
        role_session_name,
        duration_seconds,
        external_id,
        get_session_token,
        mfa_serial,
        mfa_command,
        web_identity_token_file,
        credential_process,
        trust_anchor_arn,
        profile_arn,
        certificate,
        private_key,
        intermediates,
        login_session,
        region,
        endpoint_url
    );
    debug_assert!(keys.iter().all(|(k, _)| PROFILE_KEYS.contains(k)));
    keys
}

fn profiles(
    cx: &mut Ctx<'_>,
    raw: &BTreeMap<Spanned<String>, Spanned<RawProfile>>,
    sessions: &BTreeMap<String, SsoSession>,
) -> BTreeMap<String, Profile> {
    let mut out = BTreeMap::new();
    for (name, p) in raw {
        let before = cx.diags.len();
        if let Some(source) = profile(cx, name, p.get_ref(), raw, sessions) {
            if cx.diags[before..]
                .iter()
                .all(|d| d.severity != Severity::Error)
            {
                let body = p.get_ref();
                out.insert(
                    name.get_ref().clone(),
                    Profile {
                        name: name.get_ref().clone(),
                        source,
                        region: body.region.as_ref().map(|r| r.get_ref().clone()),
                        endpoint_url: body
                            .endpoint_url
                            .as_ref()
                            .map(|u| u.get_ref().trim_end_matches('/').to_string()),
                    },
                );
            }
        }
    }
    source_cycles(cx, raw);
    out
}

/// With `[server]`, profile names an SDK can reach at `/profiles/NAME`: a client builds the
/// URL from the name as it is (botocore's urllib3 drops `.` and `..` segments, turns a `%` not
/// followed by two hex digits into `%25`, and `/` makes another path), so a name with `%` or
/// `/`, or named `.` or `..`, would be served to nobody; refused where it is named.
fn served_names(cx: &mut Ctx<'_>, profiles: &BTreeMap<Spanned<String>, Spanned<RawProfile>>) {
    for name in profiles.keys() {
        let n = name.get_ref();
        let why = if n == "." || n == ".." {
            Some(format!("named `{n}`"))
        } else {
            n.chars()
                .find(|c| matches!(c, '%' | '/'))
                .map(|c| format!("with a `{c}`"))
        };
        if let Some(why) = why {
            cx.error(
                name.span(),
                format!(
                    "profile `{n}`: [server] serves a profile at /profiles/NAME, and a name {why} \
                     cannot be reached there (SDKs put the name in the URL as it is); rename it"
                ),
            );
        }
    }
}

fn profile(
    cx: &mut Ctx<'_>,
    name: &Spanned<String>,
    p: &RawProfile,
    all: &BTreeMap<Spanned<String>, Spanned<RawProfile>>,
    sessions: &BTreeMap<String, SsoSession>,
) -> Option<Source> {
    let pname = name.get_ref();
    if pname.is_empty() || !is_identifier(pname) {
        cx.error(
            name.span(),
            format!("`{pname}` is not a profile name the AWS SDKs accept (letters, digits and _-/.%@:+)"),
        );
    }
    if pname == "DEFAULT" {
        cx.error(
            name.span(),
            "a profile cannot be named `DEFAULT`: botocore and the AWS CLI (Python's configparser) read a [DEFAULT] section as defaults for every other profile, not as a profile; choose another name (`default` is the default profile)",
        );
    }
    if let Some(r) = &p.region {
        if !is_region(r.get_ref()) {
            cx.error(
                r.span(),
                format!(
                    "region `{}` is not an AWS region like us-east-1",
                    r.get_ref()
                ),
            );
        }
    }
    url_opt(cx, &p.endpoint_url);

    // Which sources does this profile name? Exactly one is allowed.
    let sources = source_table::sources_named(p);
    let kind = match sources.as_slice() {
        [] => {
            cx.error(name.span(), source_table::no_source(pname));
            return None;
        }
        [(kind, _)] => *kind,
        [(first, _), (second, span), ..] => {
            cx.error(
                span.clone(),
                format!(
                    "profile `{pname}` has two sources, {} and {}; a profile takes exactly one",
                    first.name(),
                    second.name()
                ),
            );
            return None;
        }
    };
    if let Some(g) = &p.get_session_token {
        if !*g.get_ref() && kind != SourceKind::SessionToken {
            cx.error(
                g.span(),
                "get_session_token = false has no effect here; remove it",
            );
        }
    }
    for (key, span) in present_keys(p) {
        if key != "region" && key != "endpoint_url" && !source_table::def(kind).keys.contains(&key)
        {
            cx.error(
                span,
                format!("`{key}` does not apply to a {} profile", kind.name()),
            );
        }
    }

    let lookup = Lookup {
        all,
        sessions,
        mfa: mfa(cx, p),
    };
    let r = ProfileInput { name, pname, p };
    (source_table::def(kind).build)(cx, &r, &lookup)
}

/// What every per-source check reads: the profile's name (with its span) and raw keys.
struct ProfileInput<'a> {
    name: &'a Spanned<String>,
    pname: &'a str,
    p: &'a RawProfile,
}

impl ProfileInput<'_> {
    fn duration(&self, cx: &mut Ctx<'_>, max: i64) -> Option<u32> {
        let d = self.p.duration_seconds.as_ref()?;
        if (900..=max).contains(d.get_ref()) {
            Some(*d.get_ref() as u32)
        } else {
            cx.error(
                d.span(),
                format!("duration_seconds must be between 900 and {max}"),
            );
            None
        }
    }

    fn session_name(&self, cx: &mut Ctx<'_>) -> String {
        match &self.p.role_session_name {
            Some(s) if is_session_name(s.get_ref()) => s.get_ref().clone(),
            Some(s) => {
                cx.error(
                    s.span(),
                    "role_session_name must be 2 to 64 characters of letters, digits and +=,.@_-",
                );
                String::new()
            }
            None => default_session_name(self.pname),
        }
    }

    fn role_arn(&self, cx: &mut Ctx<'_>) -> String {
        match &self.p.role_arn {
            Some(r) => {
                if let Err(e) = check_role_arn(r.get_ref()) {
                    cx.error(r.span(), e);
                }
                r.get_ref().clone()
            }
            None => String::new(),
        }
    }

    fn source_profile(&self, cx: &mut Ctx<'_>, what: &str) -> Option<String> {
        let pname = self.pname;
        match &self.p.source_profile {
            None => {
                cx.error(
                    self.name.span(),
                    format!("profile `{pname}` needs source_profile for {what}"),
                );
                None
            }
            Some(s) if s.get_ref() == pname => {
                cx.error(
                    s.span(),
                    format!("profile `{pname}` cannot be its own source_profile"),
                );
                None
            }
            Some(s) if s.get_ref().is_empty() || !is_identifier(s.get_ref()) => {
                cx.error(
                    s.span(),
                    format!("`{}` is not a valid profile name", s.get_ref()),
                );
                None
            }
            Some(s) => Some(s.get_ref().clone()),
        }
    }
}

fn sso_source(
    cx: &mut Ctx<'_>,
    r: &ProfileInput<'_>,
    sessions: &BTreeMap<String, SsoSession>,
) -> Source {
    let pname = r.pname;
    let session = sso_session_of(cx, r, sessions);
    let account_id = match &r.p.sso_account_id {
        None => {
            cx.error(
                r.name.span(),
                format!("profile `{pname}` needs sso_account_id"),
            );
            String::new()
        }
        Some(a) if !is_account_id(a.get_ref()) => {
            cx.error(
                a.span(),
                format!(
                    "sso_account_id `{}` is not a 12-digit AWS account id",
                    a.get_ref()
                ),
            );
            String::new()
        }
        Some(a) => a.get_ref().clone(),
    };
    let role_name = match &r.p.sso_role_name {
        None => {
            cx.error(
                r.name.span(),
                format!("profile `{pname}` needs sso_role_name"),
            );
            String::new()
        }
        Some(r)
            if r.get_ref().is_empty()
                || !r
                    .get_ref()
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c)) =>
        {
            cx.error(
                r.span(),
                format!("sso_role_name `{}` is not a role name", r.get_ref()),
            );
            String::new()
        }
        Some(r) => r.get_ref().clone(),
    };
    Source::Sso {
        session,
        account_id,
        role_name,
    }
}

/// The name of the session an SSO profile signs in with (`sso_session`, or the older form's
/// start URL), or an error and an empty name.
fn sso_session_of(
    cx: &mut Ctx<'_>,
    r: &ProfileInput<'_>,
    sessions: &BTreeMap<String, SsoSession>,
) -> String {
    let pname = r.pname;
    match &r.p.sso_session {
        // The older per-profile form: its sign-in is named by its start URL.
        None if r.p.sso_start_url.is_some() || r.p.sso_region.is_some() => {
            match (&r.p.sso_start_url, &r.p.sso_region) {
                (Some(u), Some(_)) => sessions
                    .get(u.get_ref())
                    .filter(|s| s.legacy)
                    .map(|s| s.name.clone())
                    .unwrap_or_default(),
                (u, _) => {
                    let missing = if u.is_none() {
                        "sso_start_url"
                    } else {
                        "sso_region"
                    };
                    cx.error(
                        r.name.span(),
                        format!(
                            "profile `{pname}` needs {missing} too (the older per-profile SSO form sets sso_start_url and sso_region), or sso_session in their place"
                        ),
                    );
                    String::new()
                }
            }
        }
        None => {
            cx.error(
                r.name.span(),
                format!(
                    "profile `{pname}` needs sso_session (the name of an [sso_session.NAME] table), or sso_start_url and sso_region (the older per-profile form)"
                ),
            );
            String::new()
        }
        Some(s) if !sessions.contains_key(s.get_ref()) => {
            cx.error(
                s.span(),
                format!(
                    "sso_session `{}` is not defined: add [sso_session.{}]",
                    s.get_ref(),
                    s.get_ref()
                ),
            );
            String::new()
        }
        Some(s) => {
            same_as_session(cx, r, sessions.get(s.get_ref()));
            s.get_ref().clone()
        }
    }
}

/// `sso_start_url` and `sso_region` beside `sso_session` must agree with the session's, as
/// botocore requires ("The value for sso_region is inconsistent between profile and
/// sso-session"): they are accepted then, and refused otherwise.
fn same_as_session(cx: &mut Ctx<'_>, r: &ProfileInput<'_>, session: Option<&SsoSession>) {
    let Some(session) = session else {
        return;
    };
    let keys = [
        ("sso_start_url", &r.p.sso_start_url, &session.start_url),
        ("sso_region", &r.p.sso_region, &session.region),
    ];
    for (key, value, want) in keys {
        if let Some(v) = value.as_ref().filter(|v| v.get_ref() != want) {
            cx.error(
                v.span(),
                format!(
                    "{key} `{}` differs from `{want}` of sso_session `{}` (botocore and the AWS CLI refuse such a profile); remove it here, the session's is used",
                    v.get_ref(),
                    session.name
                ),
            );
        }
    }
}

fn assume_role_source(
    cx: &mut Ctx<'_>,
    r: &ProfileInput<'_>,
    all: &BTreeMap<Spanned<String>, Spanned<RawProfile>>,
    mfa: Option<Mfa>,
) -> Source {
    let role_arn = r.role_arn(cx);
    let role_session_name = r.session_name(cx);
    let duration_seconds = r.duration(cx, 43_200);
    let source_profile = r.source_profile(cx, "role_arn (or set web_identity_token_file)");
    if let (Some(src), Some(d)) = (&source_profile, duration_seconds) {
        // The one rule: a source that gives role-session credentials.
        let chained = all
                .get(src.as_str())
                .is_some_and(|sp| {
                    matches!(source_table::sources_named(sp.get_ref()).as_slice(), [(k, _)] if k.gives_role_session())
                });
        if chained && d > ROLE_CHAINING_MAX_SECONDS {
            if let Some(ds) = &r.p.duration_seconds {
                cx.warn(
                        ds.span(),
                        format!(
                            "`{src}` gives role credentials, so this is role chaining, which AWS caps at 1 hour; awscredd will ask for 3600 seconds, not {d}"
                        ),
                    );
            }
        }
    }
    let external_id = r.p.external_id.as_ref().and_then(|e| {
        let v = e.get_ref();
        if (2..=1224).contains(&v.len())
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || "+=,.@:/_-".contains(c))
        {
            Some(v.clone())
        } else {
            cx.error(
                e.span(),
                "external_id must be 2 to 1224 characters of letters, digits and +=,.@:/_-",
            );
            None
        }
    });
    Source::AssumeRole {
        source_profile: source_profile.unwrap_or_default(),
        role_arn,
        role_session_name,
        duration_seconds,
        external_id,
        mfa,
    }
}

fn session_token_source(
    cx: &mut Ctx<'_>,
    r: &ProfileInput<'_>,
    all: &BTreeMap<Spanned<String>, Spanned<RawProfile>>,
    mfa: Option<Mfa>,
) -> Source {
    let source_profile = r.source_profile(cx, "get_session_token");
    if let Some(src) = &source_profile {
        if all.contains_key(src.as_str()) {
            if let Some(s) = &r.p.source_profile {
                cx.error(
                        s.span(),
                        format!(
                            "get_session_token needs long-term IAM user keys, but `{src}` is a managed profile with temporary credentials; name a profile with static keys in the credentials file"
                        ),
                    );
            }
        }
    }
    Source::SessionToken {
        source_profile: source_profile.unwrap_or_default(),
        duration_seconds: r.duration(cx, 129_600),
        mfa,
    }
}

fn web_identity_source(cx: &mut Ctx<'_>, r: &ProfileInput<'_>) -> Source {
    let pname = r.pname;
    if r.p.role_arn.is_none() {
        cx.error(
            r.name.span(),
            format!("profile `{pname}` needs role_arn with web_identity_token_file"),
        );
    }
    let role_arn = r.role_arn(cx);
    let token_file =
        r.p.web_identity_token_file
            .as_ref()
            .and_then(|f| cx.path(f, "web_identity_token_file"))
            .unwrap_or_default();
    Source::WebIdentity {
        role_arn,
        token_file,
        role_session_name: r.session_name(cx),
        duration_seconds: r.duration(cx, 43_200),
    }
}

fn process_source(cx: &mut Ctx<'_>, r: &ProfileInput<'_>) -> Option<Source> {
    let c = r.p.credential_process.as_ref()?;
    if c.get_ref().trim().is_empty() {
        cx.error(c.span(), "credential_process must not be empty");
    } else if shlex::split(c.get_ref()).is_none() {
        cx.error(c.span(), "credential_process has an unterminated quote");
    }
    Some(Source::Process {
        command: c.get_ref().clone(),
    })
}

/// The role session name used when none is configured.
pub(super) fn default_session_name(profile: &str) -> String {
    let mut s: String = format!("awscredd-{profile}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "+=,.@_-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    s.truncate(64);
    s
}

fn mfa(cx: &mut Ctx<'_>, p: &RawProfile) -> Option<Mfa> {
    match (&p.mfa_serial, &p.mfa_command) {
        (None, None) => None,
        (None, Some(c)) => {
            cx.error(
                c.span(),
                "mfa_command needs mfa_serial (the MFA device's ARN or serial number)",
            );
            None
        }
        (Some(s), None) => {
            cx.error(
                s.span(),
                "mfa_serial needs mfa_command: awscredd runs unattended and cannot prompt for a code",
            );
            None
        }
        (Some(s), Some(c)) => {
            let serial = s.get_ref();
            if !(9..=256).contains(&serial.len())
                || !serial
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || "+=/:,.@_-".contains(ch))
            {
                cx.error(
                    s.span(),
                    format!("mfa_serial `{serial}` is not an MFA device ARN or serial number"),
                );
            }
            let command = command_list(cx, c, "mfa_command")?;
            Some(Mfa {
                serial: serial.clone(),
                command,
            })
        }
    }
}

/// Reports each `source_profile` cycle among managed profiles once. Linear: every profile is
/// walked from at most once (a walk stops at a profile an earlier walk went through).
fn source_cycles(cx: &mut Ctx<'_>, raw: &BTreeMap<Spanned<String>, Spanned<RawProfile>>) {
    // A profile's managed source, with the span of its `source_profile`.
    let next = |n: &str| -> Option<&Spanned<String>> {
        let src = raw.get(n)?.get_ref().source_profile.as_ref()?;
        raw.contains_key(src.get_ref().as_str()).then_some(src)
    };
    let mut done: BTreeSet<&str> = BTreeSet::new();
    for start in raw.keys() {
        let mut path: Vec<&str> = vec![start.get_ref().as_str()];
        let mut cur: &str = start.get_ref();
        while let Some(src) = next(cur) {
            let s: &str = src.get_ref();
            if s == cur || done.contains(s) {
                break; // its own source (reported where the profile is checked), or walked
            }
            if let Some(i) = path.iter().position(|p| *p == s) {
                let cycle = &path[i..];
                let mut shown: Vec<&str> = cycle.to_vec();
                shown.push(s);
                cx.error(
                    src.span(),
                    format!("source_profile cycle: {}", shown.join(" -> ")),
                );
                break;
            }
            path.push(s);
            cur = s;
        }
        done.extend(path);
    }
}

/// Files that are never an output: the config, the state file, the SSO token cache, and lock
/// files (writing credentials there destroys what awscredd itself needs).
struct Reserved {
    files: Vec<(PathBuf, &'static str)>,
    folders: Vec<(PathBuf, &'static str)>,
    state_file: PathBuf,
}

impl Reserved {
    fn new(cx: &Ctx<'_>, config: &Path, daemon: Option<&Daemon>) -> Self {
        let mut files = vec![(config.to_path_buf(), "the config file")];
        let mut folders = Vec::new();
        let state_file = daemon.map_or_else(PathBuf::new, |d| d.state_dir.join("state.json"));
        if let Some(d) = daemon {
            let state = d.state_dir.join("state.json");
            files.push((
                crate::files::lock::lock_path_for(&state),
                "the state file's lock",
            ));
            files.push((state, "the state file"));
            folders.push((d.state_dir.clone(), "awscredd's state folder"));
        }
        if let Some(home) = paths::home_dir(cx.env, cfg!(windows)) {
            folders.push((
                PathBuf::from(home).join(".aws").join("sso").join("cache"),
                "the SSO token cache",
            ));
        }
        Reserved {
            files,
            folders,
            state_file,
        }
    }

    /// Why `path` cannot be an output (`purpose` "credentials") or the server's token file,
    /// if it cannot.
    fn conflict(&self, path: &Path, others: &[Output], purpose: &str) -> Option<String> {
        let name = path.file_name()?.to_string_lossy().into_owned();
        for (f, what) in &self.files {
            if same_file(path, f) {
                return Some(format!(
                    "`{}` is {what}, not a place for {purpose}",
                    path.display()
                ));
            }
        }
        for (dir, what) in &self.folders {
            let inside = path.parent().is_some_and(|p| same_file(p, dir));
            if inside && (what.contains("SSO") || name == "state.json" || name.ends_with(".lock")) {
                return Some(format!(
                    "`{}` is in {what} (`{}`), not a place for {purpose}",
                    path.display(),
                    dir.display()
                ));
            }
        }
        for o in others {
            if same_file(path, &crate::files::lock::lock_path_for(&o.path)) {
                return Some(format!(
                    "`{}` is the lock file of the [[output]] `{}`",
                    path.display(),
                    o.path.display()
                ));
            }
            if same_file(&o.path, &crate::files::lock::lock_path_for(path)) {
                return Some(format!(
                    "the [[output]] `{}` is the lock file of `{}`",
                    o.path.display(),
                    path.display()
                ));
            }
        }
        None
    }
}

/// Whether two paths name the same file: the same after removing `.` and `..`; when both
/// exist, the same file on disk (a hard link, a symlinked folder); else the same name in the
/// same folder once the folders' links are resolved (a file not written yet).
fn same_file(a: &Path, b: &Path) -> bool {
    if lexical(a) == lexical(b) {
        return true;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(x), Ok(y)) = (std::fs::metadata(a), std::fs::metadata(b)) {
            return x.dev() == y.dev() && x.ino() == y.ino();
        }
    }
    resolved(a) == resolved(b)
}

/// Whether two outputs write one file: [`same_file`], but with a last symlink followed only as
/// the store follows it (a link planted in a folder others can write is not followed by a
/// privileged awscredd: it is a file of its own, refused when written).
fn same_output_file(a: &Path, b: &Path) -> bool {
    let written = |p: &Path| match crate::files::Target::open(p, false) {
        Ok(t) => t.resolved().to_path_buf(),
        Err(_) => resolved(p),
    };
    let (a, b) = (written(a), written(b));
    if lexical(&a) == lexical(&b) {
        return true;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(x), Ok(y)) = (std::fs::symlink_metadata(&a), std::fs::symlink_metadata(&b)) {
            return x.dev() == y.dev() && x.ino() == y.ino();
        }
    }
    resolved(&a) == resolved(&b)
}

fn lexical(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// `path` with the links of its deepest existing folder resolved, the rest (folders still to
/// create, the file name) kept as written.
fn resolved(path: &Path) -> PathBuf {
    let path = lexical(path);
    let mut rest: Vec<&std::ffi::OsStr> = Vec::new();
    let mut dir = path.parent();
    if let Some(name) = path.file_name() {
        rest.push(name);
    }
    while let Some(d) = dir.filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(real) = std::fs::canonicalize(d) {
            return rest.iter().rev().fold(real, |p, part| p.join(part));
        }
        match d.file_name() {
            Some(name) => rest.push(name),
            None => break,
        }
        dir = d.parent();
    }
    path
}

fn outputs(
    cx: &mut Ctx<'_>,
    raw: &[Spanned<RawOutput>],
    profiles: &BTreeMap<Spanned<String>, Spanned<RawProfile>>,
    reserved: &Reserved,
) -> Vec<Output> {
    // Only some profiles validated (see `super::scope`): those are what an output holds by
    // default, and the file's others may be named too.
    let all: Vec<String> = profiles.keys().map(|k| k.get_ref().clone()).collect();
    let known = cx.known;
    let defined = |p: &str| known.map_or_else(|| profiles.contains_key(p), |k| k(p));
    if raw.is_empty() {
        return default_output(cx, all, reserved);
    }
    let mut out: Vec<Output> = Vec::new();
    for o in raw {
        let body = o.get_ref();
        let Some(path) = cx.path(&body.path, "path") else {
            continue;
        };
        if let Some(x) = out.iter().find(|x| same_output_file(&x.path, &path)) {
            let also = if x.path == path {
                String::new()
            } else {
                format!(" (`{}`, the same file)", x.path.display())
            };
            cx.error(
                body.path.span(),
                format!(
                    "`{}` is already an [[output]]{also}; list all its profiles in one",
                    path.display()
                ),
            );
            continue;
        }
        if let Some(why) = reserved.conflict(&path, &out, "credentials") {
            cx.error(body.path.span(), why);
            continue;
        }
        let selected = selected_profiles(cx, body, &all, &defined);
        let mode = output_mode(cx, body);
        let owner = body.owner.as_ref().and_then(|v| user_ref(cx, v, "owner"));
        let group = body.group.as_ref().and_then(|v| user_ref(cx, v, "group"));
        let format = output_format(cx, body, &selected);
        let on_change = body.on_change.as_ref().and_then(|v| hook_command(cx, v));
        out.push(Output {
            path,
            profiles: selected,
            mode,
            owner,
            group,
            format,
            state_file: reserved.state_file.clone(),
            on_change,
        });
    }
    out
}

/// Without `[[output]]`: the file the AWS SDKs read by default, with every profile.
fn default_output(cx: &mut Ctx<'_>, all: Vec<String>, reserved: &Reserved) -> Vec<Output> {
    match paths::aws_credentials_file(cx.env, cfg!(windows)) {
        Some(p) => vec![Output {
            path: PathBuf::from(p),
            profiles: all,
            mode: 0o600,
            owner: None,
            group: None,
            format: Format::Ini,
            state_file: reserved.state_file.clone(),
            on_change: None,
        }],
        None => {
            cx.diags.push(Diagnostic {
                severity: Severity::Error,
                span: None,
                message: "no [[output]] and no home folder for ~/.aws/credentials: add [[output]] path = \"...\"".into(),
            });
            Vec::new()
        }
    }
}

/// The profiles an output holds: its `profiles` list (each defined, none twice), else all.
fn selected_profiles(
    cx: &mut Ctx<'_>,
    body: &RawOutput,
    all: &[String],
    defined: &dyn Fn(&str) -> bool,
) -> Vec<String> {
    match &body.profiles {
        None => all.to_vec(),
        Some(list) => {
            let mut sel: Vec<String> = Vec::new();
            let mut seen: BTreeSet<&str> = BTreeSet::new();
            for p in list.get_ref() {
                if !defined(p.get_ref()) {
                    cx.error(
                        p.span(),
                        format!(
                            "profile `{}` is not defined: add [profile.{}]",
                            p.get_ref(),
                            p.get_ref()
                        ),
                    );
                } else if !seen.insert(p.get_ref().as_str()) {
                    cx.error(
                        p.span(),
                        format!("profile `{}` is listed twice", p.get_ref()),
                    );
                } else {
                    sel.push(p.get_ref().clone());
                }
            }
            sel
        }
    }
}

/// An output's `mode` (0600 unless set; a warning for access by others).
fn output_mode(cx: &mut Ctx<'_>, body: &RawOutput) -> u32 {
    match &body.mode {
        None => 0o600,
        Some(m) => match parse_mode(m.get_ref()) {
            Ok(mode) => {
                if let Some(w) = world_access(mode) {
                    cx.warn(m.span(), w);
                }
                mode
            }
            Err(e) => {
                cx.error(m.span(), e);
                0o600
            }
        },
    }
}

/// `format` of an output, with `launch_profiles`: the formats other than `ini` hold exactly
/// one profile, named in `profiles`; `launch_profiles` belongs to `launch-settings` only.
fn output_format(cx: &mut Ctx<'_>, body: &RawOutput, selected: &[String]) -> Format {
    let format = match &body.format {
        None => Format::Ini,
        Some(f) => match Format::parse(f.get_ref()) {
            Some(format) => format,
            None => {
                cx.error(
                    f.span(),
                    format!(
                        "unknown format `{}`: use one of {}",
                        f.get_ref(),
                        Format::choices()
                    ),
                );
                return Format::Ini;
            }
        },
    };
    if format.holds_one_profile() {
        let one = body
            .profiles
            .as_ref()
            .is_some_and(|p| p.get_ref().len() == 1);
        if !one || selected.len() != 1 {
            let span = body
                .profiles
                .as_ref()
                .map_or_else(|| body.path.span(), |p| p.span());
            cx.error(
                span,
                format!(
                    "an output with format = \"{}\" holds one profile: name it in `profiles = [\"...\"]`",
                    format.name()
                ),
            );
        }
    }
    let Some(list) = &body.launch_profiles else {
        return format;
    };
    let Format::LaunchSettings(mut options) = format else {
        cx.error(
            list.span(),
            "`launch_profiles` applies only to format = \"launch-settings\"",
        );
        return format;
    };
    let names: Vec<String> = list.get_ref().iter().map(|n| n.get_ref().clone()).collect();
    if names.is_empty() {
        cx.error(list.span(), "`launch_profiles` is empty: name at least one, or leave it out for every launch profile");
    }
    options.launch_profiles = Some(names);
    Format::LaunchSettings(options)
}

/// `"0600"`-style octal permissions. The owner must be able to read and write the file.
fn parse_mode(s: &str) -> Result<u32, String> {
    let digits = s.strip_prefix("0o").unwrap_or(s);
    let mode =
        if (3..=4).contains(&digits.len()) && digits.chars().all(|c| ('0'..='7').contains(&c)) {
            u32::from_str_radix(digits, 8).map_err(|e| e.to_string())?
        } else {
            return Err(format!(
                "mode `{s}` is not an octal file mode like \"0600\""
            ));
        };
    if mode > 0o777 {
        return Err(format!(
            "mode `{s}`: setuid, setgid and sticky bits are not allowed"
        ));
    }
    if mode & 0o600 != 0o600 {
        return Err(format!(
            "mode `{s}` must let the owner read and write the file (0600 at least)"
        ));
    }
    Ok(mode)
}

/// A warning for a mode that lets every user on the machine at the credentials.
fn world_access(mode: u32) -> Option<String> {
    let what = match (mode & 0o004 != 0, mode & 0o002 != 0) {
        (true, true) => "readable and writable",
        (true, false) => "readable",
        (false, true) => "writable",
        (false, false) => return None,
    };
    Some(format!(
        "mode {mode:04o} makes the credentials {what} by every user on this machine; use \"0600\", or \"0640\" with group = the readers' group"
    ))
}

fn user_ref(cx: &mut Ctx<'_>, v: &Spanned<toml::Value>, what: &str) -> Option<UserRef> {
    if cfg!(windows) {
        cx.error(v.span(), format!("{what} is not supported on Windows"));
        return None;
    }
    // chown takes (uid_t)-1, 4294967295, as "leave it unchanged": no user or group has it.
    let not_an_id = |cx: &mut Ctx<'_>, id: u32| {
        cx.error(
            v.span(),
            format!("{what} {id} is not a real id: to chown it means -1, \"leave unchanged\"; give the numeric id of a {} (`{}`)",
                if what == "owner" { "user" } else { "group" },
                if what == "owner" { "id -u NAME" } else { "getent group NAME" }),
        );
        None
    };
    match v.get_ref() {
        toml::Value::Integer(i) if *i == i64::from(u32::MAX) => not_an_id(cx, u32::MAX),
        toml::Value::Integer(i) if (0..i64::from(u32::MAX)).contains(i) => {
            Some(UserRef::Id(*i as u32))
        }
        toml::Value::String(s) if !s.is_empty() => match s.parse::<u32>() {
            Ok(u32::MAX) => not_an_id(cx, u32::MAX),
            Ok(id) => Some(UserRef::Id(id)),
            Err(_) => {
                if let Some(w) = static_nss_warning(what, s) {
                    cx.warn(v.span(), w);
                }
                Some(UserRef::Name(s.clone()))
            }
        },
        _ => {
            cx.error(v.span(), format!("{what} must be a name or a numeric id"));
            None
        }
    }
}

/// A static binary (the RPM's, the container's) carries its own glibc: it reads names from
/// `/etc/passwd` and `/etc/group` itself, but for any other NSS source it would load the host's
/// module, built for another glibc — on RHEL, SSSD's `libnss_sss`, which `authselect` lists
/// first. Such a name may not resolve, or worse; a numeric id always works.
fn static_nss_warning(what: &str, name: &str) -> Option<String> {
    if !cfg!(all(unix, target_feature = "crt-static")) {
        return None;
    }
    let db = if what == "owner" { "passwd" } else { "group" };
    let nsswitch = std::fs::read_to_string("/etc/nsswitch.conf").ok()?;
    nss_lists_sss(&nsswitch, db).then(|| {
        let id = if db == "passwd" {
            "id -u"
        } else {
            "getent group"
        };
        format!(
            "{what} `{name}` is a name, and /etc/nsswitch.conf looks up {db} in SSSD (`sss`): \
             this static awscredd cannot use the host's libnss_sss, so the name may not \
             resolve; use the numeric id (`{id} {name}`)"
        )
    })
}

/// Whether `nsswitch.conf` text lists `sss` as a source for the database `db`.
fn nss_lists_sss(nsswitch: &str, db: &str) -> bool {
    nsswitch
        .lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .filter_map(|l| l.split_once(':'))
        .any(|(k, sources)| k.trim() == db && sources.split_whitespace().any(|s| s == "sss"))
}

fn server(
    cx: &mut Ctx<'_>,
    raw: Option<Spanned<RawServer>>,
    outputs: &[Output],
    reserved: &Reserved,
) -> Option<super::Server> {
    let raw = raw?;
    let body = raw.get_ref();
    let listen = listen_address(cx, "[server]", raw.span(), body.listen.as_ref(), "9911")?;
    if !listen.ip().is_loopback() {
        if let Some(l) = &body.listen {
            cx.warn(
                l.span(),
                "the credentials server listens beyond loopback; anyone who can reach it and read the token file gets credentials",
            );
        }
    }
    let token_file = match &body.token_file {
        Some(t) => cx.path(t, "token_file")?,
        None => outputs
            .first()
            .and_then(|o| o.path.parent())
            .map(|d| d.join("awscredd-server-token"))?,
    };
    // The token is written over whatever is there: never over credentials or awscredd's files.
    let span = body.token_file.as_ref().map_or(raw.span(), |t| t.span());
    if let Some(o) = outputs.iter().find(|o| same_file(&o.path, &token_file)) {
        cx.error(
            span,
            format!(
                "token_file `{}` is the [[output]] `{}`: the token would replace its credentials; give the token a file of its own",
                token_file.display(),
                o.path.display()
            ),
        );
        return None;
    }
    if let Some(why) = reserved.conflict(&token_file, outputs, "the server token") {
        cx.error(span, format!("token_file: {why}"));
        return None;
    }
    Some(Server { listen, token_file })
}

/// `[metrics]`: its own address, never the `[server]`'s (one listener per address).
fn metrics(
    cx: &mut Ctx<'_>,
    raw: Option<Spanned<RawMetrics>>,
    server: Option<&Server>,
) -> Option<MetricsEndpoint> {
    let raw = raw?;
    let body = raw.get_ref();
    let listen = listen_address(cx, "[metrics]", raw.span(), body.listen.as_ref(), "9464")?;
    if let (Some(server), Some(l)) = (server, &body.listen) {
        if server.listen == listen {
            cx.error(
                l.span(),
                format!(
                    "listen {listen} is the [server]'s address too: give [metrics] its own port"
                ),
            );
            return None;
        }
    }
    Some(MetricsEndpoint { listen })
}

/// `[imds]`: a loopback address of its own (no token guards the credentials: anyone who can
/// reach it gets them, as on EC2), and a profile that is managed and written to an output
/// (its credentials are served from there).
fn imds(
    cx: &mut Ctx<'_>,
    raw: Option<Spanned<RawImds>>,
    profiles: &BTreeMap<Spanned<String>, Spanned<RawProfile>>,
    outputs: &[Output],
    taken: &[(&str, std::net::SocketAddr)],
) -> Option<Imds> {
    let raw = raw?;
    let body = raw.get_ref();
    let listen = listen_address(cx, "[imds]", raw.span(), body.listen.as_ref(), "9911");
    if let (Some(a), Some(l)) = (listen, &body.listen) {
        if !a.ip().is_loopback() {
            cx.error(
                l.span(),
                format!("listen {a} is not a loopback address: [imds] serves credentials without a secret, so it listens on 127.0.0.1 or [::1] only"),
            );
        } else if let Some((section, _)) = taken.iter().find(|(_, t)| *t == a) {
            cx.error(
                l.span(),
                format!("listen {a} is the {section}'s address too: give [imds] its own port"),
            );
        }
    }
    let Some(profile) = &body.profile else {
        cx.error(
            raw.span(),
            "[imds] needs profile = \"NAME\" (the managed profile it serves)",
        );
        return None;
    };
    let name = profile.get_ref();
    if !profiles.keys().any(|k| k.get_ref() == name) {
        cx.error(
            profile.span(),
            format!(
                "profile `{name}` is not a managed profile: add a [profile.{name}] or name one"
            ),
        );
        return None;
    }
    if !outputs.iter().any(|o| o.profiles.iter().any(|p| p == name)) {
        cx.error(
            profile.span(),
            format!("profile `{name}` is not written to any [[output]]: [imds] serves the credentials kept there"),
        );
        return None;
    }
    let has_region = profiles
        .iter()
        .find(|(k, _)| k.get_ref() == name)
        .is_some_and(|(_, p)| p.get_ref().region.is_some());
    if !has_region {
        cx.warn(
            profile.span(),
            format!("profile `{name}` has no region: /latest/meta-data/placement/region answers 404, so programs that take their region from there need AWS_REGION"),
        );
    }
    let listen = listen.filter(|a| a.ip().is_loopback() && !taken.iter().any(|(_, t)| t == a))?;
    Some(Imds {
        listen,
        profile: name.clone(),
    })
}

/// The `listen` of a `section` (`[server]`, `[metrics]`): required, and an `IP:PORT`.
fn listen_address(
    cx: &mut Ctx<'_>,
    section: &str,
    section_span: Range<usize>,
    listen: Option<&Spanned<String>>,
    example_port: &str,
) -> Option<std::net::SocketAddr> {
    let Some(l) = listen else {
        cx.error(
            section_span,
            format!("{section} needs listen = \"127.0.0.1:PORT\""),
        );
        return None;
    };
    match parse_listen(l.get_ref()) {
        Some(a) => Some(a),
        None => {
            cx.error(
                l.span(),
                format!(
                    "listen `{}` is not an address like 127.0.0.1:{example_port} \
                     (or localhost:{example_port}, or a port alone for loopback)",
                    l.get_ref()
                ),
            );
            None
        }
    }
}

/// An address to listen on: `IP:PORT` (`[::1]:PORT`), `localhost:PORT`, or a port alone
/// (`PORT`, `:PORT`), which is loopback: what is not told otherwise listens on 127.0.0.1.
pub(super) fn parse_listen(text: &str) -> Option<std::net::SocketAddr> {
    let loopback = |port: &str| {
        port.parse::<u16>()
            .ok()
            .map(|p| std::net::SocketAddr::from(([127, 0, 0, 1], p)))
    };
    if let Ok(a) = text.parse::<std::net::SocketAddr>() {
        return Some(a);
    }
    if let Some(port) = text
        .strip_prefix("localhost:")
        .or_else(|| text.strip_prefix(':'))
    {
        return loopback(port);
    }
    loopback(text)
}

#[cfg(test)]
mod listen_tests {
    use super::parse_listen;

    #[test]
    fn listen_takes_an_address_localhost_or_a_port_alone() {
        let lo = |p: u16| Some(std::net::SocketAddr::from(([127, 0, 0, 1], p)));
        assert_eq!(parse_listen("127.0.0.1:9911"), lo(9911));
        assert_eq!(parse_listen("localhost:9911"), lo(9911));
        assert_eq!(parse_listen("9911"), lo(9911));
        assert_eq!(parse_listen(":9911"), lo(9911));
        assert_eq!(
            parse_listen("0.0.0.0:9464"),
            Some(std::net::SocketAddr::from(([0, 0, 0, 0], 9464)))
        );
        assert!(parse_listen("[::1]:80").is_some_and(|a| a.ip().is_loopback()));
        for bad in [
            "",
            "localhost",
            "example.com:80",
            "127.0.0.1",
            "99999",
            "x:1",
        ] {
            assert_eq!(parse_listen(bad), None, "{bad}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert!(is_region("us-east-1") && is_region("us-gov-west-1") && is_region("eu-central-2"));
        assert!(!is_region("useast1") && !is_region("US-EAST-1") && !is_region("us-east-"));
        assert!(check_role_arn("arn:aws:iam::123456789012:role/path/Name").is_ok());
        assert!(check_role_arn("arn:aws-us-gov:iam::123456789012:role/x").is_ok());
        assert!(check_role_arn("arn:aws:iam::12345678901:role/x").is_err());
        assert!(check_role_arn("arn:aws:iam::123456789012:user/x").is_err());
        assert_eq!(parse_mode("0600"), Ok(0o600));
        assert_eq!(parse_mode("640"), Ok(0o640));
        assert!(
            parse_mode("0400").is_err() && parse_mode("4755").is_err() && parse_mode("rw").is_err()
        );
        assert_eq!(default_session_name("dev"), "awscredd-dev");
        assert_eq!(default_session_name("a/b"), "awscredd-a-b");
    }

    #[test]
    fn nsswitch_lists_sss_only_as_a_source_of_that_database() {
        // RHEL's authselect profile "sssd".
        let rhel = "# Generated by authselect\npasswd:     sss files systemd\ngroup:      sss files systemd\nhosts:      files dns myhostname\n";
        assert!(nss_lists_sss(rhel, "passwd") && nss_lists_sss(rhel, "group"));
        let cases = [
            ("passwd: files sss\n", "passwd", true),
            ("passwd: files [NOTFOUND=return] sss\n", "passwd", true),
            ("passwd: files systemd\ngroup: files sss\n", "passwd", false),
            ("passwd: files systemd\ngroup: files sss\n", "group", true),
            ("passwd: files # sss\n", "passwd", false),
            ("#passwd: sss\npasswd: files\n", "passwd", false),
            ("shadow: sss\n", "passwd", false),
            ("passwd: sssd\n", "passwd", false),
            ("", "passwd", false),
        ];
        for (text, db, want) in cases {
            assert_eq!(nss_lists_sss(text, db), want, "{text:?} {db}");
        }
    }
}
