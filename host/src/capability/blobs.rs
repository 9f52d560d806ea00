//! The `blobs` capability: a content-addressed store shared by every plugin
//! on the host. A blob is an immutable byte string named by its BLAKE3 hash
//! and kept as one file, `<dir>/<first 2 hex digits>/<64 hex digits>`, written
//! to a temporary file, synced and renamed into place, so a reader never
//! sees half a blob. Every read is verified against the name: a file changed
//! on disk is reported and removed, never handed out.
//!
//! Each plugin's stored bytes are accounted in `<dir>/index.redb` (which
//! plugin stored which hash, and its total), checked against the plugin's
//! `blob_bytes` quota in the same transaction that records a new blob.
//! Storing a blob the plugin already stored costs nothing.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use wasmtime::component::Linker;

use super::{CallCapability, CallData, CallScope, Capability, HostStores, PluginScope};
use crate::content_hash::ContentHash;
use crate::fs::{Confined, Staged};
use crate::wit::BlobError;
use crate::wit::toolmesh::plugin::blobs;

/// Which plugin stored which blob: `<plugin>\0<hex>` → size.
const OWNERS: TableDefinition<'static, &str, u64> = TableDefinition::new("toolmesh:blob-owners");
/// Bytes stored per plugin.
const USAGE: TableDefinition<'static, &str, u64> = TableDefinition::new("toolmesh:blob-usage");

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum BlobStoreError {
    /// A file system operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What the store was doing.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The index database failed.
    #[error("blob index: {0}")]
    Index(#[from] redb::Error),
    /// A stored file does not match its name (it was changed on disk).
    #[error("blob {0} was corrupt on disk and has been removed")]
    Corrupt(ContentHash),
}

impl BlobStoreError {
    fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.to_owned();
        move |source| Self::Io {
            action,
            path,
            source,
        }
    }
}

fn index_error(e: impl Into<redb::Error>) -> BlobStoreError {
    BlobStoreError::Index(e.into())
}

/// The host's blob store.
pub struct BlobStore {
    /// Every file operation, confined to the store's directory.
    root: Confined,
    index: Database,
}

/// Where blobs are assembled before they move in.
const TMP: &str = "tmp";
/// The index of owners and usage.
const INDEX_FILE: &str = "index.redb";

