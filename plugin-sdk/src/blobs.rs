//! The `blobs` capability: the host's content-addressed store. Ask for it in
//! `plugin.toml` (`capabilities = ["blobs"]`). A blob is an immutable byte
//! string named by its BLAKE3 hash (`blake3:<64 hex digits>`); the store is
//! shared by every plugin on the host and, through the P2P layer, with
//! peers, so anyone who knows a hash can read the blob: do not keep secrets
//! here. What a plugin stores counts against its level's `blob_bytes`.
//!
//! ```no_run
//! use toolmesh_sdk::blobs;
//!
//! let hash = blobs::put(b"trained weights")?;
//! assert_eq!(blobs::get(&hash)?.as_deref(), Some(&b"trained weights"[..]));
//! # Ok::<(), blobs::BlobError>(())
//! ```

//!
//! Outside a WebAssembly host (in a native unit test), blobs live in an
//! in-memory store private to the calling thread, named by a stand-in hash.

use crate::ToolError;
use crate::bindings::toolmesh::plugin::blobs as wit;

pub use wit::BlobError;

#[cfg(not(target_family = "wasm"))]
use native as backend;
#[cfg(target_family = "wasm")]
use wit as backend;

/// Stores `data`; returns its hash. Durable when it returns.
pub fn put(data: &[u8]) -> Result<String, BlobError> {
    backend::put(data)
}

/// The blob named `hash`, verified by the host, or `None` if absent.
pub fn get(hash: &str) -> Result<Option<Vec<u8>>, BlobError> {
    backend::get(hash)
}

/// The size of the blob named `hash`, or `None` if absent.
pub fn stat(hash: &str) -> Result<Option<u64>, BlobError> {
    backend::stat(hash)
}

impl From<BlobError> for ToolError {
    fn from(e: BlobError) -> Self {
        match e {
            BlobError::QuotaExceeded(m) => ToolError::Denied(m),
            BlobError::InvalidHash(m) => ToolError::InvalidArguments(m),
            BlobError::Storage(m) => ToolError::Failed(format!("blob storage: {m}")),
        }
    }
}

/// The in-memory store native builds use (content-named by a stand-in hash:
/// the real host uses BLAKE3).
#[cfg(not(target_family = "wasm"))]
mod native {
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::hash::{Hash, Hasher};

    use super::BlobError;

    thread_local! {
        static STORE: RefCell<HashMap<String, Vec<u8>>> = RefCell::new(HashMap::new());
    }

    fn name(data: &[u8]) -> String {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        data.hash(&mut h);
        format!("blake3:{:064x}", h.finish())
    }

    fn check(hash: &str) -> Result<(), BlobError> {
        let ok = hash
            .strip_prefix("blake3:")
            .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
        if ok {
            Ok(())
        } else {
            Err(BlobError::InvalidHash(format!(
                "`{hash}` is not blake3: and 64 hex digits"
            )))
        }
    }

    pub fn put(data: &[u8]) -> Result<String, BlobError> {
        let hash = name(data);
        STORE.with(|s| s.borrow_mut().insert(hash.clone(), data.to_vec()));
        Ok(hash)
    }

    pub fn get(hash: &str) -> Result<Option<Vec<u8>>, BlobError> {
        check(hash)?;
        Ok(STORE.with(|s| s.borrow().get(hash).cloned()))
    }

    pub fn stat(hash: &str) -> Result<Option<u64>, BlobError> {
        check(hash)?;
        Ok(STORE.with(|s| s.borrow().get(hash).map(|b| b.len() as u64)))
    }
}
