//! `cargo fuzz run share_request`: [`toolmesh_fuzz::share_request`] under libFuzzer.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| toolmesh_fuzz::share_request(data));
