//! `cargo fuzz run clients_file`: [`toolmesh_fuzz::clients_file`] under libFuzzer.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| toolmesh_fuzz::clients_file(data));
