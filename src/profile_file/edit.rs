//! Editing a credentials file in place: the pure core of the store.
//!
//! `existing text + profile updates -> new text`. Only the lines of managed keys in managed
//! profiles change; every other byte (comments, blank lines, order, line endings, other
//! profiles, keys a user added inside a managed profile) is copied through. A profile that is
//! not in the file yet is appended. What we write is the subset of the format that both the
//! SDKs' parser and botocore's `configparser` read the same way (`key = value`, lowercase keys,
//! no inline comments).

use super::{Line, LineKind, ProfileFile};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// What to do with one key of a managed profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyUpdate {
    /// Write `key = value`, replacing the key where it is or adding it.
    Set(String),
    /// Replace the key's value only if the key is already there (legacy aliases).
    SetIfPresent(String),
    /// Delete every line of the key.
    Remove,
}

/// The managed keys of one profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileUpdate {
    pub profile: String,
    /// Lowercase keys, in the order new keys are written.
    pub keys: Vec<(String, KeyUpdate)>,
}

/// Why an edit was refused. Nothing is written when an edit fails.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EditError {
    /// The profile's section appears more than once; botocore rejects such a file, and we
    /// cannot tell which copy the user means.
    DuplicateSection { profile: String, lines: Vec<usize> },
    /// The profile's header has spaces or tabs inside its brackets (`[ a ]`): the SDKs trim
    /// them, botocore does not (it finds no profile `a` there), so no write into it reaches
    /// every reader.
    PaddedSection { profile: String, line: usize },
    /// A value that cannot be written so that every parser reads it back unchanged. The value
    /// itself is never shown: it may be a secret.
    UnwritableValue { profile: String, key: String },
    /// A profile name the SDKs would ignore.
    InvalidProfileName(String),
}

impl fmt::Display for EditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EditError::DuplicateSection { profile, lines } => {
                let lines: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
                write!(
                    f,
                    "profile [{profile}] appears more than once (lines {}); botocore rejects \
                     duplicate sections, so merge them by hand",
                    lines.join(", ")
                )
            }
            EditError::PaddedSection { profile, line } => write!(
                f,
                "line {line}: the header of profile [{profile}] has whitespace inside its \
                 brackets, which the AWS SDKs trim but botocore (the AWS CLI) does not, so \
                 it would not find the profile; write the header as [{profile}]"
            ),
            EditError::UnwritableValue { profile, key } => write!(
                f,
                "the value for `{key}` of profile [{profile}] cannot be written safely \
                 (it is empty, starts with a comment character `#` or `;`, or contains a \
                 line break, leading or trailing whitespace, or a comment character after \
                 whitespace)"
            ),
            EditError::InvalidProfileName(name) => write!(
                f,
                "`{name}` is not a profile name the AWS SDKs accept (letters, digits and _-/.%@:+)"
            ),
        }
    }
}

impl std::error::Error for EditError {}

/// A value reads back identically from every parser if it is non-empty, one line, has no
/// surrounding whitespace, no control characters, and no `#`/`;` after whitespace — which
/// includes its first character, since it is written after the space of ` = `: the SDKs
/// read `key = #abc` as an empty value and a comment.
fn is_writable_value(v: &str) -> bool {
    if v.is_empty() || v.trim() != v || v.chars().any(|c| c.is_control()) {
        return false;
    }
    let mut prev_ws = true;
    for c in v.chars() {
        if (c == '#' || c == ';') && prev_ws {
            return false;
        }
        prev_ws = c.is_whitespace();
    }
    true
}

/// Checks that an update can be written: a valid profile name and values every parser reads
/// back unchanged. [`rewrite`] refuses what this refuses; the refresh pass checks each profile
/// on its own first, so one bad value fails only its profile, not the whole file.
pub fn check_update(u: &ProfileUpdate) -> Result<(), EditError> {
    if u.profile.is_empty() || !super::is_identifier(&u.profile) {
        return Err(EditError::InvalidProfileName(u.profile.clone()));
    }
    for (key, update) in &u.keys {
        if let KeyUpdate::Set(v) | KeyUpdate::SetIfPresent(v) = update {
            if !is_writable_value(v) {
                return Err(EditError::UnwritableValue {
                    profile: u.profile.clone(),
                    key: key.clone(),
                });
            }
        }
    }
    Ok(())
}

