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
mod scope;
mod unknown;
mod validate;

pub use duration::parse_duration;
pub use validate::login_arn_problem;

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
    /// Shared, as the profiles and the index are: the daemon, each pass and its sources hold
    /// the same config, and with 10,000 profiles a copy is megabytes.
    pub outputs: std::sync::Arc<Vec<Output>>,
    pub sso_sessions: BTreeMap<String, SsoSession>,
    pub profiles: std::sync::Arc<BTreeMap<String, Profile>>,
    pub server: Option<Server>,
    /// The optional `[metrics]` listener: `/metrics`, `/healthz`, `/readyz`.
    pub metrics: Option<MetricsEndpoint>,
    /// The optional `[imds]` endpoint: one profile the way the EC2 instance metadata service
    /// (IMDSv2) serves role credentials.
    pub imds: Option<Imds>,
    /// Built once from the above, so that per-profile questions cost no scan of every profile.
    index: std::sync::Arc<Index>,
}

/// Per profile: the outputs that hold it, and whether another profile takes it as its
/// `source_profile`.
#[derive(Clone, Debug, Default)]
struct Index {
    outputs: std::collections::HashMap<String, Vec<usize>>,
    sources: std::collections::HashSet<String>,
}

impl Index {
    fn new(outputs: &[Output], profiles: &BTreeMap<String, Profile>) -> Self {
        let mut index = Index::default();
        for (i, o) in outputs.iter().enumerate() {
            for p in &o.profiles {
                index.outputs.entry(p.clone()).or_default().push(i);
            }
        }
        index.sources = profiles
            .values()
            .filter_map(|p| p.source.source_profile())
            .map(str::to_string)
            .collect();
        index
    }
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
    /// The AWS CLI's `aws login` sign-in of this identity (an IAM or STS ARN), from its login
    /// cache.
    LoginSession { arn: String },
    /// IAM Roles Anywhere `CreateSession` with an X.509 certificate and its private key.
    RolesAnywhere(RolesAnywhereSource),
}

/// A `trust_anchor_arn` profile's keys, checked (the files are read at each refresh).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RolesAnywhereSource {
    pub certificate: PathBuf,
    pub private_key: PathBuf,
    pub intermediates: Option<PathBuf>,
    pub trust_anchor_arn: String,
    pub profile_arn: String,
    pub role_arn: String,
    pub duration_seconds: Option<u32>,
    /// Sent only when configured: a Roles Anywhere profile refuses one unless it accepts it.
    pub role_session_name: Option<String>,
}

