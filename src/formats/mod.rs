//! The output formats (SPEC "Other output formats"), each a [`Codec`]: what a file holds, and
//! the file's new text for new credentials, as pure functions of its bytes. [`Format`] is the
//! config's choice with the options only that format has; [`FORMATS`] the list every message
//! names them from.
//!
//! - `ini` ([`ini`]): the AWS shared credentials file, edited in place by
//!   [`crate::profile_file::edit`].
//! - `env`: an environment file (`KEY=value` lines) for systemd's `EnvironmentFile=`, docker's
//!   `--env-file` and dotenv libraries. Lines awscredd does not own are kept byte for byte.
//! - `json`: `credential_process` Version 1 JSON.
//! - `launch-settings`: a .NET `Properties/launchSettings.json`; every selected launch profile's
//!   `environmentVariables` gets the three AWS variables, edited in place in the text
//!   ([`jsonc`]): every other byte stays as it is — numbers as written, escapes,
//!   duplicate keys, indentation. A file that is not plain JSON (comments and trailing commas
//!   included, though dotnet reads them) is never written.

pub mod ini;
pub mod jsonc;

use crate::credentials::{format_utc, held_expiry, parse_rfc3339, Credentials, Secret};
use crate::profile_file::edit::{EditError, Pieces};
use crate::profile_file::ParseError;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

/// What an output file holds, with the options only that format has.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// The AWS shared credentials file.
    #[default]
    Ini,
    Env,
    Json,
    LaunchSettings(LaunchSettings),
}

/// `format = "launch-settings"` and its options.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LaunchSettings {
    /// Only these launch profiles (default: every one).
    pub launch_profiles: Option<Vec<String>>,
}

/// Every format: its name in the config, and what it is, for people.
pub const FORMATS: [(&str, &str); 4] = [
    ("ini", "the credentials file"),
    ("env", "an environment file"),
    ("json", "credential_process JSON"),
    ("launch-settings", "a .NET launchSettings.json"),
];

impl Format {
    /// The name used in the config (`format = "..."`).
    pub fn name(&self) -> &'static str {
        let i = match self {
            Format::Ini => 0,
            Format::Env => 1,
            Format::Json => 2,
            Format::LaunchSettings(_) => 3,
        };
        FORMATS[i].0
    }

    /// Parses a config value (a format's options at their defaults).
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "ini" => Some(Format::Ini),
            "env" => Some(Format::Env),
            "json" => Some(Format::Json),
            "launch-settings" => Some(Format::LaunchSettings(LaunchSettings::default())),
            _ => None,
        }
    }

    /// The formats for an error message: `"ini" (the credentials file), "env" (...), ...`.
    pub fn choices() -> String {
        let all: Vec<String> = FORMATS
            .iter()
            .map(|(name, what)| format!("\"{name}\" ({what})"))
            .collect();
        all.join(", ")
    }

    /// The article before the name in a sentence: "an env file", "a json file".
    pub fn article(&self) -> &'static str {
        match self.name().as_bytes().first() {
            Some(b'a' | b'e' | b'i' | b'o' | b'u') => "an",
            _ => "a",
        }
    }

    /// Whether the file holds exactly one profile (every format but the credentials file).
    pub fn holds_one_profile(&self) -> bool {
        !matches!(self, Format::Ini)
    }

    /// How the format is read and written.
    pub fn codec(&self) -> &dyn Codec {
        match self {
            Format::Ini => &ini::Ini,
            Format::Env => &Env,
            Format::Json => &Json,
            Format::LaunchSettings(ls) => ls,
        }
    }

    /// Whether the file's own content says when its credentials expire.
    pub fn holds_expiry(&self) -> bool {
        self.codec().holds_expiry()
    }
}

/// Why a file cannot be read or written, by the format's kind of problem; the file is left
/// untouched.
#[derive(Debug)]
pub enum CodecError {
    /// Not something the AWS SDKs' profile parser reads (`ini`).
    Unparseable(ParseError),
    /// The edit was refused (duplicate sections, an unwritable value: `ini`).
    Edit(EditError),
    /// A file of another format that cannot be used.
    Format(FormatError),
}

impl From<FormatError> for CodecError {
    fn from(e: FormatError) -> Self {
        CodecError::Format(e)
    }
}

/// One format, read and written as pure functions of the file's bytes.
pub trait Codec {
    /// The credentials the file holds, by profile; a one-profile format's are `profile`'s.
    fn read(
        &self,
        bytes: &[u8],
        profile: Option<&str>,
    ) -> Result<BTreeMap<String, Credentials>, CodecError>;

    /// The file's new text for `profiles` into `out` (pieces of the old bytes and new text),
    /// from its old bytes (`None`: no file yet); whether it differs from them. A profile whose
    /// part cannot be written is left out and pushed to `refused` while others remain.
    fn rewrite<'a>(
        &self,
        old: Option<&'a [u8]>,
        profiles: &[(String, Credentials)],
        profile: Option<&str>,
        out: &mut Pieces<'a>,
        refused: &mut Vec<(String, CodecError)>,
    ) -> Result<bool, CodecError>;

    /// Whether the file's own content says when its credentials expire (else the state
    /// file's record does).
    fn holds_expiry(&self) -> bool {
        true
    }
}

/// A one-profile format's pair of pure functions, as a [`Codec`].
trait OneProfile {
    fn read_one(&self, bytes: &[u8]) -> Result<Option<Credentials>, FormatError>;
    fn rewrite_one(&self, old: Option<&[u8]>, c: &Credentials) -> Result<String, FormatError>;
    fn expiry_held(&self) -> bool {
        true
    }
}

impl<T: OneProfile> Codec for T {
    fn read(
        &self,
        bytes: &[u8],
        profile: Option<&str>,
    ) -> Result<BTreeMap<String, Credentials>, CodecError> {
        Ok(match (profile, self.read_one(bytes)?) {
            (Some(name), Some(c)) => BTreeMap::from([(name.to_string(), c)]),
            _ => BTreeMap::new(),
        })
    }

