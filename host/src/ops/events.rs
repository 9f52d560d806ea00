//! Lifecycle events: a plugin loaded, enabled, disabled, paused, resumed,
//! reloaded, removed, failed to load, or its breaker opened, half-opened or
//! closed; each with its time and reason. Kept in memory (the newest
//! [`KEEP`]), appended to `<data>/lifecycle/events.jsonl` (rotated past
//! [`ROTATE_BYTES`] to `events.jsonl.1`), and broadcast to live views.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::audit::unix_ms;
use crate::fs::ConfinedFile;

/// How many events are kept in memory (and read back at start).
pub const KEEP: usize = 1_000;

/// The file is rotated when it grows past this.
pub const ROTATE_BYTES: u64 = 4 << 20;

/// Longest reason kept.
const MAX_REASON: usize = 2_048;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// Loaded (at start, or dropped into the plugin directory).
    Loaded,
    /// Enabled by the operator.
    Enabled,
    /// Disabled by the operator.
    Disabled,
    /// Paused by the operator.
    Paused,
    /// Resumed by the operator.
    Resumed,
    /// A new version replaced the loaded one.
    Reloaded,
    /// Removed from the plugin directory.
    Removed,
    /// A version failed to load (the loaded one, if any, keeps serving).
    Failed,
    /// Its breaker opened: calls are refused until it half-opens.
    BreakerOpened,
    /// Its breaker let one call through to probe.
    BreakerHalfOpen,
    /// Its breaker closed again.
    BreakerClosed,
}

/// One event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Its number, growing by one per event (from the file's last).
    pub seq: u64,
    /// When (Unix ms).
    pub time_ms: u64,
    /// The plugin.
    pub plugin: String,
    /// What happened.
    pub kind: EventKind,
    /// Why, if known.
    pub reason: Option<String>,
}

/// The event log.
#[derive(Debug)]
pub struct EventLog {
    file: Option<ConfinedFile>,
    inner: Mutex<Inner>,
    live: broadcast::Sender<Event>,
}

#[derive(Debug, Default)]
struct Inner {
    next_seq: u64,
    recent: VecDeque<Event>,
}

impl EventLog {
    /// The log kept in `file` (none: in memory only), with its newest
    /// events read back.
    pub fn open(file: Option<ConfinedFile>) -> Self {
        let mut inner = Inner::default();
        if let Some(file) = &file
            && let Ok(bytes) = file.read()
        {
            let text = String::from_utf8_lossy(&bytes);
            if !text.is_empty() && !text.ends_with('\n') {
                // End a torn line, so that the next event starts a line of its own.
                let _ = file.append(b"\n");
            }
            // A torn last line (a crash mid-write) is skipped, not fatal.
            for event in text
                .lines()
                .filter_map(|l| serde_json::from_str::<Event>(l).ok())
            {
                inner.next_seq = inner.next_seq.max(event.seq + 1);
                inner.recent.push_back(event);
                if inner.recent.len() > KEEP {
                    inner.recent.pop_front();
                }
            }
        }
        Self {
            file,
            inner: Mutex::new(inner),
            live: broadcast::channel(256).0,
        }
    }

    /// Records that `kind` happened to `plugin`, logs it, and tells the
    /// live views.
    pub fn record(&self, plugin: &str, kind: EventKind, reason: Option<String>) -> Event {
        let reason = reason.map(|r| crate::text::truncate(&r, MAX_REASON).into_owned());
        let event = {
            let mut inner = match self.inner.lock() {
                Ok(guard) => guard,
                Err(poisoned) => poisoned.into_inner(),
            };
            let event = Event {
                seq: inner.next_seq,
                time_ms: unix_ms(SystemTime::now()),
                plugin: plugin.to_owned(),
                kind,
                reason,
            };
            inner.next_seq += 1;
            inner.recent.push_back(event.clone());
            if inner.recent.len() > KEEP {
                inner.recent.pop_front();
            }
            if let Err(e) = self.append(&event) {
                tracing::warn!("cannot write the lifecycle event log: {e}");
            }
            event
        };
        match &event.reason {
            Some(reason) => tracing::info!(plugin, kind = ?event.kind, %reason, "lifecycle"),
            None => tracing::info!(plugin, kind = ?event.kind, "lifecycle"),
        }
        let _ = self.live.send(event.clone());
        event
    }

    fn append(&self, event: &Event) -> std::io::Result<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        if file.size()?.is_some_and(|len| len > ROTATE_BYTES) {
            file.rotate(".1")?;
        }
        let mut line = serde_json::to_vec(event).map_err(std::io::Error::other)?;
        line.push(b'\n');
        file.append(&line)
    }

    /// The newest `limit` events, newest first.
    pub fn recent(&self, limit: usize) -> Vec<Event> {
        let inner = match self.inner.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        inner.recent.iter().rev().take(limit).cloned().collect()
    }

    /// Events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.live.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn events_are_numbered_kept_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let log = EventLog::open(Some(ConfinedFile::beside(&path).unwrap()));
        let mut live = log.subscribe();
        log.record("hello", EventKind::Loaded, None);
        log.record("hello", EventKind::Paused, Some("too chatty".into()));
        assert_eq!(live.try_recv().unwrap().kind, EventKind::Loaded);
        // A crash mid-write leaves a torn line; it is skipped.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"seq\":")
            .unwrap();
        let again = EventLog::open(Some(ConfinedFile::beside(&path).unwrap()));
        let recent = again.recent(10);
        assert_eq!(recent.len(), 2);
        assert_eq!(recent[0].kind, EventKind::Paused);
        assert_eq!(recent[0].reason.as_deref(), Some("too chatty"));
        assert_eq!(again.record("hello", EventKind::Resumed, None).seq, 2);
    }
}
