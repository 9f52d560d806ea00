//! Each plugin's lifecycle state as the operator set it (enabled, paused,
//! disabled), kept in `<data>/lifecycle/plugins.json` so that it survives a
//! restart. Only plugins that are not enabled are written: a plugin the
//! file does not name is enabled.

use crate::fs::ConfinedFile;
use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// What the operator has made of a plugin.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PluginState {
    /// Loaded and serving.
    #[default]
    Enabled,
    /// Listed, but every call is refused ("paused by the operator").
    Paused,
    /// Not loaded: its tools are not listed.
    Disabled,
}

impl PluginState {
    /// The state's name.
    pub fn name(self) -> &'static str {
        match self {
            PluginState::Enabled => "enabled",
            PluginState::Paused => "paused",
            PluginState::Disabled => "disabled",
        }
    }
}

/// A state and why it was set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateRecord {
    /// The state.
    pub state: PluginState,
    /// Why, as the operator said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When it was set (Unix ms).
    #[serde(default)]
    pub since_ms: u64,
}

/// Every plugin's state, persisted.
#[derive(Debug, Default)]
pub struct PluginStates {
    file: Option<ConfinedFile>,
    records: Mutex<BTreeMap<String, StateRecord>>,
}

impl PluginStates {
    /// The states kept in `path` (none: in memory only). A missing file is
    /// every plugin enabled; an unreadable one is an error naming it.
    pub fn open(file: Option<ConfinedFile>) -> Result<Self, String> {
        let records = match &file {
            Some(file) => match file.read() {
                Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                    format!(
                        "{} is not a valid plugin state file ({e}); fix or remove it",
                        file
                    )
                })?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
                Err(e) => return Err(format!("cannot read {}: {e}", file)),
            },
            None => BTreeMap::new(),
        };
        Ok(Self {
            file,
            records: Mutex::new(records),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, StateRecord>> {
        match self.records.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The state of `plugin`.
    pub fn get(&self, plugin: &str) -> StateRecord {
        self.lock().get(plugin).cloned().unwrap_or_default()
    }

    /// Plugins that are disabled.
    pub fn disabled(&self) -> Vec<String> {
        self.lock()
            .iter()
            .filter(|(_, r)| r.state == PluginState::Disabled)
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// Sets `plugin`'s state and writes the file; `Err` (and nothing
    /// changes) if it cannot be written.
    pub fn set(&self, plugin: &str, record: StateRecord) -> Result<(), String> {
        let mut records = self.lock();
        let mut next = records.clone();
        if record.state == PluginState::Enabled {
            next.remove(plugin);
        } else {
            next.insert(plugin.to_owned(), record);
        }
        if let Some(file) = &self.file {
            let bytes = serde_json::to_vec_pretty(&next).map_err(|e| e.to_string())?;
            file.write_atomically(&bytes)
                .map_err(|e| format!("cannot write {}: {e}", file))?;
        }
        *records = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_survive_reopening_and_enabled_is_the_default() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::sync::Arc::new(crate::fs::Confined::open(dir.path()).unwrap());
        let file = || Some(ConfinedFile::new(root.clone(), "lifecycle/plugins.json"));
        let states = PluginStates::open(file()).unwrap();
        assert_eq!(states.get("hello").state, PluginState::Enabled);
        let paused = StateRecord {
            state: PluginState::Paused,
            reason: Some("noisy".into()),
            since_ms: 7,
        };
        states.set("hello", paused.clone()).unwrap();
        states
            .set(
                "neural",
                StateRecord {
                    state: PluginState::Disabled,
                    ..StateRecord::default()
                },
            )
            .unwrap();
        let again = PluginStates::open(file()).unwrap();
        assert_eq!(again.get("hello"), paused);
        assert_eq!(again.disabled(), vec!["neural".to_owned()]);
        again.set("neural", StateRecord::default()).unwrap();
        assert!(PluginStates::open(file()).unwrap().disabled().is_empty());
    }

    #[test]
    fn a_corrupt_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plugins.json");
        std::fs::write(&path, "{not json").unwrap();
        let e = PluginStates::open(Some(ConfinedFile::beside(&path).unwrap())).unwrap_err();
        assert!(
            e.contains("plugins.json") && e.contains("fix or remove"),
            "{e}"
        );
    }
}
