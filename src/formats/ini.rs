//! `format = "ini"`: the AWS shared credentials file, many profiles in one file. Only the
//! sections being written are kept whole when it is parsed for a write (every other line is
//! still checked by the SDKs' parser rules: a file they reject is refused), and the new text
//! is pieces of the old bytes and the new lines ([`crate::profile_file::edit`]).

use super::{Codec, CodecError};
use crate::credentials::Credentials;
use crate::profile_file::credentials::{credentials_in, update_for};
use crate::profile_file::edit::{rewrite_into, EditError, Pieces, ProfileUpdate};
use crate::profile_file::{credentials_profile_name, ProfileFile};
use std::collections::BTreeMap;

/// The credentials file.
pub struct Ini;

/// The credentials of `profile` from its sections in a credentials file, as
/// [`crate::profile_file::read_sections_of`] found them: checked and parsed with the SDKs'
/// rules. `None` when the whole file must be read instead ([`Codec::read`], for the same
/// answer or its error): the profile is there more than once, or its section does not parse.
pub fn credentials_of_sections(
    sections: &[Vec<u8>],
    profile: &str,
) -> Option<Result<Option<Credentials>, CodecError>> {
    match sections {
        [] => Some(Ok(None)),
        [one] => {
            let parsed = ProfileFile::check_bytes(one).and_then(ProfileFile::parse);
            parsed.ok().map(|p| Ok(credentials_in(&p).remove(profile)))
        }
        _ => None,
    }
}

impl Codec for Ini {
    fn read(
        &self,
        bytes: &[u8],
        _profile: Option<&str>,
    ) -> Result<BTreeMap<String, Credentials>, CodecError> {
        let text = ProfileFile::check_bytes(bytes).map_err(CodecError::Unparseable)?;
        let parsed = ProfileFile::parse(text).map_err(CodecError::Unparseable)?;
        Ok(credentials_in(&parsed))
    }

    fn rewrite<'a>(
        &self,
        old: Option<&'a [u8]>,
        profiles: &[(String, Credentials)],
        _profile: Option<&str>,
        out: &mut Pieces<'a>,
        refused: &mut Vec<(String, CodecError)>,
    ) -> Result<bool, CodecError> {
        let mut names: Vec<&str> = profiles.iter().map(|(n, _)| n.as_str()).collect();
        names.sort_unstable();
        let keep = |raw: &str| {
            credentials_profile_name(raw).is_some_and(|n| names.binary_search(&n).is_ok())
        };
        let text =
            ProfileFile::check_bytes(old.unwrap_or_default()).map_err(CodecError::Unparseable)?;
        let parsed = ProfileFile::parse_sections(text, &keep).map_err(CodecError::Unparseable)?;
        let mut updates: Vec<ProfileUpdate> =
            profiles.iter().map(|(n, c)| update_for(n, c)).collect();
        loop {
            let error = match rewrite_into(&parsed, &updates, out) {
                Ok(changed) => return Ok(changed),
                Err(error) => error,
            };
            // A section that cannot be written (duplicated, or a padded header) fails its
            // profile alone while others remain to be written; the last one is the error.
            let profile = match &error {
                EditError::DuplicateSection { profile, .. }
                | EditError::PaddedSection { profile, .. }
                    if updates.len() > 1 =>
                {
                    profile.clone()
                }
                _ => return Err(CodecError::Edit(error)),
            };
            updates.retain(|u| u.profile != profile);
            refused.push((profile, CodecError::Edit(error)));
        }
    }
}
