//! `cargo fuzz run jsonrpc_line`: [`toolmesh_fuzz::jsonrpc_line`] under libFuzzer.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| toolmesh_fuzz::jsonrpc_line(data));
