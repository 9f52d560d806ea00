//! API keys: `toolmesh client add|list|revoke` and their lookup on every
//! request. A key is 32 random bytes shown once (`tm_` + base64url); the
//! data directory keeps only its BLAKE3 hash, with the client's name, agent,
//! scopes, zone and limits, in `clients.json` (mode 0600, replaced
//! atomically). A running host re-reads the file when it changes, so a
//! revocation takes effect on the next request.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::http::config::ClientLimits;
use crate::identity::{Scope, Zone};

/// The file, in the data directory.
pub const FILE: &str = "clients.json";

/// Every key starts with this, so a key is told from a JWT at a glance
/// (and secret scanners can find leaked ones).
pub const PREFIX: &str = "tm_";

/// Errors managing clients.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not what this host writes.
    #[error(
        "{path} is damaged ({reason}); restore it from a backup or remove it and add the clients again"
    )]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// What was asked makes no sense.
    #[error("{0}")]
    Invalid(String),
}

/// One client, as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClientRecord {
    /// Its name (what the audit log shows).
    pub name: String,
    /// The agent it authenticates as.
    pub agent: String,
    /// What it may do.
    pub scopes: Vec<Scope>,
    /// Its trust zone.
    pub zone: Zone,
    /// Its own limits (none: the host's defaults).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<ClientLimits>,
    /// BLAKE3 of its key, hex.
    pub key_hash: String,
    /// When it was added (ms since the Unix epoch).
    pub created_ms: u64,
    /// When it was revoked, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_ms: Option<u64>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientsFile {
    clients: Vec<ClientRecord>,
}

/// A new client's settings.
#[derive(Debug, Clone)]
pub struct NewClient {
    /// Its name: 1 to 64 of `[A-Za-z0-9._-]`.
    pub name: String,
    /// The agent it authenticates as.
    pub agent: String,
    /// What it may do (empty: `tools`).
    pub scopes: Vec<Scope>,
    /// Its trust zone.
    pub zone: Zone,
    /// Its own limits.
    pub limits: Option<ClientLimits>,
}

/// The clients file of a data directory.
#[derive(Debug, Clone)]
pub struct ClientStore {
    path: PathBuf,
}

impl ClientStore {
    /// The store in `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            path: data_dir.join(FILE),
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every client, revoked ones too, in the order added.
    pub fn list(&self) -> Result<Vec<ClientRecord>, KeyError> {
        Ok(self.read()?.clients)
    }

    /// Adds a client and returns its key (the only time it is seen).
    pub fn add(&self, new: NewClient) -> Result<String, KeyError> {
        check_name("client name", &new.name)?;
        check_name("agent", &new.agent)?;
        let mut file = self.read()?;
        if file
            .clients
            .iter()
            .any(|c| c.name == new.name && c.revoked_ms.is_none())
        {
            return Err(KeyError::Invalid(format!(
                "a client named `{}` exists: revoke it first (`toolmesh client revoke {}`)",
                new.name, new.name
            )));
        }
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret)
            .map_err(|e| KeyError::Invalid(format!("no randomness for a key: {e}")))?;
        let key = format!(
            "{PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
        );
        let mut scopes = if new.scopes.is_empty() {
            vec![Scope::Tools]
        } else {
            new.scopes
        };
        scopes.sort();
        scopes.dedup();
        file.clients.push(ClientRecord {
            name: new.name,
            agent: new.agent,
            scopes,
            zone: new.zone,
            limits: new.limits,
            key_hash: hash_key(&key),
            created_ms: now_ms(),
            revoked_ms: None,
        });
        self.write(&file)?;
        Ok(key)
    }

    /// Revokes the client `name`; false if there is no live one.
    pub fn revoke(&self, name: &str) -> Result<bool, KeyError> {
        let mut file = self.read()?;
        let Some(client) = file
            .clients
            .iter_mut()
            .find(|c| c.name == name && c.revoked_ms.is_none())
        else {
            return Ok(false);
        };
        client.revoked_ms = Some(now_ms());
        self.write(&file)?;
        Ok(true)
    }

    fn read(&self) -> Result<ClientsFile, KeyError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(ClientsFile::default());
            }
            Err(source) => {
                return Err(KeyError::Io {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        serde_json::from_str(&text).map_err(|e| KeyError::Damaged {
            path: self.path.clone(),
            reason: e.to_string(),
        })
    }

    fn write(&self, file: &ClientsFile) -> Result<(), KeyError> {
        let io = |source| KeyError::Io {
            path: self.path.clone(),
            source,
        };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
        let json = serde_json::to_vec_pretty(file).map_err(|e| KeyError::Invalid(e.to_string()))?;
        std::io::Write::write_all(&mut tmp, &json).map_err(io)?;
        tmp.as_file().sync_all().map_err(io)?;
        // NamedTempFile is created 0600: only the host's user reads hashes.
        tmp.persist(&self.path).map_err(|e| io(e.error))?;
        Ok(())
    }
}

fn check_name(what: &str, name: &str) -> Result<(), KeyError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@:".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(KeyError::Invalid(format!(
            "the {what} `{name}` must be 1 to 64 letters, digits or `._-@:`"
        )))
    }
}

