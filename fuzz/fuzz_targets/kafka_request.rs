//! cargo +nightly fuzz run kafka_request — see `chronik::fuzzing::kafka_request`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| chronik::fuzzing::kafka_request(data));
