//! cargo +nightly fuzz run request_body — see `chronik::fuzzing::request_body`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| chronik::fuzzing::request_body(data));
