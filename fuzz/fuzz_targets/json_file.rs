//! `format = "json"` and the JSON-with-comments parser under `launch-settings`: any bytes are
//! read without a panic; a write over them reads back as the credentials written, and a second
//! write changes nothing. What the comment-tolerant parser accepts as plain JSON, serde_json
//! accepts too.
#![no_main]

use awscredd::formats::{jsonc, Format};
use awscredd_fuzz::{credentials, pick, round_trip};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    round_trip(Format::Json.codec(), data, &credentials(pick(data)));
    if let Ok(text) = std::str::from_utf8(data) {
        let parsed = jsonc::parse(text);
        if serde_json::from_str::<serde_json::Value>(text).is_ok() {
            assert!(
                parsed.is_ok(),
                "JSON that serde_json reads is refused: {parsed:?}"
            );
        }
        if let Err(e) = parsed {
            assert!(
                e.line >= 1 && e.column >= 1,
                "a position outside the text: {e:?}"
            );
        }
    }
});
