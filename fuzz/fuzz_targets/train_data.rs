//! `cargo fuzz run train_data`: [`toolmesh_fuzz::train_data`] under libFuzzer.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| toolmesh_fuzz::train_data(data));
