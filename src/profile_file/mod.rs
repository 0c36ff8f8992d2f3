//! The AWS shared `config` / `credentials` file format: a lossless parser.
//!
//! [`ProfileFile::parse`] reads a file the way the AWS SDKs' cross-SDK profile parser does
//! (the 65 cases of `profile-parser-tests.json` pass against it) while keeping every line's
//! byte range, so that [`edit`] can change a few keys and leave every other byte as it was.
//! [`ProfileFile::normalized`] gives the SDKs' merged view (profiles and SSO sessions), used to
//! read static keys, to read back what we wrote, and to look for profiles that shadow ours.

pub mod edit;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

/// The characters the SDK parser treats as whitespace (not `char::is_whitespace`).
const WHITESPACE: &[char] = &[' ', '\t'];

/// Trims the parser's whitespace (space and tab, both ASCII, so byte offsets are char
/// boundaries) from both ends; much faster than `trim_matches` on long token lines.
fn trim_ws(s: &str) -> &str {
    let b = s.as_bytes();
    let is_ws = |c: &u8| *c == b' ' || *c == b'\t';
    let start = b.iter().position(|c| !is_ws(c)).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !is_ws(c)).map_or(start, |i| i + 1);
    &s[start..end.max(start)]
}

/// Which of the two shared files a text came from: they name their sections differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// `~/.aws/config`: `[default]`, `[profile NAME]`, `[sso-session NAME]`, `[services NAME]`.
    Config,
    /// `~/.aws/credentials`: `[NAME]` only.
    Credentials,
}

/// Why a file cannot be used; `line` is 1-based.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

/// What one line of the file is, as the SDK parser sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LineKind<'a> {
    /// Empty or only spaces and tabs.
    Blank,
    /// Starts with `#` or `;` in the first column.
    Comment,
    /// `[...]`; `raw_name` is what is between the brackets, comments removed, not yet trimmed.
    Section { raw_name: &'a str },
    /// `key = value`; the key lowercased, the value trimmed with inline comments removed.
    Property { key: Cow<'a, str>, value: &'a str },
    /// A line starting with whitespace that continues the previous property's value.
    Continuation { text: &'a str },
}

/// One line with its place in the text.
#[derive(Clone, Debug)]
pub struct Line<'a> {
    /// 1-based line number.
    pub number: usize,
    /// Byte offset of the first byte of the line.
    pub start: usize,
    /// Byte offset just past the line's content (before `\r\n` or `\n`).
    pub content_end: usize,
    /// Byte offset just past the line terminator (equal to `content_end` on a last line without one).
    pub end: usize,
    pub kind: LineKind<'a>,
}

impl Line<'_> {
    /// The line terminator as written (`"\n"`, `"\r\n"` or `""`).
    pub fn terminator<'t>(&self, text: &'t str) -> &'t str {
        &text[self.content_end..self.end]
    }
}

/// A parsed profile file that still knows where every line is.
#[derive(Clone, Debug)]
pub struct ProfileFile<'a> {
    text: &'a str,
    lines: Vec<Line<'a>>,
}

/// The SDKs' merged, normalised view of one or more files.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Normalized {
    pub profiles: BTreeMap<String, BTreeMap<String, String>>,
    pub sso_sessions: BTreeMap<String, BTreeMap<String, String>>,
}

/// A section header as the SDKs classify it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SectionName {
    /// A profile. `prefixed` is true for `[profile NAME]` in a config file.
    Profile {
        name: String,
        prefixed: bool,
    },
    SsoSession(String),
    /// `[services x]` and any other prefixed section of a config file.
    Other,
    /// A section the SDKs ignore (an invalid name, `[profile x]` in a credentials file, ...).
    Ignored,
}

impl<'a> ProfileFile<'a> {
    /// Checks raw bytes before parsing: the text must be UTF-8 without NUL bytes.
    pub fn check_bytes(bytes: &[u8]) -> Result<&str, ParseError> {
        let line_of = |offset: usize| memchr::memchr_iter(b'\n', &bytes[..offset]).count() + 1;
        if let Some(nul) = memchr::memchr(0, bytes) {
            return Err(ParseError {
                line: line_of(nul),
                message: "the file contains a NUL byte".into(),
            });
        }
        std::str::from_utf8(bytes).map_err(|e| ParseError {
            line: line_of(e.valid_up_to()),
            message: "the file is not valid UTF-8".into(),
        })
    }

