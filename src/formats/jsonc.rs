//! The JSON of a `launchSettings.json`, parsed into byte spans of the original text rather than
//! into values: an edit replaces or inserts a few spans and keeps every other byte — numbers as
//! written, escapes, duplicate keys, indentation — as it is.
//!
//! Only plain JSON is taken. dotnet (`LaunchSettingsManager`, Visual Studio) also reads
//! comments and trailing commas, but the contract is that a file that is not valid JSON is
//! never written: a comment or a trailing comma is refused, with its line and column, like any
//! other error.
//!
//! Strings are checked but not decoded ([`decode`] does that for the few that are compared);
//! numbers are checked against the JSON grammar and never converted.

use std::ops::Range;

/// How deep objects and arrays may nest (`System.Text.Json`'s default `MaxDepth`).
pub const MAX_DEPTH: usize = 64;

/// Why a text is not plain JSON: what was found, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    /// 1-based line and column (in characters) of what was found.
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// One value: where it is in the text, and what it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Value {
    pub span: Range<usize>,
    pub kind: Kind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The members in their order, duplicates included; `span` runs from `{` to after `}`.
    Object(Vec<Member>),
    Array,
    String,
    Number,
    Bool,
    Null,
}

/// One `"key": value` of an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// The key as written, quotes included.
    pub key: Range<usize>,
    pub value: Value,
    /// Where the `,` after the value is, if there is one (the last member may have one too).
    pub comma: Option<usize>,
}

impl Value {
    /// What the value is, for messages ("an object", "a string", ...).
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            Kind::Object(_) => "an object",
            Kind::Array => "an array",
            Kind::String => "a string",
            Kind::Number => "a number",
            Kind::Bool => "a boolean",
            Kind::Null => "null",
        }
    }

    /// The members of an object; `None` for any other value.
    pub fn members(&self) -> Option<&[Member]> {
        match &self.kind {
            Kind::Object(m) => Some(m),
            _ => None,
        }
    }
}

/// The text of a JSON string literal (quotes included), decoded; `None` if it is not one or
/// holds a lone surrogate.
pub fn decode(literal: &str) -> Option<String> {
    serde_json::from_str(literal).ok()
}

/// The 1-based line and column (in characters) of byte `at` of `text`.
pub fn position(text: &str, at: usize) -> (usize, usize) {
    let before = &text[..at.min(text.len())];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (
        before.matches('\n').count() + 1,
        before[line_start..].chars().count() + 1,
    )
}

/// What a comment or trailing comma gets: why it is refused, and what to do.
const NOT_PLAIN: &str = "JSON has none; dotnet reads it, but awscredd rewrites only a \
                         launchSettings.json that is plain JSON: remove it";

