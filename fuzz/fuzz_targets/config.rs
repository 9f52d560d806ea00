//! `cargo fuzz run config`: [`toolmesh_fuzz::config`] under libFuzzer.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| toolmesh_fuzz::config(data));
