//! Where files are: the home folder as the AWS SDKs find it, `~` expansion, the AWS shared
//! files, and awscredd's default config and state locations.
//!
//! Every function takes the environment as a lookup function so the SDKs' file-location test
//! cases (for Linux and Windows alike) run on any machine.

use std::path::PathBuf;

/// Looks up an environment variable.
pub type Env<'a> = &'a (dyn Fn(&str) -> Option<String> + Sync);

/// The process environment, ignoring empty values. On Windows `ProgramData` is the known
/// folder (`SHGetKnownFolderPath(FOLDERID_ProgramData)`), not the variable: a service's
/// environment is built by its Service Control Manager, and Wine 8's (`CreateEnvironmentBlock`
/// in its userenv.dll) sets `ProgramData` to the Public profile, `C:\users\Public`.
#[allow(clippy::disallowed_methods)] // the one place the environment is read
pub fn process_env(name: &str) -> Option<String> {
    #[cfg(windows)]
    if name.eq_ignore_ascii_case("ProgramData") {
        if let Some(dir) = program_data() {
            return Some(dir);
        }
    }
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The ProgramData known folder (`C:\ProgramData`).
#[cfg(windows)]
pub fn program_data() -> Option<String> {
    use windows_sys::Win32::System::Com::CoTaskMemFree;
    use windows_sys::Win32::UI::Shell::{FOLDERID_ProgramData, SHGetKnownFolderPath};
    let mut raw: windows_sys::core::PWSTR = std::ptr::null_mut();
    // SAFETY: a valid folder id and out pointer; the returned buffer is NUL-terminated and
    // freed with CoTaskMemFree (also on failure, as documented).
    unsafe {
        let hr = SHGetKnownFolderPath(&FOLDERID_ProgramData, 0, std::ptr::null_mut(), &mut raw);
        let out = if hr >= 0 && !raw.is_null() {
            let len = (0..).take_while(|&i| *raw.add(i) != 0).count();
            String::from_utf16(std::slice::from_raw_parts(raw, len)).ok()
        } else {
            None
        };
        CoTaskMemFree(raw.cast());
        out.filter(|s| !s.is_empty())
    }
}

/// The home folder as the AWS SDKs find it: `HOME` first on every platform; on Windows then
/// `USERPROFILE`, then `HOMEDRIVE` + `HOMEPATH`.
pub fn home_dir(env: Env<'_>, windows: bool) -> Option<String> {
    if let Some(home) = env("HOME") {
        return Some(home);
    }
    if windows {
        if let Some(profile) = env("USERPROFILE") {
            return Some(profile);
        }
        if let (Some(drive), Some(path)) = (env("HOMEDRIVE"), env("HOMEPATH")) {
            return Some(format!("{drive}{path}"));
        }
    }
    None
}

fn separator(windows: bool) -> char {
    if windows {
        '\\'
    } else {
        '/'
    }
}

/// Expands a leading `~` (alone, or followed by `/` or, on Windows, `\`) to the home folder.
pub fn expand_tilde(path: &str, env: Env<'_>, windows: bool) -> Result<String, String> {
    let rest = if path == "~" {
        ""
    } else if let Some(rest) = path.strip_prefix("~/") {
        rest
    } else if let (true, Some(rest)) = (windows, path.strip_prefix("~\\")) {
        rest
    } else {
        return Ok(path.to_string());
    };
    let home = home_dir(env, windows).ok_or_else(|| {
        format!("cannot expand `~` in `{path}`: no home folder (HOME is not set)")
    })?;
    if rest.is_empty() {
        return Ok(home);
    }
    let sep = separator(windows);
    Ok(format!("{}{sep}{rest}", home.trim_end_matches(sep)))
}

fn in_home(env: Env<'_>, windows: bool, parts: &[&str]) -> Option<String> {
    let sep = separator(windows);
    let mut out = home_dir(env, windows)?;
    for p in parts {
        if !out.ends_with(sep) {
            out.push(sep);
        }
        out.push_str(p);
    }
    Some(out)
}

/// The shared config file the SDKs read: `AWS_CONFIG_FILE`, else `~/.aws/config`.
pub fn aws_config_file(env: Env<'_>, windows: bool) -> Option<String> {
    match env("AWS_CONFIG_FILE") {
        Some(p) => expand_tilde(&p, env, windows).ok(),
        None => in_home(env, windows, &[".aws", "config"]),
    }
}

/// The shared credentials file the SDKs read: `AWS_SHARED_CREDENTIALS_FILE`, else
/// `~/.aws/credentials`.
pub fn aws_credentials_file(env: Env<'_>, windows: bool) -> Option<String> {
    match env("AWS_SHARED_CREDENTIALS_FILE") {
        Some(p) => expand_tilde(&p, env, windows).ok(),
        None => in_home(env, windows, &[".aws", "credentials"]),
    }
}

/// An XDG base folder variable (Unix). The XDG Base Directory spec says a relative path in one
/// is invalid and must be ignored: it would name a folder under whatever the working folder is.
fn xdg_dir(env: Env<'_>, name: &str) -> Option<PathBuf> {
    env(name)
        .map(PathBuf::from)
        .filter(|p| p.to_string_lossy().starts_with('/'))
}

/// Where `awscredd` looks for its config when neither `--config` nor `AWSCREDD_CONFIG` is given.
pub fn default_config_candidates(env: Env<'_>, windows: bool) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if windows {
        if let Some(pd) = env("ProgramData") {
            out.push(PathBuf::from(format!("{pd}\\awscredd\\config.toml")));
        }
        return out;
    }
    if let Some(xdg) = xdg_dir(env, "XDG_CONFIG_HOME") {
        out.push(xdg.join("awscredd").join("config.toml"));
    }
    if let Some(home) = env("HOME") {
        out.push(
            PathBuf::from(home)
                .join(".config")
                .join("awscredd")
                .join("config.toml"),
        );
    }
    out.push(PathBuf::from("/etc/awscredd/config.toml"));
    out
}

