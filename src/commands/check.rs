//! `awscredd check`: validate the config and print what would be managed where.

use super::exit;
use crate::config::{Config, Diagnostic, Report, Severity, Source};
use crate::paths::{self, Env};
use crate::profile_file::{precedence, ProfileFile};
use crate::sources::static_keys;
use crate::text::shown;
use std::fmt::Write as _;
use std::path::Path;

/// `path` as people know it: `~/...` when it is in the home folder.
pub fn shown_path(path: &Path, env: Env<'_>) -> String {
    let home = paths::home_dir(env, cfg!(windows));
    match home.as_deref().and_then(|h| path.strip_prefix(h).ok()) {
        Some(rest) if !rest.as_os_str().is_empty() => {
            format!("~{}{}", std::path::MAIN_SEPARATOR, rest.display())
        }
        _ => path.display().to_string(),
    }
}

pub fn exec(config_path: Option<&Path>) -> u8 {
    let env: Env<'_> = &paths::process_env;
    match super::load_config(config_path) {
        Err(e) => {
            eprintln!("{e}");
            exit::USAGE
        }
        Ok((cfg, mut report)) => {
            let mut errors = output_errors(&cfg, &report);
            errors.extend(roles_anywhere_files(&cfg, &report));
            errors.extend(hook_errors(&cfg, &report, env));
            let failed = errors.iter().any(|d| d.severity == Severity::Error);
            report.diagnostics.extend(errors);
            report.diagnostics.extend(unknown_owners(&cfg, &report));
            report.sort();
            for line in report.lines() {
                eprintln!("{line}");
            }
            for w in runtime_warnings(&cfg, env) {
                let (file, w) = (shown(cfg.path.display()), shown(w));
                eprintln!("{file}: warning: {w}");
            }
            if failed {
                return exit::USAGE;
            }
            print!("{}", summary(&cfg));
            exit::OK
        }
    }
}

/// Outputs that cannot be written as they are on this machine: a device, FIFO, socket or
/// folder (or a link to one), a link a privileged awscredd will not follow, a parent that is
/// not a folder, an existing file it would leave untouched (see [`ini_problem`], and the other
/// formats' own checks); each at its `path` in the config. A missing file or folder is fine:
/// `once` creates it.
pub fn output_errors(cfg: &Config, report: &Report) -> Vec<Diagnostic> {
    use crate::formats::Format;
    use crate::store::{CredentialsFile, StoreError};
    let problem = |o: &crate::config::Output| match crate::files::Target::open(&o.path, false) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => Some(format!("[[output]] `{}`: {e}", o.path.display())),
        // A file of another format that exists must be one awscredd can write.
        Ok(_) if o.format != Format::Ini => match CredentialsFile::from_output(o).read() {
            Err(e @ StoreError::Format { .. }) => Some(format!("[[output]] {e}")),
            _ => None,
        },
        Ok(_) => ini_problem(o),
    };
    cfg.outputs
        .iter()
        .enumerate()
        .filter_map(|(i, o)| {
            problem(o).map(|message| Diagnostic {
                severity: Severity::Error,
                span: report.output_path_span(i),
                message,
            })
        })
        .collect()
}

/// Roles Anywhere profiles whose certificate, chain or key cannot be used as they are on this
/// machine (errors), or soon will not be (warnings), each at its key in the config.
pub fn roles_anywhere_files(cfg: &Config, report: &Report) -> Vec<Diagnostic> {
    use crate::sources::roles_anywhere::check::problems;
    let now = crate::clock::now();
    let mut out = Vec::new();
    for p in cfg.profiles.values() {
        let Source::RolesAnywhere(src) = &p.source else {
            continue;
        };
        for problem in problems(src, cfg.daemon.refresh_before, now) {
            out.push(Diagnostic {
                severity: if problem.warning {
                    Severity::Warning
                } else {
                    Severity::Error
                },
                span: report.profile_key_span(&p.name, problem.part.key()),
                message: format!("profile `{}`: {}", p.name, problem.message),
            });
        }
    }
    out
}

/// `on_change` programs that cannot run: a path (relative ones are from the config's folder)
/// that is not an executable file, or a bare name found nowhere in `PATH`; each at its program
/// in the config.
pub fn hook_errors(cfg: &Config, report: &Report, env: Env<'_>) -> Vec<Diagnostic> {
    cfg.outputs
        .iter()
        .enumerate()
        .filter_map(|(i, o)| {
            let program = o.on_change.as_ref()?.first()?;
            let why = hook_problem(program, env)?;
            Some(Diagnostic {
                severity: Severity::Error,
                span: report.output_hook_span(i),
                message: format!("on_change `{}`: {why}", shown(program)),
            })
        })
        .collect()
}

