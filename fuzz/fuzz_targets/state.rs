//! `state.json`: what serde reads from any bytes, never a panic; a state read is written back
//! (as `StateFile::update` does) to JSON that reads as the same state; `status` decides from
//! any state read, whatever its times and errors hold, and shows no expiry that is not a time.
#![no_main]

use awscredd::credentials::parse_rfc3339;
use awscredd::status::{decide, Observed};
use awscredd::store::state::State;
use awscredd_fuzz::Fixture;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use time::macros::datetime;

static FIXTURE: OnceLock<Fixture> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let Ok(state) = serde_json::from_slice::<State>(data) else {
        return;
    };
    let written = serde_json::to_vec_pretty(&state).expect("a state serializes");
    let back: State = serde_json::from_slice(&written).expect("a state written reads back");
    assert_eq!(back, state);
    let fixture = FIXTURE.get_or_init(Fixture::new);
    let seen = Observed {
        state,
        ..Observed::default()
    };
    let now = datetime!(2026-01-02 03:04:05 UTC);
    let status = decide(&fixture.config, &seen, now);
    for p in &status.profiles {
        if let Some(e) = &p.expires_at {
            assert!(parse_rfc3339(e).is_ok(), "status shows expiry {e:?}");
        }
    }
});
