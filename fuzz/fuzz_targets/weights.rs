//! `cargo fuzz run weights`: [`toolmesh_fuzz::weights`] under libFuzzer.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| toolmesh_fuzz::weights(data));
