//! Converting `~/.aws/config` into an awscredd config (`awscredd init --from-aws-config`): a
//! pure function of the file's text.
//!
//! The file is read with the SDKs' parser ([`crate::profile_file`]: comments, odd spacing,
//! continuation and sub-properties, CRLF, `[default]`). Each `[sso-session]` and each profile
//! with a source awscredd knows becomes a table, under a comment naming the line it came from;
//! every profile that is not taken is listed with the reason. The result is validated as
//! `awscredd check` validates it: a table the checks refuse (a malformed role ARN, say) is left
//! out with their message as the reason, with the profiles that need it, so what is written
//! always passes.

use super::{parse_str, toml_key, toml_string, Severity};
use crate::paths::Env;
use crate::profile_file::precedence::{self, Shadow};
use crate::profile_file::{FileKind, ProfileFile, SectionName};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::ops::Range;
use std::path::Path;

/// What to convert, and how.
pub struct Request<'a> {
    /// The text of the AWS config file.
    pub text: &'a str,
    /// How comments and messages name that file (`~/.aws/config`).
    pub shown: &'a str,
    /// Only these profiles and those they chain from (`--profile`); empty: every one.
    pub only: &'a [String],
    /// The `[[output]] path` to write (`--output`); `None`: the default credentials file.
    pub output: Option<&'a str>,
    /// Where the config will be written (relative paths in it are relative to its folder).
    pub config_path: &'a Path,
    pub env: Env<'a>,
}

/// The config written, and what the user must know about it.
#[derive(Debug)]
pub struct Imported {
    pub toml: String,
    pub sessions: Vec<String>,
    pub profiles: Vec<String>,
    /// Profiles (and sessions) not taken, with the reason.
    pub skipped: Vec<Skipped>,
    /// Profiles read as sources, and what the checks say about the config written.
    pub notes: Vec<String>,
    /// Sections of the AWS config file that would still hide awscredd's keys from programs.
    pub shadows: Vec<Shadow>,
}

/// A section not taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// The header as written (`[profile ec2]`).
    pub header: String,
    pub line: usize,
    pub why: String,
}

/// Why nothing can be written.
#[derive(Debug, PartialEq, Eq)]
pub enum ImportError {
    /// The file is not one the SDKs read (1-based line).
    Parse { line: usize, message: String },
    /// A `--profile` that the file does not have.
    UnknownProfile(String),
    /// No profile could be taken.
    Nothing(Vec<Skipped>),
    /// The written config would not pass the checks for a reason no table explains.
    Invalid(String),
}

/// A section of the file: its first header, and its keys (later ones win, as in the SDKs).
#[derive(Clone, Debug)]
struct Section {
    header: String,
    line: usize,
    props: BTreeMap<String, String>,
    /// Keys in the order first written.
    order: Vec<String>,
}

impl Section {
    fn get(&self, key: &str) -> Option<&str> {
        self.props.get(key).map(String::as_str)
    }

    fn has(&self, key: &str) -> bool {
        self.props.contains_key(key)
    }
}

/// What a profile of the AWS config file is to awscredd.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    Sso {
        session: String,
    },
    Legacy,
    AssumeRole {
        source: String,
    },
    WebIdentity,
    Process,
    /// An `aws login` sign-in.
    LoginSession,
    /// Static keys: not managed; a source others may read from the credentials file.
    Static,
    Skip(String),
}

/// The keys awscredd takes, per kind, in the order they are written.
fn taken_keys(kind: &Kind) -> &'static [&'static str] {
    match kind {
        Kind::Sso { .. } => &["sso_session", "sso_account_id", "sso_role_name"],
        Kind::Legacy => &[
            "sso_start_url",
            "sso_region",
            "sso_account_id",
            "sso_role_name",
        ],
        Kind::AssumeRole { .. } => &[
            "role_arn",
            "source_profile",
            "role_session_name",
            "duration_seconds",
            "external_id",
        ],
        Kind::WebIdentity => &[
            "role_arn",
            "web_identity_token_file",
            "role_session_name",
            "duration_seconds",
        ],
        Kind::Process => &["credential_process"],
        Kind::LoginSession => &["login_session"],
        Kind::Static | Kind::Skip(_) => &[],
    }
}

