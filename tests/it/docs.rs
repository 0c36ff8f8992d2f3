//! The documentation against the tree: in README.md and docs/*.md every relative link points at
//! a file that exists (and at a heading that exists, for `#anchors`), every repository path
//! named in code exists, and every `awscredd SUBCOMMAND` in code is one the binary has. The
//! README stays short and keeps its two set-up commands; each docs file has contents that list
//! its sections; the config file's man page and docs/configuration.md name every key of the
//! schema, and the man page renders without a groff warning.

use crate::util::bin;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Named in the docs, but added by other branches of the same issue (`awscredd init` and
/// docs/init.md; docs/windows.md and packaging/windows/msi.sh). Tolerated while missing; once
/// one exists, the test fails until it is removed from this list, so the list never hides a
/// file that went missing later.
const PENDING_ELSEWHERE: &[&str] = &[];

/// Subcommands only the Windows build has (`#[cfg(windows)]` in src/cli.rs).
const WINDOWS_ONLY: &[&str] = &["service"];

/// The two set-up commands the README opens with; `.ci/run` runs the second.
const DEMO_COMMAND: &str = "cargo run --example demo                                            # build, then sign in and refresh against the bundled fake AWS";
const TEST_COMMAND: &str = "python3 -m venv target/venv && target/venv/bin/pip install -q -r tests/requirements.txt && cargo test   # the whole test suite";

/// Top-level entries a repository path in the docs starts with.
const REPO_DIRS: &[&str] = &[
    "src/",
    "tests/",
    "packaging/",
    "systemd/",
    "config/",
    "examples/",
    "bench/",
    "docs/",
    ".ci/",
    ".github/",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// README.md and every docs/*.md, as (path relative to the root, text).
fn documents() -> Vec<(PathBuf, String)> {
    let mut files = vec![PathBuf::from("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .expect("docs/ exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .map(|p| p.strip_prefix(root()).unwrap().to_path_buf())
        .collect();
    docs.sort();
    assert!(docs.len() >= 8, "docs/ has only {docs:?}");
    files.extend(docs);
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(root().join(&p)).unwrap();
            (p, text)
        })
        .collect()
}

/// A Markdown file split into prose (outside fenced blocks, one string per run of lines) and
/// code (the lines of fenced blocks); `commands` are the lines of the blocks that hold command
/// lines (no language, or a shell's), not file contents (`text`, `toml`, `json`, ...).
struct Parsed {
    prose: Vec<String>,
    code: Vec<String>,
    commands: Vec<String>,
    headings: Vec<(usize, String)>,
}

fn parse(text: &str) -> Parsed {
    let (mut prose, mut code, mut commands, mut headings) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut in_fence = false;
    let mut shell = false;
    let mut run = String::new();
    for line in text.lines() {
        if let Some(info) = line.trim_start().strip_prefix("```") {
            in_fence = !in_fence;
            if in_fence {
                shell = ["", "sh", "bash", "console", "shell"].contains(&info.trim());
                prose.push(std::mem::take(&mut run));
            }
            continue;
        }
        if in_fence {
            code.push(line.to_string());
            if shell {
                commands.push(line.to_string());
            }
            continue;
        }
        let level = line.chars().take_while(|&c| c == '#').count();
        if level > 0 && line[level..].starts_with(' ') {
            headings.push((level, line[level + 1..].trim().to_string()));
        }
        run.push_str(line);
        run.push('\n');
    }
    assert!(!in_fence, "a fenced code block is not closed");
    prose.push(run);
    Parsed {
        prose,
        code,
        commands,
        headings,
    }
}

/// GitHub's anchor for a heading: lowercase, punctuation dropped, spaces to hyphens.
fn slug(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a file's headings, with GitHub's `-1`, `-2` for repeated ones.
fn anchors(parsed: &Parsed) -> BTreeSet<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = BTreeSet::new();
    for (_, h) in &parsed.headings {
        let s = slug(h);
        let n = seen.entry(s.clone()).or_insert(0);
        out.insert(if *n == 0 {
            s.clone()
        } else {
            format!("{s}-{n}")
        });
        *n += 1;
    }
    out
}

/// The inline code spans of prose (a span may wrap onto the next line).
fn code_spans(prose: &str) -> Vec<String> {
    let mut spans = Vec::new();
    let mut rest = prose;
    while let Some(start) = rest.find('`') {
        let ticks = rest[start..].chars().take_while(|&c| c == '`').count();
        let fence = "`".repeat(ticks);
        let after = &rest[start + ticks..];
        match after.find(&fence) {
            Some(end) => {
                spans.push(after[..end].replace('\n', " ").trim().to_string());
                rest = &after[end + ticks..];
            }
            None => break,
        }
    }
    spans
}

/// Markdown link targets `[text](target)` in prose.
fn link_targets(prose: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = prose;
    while let Some(i) = rest.find("](") {
        let after = &rest[i + 2..];
        if let Some(end) = after.find(')') {
            let target = &after[..end];
            if !target.contains(char::is_whitespace) {
                out.push(target.to_string());
            }
            rest = &after[end..];
        } else {
            break;
        }
    }
    out
}

fn pending(name: &str) -> bool {
    PENDING_ELSEWHERE.contains(&name)
}

#[test]
fn pending_entries_are_still_missing() {
    for p in PENDING_ELSEWHERE {
        if p.contains('/') {
            assert!(
                !root().join(p).exists(),
                "{p} now exists: remove it from PENDING_ELSEWHERE in tests/it/docs.rs"
            );
        } else {
            assert!(
                !subcommands().contains(*p),
                "`awscredd {p}` now exists: remove it from PENDING_ELSEWHERE in tests/it/docs.rs"
            );
        }
    }
}

#[test]
fn every_relative_link_and_anchor_exists() {
    let docs = documents();
    let parsed: HashMap<PathBuf, Parsed> =
        docs.iter().map(|(p, t)| (p.clone(), parse(t))).collect();
    let mut problems = Vec::new();
    let mut checked = 0;
    for (file, _) in &docs {
        let dir = file.parent().unwrap_or(Path::new(""));
        for prose in &parsed[file].prose {
            for target in link_targets(prose) {
                if target.starts_with("http://")
                    || target.starts_with("https://")
                    || target.starts_with("mailto:")
                {
                    continue;
                }
                checked += 1;
                let (path, anchor) = match target.split_once('#') {
                    Some((p, a)) => (p, Some(a)),
                    None => (target.as_str(), None),
                };
                let resolved = if path.is_empty() {
                    file.clone()
                } else {
                    normalize(&dir.join(path))
                };
                let name = resolved.to_string_lossy().replace('\\', "/");
                if !root().join(&resolved).exists() {
                    if !pending(name.trim_end_matches('/')) {
                        problems.push(format!("{}: link to a missing {name}", file.display()));
                    }
                    continue;
                }
                if let Some(anchor) = anchor {
                    let target_parsed = match parsed.get(&resolved) {
                        Some(p) => p,
                        None => {
                            problems.push(format!(
                                "{}: #{anchor} in {name}, which is not a checked document",
                                file.display()
                            ));
                            continue;
                        }
                    };
                    if !anchors(target_parsed).contains(anchor) {
                        problems.push(format!(
                            "{}: no heading for #{anchor} in {name}",
                            file.display()
                        ));
                    }
                }
            }
        }
    }
    assert!(
        checked > 100,
        "only {checked} links found: is the parser broken?"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// `a/b/../c` -> `a/c` (without touching the file system).
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The code of a document: the lines of its fenced blocks (all of them, or only those of
/// command blocks) and its inline spans.
fn code_lines(parsed: &Parsed, commands_only: bool) -> Vec<String> {
    let mut lines: Vec<String> = if commands_only {
        parsed.commands.clone()
    } else {
        parsed.code.clone()
    };
    for prose in &parsed.prose {
        lines.extend(code_spans(prose));
    }
    lines
}

#[test]
fn every_repository_path_named_in_code_exists() {
    let mut problems = Vec::new();
    let mut checked = BTreeSet::new();
    for (file, text) in documents() {
        for line in code_lines(&parse(&text), false) {
            for word in line.split_whitespace() {
                let w = word
                    .trim_start_matches(['(', '"', '\'', '[', '`', '<'])
                    .trim_end_matches([')', '"', '\'', ']', '`', ',', ';', ':', '.', '>']);
                if !REPO_DIRS.iter().any(|d| w.starts_with(d))
                    || w.contains(['*', '$', '<', '{', '='])
                    || w.contains("NAME")
                    || w.contains("VERSION")
                    || w.contains("SUBCOMMAND")
                    || w.contains("...")
                {
                    continue;
                }
                checked.insert(w.to_string());
                if !root().join(w).exists() && !pending(w) {
                    problems.push(format!("{}: `{w}` does not exist", file.display()));
                }
            }
        }
    }
    assert!(
        checked.len() > 40,
        "only {} paths found: is the parser broken? {checked:?}",
        checked.len()
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The subcommands `awscredd --help` lists.
fn subcommands() -> BTreeSet<String> {
    let o = Command::new(bin()).arg("--help").output().unwrap();
    assert!(o.status.success());
    let help = String::from_utf8(o.stdout).unwrap();
    let mut out = BTreeSet::new();
    let mut on = false;
    for line in help.lines() {
        if line.starts_with("Commands:") {
            on = true;
            continue;
        }
        if on {
            if line.trim().is_empty() {
                break;
            }
            if let Some(w) = line.split_whitespace().next() {
                out.insert(w.to_string());
            }
        }
    }
    assert!(out.contains("run") && out.contains("once"), "{help}");
    out
}

/// The subcommand of each `awscredd ...` command line in `line` (None: no subcommand named).
fn named_subcommands(line: &str) -> Vec<String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let mut out = Vec::new();
    for (i, w) in words.iter().enumerate() {
        let prev = if i > 0 { words[i - 1] } else { "" };
        // A path to the binary runs it only as the first word of a command (`/usr/bin/awscredd
        // run`, `ExecStart=/usr/bin/awscredd`), not as an argument (`install ... x/awscredd`).
        let path_run = w.ends_with("/awscredd")
            && (i == 0 || w.contains('=') || ["sudo", "&&", ";", "|", "exec"].contains(&prev));
        let is_awscredd = *w == "awscredd" || *w == "awscredd.exe" || path_run;
        // `-u awscredd`, `--name awscredd`, `-c awscredd`: a user, container or service name;
        // so is the service name after an `sc` action (`sc failure awscredd reset= ...`).
        let sc_action = i >= 2 && words[i - 2].eq_ignore_ascii_case("sc");
        if !is_awscredd || prev.starts_with('-') || sc_action {
            continue;
        }
        let mut j = i + 1;
        while j < words.len() {
            let t = words[j];
            if ["|", "||", "&&", ";", "#", "&", "\\", ">", "2>&1"].contains(&t) {
                break;
            }
            if t.starts_with('-') {
                if ["--config", "--log-format", "--log-level"].contains(&t) {
                    j += 1;
                }
                j += 1;
                continue;
            }
            if t.starts_with('[') {
                j += 1;
                continue;
            }
            out.push(
                t.trim_end_matches([')', ',', '.', '`', ';', ':'])
                    .to_string(),
            );
            break;
        }
    }
    out
}

#[test]
fn every_awscredd_subcommand_in_the_docs_exists() {
    let known = subcommands();
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for (file, text) in documents() {
        for line in code_lines(&parse(&text), true) {
            for sub in named_subcommands(&line) {
                seen.insert(sub.clone());
                if !known.contains(&sub) && !WINDOWS_ONLY.contains(&sub.as_str()) && !pending(&sub)
                {
                    problems.push(format!(
                        "{}: `awscredd {sub}` is not a subcommand (awscredd --help lists {known:?}): {line}",
                        file.display()
                    ));
                }
            }
        }
    }
    for must in [
        "run",
        "once",
        "login",
        "status",
        "check",
        "credential-process",
    ] {
        assert!(seen.contains(must), "the docs never show `awscredd {must}`");
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn subcommand_parser_reads_command_lines_as_a_user_would() {
    let cases: &[(&str, &[&str])] = &[
        (
            "sc failure awscredd reset= 86400 actions= restart/10000",
            &[],
        ),
        ("sc start awscredd", &[]),
        (
            "sudo -u awscredd -H awscredd --config /etc/x.toml login",
            &[],
        ),
        ("sudo awscredd check --config /etc/x.toml", &["check"]),
        (
            "awscredd --log-level info credential-process --profile NAME",
            &["credential-process"],
        ),
        ("journalctl -u awscredd -f", &[]),
        ("ExecStart=/usr/bin/awscredd --config x run", &["run"]),
        ("podman run --name awscredd --read-only img", &[]),
        ("awscredd once [--profile NAME]... [--force]", &["once"]),
        ("systemctl reload awscredd # after each edit", &[]),
        ("awscredd frobnicate", &["frobnicate"]),
        ("sudo install -m 0755 x/awscredd /usr/local/bin/", &[]),
        ("sudo /usr/bin/awscredd status", &["status"]),
    ];
    for (line, want) in cases {
        assert_eq!(&named_subcommands(line), want, "{line}");
    }
}

#[test]
fn the_readme_is_short_and_keeps_its_two_set_up_commands() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let lines = readme.lines().count();
    assert!(
        lines < 300,
        "README.md has {lines} lines: move reference to docs/"
    );
    let code = parse(&readme).code;
    assert_eq!(
        code.iter().take(2).map(String::as_str).collect::<Vec<_>>(),
        [DEMO_COMMAND, TEST_COMMAND],
        "the README's first code block must be the demo and the test command, as they were"
    );
    let ci = std::fs::read_to_string(root().join(".ci/run")).unwrap();
    let command = TEST_COMMAND.split("   #").next().unwrap_or_default();
    assert!(
        ci.contains(command),
        ".ci/run no longer runs the README's test command"
    );
    assert!(
        ci.contains("cargo install") && readme.contains("cargo install --locked --path ."),
        "the README's install command and CI's run of it"
    );
    assert!(
        readme.contains("## Layout"),
        "the README keeps its layout of the source tree"
    );
}

#[test]
fn each_docs_file_lists_its_sections_in_its_contents() {
    let mut problems = Vec::new();
    for (file, text) in documents() {
        if file == Path::new("README.md") {
            continue;
        }
        let parsed = parse(&text);
        let Some(contents) = parsed
            .prose
            .iter()
            .find_map(|p| p.split_once("## Contents\n").map(|(_, after)| after))
        else {
            problems.push(format!("{}: no ## Contents", file.display()));
            continue;
        };
        let contents = contents.split("\n## ").next().unwrap_or_default();
        let listed: BTreeSet<String> = link_targets(contents)
            .into_iter()
            .filter_map(|t| t.strip_prefix('#').map(str::to_string))
            .collect();
        for (level, h) in &parsed.headings {
            if *level == 2 && h != "Contents" && !listed.contains(&slug(h)) {
                problems.push(format!(
                    "{}: `## {h}` is not in its contents",
                    file.display()
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The keys of the config schema: every `pub NAME:` field of src/config/raw.rs.
fn schema_keys() -> BTreeSet<String> {
    let raw = std::fs::read_to_string(root().join("src/config/raw.rs")).unwrap();
    let keys: BTreeSet<String> = raw
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub "))
        .filter_map(|l| l.split_once(':').map(|(k, _)| k.trim().to_string()))
        .filter(|k| k.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        .collect();
    assert!(
        keys.contains("refresh_before") && keys.contains("credential_process"),
        "{keys:?}"
    );
    keys
}

#[test]
fn the_config_man_page_and_configuration_md_name_every_key() {
    let page = std::fs::read_to_string(root().join("docs/awscredd.toml.5"))
        .unwrap()
        .replace("\\-", "-");
    let md = std::fs::read_to_string(root().join("docs/configuration.md")).unwrap();
    let mut missing = Vec::new();
    for key in schema_keys() {
        if !page.contains(&key) {
            missing.push(format!("docs/awscredd.toml.5 does not name `{key}`"));
        }
        if !md.contains(&key) {
            missing.push(format!("docs/configuration.md does not name `{key}`"));
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

#[test]
fn the_config_man_page_renders_without_a_groff_warning() {
    let o = Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-z"])
        .arg(root().join("docs/awscredd.toml.5"))
        .output();
    let o = match o {
        Ok(o) => o,
        Err(e) => panic!("groff is needed to check the man page (apt-get install groff-base): {e}"),
    };
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        o.stderr.is_empty(),
        "groff warns: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    // And it says something: the page renders to its sections.
    let text = Command::new("groff")
        .args(["-man", "-Tutf8", "-P-cbou"])
        .arg(root().join("docs/awscredd.toml.5"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    for section in [
        "NAME",
        "DESCRIPTION",
        "[daemon]",
        "[[output]]",
        "[profile.NAME]",
    ] {
        assert!(text.contains(section), "no {section} in the rendered page");
    }
}
