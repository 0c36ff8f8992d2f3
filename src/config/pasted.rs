//! What a TOML parser reads wrongly, or not at all, in a config pasted from `~/.aws/config`:
//! `[profile dev]`, `[sso-session corp]`, `[default]`, unquoted values (`output = json`),
//! sub-properties (`s3 =` and indented lines), and profile names that need quoting
//! (`[profile.prod.admin]` is a table `admin` inside a profile `prod`, which serde reports as
//! `invalid type: string "admin", expected a borrowed string`).
//!
//! Found line by line before the TOML parse, each with the fix and with the command that
//! converts a whole `~/.aws/config`; the entries found are blanked out of the text that is
//! then parsed (see [`super::unknown`]), so the rest of the file is still checked.

use super::{toml_key, Diagnostic, Severity};
use std::ops::Range;

const INIT: &str = "`awscredd init --from-aws-config` converts a whole ~/.aws/config";

/// Every pasted construct of `text`: its error, and the byte range to blank out (the line or
/// the table, line breaks kept by the caller).
pub(super) fn find(text: &str) -> Vec<(Diagnostic, Range<usize>)> {
    let mut out = Vec::new();
    let lines = lines(text);
    let mut in_multiline: Option<&str> = None;
    let mut i = 0;
    while i < lines.len() {
        let (start, line) = lines[i];
        i += 1;
        if line.trim().is_empty() {
            continue; // nothing to find, in a string or not
        }
        if inside_multiline(line, &mut in_multiline) {
            continue;
        }
        let trimmed = line.trim_start();
        let at = start + line.len() - trimmed.len();
        if trimmed.starts_with('[') && !trimmed.starts_with("[[") {
            if let Some((message, name)) = header_problem(trimmed) {
                // The table: its header and every line up to the next header (whose lines
                // are still looked at, for what else was pasted).
                let end = lines[i..]
                    .iter()
                    .take_while(|(_, l)| !l.trim_start().starts_with('['))
                    .last()
                    .map_or(start + line.len(), |&(s, l)| s + l.len());
                let name = at + name.start..at + name.end;
                out.push((error(name, message), start..end));
            }
        } else if let Some((key, value, value_at)) = bare_key_value(trimmed) {
            if value.is_empty() {
                // `s3 =` and its indented sub-properties.
                let mut end = start + line.len();
                while let Some(&(s, l)) = lines.get(i) {
                    if l.trim().is_empty() || !l.starts_with([' ', '\t']) {
                        break;
                    }
                    end = s + l.len();
                    i += 1;
                }
                out.push((error(at..at + key.len(), no_value(key)), start..end));
            } else if is_bare_word(value) {
                let (span, message) = unquoted(key, value, at + value_at);
                out.push((error(span, message), at..start + line.len()));
            }
        }
    }
    // Once is enough for the command that does it all; a name to quote is no paste.
    let quoting = |d: &Diagnostic| d.message.contains("is quoted: write it as");
    if let Some((d, _)) = out.iter_mut().find(|(d, _)| !quoting(d)) {
        d.message.push_str("; ");
        d.message.push_str(INIT);
    }
    out
}

/// Whether `line` is the text of a multi-line string (`in_multiline` is the open quote, kept
/// up to date): such lines are not TOML.
fn inside_multiline(line: &str, in_multiline: &mut Option<&str>) -> bool {
    if let Some(q) = *in_multiline {
        if line.matches(q).count() % 2 == 1 {
            *in_multiline = None;
        }
        return true;
    }
    for q in ["\"\"\"", "'''"] {
        if line.matches(q).count() % 2 == 1 {
            *in_multiline = Some(q);
        }
    }
    false
}

/// The message for `key =` with no value (a sub-property block).
fn no_value(key: &str) -> String {
    format!(
        "`{key} =` with no value (and indented `name = value` lines under it) is ~/.aws/config \
         syntax for a setting programs read there, not one awscredd uses: leave it in \
         ~/.aws/config"
    )
}

/// The span (from `value_at`, the value's offset in the text) and message for an unquoted
/// value.
fn unquoted(key: &str, value: &str, value_at: usize) -> (Range<usize>, String) {
    let word = value
        .split([' ', '\t'])
        .next()
        .unwrap_or(value)
        .trim_end_matches([';', '#']);
    let fix = if key == "output" || key.starts_with("cli_") {
        format!(
            "`{key}` is a setting of the AWS CLI, not one awscredd uses: leave it in ~/.aws/config"
        )
    } else {
        format!(
            "a TOML string is quoted: write {key} = {}",
            super::toml_string(word)
        )
    };
    (
        value_at..value_at + word.len(),
        format!("`{key} = {word}`: the value is not quoted (~/.aws/config syntax); {fix}"),
    )
}

