//! The awscredd config file (TOML), parsed and validated as a whole.
//!
//! Parsing keeps the span of every key and value ([`raw`]); [`validate`] then checks types,
//! formats, references and `source_profile` chains, collecting every problem as a
//! [`Diagnostic`] that prints as `FILE:LINE:COL: message`. A [`Config`] exists only when there
//! were no errors; warnings travel with it.

mod duration;
pub mod import;
mod pasted;
mod raw;
mod unknown;
mod validate;

pub use duration::parse_duration;

use crate::paths::{self, Env};
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A validated config.
#[derive(Clone, Debug)]
pub struct Config {
    /// The file it was read from.
    pub path: PathBuf,
    pub daemon: Daemon,
    pub outputs: Vec<Output>,
    pub sso_sessions: BTreeMap<String, SsoSession>,
    pub profiles: BTreeMap<String, Profile>,
    pub server: Option<Server>,
    /// The optional `[metrics]` listener: `/metrics`, `/healthz`, `/readyz`.
    pub metrics: Option<MetricsEndpoint>,
}

#[derive(Clone, Debug)]
pub struct Daemon {
    pub refresh_before: Duration,
    pub state_dir: PathBuf,
    pub login_command: Option<Vec<String>>,
    /// At most this many sources are asked at once in a pass (the SDK clients also slow down
    /// by themselves when AWS throttles: adaptive retry).
    pub max_concurrent_fetches: usize,
}

/// One credentials file to keep.
#[derive(Clone, Debug)]
pub struct Output {
    pub path: PathBuf,
    /// The managed profiles written to this file, in config order.
    pub profiles: Vec<String>,
    /// Permission bits of the file (Unix); default `0o600`.
    pub mode: u32,
    pub owner: Option<UserRef>,
    pub group: Option<UserRef>,
    /// What the file holds (default: the credentials file), with that format's options.
    pub format: crate::formats::Format,
    /// The state file, whose record says when credentials expire for formats that do not hold
    /// an expiry themselves (`launch-settings`).
    pub state_file: PathBuf,
    /// Run (an argument list, no shell) after a write that changed credentials in this file.
    pub on_change: Option<Vec<String>>,
}

/// A user or group given by name or numeric id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UserRef {
    Name(String),
    Id(u32),
}

impl fmt::Display for UserRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UserRef::Name(n) => f.write_str(n),
            UserRef::Id(i) => write!(f, "{i}"),
        }
    }
}

/// An `[sso_session.NAME]`, or the sign-in that profiles of the older per-profile SSO form
/// share (see [`SsoSession::legacy`]).
#[derive(Clone, Debug)]
pub struct SsoSession {
    /// The table's name; for the older form, the start URL.
    pub name: String,
    pub start_url: String,
    pub region: String,
    /// Empty for the older form (the AWS CLI registers it without scopes).
    pub registration_scopes: Vec<String>,
    pub endpoint_url: Option<String>,
    /// The older per-profile form (`sso_start_url` and `sso_region` in the profile, no
    /// `sso_session`): named by its start URL, so that its token is the AWS CLI's
    /// `<sha1 of the start URL>.json`; AWS issues it no refresh token, so it is never renewed,
    /// only signed in again.
    pub legacy: bool,
}

/// A managed profile: one source and where its requests go.
#[derive(Clone, Debug)]
pub struct Profile {
    pub name: String,
    pub source: Source,
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
}

/// Where a profile's credentials come from: exactly one per profile.
#[derive(Clone, Debug)]
pub enum Source {
    /// IAM Identity Center role credentials.
    Sso {
        session: String,
        account_id: String,
        role_name: String,
    },
    /// STS AssumeRole from another profile's credentials.
    AssumeRole {
        source_profile: String,
        role_arn: String,
        role_session_name: String,
        duration_seconds: Option<u32>,
        external_id: Option<String>,
        mfa: Option<Mfa>,
    },
    /// STS GetSessionToken from long-term keys.
    SessionToken {
        source_profile: String,
        duration_seconds: Option<u32>,
        mfa: Option<Mfa>,
    },
    /// STS AssumeRoleWithWebIdentity from a token file.
    WebIdentity {
        role_arn: String,
        token_file: PathBuf,
        role_session_name: String,
        duration_seconds: Option<u32>,
    },
    /// A command that prints `credential_process` JSON.
    Process { command: String },
}

/// An MFA device and the command that prints its current code.
#[derive(Clone, Debug)]
pub struct Mfa {
    pub serial: String,
    pub command: Vec<String>,
}

