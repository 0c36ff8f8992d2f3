//! Every unknown key at once, with a suggestion, and hints for what people copy from
//! `~/.aws/config`.
//!
//! serde stops at the first unknown field (`deny_unknown_fields`). To report them all, the
//! parse is repeated: each unknown key is recorded with its span and blanked out of a copy of
//! the text (replaced by spaces, so every later span still points at the original), until the
//! text parses or fails for another reason. The known keys come from serde's own message
//! ("expected one of ..."), so there is no second list of keys to keep in step.

use super::{Diagnostic, Severity};
use std::ops::Range;

/// At most this many errors are collected.
const MAX_UNKNOWN: usize = 100;

/// Parses `text` as `T`, collecting every unknown key, and every value of the wrong type, as
/// an error (with a suggestion or hint). The value comes back with the ranges blanked out to
/// get it (each one an error already reported), so that the semantic checks can still run on
/// the rest; `None` when the text does not parse even so (a syntax error).
pub(super) fn parse_all<T: serde::de::DeserializeOwned>(
    text: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<(T, Vec<Range<usize>>)> {
    let mut buf = text.to_string();
    let mut blanked: Vec<Range<usize>> = Vec::new();
    // What a TOML parser would misread or stop at: reported, and out of the way of the rest.
    for (d, range) in super::pasted::find(text) {
        diags.push(d);
        blank_range(&mut buf, range.clone());
        blanked.push(range);
    }
    loop {
        let e = match toml::from_str::<T>(&buf) {
            Ok(v) => return Some((v, blanked)),
            Err(e) => e,
        };
        let message = e.message().trim_end().replace('\n', " ");
        let Some(span) = e.span().map(|s| on_chars(text, s)) else {
            diags.push(error(None, message));
            return None;
        };
        // An error where we blanked something is a consequence of the blanking.
        if blanked
            .iter()
            .any(|b| span.start < b.end + 1 && b.start < span.end + 1)
        {
            return None;
        }
        let entry_start = if let Some((key, expected)) = unknown_field(&message) {
            let header = &text[line_of(text, span.start)];
            diags.push(error(
                Some(span.clone()),
                unknown_message(&key, &expected, header),
            ));
            span.start
        } else {
            let hint = hint_for(text, span.clone(), &message)
                .map(|h| format!("; {h}"))
                .unwrap_or_default();
            let message = as_written(text, span.clone(), message);
            diags.push(error(Some(span.clone()), format!("{message}{hint}")));
            if !message.starts_with("invalid type") && !message.starts_with("invalid value") {
                return None;
            }
            // A value of the wrong type: blank its whole `key = value` line.
            let line = line_of(&buf, span.start);
            let text_of_line = &buf[line.clone()];
            line.start + (text_of_line.len() - text_of_line.trim_start().len())
        };
        if blanked.len() >= MAX_UNKNOWN {
            return None;
        }
        match blank_entry(&mut buf, entry_start) {
            Some(range) => blanked.push(range),
            None => return None,
        }
    }
}

fn error(span: Option<Range<usize>>, message: String) -> Diagnostic {
    Diagnostic {
        severity: Severity::Error,
        span,
        message,
    }
}

/// `unknown field `x`, expected one of `a`, `b`` -> (`x`, [a, b]).
fn unknown_field(message: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (key, rest) = rest.split_once('`')?;
    let expected = rest
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect();
    Some((key.to_string(), expected))
}

/// The message for an unknown key, with the closest known key and AWS-config hints.
fn unknown_message(key: &str, expected: &[String], header_line: &str) -> String {
    let mut m = format!("unknown key `{key}`");
    let normalized = key.replace('-', "_");
    let best = expected
        .iter()
        .map(|k| (strsim::damerau_levenshtein(&normalized, k), k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 5))
        .min_by_key(|(d, _)| *d);
    match best {
        Some((_, k)) => m.push_str(&format!(": did you mean `{k}`?")),
        None if !expected.is_empty() => {
            let list: Vec<String> = expected.iter().map(|k| format!("`{k}`")).collect();
            m.push_str(&format!(" (known here: {})", list.join(", ")));
        }
        None => {}
    }
    if key == "sso-session" || header_line.contains("[sso-session") {
        m.push_str("; an [sso-session NAME] of ~/.aws/config is written [sso_session.NAME] here");
    }
    m
}

/// The header line (`[profile.dev]`) of the table holding byte `at`, as a range; before the
/// first header, the first line.
pub(super) fn header_of(text: &str, at: usize) -> Range<usize> {
    let at = at.min(text.len());
    let mut header = 0;
    let mut pos = 0;
    for l in text.split_inclusive('\n') {
        if pos > at {
            break;
        }
        if l.trim_start().starts_with('[') {
            header = pos;
        }
        pos += l.len();
    }
    line_of(text, header)
}

/// The line holding byte `at`, as a range.
fn line_of(text: &str, at: usize) -> Range<usize> {
    let at = at.min(text.len());
    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let end = text[at..].find('\n').map_or(text.len(), |i| at + i);
    start..end
}

/// A hint for a parse error that people make copying `~/.aws/config`.
fn hint_for(text: &str, span: Range<usize>, message: &str) -> Option<String> {
    let line = text[line_of(text, span.start)].trim();
    for (aws, ours) in [("[profile ", "profile"), ("[sso-session ", "sso_session")] {
        if let Some(name) = line.strip_prefix(aws).and_then(|r| r.strip_suffix(']')) {
            return Some(format!(
                "this is ~/.aws/config syntax: write [{ours}.{}]",
                name.trim()
            ));
        }
    }
    let key = line.split_once('=').map(|(k, _)| k.trim());
    let value = line
        .split_once('=')
        .map(|(_, v)| v.split('#').next().unwrap_or("").trim())
        .unwrap_or("");
    let octal = value.strip_prefix("0o").unwrap_or(value);
    let number = !octal.is_empty() && octal.chars().all(|c| c.is_ascii_digit());
    match key {
        // `mode = 0600` is not TOML (no leading zeros); `mode = 0o600` is the number 384.
        Some("mode") if number => {
            let digits = octal.trim_start_matches('0');
            return Some(format!(
                "a mode is a quoted octal string: write mode = \"{digits:0>4}\""
            ));
        }
        Some("refresh_before") if message.contains("invalid type") => {
            return Some(
                "a duration is a quoted number with a unit: write \"15m\" or \"900s\"".into(),
            );
        }
        _ => {}
    }
    if message.contains("invalid type: integer") {
        let raw = text.get(span.clone())?.trim();
        if raw.chars().all(|c| c.is_ascii_digit() || c == '_') {
            return Some(format!(
                "quote it: \"{raw}\" (as a number TOML would drop an account id's leading zeros)"
            ));
        }
    }
    if message.contains("invalid type: string") && message.contains("expected i64") {
        let digits = value.trim_matches(['"', '\'']);
        if !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) {
            return Some(format!("write it as a number, without quotes: {digits}"));
        }
    }
    None
}