    /// Parses `text` line by line with the SDK parser's rules.
    pub fn parse(text: &'a str) -> Result<Self, ParseError> {
        let mut lines = Vec::new();
        // The SDK's state: are we in a section, and after which property (if any)?
        let mut in_section = false;
        let mut property: Option<bool> = None; // Some(is_subproperty)
        let mut start = 0;
        let mut number = 0;
        while start < text.len() {
            number += 1;
            let (content_end, end) = match memchr::memchr(b'\n', &text.as_bytes()[start..]) {
                Some(i) => {
                    let nl = start + i;
                    let ce = if nl > start && text.as_bytes()[nl - 1] == b'\r' {
                        nl - 1
                    } else {
                        nl
                    };
                    (ce, nl + 1)
                }
                None => (text.len(), text.len()),
            };
            let line = &text[start..content_end];
            let err = |message: &str| ParseError {
                line: number,
                message: message.to_string(),
            };
            let first = line.as_bytes().first().copied();
            let kind = if trim_ws(line).is_empty() {
                LineKind::Blank
            } else if first == Some(b'#') || first == Some(b';') {
                LineKind::Comment
            } else if line.starts_with('[') {
                let prepared = prepare_line(line, false);
                let raw_name = prepared
                    .strip_prefix('[')
                    .ok_or_else(|| err("Profile definition must start with '['"))?
                    .strip_suffix(']')
                    .ok_or_else(|| err("Profile definition must end with ']'"))?;
                in_section = true;
                property = None;
                LineKind::Section { raw_name }
            } else if first == Some(b' ') || first == Some(b'\t') {
                if !in_section {
                    return Err(err("Expected a profile definition"));
                }
                match property {
                    None => return Err(err("Expected a property definition, found continuation")),
                    Some(true) => {
                        parse_property_line(trim_ws(line))
                            .map_err(|e| err(&e.message("sub-property")))?;
                    }
                    Some(false) => {}
                }
                LineKind::Continuation {
                    text: trim_ws(line),
                }
            } else {
                if !in_section {
                    return Err(err("Expected a profile definition"));
                }
                let (key, value) =
                    parse_property_line(line).map_err(|e| err(&e.message("property")))?;
                property = Some(value.is_empty());
                LineKind::Property { key, value }
            };
            lines.push(Line {
                number,
                start,
                content_end,
                end,
                kind,
            });
            start = end;
        }
        Ok(ProfileFile { text, lines })
    }

