//! cargo +nightly fuzz run sasl — see `chronik::fuzzing::sasl`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| chronik::fuzzing::sasl(data));