/// Applies `updates` to the credentials file `file` and returns the new text.
pub fn rewrite(file: &ProfileFile<'_>, updates: &[ProfileUpdate]) -> Result<String, EditError> {
    let mut out = String::new();
    rewrite_into(file, updates, &mut out)?;
    Ok(out)
}

/// Where a rewrite goes: a `String`, or [`Pieces`] that point into the old text.
pub trait Sink<'a> {
    fn clear(&mut self);
    /// A run of the old text, copied through.
    fn copy(&mut self, s: &'a str);
    /// New text.
    fn add(&mut self, s: &str);
    fn is_empty(&self) -> bool;
    /// Whether the output ends with `s` (at most [`TAIL`] bytes).
    fn ends_with(&self, s: &str) -> bool;
}

/// The longest `s` [`Sink::ends_with`] is asked about.
const TAIL: usize = 3;

impl<'a> Sink<'a> for String {
    fn clear(&mut self) {
        String::clear(self)
    }
    fn copy(&mut self, s: &'a str) {
        self.push_str(s)
    }
    fn add(&mut self, s: &str) {
        self.push_str(s)
    }
    fn is_empty(&self) -> bool {
        str::is_empty(self)
    }
    fn ends_with(&self, s: &str) -> bool {
        str::ends_with(self, s)
    }
}

/// A rewritten text as pieces: runs of the old text (borrowed, not copied) and new text (in
/// one owned buffer). Written with one vectored write, the 0.9 MB file of 1,000 profiles is
/// not copied once more in memory to change a few lines.
#[derive(Debug, Default)]
pub struct Pieces<'a> {
    parts: Vec<Piece<'a>>,
    owned: String,
}

#[derive(Debug)]
enum Piece<'a> {
    Old(&'a str),
    /// A range of `owned`.
    New(usize, usize),
}

impl<'a> Pieces<'a> {
    /// The pieces in order, as byte slices for a vectored write.
    pub fn slices(&self) -> Vec<&[u8]> {
        self.parts
            .iter()
            .map(|p| match p {
                Piece::Old(s) => s.as_bytes(),
                Piece::New(a, b) => &self.owned.as_bytes()[*a..*b],
            })
            .collect()
    }

    /// The whole text in one string.
    pub fn concat(&self) -> String {
        self.slices()
            .iter()
            .map(|s| String::from_utf8_lossy(s))
            .collect()
    }
}

impl<'a> Sink<'a> for Pieces<'a> {
    fn clear(&mut self) {
        self.parts.clear();
        self.owned.clear();
    }
    fn copy(&mut self, s: &'a str) {
        if !s.is_empty() {
            self.parts.push(Piece::Old(s));
        }
    }
    fn add(&mut self, s: &str) {
        if s.is_empty() {
            return;
        }
        let start = self.owned.len();
        self.owned.push_str(s);
        // Next to new text already there, the range grows: one piece for a profile's lines.
        if let Some(Piece::New(_, end)) = self.parts.last_mut() {
            if *end == start {
                *end = self.owned.len();
                return;
            }
        }
        self.parts.push(Piece::New(start, self.owned.len()));
    }
    fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }
    fn ends_with(&self, s: &str) -> bool {
        // The last up to TAIL bytes, gathered from the last pieces (a tail may span them).
        let mut tail = [0u8; TAIL];
        let mut have = 0;
        for slice in self.slices().iter().rev() {
            for &b in slice.iter().rev() {
                if have == TAIL {
                    break;
                }
                tail[TAIL - 1 - have] = b;
                have += 1;
            }
            if have == TAIL {
                break;
            }
        }
        tail[TAIL - have..].ends_with(s.as_bytes())
    }
}

