//! The `kv` capability: a key-value store per plugin, persisted in one redb
//! database file in the data directory (`kv.redb`). Entries are stored under
//! `<plugin> NUL <key>`; the host adds the prefix and plugin names cannot
//! contain NUL, so a plugin can never read or write another's keys. Usage in bytes
//! (keys plus values) is tracked in the same write transaction as every
//! change, so the quota check and the write are atomic, and
//! compare-and-swap runs inside one transaction, so concurrent updates are
//! never lost.
//!
//! Every write is durable when it returns, except log appends
//! ([`PluginKv::append`]): those commit without syncing, and a flusher thread
//! makes them durable within [`GROUP_COMMIT`] (a durable commit persists every
//! earlier one), so an audit record per call costs no fsync.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use wasmtime::component::Linker;

use super::{CallCapability, CallData, CallScope, Capability, HostStores, PluginScope};
use crate::wit::KvError;
use crate::wit::toolmesh::plugin::kv;

/// Longest key, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// Every plugin's entries, keyed `<plugin>\0<key>`.
const ENTRIES: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("toolmesh:kv");

/// Bytes used per plugin.
const USAGE: TableDefinition<'static, &str, u64> = TableDefinition::new("toolmesh:usage");

/// The newest sequence number of each log, keyed `<plugin>\0<log>`.
const LOGS: TableDefinition<'static, &str, u64> = TableDefinition::new("toolmesh:kv-logs");

/// How soon an append becomes durable.
pub const GROUP_COMMIT: Duration = Duration::from_millis(20);

/// The database shared by every plugin's store.
pub struct KvStore {
    db: Arc<DbSlot>,
    /// Set when a non-durable commit awaits the flusher.
    unsynced: Arc<AtomicBool>,
    flusher: Option<(mpsc::Sender<()>, JoinHandle<()>)>,
}

/// The open database, and what is needed to open it again: after a failed
/// write (a full disk, say) redb refuses every later write until the
/// database is opened anew, so the store does that, once the space is back.
struct DbSlot {
    path: PathBuf,
    current: RwLock<Option<Arc<Database>>>,
    /// A write failed with an I/O error: open again before the next use.
    poisoned: AtomicBool,
}

/// How long a reopen waits for transactions still using the old handle.
const REOPEN_WAIT: Duration = Duration::from_secs(2);

impl DbSlot {
    /// Opens the database file at `path`, through a confined handle on its
    /// directory (a symlink planted in its place is not followed out).
    fn open(path: &Path) -> Result<Database, redb::Error> {
        let file = crate::fs::ConfinedFile::beside(path)
            .and_then(|file| file.open_or_create())
            .map_err(redb::Error::Io)?;
        Ok(Database::builder().create_file(file)?)
    }

    /// The database to use now (opened again first if a write failed).
    fn get(&self) -> Result<Arc<Database>, KvError> {
        if self.poisoned.load(Ordering::Acquire) {
            self.reopen();
        }
        let current = match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        current.ok_or_else(|| {
            KvError::Storage(format!(
                "the kv store at {} failed to reopen after a write error (is the disk full?); \
                 it is tried again on the next call",
                self.path.display()
            ))
        })
    }

    /// Closes the failed handle (once transactions still on it end) and
    /// opens the file again; on failure the next use tries again.
    fn reopen(&self) {
        let mut slot = match self.current.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if !self.poisoned.swap(false, Ordering::AcqRel) {
            return; // Another thread reopened it meanwhile.
        }
        if let Some(old) = slot.take() {
            let started = std::time::Instant::now();
            while Arc::strong_count(&old) > 1 && started.elapsed() < REOPEN_WAIT {
                std::thread::sleep(Duration::from_millis(1));
            }
            drop(old);
        }
        match Self::open(&self.path) {
            Ok(db) => {
                tracing::info!(path = %self.path.display(), "kv store reopened after a write error");
                *slot = Some(Arc::new(db));
            }
            Err(e) => {
                tracing::error!(path = %self.path.display(), "kv store cannot reopen: {e}");
                self.poisoned.store(true, Ordering::Release);
            }
        }
    }

    /// `e` as the plugin sees it; an I/O failure marks the handle for reopening.
    fn error(&self, e: impl Into<redb::Error>) -> KvError {
        let e = e.into();
        if matches!(e, redb::Error::Io(_) | redb::Error::PreviousIo) {
            self.poisoned.store(true, Ordering::Release);
        }
        KvError::Storage(e.to_string())
    }
}