impl Source {
    /// The name used in `status --json` and in logs.
    /// The source's name as `status` and the state file show it.
    pub fn kind(&self) -> &'static str {
        self.source_kind().name()
    }

    /// Which kind of source this is.
    pub fn source_kind(&self) -> SourceKind {
        match self {
            Source::Sso { .. } => SourceKind::Sso,
            Source::AssumeRole { .. } => SourceKind::AssumeRole,
            Source::SessionToken { .. } => SourceKind::SessionToken,
            Source::WebIdentity { .. } => SourceKind::WebIdentity,
            Source::Process { .. } => SourceKind::Process,
        }
    }

    /// Whether this source gives role-session credentials: assuming a role with them is role
    /// chaining, which AWS caps at [`ROLE_CHAINING_MAX_SECONDS`].
    pub fn gives_role_session(&self) -> bool {
        self.source_kind().gives_role_session()
    }

    /// The profile this source takes its credentials from, if any.
    pub fn source_profile(&self) -> Option<&str> {
        match self {
            Source::AssumeRole { source_profile, .. }
            | Source::SessionToken { source_profile, .. } => Some(source_profile),
            _ => None,
        }
    }
}

/// The kinds of source; every match on it is exhaustive, so a new source is one more variant
/// that the compiler makes the config, validation, fetch, `status` and state handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceKind {
    Sso,
    AssumeRole,
    SessionToken,
    WebIdentity,
    Process,
}

impl SourceKind {
    /// The name `status --json` and the state file use (`source`).
    pub fn name(self) -> &'static str {
        match self {
            SourceKind::Sso => "sso",
            SourceKind::AssumeRole => "assume_role",
            SourceKind::SessionToken => "get_session_token",
            SourceKind::WebIdentity => "web_identity",
            SourceKind::Process => "credential_process",
        }
    }

    /// Role-session credentials (SSO role credentials, an assumed role, web identity):
    /// assuming a role with them is role chaining.
    pub fn gives_role_session(self) -> bool {
        match self {
            SourceKind::Sso | SourceKind::AssumeRole | SourceKind::WebIdentity => true,
            SourceKind::SessionToken | SourceKind::Process => false,
        }
    }
}

/// AWS caps a role-chaining session (a role assumed with role-session credentials) at one
/// hour, and refuses a longer request.
pub const ROLE_CHAINING_MAX_SECONDS: u32 = 3600;

impl Config {
    /// Whether `profile` (managed) gives role-session credentials.
    pub fn gives_role_session(&self, profile: &str) -> bool {
        self.profiles
            .get(profile)
            .is_some_and(|p| p.source.gives_role_session())
    }

    /// The SSO session at the root of a profile's `source_profile` chain, if any: the one
    /// walk of a chain (it ends at a profile without a managed source, or after as many
    /// steps as there are profiles: validation refuses cycles).
    pub fn root_sso_session(&self, profile: &str) -> Option<&str> {
        self.chain(profile).find_map(|p| match &p.source {
            Source::Sso { session, .. } => Some(session.as_str()),
            _ => None,
        })
    }

    /// `profile`, then its `source_profile`, and so on, as far as they are managed.
    pub fn chain<'a>(&'a self, profile: &str) -> impl Iterator<Item = &'a Profile> + 'a {
        let mut cur = self.profiles.get(profile);
        let mut left = self.profiles.len() + 1;
        std::iter::from_fn(move || {
            if left == 0 {
                return None;
            }
            left -= 1;
            let p = cur?;
            cur = p.source.source_profile().and_then(|s| self.profiles.get(s));
            Some(p)
        })
    }
}

#[derive(Clone, Debug)]
pub struct Server {
    pub listen: SocketAddr,
    pub token_file: PathBuf,
}

/// Where `run` serves `/metrics`, `/healthz` and `/readyz` (no token: nothing secret there).
#[derive(Clone, Debug)]
pub struct MetricsEndpoint {
    pub listen: SocketAddr,
}

impl Config {
    /// The outputs that hold `profile`.
    pub fn outputs_of<'a>(&'a self, profile: &'a str) -> impl Iterator<Item = &'a Output> + 'a {
        self.outputs
            .iter()
            .filter(move |o| o.profiles.iter().any(|p| p == profile))
    }
}

/// How bad a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem in the config, with the byte range it points at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub span: Option<Range<usize>>,
    pub message: String,
}

/// Diagnostics of one config file, ready to print as `FILE:LINE:COL: message` lines.
#[derive(Clone, Debug)]
pub struct Report {
    pub file: PathBuf,
    pub text: String,
    pub diagnostics: Vec<Diagnostic>,
    /// Some checks could not run past these errors: more may be reported once they are fixed.
    pub incomplete: bool,
}

