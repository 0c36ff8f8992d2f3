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

use crate::credentials::{format_utc, parse_rfc3339, Credentials, Secret};
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

    /// The article before the name in a sentence: "an env file", "a json file".
    pub fn article(self) -> &'static str {
        match self {
            Format::Ini | Format::Env => "an",
            Format::Json | Format::LaunchSettings => "a",
        }
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

/// What systemd's `EnvironmentFile=` parser is inside of at the end of a line, when that is
/// something that carries on into the next line: that next line is then no assignment for
/// systemd, whatever it looks like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Carry {
    /// The line ends in a `\` (in a value, or in a comment: systemd before 254 continues a
    /// comment so too).
    Backslash,
    /// A quoted value is still open.
    Quote,
}

/// For every line of `text` (split after each `\n`), whether systemd reads it as part of an
/// earlier line, and since which line (1-based); then the same for a line after the last one.
/// A small copy of the states of systemd's `parse_env_file_internal`.
fn env_carries(text: &str) -> (Vec<Option<(Carry, usize)>>, Option<(Carry, usize)>) {
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum S {
        LineStart,
        Comment,
        CommentEscape,
        Key,
        PreValue,
        Value,
        ValueEscape,
        Single,
        Double,
        DoubleEscape,
    }
    let mut state = S::LineStart;
    let mut out = Vec::new();
    // The carry into the current line, and the line where it started.
    let mut carry: Option<(Carry, usize)> = None;
    let mut line = 1;
    out.push(None);
    // A last line without a newline gets one first when awscredd appends.
    let newline = (!text.is_empty() && !text.ends_with('\n')).then_some('\n');
    // A `\r` before the `\n` is skipped: `\` CRLF counts as carrying on (systemd would end
    // the value at the `\n`; refusing that is the safe side).
    for c in text.chars().chain(newline).filter(|c| *c != '\r') {
        if c == '\n' {
            let next = match state {
                S::CommentEscape => Some(Carry::Backslash),
                S::ValueEscape => Some(Carry::Backslash),
                S::Single | S::Double | S::DoubleEscape => Some(Carry::Quote),
                _ => None,
            };
            state = match state {
                S::CommentEscape => S::Comment,
                S::ValueEscape => S::Value,
                S::DoubleEscape => S::Double,
                S::Single | S::Double => state,
                _ => S::LineStart,
            };
            carry = next.map(|k| (k, carry.map_or(line, |(_, from)| from)));
            line += 1;
            out.push(carry);
            continue;
        }
        state = match (state, c) {
            (S::LineStart, c) if c.is_whitespace() => S::LineStart,
            (S::LineStart, '#' | ';') => S::Comment,
            (S::LineStart, _) => S::Key,
            (S::Key, '=') => S::PreValue,
            (S::Key, _) => S::Key,
            (S::PreValue, c) if c.is_whitespace() => S::PreValue,
            (S::PreValue, '\'') => S::Single,
            (S::PreValue, '"') => S::Double,
            (S::PreValue | S::Value, '\\') => S::ValueEscape,
            (S::PreValue | S::Value | S::ValueEscape, _) => S::Value,
            (S::Single, '\'') | (S::Double, '"') => S::PreValue,
            (S::Single, _) => S::Single,
            (S::Double, '\\') => S::DoubleEscape,
            (S::Double | S::DoubleEscape, _) => S::Double,
            (S::Comment, '\\') => S::CommentEscape,
            (S::Comment | S::CommentEscape, _) => S::Comment,
        };
    }
    let end = out.pop().unwrap_or(None);
    (out, end)
}

/// Why systemd would not see an assignment that starts a line carried on from line `from`.
fn carry_reason(carry: Carry, from: usize) -> String {
    match carry {
        Carry::Backslash => format!("line {from} ends in a `\\`, which joins the next line to it"),
        Carry::Quote => format!("a quoted value opened on line {from} is still open"),
    }
}

/// The lines of an environment file, each with the AWS variable it assigns (an index into
/// [`ENV_KEYS`]), if any. Refused: an AWS line that systemd reads as part of an earlier line,
/// and a file that ends inside a line carried on (a line awscredd appends would be lost).
fn env_lines(text: &str) -> Result<Vec<(&str, Option<usize>)>, FormatError> {
    let (carries, end) = env_carries(text);
    let mut out = Vec::new();
    for (i, (line, carry)) in text.split_inclusive('\n').zip(carries).enumerate() {
        let body = line.trim_end_matches(['\n', '\r']);
        let key = env_assignment(body).and_then(|(k, _)| ENV_KEYS.iter().position(|key| *key == k));
        if let (Some(k), Some((kind, from))) = (key, carry) {
            return Err(FormatError(format!(
                "line {}: systemd reads `{}=` as part of an earlier line ({}), so \
                 `EnvironmentFile=` would not see it; end line {from} differently or move the \
                 AWS lines above it",
                i + 1,
                ENV_KEYS[k],
                carry_reason(kind, from)
            )));
        }
        out.push((line, key));
    }
    if let Some((kind, from)) = end {
        return Err(FormatError(format!(
            "the file ends inside a line carried on ({}), so systemd would read a line \
             awscredd adds as part of it; end line {from} differently",
            carry_reason(kind, from)
        )));
    }
    Ok(out)
}