/// Keys every managed profile takes.
const ANY_SOURCE: &[&str] = &["region", "endpoint_url"];
/// Keys of an `[sso-session]` awscredd takes.
const SESSION_KEYS: &[&str] = &["sso_start_url", "sso_region", "sso_registration_scopes"];

/// Converts `req.text`.
pub fn import(req: &Request<'_>) -> Result<Imported, ImportError> {
    let parsed = ProfileFile::parse(req.text).map_err(|e| ImportError::Parse {
        line: e.line,
        message: e.message,
    })?;
    let (sessions, profiles, mut skipped) = sections(&parsed);
    for name in req.only {
        if !profiles.contains_key(name) {
            return Err(ImportError::UnknownProfile(name.clone()));
        }
    }
    let mut kinds: BTreeMap<String, Kind> = profiles
        .iter()
        .map(|(n, s)| (n.clone(), kind_of(s, &sessions, req.shown)))
        .collect();
    resolve_chains(&profiles, &mut kinds);
    let all = All {
        sessions: &sessions,
        profiles: &profiles,
        kinds: &kinds,
    };
    let wanted = wanted(req.only, &all);
    let mut notes = unmanaged(req, &wanted, &all, &mut skipped);
    let mut take: Vec<String> = profiles
        .keys()
        .filter(|n| wanted.contains(*n) && kinds.get(*n).is_some_and(managed))
        .cloned()
        .collect();
    let mut take_sessions = sessions_taken(req.only, &take, &all, &mut skipped);
    drop_dependents(&mut take, &take_sessions, &kinds, &profiles, &mut skipped);
    let (toml, warnings) =
        check_until_clean(req, &all, &mut take, &mut take_sessions, &mut skipped)?;
    if take.is_empty() {
        return Err(ImportError::Nothing(skipped));
    }
    notes.extend(warnings);
    skipped.sort_by_key(|s| s.line);
    let taken: BTreeSet<&str> = take.iter().map(String::as_str).collect();
    let shadows = precedence::shadows(&parsed, &|n| taken.contains(n));
    Ok(Imported {
        toml,
        sessions: take_sessions,
        profiles: in_file_order(&profiles, take),
        skipped,
        notes,
        shadows,
    })
}

/// The sections of the file and what each profile is.
struct All<'a> {
    sessions: &'a BTreeMap<String, Section>,
    profiles: &'a BTreeMap<String, Section>,
    kinds: &'a BTreeMap<String, Kind>,
}

/// Whether awscredd manages a profile of this kind.
fn managed(k: &Kind) -> bool {
    !matches!(k, Kind::Static | Kind::Skip(_))
}

/// What to take: every profile, or the named ones and their sources.
fn wanted(only: &[String], all: &All<'_>) -> BTreeSet<String> {
    let mut wanted: BTreeSet<String> = BTreeSet::new();
    let mut todo: Vec<String> = if only.is_empty() {
        all.kinds.keys().cloned().collect()
    } else {
        only.to_vec()
    };
    while let Some(n) = todo.pop() {
        if !wanted.insert(n.clone()) {
            continue;
        }
        if let Some(Kind::AssumeRole { source }) = all.kinds.get(&n) {
            if all.profiles.contains_key(source) {
                todo.push(source.clone());
            }
        }
    }
    wanted
}

