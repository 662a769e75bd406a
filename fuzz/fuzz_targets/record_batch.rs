//! cargo +nightly fuzz run record_batch — see `chronik::fuzzing::record_batch`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| chronik::fuzzing::record_batch(data));
