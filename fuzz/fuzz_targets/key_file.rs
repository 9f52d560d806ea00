//! `cargo fuzz run key_file`: [`toolmesh_fuzz::key_file`] under libFuzzer.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| toolmesh_fuzz::key_file(data));