impl BlobStore {
    /// Opens (creating if needed) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self, BlobStoreError> {
        let root = Confined::open(dir).map_err(BlobStoreError::io("open", dir))?;
        let index_file = root
            .open_or_create(Path::new(INDEX_FILE))
            .map_err(BlobStoreError::io(
                "open",
                &root.display(Path::new(INDEX_FILE)),
            ))?;
        let index = Database::builder()
            .create_file(index_file)
            .map_err(index_error)?;
        // The index is this process's alone now (redb locks it), so files
        // in `tmp` are a killed process's half-written blobs: never in the
        // store, garbage.
        let tmp = Path::new(TMP);
        root.create_dir_all(tmp)
            .map_err(BlobStoreError::io("create", &root.display(tmp)))?;
        for name in root.names(tmp).unwrap_or_default() {
            let _ = root.remove_file(&tmp.join(name));
        }
        Ok(Self { root, index })
    }

    /// Blob `hash`'s file, relative to the store.
    fn file_of(hash: &ContentHash) -> PathBuf {
        let hex = hash.to_hex();
        Path::new(&hex[..2]).join(hex.as_str())
    }

    /// The file that holds (or would hold) blob `hash`.
    pub fn path_of(&self, hash: &ContentHash) -> PathBuf {
        self.root.display(&Self::file_of(hash))
    }

    /// Whether the store has blob `hash`.
    pub fn contains(&self, hash: &ContentHash) -> bool {
        matches!(self.root.size(&Self::file_of(hash)), Ok(Some(_)))
    }

    /// The size of blob `hash`, if the store has it.
    pub fn size(&self, hash: &ContentHash) -> Result<Option<u64>, BlobStoreError> {
        let file = Self::file_of(hash);
        self.root
            .size(&file)
            .map_err(BlobStoreError::io("stat", &self.root.display(&file)))
    }

    /// Blob `hash`, verified, if the store has it.
    pub fn get(&self, hash: &ContentHash) -> Result<Option<Vec<u8>>, BlobStoreError> {
        let file = Self::file_of(hash);
        let data = match self.root.read(&file) {
            Ok(data) => data,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(BlobStoreError::io("read", &self.root.display(&file))(e)),
        };
        if ContentHash::of(&data) != *hash {
            let _ = self.root.remove_file(&file);
            tracing::error!(%hash, path = %self.root.display(&file).display(), "corrupt blob removed");
            return Err(BlobStoreError::Corrupt(*hash));
        }
        Ok(Some(data))
    }

    /// Stores `data` (no quota: for the host's own use) and returns its hash.
    pub fn put(&self, data: &[u8]) -> Result<ContentHash, BlobStoreError> {
        let hash = ContentHash::of(data);
        self.write_file(&hash, data)?;
        Ok(hash)
    }

    /// A temporary file inside the store to assemble a blob in before
    /// [`adopt`](Self::adopt) moves it in. It is not in the store: nothing
    /// reads it under a blob's name, and it is removed if dropped.
    pub fn staging_file(&self) -> Result<Staged, BlobStoreError> {
        self.root.stage(Path::new(TMP)).map_err(BlobStoreError::io(
            "create a file in",
            &self.root.display(Path::new(TMP)),
        ))
    }

    /// Moves `file` into the store as blob `hash`, after hashing it whole:
    /// a file that is not `hash` is deleted and reported as corrupt.
    pub fn adopt(&self, file: Staged, hash: &ContentHash) -> Result<(), BlobStoreError> {
        use std::io::{Seek, SeekFrom};
        let mut hasher = blake3::Hasher::new();
        let mut handle = file.as_file();
        handle
            .seek(SeekFrom::Start(0))
            .map_err(BlobStoreError::io("rewind", &file.display()))?;
        let mut reader = std::io::BufReader::with_capacity(1 << 20, handle);
        hasher
            .update_reader(&mut reader)
            .map_err(BlobStoreError::io("read", &file.display()))?;
        if ContentHash(hasher.finalize()) != *hash {
            return Err(BlobStoreError::Corrupt(*hash));
        }
        self.move_in(file, hash)
    }

    /// Renames the temporary `file` (synced on the way) into place as blob `hash`.
    fn move_in(&self, file: Staged, hash: &ContentHash) -> Result<(), BlobStoreError> {
        let to = Self::file_of(hash);
        self.root
            .persist(file, &to)
            .map_err(BlobStoreError::io("move into", &self.root.display(&to)))
    }

    /// Bytes `range` of blob `hash`, unverified (the reader verifies them:
    /// this serves chunks to peers), if the store has it.
    pub fn read_range(
        &self,
        hash: &ContentHash,
        range: std::ops::Range<u64>,
    ) -> Result<Option<Vec<u8>>, BlobStoreError> {
        use std::os::unix::fs::FileExt;
        let rel = Self::file_of(hash);
        let file = match self.root.open_file(&rel) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(BlobStoreError::io("open", &self.root.display(&rel))(e)),
        };
        let mut data = vec![0; (range.end - range.start) as usize];
        file.read_exact_at(&mut data, range.start)
            .map_err(BlobStoreError::io("read", &self.root.display(&rel)))?;
        Ok(Some(data))
    }

    /// Writes the file of `hash` unless it is there already.
    fn write_file(&self, hash: &ContentHash, data: &[u8]) -> Result<(), BlobStoreError> {
        if self.contains(hash) {
            return Ok(());
        }
        let file = self.staging_file()?;
        let mut handle = file.as_file();
        handle
            .write_all(data)
            .map_err(BlobStoreError::io("write", &file.display()))?;
        self.move_in(file, hash)
    }

    /// Plugin `plugin`'s view of the store, limited to `quota_bytes` stored.
    pub fn scoped(self: &Arc<Self>, plugin: &str, quota_bytes: u64) -> PluginBlobs {
        PluginBlobs {
            store: self.clone(),
            plugin: plugin.to_owned(),
            quota_bytes,
            max_read_bytes: u64::MAX,
        }
    }

    /// The bytes plugin `plugin` has stored.
    pub fn usage(&self, plugin: &str) -> Result<u64, BlobStoreError> {
        let txn = self.index.begin_read().map_err(index_error)?;
        let table = match txn.open_table(USAGE) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(0),
            Err(e) => return Err(index_error(e)),
        };
        Ok(table
            .get(plugin)
            .map_err(index_error)?
            .map_or(0, |v| v.value()))
    }
}

