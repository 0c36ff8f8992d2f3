//! Loading the config for one profile (`credential-process --profile NAME`): of a config of
//! thousands of profiles, only that profile, the profiles it takes credentials from and the
//! rest of the file (`[daemon]`, outputs, sessions, ...) are parsed and validated, so that the
//! SDKs' hot path costs what it costs with a few profiles. Every error of those tables is
//! reported as a full load reports it; the other profiles' are `check`'s business.
//!
//! A line scan finds the `[profile.NAME]` tables; the text parsed is the file without the
//! others ([`Compact`]), and what is reported about it points back into the file (spans,
//! so lines and columns, are those of the file). A config the scan cannot be sure of
//! (multi-line strings, profiles defined any other way than by `[profile.NAME]` headers) is
//! loaded whole.

use std::collections::{BTreeSet, HashMap};
use std::ops::Range;

/// The `[profile.NAME]` tables of a config text, by name (a name there twice has two).
#[derive(Debug, Default)]
pub(super) struct Tables<'t> {
    profiles: HashMap<&'t str, Vec<Range<usize>>>,
}

/// A config text without some of its profile tables, and where its pieces are in the file.
pub(super) struct Compact {
    pub text: String,
    /// (start in `text`, start in the file) of each piece, in order.
    pieces: Vec<(usize, usize)>,
}

impl Compact {
    /// The file offset of an offset in [`Self::text`].
    pub(super) fn to_file(&self, offset: usize) -> usize {
        let i = self.pieces.partition_point(|(c, _)| *c <= offset);
        match i.checked_sub(1).and_then(|i| self.pieces.get(i)) {
            Some((c, f)) => f + (offset - c),
            None => offset,
        }
    }

    /// A span in [`Self::text`] as a span of the file.
    pub(super) fn span_to_file(&self, span: &Range<usize>) -> Range<usize> {
        let start = self.to_file(span.start);
        let end = if span.end > span.start {
            self.to_file(span.end - 1) + 1
        } else {
            start
        };
        start..end
    }
}