/// Why `program` cannot be started, if it cannot.
fn hook_problem(program: &str, env: Env<'_>) -> Option<String> {
    let has_separator = program.contains('/') || (cfg!(windows) && program.contains('\\'));
    if has_separator {
        let p = Path::new(program);
        return match std::fs::metadata(p) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some("does not exist".into()),
            Err(e) => Some(format!("cannot be reached: {e}")),
            Ok(m) if !m.is_file() => Some("is not a file".into()),
            Ok(_) if !is_executable(p) => Some("is not executable".into()),
            Ok(_) => None,
        };
    }
    let path = env("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path).any(|dir| {
        let candidates: &[&str] = if cfg!(windows) {
            &["", ".exe", ".bat", ".cmd", ".com"]
        } else {
            &[""]
        };
        candidates.iter().any(|ext| {
            let p = dir.join(format!("{program}{ext}"));
            p.is_file() && is_executable(&p)
        })
    });
    (!found).then(|| {
        "is not found in PATH (give its path; a relative one is taken from the config's folder)"
            .to_string()
    })
}

/// Whether this process may run the file at `p`.
fn is_executable(p: &Path) -> bool {
    #[cfg(unix)]
    {
        nix::unistd::access(p, nix::unistd::AccessFlags::X_OK).is_ok()
    }
    #[cfg(not(unix))]
    {
        p.is_file()
    }
}

/// An existing credentials file that awscredd would leave untouched, with its profiles
/// failing: one the AWS SDKs' parser rejects, or one where a managed profile's section is
/// there twice or written with spaces inside its brackets (`[ a ]`, which botocore does not
/// find).
fn ini_problem(o: &crate::config::Output) -> Option<String> {
    use crate::files;
    use crate::profile_file::edit::{section_problem, EditError};
    use crate::store::{CredentialsFile, StoreError};
    match CredentialsFile::from_output(o).read() {
        Err(e @ StoreError::Unparseable { .. }) => return Some(format!("[[output]] {e}")),
        // Other failures to read are the walk's, reported above, or the write's at run time.
        Err(_) => return None,
        Ok(_) => {}
    }
    let bytes = files::read_regular(&o.path, files::CREDENTIALS_MAX).ok()??;
    let parsed = ProfileFile::parse(ProfileFile::check_bytes(&bytes).ok()?).ok()?;
    match section_problem(&parsed, &o.profiles)? {
        e @ (EditError::DuplicateSection { .. } | EditError::PaddedSection { .. }) => {
            Some(format!("[[output]] `{}`: {e}", o.path.display()))
        }
        _ => None,
    }
}

/// Owners and groups given by a name that does not resolve here. A warning, not an error: a
/// name from SSSD or LDAP may resolve only once that is up, or on the machine the config is
/// for; until it does, every write of that output fails.
#[cfg(unix)]
pub fn unknown_owners(cfg: &Config, report: &Report) -> Vec<Diagnostic> {
    use crate::config::UserRef;
    let mut out = Vec::new();
    for (i, o) in cfg.outputs.iter().enumerate() {
        let [owner_span, group_span] = report.output_owner_spans(i);
        let checks = [
            ("owner", "user", &o.owner, owner_span),
            ("group", "group", &o.group, group_span),
        ];
        for (key, kind, name, span) in checks {
            let Some(UserRef::Name(name)) = name else {
                continue;
            };
            let known = if key == "owner" {
                nix::unistd::User::from_name(name).map(|u| u.is_some())
            } else {
                nix::unistd::Group::from_name(name).map(|g| g.is_some())
            };
            if let Ok(false) = known {
                out.push(Diagnostic {
                    severity: Severity::Warning,
                    span,
                    message: format!(
                        "[[output]] `{}`: {key} `{name}` is not a {kind} on this machine (yet); every write of this file fails until it is",
                        o.path.display()
                    ),
                });
            }
        }
    }
    out
}

/// Windows has no owner or group (the config refuses them).
#[cfg(not(unix))]
pub fn unknown_owners(_cfg: &Config, _report: &Report) -> Vec<Diagnostic> {
    Vec::new()
}

