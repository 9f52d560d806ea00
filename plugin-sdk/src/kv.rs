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

//!
//! Outside a WebAssembly host (in a native unit test), the functions work on
//! an in-memory store private to the calling thread, so plugin logic can be
//! unit-tested natively.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ToolError;
use crate::bindings::toolmesh::plugin::kv as wit;

pub use wit::KvError;

#[cfg(not(target_family = "wasm"))]
use native as backend;
#[cfg(target_family = "wasm")]
use wit as backend;

/// The value of `key`, if set.
pub fn get(key: &str) -> Result<Option<Vec<u8>>, KvError> {
    backend::get(key)
}

/// Sets `key` to `value`.
pub fn set(key: &str, value: &[u8]) -> Result<(), KvError> {
    backend::set(key, value)
}

/// Removes `key`; true if it was set.
pub fn delete(key: &str) -> Result<bool, KvError> {
    backend::delete(key)
}

/// Atomically replaces `key`'s value with `new` if it is `expected`
/// (`None`: not set; a `new` of `None` removes the key). True if it did.
pub fn compare_and_swap(
    key: &str,
    expected: Option<&[u8]>,
    new: Option<&[u8]>,
) -> Result<bool, KvError> {
    backend::compare_and_swap(key, expected, new)
}

/// Keys starting with `prefix`, in order, at most `limit`.
pub fn list_keys(prefix: &str, limit: u32) -> Result<Vec<String>, KvError> {
    backend::list_keys(prefix, limit)
}

/// The value of `key` decoded from JSON, if set.
pub fn get_json<T: DeserializeOwned>(key: &str) -> Result<Option<T>, ToolError> {
    get(key)?
        .map(|bytes| {
            serde_json::from_slice(&bytes)
                .map_err(|e| ToolError::failed(format!("kv value `{key}` is not valid: {e}")))
        })
        .transpose()
}

/// Sets `key` to `value` as JSON.
pub fn set_json<T: Serialize>(key: &str, value: &T) -> Result<(), ToolError> {
    let bytes = serde_json::to_vec(value)
        .map_err(|e| ToolError::failed(format!("cannot encode kv value `{key}`: {e}")))?;
    Ok(set(key, &bytes)?)
}

/// Atomically updates the JSON value of `key`: `f` gets the current value
/// and returns the new one (`None` removes the key) and a result. When
/// another call changed the key in between, `f` runs again on the newer
/// value, so concurrent updates are never lost. An error from `f` changes
/// nothing.
pub fn update_json<T, R>(
    key: &str,
    mut f: impl FnMut(Option<T>) -> Result<(Option<T>, R), ToolError>,
) -> Result<R, ToolError>
where
    T: Serialize + DeserializeOwned,
{
    loop {
        let current = get(key)?;
        let value = current
            .as_deref()
            .map(serde_json::from_slice)
            .transpose()
            .map_err(|e| ToolError::failed(format!("kv value `{key}` is not valid: {e}")))?;
        let (new, result) = f(value)?;
        let new = new
            .map(|v| serde_json::to_vec(&v))
            .transpose()
            .map_err(|e| ToolError::failed(format!("cannot encode kv value `{key}`: {e}")))?;
        if compare_and_swap(key, current.as_deref(), new.as_deref())? {
            return Ok(result);
        }
    }
}

/// Appends `value` to the log named `log` (a key prefix): it is stored at
/// `<log><sequence as 20 digits>`, so [`list_keys`] returns entries in
/// order, and the sequence (from 1) is returned. One atomic step, and cheap:
/// the host group-commits appends (durable within 20 ms). With `keep` above
/// 0 the log holds only the newest `keep` entries.
pub fn append(log: &str, value: &[u8], keep: u32) -> Result<u64, KvError> {
    backend::append(log, value, keep)
}

/// The sequence number of the newest entry of `log` (0 if none).
pub fn log_head(log: &str) -> Result<u64, KvError> {
    backend::log_head(log)
}

/// Appends `record` as JSON to the log `log` (see [`append`]).
pub fn append_json<T: Serialize>(log: &str, record: &T, keep: u32) -> Result<u64, ToolError> {
    let bytes = serde_json::to_vec(record)
        .map_err(|e| ToolError::failed(format!("cannot encode a `{log}` record: {e}")))?;
    Ok(append(log, &bytes, keep)?)
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

/// The in-memory store native builds use.
#[cfg(not(target_family = "wasm"))]
mod native {
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    use super::KvError;

    thread_local! {
        static STORE: RefCell<BTreeMap<String, Vec<u8>>> = const { RefCell::new(BTreeMap::new()) };
    }

    fn check(key: &str) -> Result<(), KvError> {
        if key.is_empty() || key.len() > 1024 {
            return Err(KvError::InvalidKey(format!(
                "keys are 1 to 1024 bytes; this one is {}",
                key.len()
            )));
        }
        Ok(())
    }

    pub fn get(key: &str) -> Result<Option<Vec<u8>>, KvError> {
        check(key)?;
        Ok(STORE.with(|s| s.borrow().get(key).cloned()))
    }

    pub fn set(key: &str, value: &[u8]) -> Result<(), KvError> {
        check(key)?;
        STORE.with(|s| s.borrow_mut().insert(key.to_owned(), value.to_vec()));
        Ok(())
    }

    pub fn delete(key: &str) -> Result<bool, KvError> {
        check(key)?;
        Ok(STORE.with(|s| s.borrow_mut().remove(key).is_some()))
    }

    pub fn compare_and_swap(
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, KvError> {
        check(key)?;
        STORE.with(|s| {
            let mut store = s.borrow_mut();
            if store.get(key).map(Vec::as_slice) != expected {
                return Ok(false);
            }
            match new {
                Some(value) => store.insert(key.to_owned(), value.to_vec()),
                None => store.remove(key),
            };
            Ok(true)
        })
    }

    thread_local! {
        static LOGS: RefCell<BTreeMap<String, u64>> = const { RefCell::new(BTreeMap::new()) };
    }

    pub fn append(log: &str, value: &[u8], keep: u32) -> Result<u64, KvError> {
        check(&format!("{log}{:020}", 0))?;
        let seq = LOGS.with(|l| {
            let mut logs = l.borrow_mut();
            let seq = logs.get(log).copied().unwrap_or(0) + 1;
            logs.insert(log.to_owned(), seq);
            seq
        });
        if keep > 0 && seq > u64::from(keep) {
            delete(&format!("{log}{:020}", seq - u64::from(keep)))?;
        }
        set(&format!("{log}{seq:020}"), value)?;
        Ok(seq)
    }

    pub fn log_head(log: &str) -> Result<u64, KvError> {
        Ok(LOGS.with(|l| l.borrow().get(log).copied().unwrap_or(0)))
    }

    pub fn list_keys(prefix: &str, limit: u32) -> Result<Vec<String>, KvError> {
        Ok(STORE.with(|s| {
            s.borrow()
                .range(prefix.to_owned()..)
                .take_while(|(k, _)| k.starts_with(prefix))
                .take(limit as usize)
                .map(|(k, _)| k.clone())
                .collect()
        }))
    }
}