fn error(span: Range<usize>, message: String) -> Diagnostic {
    Diagnostic {
        severity: Severity::Error,
        span: Some(span),
        message,
    }
}

/// Each line with its byte offset, without its line break (`\r\n` or `\n`).
fn lines(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut pos = 0;
    for l in text.split_inclusive('\n') {
        out.push((pos, l.trim_end_matches(['\n', '\r'])));
        pos += l.len();
    }
    out
}

/// What is wrong with a table header line (starting with `[`), and where in the line its name
/// is, if it is `~/.aws/config` syntax or a name that needs quoting.
fn header_problem(line: &str) -> Option<(String, Range<usize>)> {
    let close = line.find(']')?;
    let inner = &line[1..close];
    let name_at = |name: &str| {
        let at = 1 + inner.find(name).unwrap_or(0);
        at..at + name.len()
    };
    let trimmed = inner.trim();
    // `[profile dev]`, `[sso-session corp]`, `[services x]`: a prefix, a space, a name.
    let dotted = ["profile", "sso_session"].iter().any(|t| {
        trimmed
            .strip_prefix(t)
            .is_some_and(|r| r.trim_start().starts_with('.'))
    });
    if let Some((prefix, name)) = trimmed.split_once([' ', '\t']).filter(|_| !dotted) {
        let name = name.trim();
        return spaced_header(trimmed, prefix, name).map(|m| (m, name_at(name)));
    }
    if trimmed == "default" {
        return Some((
            "[default] is ~/.aws/config syntax for the profile named `default`: write \
             [profile.default]"
                .to_string(),
            name_at(trimmed),
        ));
    }
    ["profile", "sso_session"].into_iter().find_map(|table| {
        let rest = trimmed
            .strip_prefix(table)?
            .trim_start()
            .strip_prefix('.')?
            .trim();
        Some(dotted_name(table, rest).map(|m| (m, name_at(rest))))
    })?
}

/// The message for `[PREFIX NAME]` (the whole header text `header`), if it is `~/.aws/config`
/// syntax.
fn spaced_header(header: &str, prefix: &str, name: &str) -> Option<String> {
    let ours = match prefix {
        "profile" => format!("[profile.{}]", toml_key(name)),
        "sso-session" => format!("[sso_session.{}]", toml_key(name)),
        "services" => {
            return Some(format!(
                "[services {name}] (per-service settings of ~/.aws/config) is not an awscredd \
                 table: leave it in ~/.aws/config"
            ))
        }
        _ => return None,
    };
    Some(format!(
        "`[{header}]`: this is ~/.aws/config syntax: write {ours}"
    ))
}

/// The message for `[TABLE.REST]` whose name `rest` needs quoting, if it does.
fn dotted_name(table: &str, rest: &str) -> Option<String> {
    let what = if table == "profile" {
        "a profile"
    } else {
        "an sso_session"
    };
    match key_parts(rest) {
        Some(parts) if parts.len() == 1 => None,
        Some(parts) => Some(format!(
            "[{table}.{rest}] is {what} `{}` with a table `{}` in it: {what} name with a dot is \
             quoted: write it as [{table}.{}]",
            parts[0],
            parts[1..].join("."),
            toml_key(&parts.join("."))
        )),
        None => Some(format!(
            "[{table}.{rest}]: {what} name with characters other than letters, digits, `-` and \
             `_` is quoted: write it as [{table}.{}]",
            toml_key(rest)
        )),
    }
}

/// The parts of a dotted TOML key (`a.b`, `"a.b"`, `'x'.y`), unquoted; `None` if it is not
/// one (a character a bare key cannot hold, an unclosed quote).
fn key_parts(s: &str) -> Option<Vec<String>> {
    let mut parts = Vec::new();
    let mut rest = s.trim();
    loop {
        let (part, after) = if let Some(r) = rest.strip_prefix('"') {
            let end = r.find('"')?;
            if r[..end].contains('\\') {
                return None; // escapes: leave it to the TOML parser
            }
            (r[..end].to_string(), &r[end + 1..])
        } else if let Some(r) = rest.strip_prefix('\'') {
            let end = r.find('\'')?;
            (r[..end].to_string(), &r[end + 1..])
        } else {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
                .unwrap_or(rest.len());
            if end == 0 {
                return None;
            }
            (rest[..end].to_string(), &rest[end..])
        };
        parts.push(part);
        let after = after.trim_start();
        if after.is_empty() {
            return Some(parts);
        }
        rest = after.strip_prefix('.')?.trim_start();
    }
}