    fn rewrite<'a>(
        &self,
        old: Option<&'a [u8]>,
        profiles: &[(String, Credentials)],
        profile: Option<&str>,
        out: &mut Pieces<'a>,
        _refused: &mut Vec<(String, CodecError)>,
    ) -> Result<bool, CodecError> {
        let Some((_, c)) = profiles.iter().find(|(n, _)| Some(n.as_str()) == profile) else {
            return Err(FormatError::new("no credentials for its profile").into());
        };
        use crate::profile_file::edit::Sink as _;
        let text = self.rewrite_one(old, c)?;
        out.clear();
        out.add(&text);
        Ok(old != Some(text.as_bytes()))
    }

    fn holds_expiry(&self) -> bool {
        self.expiry_held()
    }
}

/// `format = "env"`.
struct Env;

impl OneProfile for Env {
    fn read_one(&self, bytes: &[u8]) -> Result<Option<Credentials>, FormatError> {
        env_read(bytes)
    }
    fn rewrite_one(&self, old: Option<&[u8]>, c: &Credentials) -> Result<String, FormatError> {
        env_rewrite(old.unwrap_or_default(), c)
    }
}

/// `format = "json"`.
struct Json;

impl OneProfile for Json {
    fn read_one(&self, bytes: &[u8]) -> Result<Option<Credentials>, FormatError> {
        json_read(bytes)
    }
    fn rewrite_one(&self, old: Option<&[u8]>, c: &Credentials) -> Result<String, FormatError> {
        json_rewrite(old.unwrap_or_default(), c)
    }
}

impl OneProfile for LaunchSettings {
    fn read_one(&self, bytes: &[u8]) -> Result<Option<Credentials>, FormatError> {
        launch_read(bytes, self.launch_profiles.as_deref())
    }
    fn rewrite_one(&self, old: Option<&[u8]>, c: &Credentials) -> Result<String, FormatError> {
        let only = self.launch_profiles.as_deref();
        match old {
            Some(old) => launch_rewrite(old, c, only),
            None => launch_new(c, only),
        }
    }
    /// The launch profiles' variables carry no expiry.
    fn expiry_held(&self) -> bool {
        false
    }
}

/// Why a file of one of these formats cannot be read or written; the file is left untouched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormatError {
    pub message: String,
    /// Where in the file (1-based line and column), when the reason is at one place there.
    pub at: Option<(usize, usize)>,
}

impl FormatError {
    pub fn new(message: impl Into<String>) -> Self {
        FormatError {
            message: message.into(),
            at: None,
        }
    }

    /// An error at byte `offset` of `text`.
    pub fn at(text: &str, offset: usize, message: impl Into<String>) -> Self {
        FormatError {
            message: message.into(),
            at: Some(jsonc::position(text, offset)),
        }
    }
}

/// The message; the position is for the caller to put before it (`FILE:LINE:COL: ...`).
impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

fn text_of(bytes: &[u8]) -> Result<&str, FormatError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| FormatError::new(format!("it is not UTF-8 (at byte {})", e.valid_up_to())))?;
    if let Some(i) = text.find('\0') {
        let line = text[..i].matches('\n').count() + 1;
        return Err(FormatError::new(format!("line {line} holds a NUL byte")));
    }
    Ok(text)
}