    pub fn text(&self) -> &'a str {
        self.text
    }

    pub fn lines(&self) -> &[Line<'a>] {
        &self.lines
    }

    /// The line terminator new lines should use: the file's first one, else `\n`.
    pub fn preferred_terminator(&self) -> &'static str {
        match self
            .lines
            .iter()
            .map(|l| l.terminator(self.text))
            .find(|t| !t.is_empty())
        {
            Some("\r\n") => "\r\n",
            _ => "\n",
        }
    }

    /// Sections in file order: (index of the header line, index past the section's last line).
    pub fn sections(&self) -> Vec<(usize, usize)> {
        let headers: Vec<usize> = self
            .lines
            .iter()
            .enumerate()
            .filter(|(_, l)| matches!(l.kind, LineKind::Section { .. }))
            .map(|(i, _)| i)
            .collect();
        headers
            .iter()
            .enumerate()
            .map(|(n, &h)| (h, headers.get(n + 1).copied().unwrap_or(self.lines.len())))
            .collect()
    }

    /// The properties of the section whose header is line index `header`, values joined with
    /// their continuation lines as the SDKs join them.
    pub fn section_properties(&self, header: usize, end: usize) -> Vec<(String, String)> {
        let mut props: Vec<(String, String)> = Vec::new();
        for line in &self.lines[header + 1..end] {
            match &line.kind {
                LineKind::Property { key, value } => {
                    props.push((key.to_string(), value.to_string()))
                }
                LineKind::Continuation { text } => {
                    if let Some((_, v)) = props.last_mut() {
                        v.push('\n');
                        v.push_str(text);
                    }
                }
                _ => {}
            }
        }
        props
    }

    /// The section name of header line index `i`.
    pub fn section_name(&self, i: usize, kind: FileKind) -> SectionName {
        match &self.lines[i].kind {
            LineKind::Section { raw_name } => classify_section(raw_name, kind),
            _ => SectionName::Ignored,
        }
    }

    /// The SDKs' view of this one file.
    pub fn normalized(&self, kind: FileKind) -> Normalized {
        let mut out = Normalized::default();
        self.merge_into(&mut out, kind);
        out
    }

    /// Merges this file into `out` as the SDKs merge the config file and then the credentials
    /// file: later keys win.
    pub fn merge_into(&self, out: &mut Normalized, kind: FileKind) {
        let sections: Vec<(SectionName, usize, usize)> = self
            .sections()
            .into_iter()
            .map(|(h, e)| (self.section_name(h, kind), h, e))
            .collect();
        let has_prefixed_default = sections.iter().any(|(name, _, _)| {
            matches!(name, SectionName::Profile { name, prefixed: true } if name == "default")
        });
        for (name, h, e) in sections {
            let target = match name {
                SectionName::Profile { name, prefixed } => {
                    if kind == FileKind::Config && has_prefixed_default && !prefixed {
                        continue; // `[profile default]` replaces `[default]` entirely
                    }
                    out.profiles.entry(name).or_default()
                }
                SectionName::SsoSession(name) => out.sso_sessions.entry(name).or_default(),
                SectionName::Other | SectionName::Ignored => continue,
            };
            for (k, v) in self.section_properties(h, e) {
                if is_identifier(&k) {
                    target.insert(k, v);
                }
            }
        }
    }
}

/// Classifies a section's raw name the way the SDKs normalise it.
pub fn classify_section(raw_name: &str, kind: FileKind) -> SectionName {
    let input = trim_ws(raw_name);
    let (prefix, suffix) = match input.split_once(WHITESPACE) {
        Some((p, s)) => (Some(trim_ws(p)), trim_ws(s)),
        None => (None, input),
    };
    match (kind, prefix) {
        (FileKind::Config, Some(prefix)) => {
            if !is_identifier(suffix) {
                SectionName::Ignored
            } else if prefix == "profile" {
                SectionName::Profile {
                    name: suffix.to_string(),
                    prefixed: true,
                }
            } else if prefix == "sso-session" {
                SectionName::SsoSession(suffix.to_string())
            } else {
                SectionName::Other
            }
        }
        (FileKind::Config, None) if suffix == "default" => SectionName::Profile {
            name: "default".into(),
            prefixed: false,
        },
        (FileKind::Config, None) => SectionName::Ignored,
        (FileKind::Credentials, Some(_)) => SectionName::Ignored,
        (FileKind::Credentials, None) if is_identifier(suffix) => SectionName::Profile {
            name: suffix.to_string(),
            prefixed: false,
        },
        (FileKind::Credentials, None) => SectionName::Ignored,
    }
}

/// The profile a credentials-file section header names, without allocating; `None` for a
/// section the SDKs ignore there. Agrees with [`classify_section`] for [`FileKind::Credentials`].
pub fn credentials_profile_name(raw_name: &str) -> Option<&str> {
    let name = trim_ws(raw_name);
    (!name.contains([' ', '\t']) && is_identifier(name)).then_some(name)
}

/// Profile and property names the SDKs accept: `[A-Za-z0-9_\-/.%@:+]`.
pub fn is_identifier(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "_-/.%@:+".contains(c))
}

enum PropertyError {
    NoEquals,
    NoName,
}

impl PropertyError {
    fn message(&self, what: &str) -> String {
        match self {
            PropertyError::NoEquals => format!("Expected an '=' sign defining a {what}"),
            PropertyError::NoName => {
                let mut w = what.to_string();
                if let Some(first) = w.get_mut(0..1) {
                    first.make_ascii_uppercase();
                }
                format!("{w} did not have a name")
            }
        }
    }
}

fn parse_property_line(line: &str) -> Result<(Cow<'_, str>, &str), PropertyError> {
    let line = prepare_line(line, true);
    let (k, v) = line.split_once('=').ok_or(PropertyError::NoEquals)?;
    let k = trim_ws(k);
    if k.is_empty() {
        return Err(PropertyError::NoName);
    }
    let key = if k.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(k.to_ascii_lowercase())
    } else {
        Cow::Borrowed(k)
    };
    Ok((key, trim_ws(v)))
}