/// [`rewrite`] into `out` (cleared first): a `String` a caller keeps across rewrites, or
/// [`Pieces`]. Returns whether the text changed (`out` differs from the file's text), known
/// from the edits themselves, so that nobody has to compare two large texts. On error `out`
/// is left empty.
pub fn rewrite_into<'a>(
    file: &ProfileFile<'a>,
    updates: &[ProfileUpdate],
    out: &mut impl Sink<'a>,
) -> Result<bool, EditError> {
    out.clear();
    for u in updates {
        check_update(u)?;
    }
    let lines = file.lines();
    let sections = SectionIndex::new(profile_sections(file));
    let mut edits = Edits::default();
    for u in updates {
        match find_section(&sections, lines, u)? {
            None => edits.append_profile(u),
            Some(section) => edits.update_section(file.text(), lines, section, u),
        }
    }
    edits.write_into(file.text(), lines, file.preferred_terminator(), out);
    Ok(edits.changed())
}

/// One profile's section in a credentials file.
struct Section<'a> {
    profile: &'a str,
    /// The index of the header line.
    header: usize,
    /// The index past the section's last line.
    end: usize,
    /// Whether the name is padded inside the brackets (`[ a ]`).
    padded: bool,
}

/// The profile sections of `file`, in file order.
fn profile_sections<'a>(file: &ProfileFile<'a>) -> Vec<Section<'a>> {
    let lines = file.lines();
    file.sections()
        .into_iter()
        .filter_map(|(header, end)| match &lines[header].kind {
            LineKind::Section { raw_name } => {
                super::credentials_profile_name(raw_name).map(|profile| Section {
                    profile,
                    header,
                    end,
                    padded: profile.len() != raw_name.len(),
                })
            }
            _ => None,
        })
        .collect()
}

/// A file's profile sections by name (a profile may be there more than once): finding the
/// section of each of many updates costs no scan of every section.
struct SectionIndex<'a> {
    by_name: std::collections::HashMap<&'a str, Vec<Section<'a>>>,
}

impl<'a> SectionIndex<'a> {
    fn new(sections: Vec<Section<'a>>) -> Self {
        let mut by_name: std::collections::HashMap<&'a str, Vec<Section<'a>>> =
            std::collections::HashMap::new();
        for s in sections {
            by_name.entry(s.profile).or_default().push(s);
        }
        SectionIndex { by_name }
    }
}

/// The first of `profiles` (in that order) whose section a rewrite would refuse: there more
/// than once, or with a padded header. One look at the file for all of them.
pub fn section_problem(file: &ProfileFile<'_>, profiles: &[String]) -> Option<EditError> {
    let sections = SectionIndex::new(profile_sections(file));
    profiles.iter().find_map(|p| {
        let u = ProfileUpdate {
            profile: p.clone(),
            keys: Vec::new(),
        };
        find_section(&sections, file.lines(), &u).err()
    })
}