/// Whether a text holds only JSON whitespace: an empty file, taken over like a missing one.
fn blank(text: &str) -> bool {
    text.trim_matches([' ', '\t', '\r', '\n']).is_empty()
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

/// A carry into a line, and the line (1-based) where it started.
type CarryFrom = Option<(Carry, usize)>;

/// For every line of `text` (split after each `\n`), whether systemd reads it as part of an
/// earlier line, and since which line (1-based); then the same for a line after the last one.
/// A small copy of the states of systemd's `parse_env_file_internal`.
fn env_carries(text: &str) -> (Vec<CarryFrom>, CarryFrom) {
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
    let mut carry: CarryFrom = None;
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
/// an AWS line whose value systemd reads on into the next lines, and a file that ends inside a
/// line carried on (a line awscredd appends would be lost).
fn env_lines(text: &str) -> Result<Vec<(&str, Option<usize>)>, FormatError> {
    let (carries, end) = env_carries(text);
    let mut out: Vec<(&str, Option<usize>)> = Vec::new();
    for (i, (line, carry)) in text.split_inclusive('\n').zip(carries).enumerate() {
        let body = line.trim_end_matches(['\n', '\r']);
        let key = env_assignment(body).and_then(|(k, _)| ENV_KEYS.iter().position(|key| *key == k));
        if let Some((kind, from)) = carry {
            aws_line_carried_on(&out, kind, from)?;
        }
        if let (Some(k), Some((kind, from))) = (key, carry) {
            return Err(FormatError::new(format!(
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
        aws_line_carried_on(&out, kind, from)?;
        return Err(FormatError::new(format!(
            "the file ends inside a line carried on ({}), so systemd would read a line \
             awscredd adds as part of it; end line {from} differently",
            carry_reason(kind, from)
        )));
    }
    Ok(out)
}

/// Refuses a variable of ours whose value systemd reads on into the next lines (an open quote,
/// a `\` at the end): a rewrite replaces its line alone, which would leave the rest of the
/// value to be read as lines of their own (a closing quote then opening a new value).
fn aws_line_carried_on(
    lines: &[(&str, Option<usize>)],
    kind: Carry,
    from: usize,
) -> Result<(), FormatError> {
    match from.checked_sub(1).and_then(|i| lines.get(i)) {
        Some((_, Some(k))) => Err(FormatError::new(format!(
            "line {from}: systemd reads the value of `{}=` on into the next line ({}); write \
             it on one line",
            ENV_KEYS[*k],
            carry_reason(kind, from)
        ))),
        _ => Ok(()),
    }
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
        expiration: found[3].map(held_expiry),
        account_id: None,
    }))
}

/// The characters AWS uses in credentials (key ids `A-Z0-9`, secrets and session tokens
/// base64, expiries RFC 3339), as said in errors.
pub const ENV_CHARACTERS: &str = "A-Z a-z 0-9 + / = . _ - :";

/// Whether `c` is one of [`ENV_CHARACTERS`]. Each means the same unquoted to `sh` and `bash`
/// (no expansion, globbing, redirection or command: `~` is not among them, so no tilde
/// expansion after `=` or `:`), to systemd's `EnvironmentFile=`, to docker's `--env-file`
/// (which does not unquote: quoting would change the value it reads) and to dotenv.
fn env_safe(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '.' | '_' | '-' | ':')
}

/// Checks that a value can be written unquoted on one line and read as the same bytes by every
/// reader of an env file; the error names the variable and the character, never the value.
fn plain(name: &str, v: &str) -> Result<(), FormatError> {
    if v.is_empty() {
        return Err(FormatError::new(format!(
            "the value of {name} is empty; refused"
        )));
    }
    let Some((at, c)) = v.char_indices().find(|(_, c)| !env_safe(*c)) else {
        return Ok(());
    };
    let what = if c.is_ascii_graphic() {
        format!("`{c}`")
    } else if c == ' ' {
        "a space".to_string()
    } else if c.is_control() {
        "a control character".to_string()
    } else {
        "a non-ASCII character".to_string()
    };
    Err(FormatError::new(format!(
        "the value of {name} has {what} at byte {at}, outside the characters AWS uses in \
         credentials ({ENV_CHARACTERS}); refused, since a shell sourcing the file could run it \
         and docker's `--env-file` would read quotes as part of the value"
    )))
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
    if blank(text) {
        return Ok(None);
    }
    let not_ours = "awscredd replaces only a credential_process Version 1 JSON file (or an \
                    empty one); move this file away or point `path` elsewhere";
    let v: Value = serde_json::from_str(text)
        .map_err(|e| FormatError::new(format!("it is not valid JSON ({e}); {not_ours}")))?;
    let Value::Object(m) = &v else {
        return Err(FormatError::new(format!(
            "it holds {}, not an object; {not_ours}",
            json_kind(&v)
        )));
    };
    if let Some(k) = m.keys().find(|k| !JSON_KEYS.contains(&k.as_str())) {
        return Err(FormatError::new(format!(
            "it has a key {} that credential_process Version 1 JSON does not hold; {not_ours}",
            Value::from(k.as_str())
        )));
    }
    match m.get("Version") {
        Some(n) if n.as_u64() == Some(1) => {}
        Some(n) => {
            return Err(FormatError::new(format!(
                "its `Version` is {n}, not 1; {not_ours}"
            )))
        }
        None => {
            return Err(FormatError::new(format!(
                "it has no `\"Version\": 1`; {not_ours}"
            )))
        }
    }
    let mut s: [Option<&str>; 4] = [None; 4];
    for (i, k) in JSON_KEYS[1..].iter().enumerate() {
        s[i] = match m.get(*k) {
            None => None,
            Some(Value::String(v)) => Some(v.as_str()).filter(|v| !v.is_empty()),
            Some(other) => {
                return Err(FormatError::new(format!(
                    "its `{k}` is {}, not a string",
                    json_kind(other)
                )))
            }
        };
    }
    let expiration = match s[3] {
        None => None,
        Some(e) => Some(parse_rfc3339(e).map_err(|_| {
            FormatError::new(format!(
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
        account_id: None,
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

impl From<jsonc::Error> for FormatError {
    fn from(e: jsonc::Error) -> Self {
        FormatError {
            message: e.message,
            at: Some((e.line, e.column)),
        }
    }
}

/// The text of a launch-settings file after its BOM, and the BOM.
fn launch_text(bytes: &[u8]) -> Result<(&'static str, &str), FormatError> {
    let text = text_of(bytes)?;
    Ok(match text.strip_prefix(BOM) {
        Some(body) => (BOM, body),
        None => ("", text),
    })
}

/// One launch profile to write into: its name, its object, and its `environmentVariables`
/// objects (a duplicated key gives several; all are written).
struct Slot<'v> {
    name: String,
    profile: &'v jsonc::Value,
    envs: Vec<&'v jsonc::Value>,
}

/// The members of `obj` named `key` (decoded: `"\u0070rofiles"` is `profiles`).
fn named<'v>(
    text: &'v str,
    obj: &'v [jsonc::Member],
    key: &'v str,
) -> impl Iterator<Item = &'v jsonc::Member> + 'v {
    obj.iter()
        .filter(move |m| jsonc::decode(&text[m.key.clone()]).as_deref() == Some(key))
}

/// The launch profiles to write into: all under every `profiles` object, or those named in
/// `launch_profiles` (each must exist); none is an error, as is a value of the wrong kind on
/// the way.
fn launch_slots<'v>(
    text: &'v str,
    root: &'v jsonc::Value,
    only: Option<&[String]>,
) -> Result<Vec<Slot<'v>>, FormatError> {
    let lists = profile_lists(text, root)?;
    let Some(&(first, _)) = lists.first() else {
        return Err(FormatError::at(
            text,
            root.span.start,
            "it has no `profiles` object",
        ));
    };
    let mut slots = Vec::new();
    for m in lists.iter().flat_map(|(_, list)| list.iter()) {
        let Some(name) = jsonc::decode(&text[m.key.clone()]) else {
            continue;
        };
        if only.is_some_and(|o| !o.contains(&name)) {
            continue;
        }
        slots.push(slot(text, name, &m.value)?);
    }
    let err = |message: String| FormatError::at(text, first, message);
    for n in only.unwrap_or_default() {
        if !slots.iter().any(|s| &s.name == n) {
            return Err(err(format!(
                "it has no launch profile `{n}` (launch_profiles names it)"
            )));
        }
    }
    if slots.is_empty() {
        return Err(err(
            "no launch profile to write the credentials into: `profiles` is empty; add one, \
             e.g. `\"Api\": { \"commandName\": \"Project\" }`"
                .into(),
        ));
    }
    Ok(slots)
}

/// The members of `v`, which must be an object: else an error at it that names it as `what`.
fn object<'v>(
    text: &str,
    v: &'v jsonc::Value,
    what: impl FnOnce() -> String,
) -> Result<&'v [jsonc::Member], FormatError> {
    v.members().ok_or_else(|| {
        let message = format!("{} is {}, not an object", what(), v.kind_name());
        FormatError::at(text, v.span.start, message)
    })
}

/// Every `profiles` object of the file (a duplicated key gives several), each with where it
/// starts; a `profiles` that is not an object, or a file that is not one, is an error.
fn profile_lists<'v>(
    text: &'v str,
    root: &'v jsonc::Value,
) -> Result<Vec<(usize, &'v [jsonc::Member])>, FormatError> {
    let err = |at: usize, message: String| FormatError::at(text, at, message);
    let Some(top) = root.members() else {
        return Err(err(
            root.span.start,
            format!(
                "the file holds {}, not an object with `profiles`",
                root.kind_name()
            ),
        ));
    };
    let mut lists = Vec::new();
    for m in named(text, top, "profiles") {
        let list = object(text, &m.value, || "`profiles`".to_string())?;
        lists.push((m.value.span.start, list));
    }
    Ok(lists)
}

/// The launch profile `name` (its value `profile`) as a slot; it must be an object, and so
/// must every `environmentVariables` in it.
fn slot<'v>(
    text: &'v str,
    name: String,
    profile: &'v jsonc::Value,
) -> Result<Slot<'v>, FormatError> {
    let members = object(text, profile, || format!("launch profile `{name}`"))?;
    let mut envs = Vec::new();
    for e in named(text, members, "environmentVariables") {
        object(text, &e.value, || {
            format!("`environmentVariables` of launch profile `{name}`")
        })?;
        envs.push(&e.value);
    }
    Ok(Slot {
        name,
        profile,
        envs,
    })
}