/// Trims a line and removes a trailing comment. In property lines a comment must follow
/// whitespace (`a = b#c` keeps `b#c`); in section headers it need not.
fn prepare_line(line: &str, comments_need_whitespace: bool) -> &str {
    let line = trim_ws(line);
    let bytes = line.as_bytes();
    let mut cut = line.len();
    let mut from = 0;
    // `#` and `;` are ASCII, so a byte search finds exactly the comment characters.
    while let Some(i) = memchr::memchr2(b'#', b';', &bytes[from..]).map(|i| from + i) {
        let after_whitespace = line[..i]
            .chars()
            .next_back()
            .is_some_and(char::is_whitespace);
        if after_whitespace || !comments_need_whitespace {
            cut = i;
            break;
        }
        from = i + 1;
    }
    trim_ws(&line[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_byte_ranges_and_terminators() {
        let text = "# c\r\n[a]\r\nk = v\r\n  more\n[b]";
        let f = ProfileFile::parse(text).unwrap();
        let l = f.lines();
        assert_eq!(l.len(), 5);
        assert_eq!(l[0].kind, LineKind::Comment);
        assert_eq!(l[1].terminator(text), "\r\n");
        assert_eq!(l[3].kind, LineKind::Continuation { text: "more" });
        assert_eq!(l[4].terminator(text), "");
        assert_eq!(f.preferred_terminator(), "\r\n");
        assert_eq!(
            f.normalized(FileKind::Credentials).profiles["a"]["k"],
            "v\nmore"
        );
    }

    #[test]
    fn rejects_nul_and_invalid_utf8_with_line() {
        let e = ProfileFile::check_bytes(b"[a]\nk = v\n\0").unwrap_err();
        assert_eq!(e.line, 3);
        let e = ProfileFile::check_bytes(b"[a]\n\xff").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("UTF-8"));
    }

    #[test]
    fn byte_order_mark_is_rejected_like_the_sdks() {
        let e = ProfileFile::parse("\u{feff}[default]\n").unwrap_err();
        assert_eq!(e.line, 1);
    }
}

/// The cross-SDK profile-parser suite (`tests/data/profile-parser-tests.json`, 65 cases).
#[cfg(test)]
mod sdk_conformance {
    use super::*;
    use serde_json::Value;

    fn to_map(v: &Value) -> BTreeMap<String, BTreeMap<String, String>> {
        v.as_object()
            .map(|o| {
                o.iter()
                    .map(|(name, props)| {
                        let props = props
                            .as_object()
                            .unwrap()
                            .iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                            .collect();
                        (name.clone(), props)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn every_case_passes() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/profile-parser-tests.json"
        );
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let tests = doc["tests"].as_array().unwrap();
        assert_eq!(tests.len(), 65);
        let mut failures = Vec::new();
        for t in tests {
            let name = t["name"].as_str().unwrap();
            let input = &t["input"];
            let files = [
                (FileKind::Config, input["configFile"].as_str()),
                (FileKind::Credentials, input["credentialsFile"].as_str()),
            ];
            let mut merged = Normalized::default();
            let mut error: Option<String> = None;
            for (kind, text) in files {
                let Some(text) = text else { continue };
                match ProfileFile::parse(text) {
                    Ok(f) => f.merge_into(&mut merged, kind),
                    Err(e) => {
                        error = Some(e.to_string());
                        break;
                    }
                }
            }
            let output = &t["output"];
            let ok = match (output.get("errorContaining"), error) {
                (Some(want), Some(got)) => got.contains(want.as_str().unwrap()),
                (Some(_), None) => false,
                (None, Some(_)) => false,
                (None, None) => {
                    let want_profiles = to_map(&output["config"]["profiles"]);
                    let want_sessions = to_map(&output["config"]["sso_sessions"]);
                    merged.profiles == want_profiles && merged.sso_sessions == want_sessions
                }
            };
            if !ok {
                failures.push(name.to_string());
            }
        }
        assert!(failures.is_empty(), "failed cases: {failures:#?}");
    }
}