impl<'t> Tables<'t> {
    /// Finds the tables, or `None` when the text is not one the scan can be sure of.
    pub(super) fn scan(text: &'t str) -> Option<Tables<'t>> {
        if text.contains("\"\"\"") || text.contains("'''") {
            return None;
        }
        let mut tables = Tables::default();
        // The profile table being read: its name and where it starts.
        let mut open: Option<(&'t str, usize)> = None;
        let mut in_root = true;
        let mut depth = 0usize; // `[` open in a multi-line array
        let mut start = 0;
        for line in text.split_inclusive('\n') {
            let at = start;
            start += line.len();
            let trimmed = line.trim_start_matches([' ', '\t']);
            if depth == 0 && trimmed.starts_with('[') {
                let header = header_key(trimmed)?;
                if let Some((name, from)) = open.take() {
                    tables.profiles.entry(name).or_default().push(from..at);
                }
                in_root = false;
                match header.as_slice() {
                    [first, ..] if *first != "profile" => {}
                    [_, name] if !trimmed.starts_with("[[") => open = Some((name, at)),
                    _ => return None, // `[profile]`, `[profile.a.b]`, `[[profile...]]`
                }
                continue;
            }
            if in_root && defines_profile(trimmed) {
                return None;
            }
            depth = array_depth(trimmed, depth)?;
        }
        if let Some((name, from)) = open {
            tables
                .profiles
                .entry(name)
                .or_default()
                .push(from..text.len());
        }
        Some(tables)
    }

    /// Whether `name` has a table.
    pub(super) fn has(&self, name: &str) -> bool {
        self.profiles.contains_key(name)
    }

    /// `profile` and every profile it takes credentials from (`source_profile`, read from the
    /// tables themselves), as far as they are defined.
    pub(super) fn chain(&self, text: &str, profile: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut next = Some(profile.to_string());
        while let Some(name) = next.take() {
            let Some(ranges) = self.profiles.get(name.as_str()) else {
                break;
            };
            if !out.insert(name) {
                break; // a cycle: reported by the validation
            }
            next = ranges.iter().find_map(|r| source_profile(&text[r.clone()]));
        }
        out
    }

    /// `text` without the profile tables not in `keep` (each piece kept whole lines).
    pub(super) fn compact(&self, text: &str, keep: &BTreeSet<String>) -> Compact {
        let mut left_out: Vec<&Range<usize>> = self
            .profiles
            .iter()
            .filter(|(name, _)| !keep.contains(**name))
            .flat_map(|(_, ranges)| ranges)
            .collect();
        left_out.sort_by_key(|r| r.start);
        let mut out = Compact {
            text: String::new(),
            pieces: Vec::new(),
        };
        let mut from = 0;
        for r in left_out
            .into_iter()
            .chain(std::iter::once(&(text.len()..text.len())))
        {
            if let Some(piece) = text.get(from..r.start).filter(|p| !p.is_empty()) {
                out.pieces.push((out.text.len(), from));
                out.text.push_str(piece);
            }
            from = r.end;
        }
        out
    }
}

/// The `source_profile` of a profile table's text (header included), if it has a plain one.
fn source_profile(table: &str) -> Option<String> {
    let body = table.split_once('\n').map_or("", |(_, b)| b);
    let value: toml::Table = toml::from_str(body).ok()?;
    value.get("source_profile")?.as_str().map(str::to_string)
}

/// Whether a line of the root table (before any header) defines profiles: `profile.x.k = ...`
/// or `profile = { ... }`.
fn defines_profile(line: &str) -> bool {
    ["profile", "\"profile\"", "'profile'"]
        .iter()
        .any(|k| line.starts_with(k))
}

/// The key parts of a table header line (`[a."b c".d]`, `[[a]]`), or `None` when it is not
/// one this scan reads (escapes in a quoted key, anything but a comment after it).
fn header_key(line: &str) -> Option<Vec<&str>> {
    let array = line.starts_with("[[");
    let mut rest = line.get(if array { 2 } else { 1 }..)?;
    let mut parts = Vec::new();
    loop {
        rest = rest.trim_start_matches([' ', '\t']);
        let (part, after) = key_part(rest)?;
        parts.push(part);
        rest = after.trim_start_matches([' ', '\t']);
        if let Some(r) = rest.strip_prefix('.') {
            rest = r;
            continue;
        }
        rest = rest.strip_prefix(if array { "]]" } else { "]" })?;
        break;
    }
    let rest = rest.trim_start_matches([' ', '\t']);
    let end_ok = rest.is_empty() || rest.starts_with(['#', '\r', '\n']);
    end_ok.then_some(parts)
}

/// One part of a dotted key: bare, `"basic"` (no escapes) or `'literal'`; and what follows.
fn key_part(s: &str) -> Option<(&str, &str)> {
    if let Some(q) = s.strip_prefix('"') {
        let end = q.find('"')?;
        let part = &q[..end];
        return (!part.contains('\\')).then(|| (part, &q[end + 1..]));
    }
    if let Some(q) = s.strip_prefix('\'') {
        let end = q.find('\'')?;
        return Some((&q[..end], &q[end + 1..]));
    }
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .unwrap_or(s.len());
    (end > 0).then(|| (&s[..end], &s[end..]))
}

/// How many arrays are open after `line` (outside strings and comments), given `depth` open
/// before it; `None` for a string this scan does not follow.
fn array_depth(line: &str, mut depth: usize) -> Option<usize> {
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '#' => break,
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            '"' => loop {
                match chars.next()? {
                    '\\' => {
                        chars.next()?;
                    }
                    '"' => break,
                    _ => {}
                }
            },
            '\'' => loop {
                if chars.next()? == '\'' {
                    break;
                }
            },
            _ => {}
        }
    }
    Some(depth)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "[daemon]\nstate_dir = \"s\"\n[[output]]\npath = \"c\"\nprofiles = [\n  \"a\", # [x]\n  \"b\",\n]\n\
        [profile.a]\nsource_profile = \"b\"\nrole_arn = \"arn\"\n[profile.\"b\"] # comment\ncredential_process = \"x\"\n\
        [profile.c]\ncredential_process = \"y [z]\"\n[sso_session.s]\n";

    #[test]
    fn finds_profile_tables_and_chains() {
        let t = Tables::scan(TEXT).unwrap();
        assert!(t.has("a") && t.has("b") && t.has("c") && !t.has("d"));
        assert_eq!(
            t.chain(TEXT, "a").into_iter().collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(t.chain(TEXT, "c").into_iter().collect::<Vec<_>>(), ["c"]);
        let keep: BTreeSet<String> = ["b".to_string()].into();
        let c = t.compact(TEXT, &keep);
        assert!(!c.text.contains("[profile.a]") && !c.text.contains("y [z]"));
        assert!(c.text.contains("[profile.\"b\"]") && c.text.contains("[sso_session.s]"));
        assert!(c.text.contains("profiles = [\n  \"a\""));
        // Offsets in the compact text point at the same bytes of the file.
        for needle in [
            "[profile.\"b\"]",
            "credential_process = \"x\"",
            "[sso_session.s]",
            "[daemon]",
        ] {
            let at = c.text.find(needle).unwrap();
            let span = c.span_to_file(&(at..at + needle.len()));
            assert_eq!(&TEXT[span], needle);
        }
    }

    #[test]
    fn what_the_scan_cannot_be_sure_of_is_loaded_whole() {
        for text in [
            "[profile]\na = { credential_process = \"x\" }\n",
            "profile.a.credential_process = \"x\"\n",
            "[profile.a.b]\n",
            "[[profile.a]]\n",
            "[profile.a]\ncredential_process = \"\"\"x\"\"\"\n",
            "[profile.\"a\\u0062\"]\n",
        ] {
            assert!(Tables::scan(text).is_none(), "{text}");
        }
    }
}
