//! `cargo fuzz run net_file`: [`toolmesh_fuzz::net_file`] under libFuzzer.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| toolmesh_fuzz::net_file(data));
