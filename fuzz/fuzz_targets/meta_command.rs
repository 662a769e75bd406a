//! cargo +nightly fuzz run meta_command — see `chronik::fuzzing::meta_command`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| chronik::fuzzing::meta_command(data));
