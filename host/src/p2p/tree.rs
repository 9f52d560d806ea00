//! Verified chunks of a BLAKE3-named blob.
//!
//! A blob's name is its BLAKE3 hash, and BLAKE3 is a Merkle tree. Cut the
//! blob into [`CHUNK_BYTES`] pieces (a power of two, so each piece is a whole
//! subtree of BLAKE3's tree) and each piece has a chaining value. Given the
//! list of chaining values, a receiver rebuilds the root and checks it
//! against the name: the list is then authentic, and each chunk can be
//! checked on arrival against its entry, before a byte of it is written.
//! A blob of one chunk is checked whole. This is the scheme of Bao, on
//! `blake3::hazmat`, with 1 MiB leaves instead of 1 KiB ones.

use blake3::hazmat::{
    ChainingValue, HasherExt, Mode, merge_subtrees_non_root, merge_subtrees_root,
};

use crate::content_hash::ContentHash;

/// Bytes per chunk (a power of two, at least BLAKE3's 1 KiB chunk).
pub const CHUNK_BYTES: u64 = 1 << 20;

/// How many chunks a blob of `size` bytes has (an empty blob has one, empty).
pub fn chunk_count(size: u64) -> u64 {
    size.div_ceil(CHUNK_BYTES).max(1)
}

/// The byte range of chunk `index` of a blob of `size` bytes.
pub fn chunk_range(size: u64, index: u64) -> std::ops::Range<u64> {
    let start = index * CHUNK_BYTES;
    start.min(size)..(start + CHUNK_BYTES).min(size)
}

/// The chaining value of chunk `index`, which holds `data`.
fn chunk_cv(index: u64, data: &[u8]) -> ChainingValue {
    blake3::Hasher::new()
        .set_input_offset(index * CHUNK_BYTES)
        .update(data)
        .finalize_non_root()
}

/// The chaining values a provider sends for a blob of `size` bytes with
/// more than one chunk (empty for a one-chunk blob, which is verified
/// whole). `read_chunk` reads the bytes of one chunk's range, so a blob is
/// never held in memory whole.
pub fn chaining_values<E>(
    size: u64,
    mut read_chunk: impl FnMut(std::ops::Range<u64>) -> Result<Vec<u8>, E>,
) -> Result<Vec<ChainingValue>, E> {
    if chunk_count(size) == 1 {
        return Ok(Vec::new());
    }
    (0..chunk_count(size))
        .map(|i| read_chunk(chunk_range(size, i)).map(|data| chunk_cv(i, &data)))
        .collect()
}

/// The root of the subtree over `cvs`, which covers `len` bytes.
fn subtree(cvs: &[ChainingValue], len: u64, root: bool) -> Option<blake3::Hash> {
    // Only called with at least two chunks; BLAKE3 puts the largest power of
    // two of its 1 KiB chunks that is less than the whole on the left, which
    // for more than one of our chunks is a whole number of them.
    let left_len = blake3::hazmat::left_subtree_len(len);
    let left_chunks = (left_len / CHUNK_BYTES) as usize;
    let (left, right) = cvs.split_at(left_chunks);
    let cv = |part: &[ChainingValue], len: u64| -> Option<ChainingValue> {
        match part {
            [one] => Some(*one),
            [] => None,
            more => subtree(more, len, false).map(|h| *h.as_bytes()),
        }
    };
    let (l, r) = (cv(left, left_len)?, cv(right, len - left_len)?);
    Some(if root {
        merge_subtrees_root(&l, &r, Mode::Hash)
    } else {
        blake3::Hash::from(merge_subtrees_non_root(&l, &r, Mode::Hash))
    })
}

/// The check for each chunk of a blob, authenticated against its name.
#[derive(Debug, Clone)]
pub struct ChunkVerifier {
    hash: ContentHash,
    size: u64,
    cvs: Vec<ChainingValue>,
}

/// A chunk or a chaining-value list that does not match the blob's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeError {
    /// The list of chaining values does not rebuild the name.
    #[error("the chunk list does not match {0}")]
    BadList(ContentHash),
    /// A chunk does not match its entry.
    #[error("chunk {index} does not match {hash}")]
    BadChunk {
        /// The blob.
        hash: ContentHash,
        /// Which chunk.
        index: u64,
    },
}