/// The wanted profiles awscredd does not manage: skipped, or a note for a static source of a
/// chain (and for a source profile that is not in the file).
fn unmanaged(
    req: &Request<'_>,
    wanted: &BTreeSet<String>,
    all: &All<'_>,
    skipped: &mut Vec<Skipped>,
) -> Vec<String> {
    let mut notes = Vec::new();
    let source_of = |n: &String| match all.kinds.get(n) {
        Some(Kind::AssumeRole { source }) => Some(source),
        _ => None,
    };
    for n in wanted {
        let (Some(section), Some(kind)) = (all.profiles.get(n), all.kinds.get(n)) else {
            continue;
        };
        let chained_from = wanted.iter().any(|o| source_of(o) == Some(n));
        let why = match kind {
            Kind::Static if chained_from => {
                notes.push(format!(
                    "{} ({}:{}) has static keys and is a source_profile: it stays unmanaged, and awscredd reads its keys from the credentials file the SDKs read ([{n}] in ~/.aws/credentials){}",
                    section.header,
                    req.shown,
                    section.line,
                    if section.has("aws_access_key_id") {
                        "; its keys are in the config file, so move aws_access_key_id and aws_secret_access_key there (the SDKs read both files, so programs keep working)"
                    } else {
                        ""
                    }
                ));
                continue;
            }
            Kind::Static => "static keys: nothing to refresh, programs use them as they are".into(),
            Kind::Skip(why) => why.clone(),
            _ => continue,
        };
        skipped.push(Skipped {
            header: section.header.clone(),
            line: section.line,
            why,
        });
    }
    for n in wanted {
        if let Some(source) = source_of(n) {
            if !all.profiles.contains_key(source) {
                notes.push(format!(
                    "profile `{n}`: its source_profile `{source}` is not in {}: awscredd reads its keys from the credentials file the SDKs read, as they do (`awscredd check` warns if they are not there)",
                    req.shown
                ));
            }
        }
    }
    notes
}

/// The sessions to take: every one (only those the taken profiles use with `--profile`);
/// those without a start URL and region are skipped.
fn sessions_taken(
    only: &[String],
    take: &[String],
    all: &All<'_>,
    skipped: &mut Vec<Skipped>,
) -> Vec<String> {
    let used: BTreeSet<&str> = take
        .iter()
        .filter_map(|n| match &all.kinds[n] {
            Kind::Sso { session } => Some(session.as_str()),
            _ => None,
        })
        .collect();
    let mut taken = Vec::new();
    for (name, s) in all.sessions {
        if !(only.is_empty() || used.contains(name.as_str())) {
            continue;
        }
        if session_ok(s) {
            taken.push(name.clone());
        } else {
            skipped.push(Skipped {
                header: s.header.clone(),
                line: s.line,
                why: "it needs sso_start_url and sso_region".into(),
            });
        }
    }
    taken
}

/// Writes the TOML, checks it, and leaves out what the checks refuse, until they pass: the
/// TOML and its warnings.
fn check_until_clean(
    req: &Request<'_>,
    all: &All<'_>,
    take: &mut Vec<String>,
    take_sessions: &mut Vec<String>,
    skipped: &mut Vec<Skipped>,
) -> Result<(String, Vec<String>), ImportError> {
    loop {
        let (toml, blocks) = render(
            req,
            all.sessions,
            take_sessions,
            all.profiles,
            all.kinds,
            take,
        );
        let (_, report) = parse_str(&toml, req.config_path, req.env);
        let errors: Vec<_> = report
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .collect();
        if errors.is_empty() {
            let warnings: Vec<String> = report
                .lines()
                .into_iter()
                .filter(|l| l.contains(": warning: "))
                .collect();
            return Ok((toml, warnings));
        }
        if take.is_empty() {
            return Err(ImportError::Nothing(std::mem::take(skipped)));
        }
        let mut dropped = false;
        for d in errors {
            let block = d
                .span
                .as_ref()
                .and_then(|s| blocks.iter().find(|(r, _)| r.contains(&s.start)));
            let Some((_, block)) = block else {
                return Err(ImportError::Invalid(report.to_string().trim_end().into()));
            };
            let (section, name, list) = match block {
                Block::Session(n) => (&all.sessions[n], n, &mut *take_sessions),
                Block::Profile(n) => (&all.profiles[n], n, &mut *take),
            };
            if let Some(i) = list.iter().position(|x| x == name) {
                list.remove(i);
                skipped.push(Skipped {
                    header: section.header.clone(),
                    line: section.line,
                    why: d.message.clone(),
                });
                dropped = true;
            }
        }
        if !dropped {
            return Err(ImportError::Invalid(report.to_string().trim_end().into()));
        }
        drop_dependents(take, take_sessions, all.kinds, all.profiles, skipped);
    }
}

