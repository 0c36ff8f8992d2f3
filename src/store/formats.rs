//! The other output formats (SPEC "Other output formats"), each a pure pair of functions:
//! what a file holds for its one profile, and the file's new text for new credentials.
//!
//! - `env`: an environment file (`KEY=value` lines) for systemd's `EnvironmentFile=`, docker's
//!   `--env-file` and dotenv libraries. Lines awscredd does not own are kept byte for byte.
//! - `json`: `credential_process` Version 1 JSON.
//! - `launch-settings`: a .NET `Properties/launchSettings.json`; every selected launch profile's
//!   `environmentVariables` gets the three AWS variables. Every other key and value is kept in
//!   its order, re-indented with two spaces (as `dotnet new` and PowerShell's `ConvertTo-Json`
//!   write it). JSON has no comments, and neither does a file `System.Text.Json` reads by
//!   default: a file with comments is refused, never stripped.

use crate::credentials::{format_utc, held_expiry, Credentials, Secret};
use serde_json::{Map, Value};
use std::fmt;

/// What an output file holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// The AWS shared credentials file.
    #[default]
    Ini,
    Env,
    Json,
    LaunchSettings,
}

impl Format {
    /// The name used in the config (`format = "..."`).
    pub fn name(self) -> &'static str {
        match self {
            Format::Ini => "ini",
            Format::Env => "env",
            Format::Json => "json",
            Format::LaunchSettings => "launch-settings",
        }
    }

    /// Parses a config value.
    pub fn parse(s: &str) -> Option<Format> {
        [
            Format::Ini,
            Format::Env,
            Format::Json,
            Format::LaunchSettings,
        ]
        .into_iter()
        .find(|f| f.name() == s)
    }

    /// Whether the file's own content says when its credentials expire.
    pub fn holds_expiry(self) -> bool {
        !matches!(self, Format::LaunchSettings)
    }
}

/// Why a file of one of these formats cannot be read or written; the file is left untouched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormatError(pub String);

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn text_of(bytes: &[u8]) -> Result<&str, FormatError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| FormatError(format!("it is not UTF-8 (at byte {})", e.valid_up_to())))?;
    if let Some(i) = text.find('\0') {
        let line = text[..i].matches('\n').count() + 1;
        return Err(FormatError(format!("line {line} holds a NUL byte")));
    }
    Ok(text)
}

// ---- env ----

const ENV_KEYS: [&str; 4] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
];

/// The variable a line assigns (after an optional `export `), and its value, if it is an
/// assignment.
fn env_assignment(line: &str) -> Option<(&str, &str)> {
    let l = line.trim_start();
    if l.starts_with('#') || l.starts_with(';') {
        return None;
    }
    let l = l.strip_prefix("export ").map_or(l, str::trim_start);
    let (k, v) = l.split_once('=')?;
    Some((k.trim(), v.trim()))
}

fn unquote(v: &str) -> &str {
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return &v[1..v.len() - 1];
        }
    }
    v
}

/// The credentials an environment file holds (the last assignment of each variable wins, as
/// in systemd and dotenv); `None` without both key id and secret.
pub fn env_read(bytes: &[u8]) -> Result<Option<Credentials>, FormatError> {
    let text = text_of(bytes)?;
    let mut found: [Option<&str>; 4] = [None; 4];
    for line in text.lines() {
        if let Some((k, v)) = env_assignment(line) {
            if let Some(i) = ENV_KEYS.iter().position(|key| *key == k) {
                found[i] = Some(unquote(v)).filter(|v| !v.is_empty());
            }
        }
    }
    let (Some(akid), Some(secret)) = (found[0], found[1]) else {
        return Ok(None);
    };
    Ok(Some(Credentials {
        access_key_id: akid.to_string(),
        secret_access_key: Secret::new(secret),
        session_token: found[2].map(Secret::new),
        expiration: found[3].map(held_expiry),
    }))
}

