//! The AWS shared `config` / `credentials` file format: a lossless parser.
//!
//! [`ProfileFile::parse`] reads a file the way the AWS SDKs' cross-SDK profile parser does
//! (the 65 cases of `profile-parser-tests.json` pass against it) while keeping every line's
//! byte range, so that [`edit`] can change a few keys and leave every other byte as it was.
//! [`ProfileFile::normalized`] gives the SDKs' merged view (profiles and SSO sessions), used to
//! read static keys, to read back what we wrote, and to look for profiles that shadow ours.

pub mod credentials;
pub mod edit;
pub mod precedence;

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

/// [`trim_ws`] at the start only.
fn trim_ws_start(s: &str) -> &str {
    let start = s
        .bytes()
        .position(|c| c != b' ' && c != b'\t')
        .unwrap_or(s.len());
    &s[start..]
}

/// A UTF-8 byte-order mark, which Windows editors and PowerShell 5 write at the start of a file.
const BYTE_ORDER_MARK: char = '\u{feff}';

const BYTE_ORDER_MARK_MESSAGE: &str = "the file starts with a UTF-8 byte-order mark (BOM, the \
     bytes EF BB BF), which the AWS SDKs reject; save it as UTF-8 without a BOM (PowerShell: \
     `[IO.File]::WriteAllText('FULL PATH', (Get-Content -Raw 'FULL PATH'))`; Linux: `sed -i '1s/^\\xEF\\xBB\\xBF//' FILE`)";

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
    /// Every line, or (see [`ProfileFile::parse_sections`]) every section header and only the
    /// lines of the sections asked for.
    lines: Vec<Line<'a>>,
    /// The file's first line terminator, else `\n`.
    eol: &'static str,
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
        Self::parse_keeping(text, None)
    }

    /// Parses and checks all of `text` as [`Self::parse`] does, but keeps only the lines of the
    /// sections whose raw name `keep` accepts (header included): what an edit of a few
    /// profiles needs, since it only looks at the sections it writes. A large file then costs
    /// no line table (for the 1,000-profile file, half a megabyte built and freed on every
    /// write) and no look at the values of other sections. [`Self::sections`] and the edit
    /// work on it unchanged; line numbers and byte ranges are those of the whole text.
    pub fn parse_sections(text: &'a str, keep: &dyn Fn(&str) -> bool) -> Result<Self, ParseError> {
        Self::parse_keeping(text, Some(keep))
    }

    /// The parser: every line is checked; a line is kept if `keep` is `None` or if it is in
    /// a section `keep` accepts.
    fn parse_keeping(
        text: &'a str,
        keep: Option<&dyn Fn(&str) -> bool>,
    ) -> Result<Self, ParseError> {
        if text.starts_with(BYTE_ORDER_MARK) {
            // The SDKs refuse it too ("Expected a profile definition"), which does not say why.
            return Err(ParseError {
                line: 1,
                message: BYTE_ORDER_MARK_MESSAGE.into(),
            });
        }
        let mut eol = None;
        let mut parser = LineParser {
            keep,
            keeping: keep.is_none(),
            in_section: false,
            property: None,
            lines: Vec::new(),
        };
        let mut start = 0;
        let mut number = 0;
        while start < text.len() {
            number += 1;
            let (content_end, end) = line_bounds(text, start);
            if eol.is_none() && end > content_end {
                eol = Some(if end - content_end == 2 { "\r\n" } else { "\n" });
            }
            let at = Place {
                number,
                start,
                content_end,
                end,
            };
            parser.line(&text[start..content_end], at)?;
            start = end;
        }
        Ok(ProfileFile {
            text,
            lines: parser.lines,
            eol: eol.unwrap_or("\n"),
        })
    }

    pub fn text(&self) -> &'a str {
        self.text
    }

    pub fn lines(&self) -> &[Line<'a>] {
        &self.lines
    }

    /// The line terminator new lines should use: the file's first one, else `\n`.
    pub fn preferred_terminator(&self) -> &'static str {
        self.eol
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
    // A name with a space or tab inside (`[profile x]`) is no identifier either.
    is_identifier(name).then_some(name)
}

/// Profile and property names the SDKs accept: `[A-Za-z0-9_\-/.%@:+]`.
pub fn is_identifier(s: &str) -> bool {
    // By bytes: every byte of a non-ASCII character is >= 0x80, which no arm accepts.
    s.bytes().all(|b| {
        b.is_ascii_alphanumeric()
            || matches!(b, b'_' | b'-' | b'/' | b'.' | b'%' | b'@' | b':' | b'+')
    })
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
    let parts = PropertyParts::of(line)?;
    Ok((parts.key(), parts.value()))
}