fn in_file_order(profiles: &BTreeMap<String, Section>, mut names: Vec<String>) -> Vec<String> {
    names.sort_by_key(|n| profiles.get(n).map_or(0, |s| s.line));
    names
}

/// Leaves out the profiles whose session or source profile was left out, until none is left.
fn drop_dependents(
    take: &mut Vec<String>,
    sessions: &[String],
    kinds: &BTreeMap<String, Kind>,
    profiles: &BTreeMap<String, Section>,
    skipped: &mut Vec<Skipped>,
) {
    loop {
        let missing = take.iter().find_map(|n| {
            let why = match &kinds[n] {
                Kind::Sso { session } if !sessions.contains(session) => {
                    format!("its sso-session `{session}` is not taken")
                }
                Kind::AssumeRole { source }
                    if profiles.contains_key(source)
                        && kinds
                            .get(source)
                            .is_some_and(|k| !matches!(k, Kind::Static))
                        && !take.contains(source) =>
                {
                    format!("its source_profile `{source}` is not taken")
                }
                _ => return None,
            };
            Some((n.clone(), why))
        });
        let Some((n, why)) = missing else {
            return;
        };
        take.retain(|x| *x != n);
        skipped.push(Skipped {
            header: profiles[&n].header.clone(),
            line: profiles[&n].line,
            why,
        });
    }
}

fn session_ok(s: &Section) -> bool {
    s.has("sso_start_url") && s.has("sso_region")
}

/// The sessions and profiles of the file, merged as the SDKs merge them, and the sections the
/// SDKs ignore (listed as not taken).
type Sections = (
    BTreeMap<String, Section>,
    BTreeMap<String, Section>,
    Vec<Skipped>,
);

fn sections(parsed: &ProfileFile<'_>) -> Sections {
    let all: Vec<(SectionName, usize, usize)> = parsed
        .sections()
        .into_iter()
        .map(|(h, e)| (parsed.section_name(h, FileKind::Config), h, e))
        .collect();
    let prefixed_default = all.iter().any(
        |(n, _, _)| matches!(n, SectionName::Profile { name, prefixed: true } if name == "default"),
    );
    let (mut sessions, mut profiles) = (BTreeMap::new(), BTreeMap::new());
    let mut skipped = Vec::new();
    for (name, h, e) in all {
        let line = &parsed.lines()[h];
        let header = parsed.text()[line.start..line.content_end]
            .trim()
            .to_string();
        let target = match name {
            SectionName::Profile { name, prefixed } => {
                if name == "default" && prefixed_default && !prefixed {
                    skipped.push(Skipped {
                        header,
                        line: line.number,
                        why: "the file also has [profile default], which the SDKs use instead"
                            .into(),
                    });
                    continue;
                }
                profiles.entry(name)
            }
            SectionName::SsoSession(name) => sessions.entry(name),
            SectionName::Other => continue,
            SectionName::Ignored => {
                skipped.push(Skipped {
                    header,
                    line: line.number,
                    why: "the AWS SDKs ignore this section (a profile is [profile NAME] with a name of letters, digits and _-/.%@:+)".into(),
                });
                continue;
            }
        };
        let s = target.or_insert_with(|| Section {
            header: header.clone(),
            line: line.number,
            props: BTreeMap::new(),
            order: Vec::new(),
        });
        for (k, v) in parsed.section_properties(h, e) {
            if !s.props.contains_key(&k) {
                s.order.push(k.clone());
            }
            s.props.insert(k, v);
        }
    }
    (sessions, profiles, skipped)
}