impl ChunkVerifier {
    /// Authenticates `cvs` (as a provider sent them) for the blob `hash` of
    /// `size` bytes.
    pub fn new(hash: ContentHash, size: u64, cvs: Vec<ChainingValue>) -> Result<Self, TreeError> {
        let count = chunk_count(size);
        let ok = if count == 1 {
            cvs.is_empty()
        } else {
            cvs.len() as u64 == count && subtree(&cvs, size, true) == Some(hash.0)
        };
        if !ok {
            return Err(TreeError::BadList(hash));
        }
        Ok(Self { hash, size, cvs })
    }

    /// The blob's size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// How many chunks there are.
    pub fn chunk_count(&self) -> u64 {
        chunk_count(self.size)
    }

    /// Checks chunk `index`.
    pub fn verify(&self, index: u64, data: &[u8]) -> Result<(), TreeError> {
        let bad = || TreeError::BadChunk {
            hash: self.hash,
            index,
        };
        let range = chunk_range(self.size, index);
        if index >= self.chunk_count() || data.len() as u64 != range.end - range.start {
            return Err(bad());
        }
        let ok = match self.cvs.get(index as usize) {
            Some(cv) => chunk_cv(index, data) == *cv,
            None => ContentHash::of(data) == self.hash,
        };
        if ok { Ok(()) } else { Err(bad()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(size: usize) -> Vec<u8> {
        (0..size).map(|i| (i * 31 % 251) as u8).collect()
    }

    /// The chaining values of `data`, read a chunk at a time.
    fn cvs_of(data: &[u8]) -> Vec<ChainingValue> {
        let read = |r: std::ops::Range<u64>| {
            Ok::<_, std::convert::Infallible>(data[r.start as usize..r.end as usize].to_vec())
        };
        match chaining_values(data.len() as u64, read) {
            Ok(cvs) => cvs,
            Err(never) => match never {},
        }
    }

    #[test]
    fn chunk_lists_rebuild_blake3_for_every_shape() {
        let c = CHUNK_BYTES as usize;
        for size in [
            0,
            1,
            c - 1,
            c,
            c + 1,
            2 * c,
            3 * c - 7,
            4 * c,
            5 * c + 3,
            8 * c + 1,
        ] {
            let data = blob(size);
            let hash = ContentHash::of(&data);
            let verifier = ChunkVerifier::new(hash, size as u64, cvs_of(&data))
                .unwrap_or_else(|e| panic!("size {size}: {e}"));
            for i in 0..verifier.chunk_count() {
                let r = chunk_range(size as u64, i);
                verifier
                    .verify(i, &data[r.start as usize..r.end as usize])
                    .unwrap();
            }
        }
    }

    #[test]
    fn a_wrong_list_or_chunk_is_caught() {
        let c = CHUNK_BYTES as usize;
        let data = blob(3 * c + 5);
        let hash = ContentHash::of(&data);
        let mut cvs = cvs_of(&data);
        cvs[1][0] ^= 1;
        assert!(ChunkVerifier::new(hash, data.len() as u64, cvs).is_err());
        // The right list with a lie about the size: a size in another chunk
        // count changes the tree; one within the last chunk passes the list
        // (BLAKE3 commits to the length in the last chunk's value) and then
        // no last chunk can match.
        let cvs = cvs_of(&data);
        let size = data.len() as u64;
        assert!(ChunkVerifier::new(hash, size + CHUNK_BYTES, cvs.clone()).is_err());
        let liar = ChunkVerifier::new(hash, size + 1, cvs.clone()).unwrap();
        let last = &data[3 * c..];
        assert!(liar.verify(3, last).is_err());
        let mut padded = last.to_vec();
        padded.push(0);
        assert!(liar.verify(3, &padded).is_err());

        let verifier = ChunkVerifier::new(hash, data.len() as u64, cvs).unwrap();
        let mut chunk = data[c..2 * c].to_vec();
        chunk[77] ^= 0x40;
        assert!(verifier.verify(1, &chunk).is_err());
        // Chunk 0's bytes offered as chunk 2: same length, wrong place.
        assert!(verifier.verify(2, &data[..c]).is_err());
        assert!(verifier.verify(3, &data[..5]).is_err(), "wrong length");
        assert!(verifier.verify(9, &data[..5]).is_err(), "no such chunk");

        let small = blob(100);
        let verifier = ChunkVerifier::new(ContentHash::of(&small), 100, Vec::new()).unwrap();
        verifier.verify(0, &small).unwrap();
        assert!(verifier.verify(0, &small[..99]).is_err());
    }
}