/// The index in [`LAUNCH_KEYS`] of a member's key.
fn launch_key(text: &str, m: &jsonc::Member) -> Option<usize> {
    let k = jsonc::decode(&text[m.key.clone()])?;
    LAUNCH_KEYS.iter().position(|l| *l == k)
}

/// The credentials every selected launch profile holds; `None` when the file is empty (it is
/// taken over like a missing one), or any selected profile lacks them, or any two
/// `environmentVariables` (or two occurrences of one key) differ.
pub fn launch_read(
    bytes: &[u8],
    only: Option<&[String]>,
) -> Result<Option<Credentials>, FormatError> {
    let (_, text) = launch_text(bytes)?;
    if blank(text) {
        return Ok(None);
    }
    let root = jsonc::parse(text)?;
    let mut found: Option<[Option<String>; 3]> = None;
    for slot in launch_slots(text, &root, only)? {
        if slot.envs.is_empty() {
            return Ok(None);
        }
        for env in slot.envs {
            let mut vals: [Option<String>; 3] = Default::default();
            for m in env.members().unwrap_or_default() {
                let Some(i) = launch_key(text, m) else {
                    continue;
                };
                let v = Some(&m.value)
                    .filter(|v| v.kind == jsonc::Kind::String)
                    .and_then(|v| jsonc::decode(&text[v.span.clone()]))
                    .filter(|v| !v.is_empty());
                match (v, &vals[i]) {
                    (None, _) => return Ok(None),
                    (Some(v), Some(prev)) if v != *prev => return Ok(None),
                    (Some(v), _) => vals[i] = Some(v),
                }
            }
            match &found {
                Some(f) if *f != vals => return Ok(None),
                Some(_) => {}
                None => found = Some(vals),
            }
        }
    }
    let Some([Some(akid), Some(secret), token]) = found else {
        return Ok(None);
    };
    Ok(Some(Credentials {
        access_key_id: akid,
        secret_access_key: Secret::new(secret),
        session_token: token.map(Secret::new),
        expiration: None,
        account_id: None,
    }))
}

/// How the file is written, for the lines awscredd adds: its line ending and indent unit (the
/// indentation of its first indented line).
struct Layout {
    eol: &'static str,
    unit: String,
}

impl Layout {
    fn of(text: &str) -> Layout {
        let unit = text
            .lines()
            .map(|l| &l[..l.len() - l.trim_start_matches([' ', '\t']).len()])
            .zip(text.lines())
            .find(|(ws, l)| !ws.is_empty() && !l.trim().is_empty())
            .map_or_else(|| "  ".to_string(), |(ws, _)| ws.to_string());
        Layout {
            eol: if text.contains("\r\n") { "\r\n" } else { "\n" },
            unit,
        }
    }
}

/// The leading whitespace of the line holding byte `at`.
fn indent_at(text: &str, at: usize) -> &str {
    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let line = &text[start..];
    &line[..line.len() - line.trim_start_matches([' ', '\t']).len()]
}

/// `a..b` grown to its whole line(s) when nothing but whitespace shares them.
fn whole_lines(text: &str, a: usize, b: usize) -> Range<usize> {
    let start = text[..a].rfind('\n').map_or(0, |i| i + 1);
    let end = text[b..].find('\n').map_or(text.len(), |i| b + i + 1);
    let blank = |s: &str| s.trim_matches([' ', '\t', '\r', '\n']).is_empty();
    if blank(&text[start..a]) && blank(&text[b..end]) {
        start..end
    } else {
        a..b
    }
}

/// Where the first line break is in the whitespace and comments from `from` on (before a
/// `\r\n`'s `\r`), if there is one before the next token.
fn line_break_after(text: &str, from: usize) -> Option<usize> {
    let b = text.as_bytes();
    let mut i = from;
    loop {
        match (b.get(i), b.get(i + 1)) {
            (Some(b'\n'), _) => {
                return Some(if i > from && b[i - 1] == b'\r' {
                    i - 1
                } else {
                    i
                })
            }
            (Some(b' ' | b'\t' | b'\r'), _) => i += 1,
            (Some(b'/'), Some(b'/')) => i += text[i..].find('\n')?,
            (Some(b'/'), Some(b'*')) => i += 2 + text[i + 2..].find("*/")? + 2,
            _ => return None,
        }
    }
}

