//! The credentials-file parser and editor, differentially: the sections-only parse (the
//! store's write path) fails exactly where the full parse fails; a write keeps every byte
//! outside the managed sections and every key a user added inside them, leaves the other
//! profiles as they were, parses again to the credentials written, and a second write changes
//! nothing.
#![no_main]

use awscredd::formats::{Codec, CodecError};
use awscredd::profile_file::edit::Pieces;
use awscredd::profile_file::{FileKind, ProfileFile, SectionName};
use awscredd_fuzz::{credentials, pick};
use libfuzzer_sys::fuzz_target;

const NAMES: [&str; 4] = ["default", "dev", "p", "new"];
const MANAGED_KEYS: [&str; 5] = [
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "aws_security_token",
    "aws_credential_expiration",
];

/// The text with the lines of the sections of `managed` cut out.
fn outside(text: &str, managed: &[String]) -> String {
    let f = ProfileFile::parse(text).expect("checked before");
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

fuzz_target!(|data: &[u8]| {
    let Ok(text) = ProfileFile::check_bytes(data) else {
        return;
    };
    let full = ProfileFile::parse(text);
    let sparse = ProfileFile::parse_sections(text, &|_| false);
    assert_eq!(
        full.as_ref().map(|_| ()).map_err(|e| e.to_string()),
        sparse.map(|_| ()).map_err(|e| e.to_string()),
        "the sections-only parse disagrees with the full parse"
    );
    let Ok(before) = full else { return };
    let before_view = before.normalized(FileKind::Credentials);

    let seed = pick(data);
    let profiles: Vec<(String, _)> = NAMES
        .iter()
        .enumerate()
        .filter(|(i, _)| seed >> (40 + i) & 1 == 1)
        .map(|(i, n)| (n.to_string(), credentials(seed.rotate_left(8 * i as u32))))
        .collect();
    let codec = awscredd::formats::Format::Ini;
    let codec: &dyn Codec = codec.codec();
    let mut out = Pieces::default();
    let mut refused = Vec::new();
    let changed = match codec.rewrite(Some(data), &profiles, None, &mut out, &mut refused) {
        Ok(changed) => changed,
        Err(CodecError::Edit(_)) => return,
        Err(e) => panic!("a file the parser accepts is refused: {e:?}"),
    };
    let new = out.concat();
    assert_eq!(changed, new != text, "whether the text changed");
    let written: Vec<&(String, _)> = profiles
        .iter()
        .filter(|(n, _)| !refused.iter().any(|(r, _)| r == n))
        .collect();
    let managed: Vec<String> = written.iter().map(|(n, _)| n.clone()).collect();

    let after = ProfileFile::parse(&new)
        .unwrap_or_else(|e| panic!("the result does not parse: {e}\n--- new\n{new:?}"));
    let after_view = after.normalized(FileKind::Credentials);
    let read = codec.read(new.as_bytes(), None).expect("parsed above");
    for (name, c) in &written {
        assert_eq!(
            read.get(name),
            Some(c),
            "profile {name} reads back differently\n{new:?}"
        );
        if let Some(old) = before_view.profiles.get(name) {
            for (k, v) in old {
                if !MANAGED_KEYS.contains(&k.as_str()) {
                    assert_eq!(
                        after_view.profiles[name].get(k),
                        Some(v),
                        "user key {k} lost"
                    );
                }
            }
        }
    }
    for (name, props) in &before_view.profiles {
        if !managed.contains(name) {
            assert_eq!(
                after_view.profiles.get(name),
                Some(props),
                "profile {name} changed\n--- old\n{text:?}\n--- new\n{new:?}"
            );
        }
    }
    assert_eq!(before_view.sso_sessions, after_view.sso_sessions);
    assert_eq!(
        outside(text, &managed),
        outside(&new, &managed),
        "bytes outside changed\n--- old\n{text:?}\n--- new\n{new:?}"
    );

    let mut again = Pieces::default();
    let written_again: Vec<(String, _)> = written.iter().map(|p| (*p).clone()).collect();
    let changed = codec
        .rewrite(
            Some(new.as_bytes()),
            &written_again,
            None,
            &mut again,
            &mut Vec::new(),
        )
        .unwrap_or_else(|e| panic!("a second write fails: {e:?}\n{new:?}"));
    assert!(!changed, "a second write changes the file\n{new:?}");
});