impl Report {
    pub fn has_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error)
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        (line, before[line_start..].chars().count() + 1)
    }

    /// Each diagnostic as one line.
    pub fn lines(&self) -> Vec<String> {
        self.diagnostics
            .iter()
            .map(|d| {
                let tag = match d.severity {
                    Severity::Error => "",
                    Severity::Warning => "warning: ",
                };
                match &d.span {
                    Some(s) => {
                        let (line, col) = self.line_col(s.start);
                        format!("{}:{line}:{col}: {tag}{}", self.file.display(), d.message)
                    }
                    None => format!("{}: {tag}{}", self.file.display(), d.message),
                }
            })
            .chain(self.incomplete.then(|| {
                format!(
                    "{}: note: more problems may be reported after these are fixed",
                    self.file.display()
                )
            }))
            .collect()
    }

    /// Where the `path` of the `index`th `[[output]]` of a valid config is (a config's outputs
    /// are its `[[output]]` tables, in order).
    pub fn output_path_span(&self, index: usize) -> Option<Range<usize>> {
        let raw: raw::RawConfig = toml::from_str(&self.text).ok()?;
        raw.output.get(index).map(|o| o.get_ref().path.span())
    }

    /// Where the program of the `on_change` of the `index`th `[[output]]` of a valid config is.
    pub fn output_hook_span(&self, index: usize) -> Option<Range<usize>> {
        let raw: raw::RawConfig = toml::from_str(&self.text).ok()?;
        let o = raw.output.get(index)?.get_ref();
        o.on_change
            .as_ref()
            .map(|v| v.get_ref().first().map_or(v.span(), |p| p.span()))
    }

    /// Where the `owner` and the `group` of the `index`th `[[output]]` of a valid config are.
    pub fn output_owner_spans(&self, index: usize) -> [Option<Range<usize>>; 2] {
        let raw: Option<raw::RawConfig> = toml::from_str(&self.text).ok();
        let o = raw
            .as_ref()
            .and_then(|r| r.output.get(index))
            .map(|o| o.get_ref());
        [
            o.and_then(|o| o.owner.as_ref()).map(|v| v.span()),
            o.and_then(|o| o.group.as_ref()).map(|v| v.span()),
        ]
    }

    /// Orders the diagnostics as they appear in the file (those of the whole file first).
    pub fn sort(&mut self) {
        self.diagnostics
            .sort_by_key(|d| d.span.as_ref().map(|s| (s.start, s.end)));
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for l in self.lines() {
            writeln!(f, "{l}")?;
        }
        Ok(())
    }
}

/// Why no config could be loaded.
#[derive(Debug)]
pub enum LoadError {
    /// No file in the search path, or the named file cannot be read.
    NotFound(String),
    /// The file has errors.
    Invalid(Report),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::NotFound(m) => f.write_str(m),
            LoadError::Invalid(r) => write!(f, "{}", r.to_string().trim_end()),
        }
    }
}

impl std::error::Error for LoadError {}

/// Finds the config: `explicit` (from `--config` or `AWSCREDD_CONFIG`), else the first existing
/// file of the default search path.
pub fn locate(explicit: Option<&Path>, env: Env<'_>) -> Result<PathBuf, LoadError> {
    if let Some(p) = explicit {
        // No shell expands `~` inside quotes or in systemd's Environment=: a leading `~/` is
        // expanded here.
        return match p.to_str() {
            Some(s) if s.starts_with('~') => match other_users_home(s, cfg!(windows)) {
                Some(why) => Err(LoadError::NotFound(format!(
                    "--config/AWSCREDD_CONFIG {why}"
                ))),
                None => paths::expand_tilde(s, env, cfg!(windows))
                    .map(PathBuf::from)
                    .map_err(LoadError::NotFound),
            },
            _ => Ok(p.to_path_buf()),
        };
    }
    let candidates = paths::default_config_candidates(env, cfg!(windows));
    for c in &candidates {
        if c.is_file() {
            return Ok(c.clone());
        }
    }
    let tried: Vec<String> = candidates.iter().map(|c| c.display().to_string()).collect();
    Err(LoadError::NotFound(format!(
        "no config file found (looked in {}); pass --config PATH or set AWSCREDD_CONFIG; start from config/example.toml (annotated) and run `awscredd check`",
        tried.join(", ")
    )))
}