/// Checks that a value can be written unquoted on one line.
fn plain(name: &str, v: &str) -> Result<(), FormatError> {
    let bad = v.chars().any(|c| {
        c.is_whitespace() || c.is_control() || matches!(c, '"' | '\'' | '\\' | '$' | '`' | '#')
    });
    if bad || v.is_empty() {
        return Err(FormatError(format!(
            "the value of {name} would need quoting in an environment file; refused"
        )));
    }
    Ok(())
}

/// The environment file's new text: the four variables set where they are (a later duplicate
/// dropped, so it cannot win), missing ones appended, `AWS_SESSION_TOKEN` and
/// `AWS_CREDENTIAL_EXPIRATION` removed when there is none; every other line kept.
pub fn env_rewrite(bytes: &[u8], c: &Credentials) -> Result<String, FormatError> {
    let text = text_of(bytes)?;
    let values: [Option<String>; 4] = [
        Some(c.access_key_id.clone()),
        Some(c.secret_access_key.expose().to_string()),
        c.session_token.as_ref().map(|t| t.expose().to_string()),
        c.expiration.map(format_utc),
    ];
    for (name, v) in ENV_KEYS.iter().zip(&values) {
        if let Some(v) = v {
            plain(name, v)?;
        }
    }
    let eol = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let mut done = [false; 4];
    let mut out = String::with_capacity(text.len() + 2048);
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        let ending = &line[body.len()..];
        let Some(i) =
            env_assignment(body).and_then(|(k, _)| ENV_KEYS.iter().position(|key| *key == k))
        else {
            out.push_str(line);
            continue;
        };
        if done[i] {
            continue;
        }
        done[i] = true;
        if let Some(v) = &values[i] {
            let export = if body.trim_start().starts_with("export ") {
                "export "
            } else {
                ""
            };
            out.push_str(&format!("{export}{}={v}", ENV_KEYS[i]));
            out.push_str(if ending.is_empty() { eol } else { ending });
        }
    }
    for i in 0..4 {
        if let (false, Some(v)) = (done[i], &values[i]) {
            if !out.is_empty() && !out.ends_with('\n') {
                out.push_str(eol);
            }
            out.push_str(&format!("{}={v}{eol}", ENV_KEYS[i]));
        }
    }
    Ok(out)
}

// ---- json ----

/// The credentials a Version 1 JSON file holds; `None` when empty.
pub fn json_read(bytes: &[u8]) -> Result<Option<Credentials>, FormatError> {
    let text = text_of(bytes)?;
    if text.trim().is_empty() {
        return Ok(None);
    }
    let v: Value = serde_json::from_str(text)
        .map_err(|e| FormatError(format!("it is not valid JSON ({e})")))?;
    let s = |k: &str| v.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    let (Some(akid), Some(secret)) = (s("AccessKeyId"), s("SecretAccessKey")) else {
        return Ok(None);
    };
    Ok(Some(Credentials {
        access_key_id: akid.to_string(),
        secret_access_key: Secret::new(secret),
        session_token: s("SessionToken").map(Secret::new),
        expiration: s("Expiration").map(held_expiry),
    }))
}

/// The Version 1 JSON the AWS SDKs read from a `credential_process`.
pub fn json_render(c: &Credentials) -> String {
    let mut m = Map::new();
    m.insert("Version".into(), Value::from(1));
    m.insert("AccessKeyId".into(), Value::from(c.access_key_id.clone()));
    m.insert(
        "SecretAccessKey".into(),
        Value::from(c.secret_access_key.expose()),
    );
    if let Some(t) = &c.session_token {
        m.insert("SessionToken".into(), Value::from(t.expose()));
    }
    if let Some(e) = c.expiration {
        m.insert("Expiration".into(), Value::from(format_utc(e)));
    }
    let mut s = serde_json::to_string_pretty(&Value::Object(m)).unwrap_or_default();
    s.push('\n');
    s
}

// ---- launch-settings ----

const LAUNCH_KEYS: [&str; 3] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
];
const BOM: &str = "\u{feff}";

/// A parsed `launchSettings.json` and how it was written (BOM, CRLF, final newline).
struct LaunchFile {
    doc: Value,
    bom: bool,
    crlf: bool,
    final_newline: bool,
}