/// The section `u` writes into, as (header index, end), or `None` when the profile is not
/// in the file yet; refused when it is there more than once or its header is padded.
fn find_section(
    sections: &SectionIndex<'_>,
    lines: &[Line<'_>],
    u: &ProfileUpdate,
) -> Result<Option<(usize, usize)>, EditError> {
    let found: &[Section<'_>] = sections
        .by_name
        .get(u.profile.as_str())
        .map_or(&[], Vec::as_slice);
    if let Some(s) = found.iter().find(|s| s.padded) {
        return Err(EditError::PaddedSection {
            profile: u.profile.clone(),
            line: lines[s.header].number,
        });
    }
    match found {
        [] => Ok(None),
        [one] => Ok(Some((one.header, one.end))),
        many => Err(EditError::DuplicateSection {
            profile: u.profile.clone(),
            lines: many.iter().map(|s| lines[s.header].number).collect(),
        }),
    }
}

/// The property lines of the section `header..end`, each with the indexes of its
/// continuations, and the index of the section's last property or continuation line (the
/// header when it has none): where new keys go.
fn section_properties(
    lines: &[Line<'_>],
    header: usize,
    end: usize,
) -> (Vec<(usize, Vec<usize>)>, usize) {
    let mut props: Vec<(usize, Vec<usize>)> = Vec::new();
    let mut last_content = header;
    for (i, line) in lines.iter().enumerate().take(end).skip(header + 1) {
        match &line.kind {
            LineKind::Property { .. } => {
                props.push((i, Vec::new()));
                last_content = i;
            }
            LineKind::Continuation { .. } => {
                if let Some((_, conts)) = props.last_mut() {
                    conts.push(i);
                }
                last_content = i;
            }
            _ => {}
        }
    }
    (props, last_content)
}

/// What a rewrite changes, by index of the original line. Sparse: a file has thousands of
/// lines and an edit touches a few.
#[derive(Default)]
struct Edits {
    /// New content of a line (its terminator kept).
    replace: BTreeMap<usize, String>,
    delete: BTreeSet<usize>,
    /// Lines to insert after a line.
    insert_after: BTreeMap<usize, Vec<String>>,
    /// Lines of the profiles not in the file yet, added at its end.
    append: Vec<String>,
    /// Whether a replaced line reads differently; deletions, insertions and appends always do.
    changed: bool,
}

impl Edits {
    /// A profile not in the file yet: its section, after a blank line if there is one before.
    fn append_profile(&mut self, u: &ProfileUpdate) {
        if !self.append.is_empty() {
            self.append.push(String::new());
        }
        self.append.push(format!("[{}]", u.profile));
        for (key, update) in &u.keys {
            if let KeyUpdate::Set(v) = update {
                self.append.push(format!("{key} = {v}"));
            }
        }
    }

    /// A profile whose section is `(header, end)`: each key changed where it is; keys it does
    /// not have yet go after its last property.
    fn update_section(
        &mut self,
        text: &str,
        lines: &[Line<'_>],
        (header, end): (usize, usize),
        u: &ProfileUpdate,
    ) {
        let (props, last_content) = section_properties(lines, header, end);
        let mut new_lines = Vec::new();
        for (key, update) in &u.keys {
            if !self.update_key(text, lines, &props, key, update) {
                if let KeyUpdate::Set(v) = update {
                    new_lines.push(format!("{key} = {v}"));
                }
            }
        }
        if !new_lines.is_empty() {
            self.insert_after
                .entry(last_content)
                .or_default()
                .extend(new_lines);
        }
    }

    /// Every line of `key` among `props`: the first set to the new value, the others (all of
    /// them for a removal) deleted, each with its continuations. Whether the key was there.
    fn update_key(
        &mut self,
        text: &str,
        lines: &[Line<'_>],
        props: &[(usize, Vec<usize>)],
        key: &str,
        update: &KeyUpdate,
    ) -> bool {
        let value = match update {
            KeyUpdate::Set(v) | KeyUpdate::SetIfPresent(v) => Some(v),
            KeyUpdate::Remove => None,
        };
        let occurrences = props.iter().filter(
            |(i, _)| matches!(&lines[*i].kind, LineKind::Property { key: k, .. } if k == key),
        );
        let mut found = false;
        for (i, conts) in occurrences {
            match (found, value) {
                (false, Some(v)) => {
                    let new = format!("{key} = {v}");
                    let line = &lines[*i];
                    self.changed |= new != text[line.start..line.content_end];
                    self.replace.insert(*i, new);
                }
                _ => {
                    self.delete.insert(*i);
                }
            }
            self.delete.extend(conts.iter().copied());
            found = true;
        }
        found
    }

    /// Whether the edits change the text.
    fn changed(&self) -> bool {
        self.changed
            || !self.delete.is_empty()
            || !self.insert_after.is_empty()
            || !self.append.is_empty()
    }

    /// The edited `text` into `out`.
    fn write_into<'a>(
        &self,
        text: &'a str,
        lines: &[Line<'a>],
        eol: &str,
        out: &mut impl Sink<'a>,
    ) {
        // Unchanged lines are copied in runs: `copied` is where the current run starts.
        let touched: BTreeSet<usize> = self
            .delete
            .iter()
            .chain(self.replace.keys())
            .chain(self.insert_after.keys())
            .copied()
            .collect();
        let mut copied = 0;
        for i in touched {
            let line = &lines[i];
            if self.delete.contains(&i) || self.replace.contains_key(&i) {
                out.copy(&text[copied..line.start]);
                if let (false, Some(new)) = (self.delete.contains(&i), self.replace.get(&i)) {
                    out.add(new);
                    out.copy(line.terminator(text));
                }
                copied = line.end;
            }
            if let Some(new_lines) = self.insert_after.get(&i) {
                out.copy(&text[copied..line.end.max(copied)]);
                copied = line.end;
                end_line(out, eol);
                for new in new_lines {
                    out.add(new);
                    out.add(eol);
                }
            }
        }
        out.copy(&text[copied..]);
        self.write_appended(eol, out);
    }

    /// The appended profiles at the end of `out`, after a blank line.
    fn write_appended<'a>(&self, eol: &str, out: &mut impl Sink<'a>) {
        if self.append.is_empty() {
            return;
        }
        if !out.is_empty() {
            end_line(out, eol);
            if !out.ends_with("\n\n") && !out.ends_with("\n\r\n") {
                out.add(eol);
            }
        }
        for new in &self.append {
            out.add(new);
            out.add(eol);
        }
    }
}

/// Makes sure `out` ends with a line terminator before more lines are added. A last line
/// that ends in a lone `\r` has it in its value (the parser reads `\r` only before `\n` as
/// part of a terminator): a `\n` after it would turn it into one and change the value, so it
/// gets a whole `\r\n`.
fn end_line<'a>(out: &mut impl Sink<'a>, eol: &str) {
    if out.is_empty() || out.ends_with("\n") {
        return;
    }
    out.add(if out.ends_with("\r") { "\r\n" } else { eol });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(profile: &str, akid: &str, token: Option<&str>) -> ProfileUpdate {
        ProfileUpdate {
            profile: profile.into(),
            keys: vec![
                ("aws_access_key_id".into(), KeyUpdate::Set(akid.into())),
                (
                    "aws_secret_access_key".into(),
                    KeyUpdate::Set("SECRET".into()),
                ),
                (
                    "aws_session_token".into(),
                    token.map_or(KeyUpdate::Remove, |t| KeyUpdate::Set(t.into())),
                ),
                (
                    "aws_security_token".into(),
                    token.map_or(KeyUpdate::Remove, |t| KeyUpdate::SetIfPresent(t.into())),
                ),
            ],
        }
    }

    fn apply(text: &str, updates: &[ProfileUpdate]) -> String {
        rewrite(&ProfileFile::parse(text).unwrap(), updates).unwrap()
    }

    /// Found by `fuzz/fuzz_targets/profile_file.rs`: a `\n` added after a last line ending in
    /// a lone `\r` (its value's last character, as the parser reads it) made the two a `\r\n`
    /// terminator, so appending a profile changed another profile's value.
    #[test]
    fn a_last_line_ending_in_a_lone_cr_keeps_its_value() {
        let view = |t: &str| {
            ProfileFile::parse(t)
                .unwrap()
                .normalized(crate::profile_file::FileKind::Credentials)
        };
        for text in ["[other]\nk = v\r", "[dev]\nk = v\r", "[other]\r\nk = v\r"] {
            let new = apply(text, &[creds("dev", "AK1", None)]);
            assert!(new.starts_with(text), "{new:?}");
            let (before, after) = (view(text), view(&new));
            let name = if text.contains("other") {
                "other"
            } else {
                "dev"
            };
            assert_eq!(before.profiles[name]["k"], "v\r");
            assert_eq!(after.profiles[name]["k"], "v\r", "{new:?}");
            assert_eq!(after.profiles["dev"]["aws_access_key_id"], "AK1", "{new:?}");
        }
    }

    /// Input/expected table of the rewrite.
    #[test]
    fn rewrite_table() {
        let cases: &[(&str, &str, Vec<ProfileUpdate>, &str)] = &[
            (
                "empty file gets a new profile",
                "",
                vec![creds("dev", "AK1", Some("T1"))],
                "[dev]\naws_access_key_id = AK1\naws_secret_access_key = SECRET\naws_session_token = T1\n",
            ),
            (
                "values replaced in place, comments and user keys kept",
                "# top\n[dev]\nregion = eu-west-1 ; mine\naws_access_key_id=OLD\n; note\naws_secret_access_key = OLDS\naws_session_token = OLDT\n\n[other]\nx = 1\n",
                vec![creds("dev", "AK1", Some("T1"))],
                "# top\n[dev]\nregion = eu-west-1 ; mine\naws_access_key_id = AK1\n; note\naws_secret_access_key = SECRET\naws_session_token = T1\n\n[other]\nx = 1\n",
            ),
            (
                "missing keys inserted after the last property, before the blank line",
                "[dev]\nregion = us-east-1\n\n# next\n[b]\n",
                vec![creds("dev", "AK1", Some("T1"))],
                "[dev]\nregion = us-east-1\naws_access_key_id = AK1\naws_secret_access_key = SECRET\naws_session_token = T1\n\n# next\n[b]\n",
            ),
            (
                "CRLF kept and used for new lines",
                "[a]\r\nk = v\r\n",
                vec![creds("dev", "AK1", None)],
                "[a]\r\nk = v\r\n\r\n[dev]\r\naws_access_key_id = AK1\r\naws_secret_access_key = SECRET\r\n",
            ),
            (
                "no final newline",
                "[a]\nk = v",
                vec![creds("a", "AK1", None)],
                "[a]\nk = v\naws_access_key_id = AK1\naws_secret_access_key = SECRET\n",
            ),
            (
                "session token removed when the new credentials have none",
                "[a]\naws_access_key_id = X\naws_secret_access_key = Y\naws_session_token = Z\n  continued\naws_security_token = Z\n",
                vec![creds("a", "AK1", None)],
                "[a]\naws_access_key_id = AK1\naws_secret_access_key = SECRET\n",
            ),
            (
                "legacy aws_security_token kept in step",
                "[a]\naws_security_token = OLD\n",
                vec![creds("a", "AK1", Some("T"))],
                "[a]\naws_security_token = T\naws_access_key_id = AK1\naws_secret_access_key = SECRET\naws_session_token = T\n",
            ),
            (
                "duplicate managed key collapses to one, inline comment dropped",
                "[a]\nAWS_ACCESS_KEY_ID = X # old\naws_access_key_id = Y\n",
                vec![creds("a", "AK1", None)],
                "[a]\naws_access_key_id = AK1\naws_secret_access_key = SECRET\n",
            ),
            (
                "header with a comment is the same profile",
                "[a] # mine\n",
                vec![creds("a", "AK1", None)],
                "[a] # mine\naws_access_key_id = AK1\naws_secret_access_key = SECRET\n",
            ),
            (
                "[profile a] in a credentials file is not profile a",
                "[profile a]\nk = v\n",
                vec![creds("a", "AK1", None)],
                "[profile a]\nk = v\n\n[a]\naws_access_key_id = AK1\naws_secret_access_key = SECRET\n",
            ),
            (
                "file ending in a blank line gets no second one",
                "[a]\nk = v\n\n",
                vec![creds("b", "AK1", None)],
                "[a]\nk = v\n\n[b]\naws_access_key_id = AK1\naws_secret_access_key = SECRET\n",
            ),
        ];
        for (name, input, updates, expected) in cases {
            assert_eq!(&apply(input, updates), expected, "case: {name}");
        }
    }

    #[test]
    fn duplicate_managed_section_is_refused_with_lines() {
        let f = ProfileFile::parse("[a]\nk = v\n[b]\n[a]\n").unwrap();
        let err = rewrite(&f, &[creds("a", "AK", None)]).unwrap_err();
        assert_eq!(
            err,
            EditError::DuplicateSection {
                profile: "a".into(),
                lines: vec![1, 4]
            }
        );
    }

    #[test]
    fn a_header_with_whitespace_inside_its_brackets_is_refused_with_its_line() {
        for header in ["[ a ]", "[a ]", "[\ta]", "[ a ] # mine"] {
            let text = format!("[b]\nk = v\n\n{header}\nregion = x\n");
            let f = ProfileFile::parse(&text).unwrap();
            let err = rewrite(&f, &[creds("a", "AK", None)]).unwrap_err();
            assert_eq!(
                err,
                EditError::PaddedSection {
                    profile: "a".into(),
                    line: 4
                },
                "{header:?}"
            );
            assert!(err.to_string().contains("write the header as [a]"), "{err}");
            // The other profiles of the file are still written.
            assert!(rewrite(&f, &[creds("b", "AK", None)]).is_ok(), "{header:?}");
        }
    }

    #[test]
    fn unsafe_values_are_refused_without_echoing_them() {
        let f = ProfileFile::parse("").unwrap();
        for bad in [
            "",
            " QZXlead",
            "QZXa\nb",
            "QZX #y",
            "QZX ;y",
            "QZX\there",
            "#QZX",
            ";QZX",
        ] {
            let err = rewrite(&f, &[creds("a", bad, None)]).unwrap_err();
            assert!(matches!(err, EditError::UnwritableValue { .. }), "{bad:?}");
            assert!(!err.to_string().contains("QZX"));
        }
        assert!(rewrite(&f, &[creds("a", "x#y;z", None)]).is_ok());
    }

    #[test]
    fn invalid_profile_name_is_refused() {
        let f = ProfileFile::parse("").unwrap();
        assert!(matches!(
            rewrite(&f, &[creds("a b", "AK", None)]),
            Err(EditError::InvalidProfileName(_))
        ));
    }
}

/// Property tests: for any file that parses, after an edit the managed values read back,
/// every unmanaged section reads back identical, and the bytes outside managed sections are
/// unchanged.
#[cfg(test)]
mod props {
    use super::*;
    use crate::profile_file::{classify_section, credentials_profile_name};
    use crate::profile_file::{FileKind, Normalized, SectionName};
    use proptest::prelude::*;

    fn line() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            Just(" \t".to_string()),
            "[#;] ?[a-z =#;]{0,12}".prop_map(|s| s),
            prop::sample::select(vec![
                "a",
                "b",
                "dev",
                " a ",
                "profile dev",
                "new",
                "x y",
                "c"
            ])
            .prop_flat_map(|n| prop::sample::select(vec!["", " # c", ";c"])
                .prop_map(move |c| format!("[{n}]{c}"))),
            (
                prop::sample::select(vec![
                    "aws_access_key_id",
                    "AWS_Secret_Access_Key",
                    "aws_session_token",
                    "aws_security_token",
                    "region",
                    "x",
                    "aws_credential_expiration",
                ]),
                prop::sample::select(vec!["v", "v # c", "v;c", "", "a=b", "ünï"]),
                prop::sample::select(vec![" = ", "=", " \t= "]),
            )
                .prop_map(|(k, v, eq)| format!("{k}{eq}{v}")),
            "[ \t][a-z=]{1,8}".prop_map(|s| s),
        ]
    }

    fn file() -> impl Strategy<Value = String> {
        (
            prop::collection::vec(line(), 0..40),
            prop::sample::select(vec!["\n", "\r\n"]),
            any::<bool>(),
        )
            .prop_map(|(lines, eol, final_eol)| {
                let mut s = lines.join(eol);
                if final_eol && !s.is_empty() {
                    s.push_str(eol);
                }
                s
            })
    }

    fn update(name: &str, n: u32, token: bool) -> ProfileUpdate {
        super::super::credentials::update_for(
            name,
            &crate::credentials::Credentials {
                access_key_id: format!("AKIA{n}"),
                secret_access_key: crate::credentials::Secret::new(format!("s/{n}+=")),
                session_token: token.then(|| crate::credentials::Secret::new(format!("t{n}"))),
                expiration: None,
                account_id: None,
            },
        )
    }

    /// The text with the byte ranges of the sections named in `managed` cut out.
    fn outside(text: &str, managed: &[String]) -> String {
        let f = ProfileFile::parse(text).unwrap();
        let lines = f.lines();
        let mut keep = vec![true; lines.len()];
        for (h, e) in f.sections() {
            if let SectionName::Profile { name, .. } = f.section_name(h, FileKind::Credentials) {
                if managed.contains(&name) {
                    keep[h..e].iter_mut().for_each(|k| *k = false);
                }
            }
        }
        let mut out = String::new();
        for (i, l) in lines.iter().enumerate() {
            if keep[i] {
                out.push_str(&text[l.start..l.end]);
            }
        }
        out.trim_end_matches(['\r', '\n']).to_string()
    }

    fn view(text: &str) -> Normalized {
        ProfileFile::parse(text)
            .unwrap()
            .normalized(FileKind::Credentials)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn fast_section_names_agree_with_the_classifier(raw in "[ \t]{0,2}(profile)?[ \ta-z!/@]{0,6}") {
            let slow = match classify_section(&raw, FileKind::Credentials) {
                SectionName::Profile { name, .. } => Some(name),
                _ => None,
            };
            prop_assert_eq!(credentials_profile_name(&raw).map(str::to_string), slow);
        }

        #[test]
        fn edits_keep_everything_else(
            text in file(),
            targets in prop::sample::subsequence(vec!["a", "b", "dev", "new"], 0..=4),
            n in 0u32..1000,
            token in any::<bool>(),
        ) {
            let Ok(parsed) = ProfileFile::parse(&text) else { return Ok(()); };
            let updates: Vec<ProfileUpdate> =
                targets.iter().map(|t| update(t, n, token)).collect();
            let new = match rewrite(&parsed, &updates) {
                Ok(new) => new,
                Err(EditError::DuplicateSection { .. } | EditError::PaddedSection { .. }) => {
                    return Ok(())
                }
                Err(e) => panic!("unexpected {e}"),
            };
            let before = view(&text);
            let after = view(&new);
            let managed: Vec<String> = targets.iter().map(|t| t.to_string()).collect();
            for name in &managed {
                let p = &after.profiles[name];
                prop_assert_eq!(&p["aws_access_key_id"], &format!("AKIA{n}"));
                prop_assert_eq!(&p["aws_secret_access_key"], &format!("s/{n}+="));
                prop_assert_eq!(p.get("aws_session_token").cloned(), token.then(|| format!("t{n}")));
                if !token {
                    prop_assert!(!p.contains_key("aws_security_token"));
                }
                prop_assert!(!p.contains_key("aws_credential_expiration"));
                // The user's own keys in a managed profile are kept.
                if let Some(old) = before.profiles.get(name) {
                    for (k, v) in old {
                        if !["aws_access_key_id", "aws_secret_access_key", "aws_session_token",
                             "aws_security_token", "aws_credential_expiration"].contains(&k.as_str()) {
                            prop_assert_eq!(p.get(k), Some(v));
                        }
                    }
                }
            }
            for (name, props) in &before.profiles {
                if !managed.contains(name) {
                    prop_assert_eq!(after.profiles.get(name), Some(props));
                }
            }
            prop_assert_eq!(outside(&text, &managed), outside(&new, &managed));
            // Comments are never dropped.
            let comments = |t: &str| -> Vec<String> {
                let f = ProfileFile::parse(t).unwrap();
                let mut c: Vec<String> = f.lines().iter()
                    .filter(|l| l.kind == crate::profile_file::LineKind::Comment)
                    .map(|l| t[l.start..l.content_end].to_string()).collect();
                c.sort();
                c
            };
            prop_assert_eq!(comments(&text), comments(&new));
            // Editing again with the same values changes nothing.
            let again = rewrite(&ProfileFile::parse(&new).unwrap(), &updates).unwrap();
            prop_assert_eq!(&again, &new);
            // The store's parse, keeping only the sections written, gives the same text.
            let keep = |raw: &str| {
                super::super::credentials_profile_name(raw).is_some_and(|n| targets.contains(&n))
            };
            let sparse = ProfileFile::parse_sections(&text, &keep).unwrap();
            prop_assert!(sparse.lines().len() <= parsed.lines().len());
            prop_assert_eq!(sparse.preferred_terminator(), parsed.preferred_terminator());
            let mut out = String::new();
            let changed = rewrite_into(&sparse, &updates, &mut out).unwrap();
            prop_assert_eq!(&out, &new);
            prop_assert_eq!(changed, new != text, "whether the text changed");
            // As pieces (what the store writes), the same bytes.
            let mut pieces = Pieces::default();
            prop_assert_eq!(rewrite_into(&sparse, &updates, &mut pieces).unwrap(), changed);
            prop_assert_eq!(pieces.concat(), new.clone());
            let again = ProfileFile::parse(&new).unwrap();
            prop_assert!(!rewrite_into(&again, &updates, &mut out).unwrap(), "a second edit changes nothing");
        }

        #[test]
        fn sections_only_parse_fails_where_the_full_parse_fails(text in file()) {
            let full = ProfileFile::parse(&text).map(|_| ()).map_err(|e| e.to_string());
            let sparse = ProfileFile::parse_sections(&text, &|_| false)
                .map(|_| ())
                .map_err(|e| e.to_string());
            prop_assert_eq!(full, sparse);
        }
    }
}
