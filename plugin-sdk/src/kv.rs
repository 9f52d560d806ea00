//! The `kv` capability: a persistent key-value store of the plugin's own.
//! Ask for it in `plugin.toml` (`capabilities = ["kv"]`). Every write is
//! durable when it returns; keys and values together may use at most the
//! plugin's security level's `kv_bytes`.
//!
//! ```no_run
//! use toolmesh_sdk::kv;
//!
//! // An exact counter under concurrent calls: retry the swap until it wins.
//! fn increment(key: &str) -> Result<u64, kv::KvError> {
//!     loop {
//!         let current = kv::get(key)?;
//!         let n = current
//!             .as_deref()
//!             .and_then(|b| std::str::from_utf8(b).ok())
//!             .and_then(|s| s.parse::<u64>().ok())
//!             .unwrap_or(0);
//!         let next = (n + 1).to_string();
//!         if kv::compare_and_swap(key, current.as_deref(), Some(next.as_bytes()))? {
//!             return Ok(n + 1);
//!         }
//!     }
//! }
//! ```

use crate::ToolError;
use crate::bindings::toolmesh::plugin::kv as wit;

pub use wit::KvError;

/// The value of `key`, if set.
pub fn get(key: &str) -> Result<Option<Vec<u8>>, KvError> {
    wit::get(key)
}

/// Sets `key` to `value`.
pub fn set(key: &str, value: &[u8]) -> Result<(), KvError> {
    wit::set(key, value)
}

/// Removes `key`; true if it was set.
pub fn delete(key: &str) -> Result<bool, KvError> {
    wit::delete(key)
}

/// Atomically replaces `key`'s value with `new` if it is `expected`
/// (`None`: not set; a `new` of `None` removes the key). True if it did.
pub fn compare_and_swap(
    key: &str,
    expected: Option<&[u8]>,
    new: Option<&[u8]>,
) -> Result<bool, KvError> {
    wit::compare_and_swap(key, expected, new)
}

/// Keys starting with `prefix`, in order, at most `limit`.
pub fn list_keys(prefix: &str, limit: u32) -> Result<Vec<String>, KvError> {
    wit::list_keys(prefix, limit)
}

impl From<KvError> for ToolError {
    fn from(e: KvError) -> Self {
        match e {
            KvError::QuotaExceeded(m) => ToolError::Denied(m),
            KvError::InvalidKey(m) => ToolError::InvalidArguments(m),
            KvError::Storage(m) => ToolError::Failed(format!("kv storage: {m}")),
        }
    }
}