/// What a profile is, in the order the SDKs pick a profile's source.
fn kind_of(p: &Section, sessions: &BTreeMap<String, Section>, shown: &str) -> Kind {
    if p.has("role_arn") {
        return role_kind(p);
    }
    if p.has("web_identity_token_file") {
        return Kind::Skip("web_identity_token_file without role_arn".into());
    }
    if let Some(session) = p.get("sso_session") {
        return sso_kind(p, session, sessions, shown);
    }
    const LEGACY: [&str; 4] = [
        "sso_start_url",
        "sso_region",
        "sso_account_id",
        "sso_role_name",
    ];
    if LEGACY.iter().any(|k| p.has(k)) {
        let missing: Vec<&str> = LEGACY.into_iter().filter(|k| !p.has(k)).collect();
        if !missing.is_empty() {
            return Kind::Skip(format!(
                "the older per-profile SSO form needs {} too",
                missing.join(", ")
            ));
        }
        return Kind::Legacy;
    }
    let skip = Kind::Skip;
    if let Some(arn) = p.get("login_session") {
        if let Some(problem) = crate::config::login_arn_problem(arn) {
            return skip(problem);
        }
        return Kind::LoginSession;
    }
    if p.has("credential_process") {
        return Kind::Process;
    }
    if p.has("aws_access_key_id") {
        return Kind::Static;
    }
    let keys = if p.order.is_empty() {
        "none".to_string()
    } else {
        p.order.join(", ")
    };
    skip(format!(
        "no source of credentials in it (its keys: {keys}): nothing for awscredd to keep"
    ))
}

/// A profile with `role_arn`.
fn role_kind(p: &Section) -> Kind {
    let skip = Kind::Skip;
    if p.has("web_identity_token_file") {
        return Kind::WebIdentity;
    }
    if let Some(source) = p.get("source_profile") {
        if p.has("mfa_serial") {
            return skip("mfa_serial: AWS asks for an MFA code at every refresh, and awscredd runs unattended; add it by hand with mfa_command, a program that prints the code (docs/init.md)".into());
        }
        return Kind::AssumeRole {
            source: source.to_string(),
        };
    }
    if let Some(cs) = p.get("credential_source") {
        return skip(format!(
            "credential_source = {cs}: the credentials come from this host ({}), which awscredd does not read; programs here can use the profile directly",
            match cs {
                "Ec2InstanceMetadata" => "the EC2 instance metadata service",
                "EcsContainer" => "the ECS container credentials endpoint",
                "Environment" => "environment variables",
                _ => "a source awscredd does not know",
            }
        ));
    }
    skip("role_arn without source_profile, web_identity_token_file or credential_source".into())
}

/// A profile with `sso_session = session`.
fn sso_kind(p: &Section, session: &str, sessions: &BTreeMap<String, Section>, shown: &str) -> Kind {
    let skip = Kind::Skip;
    let Some(s) = sessions.get(session) else {
        return skip(format!("its sso_session `{session}` is not in {shown}"));
    };
    if !(p.has("sso_account_id") && p.has("sso_role_name")) {
        return skip("sso_session without sso_account_id and sso_role_name: it only signs in (for `aws sso login`), it has no role credentials to keep".into());
    }
    for key in ["sso_start_url", "sso_region"] {
        if let (Some(mine), Some(theirs)) = (p.get(key), s.get(key)) {
            if mine != theirs {
                return skip(format!("{key} `{mine}` differs from `{theirs}` of sso-session `{session}` (botocore and the AWS CLI refuse this profile too)"));
            }
        }
    }
    Kind::Sso {
        session: session.to_string(),
    }
}