/// A property line split at its `=`, the value not yet looked at: checking a line needs only
/// the key and whether the value is empty, and a session token's value is 700 characters.
/// Agrees with the SDK parser's order (trim, cut the comment, split at the first `=`).
struct PropertyParts<'a> {
    /// The line, trimmed.
    line: &'a str,
    /// Where its first `=` is.
    eq: usize,
}

impl<'a> PropertyParts<'a> {
    fn of(line: &'a str) -> Result<Self, PropertyError> {
        let line = trim_ws(line);
        let eq = memchr::memchr(b'=', line.as_bytes()).ok_or(PropertyError::NoEquals)?;
        // A comment before the `=` cuts it off: no `=` is left.
        if comment_start(line, 0, eq).is_some() {
            return Err(PropertyError::NoEquals);
        }
        if trim_ws(&line[..eq]).is_empty() {
            return Err(PropertyError::NoName);
        }
        Ok(PropertyParts { line, eq })
    }

    /// The key, lowercased.
    fn key(&self) -> Cow<'a, str> {
        let k = trim_ws(&self.line[..self.eq]);
        if k.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(k.to_ascii_lowercase())
        } else {
            Cow::Borrowed(k)
        }
    }

    /// The value, trimmed, a trailing comment removed.
    fn value(&self) -> &'a str {
        let end = comment_start(self.line, self.eq + 1, self.line.len()).unwrap_or(self.line.len());
        trim_ws(&self.line[self.eq + 1..end])
    }

    /// Whether [`Self::value`] is empty, without reading the whole value: it is if nothing
    /// but spaces and tabs follow the `=`, or a comment begins after them.
    fn value_is_empty(&self) -> bool {
        let after = &self.line[self.eq + 1..];
        let rest = &after[after.len() - trim_ws_start(after).len()..];
        // A `#` or `;` starts a comment only after whitespace, not right after the `=`.
        rest.is_empty() || (rest.len() < after.len() && rest.starts_with(['#', ';']))
    }
}

/// Where the first comment (a `#` or `;` after whitespace) of `line[from..to]` begins.
fn comment_start(line: &str, from: usize, to: usize) -> Option<usize> {
    let bytes = &line.as_bytes()[..to];
    let mut from = from;
    // `#` and `;` are ASCII, so a byte search finds exactly the comment characters. Keys
    // are short: a plain loop beats setting up a vector search for them.
    let find = |from: usize| -> Option<usize> {
        let rest = &bytes[from..];
        let at = if rest.len() < 32 {
            rest.iter().position(|&b| b == b'#' || b == b';')
        } else {
            memchr::memchr2(b'#', b';', rest)
        };
        at.map(|i| from + i)
    };
    while let Some(i) = find(from) {
        if line[..i]
            .chars()
            .next_back()
            .is_some_and(char::is_whitespace)
        {
            return Some(i);
        }
        from = i + 1;
    }
    None
}

/// The line starting at byte `start` of `text`: (just past its content, just past its
/// terminator).
fn line_bounds(text: &str, start: usize) -> (usize, usize) {
    match memchr::memchr(b'\n', &text.as_bytes()[start..]) {
        Some(i) => {
            let nl = start + i;
            let content_end = if nl > start && text.as_bytes()[nl - 1] == b'\r' {
                nl - 1
            } else {
                nl
            };
            (content_end, nl + 1)
        }
        None => (text.len(), text.len()),
    }
}

#[cold]
fn parse_error(line: usize, message: &str) -> ParseError {
    ParseError {
        line,
        message: message.to_string(),
    }
}

/// Where a line is in the text (see [`Line`]).
#[derive(Clone, Copy)]
struct Place {
    number: usize,
    start: usize,
    content_end: usize,
    end: usize,
}

/// The SDK parser's state from line to line, and the lines kept (all, or in a sections-only
/// parse those of the sections kept).
struct LineParser<'a, 'k> {
    /// Which sections' lines to keep (`None`: all).
    keep: Option<&'k dyn Fn(&str) -> bool>,
    /// Whether the lines of the current section are kept.
    keeping: bool,
    /// The SDK's state: are we in a section, and after which property (if any)?
    in_section: bool,
    /// Some(is_subproperty)
    property: Option<bool>,
    lines: Vec<Line<'a>>,
}

