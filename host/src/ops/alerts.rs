//! Alerts: raised by the rules in `toolmesh.toml` (see
//! [`crate::monitor::alerting`]), recorded in `<data>/alerts.json`,
//! logged, shown until an operator acknowledges them. A rule does not raise
//! a second alert for the same subject while one is unacknowledged.

use crate::fs::ConfinedFile;
use std::sync::Mutex;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::audit::unix_ms;

/// How many alerts are kept (the oldest acknowledged ones go first).
pub const KEEP: usize = 500;

/// One alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Its number.
    pub id: u64,
    /// The rule that raised it.
    pub rule: String,
    /// What it is about (a plugin, a tool, a budget, a peer).
    pub subject: String,
    /// What happened.
    pub message: String,
    /// When (Unix ms).
    pub time_ms: u64,
    /// Whether an operator acknowledged it.
    pub acknowledged: bool,
    /// Who did.
    pub acknowledged_by: Option<String>,
}

/// The alerts, persisted.
#[derive(Debug)]
pub struct AlertStore {
    file: Option<ConfinedFile>,
    alerts: Mutex<Vec<Alert>>,
    live: broadcast::Sender<Alert>,
}

impl AlertStore {
    /// The alerts kept in `file` (none: in memory only); an unreadable
    /// file starts empty, with a warning.
    pub fn open(file: Option<ConfinedFile>) -> Self {
        let alerts = file
            .as_ref()
            .and_then(|f| match f.read() {
                Ok(bytes) => serde_json::from_slice(&bytes)
                    .inspect_err(|e| {
                        tracing::warn!(path = %f, "alerts file unreadable, starting empty: {e}");
                    })
                    .ok(),
                Err(_) => None,
            })
            .unwrap_or_default();
        Self {
            file,
            alerts: Mutex::new(alerts),
            live: broadcast::channel(64).0,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Alert>> {
        match self.alerts.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn save(&self, alerts: &[Alert]) {
        let Some(file) = &self.file else {
            return;
        };
        let written = serde_json::to_vec_pretty(alerts)
            .map_err(std::io::Error::other)
            .and_then(|bytes| file.write_atomically(&bytes));
        if let Err(e) = written {
            tracing::warn!(path = %file, "cannot write the alerts file: {e}");
        }
    }

    /// Raises an alert of `rule` about `subject`, unless one is open;
    /// returns it if raised.
    pub fn raise(&self, rule: &str, subject: &str, message: String) -> Option<Alert> {
        let mut alerts = self.lock();
        if alerts
            .iter()
            .any(|a| !a.acknowledged && a.rule == rule && a.subject == subject)
        {
            return None;
        }
        let alert = Alert {
            id: alerts.iter().map(|a| a.id).max().unwrap_or(0) + 1,
            rule: rule.to_owned(),
            subject: subject.to_owned(),
            message,
            time_ms: unix_ms(SystemTime::now()),
            acknowledged: false,
            acknowledged_by: None,
        };
        alerts.push(alert.clone());
        while alerts.len() > KEEP {
            let oldest = alerts.iter().position(|a| a.acknowledged).unwrap_or(0);
            alerts.remove(oldest);
        }
        self.save(&alerts);
        drop(alerts);
        tracing::warn!(rule, subject, message = %alert.message, "alert");
        let _ = self.live.send(alert.clone());
        Some(alert)
    }

    /// Acknowledges alert `id` for `by`; `None` if there is no such alert.
    pub fn acknowledge(&self, id: u64, by: &str) -> Option<Alert> {
        let mut alerts = self.lock();
        let alert = alerts.iter_mut().find(|a| a.id == id)?;
        if !alert.acknowledged {
            alert.acknowledged = true;
            alert.acknowledged_by = Some(by.to_owned());
        }
        let alert = alert.clone();
        self.save(&alerts);
        drop(alerts);
        let _ = self.live.send(alert.clone());
        Some(alert)
    }

    /// Every alert, newest first.
    pub fn all(&self) -> Vec<Alert> {
        self.lock().iter().rev().cloned().collect()
    }

    /// The unacknowledged ones, newest first.
    pub fn open_alerts(&self) -> Vec<Alert> {
        self.lock()
            .iter()
            .rev()
            .filter(|a| !a.acknowledged)
            .cloned()
            .collect()
    }

    /// Alerts (new and acknowledged) from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Alert> {
        self.live.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_open_alert_per_rule_and_subject_and_acks_persist() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alerts.json");
        let store = AlertStore::open(Some(ConfinedFile::beside(&path).unwrap()));
        let first = store.raise("errors", "hello", "too many".into()).unwrap();
        assert!(store.raise("errors", "hello", "again".into()).is_none());
        assert!(store.raise("errors", "neural", "too".into()).is_some());
        store.acknowledge(first.id, "ops").unwrap();
        assert!(store.raise("errors", "hello", "again".into()).is_some());
        let again = AlertStore::open(Some(ConfinedFile::beside(&path).unwrap()));
        let all = again.all();
        assert_eq!(all.len(), 3);
        assert_eq!(all[2].acknowledged_by.as_deref(), Some("ops"));
        assert_eq!(again.open_alerts().len(), 2);
        assert!(again.acknowledge(99, "ops").is_none());
    }
}