/// `key = value` with a bare key (a line of `~/.aws/config` looks like this): the key, the
/// value (trimmed), and where the value starts in the line.
fn bare_key_value(line: &str) -> Option<(&str, &str, usize)> {
    let eq = line.find('=')?;
    let key = line[..eq].trim();
    if key.is_empty()
        || !key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return None;
    }
    let after = &line[eq + 1..];
    let value = after.trim();
    let value_at = eq + 1 + (after.len() - after.trim_start().len());
    Some((key, value, value_at))
}

/// Whether a value is an unquoted word, which no TOML value is: not a string, array, inline
/// table, number, boolean, date, `inf` or `nan`.
fn is_bare_word(value: &str) -> bool {
    let Some(first) = value.chars().next() else {
        return false;
    };
    if "\"'[{+-#".contains(first) || first.is_ascii_digit() {
        return false;
    }
    let word: String = value
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    let rest = &value[word.len()..];
    let ends = rest.is_empty() || rest.starts_with([' ', '\t', '#', ',', ']', '}']);
    !(ends && ["true", "false", "inf", "nan"].contains(&word.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> (String, String) {
        let found = find(text);
        assert_eq!(found.len(), 1, "{text:?}: {found:#?}");
        let (d, blank) = &found[0];
        let span = d.span.clone().unwrap();
        (
            format!("{}|{}", &text[span], d.message),
            text[blank.clone()].to_string(),
        )
    }

    #[test]
    fn dotted_and_odd_profile_names_say_how_to_quote_them() {
        let (m, blank) = one("[profile.prod.admin]\ncredential_process = \"x\"\n[profile.b]\n");
        assert!(
            m.starts_with(
                "prod.admin|[profile.prod.admin] is a profile `prod` with a table `admin` in it"
            ),
            "{m}"
        );
        assert!(m.ends_with("write it as [profile.\"prod.admin\"]"), "{m}");
        assert_eq!(blank, "[profile.prod.admin]\ncredential_process = \"x\"");
        let (m, _) = one("[profile.dev@corp]\n");
        assert!(m.ends_with("write it as [profile.\"dev@corp\"]"), "{m}");
        let (m, _) = one("[sso_session.a.b]\n");
        assert!(m.contains("write it as [sso_session.\"a.b\"]"), "{m}");
        for fine in [
            "[profile.\"prod.admin\"]\n",
            "[profile.'a.b']\n",
            "[profile.dev]\n",
            "[profile . dev]\n",
            "[[output]]\n",
            "[daemon]\n",
        ] {
            assert!(find(fine).is_empty(), "{fine}");
        }
    }

    #[test]
    fn aws_config_syntax_names_the_toml_and_init() {
        let (m, _) = one("[profile dev]\nregion = \"us-east-1\"\n");
        assert!(m.starts_with("dev|`[profile dev]`: this is ~/.aws/config syntax: write [profile.dev]; `awscredd init --from-aws-config`"), "{m}");
        let (m, _) = one("[profile prod.admin]\n");
        assert!(m.contains("write [profile.\"prod.admin\"]"), "{m}");
        let (m, _) = one("[sso-session corp]\n");
        assert!(m.contains("write [sso_session.corp]"), "{m}");
        let (m, _) = one("[default]\n");
        assert!(m.contains("write [profile.default]"), "{m}");
        let (m, blank) = one("[profile.a]\noutput = json\n");
        assert!(
            m.starts_with("json|`output = json`: the value is not quoted"),
            "{m}"
        );
        assert!(
            m.contains("a setting of the AWS CLI") && m.contains("awscredd init --from-aws-config"),
            "{m}"
        );
        assert_eq!(blank, "output = json");
        let (m, _) = one("[profile.a]\r\nregion = us-east-1 # home\r\n");
        assert!(
            m.starts_with("us-east-1|") && m.contains("write region = \"us-east-1\""),
            "{m}"
        );
        let (m, blank) =
            one("[profile.a]\ns3 =\n  max_concurrent_requests = 10\n\tx = 1\nregion = \"x\"\n");
        assert!(m.starts_with("s3|`s3 =` with no value"), "{m}");
        assert_eq!(blank, "s3 =\n  max_concurrent_requests = 10\n\tx = 1");
        for fine in [
            "a = true\n",
            "a = false # c\n",
            "a = 12\n",
            "a = [\"x\",\n  \"y\"]\n",
            "a = { b = 1 }\n",
            "a = \"\"\"\n[profile dev]\nb = c\n\"\"\"\n",
            "a = -1\n",
        ] {
            assert!(find(fine).is_empty(), "{fine}: {:#?}", find(fine));
        }
    }
}