fn launch_parse(bytes: &[u8]) -> Result<LaunchFile, FormatError> {
    let text = text_of(bytes)?;
    let bom = text.starts_with(BOM);
    let body = text.trim_start_matches(BOM);
    let doc: Value = serde_json::from_str(body).map_err(|e| {
        FormatError(format!(
            "it is not valid JSON ({e}); a launchSettings.json with comments is refused, not stripped"
        ))
    })?;
    if !doc.get("profiles").is_some_and(Value::is_object) {
        return Err(FormatError("it has no `profiles` object".into()));
    }
    Ok(LaunchFile {
        doc,
        bom,
        crlf: body.contains("\r\n"),
        final_newline: body.ends_with('\n'),
    })
}

/// The names of the launch profiles to keep: all, or those listed (each must exist).
fn selected(doc: &Value, only: Option<&[String]>) -> Result<Vec<String>, FormatError> {
    let profiles = doc
        .get("profiles")
        .and_then(Value::as_object)
        .ok_or_else(|| FormatError("it has no `profiles` object".into()))?;
    match only {
        None => Ok(profiles.keys().cloned().collect()),
        Some(names) => {
            for n in names {
                if !profiles.contains_key(n) {
                    return Err(FormatError(format!(
                        "it has no launch profile `{n}` (launch_profiles names it)"
                    )));
                }
            }
            Ok(names.to_vec())
        }
    }
}