impl<'a> LineParser<'a, '_> {
    /// Checks `line`, at `at`, and keeps it if its section is kept; or says why the file is
    /// refused.
    fn line(&mut self, line: &'a str, at: Place) -> Result<(), ParseError> {
        let first = line.as_bytes().first().copied();
        if trim_ws(line).is_empty() {
            self.keep_line(at, LineKind::Blank);
        } else if first == Some(b'#') || first == Some(b';') {
            self.keep_line(at, LineKind::Comment);
        } else if line.starts_with('[') {
            let kind = self.header(line, at.number)?;
            self.keep_line(at, kind);
        } else if !self.in_section {
            return Err(parse_error(at.number, "Expected a profile definition"));
        } else if first == Some(b' ') || first == Some(b'\t') {
            let kind = self.continuation(line, at.number)?;
            self.keep_line(at, kind);
        } else if self.keeping {
            let kind = self.property(line, at.number)?;
            self.keep_line(at, kind);
        } else {
            // A sections-only parse only checks the properties of the sections it does not
            // keep (their values are never looked at).
            self.check_property(line, at.number)?;
        }
        Ok(())
    }

    /// Keeps the line if its section is kept. Each kind of line is kept where it is made, and a
    /// property of a section not kept is only checked: measured with `cargo bench --bench
    /// rewrite`, handing the kinds back to one push (through a `Result<Option<_>>`, or as in
    /// one `let kind = if ...`) made the full parse or the sections-only one 5-12% slower.
    fn keep_line(&mut self, at: Place, kind: LineKind<'a>) {
        if self.keeping {
            self.lines.push(Line {
                number: at.number,
                start: at.start,
                content_end: at.content_end,
                end: at.end,
                kind,
            });
        }
    }

    /// A section header: a new section, whose lines are kept if `keep` accepts its name.
    fn header(&mut self, line: &'a str, number: usize) -> Result<LineKind<'a>, ParseError> {
        let prepared = prepare_header(line);
        let raw_name = prepared
            .strip_prefix('[')
            .ok_or_else(|| parse_error(number, "Profile definition must start with '['"))?
            .strip_suffix(']')
            .ok_or_else(|| parse_error(number, "Profile definition must end with ']'"))?;
        self.in_section = true;
        self.property = None;
        self.keeping = self.keep.is_none_or(|keep| keep(raw_name));
        // A sections-only parse keeps no trace of the sections it does not keep.
        Ok(LineKind::Section { raw_name })
    }

    /// A line that continues the previous property's value (a sub-property after an empty one).
    fn continuation(&self, line: &'a str, number: usize) -> Result<LineKind<'a>, ParseError> {
        match self.property {
            None => {
                return Err(parse_error(
                    number,
                    "Expected a property definition, found continuation",
                ))
            }
            Some(true) => {
                parse_property_line(trim_ws(line))
                    .map_err(|e| parse_error(number, &e.message("sub-property")))?;
            }
            Some(false) => {}
        }
        Ok(LineKind::Continuation {
            text: trim_ws(line),
        })
    }

    /// A `key = value` line.
    fn property(&mut self, line: &'a str, number: usize) -> Result<LineKind<'a>, ParseError> {
        let parts =
            PropertyParts::of(line).map_err(|e| parse_error(number, &e.message("property")))?;
        let value = parts.value();
        self.property = Some(value.is_empty());
        Ok(LineKind::Property {
            key: parts.key(),
            value,
        })
    }

    /// A `key = value` line of a section not kept: checked only.
    fn check_property(&mut self, line: &str, number: usize) -> Result<(), ParseError> {
        let parts =
            PropertyParts::of(line).map_err(|e| parse_error(number, &e.message("property")))?;
        self.property = Some(parts.value_is_empty());
        Ok(())
    }
}

/// The sections of the credentials file read from `reader` whose header names `profile`
/// (header line to the next header), each as its bytes: the file is read in blocks into one
/// buffer, and only the lines that start with `[` are looked at (memchr), so a file of
/// thousands of profiles costs no copy of itself in memory and no check of other sections
/// (`credential-process`'s hot path). More than `limit` bytes is an error.
pub fn read_sections_of(
    reader: &mut impl std::io::Read,
    profile: &str,
    limit: u64,
) -> std::io::Result<Vec<Vec<u8>>> {
    const BLOCK: usize = 256 * 1024;
    let mut sections: Vec<Vec<u8>> = Vec::new();
    let mut capturing = false;
    // Bytes read but not looked at yet: they start at a line start.
    let mut pending: Vec<u8> = Vec::with_capacity(BLOCK * 2);
    let mut total: u64 = 0;
    loop {
        let have = pending.len();
        pending.resize(have + BLOCK, 0);
        let n = loop {
            match reader.read(&mut pending[have..]) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                other => break other?,
            }
        };
        pending.truncate(have + n);
        total += n as u64;
        if total > limit {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the credentials file is larger than the limit",
            ));
        }
        // Whole lines now, or everything at the end of the file.
        let upto = if n == 0 {
            pending.len()
        } else {
            match memchr::memrchr(b'\n', &pending) {
                Some(i) => i + 1,
                None => continue,
            }
        };
        let region = &pending[..upto];
        let headers = (region.first() == Some(&b'['))
            .then_some(0)
            .into_iter()
            .chain(memchr::memmem::find_iter(region, b"\n[").map(|i| i + 1));
        let mut from = 0;
        for h in headers {
            if capturing {
                if let Some(last) = sections.last_mut() {
                    last.extend_from_slice(&region[from..h]);
                }
            }
            capturing = header_names(&region[h..], profile);
            if capturing {
                sections.push(Vec::new());
            }
            from = h;
        }
        if capturing {
            if let Some(last) = sections.last_mut() {
                last.extend_from_slice(&region[from..]);
            }
        }
        pending.drain(..upto);
        if n == 0 {
            return Ok(sections);
        }
    }
}