/// serde names an integer by its value (`0o600` is "integer `384`"): name it as written.
fn as_written(text: &str, span: Range<usize>, message: String) -> String {
    let Some(rest) = message.strip_prefix("invalid type: integer `") else {
        return message;
    };
    let Some((value, rest)) = rest.split_once('`') else {
        return message;
    };
    match text.get(span).map(str::trim) {
        Some(raw) if raw != value && !raw.is_empty() => {
            format!("invalid type: integer `{raw}` ({value}){rest}")
        }
        _ => message,
    }
}

/// Replaces the entry (key and value, or a whole table) that starts at `at` with spaces,
/// keeping line breaks so that spans stay valid; the range blanked, if any.
fn blank_entry(buf: &mut String, at: usize) -> Option<Range<usize>> {
    let line = line_of(buf, at);
    let end = if buf[line.clone()].trim_start().starts_with('[') {
        // A table: its header and every line up to the next header.
        let mut end = line.end;
        for l in buf[line.end..].split_inclusive('\n') {
            if l.trim_start().starts_with('[') {
                break;
            }
            end += l.len();
        }
        end
    } else {
        value_end(buf, at)
    };
    if end <= at {
        return None;
    }
    let start = if buf[line.clone()].trim_start().starts_with('[') {
        line.start
    } else {
        at
    };
    blank_range(buf, start..end);
    Some(start..end)
}

/// Replaces `range` of `buf` with spaces, keeping line breaks: one space per byte, so that
/// every offset after it stays where it was in the original text.
fn blank_range(buf: &mut String, range: Range<usize>) {
    let blank: String = buf[range.clone()]
        .chars()
        .flat_map(|c| {
            let keep = c == '\n' || c == '\r';
            std::iter::repeat_n(
                if keep { c } else { ' ' },
                if keep { 1 } else { c.len_utf8() },
            )
        })
        .collect();
    buf.replace_range(range, &blank);
}