/// A member to add: `"KEY": "value"`, or the `environmentVariables` object with such members.
enum Entry {
    Plain(String),
    Env(Vec<String>),
}

impl Entry {
    fn render(&self, indent: &str, layout: &Layout, inline: bool) -> String {
        match self {
            Entry::Plain(m) => m.clone(),
            Entry::Env(ms) if inline => {
                format!("\"environmentVariables\": {{ {} }}", ms.join(", "))
            }
            Entry::Env(ms) => {
                let eol = layout.eol;
                let inner: Vec<String> = ms
                    .iter()
                    .map(|m| format!("{eol}{indent}{}{m}", layout.unit))
                    .collect();
                format!(
                    "\"environmentVariables\": {{{}{eol}{indent}}}",
                    inner.join(",")
                )
            }
        }
    }
}

/// The edits adding `entries` at the end of object `obj`: on lines of their own, indented as
/// its last member, when that ends its line; else on its line.
fn insert_members(
    text: &str,
    layout: &Layout,
    obj: &jsonc::Value,
    entries: &[Entry],
    edits: &mut Vec<(Range<usize>, String)>,
) {
    let (open, close) = (obj.span.start, obj.span.end - 1);
    let eol = layout.eol;
    let Some(last) = obj.members().and_then(<[jsonc::Member]>::last) else {
        let base = indent_at(text, open);
        let inner = format!("{base}{}", layout.unit);
        let added: Vec<String> = entries
            .iter()
            .map(|e| format!("{eol}{inner}{}", e.render(&inner, layout, false)))
            .collect();
        let added = added.join(",");
        if blank(&text[open + 1..close]) {
            edits.push((open + 1..close, format!("{added}{eol}{base}")));
        } else {
            edits.push((open + 1..open + 1, added));
        }
        return;
    };
    let after = last.comma.map_or(last.value.span.end, |c| c + 1);
    match line_break_after(text, after).filter(|nl| *nl < close) {
        Some(nl) => {
            let line_start = text[..last.key.start].rfind('\n').map_or(0, |i| i + 1);
            let indent = if line_start <= open {
                format!("{}{}", indent_at(text, open), layout.unit)
            } else {
                indent_at(text, last.key.start).to_string()
            };
            let added: Vec<String> = entries
                .iter()
                .map(|e| format!("{eol}{indent}{}", e.render(&indent, layout, false)))
                .collect();
            let mut added = added.join(",");
            match last.comma {
                Some(_) => added.push(','),
                None => edits.push((after..after, ",".into())),
            }
            edits.push((nl..nl, added));
        }
        None => {
            let added: Vec<String> = entries.iter().map(|e| e.render("", layout, true)).collect();
            let added = added.join(", ");
            let t = match last.comma {
                Some(_) => format!(" {added},"),
                None => format!(", {added}"),
            };
            edits.push((after..after, t));
        }
    }
}

/// The edits setting the three variables in one `environmentVariables` object: each value
/// replaced where it is (every occurrence of a duplicated key), a missing one added at the
/// end, `AWS_SESSION_TOKEN` removed when there is none (its place taken by an added one).
fn edit_env(
    text: &str,
    layout: &Layout,
    env: &jsonc::Value,
    literals: &[Option<String>; 3],
    edits: &mut Vec<(Range<usize>, String)>,
) {
    let members = env.members().unwrap_or_default();
    let mut present = [false; 3];
    let mut drops = Vec::new();
    for (j, m) in members.iter().enumerate() {
        let Some(i) = launch_key(text, m) else {
            continue;
        };
        present[i] = true;
        match &literals[i] {
            Some(lit) if text[m.value.span.clone()] != **lit => {
                edits.push((m.value.span.clone(), lit.clone()));
            }
            Some(_) => {}
            None => drops.push(j),
        }
    }
    let mut adds: Vec<String> = (0..3)
        .filter(|i| !present[*i])
        .filter_map(|i| Some(format!("\"{}\": {}", LAUNCH_KEYS[i], literals[i].as_ref()?)))
        .collect();
    let paired = drops.len().min(adds.len());
    for (j, add) in drops.drain(..paired).zip(adds.drain(..paired)) {
        edits.push((members[j].key.start..members[j].value.span.end, add));
    }
    for &j in &drops {
        let m = &members[j];
        match m.comma {
            Some(comma) => edits.push((whole_lines(text, m.key.start, comma + 1), String::new())),
            None => {
                // The last member: the comma after the last member kept goes with it.
                let kept = (0..j).rev().find(|k| !drops.contains(k));
                if let Some(c) = kept.and_then(|k| members[k].comma) {
                    edits.push((c..c + 1, String::new()));
                }
                edits.push((
                    whole_lines(text, m.key.start, m.value.span.end),
                    String::new(),
                ));
            }
        }
    }
    if !adds.is_empty() {
        let entries: Vec<Entry> = adds.into_iter().map(Entry::Plain).collect();
        insert_members(text, layout, env, &entries, edits);
    }
}

/// `text` with `edits` (ranges of it, none overlapping) replaced.
fn apply(text: &str, mut edits: Vec<(Range<usize>, String)>) -> Result<String, FormatError> {
    edits.sort_by_key(|(r, _)| r.start);
    let mut out = String::with_capacity(text.len() + 4096);
    let mut at = 0;
    for (r, new) in edits {
        if r.start < at {
            return Err(FormatError::new(
                "cannot write it: two edits overlap (a bug)",
            ));
        }
        out.push_str(&text[at..r.start]);
        out.push_str(&new);
        at = r.end;
    }
    out.push_str(&text[at..]);
    Ok(out)
}

