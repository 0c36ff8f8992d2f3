//! `format = "launch-settings"` (a .NET `launchSettings.json`, JSON with comments): any bytes
//! are read without a panic, for every launch profile or a chosen few; a write over them reads
//! back as the credentials written, keeps the file's other members, and a second write changes
//! nothing.
#![no_main]

use awscredd::formats::{jsonc, Format, LaunchSettings};
use awscredd_fuzz::{credentials, pick, round_trip};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let seed = pick(data);
    let only = match seed >> 60 {
        0 => Some(vec!["web".to_string()]),
        1 => Some(vec!["web".to_string(), "a\"b".to_string()]),
        _ => None,
    };
    let format = Format::LaunchSettings(LaunchSettings {
        launch_profiles: only,
    });
    let c = credentials(seed);
    round_trip(format.codec(), data, &c);
    // Whatever was written is JSON with comments, whole.
    let mut out = awscredd::profile_file::edit::Pieces::default();
    let profiles = vec![("p".to_string(), c)];
    if format
        .codec()
        .rewrite(Some(data), &profiles, Some("p"), &mut out, &mut Vec::new())
        .is_ok()
    {
        let new = out.concat();
        let text = new.strip_prefix('\u{feff}').unwrap_or(&new);
        if let Err(e) = jsonc::parse(text) {
            panic!("the result is not JSON with comments: {e:?}\n{new:?}");
        }
    }
});