impl RolesAnywhereSource {
    /// The region of the trust anchor ARN (`arn:aws:rolesanywhere:REGION:...`), where
    /// `CreateSession` is asked.
    pub fn region(&self) -> &str {
        self.trust_anchor_arn.split(':').nth(3).unwrap_or_default()
    }
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
            Source::RolesAnywhere(_) => SourceKind::RolesAnywhere,
            Source::LoginSession { .. } => SourceKind::LoginSession,
        }
    }

    /// Whether this source gives role-session credentials: assuming a role with them is role
    /// chaining, which AWS caps at [`ROLE_CHAINING_MAX_SECONDS`].
    pub fn gives_role_session(&self) -> bool {
        self.source_kind().gives_role_session()
    }

    /// The account the credentials belong to, as the config says it: the SSO account, the
    /// account of the role ARN (also a Roles Anywhere role's), of the identity an `aws login`
    /// signed in, or of the MFA device of a `get_session_token`; `None` when only the source
    /// knows (a `credential_process` prints it, see
    /// [`crate::store::state::ProfileState::account_id`]).
    pub fn account_id(&self) -> Option<String> {
        let of_arn = |arn: &str| {
            let account = arn.split(':').nth(4)?;
            (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()))
                .then(|| account.to_string())
        };
        match self {
            Source::Sso { account_id, .. } => Some(account_id.clone()),
            Source::AssumeRole { role_arn, .. } | Source::WebIdentity { role_arn, .. } => {
                of_arn(role_arn)
            }
            Source::SessionToken { mfa, .. } => mfa.as_ref().and_then(|m| of_arn(&m.serial)),
            Source::RolesAnywhere(ra) => of_arn(&ra.role_arn),
            // The identity `aws login` signed in: its ARN names the account.
            Source::LoginSession { arn } => of_arn(arn),
            Source::Process { .. } => None,
        }
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
    RolesAnywhere,
    LoginSession,
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
            SourceKind::RolesAnywhere => "roles_anywhere",
            SourceKind::LoginSession => "login_session",
        }
    }

    /// Role-session credentials (SSO role credentials, an assumed role, web identity, Roles
    /// Anywhere's `CreateSession`, the session of an `aws login` sign-in): assuming a role with
    /// them is role chaining.
    pub fn gives_role_session(self) -> bool {
        match self {
            SourceKind::Sso
            | SourceKind::AssumeRole
            | SourceKind::WebIdentity
            | SourceKind::RolesAnywhere
            | SourceKind::LoginSession => true,
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

    /// The `aws login` sign-in (its ARN) at the root of a profile's `source_profile` chain,
    /// if any.
    pub fn root_login_session(&self, profile: &str) -> Option<&str> {
        self.chain(profile).find_map(|p| match &p.source {
            Source::LoginSession { arn } => Some(arn.as_str()),
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

/// Where `run` serves one managed profile the way IMDSv2 does (loopback only).
#[derive(Clone, Debug)]
pub struct Imds {
    pub listen: SocketAddr,
    /// The managed profile served, under its own name as the role name; written to at least
    /// one output (its credentials are read from there).
    pub profile: String,
}

impl Config {
    /// A config of these parts (the index built here).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        path: PathBuf,
        daemon: Daemon,
        outputs: Vec<Output>,
        sso_sessions: BTreeMap<String, SsoSession>,
        profiles: BTreeMap<String, Profile>,
        server: Option<Server>,
        metrics: Option<MetricsEndpoint>,
        imds: Option<Imds>,
    ) -> Self {
        let index = Index::new(&outputs, &profiles);
        Config {
            path,
            daemon,
            outputs: std::sync::Arc::new(outputs),
            sso_sessions,
            profiles: std::sync::Arc::new(profiles),
            server,
            metrics,
            imds,
            index: std::sync::Arc::new(index),
        }
    }

    /// The outputs that hold `profile`, in config order.
    pub fn outputs_of<'a>(&'a self, profile: &str) -> impl Iterator<Item = &'a Output> + 'a {
        self.output_indexes(profile)
            .iter()
            .filter_map(|&i| self.outputs.get(i))
    }

    /// The indexes (in `outputs`) of the outputs that hold `profile`, in config order.
    pub fn output_indexes(&self, profile: &str) -> &[usize] {
        self.index.outputs.get(profile).map_or(&[], Vec::as_slice)
    }

    /// Whether some profile takes `profile` as its `source_profile`.
    pub fn is_source(&self, profile: &str) -> bool {
        self.index.sources.contains(profile)
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
        self.line_col_in(&line_starts(&self.text), offset)
    }

    /// [`Self::line_col`] with the text's line starts (see [`line_starts`]) found once.
    fn line_col_in(&self, starts: &[usize], offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        // The last line starting at or before the offset (the first starts at 0).
        let line = starts.partition_point(|&s| s <= offset).max(1);
        let line_start = starts.get(line - 1).copied().unwrap_or(0);
        let col = self
            .text
            .get(line_start..offset)
            .map_or(0, |t| t.chars().count());
        (line, col + 1)
    }

    /// Each diagnostic as one line.
    pub fn lines(&self) -> Vec<String> {
        // Found once for all: a report of thousands of problems costs one pass over the text.
        let starts = if self.diagnostics.iter().any(|d| d.span.is_some()) {
            line_starts(&self.text)
        } else {
            Vec::new()
        };
        let file = crate::text::shown(self.file.display());
        self.diagnostics
            .iter()
            .map(|d| {
                let tag = match d.severity {
                    Severity::Error => "",
                    Severity::Warning => "warning: ",
                };
                // One line each, whatever a name or a path in it holds.
                let message = crate::text::escape_controls(&d.message);
                match &d.span {
                    Some(s) => {
                        let (line, col) = self.line_col_in(&starts, s.start);
                        format!("{file}:{line}:{col}: {tag}{message}")
                    }
                    None => format!("{file}: {tag}{message}"),
                }
            })
            .chain(self.incomplete.then(|| {
                format!("{file}: note: more problems may be reported after these are fixed")
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

    /// Where `key` of profile `name` of a valid config is (Roles Anywhere's file keys), else
    /// where the profile's name is.
    pub fn profile_key_span(&self, name: &str, key: &str) -> Option<Range<usize>> {
        let raw: raw::RawConfig = toml::from_str(&self.text).ok()?;
        let (n, p) = raw.profile.iter().find(|(n, _)| n.get_ref() == name)?;
        let p = p.get_ref();
        let value = match key {
            "certificate" => &p.certificate,
            "private_key" => &p.private_key,
            "intermediates" => &p.intermediates,
            _ => &None,
        };
        Some(value.as_ref().map_or_else(|| n.span(), |v| v.span()))
    }

    /// Orders the diagnostics as they appear in the file (those of the whole file first).
    pub fn sort(&mut self) {
        self.diagnostics
            .sort_by_key(|d| d.span.as_ref().map(|s| (s.start, s.end)));
    }
}

/// The byte offset where each line of `text` starts (the first at 0).
fn line_starts(text: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect()
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
            LoadError::NotFound(m) => f.write_str(&crate::text::escape_controls(m)),
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
    let text = read_text(path)?;
    let (config, report) = parse_str(&text, path, env);
    finish(path, config, report)
}

/// [`load`] for one profile (`credential-process`): only `profile`, the profiles it takes
/// credentials from and the tables that are not profiles are parsed and validated (see
/// [`scope`]), so every error of those is reported, and nothing about other profiles. A
/// profile the file does not define, or a file the scan cannot be sure of, is loaded whole.
pub fn load_for_profile(
    path: &Path,
    env: Env<'_>,
    profile: &str,
) -> Result<(Config, Report), LoadError> {
    let text = read_text(path)?;
    let (config, report) = match scope::Tables::scan(&text).filter(|t| t.has(profile)) {
        None => parse_str(&text, path, env),
        Some(tables) => {
            let keep = tables.chain(&text, profile);
            let compact = tables.compact(&text, &keep);
            let defined = |name: &str| tables.has(name);
            let (config, mut report) = parse_str_with(&compact.text, path, env, Some(&defined));
            // What is said about the compact text points into the file.
            for d in &mut report.diagnostics {
                d.span = d.span.as_ref().map(|s| compact.span_to_file(s));
            }
            report.text = text;
            (config, report)
        }
    };
    finish(path, config, report)
}

/// The config file's text.
fn read_text(path: &Path) -> Result<String, LoadError> {
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
    String::from_utf8(bytes).map_err(|_| {
        LoadError::Invalid(Report {
            file: path.to_path_buf(),
            text: String::new(),
            diagnostics: vec![Diagnostic {
                severity: Severity::Error,
                span: None,
                message: "the config file is not valid UTF-8".into(),
            }],
            incomplete: false,
        })
    })
}

/// The config with its report, the file's mode checked; an error if the report has one.
fn finish(
    path: &Path,
    config: Option<Config>,
    mut report: Report,
) -> Result<(Config, Report), LoadError> {
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
    parse_str_with(text, path, env, None)
}

/// [`parse_str`]; with `known`, the text holds only some of the file's profiles, and `known`
/// tells whether the file defines a profile (what `[[output]] profiles` may name).
fn parse_str_with(
    text: &str,
    path: &Path,
    env: Env<'_>,
    known: Option<&dyn Fn(&str) -> bool>,
) -> (Option<Config>, Report) {
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
    let config = validate::validate(raw, path, &base, env, known, &mut checked);
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