/// The file's new text: the three variables set in the `environmentVariables` of every
/// selected launch profile (the object added when missing); every other byte kept as it is.
pub fn launch_rewrite(
    bytes: &[u8],
    c: &Credentials,
    only: Option<&[String]>,
) -> Result<String, FormatError> {
    let (bom, text) = launch_text(bytes)?;
    if blank(text) {
        return launch_new(c, only);
    }
    let root = jsonc::parse(text)?;
    let slots = launch_slots(text, &root, only)?;
    let literal = |s: &str| Value::from(s).to_string();
    let literals = [
        Some(literal(&c.access_key_id)),
        Some(literal(c.secret_access_key.expose())),
        c.session_token.as_ref().map(|t| literal(t.expose())),
    ];
    let layout = Layout::of(text);
    let mut edits = Vec::new();
    for slot in &slots {
        if slot.envs.is_empty() {
            let members = (0..3)
                .filter_map(|i| Some(format!("\"{}\": {}", LAUNCH_KEYS[i], literals[i].as_ref()?)))
                .collect();
            insert_members(
                text,
                &layout,
                slot.profile,
                &[Entry::Env(members)],
                &mut edits,
            );
        }
        for env in &slot.envs {
            edit_env(text, &layout, env, &literals, &mut edits);
        }
    }
    Ok(format!("{bom}{}", apply(text, edits)?))
}

