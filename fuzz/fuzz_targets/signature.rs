//! `cargo fuzz run signature`: [`toolmesh_fuzz::signature`] under libFuzzer.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| toolmesh_fuzz::signature(data));