/// The credentials every selected launch profile holds; `None` when a file does not exist yet
/// is not the question here: `None` when any selected profile lacks them or they differ.
pub fn launch_read(
    bytes: &[u8],
    only: Option<&[String]>,
) -> Result<Option<Credentials>, FormatError> {
    let f = launch_parse(bytes)?;
    let names = selected(&f.doc, only)?;
    let mut found: Option<Credentials> = None;
    for n in &names {
        let vars = f.doc["profiles"][n].get("environmentVariables");
        let s = |k: &str| {
            vars.and_then(|v| v.get(k))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        let (Some(akid), Some(secret)) = (s(LAUNCH_KEYS[0]), s(LAUNCH_KEYS[1])) else {
            return Ok(None);
        };
        let c = Credentials {
            access_key_id: akid.to_string(),
            secret_access_key: Secret::new(secret),
            session_token: s(LAUNCH_KEYS[2]).map(Secret::new),
            expiration: None,
        };
        match &found {
            Some(prev) if prev.access_key_id != c.access_key_id => return Ok(None),
            Some(_) => {}
            None => found = Some(c),
        }
    }
    Ok(found)
}

/// The file's new text: the three variables set in the `environmentVariables` of every selected
/// launch profile (created when missing), everything else kept in its order.
pub fn launch_rewrite(
    bytes: &[u8],
    c: &Credentials,
    only: Option<&[String]>,
) -> Result<String, FormatError> {
    let mut f = launch_parse(bytes)?;
    let names = selected(&f.doc, only)?;
    for n in &names {
        let profile = f.doc["profiles"]
            .get_mut(n)
            .and_then(Value::as_object_mut)
            .ok_or_else(|| FormatError(format!("launch profile `{n}` is not an object")))?;
        let vars = profile
            .entry("environmentVariables")
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut()
            .ok_or_else(|| {
                FormatError(format!(
                    "`environmentVariables` of launch profile `{n}` is not an object"
                ))
            })?;
        vars.insert(LAUNCH_KEYS[0].into(), Value::from(c.access_key_id.clone()));
        vars.insert(
            LAUNCH_KEYS[1].into(),
            Value::from(c.secret_access_key.expose()),
        );
        match &c.session_token {
            Some(t) => {
                vars.insert(LAUNCH_KEYS[2].into(), Value::from(t.expose()));
            }
            None => {
                vars.shift_remove(LAUNCH_KEYS[2]);
            }
        }
    }
    let mut text = serde_json::to_string_pretty(&f.doc)
        .map_err(|e| FormatError(format!("cannot write it: {e}")))?;
    if f.final_newline {
        text.push('\n');
    }
    if f.crlf {
        text = text.replace('\n', "\r\n");
    }
    if f.bom {
        text.insert_str(0, BOM);
    }
    Ok(text)
}

/// The text of a new `launchSettings.json` for a file that does not exist yet: one launch
/// profile `awscredd` unless `launch_profiles` names others.
pub fn launch_new(c: &Credentials, only: Option<&[String]>) -> Result<String, FormatError> {
    let mut profiles = Map::new();
    let names: Vec<String> = only.map_or_else(|| vec!["awscredd".to_string()], <[String]>::to_vec);
    for n in names {
        let mut p = Map::new();
        p.insert("commandName".into(), Value::from("Project"));
        p.insert("environmentVariables".into(), Value::Object(Map::new()));
        profiles.insert(n, Value::Object(p));
    }
    let mut doc = Map::new();
    doc.insert("profiles".into(), Value::Object(profiles));
    let bytes = serde_json::to_vec(&Value::Object(doc)).unwrap_or_default();
    let mut text = launch_rewrite(&bytes, c, only)?;
    text.push('\n');
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn creds(token: bool) -> Credentials {
        Credentials {
            access_key_id: "ASIANEW".into(),
            secret_access_key: Secret::new("newsecret"),
            session_token: token.then(|| Secret::new("newtoken")),
            expiration: Some(datetime!(2030-01-02 03:04:05 UTC)),
        }
    }

    #[test]
    fn env_rewrites_its_lines_and_keeps_the_rest() {
        let cases: &[(&str, &str)] = &[
            (
                "",
                "AWS_ACCESS_KEY_ID=ASIANEW\nAWS_SECRET_ACCESS_KEY=newsecret\nAWS_SESSION_TOKEN=newtoken\nAWS_CREDENTIAL_EXPIRATION=2030-01-02T03:04:05Z\n",
            ),
            (
                "# mine\nOTHER=1\nAWS_ACCESS_KEY_ID=old\nAWS_ACCESS_KEY_ID=dup\n",
                "# mine\nOTHER=1\nAWS_ACCESS_KEY_ID=ASIANEW\nAWS_SECRET_ACCESS_KEY=newsecret\nAWS_SESSION_TOKEN=newtoken\nAWS_CREDENTIAL_EXPIRATION=2030-01-02T03:04:05Z\n",
            ),
            (
                "OTHER=1\r\nAWS_SECRET_ACCESS_KEY=old\r\nTAIL=x",
                "OTHER=1\r\nAWS_SECRET_ACCESS_KEY=newsecret\r\nTAIL=x\r\nAWS_ACCESS_KEY_ID=ASIANEW\r\nAWS_SESSION_TOKEN=newtoken\r\nAWS_CREDENTIAL_EXPIRATION=2030-01-02T03:04:05Z\r\n",
            ),
            (
                "export AWS_ACCESS_KEY_ID=old\n",
                "export AWS_ACCESS_KEY_ID=ASIANEW\nAWS_SECRET_ACCESS_KEY=newsecret\nAWS_SESSION_TOKEN=newtoken\nAWS_CREDENTIAL_EXPIRATION=2030-01-02T03:04:05Z\n",
            ),
        ];
        for (old, want) in cases {
            assert_eq!(
                env_rewrite(old.as_bytes(), &creds(true)).unwrap(),
                *want,
                "{old:?}"
            );
            let back = env_read(want.as_bytes()).unwrap().unwrap();
            assert_eq!(back, creds(true));
        }
        // No session token: its line goes.
        let out = env_rewrite(b"AWS_SESSION_TOKEN=old\nX=1\n", &creds(false)).unwrap();
        assert!(
            !out.contains("AWS_SESSION_TOKEN") && out.starts_with("X=1\n"),
            "{out}"
        );
        assert!(env_rewrite(b"\0", &creds(true)).is_err());
    }

    #[test]
    fn json_round_trips() {
        let text = json_render(&creds(true));
        assert!(
            text.starts_with("{\n  \"Version\": 1,\n  \"AccessKeyId\""),
            "{text}"
        );
        assert_eq!(json_read(text.as_bytes()).unwrap().unwrap(), creds(true));
        assert!(json_read(b"").unwrap().is_none());
        assert!(json_read(b"{").is_err());
    }

    const LAUNCH: &str = "{\n  \"$schema\": \"http://json.schemastore.org/launchsettings.json\",\n  \"profiles\": {\n    \"Api\": {\n      \"commandName\": \"Project\",\n      \"environmentVariables\": {\n        \"ASPNETCORE_ENVIRONMENT\": \"Development\",\n        \"AWS_SESSION_TOKEN\": \"old\"\n      },\n      \"applicationUrl\": \"https://localhost:5001\"\n    },\n    \"IIS\": {\n      \"commandName\": \"IISExpress\"\n    }\n  }\n}\n";

    #[test]
    fn launch_settings_keep_everything_else_in_order() {
        let out = launch_rewrite(LAUNCH.as_bytes(), &creds(true), None).unwrap();
        let want = "{\n  \"$schema\": \"http://json.schemastore.org/launchsettings.json\",\n  \"profiles\": {\n    \"Api\": {\n      \"commandName\": \"Project\",\n      \"environmentVariables\": {\n        \"ASPNETCORE_ENVIRONMENT\": \"Development\",\n        \"AWS_SESSION_TOKEN\": \"newtoken\",\n        \"AWS_ACCESS_KEY_ID\": \"ASIANEW\",\n        \"AWS_SECRET_ACCESS_KEY\": \"newsecret\"\n      },\n      \"applicationUrl\": \"https://localhost:5001\"\n    },\n    \"IIS\": {\n      \"commandName\": \"IISExpress\",\n      \"environmentVariables\": {\n        \"AWS_ACCESS_KEY_ID\": \"ASIANEW\",\n        \"AWS_SECRET_ACCESS_KEY\": \"newsecret\",\n        \"AWS_SESSION_TOKEN\": \"newtoken\"\n      }\n    }\n  }\n}\n";
        assert_eq!(out, want);
        let back = launch_read(out.as_bytes(), None).unwrap().unwrap();
        assert_eq!(back.access_key_id, "ASIANEW");
        // Only the listed profiles.
        let only = vec!["IIS".to_string()];
        let out = launch_rewrite(LAUNCH.as_bytes(), &creds(false), Some(&only)).unwrap();
        assert!(out.contains("\"AWS_SESSION_TOKEN\": \"old\""), "{out}");
        assert!(
            launch_read(out.as_bytes(), None).unwrap().is_none(),
            "Api lacks them"
        );
        assert!(launch_read(out.as_bytes(), Some(&only)).unwrap().is_some());
        // CRLF and a BOM stay.
        let crlf = format!("\u{feff}{}", LAUNCH.replace('\n', "\r\n"));
        let out = launch_rewrite(crlf.as_bytes(), &creds(true), None).unwrap();
        assert!(
            out.starts_with('\u{feff}')
                && out.contains("\r\n")
                && !out.replace("\r\n", "").contains('\n')
        );
    }

    #[test]
    fn invalid_launch_settings_are_refused() {
        for (bad, want) in [
            ("{ // comment\n \"profiles\": {} }", "comments is refused"),
            ("{\"x\": 1}", "no `profiles` object"),
            ("[1]", "no `profiles` object"),
            (
                "{\"profiles\": {\"A\": {\"environmentVariables\": 3}}}",
                "not an object",
            ),
        ] {
            let e = launch_rewrite(bad.as_bytes(), &creds(true), None).unwrap_err();
            assert!(e.0.contains(want), "{bad}: {e}");
        }
        let only = vec!["Nope".to_string()];
        let e = launch_rewrite(LAUNCH.as_bytes(), &creds(true), Some(&only)).unwrap_err();
        assert!(e.0.contains("no launch profile `Nope`"), "{e}");
    }
}