/// The text of a new `launchSettings.json` for a file that does not exist yet (or is empty):
/// one launch profile `awscredd` unless `launch_profiles` names others.
pub fn launch_new(c: &Credentials, only: Option<&[String]>) -> Result<String, FormatError> {
    let names: Vec<String> = only.map_or_else(|| vec!["awscredd".to_string()], <[String]>::to_vec);
    let profiles: Vec<String> = names
        .iter()
        .map(|n| {
            format!(
                "    {}: {{\n      \"commandName\": \"Project\"\n    }}",
                Value::from(n.as_str())
            )
        })
        .collect();
    let skeleton = format!(
        "{{\n  \"profiles\": {{\n{}\n  }}\n}}\n",
        profiles.join(",\n")
    );
    launch_rewrite(skeleton.as_bytes(), c, only)
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
            account_id: None,
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

    /// Issue 27 item 2: a value with a character a shell would act on (or docker would read
    /// differently) is refused, naming the variable and the character but not the value.
    #[test]
    fn env_values_outside_the_characters_aws_uses_are_refused() {
        for c in ";&|()<>{}~*?[]!%#$`'\" \\\t\né,@^".chars() {
            let mut creds = creds(true);
            creds.session_token = Some(Secret::new(format!("tok{c}en")));
            let e = env_rewrite(b"", &creds).unwrap_err();
            assert!(
                e.message.contains("AWS_SESSION_TOKEN has")
                    && e.message.contains("at byte 3")
                    && !e.message.contains("tok"),
                "{c:?}: {e}"
            );
        }
        let mut ok = creds(true);
        ok.secret_access_key = Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCY=EXAMPLE_-.:");
        assert!(env_rewrite(b"", &ok).is_ok());
    }

    /// systemd joins the line after a `\` (and the lines of a quoted value) to it: an AWS line
    /// there would be hidden from `EnvironmentFile=`, so the file is refused, never written so.
    /// Found by `fuzz/fuzz_targets/env_file.rs`: an AWS line whose quote closed on the next
    /// line was replaced alone, so the next line's closing quote opened a new value that
    /// swallowed the lines awscredd appended; the file written could not be read back.
    #[test]
    fn env_aws_values_carried_on_to_the_next_line_are_refused() {
        for (bad, want) in [
            (
                "AWS_ACCESS_KEY_ID=\"q\r\nOTHER=\"x\r\nAWS_ACCESS_KEY_ID=d\n",
                "line 1: systemd reads the value of `AWS_ACCESS_KEY_ID=` on into the next line \
                 (a quoted value opened on line 1 is still open)",
            ),
            (
                "A=1\nAWS_SECRET_ACCESS_KEY=abc \\\nX=1\n",
                "line 2: systemd reads the value of `AWS_SECRET_ACCESS_KEY=` on into the next \
                 line (line 2 ends in a `\\`",
            ),
            (
                "AWS_SESSION_TOKEN='open\n",
                "line 1: systemd reads the value of `AWS_SESSION_TOKEN=`",
            ),
        ] {
            let e = env_rewrite(bad.as_bytes(), &creds(true)).unwrap_err();
            assert!(e.message.contains(want), "{bad:?}: {e}");
            assert_eq!(env_read(bad.as_bytes()).unwrap_err(), e, "{bad:?}");
        }
        // A quoted value of another variable may go on over lines.
        let ok = "OTHER=\"a\nb\"\nAWS_ACCESS_KEY_ID=old\n";
        let new = env_rewrite(ok.as_bytes(), &creds(true)).unwrap();
        assert_eq!(env_read(new.as_bytes()).unwrap(), Some(creds(true)));
    }

    #[test]
    fn env_lines_that_systemd_would_join_to_the_line_before_are_refused() {
        for (bad, want) in [
            (
                "OPTS=a \\\nAWS_ACCESS_KEY_ID=old\n",
                "line 2: systemd reads `AWS_ACCESS_KEY_ID=`",
            ),
            (
                "# note \\\nAWS_SECRET_ACCESS_KEY=old\n",
                "line 1 ends in a `\\`",
            ),
            (
                "X=\"a\nAWS_ACCESS_KEY_ID=old\nb\"\n",
                "quoted value opened on line 1",
            ),
            (
                "OTHER=1\nOPTS=a \\\n",
                "the file ends inside a line carried on",
            ),
            ("OPTS=a \\\r\n", "line 1 ends in a `\\`"),
            (
                "OPTS='open\n",
                "quoted value opened on line 1 is still open",
            ),
        ] {
            let e = env_rewrite(bad.as_bytes(), &creds(true)).unwrap_err();
            assert!(e.message.contains(want), "{bad:?}: {e}");
            assert_eq!(
                env_read(bad.as_bytes()).unwrap_err(),
                e,
                "check and write agree"
            );
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
            assert!(e.message.contains(want), "{bad}: {e}");
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

    /// The three variables and nothing else change: numbers as written, escapes, duplicate
    /// keys, indentation, CRLF, the BOM and inline objects stay byte for byte.
    #[test]
    fn launch_settings_keep_every_byte_but_the_three_variables() {
        let old = concat!(
            "\u{feff}{\r\n",
            "    \"big\": 12345678901234567890123, \"price\": 1.50, \"e\": 1E+2,\r\n",
            "    \"name\": \"caf\\u00e9 \\/ x\", \"dup\": 1, \"dup\": 2,\r\n",
            "    \"profiles\": {\r\n",
            "        \"Api\": {\r\n",
            "            \"commandName\": \"Project\",\r\n",
            "            \"environmentVariables\": {\r\n",
            "                \"ASPNETCORE_ENVIRONMENT\": \"Development\",\r\n",
            "                \"AWS_ACCESS_KEY_ID\": \"OLD\",\r\n",
            "                \"X\": \"1\"\r\n",
            "            }\r\n",
            "        },\r\n",
            "        \"IIS\": { \"commandName\": \"IISExpress\" }\r\n",
            "    }\r\n",
            "}\r\n",
        );
        let want = concat!(
            "\u{feff}{\r\n",
            "    \"big\": 12345678901234567890123, \"price\": 1.50, \"e\": 1E+2,\r\n",
            "    \"name\": \"caf\\u00e9 \\/ x\", \"dup\": 1, \"dup\": 2,\r\n",
            "    \"profiles\": {\r\n",
            "        \"Api\": {\r\n",
            "            \"commandName\": \"Project\",\r\n",
            "            \"environmentVariables\": {\r\n",
            "                \"ASPNETCORE_ENVIRONMENT\": \"Development\",\r\n",
            "                \"AWS_ACCESS_KEY_ID\": \"ASIANEW\",\r\n",
            "                \"X\": \"1\",\r\n",
            "                \"AWS_SECRET_ACCESS_KEY\": \"newsecret\",\r\n",
            "                \"AWS_SESSION_TOKEN\": \"newtoken\"\r\n",
            "            }\r\n",
            "        },\r\n",
            "        \"IIS\": { \"commandName\": \"IISExpress\", \"environmentVariables\": { \"AWS_ACCESS_KEY_ID\": \"ASIANEW\", \"AWS_SECRET_ACCESS_KEY\": \"newsecret\", \"AWS_SESSION_TOKEN\": \"newtoken\" } }\r\n",
            "    }\r\n",
            "}\r\n",
        );
        let out = launch_rewrite(old.as_bytes(), &creds(true), None).unwrap();
        assert_eq!(out, want);
        let back = launch_read(out.as_bytes(), None).unwrap().unwrap();
        assert_eq!(back.access_key_id, "ASIANEW");
        assert_eq!(back.session_token.unwrap().expose(), "newtoken");
        assert_eq!(
            launch_rewrite(out.as_bytes(), &creds(true), None).unwrap(),
            out
        );
    }

    /// Where the variables go in objects of every shape, and how the token goes.
    #[test]
    fn launch_settings_edits_by_shape() {
        let wrap =
            |env: &str| format!("{{\"profiles\": {{\"A\": {{\"environmentVariables\": {env}}}}}}}");
        let k = "\"AWS_ACCESS_KEY_ID\": \"ASIANEW\"";
        let s = "\"AWS_SECRET_ACCESS_KEY\": \"newsecret\"";
        let t = "\"AWS_SESSION_TOKEN\": \"newtoken\"";
        let cases: Vec<(String, bool, String)> = vec![
            ("{}".into(), true, format!("{{\n  {k},\n  {s},\n  {t}\n}}")),
            ("{ }".into(), false, format!("{{\n  {k},\n  {s}\n}}")),
            (
                "{ \"A\": \"1\" }".into(),
                false,
                format!("{{ \"A\": \"1\", {k}, {s} }}"),
            ),
            // The token goes: the last member, with the comma before it.
            (
                format!("{{\n  {k},\n  {s},\n  \"AWS_SESSION_TOKEN\": \"old\"\n}}"),
                false,
                format!("{{\n  {k},\n  {s}\n}}"),
            ),
            // ...a member in the middle, with its comma and line.
            (
                format!("{{\n  \"AWS_SESSION_TOKEN\": \"old\",\n  {k},\n  {s}\n}}"),
                false,
                format!("{{\n  {k},\n  {s}\n}}"),
            ),
            // ...its place taken by a variable missing.
            (
                format!("{{\n  {k},\n  \"AWS_SESSION_TOKEN\": \"old\"\n}}"),
                false,
                format!("{{\n  {k},\n  {s}\n}}"),
            ),
            // Duplicates: every occurrence written.
            (
                "{\"AWS_ACCESS_KEY_ID\": \"a\", \"AWS_ACCESS_KEY_ID\": \"b\"}".into(),
                false,
                format!("{{{k}, {k}, {s}}}"),
            ),
            // An escaped key is the same key.
            (
                "{\"AWS_ACCESS_KEY_\\u0049D\": \"a\"}".into(),
                false,
                format!("{{\"AWS_ACCESS_KEY_\\u0049D\": \"ASIANEW\", {s}}}"),
            ),
        ];
        for (env, token, want_env) in cases {
            let out = launch_rewrite(wrap(&env).as_bytes(), &creds(token), None).unwrap();
            assert_eq!(out, wrap(&want_env), "{env}");
            let again = launch_rewrite(out.as_bytes(), &creds(token), None).unwrap();
            assert_eq!(again, out, "a second write changes nothing");
            let back = launch_read(out.as_bytes(), None).unwrap();
            assert_eq!(
                back.map(|c| c.access_key_id),
                Some("ASIANEW".into()),
                "{out}"
            );
        }
        // A profile without the object, empty or not; the indent unit is the file's.
        let out = launch_rewrite(
            b"{\n\t\"profiles\": {\n\t\t\"A\": {}\n\t}\n}",
            &creds(false),
            None,
        )
        .unwrap();
        assert_eq!(
            out,
            format!("{{\n\t\"profiles\": {{\n\t\t\"A\": {{\n\t\t\t\"environmentVariables\": {{\n\t\t\t\t{k},\n\t\t\t\t{s}\n\t\t\t}}\n\t\t}}\n\t}}\n}}")
        );
        // Differing values in two launch profiles: due, and made equal by the write.
        let two = "{\"profiles\": {\"A\": {\"environmentVariables\": {\"AWS_ACCESS_KEY_ID\": \"1\", \"AWS_SECRET_ACCESS_KEY\": \"s\"}}, \"B\": {\"environmentVariables\": {\"AWS_ACCESS_KEY_ID\": \"2\", \"AWS_SECRET_ACCESS_KEY\": \"s\"}}}}";
        assert!(launch_read(two.as_bytes(), None).unwrap().is_none());
        let only = vec!["A".to_string()];
        assert!(launch_read(two.as_bytes(), Some(&only)).unwrap().is_some());
        // A new file, or an empty one.
        for old in ["", " \n"] {
            let out = launch_rewrite(old.as_bytes(), &creds(true), None).unwrap();
            assert_eq!(out, launch_new(&creds(true), None).unwrap());
            assert!(launch_read(old.as_bytes(), None).unwrap().is_none());
        }
        let new = launch_new(&creds(false), None).unwrap();
        assert_eq!(
            new,
            format!("{{\n  \"profiles\": {{\n    \"awscredd\": {{\n      \"commandName\": \"Project\",\n      \"environmentVariables\": {{\n        {k},\n        {s}\n      }}\n    }}\n  }}\n}}\n")
        );
    }

    /// Every shape of `environmentVariables` and launch profile, written with a token, without,
    /// and with again: each text is plain JSON, holds the credentials, and does not change on a
    /// second write.
    #[test]
    fn launch_settings_writes_of_every_shape_read_back_and_settle() {
        let envs = [
            None,
            Some("{}"),
            Some("{ }"),
            Some("{\"A\": \"1\"}"),
            Some("{\n  \"A\": \"1\"\n}"),
            Some("{\n  \"AWS_SESSION_TOKEN\": \"t\"\n}"),
            Some("{\"AWS_SESSION_TOKEN\": \"t\", \"AWS_SESSION_TOKEN\": \"u\"}"),
            Some("{\"AWS_ACCESS_KEY_ID\": 1, \"A\": [1, {\"b\": 2}], \"AWS_SESSION_TOKEN\": null}"),
        ];
        for env in envs {
            for multiline in [false, true] {
                let profile = match (env, multiline) {
                    (None, false) => "{ \"commandName\": \"Project\" }".to_string(),
                    (None, true) => "{\n      \"commandName\": \"Project\"\n    }".to_string(),
                    (Some(e), false) => format!("{{ \"environmentVariables\": {e} }}"),
                    (Some(e), true) => format!("{{\n      \"environmentVariables\": {e}\n    }}"),
                };
                let mut text = format!(
                    "{{\n  \"profiles\": {{\n    \"A\": {profile},\n    \"B\": {{}}\n  }}\n}}\n"
                );
                for token in [true, false, true, false] {
                    let out = launch_rewrite(text.as_bytes(), &creds(token), None)
                        .unwrap_or_else(|e| panic!("{text}: {e}"));
                    jsonc::parse(&out).unwrap_or_else(|e| panic!("{out}: {e:?}"));
                    let back = launch_read(out.as_bytes(), None).unwrap();
                    let want = Credentials {
                        expiration: None,
                        ..creds(token)
                    };
                    assert_eq!(back, Some(want), "{out}");
                    let again = launch_rewrite(out.as_bytes(), &creds(token), None).unwrap();
                    assert_eq!(again, out);
                    text = out;
                }
            }
        }
    }

    #[test]
    fn invalid_launch_settings_are_refused() {
        for (bad, at, want) in [
            ("{\"x\": 1}", (1, 1), "no `profiles` object"),
            ("[1]", (1, 1), "holds an array, not an object"),
            ("{\"profiles\": []}", (1, 14), "`profiles` is an array"),
            (
                "{\"profiles\": {\"A\": {\"environmentVariables\": 3}}}",
                (1, 45),
                "`environmentVariables` of launch profile `A` is a number, not an object",
            ),
            (
                "{\"profiles\": {\"A\": null}}",
                (1, 20),
                "launch profile `A` is null",
            ),
            (
                "{\n  \"profiles\": {}\n}",
                (2, 15),
                "no launch profile to write the credentials into: `profiles` is empty",
            ),
            (
                "{\n  \"profiles\": {\n    'A': {}\n  }\n}",
                (3, 5),
                "found `'` (JSON names take double quotes)",
            ),
            ("{ /* open\n", (1, 3), "a `/*` comment: JSON has none"),
            ("// nothing\n", (1, 1), "a `//` comment"),
            (
                "{\n  \"profiles\": {\n    \"A\": {},\n  }\n}",
                (3, 12),
                "a trailing comma: JSON has none",
            ),
        ] {
            let e = launch_rewrite(bad.as_bytes(), &creds(true), None).unwrap_err();
            assert!(e.message.contains(want), "{bad}: {e}");
            assert_eq!(e.at, Some(at), "{bad}: {e}");
            assert_eq!(
                launch_read(bad.as_bytes(), None).unwrap_err(),
                e,
                "check agrees"
            );
        }
        let only = vec!["Nope".to_string()];
        let e = launch_rewrite(LAUNCH.as_bytes(), &creds(true), Some(&only)).unwrap_err();
        assert!(e.message.contains("no launch profile `Nope`"), "{e}");
    }
}
