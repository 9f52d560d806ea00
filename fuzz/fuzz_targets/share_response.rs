//! `cargo fuzz run share_response`: [`toolmesh_fuzz::share_response`] under libFuzzer.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| toolmesh_fuzz::share_response(data));
