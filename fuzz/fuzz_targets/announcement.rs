//! `cargo fuzz run announcement`: [`toolmesh_fuzz::announcement`] under libFuzzer.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| toolmesh_fuzz::announcement(data));
