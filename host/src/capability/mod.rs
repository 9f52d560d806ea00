//! Host capabilities a plugin may import, one module each: the state it
//! keeps, and its side of the WIT interface.

pub mod kv;
