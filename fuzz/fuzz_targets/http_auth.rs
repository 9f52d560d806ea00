//! `cargo fuzz run http_auth`: [`toolmesh_fuzz::http_auth`] under libFuzzer.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| toolmesh_fuzz::http_auth(data));