/// The credentials an environment file holds (the last assignment of each variable wins, as
/// in systemd and dotenv); `None` without both key id and secret.
pub fn env_read(bytes: &[u8]) -> Result<Option<Credentials>, FormatError> {
    let text = text_of(bytes)?;
    let mut found: [Option<&str>; 4] = [None; 4];
    for (line, key) in env_lines(text)? {
        let Some(i) = key else { continue };
        let v = env_assignment(line.trim_end_matches(['\n', '\r'])).map_or("", |(_, v)| v);
        found[i] = Some(unquote(v)).filter(|v| !v.is_empty());
    }
    let (Some(akid), Some(secret)) = (found[0], found[1]) else {
        return Ok(None);
    };
    Ok(Some(Credentials {
        access_key_id: akid.to_string(),
        secret_access_key: Secret::new(secret),
        session_token: found[2].map(Secret::new),
        expiration: found[3].and_then(|e| parse_rfc3339(e).ok()),
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
/// dropped, so it cannot win; an `export ` before one dropped too), missing ones appended,
/// `AWS_SESSION_TOKEN` and `AWS_CREDENTIAL_EXPIRATION` removed when there is none; every other
/// line kept.
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
    for (line, key) in env_lines(text)? {
        let Some(i) = key else {
            out.push_str(line);
            continue;
        };
        if done[i] {
            continue;
        }
        done[i] = true;
        if let Some(v) = &values[i] {
            // Never `export KEY=`: systemd ignores such a line and docker refuses it.
            let ending = &line[line.trim_end_matches(['\n', '\r']).len()..];
            out.push_str(&format!("{}={v}", ENV_KEYS[i]));
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

const JSON_KEYS: [&str; 5] = [
    "Version",
    "AccessKeyId",
    "SecretAccessKey",
    "SessionToken",
    "Expiration",
];

/// The kind of a JSON value, for messages.
fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The credentials a Version 1 JSON file holds; `None` when empty (only whitespace) or without
/// both key id and secret. Anything else than what awscredd writes is refused, so that a write,
/// which replaces the whole file, never replaces someone else's JSON: the file must be one
/// object with `"Version": 1` and no other keys than the five of [`JSON_KEYS`], all strings but
/// `Version`, `Expiration` an RFC 3339 time.
pub fn json_read(bytes: &[u8]) -> Result<Option<Credentials>, FormatError> {
    let text = text_of(bytes)?;
    if text.trim().is_empty() {
        return Ok(None);
    }
    let not_ours = "awscredd replaces only a credential_process Version 1 JSON file (or an \
                    empty one); move this file away or point `path` elsewhere";
    let v: Value = serde_json::from_str(text)
        .map_err(|e| FormatError(format!("it is not valid JSON ({e}); {not_ours}")))?;
    let Value::Object(m) = &v else {
        return Err(FormatError(format!(
            "it holds {}, not an object; {not_ours}",
            json_kind(&v)
        )));
    };
    if let Some(k) = m.keys().find(|k| !JSON_KEYS.contains(&k.as_str())) {
        return Err(FormatError(format!(
            "it has a key {} that credential_process Version 1 JSON does not hold; {not_ours}",
            Value::from(k.as_str())
        )));
    }
    match m.get("Version") {
        Some(n) if n.as_u64() == Some(1) => {}
        Some(n) => {
            return Err(FormatError(format!(
                "its `Version` is {n}, not 1; {not_ours}"
            )))
        }
        None => return Err(FormatError(format!("it has no `\"Version\": 1`; {not_ours}"))),
    }
    let mut s: [Option<&str>; 4] = [None; 4];
    for (i, k) in JSON_KEYS[1..].iter().enumerate() {
        s[i] = match m.get(*k) {
            None => None,
            Some(Value::String(v)) => Some(v.as_str()).filter(|v| !v.is_empty()),
            Some(other) => {
                return Err(FormatError(format!(
                    "its `{k}` is {}, not a string",
                    json_kind(other)
                )))
            }
        };
    }
    let expiration = match s[3] {
        None => None,
        Some(e) => Some(parse_rfc3339(e).map_err(|_| {
            FormatError(format!(
                "its `Expiration` {} is not an RFC 3339 time",
                Value::from(e)
            ))
        })?),
    };
    let (Some(akid), Some(secret)) = (s[0], s[1]) else {
        return Ok(None);
    };
    Ok(Some(Credentials {
        access_key_id: akid.to_string(),
        secret_access_key: Secret::new(secret),
        session_token: s[2].map(Secret::new),
        expiration,
    }))
}

/// The file's new text: [`json_render`], once the old bytes are known to be a file awscredd
/// may replace (see [`json_read`]).
pub fn json_rewrite(bytes: &[u8], c: &Credentials) -> Result<String, FormatError> {
    json_read(bytes)?;
    Ok(json_render(c))
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
                "AWS_ACCESS_KEY_ID=ASIANEW\nAWS_SECRET_ACCESS_KEY=newsecret\nAWS_SESSION_TOKEN=newtoken\nAWS_CREDENTIAL_EXPIRATION=2030-01-02T03:04:05Z\n",
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

    /// systemd joins the line after a `\` (and the lines of a quoted value) to it: an AWS line
    /// there would be hidden from `EnvironmentFile=`, so the file is refused, never written so.
    #[test]
    fn env_lines_that_systemd_would_join_to_the_line_before_are_refused() {
        for (bad, want) in [
            ("OPTS=a \\\nAWS_ACCESS_KEY_ID=old\n", "line 2: systemd reads `AWS_ACCESS_KEY_ID=`"),
            ("# note \\\nAWS_SECRET_ACCESS_KEY=old\n", "line 1 ends in a `\\`"),
            ("X=\"a\nAWS_ACCESS_KEY_ID=old\nb\"\n", "quoted value opened on line 1"),
            ("OTHER=1\nOPTS=a \\\n", "the file ends inside a line carried on"),
            ("OPTS=a \\\r\n", "line 1 ends in a `\\`"),
            ("OPTS='open\n", "quoted value opened on line 1 is still open"),
        ] {
            let e = env_rewrite(bad.as_bytes(), &creds(true)).unwrap_err();
            assert!(e.0.contains(want), "{bad:?}: {e}");
            assert_eq!(env_read(bad.as_bytes()).unwrap_err(), e, "check and write agree");
        }
        // A continued line that ends before the AWS lines is fine, and kept.
        let ok = "OPTS=a \\\n  b\nX=\"multi\nline\"\nAWS_ACCESS_KEY_ID=old\n";
        let out = env_rewrite(ok.as_bytes(), &creds(true)).unwrap();
        assert!(
            out.starts_with("OPTS=a \\\n  b\nX=\"multi\nline\"\nAWS_ACCESS_KEY_ID=ASIANEW\n"),
            "{out}"
        );
        // An escaped backslash does not carry on.
        assert!(env_rewrite(b"X=a\\\\\n", &creds(true)).is_ok());
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

    /// A write replaces the whole file: anything but awscredd's own Version 1 JSON (or an empty
    /// file) is refused by the read `check` does and by the write alike.
    #[test]
    fn json_files_that_are_not_credential_process_json_are_refused() {
        for (bad, want) in [
            ("garbage", "not valid JSON (expected value at line 1 column 1)"),
            ("{\"Logging\": {\"LogLevel\": {}}}", "a key \"Logging\""),
            ("[1]", "holds an array, not an object"),
            ("{}", "no `\"Version\": 1`"),
            ("{\"Version\": 2, \"AccessKeyId\": \"A\"}", "`Version` is 2, not 1"),
            ("{\"Version\": 1, \"AccessKeyId\": 7}", "`AccessKeyId` is a number"),
            (
                "{\"Version\": 1, \"AccessKeyId\": \"A\", \"SecretAccessKey\": \"S\", \"Expiration\": \"soon\"}",
                "`Expiration` \"soon\" is not an RFC 3339 time",
            ),
        ] {
            let e = json_rewrite(bad.as_bytes(), &creds(true)).unwrap_err();
            assert!(e.0.contains(want), "{bad}: {e}");
            assert_eq!(json_read(bad.as_bytes()).unwrap_err(), e);
        }
        for ok in ["", " \n", "{\"Version\": 1}", &json_render(&creds(false))] {
            assert_eq!(
                json_rewrite(ok.as_bytes(), &creds(true)).unwrap(),
                json_render(&creds(true))
            );
        }
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