/// An assumed role is taken only if its source is: taken itself, static keys (read from the
/// credentials file), or not in the file (the same).
fn resolve_chains(profiles: &BTreeMap<String, Section>, kinds: &mut BTreeMap<String, Kind>) {
    let names: Vec<String> = kinds.keys().cloned().collect();
    for name in names {
        let mut path = vec![name.clone()];
        let mut verdict: Option<String> = None;
        let mut cur = name.clone();
        while let Some(Kind::AssumeRole { source }) = kinds.get(&cur).cloned() {
            if source == cur {
                verdict = Some(format!(
                    "its source_profile is itself (`{source}`), with static keys in the same profile; awscredd needs them in a profile of their own"
                ));
                break;
            }
            if path.contains(&source) {
                path.push(source);
                verdict = Some(format!("source_profile cycle: {}", path.join(" -> ")));
                break;
            }
            if !profiles.contains_key(&source) {
                break;
            }
            match kinds.get(&source) {
                Some(Kind::Skip(why)) => {
                    verdict = Some(format!(
                        "its source_profile `{source}` is not taken ({why})"
                    ));
                    break;
                }
                Some(Kind::AssumeRole { .. }) => {
                    path.push(source.clone());
                    cur = source;
                }
                _ => break,
            }
        }
        if let Some(why) = verdict {
            kinds.insert(name, Kind::Skip(why));
        }
    }
}

/// Which table a range of the written text is.
enum Block {
    Session(String),
    Profile(String),
}

/// The config text, and the byte range of each table in it.
fn render(
    req: &Request<'_>,
    sessions: &BTreeMap<String, Section>,
    take_sessions: &[String],
    profiles: &BTreeMap<String, Section>,
    kinds: &BTreeMap<String, Kind>,
    take: &[String],
) -> (String, Vec<(Range<usize>, Block)>) {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "# awscredd config, written by `awscredd init --from-aws-config` from {}.\n\
         # `awscredd check` validates it; docs/init.md explains it; config/example.toml shows\n\
         # every key.\n",
        req.shown
    );
    match req.output {
        Some(path) => {
            let _ = writeln!(t, "[[output]]\npath = {}\n", toml_string(path));
        }
        None => {
            let _ = writeln!(
                t,
                "# No [[output]]: every profile is kept in the credentials file the AWS SDKs read\n\
                 # ($AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/credentials).\n"
            );
        }
    }
    let mut blocks = Vec::new();
    let mut ordered: Vec<(usize, Block)> = take_sessions
        .iter()
        .map(|n| (sessions[n].line, Block::Session(n.clone())))
        .chain(
            take.iter()
                .map(|n| (profiles[n].line, Block::Profile(n.clone()))),
        )
        .collect();
    // Sessions first, then profiles, each in file order.
    ordered.sort_by_key(|(line, b)| (matches!(b, Block::Profile(_)), *line));
    for (_, block) in ordered {
        let start = t.len();
        let (section, table, keys): (&Section, String, Vec<&str>) = match &block {
            Block::Session(n) => (
                &sessions[n],
                format!("sso_session.{}", toml_key(n)),
                SESSION_KEYS.to_vec(),
            ),
            Block::Profile(n) => (
                &profiles[n],
                format!("profile.{}", toml_key(n)),
                taken_keys(&kinds[n])
                    .iter()
                    .chain(ANY_SOURCE)
                    .copied()
                    .collect(),
            ),
        };
        write_table(&mut t, req.shown, section, &table, &keys);
        blocks.push((start..t.len(), block));
        t.push('\n');
    }
    (t, blocks)
}

/// Writes `[table]` with the `keys` of `section` that it has, under a comment naming where it
/// came from and what was left there.
fn write_table(t: &mut String, shown: &str, section: &Section, table: &str, keys: &[&str]) {
    let left: Vec<&str> = section
        .order
        .iter()
        .map(String::as_str)
        .filter(|k| !keys.contains(k))
        .collect();
    let _ = write!(t, "# from {}:{} {}", shown, section.line, section.header);
    if !left.is_empty() {
        let _ = write!(t, "; left there: {}", left.join(", "));
    }
    let _ = writeln!(t, "\n[{table}]");
    for key in keys {
        let Some(v) = section.get(key) else {
            continue;
        };
        let value = match *key {
            "duration_seconds" => match v.parse::<i64>() {
                Ok(n) => n.to_string(),
                Err(_) => toml_string(v),
            },
            _ => toml_string(v),
        };
        let _ = writeln!(t, "{key} = {value}");
    }
}

#[cfg(test)]
mod tests;