/// One plugin's view of the blob store.
pub struct PluginBlobs {
    store: Arc<BlobStore>,
    plugin: String,
    quota_bytes: u64,
    /// The largest blob a read hands the guest (its memory could hold no
    /// more): checked before the host reads a byte.
    max_read_bytes: u64,
}

fn parse_hash(hash: &str) -> Result<ContentHash, BlobError> {
    hash.parse().map_err(BlobError::InvalidHash)
}

impl From<BlobStoreError> for BlobError {
    fn from(e: BlobStoreError) -> Self {
        BlobError::Storage(e.to_string())
    }
}

impl PluginBlobs {
    /// Stores `data` under the plugin's quota and returns its hash.
    pub fn put(&self, data: &[u8]) -> Result<ContentHash, BlobError> {
        let hash = ContentHash::of(data);
        let owner_key = format!("{}\0{}", self.plugin, hash.to_hex());
        let txn = self.store.index.begin_write().map_err(index_error)?;
        {
            let mut owners = txn.open_table(OWNERS).map_err(index_error)?;
            if owners
                .get(owner_key.as_str())
                .map_err(index_error)?
                .is_some()
            {
                // Already paid for; rewrite the file if it went missing.
                self.store.write_file(&hash, data)?;
                return Ok(hash);
            }
            let mut usage = txn.open_table(USAGE).map_err(index_error)?;
            let used = usage
                .get(self.plugin.as_str())
                .map_err(index_error)?
                .map_or(0, |v| v.value());
            let size = data.len() as u64;
            let after = used + size;
            if after > self.quota_bytes {
                return Err(BlobError::QuotaExceeded(format!(
                    "blob quota exceeded: storing {size} more bytes would use {after}; the \
                     plugin's level allows {}",
                    self.quota_bytes
                )));
            }
            // Charged and written under the same write transaction: a put that
            // fails to write charges nothing.
            self.store.write_file(&hash, data)?;
            owners
                .insert(owner_key.as_str(), size)
                .map_err(index_error)?;
            usage
                .insert(self.plugin.as_str(), after)
                .map_err(index_error)?;
        }
        txn.commit().map_err(index_error)?;
        Ok(hash)
    }

    /// Reads of this view refuse blobs over `bytes` before reading them.
    pub fn reading_at_most(mut self, bytes: u64) -> Self {
        self.max_read_bytes = bytes;
        self
    }

    /// Blob `hash` (text form), verified, if the store has it. A blob larger
    /// than the reader may hold is refused from its size alone: the host
    /// never reads (or hashes) what the guest could not take.
    pub fn get(&self, hash: &str) -> Result<Option<Vec<u8>>, BlobError> {
        let hash = parse_hash(hash)?;
        match self.store.size(&hash)? {
            None => return Ok(None),
            Some(size) if size > self.max_read_bytes => {
                return Err(BlobError::QuotaExceeded(format!(
                    "blob {hash} is {size} bytes; the plugin's linear memory allows {} bytes, \
                     so it cannot be read whole",
                    self.max_read_bytes
                )));
            }
            Some(_) => {}
        }
        Ok(self.store.get(&hash)?)
    }

    /// The size of blob `hash` (text form), if the store has it.
    pub fn stat(&self, hash: &str) -> Result<Option<u64>, BlobError> {
        Ok(self.store.size(&parse_hash(hash)?)?)
    }
}

/// A call's blob store: the plugin's view, if granted and the store opened.
pub struct BlobsCtx {
    blobs: Option<PluginBlobs>,
}

impl BlobsCtx {
    fn blobs(&self) -> Result<&PluginBlobs, BlobError> {
        self.blobs.as_ref().ok_or_else(|| {
            BlobError::Storage(
                "the `blobs` capability was not granted to this plugin, or the host's blob \
                 store did not open"
                    .into(),
            )
        })
    }
}

