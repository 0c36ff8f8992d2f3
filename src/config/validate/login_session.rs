//! The checks of a `login_session` profile (the AWS CLI's `aws login` sign-in): its value is
//! the ARN of the identity that signed in, as `aws login` writes it into `~/.aws/config`.

use super::{Ctx, ProfileInput};
use crate::config::Source;

/// Why `arn` is not the ARN of an identity `aws login` signs in (an IAM user, the root user,
/// or an assumed-role session), if it is not.
pub fn arn_problem(arn: &str) -> Option<String> {
    // The sign-in's cache file is named after the ARN exactly; the AWS SDKs trim the value
    // they read, so `" ARN "` would find no sign-in here while the AWS CLI finds one.
    if arn.contains(char::is_whitespace) {
        return Some(format!(
            "login_session `{arn}` has spaces in it (an ARN has none; the sign-in is found by \
             the ARN exactly)"
        ));
    }
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [prefix, partition, service, region, account, resource] = parts[..] else {
        return Some(format!(
            "login_session `{arn}` is not an ARN (arn:aws:iam::ACCOUNT:user/NAME)"
        ));
    };
    let account_ok = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
    let resource_ok = match service {
        "iam" => {
            resource == "root"
                || resource
                    .strip_prefix("user/")
                    .is_some_and(|n| !n.is_empty())
        }
        "sts" => resource
            .strip_prefix("assumed-role/")
            .is_some_and(|r| r.split('/').filter(|s| !s.is_empty()).count() >= 2),
        _ => false,
    };
    let shape = prefix == "arn"
        && partition.starts_with("aws")
        && region.is_empty()
        && account_ok
        && resource_ok;
    (!shape).then(|| {
        format!(
            "login_session `{arn}` is not the ARN of an identity `aws login` signs in \
             (arn:aws:iam::ACCOUNT:user/NAME, arn:aws:iam::ACCOUNT:root or \
             arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION)"
        )
    })
}

/// Checks the profile's `login_session` and builds its source.
pub(super) fn source(cx: &mut Ctx<'_>, r: &ProfileInput<'_>) -> Option<Source> {
    let v = r.p.login_session.as_ref()?;
    if let Some(problem) = arn_problem(v.get_ref()) {
        cx.error(v.span(), problem);
    }
    Some(Source::LoginSession {
        arn: v.get_ref().clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::arn_problem;

    #[test]
    fn identities_aws_login_signs_in_are_accepted_and_other_values_named() {
        for ok in [
            "arn:aws:iam::111122223333:user/alice",
            "arn:aws:iam::111122223333:root",
            "arn:aws-cn:iam::111122223333:user/path/bob",
            "arn:aws:sts::111122223333:assumed-role/Admin/alice",
        ] {
            assert_eq!(arn_problem(ok), None, "{ok}");
        }
        for bad in [
            "alice",
            "arn:aws:iam::1111:user/alice",
            "arn:aws:iam:us-east-1:111122223333:user/alice",
            "arn:aws:iam::111122223333:role/Admin",
            "arn:aws:iam::111122223333:user/",
            "arn:aws:s3:::bucket",
            "arn:aws:sts::111122223333:assumed-role/Admin",
            // The AWS SDKs trim these (smithy-rs's login cache tests): refused, not missed.
            "arn:aws:iam::111122223333:user/alice ",
            " arn:aws:iam::111122223333:user/alice",
            "arn:aws:iam::111122223333:user/al\tice",
        ] {
            let m = arn_problem(bad).unwrap_or_default();
            assert!(m.contains(bad), "{bad}: {m}");
        }
    }
}
