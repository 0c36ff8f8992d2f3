//! The checks of a `trust_anchor_arn` (IAM Roles Anywhere) profile as written: the ARN shapes
//! and their region, `duration_seconds`, `role_session_name`, and the file paths. Whether the
//! files exist and parse, and whether the key matches the certificate, depends on the machine
//! and changes when they are renewed: `awscredd check` says it, and every refresh reads them
//! again (`sources/roles_anywhere`).

use super::{check_role_arn, is_session_name, Ctx, ProfileInput};
use crate::config::{RolesAnywhereSource, Source};
use std::path::PathBuf;
use toml::Spanned;

/// `arn:PARTITION:rolesanywhere:REGION:ACCOUNT:KIND/ID`: its region, or why not.
pub(super) fn check_arn(value: &str, kind: &str) -> Result<String, String> {
    let parts: Vec<&str> = value.splitn(6, ':').collect();
    let id_ok = |rest: &str| {
        rest.strip_prefix(kind)
            .and_then(|r| r.strip_prefix('/'))
            .is_some_and(|id| {
                !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            })
    };
    let ok = parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "rolesanywhere"
        && super::is_region(parts[3])
        && super::is_account_id(parts[4])
        && id_ok(parts[5]);
    if ok {
        Ok(parts[3].to_string())
    } else {
        Err(format!(
            "`{value}` is not a Roles Anywhere {kind} ARN: expected arn:aws:rolesanywhere:<region>:<12-digit account id>:{kind}/<id>"
        ))
    }
}

/// The ARN under `key`, checked; an error at the profile's name when it is missing.
fn arn(
    cx: &mut Ctx<'_>,
    r: &ProfileInput<'_>,
    value: &Option<Spanned<String>>,
    key: &str,
    kind: &str,
) -> (String, Option<String>) {
    match value {
        None => {
            cx.error(
                r.name.span(),
                format!(
                    "profile `{}` needs {key} (a Roles Anywhere profile sets trust_anchor_arn, profile_arn, role_arn, certificate and private_key)",
                    r.pname
                ),
            );
            (String::new(), None)
        }
        Some(v) => match check_arn(v.get_ref(), kind) {
            Ok(region) => (v.get_ref().clone(), Some(region)),
            Err(e) => {
                cx.error(v.span(), e);
                (v.get_ref().clone(), None)
            }
        },
    }
}

fn file(
    cx: &mut Ctx<'_>,
    r: &ProfileInput<'_>,
    value: &Option<Spanned<String>>,
    key: &str,
) -> PathBuf {
    match value {
        None => {
            cx.error(
                r.name.span(),
                format!(
                    "profile `{}` needs {key} (the PEM file of its {})",
                    r.pname,
                    key.replace('_', " ")
                ),
            );
            PathBuf::new()
        }
        Some(v) => cx.path(v, key).unwrap_or_default(),
    }
}

/// Checks a Roles Anywhere profile's keys and builds its source.
pub(super) fn source(cx: &mut Ctx<'_>, r: &ProfileInput<'_>) -> Source {
    let p = r.p;
    let (trust_anchor_arn, anchor_region) = arn(
        cx,
        r,
        &p.trust_anchor_arn,
        "trust_anchor_arn",
        "trust-anchor",
    );
    let (profile_arn, profile_region) = arn(cx, r, &p.profile_arn, "profile_arn", "profile");
    if let (Some(a), Some(b), Some(v)) = (&anchor_region, &profile_region, &p.profile_arn) {
        if a != b {
            cx.error(
                v.span(),
                format!("profile_arn is in {b} but trust_anchor_arn in {a}: Roles Anywhere answers for both in the trust anchor's region, so they must be in the same one"),
            );
        }
    }
    let role_arn = match &p.role_arn {
        None => {
            arn(cx, r, &None, "role_arn", "role");
            String::new()
        }
        Some(v) => {
            if let Err(e) = check_role_arn(v.get_ref()) {
                cx.error(v.span(), e);
            }
            v.get_ref().clone()
        }
    };
    let certificate = file(cx, r, &p.certificate, "certificate");
    let private_key = file(cx, r, &p.private_key, "private_key");
    let intermediates = p
        .intermediates
        .as_ref()
        .map(|v| cx.path(v, "intermediates").unwrap_or_default());
    let role_session_name = p.role_session_name.as_ref().map(|s| {
        if !is_session_name(s.get_ref()) {
            cx.error(
                s.span(),
                "role_session_name must be 2 to 64 characters of letters, digits and +=,.@_-",
            );
        }
        s.get_ref().clone()
    });
    Source::RolesAnywhere(RolesAnywhereSource {
        certificate,
        private_key,
        intermediates,
        trust_anchor_arn,
        profile_arn,
        role_arn,
        duration_seconds: r.duration(cx, 43_200),
        role_session_name,
    })
}

#[cfg(test)]
mod tests {
    use super::check_arn;

    #[test]
    fn roles_anywhere_arns_give_their_region_or_say_what_is_expected() {
        let ok = "arn:aws:rolesanywhere:eu-west-1:111122223333:trust-anchor/0f1e-AB12";
        assert_eq!(check_arn(ok, "trust-anchor").as_deref(), Ok("eu-west-1"));
        let gov = "arn:aws-us-gov:rolesanywhere:us-gov-west-1:111122223333:profile/abc";
        assert_eq!(check_arn(gov, "profile").as_deref(), Ok("us-gov-west-1"));
        for bad in [
            "arn:aws:rolesanywhere:eu-west-1:111122223333:profile/abc", // other kind
            "arn:aws:rolesanywhere:eu-west-1:11112222333:trust-anchor/abc", // 11 digits
            "arn:aws:iam::111122223333:trust-anchor/abc",
            "arn:aws:rolesanywhere:EU:111122223333:trust-anchor/abc",
            "arn:aws:rolesanywhere:eu-west-1:111122223333:trust-anchor/",
            "arn:aws:rolesanywhere:eu-west-1:111122223333:trust-anchor/a b",
            "trust-anchor/abc",
        ] {
            let e = check_arn(bad, "trust-anchor").unwrap_err();
            assert!(e.contains(bad) && e.contains("trust-anchor/<id>"), "{e}");
        }
    }
}
