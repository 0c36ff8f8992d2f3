//! Every source kind as one table entry: the keys it reads, which of them say that a profile
//! is of this kind (the "which source is this profile" test), what to set for it (the error
//! for a profile with no source), and how it is checked and built. The allowed keys, that
//! test and those messages are derived from [`SOURCES`], never kept by hand elsewhere: a new
//! source is an entry here (with its checks in a file of its own), a variant of
//! [`Source`]/[`SourceKind`] whose arms the compiler asks for, and a file in `sources/`.

use super::{
    assume_role_source, process_source, roles_anywhere, session_token_source, sso_source,
    web_identity_source, Ctx, ProfileInput,
};
use crate::config::raw::RawProfile;
use crate::config::{Mfa, Source, SourceKind, SsoSession};
use std::collections::BTreeMap;
use std::ops::Range;
use toml::Spanned;

/// What a source's checks may look at besides the profile itself.
pub(super) struct Lookup<'a> {
    /// Every profile of the config, as written (for `source_profile`).
    pub all: &'a BTreeMap<Spanned<String>, Spanned<RawProfile>>,
    pub sessions: &'a BTreeMap<String, SsoSession>,
    /// The profile's MFA device and code command, checked.
    pub mfa: Option<Mfa>,
}

/// One source kind.
pub(super) struct SourceDef {
    pub kind: SourceKind,
    /// The profile keys it reads (beyond `region` and `endpoint_url`, which every source has).
    pub keys: &'static [&'static str],
    /// The span of the key that makes a profile this kind, if one is set.
    pub named_by: fn(&RawProfile) -> Option<Range<usize>>,
    /// What to set for this source, for a profile that has none.
    pub needs: &'static str,
    /// Checks the profile's keys for this source and builds it (`None`: not buildable; the
    /// errors are in `cx`).
    pub build: fn(&mut Ctx<'_>, &ProfileInput<'_>, &Lookup<'_>) -> Option<Source>,
}

fn span<T>(v: &Option<Spanned<T>>) -> Option<Range<usize>> {
    v.as_ref().map(Spanned::span)
}

/// Every source kind, in the order messages name them.
pub(super) const SOURCES: [SourceDef; 7] = [
    SourceDef {
        kind: SourceKind::Sso,
        keys: &[
            "sso_session",
            "sso_account_id",
            "sso_role_name",
            "sso_start_url",
            "sso_region",
        ],
        named_by: |p| {
            span(&p.sso_session)
                .or_else(|| span(&p.sso_account_id))
                .or_else(|| span(&p.sso_role_name))
                .or_else(|| span(&p.sso_start_url))
                .or_else(|| span(&p.sso_region))
        },
        needs:
            "sso_session (or sso_start_url and sso_region) with sso_account_id and sso_role_name",
        build: |cx, r, l| Some(sso_source(cx, r, l.sessions)),
    },
    SourceDef {
        kind: SourceKind::AssumeRole,
        keys: &[
            "source_profile",
            "role_arn",
            "role_session_name",
            "duration_seconds",
            "external_id",
            "mfa_serial",
            "mfa_command",
        ],
        // With a token file, a role ARN is web identity's; with a trust anchor, Roles
        // Anywhere's.
        named_by: |p| match (&p.web_identity_token_file, &p.trust_anchor_arn) {
            (None, None) => span(&p.role_arn),
            _ => None,
        },
        needs: "role_arn with source_profile",
        build: |cx, r, l| Some(assume_role_source(cx, r, l.all, l.mfa.clone())),
    },
    SourceDef {
        kind: SourceKind::WebIdentity,
        keys: &[
            "role_arn",
            "web_identity_token_file",
            "role_session_name",
            "duration_seconds",
        ],
        named_by: |p| span(&p.web_identity_token_file),
        needs: "role_arn with web_identity_token_file",
        build: |cx, r, _| Some(web_identity_source(cx, r)),
    },
    SourceDef {
        kind: SourceKind::SessionToken,
        keys: &[
            "source_profile",
            "get_session_token",
            "duration_seconds",
            "mfa_serial",
            "mfa_command",
        ],
        named_by: |p| {
            p.get_session_token
                .as_ref()
                .filter(|g| *g.get_ref())
                .map(Spanned::span)
        },
        needs: "source_profile with get_session_token = true",
        build: |cx, r, l| Some(session_token_source(cx, r, l.all, l.mfa.clone())),
    },
    SourceDef {
        kind: SourceKind::RolesAnywhere,
        keys: &[
            "trust_anchor_arn",
            "profile_arn",
            "role_arn",
            "certificate",
            "private_key",
            "intermediates",
            "duration_seconds",
            "role_session_name",
        ],
        named_by: |p| span(&p.trust_anchor_arn),
        needs: "trust_anchor_arn with profile_arn, role_arn, certificate and private_key",
        build: |cx, r, _| Some(roles_anywhere::source(cx, r)),
    },
    SourceDef {
        kind: SourceKind::Process,
        keys: &["credential_process"],
        named_by: |p| span(&p.credential_process),
        needs: "credential_process",
        build: |cx, r, _| process_source(cx, r),
    },
    SourceDef {
        kind: SourceKind::LoginSession,
        keys: &["login_session"],
        named_by: |p| span(&p.login_session),
        needs: "login_session",
        build: |cx, r, _| super::login_session::source(cx, r),
    },
];

/// The entry of `kind`.
pub(super) fn def(kind: SourceKind) -> &'static SourceDef {
    // Every kind has its entry (a unit test checks it), so the search always finds one.
    SOURCES
        .iter()
        .find(|d| d.kind == kind)
        .unwrap_or(&SOURCES[SOURCES.len() - 1])
}

/// The sources a raw profile names, each with the span of the key that names it.
pub(super) fn sources_named(p: &RawProfile) -> Vec<(SourceKind, Range<usize>)> {
    SOURCES
        .iter()
        .filter_map(|d| Some((d.kind, (d.named_by)(p)?)))
        .collect()
}

/// The message for a profile with no source: every way to give it one.
pub(super) fn no_source(profile: &str) -> String {
    let needs: Vec<&str> = SOURCES.iter().map(|d| d.needs).collect();
    let (last, rest) = needs.split_last().map_or(("", &[][..]), |(l, r)| (*l, r));
    format!(
        "profile `{profile}` has no source: set {}, or {last}",
        rest.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_one_entry_and_every_key_a_profile_can_hold_is_read_by_some_source() {
        for d in &SOURCES {
            assert_eq!(
                SOURCES.iter().filter(|e| e.kind == d.kind).count(),
                1,
                "{:?}",
                d.kind
            );
            assert_eq!(def(d.kind).kind, d.kind);
        }
        // The keys of RawProfile (present_keys lists them) are the table's, plus the two
        // every source has.
        let mut table: Vec<&str> = SOURCES
            .iter()
            .flat_map(|d| d.keys.iter().copied())
            .collect();
        table.extend(["region", "endpoint_url"]);
        table.sort_unstable();
        table.dedup();
        let mut listed: Vec<&str> = super::super::PROFILE_KEYS.to_vec();
        listed.sort_unstable();
        assert_eq!(table, listed);
    }

    #[test]
    fn the_no_source_message_names_every_source() {
        let m = no_source("p");
        for d in &SOURCES {
            assert!(m.contains(d.needs), "{m}");
        }
        assert!(
            m.starts_with("profile `p` has no source: set sso_session"),
            "{m}"
        );
        assert!(m.ends_with(", or login_session"), "{m}");
    }
}