/// Why a path that starts with `~NAME` (another user's home, which awscredd does not expand)
/// is refused; `None` for `~` and `~/...`.
pub fn other_users_home(path: &str, windows: bool) -> Option<String> {
    let rest = path.strip_prefix('~')?;
    if rest.is_empty() || rest.starts_with('/') || (windows && rest.starts_with('\\')) {
        return None;
    }
    let name = rest.split(['/', '\\']).next().unwrap_or(rest);
    Some(format!(
        "`{path}`: `~{name}` (a user's home by name) is not expanded; write the full path, or `~/` for this user's home"
    ))
}

/// A TOML key as written in a table header or before `=`: bare when it can be
/// (`dev`, `prod-admin`), else quoted (`"prod.admin"`, `"dev@corp"`).
pub fn toml_key(name: &str) -> String {
    let bare = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        name.to_string()
    } else {
        toml_string(name)
    }
}

/// A TOML string value, quoted and escaped.
pub fn toml_string(value: &str) -> String {
    toml::Value::String(value.to_string()).to_string()
}

/// The largest config file read.
pub const CONFIG_MAX: u64 = 16 * 1024 * 1024;

/// Reads and validates the config at `path`. Warnings come back with the config.
pub fn load(path: &Path, env: Env<'_>) -> Result<(Config, Report), LoadError> {
    let bytes = match crate::files::read_regular(path, CONFIG_MAX) {
        Ok(Some(b)) => b,
        Ok(None) => {
            return Err(LoadError::NotFound(format!(
                "cannot read config `{}`: it does not exist",
                path.display()
            )))
        }
        Err(e) => {
            return Err(LoadError::NotFound(format!(
                "cannot read config `{}`: {e}",
                path.display()
            )))
        }
    };
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(_) => {
            return Err(LoadError::Invalid(Report {
                file: path.to_path_buf(),
                text: String::new(),
                diagnostics: vec![Diagnostic {
                    severity: Severity::Error,
                    span: None,
                    message: "the config file is not valid UTF-8".into(),
                }],
                incomplete: false,
            }))
        }
    };
    let (config, mut report) = parse_str(&text, path, env);
    if let Some(w) = permissive_mode_warning(path) {
        report.diagnostics.push(w);
        report.sort();
    }
    match config {
        Some(c) if !report.has_errors() => Ok((c, report)),
        _ => Err(LoadError::Invalid(report)),
    }
}

/// Parses and validates config text; `path` names the file in messages and anchors relative
/// paths (they are relative to the config file's folder).
pub fn parse_str(text: &str, path: &Path, env: Env<'_>) -> (Option<Config>, Report) {
    let mut report = Report {
        file: path.to_path_buf(),
        text: text.to_string(),
        diagnostics: Vec::new(),
        incomplete: false,
    };
    let Some((raw, blanked)) = unknown::parse_all::<raw::RawConfig>(text, &mut report.diagnostics)
    else {
        report.incomplete = true;
        report.sort();
        return (None, report);
    };
    let base = absolute_dir(path);
    let mut checked = Vec::new();
    let config = validate::validate(raw, path, &base, env, &mut checked);
    // Keys blanked out for an unknown name or a wrong type are missing from what was checked:
    // what the checks say about their table as a whole ("needs sso_account_id", "has no
    // source", at its header) may follow from that, so it waits for a fix.
    let tainted: Vec<Range<usize>> = blanked
        .iter()
        .map(|b| unknown::header_of(text, b.start))
        .collect();
    for d in checked {
        let follow_on = match &d.span {
            Some(s) => tainted.iter().any(|t| t.contains(&s.start)),
            // The profiles blanked out are not missing.
            None => !blanked.is_empty() && d.message.starts_with(validate::NO_PROFILES),
        };
        if !follow_on {
            report.diagnostics.push(d);
        } else if d.severity == Severity::Error {
            report.incomplete = true;
        }
    }
    report.sort();
    if report.has_errors() || !blanked.is_empty() {
        return (None, report);
    }
    (config, report)
}

/// The config file's folder as an absolute path without `.` or `..` parts.
fn absolute_dir(path: &Path) -> PathBuf {
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    let dir = parent.unwrap_or_else(|| Path::new("."));
    let abs = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    clean(&abs)
}

/// Removes `.` and `..` parts of a path lexically.
pub fn clean(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(unix)]
fn permissive_mode_warning(path: &Path) -> Option<Diagnostic> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode();
    (mode & 0o022 != 0).then(|| Diagnostic {
        severity: Severity::Warning,
        span: None,
        message: format!(
            "the config file is writable by others (mode {:04o}); anyone who can edit it can \
             run commands as awscredd through credential_process",
            mode & 0o7777
        ),
    })
}

#[cfg(not(unix))]
fn permissive_mode_warning(_path: &Path) -> Option<Diagnostic> {
    None
}

#[cfg(test)]
mod tests;