/// Whether the header line at the start of `bytes` names profile `profile`.
fn header_names(bytes: &[u8], profile: &str) -> bool {
    let line = &bytes[..memchr::memchr(b'\n', bytes).unwrap_or(bytes.len())];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    std::str::from_utf8(line)
        .ok()
        .map(prepare_header)
        .and_then(|h| h.strip_prefix('['))
        .and_then(|h| h.strip_suffix(']'))
        .and_then(credentials_profile_name)
        == Some(profile)
}

/// Trims a section header line and removes a trailing comment, which (unlike in property
/// lines) need not follow whitespace: `[a]#c` is `[a]`.
fn prepare_header(line: &str) -> &str {
    let line = trim_ws(line);
    let cut = memchr::memchr2(b'#', b';', line.as_bytes()).unwrap_or(line.len());
    trim_ws(&line[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_sections_of_one_profile_in_blocks() {
        /// Hands out a few bytes at a time, so sections and lines span reads.
        struct Trickle<'a>(&'a [u8]);
        impl std::io::Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = self.0.len().min(buf.len()).min(3);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let text = b"[a]\r\nk = [b]\r\n[b] # c\r\nk = v\r\n[ab]\nx = \xff\n[b]\nx = 1";
        for whole in [false, true] {
            let read = |p: &str| {
                if whole {
                    read_sections_of(&mut &text[..], p, 1000).unwrap()
                } else {
                    read_sections_of(&mut Trickle(text), p, 1000).unwrap()
                }
            };
            let found = read("b");
            assert_eq!(found, [&b"[b] # c\r\nk = v\r\n"[..], &b"[b]\nx = 1"[..]]);
            assert_eq!(read("a"), [&b"[a]\r\nk = [b]\r\n"[..]]);
            assert!(read("c").is_empty());
        }
        assert!(read_sections_of(&mut &text[..], "b", 10).is_err());
    }

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

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3000))]

        /// The quick emptiness check of a value agrees with the value itself, and the split
        /// agrees with the SDK parser's order (trim, cut the comment, split at `=`).
        #[test]
        fn property_parts_agree_with_the_plain_rules(line in "[ \t]{0,2}[a-z#;=]{0,3}[ \t\u{a0}]{0,2}=?[ \t\u{a0}]{0,2}[a-z#;= \t]{0,6}") {
            let plain = {
                let t = trim_ws(&line);
                let cut = t
                    .char_indices()
                    .find(|&(i, c)| {
                        (c == '#' || c == ';')
                            && t[..i].chars().next_back().is_some_and(char::is_whitespace)
                    })
                    .map_or(t.len(), |(i, _)| i);
                trim_ws(&t[..cut])
                    .split_once('=')
                    .map(|(k, v)| (trim_ws(k).to_string(), trim_ws(v).to_string()))
                    .filter(|(k, _)| !k.is_empty())
            };
            let parts = PropertyParts::of(&line).ok();
            proptest::prop_assert_eq!(
                parts.as_ref().map(|p| (p.key().into_owned(), p.value().to_string())),
                plain
            );
            if let Some(p) = parts {
                proptest::prop_assert_eq!(p.value_is_empty(), p.value().is_empty());
            }
        }
    }

    #[test]
    fn byte_order_mark_is_rejected_like_the_sdks() {
        let e = ProfileFile::parse("\u{feff}[default]\n").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.message.contains("byte-order mark"), "{e}");
        assert!(e.message.contains("without a BOM"), "{e}");
        let sparse = ProfileFile::parse_sections("\u{feff}[default]\n", &|_| true).unwrap_err();
        assert_eq!(sparse, e);
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
