#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| slawatch_fuzz::config(data));
