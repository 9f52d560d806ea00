//! `cargo fuzz run bundle`: [`toolmesh_fuzz::bundle`] under libFuzzer.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| toolmesh_fuzz::bundle(data));