/// Parses one plain JSON value that fills `text` but for whitespace around it.
pub fn parse(text: &str) -> Result<Value, Error> {
    let mut p = Parser { text, pos: 0 };
    p.trivia()?;
    if p.pos == text.len() {
        return Err(p.error_at(
            p.pos,
            "the file is empty: a launchSettings.json holds at least `{ \"profiles\": {} }`"
                .to_string(),
        ));
    }
    let v = p.value(0)?;
    p.trivia()?;
    if p.pos < text.len() {
        return Err(p.error_at(
            p.pos,
            format!("{} after the end of the JSON value", p.found()),
        ));
    }
    Ok(v)
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn error_at(&self, at: usize, message: String) -> Error {
        let (line, column) = position(self.text, at);
        Error {
            line,
            column,
            message,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    /// What is at the current position, for messages.
    fn found(&self) -> String {
        match self.text[self.pos..].chars().next() {
            None => "the end of the file".to_string(),
            Some(c) if c.is_control() => format!("a control character (U+{:04X})", c as u32),
            Some(c) => format!("`{c}`"),
        }
    }

    /// Skips whitespace; a comment is an error.
    fn trivia(&mut self) -> Result<(), Error> {
        let b = self.text.as_bytes();
        loop {
            match (self.peek(), b.get(self.pos + 1)) {
                (Some(b' ' | b'\t' | b'\n' | b'\r'), _) => self.pos += 1,
                (Some(b'/'), Some(c @ (b'/' | b'*'))) => {
                    let which = if *c == b'/' { "//" } else { "/*" };
                    return Err(
                        self.error_at(self.pos, format!("a `{which}` comment: {NOT_PLAIN}"))
                    );
                }
                _ => return Ok(()),
            }
        }
    }

    /// After a `,` and whitespace, a `closing` bracket is a trailing comma: an error.
    fn no_trailing_comma(&self, comma: usize, closing: u8) -> Result<(), Error> {
        if self.peek() == Some(closing) {
            return Err(self.error_at(comma, format!("a trailing comma: {NOT_PLAIN}")));
        }
        Ok(())
    }

    fn value(&mut self, depth: usize) -> Result<Value, Error> {
        let start = self.pos;
        let kind = match self.peek() {
            Some(b'{') => return self.object(depth + 1),
            Some(b'[') => {
                self.array(depth + 1)?;
                Kind::Array
            }
            Some(b'"') => {
                self.string()?;
                Kind::String
            }
            Some(b'-' | b'0'..=b'9') => {
                self.number()?;
                Kind::Number
            }
            _ => {
                for (word, kind) in [
                    ("true", Kind::Bool),
                    ("false", Kind::Bool),
                    ("null", Kind::Null),
                ] {
                    let rest = &self.text[self.pos..];
                    let after = rest.as_bytes().get(word.len());
                    if rest.starts_with(word) && !after.is_some_and(u8::is_ascii_alphanumeric) {
                        self.pos += word.len();
                        return Ok(Value {
                            span: start..self.pos,
                            kind,
                        });
                    }
                }
                let hint = match self.peek() {
                    Some(b'\'') => " (JSON strings take double quotes)",
                    _ => "",
                };
                return Err(self.error_at(
                    self.pos,
                    format!("expected a value, found {}{hint}", self.found()),
                ));
            }
        };
        Ok(Value {
            span: start..self.pos,
            kind,
        })
    }

    fn deeper(&self, depth: usize) -> Result<(), Error> {
        if depth > MAX_DEPTH {
            return Err(self.error_at(
                self.pos,
                format!("objects and arrays nest deeper than {MAX_DEPTH} levels here"),
            ));
        }
        Ok(())
    }

    fn object(&mut self, depth: usize) -> Result<Value, Error> {
        self.deeper(depth)?;
        let start = self.pos;
        self.pos += 1;
        let mut members = Vec::new();
        loop {
            self.trivia()?;
            match self.peek() {
                Some(b'}') => break,
                Some(b'"') => {}
                _ => {
                    let hint = match (self.peek(), members.last()) {
                        (Some(b','), Some(Member { comma: Some(_), .. })) => " (two commas)",
                        (Some(b'\''), _) => " (JSON names take double quotes)",
                        _ => "",
                    };
                    return Err(self.error_at(
                        self.pos,
                        format!(
                            "expected a property name in double quotes or `}}`, found {}{hint}",
                            self.found()
                        ),
                    ));
                }
            }
            let key_start = self.pos;
            self.string()?;
            let key = key_start..self.pos;
            self.trivia()?;
            if self.peek() != Some(b':') {
                return Err(self.error_at(
                    self.pos,
                    format!(
                        "expected `:` after the property name, found {}",
                        self.found()
                    ),
                ));
            }
            self.pos += 1;
            self.trivia()?;
            let value = self.value(depth)?;
            self.trivia()?;
            let comma = match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    Some(self.pos - 1)
                }
                Some(b'}') => None,
                _ => {
                    return Err(self.error_at(
                        self.pos,
                        format!("expected `,` or `}}` after a value, found {}", self.found()),
                    ))
                }
            };
            members.push(Member { key, value, comma });
            match comma {
                None => break,
                Some(at) => {
                    self.trivia()?;
                    self.no_trailing_comma(at, b'}')?;
                }
            }
        }
        self.pos += 1;
        Ok(Value {
            span: start..self.pos,
            kind: Kind::Object(members),
        })
    }

    fn array(&mut self, depth: usize) -> Result<(), Error> {
        self.deeper(depth)?;
        self.pos += 1;
        loop {
            self.trivia()?;
            if self.peek() == Some(b']') {
                break;
            }
            self.value(depth)?;
            self.trivia()?;
            match self.peek() {
                Some(b',') => {
                    let comma = self.pos;
                    self.pos += 1;
                    self.trivia()?;
                    self.no_trailing_comma(comma, b']')?;
                }
                Some(b']') => break,
                _ => {
                    return Err(self.error_at(
                        self.pos,
                        format!("expected `,` or `]` after a value, found {}", self.found()),
                    ))
                }
            }
        }
        self.pos += 1;
        Ok(())
    }

    fn string(&mut self) -> Result<(), Error> {
        let start = self.pos;
        self.pos += 1;
        let b = self.text.as_bytes();
        loop {
            match b.get(self.pos) {
                None => {
                    return Err(self.error_at(start, "a string is not closed with `\"`".to_string()))
                }
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    let ok = match b.get(self.pos + 1) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => 2,
                        Some(b'u')
                            if b.len() >= self.pos + 6
                                && b[self.pos + 2..self.pos + 6]
                                    .iter()
                                    .all(u8::is_ascii_hexdigit) =>
                        {
                            6
                        }
                        _ => 0,
                    };
                    if ok == 0 {
                        let end = (self.pos + 2).min(b.len());
                        let shown = self.text.get(self.pos..end).unwrap_or("\\");
                        return Err(
                            self.error_at(self.pos, format!("`{shown}` is not a JSON escape"))
                        );
                    }
                    self.pos += ok;
                }
                Some(c) if *c < 0x20 => {
                    return Err(self.error_at(
                        self.pos,
                        format!(
                            "a string holds a raw control character (U+{c:04X}); write it as \
                             an escape (a string cannot span lines)"
                        ),
                    ))
                }
                Some(_) => self.pos += 1,
            }
        }
    }

    fn number(&mut self) -> Result<(), Error> {
        let start = self.pos;
        let b = self.text.as_bytes();
        let digits = |p: &mut usize| {
            let s = *p;
            while b.get(*p).is_some_and(u8::is_ascii_digit) {
                *p += 1;
            }
            *p > s
        };
        let mut p = self.pos;
        if b.get(p) == Some(&b'-') {
            p += 1;
        }
        let int_start = p;
        let mut ok = digits(&mut p) && !(b[int_start] == b'0' && p - int_start > 1);
        if ok && b.get(p) == Some(&b'.') {
            p += 1;
            ok = digits(&mut p);
        }
        if ok && matches!(b.get(p), Some(b'e' | b'E')) {
            p += 1;
            if matches!(b.get(p), Some(b'+' | b'-')) {
                p += 1;
            }
            ok = digits(&mut p);
        }
        // A number runs into no letter or digit (`1x`, `0x1F`).
        let end = p + self.text[p..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '+'))
            .unwrap_or(self.text.len() - p);
        if !ok || end != p {
            return Err(self.error_at(
                start,
                format!("`{}` is not a JSON number", &self.text[start..end]),
            ));
        }
        self.pos = p;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_cover_the_text_as_written() {
        let text = "{ \"a\": 12345678901234567890123, \"b\": [1.50, \"\\u00e9\\/\"],\n \"a\": {\"x\": null} }";
        let v = parse(text).unwrap();
        let m = v.members().unwrap();
        assert_eq!(m.len(), 3, "duplicates kept");
        assert_eq!(&text[m[0].value.span.clone()], "12345678901234567890123");
        assert_eq!(&text[m[1].value.span.clone()], "[1.50, \"\\u00e9\\/\"]");
        assert_eq!(&text[m[2].key.clone()], "\"a\"");
        assert!(m[1].comma.is_some() && m[2].comma.is_none());
        let inner = m[2].value.members().unwrap();
        assert_eq!(inner[0].value.kind, Kind::Null);
        assert_eq!(decode("\"\\u00e9\\/\"").as_deref(), Some("é/"));
    }

    #[test]
    fn errors_say_what_was_found_and_where() {
        for (bad, want) in [
            ("", (1, 1, "the file is empty")),
            ("  // only\n", (1, 3, "a `//` comment: JSON has none")),
            ("{\"a\": 1, // x\n}", (1, 10, "a `//` comment")),
            ("{\"a\": 1,\n}", (1, 8, "a trailing comma: JSON has none")),
            ("{\"a\": [1, 2 , ]}", (1, 13, "a trailing comma")),
            (
                "{\n  \"a\": 1\n  \"b\": 2\n}",
                (3, 3, "expected `,` or `}` after a value, found `\"`"),
            ),
            (
                "{\"a\": 'x'}",
                (1, 7, "found `'` (JSON strings take double quotes)"),
            ),
            (
                "{a: 1}",
                (
                    1,
                    2,
                    "expected a property name in double quotes or `}`, found `a`",
                ),
            ),
            ("{\"a\": 1,,}", (1, 9, "(two commas)")),
            ("{\"a\": 01}", (1, 7, "`01` is not a JSON number")),
            ("{\"a\": NaN}", (1, 7, "expected a value, found `N`")),
            (
                "{\"a\": \"x\ny\"}",
                (1, 9, "raw control character (U+000A)"),
            ),
            ("{\"a\": \"\\x\"}", (1, 8, "`\\x` is not a JSON escape")),
            ("{\"a\": \"open", (1, 7, "a string is not closed")),
            ("{ /* c */ }", (1, 3, "a `/*` comment")),
            ("{\"a\": 1", (1, 8, "found the end of the file")),
            ("{} x", (1, 4, "`x` after the end of the JSON value")),
            ("{\"a\": truex}", (1, 7, "expected a value")),
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!((e.line, e.column), (want.0, want.1), "{bad:?}: {e:?}");
            assert!(e.message.contains(want.2), "{bad:?}: {e:?}");
        }
        let deep = "[".repeat(MAX_DEPTH + 1);
        assert!(parse(&deep).unwrap_err().message.contains("deeper than 64"));
        assert!(parse(&format!(
            "{}{}",
            "[".repeat(MAX_DEPTH),
            "]".repeat(MAX_DEPTH)
        ))
        .is_ok());
    }
}