/// `span` inside `text` and on character boundaries (widened to whole characters): the TOML
/// parser may point into the middle of one.
fn on_chars(text: &str, span: Range<usize>) -> Range<usize> {
    let mut start = span.start.min(text.len());
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = span.end.clamp(start, text.len());
    while !text.is_char_boundary(end) {
        end += 1;
    }
    start..end
}

/// Where the `key = value` entry starting at `at` ends: after its value, which may span lines
/// (arrays, inline tables, multi-line strings).
fn value_end(buf: &str, at: usize) -> usize {
    let bytes = buf.as_bytes();
    let mut i = at;
    // Past the key and the `=`.
    while i < bytes.len() && bytes[i] != b'=' && bytes[i] != b'\n' {
        i += 1;
    }
    if i >= bytes.len() || bytes[i] == b'\n' {
        return i;
    }
    i += 1;
    let mut depth = 0i32;
    while i < bytes.len() {
        let rest = &buf[i..];
        if rest.starts_with("\"\"\"") || rest.starts_with("'''") {
            let q = &rest[..3];
            i = rest[3..].find(q).map_or(bytes.len(), |j| i + 3 + j + 3);
            continue;
        }
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
                continue;
            }
            b'\'' => {
                i = buf[i + 1..]
                    .find(['\'', '\n'])
                    .map_or(bytes.len(), |j| i + 1 + j + 1);
                continue;
            }
            b'[' | b'{' => depth += 1,
            b']' | b'}' => depth -= 1,
            b'#' if depth == 0 => {
                return buf[i..].find('\n').map_or(bytes.len(), |j| i + j);
            }
            b'\n' if depth <= 0 => return i,
            _ => {}
        }
        i += 1;
    }
    bytes.len().min(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_end_where_toml_says() {
        let cases = [
            ("a = 1\nb = 2", "a = 1"),
            ("a = [1,\n 2]\nb", "a = [1,\n 2]"),
            ("a = \"x # y\" # c\nb", "a = \"x # y\" # c"),
            ("a = '''\n]\n'''\nb", "a = '''\n]\n'''"),
            ("a = { x = [1] }\nb", "a = { x = [1] }"),
        ];
        for (text, want) in cases {
            assert_eq!(&text[..value_end(text, 0)], want, "{text:?}");
        }
    }

    /// Found by `fuzz/fuzz_targets/config.rs`: blanking a value with a character of several
    /// bytes shortened the copy parsed again, so later spans ran past its end (a panic in
    /// `check`), and a TOML error could point inside a character.
    #[test]
    fn non_ascii_text_keeps_every_span_on_the_original() {
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct T {
            a: Option<i64>,
            b: Option<i64>,
        }
        for text in [
            "a = \"é\"\nb = \"ü\"\nzz = 1\n",
            "[profile \u{616}]\n[\u{616}",
            "x\u{616} = 1\nb = \"\u{10348}\"\nq = 2",
        ] {
            let mut diags = Vec::new();
            let _ = parse_all::<T>(text, &mut diags);
            assert!(!diags.is_empty(), "{text:?}");
            for d in &diags {
                let span = d.span.clone().unwrap();
                assert!(span.end <= text.len(), "{text:?}: {d:?}");
                assert!(text.is_char_boundary(span.start) && text.is_char_boundary(span.end));
            }
        }
        let mut buf = "a = \"é\u{10348}\"\nb".to_string();
        let len = buf.len();
        blank_range(&mut buf, 0..len - 2);
        assert_eq!(buf.len(), len);
        assert!(buf.ends_with("\nb"));
    }

    #[test]
    fn unknown_fields_are_parsed_from_serdes_message() {
        let (k, e) = unknown_field("unknown field `pat`, expected one of `path`, `mode`").unwrap();
        assert_eq!(k, "pat");
        assert_eq!(e, ["path", "mode"]);
        assert!(
            unknown_message("sso_acount_id", &["sso_account_id".into()], "")
                .contains("did you mean `sso_account_id`?")
        );
        assert!(!unknown_message("zzz", &["path".into()], "").contains("did you mean"));
    }
}
