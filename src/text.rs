//! Text that came from outside (a path, a profile name, a program's error) shown safely: its
//! control characters escaped, so that a newline in a file name cannot forge a log line or a
//! `check` diagnostic, and an escape sequence cannot drive the operator's terminal.

use std::borrow::Cow;
use std::fmt::Display;

/// `text` with every control character (C0, DEL and C1: a newline, a carriage return, an
/// escape, a tab) written as Rust writes it escaped (`\n`, `\r`, `\t`, `\u{1b}`); anything
/// else, including every other non-ASCII character, is left as it is.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `value` displayed with its control characters escaped (see [`escape_controls`]).
pub fn shown(value: impl Display) -> String {
    let text = value.to_string();
    match escape_controls(&text) {
        Cow::Borrowed(_) => text,
        Cow::Owned(escaped) => escaped,
    }
}

/// One formatted log event (`tracing`'s text or JSON line) made safe for a terminal or a log
/// file: every newline but the event's last, every carriage return and every other control
/// character inside it escaped. With `ansi` (a terminal), the colour sequences the formatter
/// itself writes (`ESC [ digits ; ... m`) are kept; any other escape is escaped too.
pub fn escape_log_event(event: &[u8], ansi: bool) -> Cow<'_, [u8]> {
    let body = event.strip_suffix(b"\n").unwrap_or(event);
    let unsafe_at = |i: usize| unsafe_len(body, i, ansi).is_some();
    if !(0..body.len()).any(unsafe_at) {
        return Cow::Borrowed(event);
    }
    let mut out = Vec::with_capacity(event.len() + 16);
    let mut i = 0;
    while i < body.len() {
        match unsafe_len(body, i, ansi) {
            Some(len) => {
                let c = std::str::from_utf8(&body[i..i + len])
                    .ok()
                    .and_then(|s| s.chars().next());
                match c {
                    Some(c) => out.extend(c.escape_default().to_string().bytes()),
                    None => out.extend(format!("\\x{:02x}", body[i]).bytes()),
                }
                i += len;
            }
            None => {
                let keep = colour_len(body, i, ansi).unwrap_or(1);
                out.extend_from_slice(&body[i..i + keep]);
                i += keep;
            }
        }
    }
    out.extend_from_slice(&event[body.len()..]);
    Cow::Owned(out)
}

/// The length of the control character at `at` that must be escaped (1 byte for C0 and DEL,
/// 2 for a C1 character in UTF-8), or `None`.
fn unsafe_len(body: &[u8], at: usize, ansi: bool) -> Option<usize> {
    match body[at] {
        0x1b if colour_len(body, at, ansi).is_some() => None,
        b if b < 0x20 || b == 0x7f => Some(1),
        0xc2 if body.get(at + 1).is_some_and(|n| (0x80..=0x9f).contains(n)) => Some(2),
        _ => None,
    }
}

/// The length of the SGR colour sequence (`ESC [ 0-9; m`) at `at`, when colours are on.
fn colour_len(body: &[u8], at: usize, ansi: bool) -> Option<usize> {
    if !ansi || body[at] != 0x1b || body.get(at + 1) != Some(&b'[') {
        return None;
    }
    let params = body[at + 2..]
        .iter()
        .take_while(|b| b.is_ascii_digit() || **b == b';')
        .count();
    (body.get(at + 2 + params) == Some(&b'm')).then_some(params + 3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_escaped_and_the_rest_is_kept() {
        assert_eq!(escape_controls("a/b é ü"), "a/b é ü");
        assert!(matches!(escape_controls("plain"), Cow::Borrowed(_)));
        assert_eq!(
            escape_controls("x\nERROR forged\r\t\u{1b}[31m\u{7f}\u{85}"),
            "x\\nERROR forged\\r\\t\\u{1b}[31m\\u{7f}\\u{85}"
        );
        assert_eq!(shown(std::path::Path::new("/a\nb").display()), "/a\\nb");
    }

    #[test]
    fn a_log_event_keeps_its_last_newline_and_its_own_colours_only() {
        let event = b"2026 INFO wrote /tmp/a\n2026 ERROR forged\r\n";
        assert_eq!(
            &*escape_log_event(event, false),
            b"2026 INFO wrote /tmp/a\\n2026 ERROR forged\\r\n"
        );
        let clean = b"2026 \x1b[32mINFO\x1b[0m wrote\n";
        assert!(matches!(escape_log_event(clean, true), Cow::Borrowed(_)));
        // Without colours, the same sequences are shown escaped; with colours, a foreign
        // escape (not a colour) is escaped.
        assert_eq!(
            &*escape_log_event(clean, false),
            b"2026 \\u{1b}[32mINFO\\u{1b}[0m wrote\n"
        );
        assert_eq!(
            &*escape_log_event(b"\x1b[32mI\x1b[0m \x1b]0;title\x07 \xc2\x9b2J\n", true),
            b"\x1b[32mI\x1b[0m \\u{1b}]0;title\\u{7} \\u{9b}2J\n"
        );
        // Bytes that are not UTF-8 stay as they are, but for a stray control byte.
        assert_eq!(&*escape_log_event(b"\xff\x01\n", false), b"\xff\\u{1}\n");
    }
}