impl CallCapability for BlobsCtx {
    fn add_to_linker<T: CallData>(
        linker: &mut Linker<T>,
        get: fn(&mut T) -> &mut Self,
    ) -> wasmtime::Result<()> {
        link_v0_1_and_v0_2!(blobs, linker, get)
    }

    fn for_call(
        host: &HostStores,
        plugin: &PluginScope<'_>,
        _: &CallScope,
    ) -> anyhow::Result<Self> {
        let blobs = plugin.granted(Capability::Blobs, &host.blobs).map(|store| {
            store
                .scoped(plugin.name, plugin.level.blob_bytes)
                .reading_at_most(plugin.level.memory_bytes as u64)
        });
        Ok(Self { blobs })
    }
}

impl blobs::Host for BlobsCtx {
    fn put(&mut self, data: Vec<u8>) -> Result<String, BlobError> {
        Ok(self.blobs()?.put(&data)?.to_string())
    }

    fn get(&mut self, hash: String) -> Result<Option<Vec<u8>>, BlobError> {
        self.blobs()?.get(&hash)
    }

    fn stat(&mut self, hash: String) -> Result<Option<u64>, BlobError> {
        self.blobs()?.stat(&hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Arc<BlobStore>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(BlobStore::open(dir.path()).unwrap());
        (dir, store)
    }

    #[test]
    fn put_get_stat_round_trip_and_survive_reopening() {
        let (dir, store) = store();
        let blobs = store.scoped("a", 1 << 20);
        let hash = blobs.put(b"weights").unwrap();
        assert_eq!(hash, ContentHash::of(b"weights"));
        let text = hash.to_string();
        assert_eq!(blobs.get(&text).unwrap().as_deref(), Some(&b"weights"[..]));
        assert_eq!(blobs.stat(&text).unwrap(), Some(7));
        let other = store.scoped("b", 1 << 20);
        assert_eq!(
            other.get(&text).unwrap().as_deref(),
            Some(&b"weights"[..]),
            "blobs are shared by hash"
        );
        drop((blobs, other, store));
        let reopened = BlobStore::open(dir.path()).unwrap();
        assert_eq!(
            reopened.get(&hash).unwrap().as_deref(),
            Some(&b"weights"[..])
        );
        assert_eq!(reopened.usage("a").unwrap(), 7);
    }

    #[test]
    fn the_quota_counts_each_blob_once_per_plugin() {
        let (_dir, store) = store();
        let blobs = store.scoped("a", 10);
        blobs.put(&[1; 8]).unwrap();
        blobs.put(&[1; 8]).unwrap();
        let err = blobs.put(&[2; 8]).unwrap_err();
        assert!(
            matches!(&err, BlobError::QuotaExceeded(m) if m.contains("would use 16") && m.contains("allows 10")),
            "{err:?}"
        );
        assert!(
            !store.contains(&ContentHash::of(&[2; 8])),
            "refused puts write nothing"
        );
        assert_eq!(store.usage("a").unwrap(), 8);
        // Another plugin storing the same bytes pays for them itself.
        store.scoped("b", 10).put(&[1; 8]).unwrap();
        assert_eq!(store.usage("b").unwrap(), 8);
    }

    #[test]
    fn bad_hashes_and_corrupt_files_are_errors() {
        let (_dir, store) = store();
        let blobs = store.scoped("a", 1 << 20);
        assert!(matches!(
            blobs.get("sha256:00"),
            Err(BlobError::InvalidHash(_))
        ));
        let missing = ContentHash::of(b"missing").to_string();
        assert_eq!(blobs.get(&missing).unwrap(), None);
        let hash = blobs.put(b"original").unwrap();
        std::fs::write(store.path_of(&hash), b"tampered").unwrap();
        let err = blobs.get(&hash.to_string()).unwrap_err();
        assert!(
            matches!(&err, BlobError::Storage(m) if m.contains("corrupt")),
            "{err:?}"
        );
        assert!(!store.contains(&hash), "the corrupt file is removed");
    }
}
