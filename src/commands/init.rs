//! `awscredd init`: writes a starting config at the config path, from `~/.aws/config`
//! (`--from-aws-config`, see [`crate::config::import`]) or as a commented template. Never
//! replaces an existing config without `--force`; the file is written atomically, mode 0600,
//! its folders created 0700. Then it says what was not taken and why, and what to change in
//! `~/.aws/config` so that programs read the credentials awscredd keeps.

use super::exit;
use crate::commands::check::shown_path;
use crate::config::import::{self, ImportError, Imported, Request};
use crate::files as atomic;
use crate::paths::{self, Env};
use crate::profile_file::ProfileFile;
use std::path::{Path, PathBuf};

/// Options of `init`.
#[derive(Clone, Debug, Default)]
pub struct InitArgs {
    /// `--from-aws-config`: `Some(None)` for the default file, `Some(Some(PATH))` for PATH.
    pub from_aws_config: Option<Option<PathBuf>>,
    pub profiles: Vec<String>,
    pub output: Option<String>,
    pub force: bool,
}

/// The template written without `--from-aws-config`.
pub const TEMPLATE: &str = include_str!("init_template.toml");

pub fn exec(config_path: Option<&Path>, args: &InitArgs) -> u8 {
    let env: Env<'_> = &paths::process_env;
    let target = match target_path(config_path, env) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("awscredd: init: {e}");
            return exit::USAGE;
        }
    };
    if std::fs::symlink_metadata(&target).is_ok() && !args.force {
        eprintln!(
            "awscredd: init: `{}` already exists; nothing written (--force replaces it)",
            target.display()
        );
        return exit::USAGE;
    }
    let (text, imported, shown) = match &args.from_aws_config {
        None => (template(args.output.as_deref()), None, String::new()),
        Some(path) => match from_aws_config(path.as_deref(), &target, args, env) {
            Ok((imported, shown)) => (imported.toml.clone(), Some(imported), shown),
            Err(message) => {
                eprintln!("awscredd: init: {message}");
                return exit::USAGE;
            }
        },
    };
    if let Err(e) = atomic::write_atomic(
        &target,
        text.as_bytes(),
        0o600,
        atomic::Ownership::default(),
        true,
    ) {
        eprintln!(
            "awscredd: init: cannot write `{}`: {e}; nothing written",
            target.display()
        );
        return exit::USAGE;
    }
    match imported {
        Some(imported) => print!("{}", report(&target, &imported, &shown)),
        None => println!(
            "wrote the template {} (mode 0600): edit it (or run `awscredd init \
             --from-aws-config --force` to start from ~/.aws/config), then `awscredd check`",
            target.display()
        ),
    }
    exit::OK
}

/// Where the config goes: `--config` (`~` expanded), else the first default path.
fn target_path(explicit: Option<&Path>, env: Env<'_>) -> Result<PathBuf, String> {
    if explicit.is_some() {
        return crate::config::locate(explicit, env).map_err(|e| e.to_string());
    }
    paths::default_config_candidates(env, cfg!(windows))
        .into_iter()
        .next()
        .ok_or_else(|| "no default config path (HOME is not set): pass --config PATH".into())
}

/// The template, with `--output` as its `[[output]]`.
fn template(output: Option<&str>) -> String {
    match output {
        None => TEMPLATE.to_string(),
        Some(path) => TEMPLATE.replacen(
            "# [[output]]\n# path = \"~/.aws/credentials\"\n",
            &format!("[[output]]\npath = {}\n", crate::config::toml_string(path)),
            1,
        ),
    }
}

/// Reads and converts the AWS config file; the message to show when nothing can be written.
fn from_aws_config(
    path: Option<&Path>,
    target: &Path,
    args: &InitArgs,
    env: Env<'_>,
) -> Result<(Imported, String), String> {
    let path = match path {
        Some(p) => p.to_path_buf(),
        None => paths::aws_config_file(env, cfg!(windows))
            .map(PathBuf::from)
            .ok_or("no AWS config file to read (HOME is not set): pass --from-aws-config PATH")?,
    };
    let shown = shown_path(&path, env);
    let bytes = match atomic::read_regular(&path, atomic::CREDENTIALS_MAX) {
        Ok(Some(b)) => b,
        Ok(None) => return Err(format!("cannot read `{shown}`: it does not exist")),
        Err(e) => return Err(format!("cannot read `{shown}`: {e}")),
    };
    let text = ProfileFile::check_bytes(&bytes)
        .map_err(|e| format!("{shown}:{}: {}; nothing written", e.line, e.message))?;
    let req = Request {
        text,
        shown: &shown,
        only: &args.profiles,
        output: args.output.as_deref(),
        config_path: target,
        env,
    };
    match import::import(&req) {
        Ok(i) => Ok((i, shown)),
        Err(ImportError::Parse { line, message }) => Err(format!(
            "{shown}:{line}: {message} (the AWS SDKs reject this file too); nothing written"
        )),
        Err(ImportError::UnknownProfile(name)) => Err(format!(
            "--profile {name}: there is no profile `{name}` in {shown}; nothing written"
        )),
        Err(ImportError::Nothing(skipped)) => {
            let mut m = format!("nothing in {shown} that awscredd can keep fresh; nothing written");
            for s in skipped {
                m.push_str(&format!("\n  {} (line {}): {}", s.header, s.line, s.why));
            }
            Err(m)
        }
        Err(ImportError::Invalid(report)) => Err(format!(
            "the config made from {shown} does not pass the checks:\n{report}\nnothing written"
        )),
    }
}

/// What `init --from-aws-config` tells the user.
fn report(target: &Path, i: &Imported, shown: &str) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    // The first few names; a config of hundreds is in the file.
    let names = |v: &[String]| match v.len() {
        0..=12 => v.join(", "),
        n => format!("{}, and {} more", v[..10].join(", "), n - 10),
    };
    let _ = writeln!(
        s,
        "wrote {} (mode 0600) from {shown}: {} sso_session(s) ({}), {} profile(s) ({})",
        target.display(),
        i.sessions.len(),
        names(&i.sessions),
        i.profiles.len(),
        names(&i.profiles)
    );
    if !i.skipped.is_empty() {
        let _ = writeln!(s, "\nnot taken:");
        for k in &i.skipped {
            let _ = writeln!(s, "  {} ({shown}:{}): {}", k.header, k.line, k.why);
        }
    }
    if !i.notes.is_empty() {
        let _ = writeln!(s, "\nnotes:");
        for n in &i.notes {
            let _ = writeln!(s, "  {n}");
        }
    }
    if !i.shadows.is_empty() {
        let _ = writeln!(
            s,
            "\nso that programs read the credentials awscredd keeps (the AWS SDKs use these keys \
             of {shown} first, and would sign in or fail on their own), change {shown}:"
        );
        for sh in &i.shadows {
            let _ = writeln!(s, "  {}", sh.advice(shown));
        }
    }
    let _ = writeln!(
        s,
        "\nnext: `awscredd check`, then `awscredd once` (it signs in where needed), or start the \
         service"
    );
    s
}