impl KvStore {
    /// Opens (creating if needed) the database at `path`, and starts the
    /// flusher that makes appends durable.
    pub fn open(path: &Path) -> Result<Self, redb::Error> {
        let db = Arc::new(DbSlot {
            path: path.to_owned(),
            current: RwLock::new(Some(Arc::new(DbSlot::open(path)?))),
            poisoned: AtomicBool::new(false),
        });
        let unsynced = Arc::new(AtomicBool::new(false));
        let (stop, stopped) = mpsc::channel::<()>();
        let flusher = {
            let (db, unsynced) = (db.clone(), unsynced.clone());
            std::thread::Builder::new()
                .name("toolmesh-kv-flush".into())
                .spawn(move || {
                    loop {
                        let last = !matches!(
                            stopped.recv_timeout(GROUP_COMMIT),
                            Err(mpsc::RecvTimeoutError::Timeout)
                        );
                        if unsynced.swap(false, Ordering::AcqRel) {
                            let synced = db
                                .get()
                                .and_then(|handle| sync(&handle).map_err(|e| db.error(e)));
                            if let Err(e) = synced {
                                unsynced.store(true, Ordering::Release);
                                tracing::error!("kv: appends not yet durable: {e}");
                            }
                        }
                        if last {
                            return;
                        }
                    }
                })
                .map_err(redb::Error::Io)?
        };
        Ok(Self {
            db,
            unsynced,
            flusher: Some((stop, flusher)),
        })
    }

    /// The store of plugin `plugin`, limited to `quota_bytes`.
    pub fn scoped(self: &Arc<Self>, plugin: &str, quota_bytes: u64) -> PluginKv {
        PluginKv {
            store: self.clone(),
            prefix: format!("{plugin}\0"),
            plugin: plugin.to_owned(),
            quota_bytes,
        }
    }
}

/// A durable commit: persists every non-durable commit before it.
fn sync(db: &Database) -> Result<(), redb::Error> {
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::Immediate)?;
    txn.commit()?;
    Ok(())
}

impl Drop for KvStore {
    /// Stops the flusher after a last sync, so that reopening the database
    /// right after finds every append.
    fn drop(&mut self) {
        if let Some((stop, flusher)) = self.flusher.take() {
            drop(stop);
            let _ = flusher.join();
        }
    }
}

/// One plugin's view of the store.
pub struct PluginKv {
    store: Arc<KvStore>,
    prefix: String,
    plugin: String,
    quota_bytes: u64,
}

fn check_key(key: &str) -> Result<(), KvError> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(KvError::InvalidKey(format!(
            "keys are 1 to {MAX_KEY_BYTES} bytes; this one is {}",
            key.len()
        )));
    }
    Ok(())
}

impl PluginKv {
    /// `e` as the plugin sees it (an I/O failure has the store reopen).
    fn fail(&self, e: impl Into<redb::Error>) -> KvError {
        self.store.db.error(e)
    }

