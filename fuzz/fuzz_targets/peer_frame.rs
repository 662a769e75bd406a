//! cargo +nightly fuzz run peer_frame — see `chronik::fuzzing::peer_frame`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| chronik::fuzzing::peer_frame(data));
