//! The live call feed: every call the tool service finishes, as a
//! [`CallEvent`], for the dashboard's recent-calls table and its rates.
//! Keeps the newest [`RECENT`] calls and per-second counts of the last
//! [`RATE_WINDOW_S`] seconds; broadcasts each call to live views (only
//! when someone listens). One uncontended mutex per call.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Instant, SystemTime};

use serde::Serialize;
use tokio::sync::broadcast;

use crate::audit::unix_ms;

/// Calls kept for the recent-calls table.
pub const RECENT: usize = 50;

/// The seconds over which rates are given.
pub const RATE_WINDOW_S: u64 = 10;

/// One finished call.
#[derive(Debug, Clone, Serialize)]
pub struct CallEvent {
    /// Its number, growing by one per call.
    pub seq: u64,
    /// When it finished (Unix ms).
    pub time_ms: u64,
    /// The tool's qualified name.
    pub tool: String,
    /// Whose tool (the plugin, or `mesh`, `admin`).
    pub plugin: String,
    /// The client, as its transport knows it.
    pub client: Option<String>,
    /// The agent it acted for.
    pub agent: Option<String>,
    /// How it ended.
    pub outcome: crate::usage::Outcome,
    /// Wall time, µs.
    pub micros: u64,
    /// Fuel.
    pub fuel: u64,
    /// Peak linear memory.
    pub peak_memory_bytes: usize,
    /// Argument bytes.
    pub bytes_in: usize,
    /// Result bytes.
    pub bytes_out: usize,
}

/// Rates over the last [`RATE_WINDOW_S`] seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Rates {
    /// Calls per second.
    pub calls_per_s: f64,
    /// Share of them that did not end `ok`.
    pub error_ratio: f64,
}

#[derive(Debug, Clone, Copy, Default)]
struct Second {
    epoch: u64,
    calls: u32,
    errors: u32,
}

#[derive(Debug)]
struct Inner {
    next_seq: u64,
    recent: VecDeque<CallEvent>,
    seconds: [Second; RATE_WINDOW_S as usize],
}

/// The feed.
#[derive(Debug)]
pub struct CallFeed {
    base: Instant,
    inner: Mutex<Inner>,
    live: broadcast::Sender<CallEvent>,
}

impl Default for CallFeed {
    fn default() -> Self {
        Self {
            base: Instant::now(),
            inner: Mutex::new(Inner {
                next_seq: 1,
                recent: VecDeque::with_capacity(RECENT),
                seconds: [Second::default(); RATE_WINDOW_S as usize],
            }),
            live: broadcast::channel(1_024).0,
        }
    }
}

impl CallFeed {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        match self.inner.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn epoch(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.base).as_secs()
    }

    /// Adds a finished call (its `seq` and `time_ms` are set here).
    pub fn push(&self, mut event: CallEvent) {
        let epoch = self.epoch(Instant::now());
        event.time_ms = unix_ms(SystemTime::now());
        let failed = event.outcome != crate::usage::Outcome::Ok;
        let listening = self.live.receiver_count() > 0;
        let mut inner = self.lock();
        event.seq = inner.next_seq;
        inner.next_seq += 1;
        let second = &mut inner.seconds[(epoch % RATE_WINDOW_S) as usize];
        if second.epoch != epoch {
            *second = Second {
                epoch,
                ..Second::default()
            };
        }
        second.calls += 1;
        second.errors += u32::from(failed);
        if inner.recent.len() == RECENT {
            inner.recent.pop_front();
        }
        if listening {
            inner.recent.push_back(event.clone());
            drop(inner);
            let _ = self.live.send(event);
        } else {
            inner.recent.push_back(event);
        }
    }

    /// The newest calls, newest first.
    pub fn recent(&self) -> Vec<CallEvent> {
        self.lock().recent.iter().rev().cloned().collect()
    }

    /// Rates over the last full seconds.
    pub fn rates(&self) -> Rates {
        let now = self.epoch(Instant::now());
        let inner = self.lock();
        // The window is the RATE_WINDOW_S seconds before the current one.
        let (calls, errors) = inner
            .seconds
            .iter()
            .filter(|s| s.epoch < now && s.epoch + RATE_WINDOW_S >= now)
            .fold((0u64, 0u64), |(c, e), s| {
                (c + u64::from(s.calls), e + u64::from(s.errors))
            });
        let span = RATE_WINDOW_S.min(now.max(1)) as f64;
        Rates {
            calls_per_s: calls as f64 / span,
            error_ratio: if calls == 0 {
                0.0
            } else {
                errors as f64 / calls as f64
            },
        }
    }

    /// Calls from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<CallEvent> {
        self.live.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usage::Outcome;

    fn event(tool: &str, outcome: Outcome) -> CallEvent {
        CallEvent {
            seq: 0,
            time_ms: 0,
            tool: tool.into(),
            plugin: "hello".into(),
            client: None,
            agent: None,
            outcome,
            micros: 10,
            fuel: 1,
            peak_memory_bytes: 0,
            bytes_in: 0,
            bytes_out: 0,
        }
    }

    #[test]
    fn keeps_the_newest_numbered_and_tells_listeners() {
        let feed = CallFeed::default();
        let mut live = feed.subscribe();
        for i in 0..(RECENT + 5) {
            feed.push(event(&format!("t{i}"), Outcome::Ok));
        }
        let recent = feed.recent();
        assert_eq!(recent.len(), RECENT);
        assert_eq!(recent[0].tool, format!("t{}", RECENT + 4));
        assert_eq!(recent[0].seq, RECENT as u64 + 5);
        assert_eq!(live.try_recv().unwrap().seq, 1);
    }
}