    fn full_key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        check_key(key)?;
        let db = self.store.db.get()?;
        let txn = db.begin_read().map_err(|e| self.fail(e))?;
        let table = match txn.open_table(ENTRIES) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(self.fail(e)),
        };
        let full = self.full_key(key);
        Ok(table
            .get(full.as_str())
            .map_err(|e| self.fail(e))?
            .map(|v| v.value().to_vec()))
    }

    /// Sets `key`.
    pub fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
        self.compare_and_swap_inner(key, None, Some(value))
            .map(|_| ())
    }

    /// Removes `key`; true if it was set.
    pub fn delete(&self, key: &str) -> Result<bool, KvError> {
        self.compare_and_swap_inner(key, None, None)
    }

    /// Replaces `key`'s value with `new` if it is `expected`.
    pub fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, KvError> {
        self.compare_and_swap_inner(key, Some(expected), new)
    }

    /// With `expected: None` the write is unconditional and returns whether
    /// the key was set before; with `Some(e)` it happens only if the current
    /// value is `e`, and returns whether it happened.
    fn compare_and_swap_inner(
        &self,
        key: &str,
        expected: Option<Option<&[u8]>>,
        new: Option<&[u8]>,
    ) -> Result<bool, KvError> {
        check_key(key)?;
        let db = self.store.db.get()?;
        let txn = db.begin_write().map_err(|e| self.fail(e))?;
        let outcome = {
            let mut table = txn.open_table(ENTRIES).map_err(|e| self.fail(e))?;
            let mut usage = txn.open_table(USAGE).map_err(|e| self.fail(e))?;
            let full = self.full_key(key);
            let current = table
                .get(full.as_str())
                .map_err(|e| self.fail(e))?
                .map(|v| v.value().to_vec());
            if let Some(expected) = expected
                && current.as_deref() != expected
            {
                return Ok(false);
            }
            let entry = |value: Option<&[u8]>| value.map_or(0, |v| (key.len() + v.len()) as u64);
            let used = self.used(&usage)?;
            let after = used - entry(current.as_deref()).min(used) + entry(new);
            if after > self.quota_bytes && entry(new) > entry(current.as_deref()) {
                return Err(self.over_quota("write", after));
            }
            match new {
                Some(value) => {
                    table
                        .insert(full.as_str(), value)
                        .map_err(|e| self.fail(e))?;
                }
                None => {
                    table.remove(full.as_str()).map_err(|e| self.fail(e))?;
                }
            }
            usage
                .insert(self.plugin.as_str(), after)
                .map_err(|e| self.fail(e))?;
            match expected {
                Some(_) => true,
                None => current.is_some(),
            }
        };
        txn.commit().map_err(|e| self.fail(e))?;
        Ok(outcome)
    }

    /// Bytes the plugin uses, as `usage` records them.
    fn used(&self, usage: &impl ReadableTable<&'static str, u64>) -> Result<u64, KvError> {
        Ok(usage
            .get(self.plugin.as_str())
            .map_err(|e| self.fail(e))?
            .map_or(0, |v| v.value()))
    }

    /// The refusal of a `what` (a write, an append) that would bring the
    /// plugin's usage to `after` bytes.
    fn over_quota(&self, what: &str, after: u64) -> KvError {
        KvError::QuotaExceeded(format!(
            "kv quota exceeded: this {what} would use {after} bytes; the plugin's level allows {}",
            self.quota_bytes
        ))
    }

    /// Appends `value` to log `log` at `<log><seq:020>`; returns `seq`. With
    /// `keep > 0`, removes the entry `keep` places behind. Durable within
    /// [`GROUP_COMMIT`].
    pub fn append(&self, log: &str, value: &[u8], keep: u32) -> Result<u64, KvError> {
        check_key(&format!("{log}{:020}", 0))?;
        let db = self.store.db.get()?;
        let mut txn = db.begin_write().map_err(|e| self.fail(e))?;
        txn.set_durability(Durability::None)
            .map_err(|e| self.fail(e))?;
        let seq = {
            let mut logs = txn.open_table(LOGS).map_err(|e| self.fail(e))?;
            let mut table = txn.open_table(ENTRIES).map_err(|e| self.fail(e))?;
            let mut usage = txn.open_table(USAGE).map_err(|e| self.fail(e))?;
            let log_key = self.full_key(log);
            let head = logs
                .get(log_key.as_str())
                .map_err(|e| self.fail(e))?
                .map(|v| v.value());
            let seq = head.unwrap_or(0) + 1;
            // A new log's sequence row is stored too, for good: it is charged
            // (its name and the 8-byte number) like any entry.
            let sequence_row = if head.is_none() {
                (log.len() + 8) as u64
            } else {
                0
            };
            let entry_key = |seq: u64| format!("{log}{seq:020}");
            let mut used = self.used(&usage)?;
            if keep > 0 && seq > u64::from(keep) {
                let old = entry_key(seq - u64::from(keep));
                if let Some(removed) = table
                    .remove(self.full_key(&old).as_str())
                    .map_err(|e| self.fail(e))?
                {
                    used = used.saturating_sub((old.len() + removed.value().len()) as u64);
                }
            }
            let key = entry_key(seq);
            let after = used + (key.len() + value.len()) as u64 + sequence_row;
            if after > self.quota_bytes {
                return Err(self.over_quota("append", after));
            }
            table
                .insert(self.full_key(&key).as_str(), value)
                .map_err(|e| self.fail(e))?;
            usage
                .insert(self.plugin.as_str(), after)
                .map_err(|e| self.fail(e))?;
            logs.insert(log_key.as_str(), seq)
                .map_err(|e| self.fail(e))?;
            seq
        };
        txn.commit().map_err(|e| self.fail(e))?;
        self.store.unsynced.store(true, Ordering::Release);
        Ok(seq)
    }

    /// The newest sequence number of log `log` (0 if none).
    pub fn log_head(&self, log: &str) -> Result<u64, KvError> {
        let db = self.store.db.get()?;
        let txn = db.begin_read().map_err(|e| self.fail(e))?;
        let logs = match txn.open_table(LOGS) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(0),
            Err(e) => return Err(self.fail(e)),
        };
        Ok(logs
            .get(self.full_key(log).as_str())
            .map_err(|e| self.fail(e))?
            .map_or(0, |v| v.value()))
    }

    /// Keys starting with `prefix`, in order, at most `limit`.
    pub fn list_keys(&self, prefix: &str, limit: u32) -> Result<Vec<String>, KvError> {
        let db = self.store.db.get()?;
        let txn = db.begin_read().map_err(|e| self.fail(e))?;
        let table = match txn.open_table(ENTRIES) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(self.fail(e)),
        };
        let start = self.full_key(prefix);
        let mut keys = Vec::new();
        for entry in table.range(start.as_str()..).map_err(|e| self.fail(e))? {
            let (key, _) = entry.map_err(|e| self.fail(e))?;
            let key = key.value();
            if !key.starts_with(start.as_str()) || keys.len() >= limit as usize {
                break;
            }
            keys.push(key[self.prefix.len()..].to_owned());
        }
        Ok(keys)
    }
}

