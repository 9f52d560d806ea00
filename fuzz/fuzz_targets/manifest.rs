//! `cargo fuzz run manifest`: [`toolmesh_fuzz::manifest`] under libFuzzer.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| toolmesh_fuzz::manifest(data));