/// The default `state_dir`: `$XDG_STATE_HOME/awscredd`, else `~/.local/state/awscredd`; on
/// Windows `%ProgramData%\awscredd\state`.
pub fn default_state_dir(env: Env<'_>, windows: bool) -> Option<PathBuf> {
    if windows {
        return env("ProgramData").map(|pd| PathBuf::from(format!("{pd}\\awscredd\\state")));
    }
    if let Some(xdg) = xdg_dir(env, "XDG_STATE_HOME") {
        return Some(xdg.join("awscredd"));
    }
    env("HOME").map(|h| {
        PathBuf::from(h)
            .join(".local")
            .join("state")
            .join("awscredd")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// The SDKs' cross-platform file-location cases (`shared/testdata/file-location-tests.json`).
    #[test]
    fn sdk_file_location_cases() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/file-location-tests.json"
        );
        let text = std::fs::read_to_string(path).expect("tests/data/file-location-tests.json");
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        let tests = doc["tests"].as_array().unwrap();
        assert_eq!(tests.len(), 9);
        for t in tests {
            let vars: HashMap<String, String> = t["environment"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect();
            let env = move |k: &str| vars.get(k).cloned();
            let windows = t["platform"] == "windows";
            let name = t["name"].as_str().unwrap();
            assert_eq!(
                aws_config_file(&env, windows).as_deref(),
                t["configLocation"].as_str(),
                "{name}"
            );
            assert_eq!(
                aws_credentials_file(&env, windows).as_deref(),
                t["credentialsLocation"].as_str(),
                "{name}"
            );
        }
    }

    #[test]
    fn relative_xdg_folders_are_ignored() {
        let env = |k: &str| match k {
            "HOME" => Some("/home/u".to_string()),
            "XDG_STATE_HOME" | "XDG_CONFIG_HOME" => Some("relstate".to_string()),
            _ => None,
        };
        assert_eq!(
            default_state_dir(&env, false),
            Some(PathBuf::from("/home/u/.local/state/awscredd"))
        );
        assert_eq!(
            default_config_candidates(&env, false),
            vec![
                PathBuf::from("/home/u/.config/awscredd/config.toml"),
                PathBuf::from("/etc/awscredd/config.toml")
            ]
        );
        let absolute = |k: &str| match k {
            "XDG_STATE_HOME" => Some("/x/state".to_string()),
            "XDG_CONFIG_HOME" => Some("/x/config".to_string()),
            _ => None,
        };
        assert_eq!(
            default_state_dir(&absolute, false),
            Some(PathBuf::from("/x/state/awscredd"))
        );
        assert_eq!(
            default_config_candidates(&absolute, false)[0],
            PathBuf::from("/x/config/awscredd/config.toml")
        );
    }

    #[test]
    fn tilde_expansion() {
        let env = |k: &str| (k == "HOME").then(|| "/home/u".to_string());
        assert_eq!(
            expand_tilde("~/.aws/x", &env, false).unwrap(),
            "/home/u/.aws/x"
        );
        assert_eq!(expand_tilde("/abs", &env, false).unwrap(), "/abs");
        assert_eq!(expand_tilde("~user/x", &env, false).unwrap(), "~user/x");
        let none = |_: &str| None;
        assert!(expand_tilde("~/x", &none, false).is_err());
    }
}