/// A call's kv store: the plugin's view, if granted and the store opened.
pub struct KvCtx {
    kv: Option<PluginKv>,
}

impl KvCtx {
    fn kv(&self) -> Result<&PluginKv, KvError> {
        self.kv.as_ref().ok_or_else(|| {
            KvError::Storage(
                "the `kv` capability was not granted to this plugin, or the host's kv store \
                 did not open"
                    .into(),
            )
        })
    }
}

impl CallCapability for KvCtx {
    fn add_to_linker<T: CallData>(
        linker: &mut Linker<T>,
        get: fn(&mut T) -> &mut Self,
    ) -> wasmtime::Result<()> {
        link_v0_1_and_v0_2!(kv, linker, get)
    }

    fn for_call(
        host: &HostStores,
        plugin: &PluginScope<'_>,
        _: &CallScope,
    ) -> anyhow::Result<Self> {
        let kv = plugin
            .granted(Capability::Kv, &host.kv)
            .map(|store| store.scoped(plugin.name, plugin.level.kv_bytes));
        Ok(Self { kv })
    }
}

impl kv::Host for KvCtx {
    fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, KvError> {
        self.kv()?.get(&key)
    }

    fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), KvError> {
        self.kv()?.set(&key, &value)
    }

    fn delete(&mut self, key: String) -> Result<bool, KvError> {
        self.kv()?.delete(&key)
    }

    fn compare_and_swap(
        &mut self,
        key: String,
        expected: Option<Vec<u8>>,
        new: Option<Vec<u8>>,
    ) -> Result<bool, KvError> {
        self.kv()?
            .compare_and_swap(&key, expected.as_deref(), new.as_deref())
    }

    fn list_keys(&mut self, prefix: String, limit: u32) -> Result<Vec<String>, KvError> {
        self.kv()?.list_keys(&prefix, limit)
    }

    fn append(&mut self, log: String, value: Vec<u8>, keep: u32) -> Result<u64, KvError> {
        self.kv()?.append(&log, &value, keep)
    }

    fn log_head(&mut self, log: String) -> Result<u64, KvError> {
        self.kv()?.log_head(&log)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Arc<KvStore>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(KvStore::open(&dir.path().join("kv.redb")).unwrap());
        (dir, store)
    }

    #[test]
    fn plugins_are_isolated_and_values_persist() {
        let (dir, store) = store();
        let a = store.scoped("a", 1 << 20);
        let b = store.scoped("b", 1 << 20);
        a.set("k", b"from a").unwrap();
        assert_eq!(b.get("k").unwrap(), None);
        assert_eq!(a.get("k").unwrap().as_deref(), Some(&b"from a"[..]));
        drop((a, b, store));
        let reopened = Arc::new(KvStore::open(&dir.path().join("kv.redb")).unwrap());
        assert_eq!(
            reopened.scoped("a", 1 << 20).get("k").unwrap().as_deref(),
            Some(&b"from a"[..])
        );
    }

    #[test]
    fn compare_and_swap_and_delete() {
        let (_dir, store) = store();
        let kv = store.scoped("p", 1 << 20);
        assert!(kv.compare_and_swap("n", None, Some(b"1")).unwrap());
        assert!(
            !kv.compare_and_swap("n", None, Some(b"2")).unwrap(),
            "expected absent, is set"
        );
        assert!(!kv.compare_and_swap("n", Some(b"0"), Some(b"2")).unwrap());
        assert!(kv.compare_and_swap("n", Some(b"1"), Some(b"2")).unwrap());
        assert_eq!(kv.get("n").unwrap().as_deref(), Some(&b"2"[..]));
        assert!(kv.delete("n").unwrap());
        assert!(!kv.delete("n").unwrap());
    }

    #[test]
    fn the_quota_counts_keys_and_values_and_frees_on_delete() {
        let (_dir, store) = store();
        let kv = store.scoped("p", 100);
        kv.set("a", &[0; 60]).unwrap(); // 61 bytes
        let err = kv.set("b", &[0; 60]).unwrap_err();
        assert!(
            matches!(&err, KvError::QuotaExceeded(m) if m.contains("122 bytes") && m.contains("allows 100")),
            "{err:?}"
        );
        assert_eq!(
            kv.get("b").unwrap(),
            None,
            "a refused write changes nothing"
        );
        kv.set("a", &[0; 10]).unwrap(); // shrinking is always allowed
        kv.set("b", &[0; 60]).unwrap(); // 11 + 61 = 72
        kv.delete("b").unwrap();
        kv.set("c", &[0; 80]).unwrap(); // 11 + 81 = 92
    }

    #[test]
    fn a_new_log_pays_for_its_sequence_row() {
        let (_dir, store) = store();
        let kv = store.scoped("p", 4_096);
        // Each new log stores a row that outlives its entries (the plugin
        // deletes the entry): without a charge, rows would be free forever.
        let mut stored = 0;
        let refused = (0..10_000).find_map(|i| {
            let log = format!("log{i:05}");
            match kv.append(&log, b"", 0) {
                Ok(seq) => {
                    kv.delete(&format!("{log}{seq:020}")).expect("delete");
                    stored += 1;
                    None
                }
                Err(e) => Some(e),
            }
        });
        assert!(
            matches!(&refused, Some(KvError::QuotaExceeded(_))),
            "{refused:?} after {stored}"
        );
        assert!(
            (200..=256).contains(&stored),
            "{stored} sequence rows of 16 bytes in 4 KiB"
        );
    }

    #[test]
    fn appends_number_keep_the_newest_and_survive_reopening() {
        let (dir, store) = store();
        let kv = store.scoped("p", 1 << 20);
        for i in 1..=5u64 {
            assert_eq!(
                kv.append("audit/", format!("r{i}").as_bytes(), 3).unwrap(),
                i
            );
        }
        assert_eq!(kv.log_head("audit/").unwrap(), 5);
        assert_eq!(kv.log_head("other/").unwrap(), 0);
        assert_eq!(
            kv.list_keys("audit/", 10).unwrap(),
            [
                "audit/00000000000000000003",
                "audit/00000000000000000004",
                "audit/00000000000000000005"
            ]
        );
        assert_eq!(store.scoped("q", 1 << 20).log_head("audit/").unwrap(), 0);
        let small = store.scoped("tiny", 30);
        assert!(matches!(
            small.append("l/", &[0; 40], 0),
            Err(KvError::QuotaExceeded(_))
        ));
        drop((kv, small, store));
        let reopened = Arc::new(KvStore::open(&dir.path().join("kv.redb")).unwrap());
        let kv = reopened.scoped("p", 1 << 20);
        assert_eq!(
            kv.get("audit/00000000000000000005").unwrap().as_deref(),
            Some(&b"r5"[..])
        );
        assert_eq!(kv.append("audit/", b"r6", 3).unwrap(), 6);
    }

    #[test]
    fn keys_are_checked_and_listed_by_prefix() {
        let (_dir, store) = store();
        let kv = store.scoped("p", 1 << 20);
        assert!(matches!(kv.set("", b"x"), Err(KvError::InvalidKey(_))));
        assert!(matches!(
            kv.get(&"k".repeat(2000)),
            Err(KvError::InvalidKey(_))
        ));
        for key in ["net/a", "net/b", "other", "net/c"] {
            kv.set(key, b"1").unwrap();
        }
        assert_eq!(
            kv.list_keys("net/", 10).unwrap(),
            ["net/a", "net/b", "net/c"]
        );
        assert_eq!(kv.list_keys("net/", 2).unwrap(), ["net/a", "net/b"]);
        assert_eq!(kv.list_keys("", 10).unwrap().len(), 4);
    }
}