/// BLAKE3 of a key, hex. Keys are 256 random bits, so a fast hash is
/// enough: there is nothing to guess from it.
pub fn hash_key(key: &str) -> String {
    blake3::hash(key.as_bytes()).to_hex().to_string()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// What a key lookup found.
#[derive(Debug)]
pub enum KeyLookup {
    /// A live client.
    Client(Arc<ClientRecord>),
    /// The key was revoked.
    Revoked(Arc<ClientRecord>),
    /// No client has this key.
    Unknown,
}

/// The live view of the clients file: re-read when its modification time
/// or size changes (one `stat` per lookup), so revocations and new clients
/// take effect on the next request.
pub struct KeyIndex {
    store: ClientStore,
    state: Mutex<IndexState>,
}

#[derive(Default)]
struct IndexState {
    stamp: Option<(SystemTime, u64)>,
    by_hash: Arc<HashMap<blake3::Hash, Arc<ClientRecord>>>,
}

impl KeyIndex {
    /// The index of `store`.
    pub fn new(store: ClientStore) -> Self {
        Self {
            store,
            state: Mutex::new(IndexState::default()),
        }
    }

    /// The client whose key is `key`.
    pub fn lookup(&self, key: &str) -> Result<KeyLookup, KeyError> {
        let hash = blake3::hash(key.as_bytes());
        let index = self.current()?;
        Ok(match index.get(&hash) {
            Some(c) if c.revoked_ms.is_some() => KeyLookup::Revoked(c.clone()),
            Some(c) => KeyLookup::Client(c.clone()),
            None => KeyLookup::Unknown,
        })
    }

    fn current(&self) -> Result<Arc<HashMap<blake3::Hash, Arc<ClientRecord>>>, KeyError> {
        let stamp = match std::fs::metadata(self.store.path()) {
            Ok(m) => Some((m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(KeyError::Io {
                    path: self.store.path().to_owned(),
                    source,
                });
            }
        };
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if state.stamp != stamp {
            let mut by_hash = HashMap::new();
            for client in self.store.list()? {
                let Ok(hash) = blake3::Hash::from_hex(&client.key_hash) else {
                    continue;
                };
                // A revoked entry never shadows a live one with the same key.
                let client = Arc::new(client);
                let keep = by_hash
                    .get(&hash)
                    .is_some_and(|c: &Arc<ClientRecord>| c.revoked_ms.is_none());
                if !keep {
                    by_hash.insert(hash, client);
                }
            }
            state.by_hash = Arc::new(by_hash);
            state.stamp = stamp;
        }
        Ok(state.by_hash.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(name: &str) -> NewClient {
        NewClient {
            name: name.into(),
            agent: "alice".into(),
            scopes: vec![],
            zone: Zone::External,
            limits: None,
        }
    }

    #[test]
    fn keys_are_stored_hashed_and_revocation_is_seen_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = ClientStore::new(dir.path());
        let index = KeyIndex::new(store.clone());
        let key = store.add(new("laptop")).unwrap();
        assert!(key.starts_with(PREFIX));
        let text = std::fs::read_to_string(store.path()).unwrap();
        assert!(!text.contains(&key), "the key itself is never stored");
        assert!(matches!(index.lookup(&key).unwrap(), KeyLookup::Client(c) if c.agent == "alice"));
        assert!(matches!(
            index.lookup("tm_nope").unwrap(),
            KeyLookup::Unknown
        ));
        assert!(store.revoke("laptop").unwrap());
        assert!(!store.revoke("laptop").unwrap());
        assert!(matches!(index.lookup(&key).unwrap(), KeyLookup::Revoked(_)));
    }

    #[test]
    fn names_are_checked_and_unique() {
        let dir = tempfile::tempdir().unwrap();
        let store = ClientStore::new(dir.path());
        store.add(new("a")).unwrap();
        assert!(
            store
                .add(new("a"))
                .unwrap_err()
                .to_string()
                .contains("revoke it first")
        );
        assert!(store.add(new("bad name")).is_err());
        assert_eq!(store.list().unwrap()[0].scopes, vec![Scope::Tools]);
    }

    #[test]
    fn a_damaged_file_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let store = ClientStore::new(dir.path());
        std::fs::write(store.path(), "{").unwrap();
        let err = store.list().unwrap_err().to_string();
        assert!(err.contains("damaged"), "{err}");
    }
}
