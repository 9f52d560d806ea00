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

use crate::ToolError;
use crate::bindings::toolmesh::plugin::blobs as wit;

pub use wit::BlobError;

/// Stores `data`; returns its hash. Durable when it returns.
pub fn put(data: &[u8]) -> Result<String, BlobError> {
    wit::put(data)
}

/// The blob named `hash`, verified by the host, or `None` if absent.
pub fn get(hash: &str) -> Result<Option<Vec<u8>>, BlobError> {
    wit::get(hash)
}

/// The size of the blob named `hash`, or `None` if absent.
pub fn stat(hash: &str) -> Result<Option<u64>, BlobError> {
    wit::stat(hash)
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