/// The folders `once` will create for the outputs (a typo in a folder name shows here).
pub fn folders_to_create(cfg: &Config) -> Vec<std::path::PathBuf> {
    let mut out: Vec<std::path::PathBuf> = Vec::new();
    for o in cfg.outputs.iter() {
        let mut missing = Vec::new();
        let mut dir = o.path.parent();
        while let Some(d) = dir.filter(|d| !d.as_os_str().is_empty()) {
            if d.exists() {
                break;
            }
            missing.push(d.to_path_buf());
            dir = d.parent();
        }
        if let Some(top) = missing.pop() {
            if !out.contains(&top) {
                out.push(top);
            }
        }
    }
    out
}

/// Why this user cannot create or write the folder of `path`, if it cannot.
fn unwritable_folder(path: &Path) -> Option<String> {
    #[cfg(unix)]
    {
        use nix::unistd::{access, AccessFlags};
        let mut dir = path.parent()?;
        while !dir.exists() {
            dir = dir.parent()?;
        }
        if !dir.is_dir() {
            return None; // named by the walk above
        }
        access(dir, AccessFlags::W_OK | AccessFlags::X_OK)
            .err()
            .map(|e| {
                format!(
                    "[[output]] `{}`: this user cannot write in `{}` ({e})",
                    path.display(),
                    dir.display()
                )
            })
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// Problems that depend on the machine, not the config text: missing static source keys, and
/// profiles in `~/.aws/config` that would shadow ours.
pub fn runtime_warnings(cfg: &Config, env: Env<'_>) -> Vec<String> {
    let mut out = Vec::new();
    // A warning, not an error: a config is often checked as another user, or on another
    // machine than the one it runs on (a container's volume is not mounted at build time).
    out.extend(
        cfg.outputs
            .iter()
            .filter_map(|o| unwritable_folder(&o.path)),
    );
    for p in cfg.profiles.values() {
        if let Source::WebIdentity { token_file, .. } = &p.source {
            if !token_file.exists() {
                out.push(format!(
                    "profile `{}`: web_identity_token_file `{}` does not exist (yet); it fails until it does",
                    p.name,
                    token_file.display()
                ));
            }
        }
    }
    for p in cfg.profiles.values() {
        if let Some(src) = p.source.source_profile() {
            if !cfg.profiles.contains_key(src) {
                if let Err(e) = static_keys::read(src, env) {
                    out.push(format!(
                        "profile `{}`: {e}; it will fail until that is fixed",
                        p.name
                    ));
                }
            }
        }
    }
    out.extend(aws_config_warnings(cfg, env));
    out
}

/// The AWS config file as an output (the SDKs would not read awscredd's sections there), and
/// profiles in it that would shadow the keys awscredd writes.
fn aws_config_warnings(cfg: &Config, env: Env<'_>) -> Vec<String> {
    let mut out = Vec::new();
    let Some(aws_config) = paths::aws_config_file(env, cfg!(windows)) else {
        return out;
    };
    let config_file = Path::new(&aws_config);
    let same = |p: &Path| {
        p == config_file
            || matches!(
                (std::fs::canonicalize(p), std::fs::canonicalize(config_file)),
                (Ok(a), Ok(b)) if a == b
            )
    };
    for o in cfg
        .outputs
        .iter()
        .filter(|o| o.format == crate::formats::Format::Ini && same(&o.path))
    {
        out.push(format!(
            "[[output]] `{}` is the AWS config file, not the credentials file: the SDKs read \
             `[profile NAME]` sections there and ignore the `[NAME]` sections awscredd \
             writes; point it at the credentials file (`~/.aws/credentials`)",
            o.path.display()
        ));
    }
    let limit = crate::files::CREDENTIALS_MAX;
    let read = crate::files::read_regular(std::path::Path::new(&aws_config), limit);
    if let Ok(Some(bytes)) = read {
        match ProfileFile::check_bytes(&bytes).and_then(ProfileFile::parse) {
            Err(e) => out.push(format!(
                "{aws_config}:{}: {} (cannot check it for profiles that shadow ours)",
                e.line, e.message
            )),
            Ok(parsed) => {
                let managed =
                    |n: &str| cfg.profiles.contains_key(n) && cfg.outputs_of(n).next().is_some();
                let shown = shown_path(Path::new(&aws_config), env);
                for s in precedence::shadows(&parsed, &managed) {
                    out.push(format!(
                        "profile `{}` in {shown} sets {}: the AWS SDKs use that before the keys awscredd writes, so programs will not see awscredd's credentials for `{}`; to fix it, {}",
                        s.name,
                        s.keys.join(", "),
                        s.name,
                        s.advice(&shown)
                    ));
                }
            }
        }
    }
    out
}

/// What would be managed where, for people.
pub fn summary(cfg: &Config) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{}: valid", shown(cfg.path.display()));
    for d in folders_to_create(cfg) {
        let _ = writeln!(
            s,
            "will create the folder {} (mode 0700)",
            shown(d.display())
        );
    }
    let _ = writeln!(
        s,
        "refresh {} before expiry; state in {}",
        humanize(cfg.daemon.refresh_before.as_secs()),
        shown(cfg.daemon.state_dir.display())
    );
    for o in cfg.outputs.iter() {
        let mut who = String::new();
        if let Some(u) = &o.owner {
            let _ = write!(who, ", owner {}", shown(u));
        }
        if let Some(g) = &o.group {
            let _ = write!(who, ", group {}", shown(g));
        }
        let _ = writeln!(
            s,
            "\n{} (mode {:04o}{who})",
            shown(o.path.display()),
            o.mode
        );
        if o.profiles.is_empty() {
            let _ = writeln!(s, "  (no profiles)");
        }
        for name in &o.profiles {
            let _ = writeln!(s, "  [{}] {}", shown(name), shown(describe(cfg, name)));
        }
    }
    let unwritten: Vec<&String> = cfg
        .profiles
        .keys()
        .filter(|n| cfg.outputs_of(n).next().is_none())
        .collect();
    if !unwritten.is_empty() {
        let _ = writeln!(s, "\nnot written to any file (used as sources only):");
        for name in unwritten {
            let _ = writeln!(s, "  [{}] {}", shown(name), shown(describe(cfg, name)));
        }
    }
    s.push_str(&sessions_and_listeners(cfg));
    s
}

/// The summary's SSO sessions and listeners.
fn sessions_and_listeners(cfg: &Config) -> String {
    let mut s = String::new();
    for sess in cfg.sso_sessions.values() {
        let _ = if sess.legacy {
            writeln!(
                s,
                "\nsign-in {} in {} (the older per-profile SSO form; its token: ~/.aws/sso/cache/{}.json)",
                shown(&sess.start_url),
                shown(&sess.region),
                crate::sources::sso::cache::sha1_hex(&sess.start_url)
            )
        } else {
            writeln!(
                s,
                "\nsso_session {}: {} in {}",
                shown(&sess.name),
                shown(&sess.start_url),
                shown(&sess.region)
            )
        };
    }
    if let Some(server) = &cfg.server {
        let _ = writeln!(
            s,
            "\ncredentials server on {} (token in {})",
            server.listen,
            shown(server.token_file.display())
        );
    }
    if let Some(m) = &cfg.metrics {
        let _ = writeln!(
            s,
            "\nmetrics on {} (/metrics, /healthz, /readyz; no token)",
            m.listen
        );
    }
    if let Some(i) = &cfg.imds {
        let _ = writeln!(
            s,
            "\ninstance metadata (IMDSv2) on {}: profile {} (AWS_EC2_METADATA_SERVICE_ENDPOINT=http://{})",
            i.listen,
            shown(&i.profile),
            i.listen
        );
    }
    s
}

fn describe(cfg: &Config, name: &str) -> String {
    match &cfg.profiles[name].source {
        Source::Sso {
            session,
            account_id,
            role_name,
        } if cfg.sso_sessions.get(session).is_some_and(|s| s.legacy) => format!(
            "sso: role {role_name} in {account_id} via sso_start_url {session} (the older per-profile form)"
        ),
        Source::Sso {
            session,
            account_id,
            role_name,
        } => format!("sso: role {role_name} in {account_id} via sso_session {session}"),
        Source::AssumeRole {
            source_profile,
            role_arn,
            ..
        } => format!("assume_role: {role_arn} from [{source_profile}]"),
        Source::SessionToken { source_profile, .. } => {
            format!("get_session_token from [{source_profile}]")
        }
        Source::WebIdentity {
            role_arn,
            token_file,
            ..
        } => format!("web_identity: {role_arn} with {}", token_file.display()),
        Source::Process { command } => format!("credential_process: {command}"),
        Source::RolesAnywhere(ra) => format!(
            "roles_anywhere: {} with {} via {}",
            ra.role_arn,
            ra.certificate.display(),
            ra.trust_anchor_arn
        ),
        Source::LoginSession { arn } => {
            format!("login_session: the `aws login` sign-in of {arn}")
        }
    }
}

fn humanize(secs: u64) -> String {
    match secs {
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}
