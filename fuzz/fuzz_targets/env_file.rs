//! `format = "env"`: any bytes are read without a panic; a write over them reads back as the
//! credentials written, and a second write changes nothing.
#![no_main]

use awscredd::formats::Format;
use awscredd_fuzz::{credentials, pick, round_trip};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    round_trip(Format::Env.codec(), data, &credentials(pick(data)));
});
