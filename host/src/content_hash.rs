//! BLAKE3 content hashes, written `blake3:<64 hex digits>`: how plugins'
//! components and blobs are named.

use std::fmt;
use std::str::FromStr;

/// A BLAKE3 content hash, written `blake3:<64 hex digits>`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ContentHash(pub blake3::Hash);

impl ContentHash {
    /// Hashes `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(blake3::hash(bytes))
    }

    /// The hex digits alone.
    pub fn to_hex(&self) -> String {
        self.0.to_hex().to_string()
    }
}

impl Ord for ContentHash {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.as_bytes().cmp(other.0.as_bytes())
    }
}

impl PartialOrd for ContentHash {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "blake3:{}", self.0.to_hex())
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for ContentHash {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hex = s
            .strip_prefix("blake3:")
            .ok_or_else(|| format!("hash `{s}` must start with `blake3:`"))?;
        blake3::Hash::from_hex(hex)
            .map(Self)
            .map_err(|_| format!("hash `{s}` must be `blake3:` and 64 hex digits"))
    }
}
