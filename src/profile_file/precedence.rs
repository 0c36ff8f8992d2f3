//! Which profiles of `~/.aws/config` the AWS SDKs resolve before the static keys awscredd
//! writes into the credentials file, and the change to `~/.aws/config` that stops it.
//!
//! Inside one profile, the SDKs try `role_arn`, web identity, SSO, `login_session` and
//! `credential_process` before static keys (`protocols.md` §5.5), and the config file's keys
//! are merged with the credentials file's: a `[profile dev]` with `sso_session` in
//! `~/.aws/config` makes programs sign in themselves (or fail) and never read the fresh keys
//! of `[dev]` in `~/.aws/credentials`.

use super::{FileKind, ProfileFile, SectionName};

/// Keys of a `~/.aws/config` profile that the SDKs use before static keys.
pub const SHADOWING_KEYS: &[&str] = &[
    "role_arn",
    "source_profile",
    "credential_source",
    "web_identity_token_file",
    "sso_session",
    "sso_start_url",
    "sso_region",
    "sso_account_id",
    "sso_role_name",
    "login_session",
    "credential_process",
];

/// Keys that only matter beside one of [`SHADOWING_KEYS`]: removed with them, they do no harm
/// left alone, so the advice names only the others when the profile has them.
const ONLY_WITH_OTHERS: &[&str] = &["source_profile", "sso_region"];

/// A section of `~/.aws/config` whose keys shadow the credentials file's for a profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shadow {
    /// The profile.
    pub name: String,
    /// The section header as written (`[profile dev]`, `[default]`).
    pub header: String,
    /// 1-based line of the header.
    pub line: usize,
    /// The keys to remove, in the order they are written.
    pub keys: Vec<String>,
}

impl Shadow {
    /// The change that makes programs read awscredd's keys, for people: `file` names the
    /// config file as the user knows it (`~/.aws/config`).
    pub fn advice(&self, file: &str) -> String {
        format!(
            "in {file}, {} (line {}): remove {} (awscredd does their work now; keep region and \
             the other settings), or give awscredd's copy another name (e.g. [profile.{}]) and \
             point programs at that one",
            self.header,
            self.line,
            self.keys.join(", "),
            toml_key(&format!("{}-awscredd", self.name))
        )
    }
}

/// A profile name as a TOML key: bare, or quoted (a profile name holds no character that
/// needs an escape).
fn toml_key(name: &str) -> String {
    if name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        name.to_string()
    } else {
        format!("\"{name}\"")
    }
}

/// The sections of a config file (`parsed`) that shadow the profiles `wanted` accepts, in file
/// order. `[default]` is skipped when the file also has `[profile default]`, as the SDKs skip
/// it.
pub fn shadows(parsed: &ProfileFile<'_>, wanted: &dyn Fn(&str) -> bool) -> Vec<Shadow> {
    let sections: Vec<(SectionName, usize, usize)> = parsed
        .sections()
        .into_iter()
        .map(|(h, e)| (parsed.section_name(h, FileKind::Config), h, e))
        .collect();
    let prefixed_default = sections.iter().any(
        |(n, _, _)| matches!(n, SectionName::Profile { name, prefixed: true } if name == "default"),
    );
    let mut out = Vec::new();
    for (name, h, e) in sections {
        let SectionName::Profile { name, prefixed } = name else {
            continue;
        };
        if (name == "default" && prefixed_default && !prefixed) || !wanted(&name) {
            continue;
        }
        let props = parsed.section_properties(h, e);
        let mut keys: Vec<String> = Vec::new();
        for (k, _) in &props {
            if SHADOWING_KEYS.contains(&k.as_str()) && !keys.contains(k) {
                keys.push(k.clone());
            }
        }
        if keys.iter().all(|k| ONLY_WITH_OTHERS.contains(&k.as_str())) {
            continue;
        }
        let line = &parsed.lines()[h];
        let written = &parsed.text()[line.start..line.content_end];
        let header = written
            .find(']')
            .map_or(written, |i| &written[..=i])
            .trim()
            .to_string();
        out.push(Shadow {
            name,
            header,
            line: line.number,
            keys,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_that_shadow_with_their_lines_and_keys() {
        let text = "[default]\nregion = us-east-1\n\n[profile dev]\nsso_session = corp\nsso_account_id = 1\n\
                    sso_role_name = R\nregion = eu-west-1\n[profile plain]\nregion = x\n\
                    [profile deploy]\nsource_profile = dev\nrole_arn = arn\n";
        let parsed = ProfileFile::parse(text).unwrap();
        let got = shadows(&parsed, &|n| n != "deploy");
        assert_eq!(
            got,
            vec![Shadow {
                name: "dev".into(),
                header: "[profile dev]".into(),
                line: 4,
                keys: vec![
                    "sso_session".into(),
                    "sso_account_id".into(),
                    "sso_role_name".into()
                ],
            }]
        );
        assert_eq!(
            got[0].advice("~/.aws/config"),
            "in ~/.aws/config, [profile dev] (line 4): remove sso_session, sso_account_id, \
             sso_role_name (awscredd does their work now; keep region and the other settings), \
             or give awscredd's copy another name (e.g. [profile.dev-awscredd]) and point \
             programs at that one"
        );
        let all = shadows(&parsed, &|_| true);
        assert_eq!(all[1].keys, ["source_profile", "role_arn"]);
        // `[profile default]` replaces `[default]`.
        let parsed = ProfileFile::parse(
            "[default]\ncredential_process = a\n[profile default]\nregion = b\n",
        )
        .unwrap();
        assert!(shadows(&parsed, &|_| true).is_empty());
    }
}
