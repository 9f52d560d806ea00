//! Operations: what the operator steers and watches while the host runs.
//! Each plugin's lifecycle [`state`] (enabled, paused, disabled; persisted),
//! its circuit [`breaker`], the lifecycle [`events`], the live call
//! [`feed`], and the [`alerts`]. The tool service asks [`Operations::admit`]
//! before a plugin's call runs and tells [`Operations::finish`] how it
//! ended; the plugin control ([`control`]) and the directory watcher
//! ([`watch`]) change what is loaded.

pub mod alerts;
pub mod breaker;
pub mod control;
pub mod events;
pub mod feed;
pub mod state;
pub mod view;
pub mod watch;

use std::collections::HashMap;
use std::path::Path;

use crate::fs::ConfinedFile;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Instant, SystemTime};

use crate::audit::unix_ms;
use crate::usage::Outcome;
use alerts::AlertStore;
use breaker::{Breaker, BreakerPolicy, BreakerView, Pass, Transition};
use events::{EventKind, EventLog};
use feed::CallFeed;
use state::{PluginState, PluginStates, StateRecord};

/// The directory under the data directory where lifecycle state lives.
pub const DIR: &str = "lifecycle";

/// One plugin's operational state.
#[derive(Debug)]
pub struct PluginOps {
    name: String,
    paused: AtomicBool,
    breaker: Breaker,
    last_error: Mutex<Option<String>>,
}

/// Why a call is refused before it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Held {
    /// The operator paused the plugin.
    Paused(String),
    /// Its breaker is open.
    BreakerOpen(String),
}

impl Held {
    /// The message for the agent.
    pub fn message(&self) -> &str {
        match self {
            Held::Paused(m) | Held::BreakerOpen(m) => m,
        }
    }

    /// The outcome it is recorded as.
    pub fn outcome(&self) -> Outcome {
        match self {
            Held::Paused(_) => Outcome::Paused,
            Held::BreakerOpen(_) => Outcome::BreakerOpen,
        }
    }
}

/// A call let through; hand it back to [`Operations::finish`].
#[derive(Debug)]
pub struct Admission {
    plugin: Option<Arc<PluginOps>>,
    pass: Pass,
}

/// Everything operations keep.
#[derive(Debug)]
pub struct Operations {
    /// Lifecycle states, persisted.
    pub states: PluginStates,
    /// Lifecycle events.
    pub events: EventLog,
    /// Finished calls, live.
    pub feed: CallFeed,
    /// Alerts.
    pub alerts: AlertStore,
    plugins: RwLock<HashMap<String, Arc<PluginOps>>>,
    changes: tokio::sync::watch::Sender<u64>,
}

impl Default for Operations {
    fn default() -> Self {
        Self::in_memory()
    }
}

impl Operations {
    /// Operations kept under `data_dir` (`lifecycle/`, `alerts.json`).
    pub fn open(data_dir: &Path) -> Result<Self, String> {
        // Confined to the data directory: a `lifecycle` planted as a
        // symlink out of it is refused, not followed.
        let root = Arc::new(
            crate::fs::Confined::open(data_dir)
                .map_err(|e| format!("cannot open {}: {e}", data_dir.display()))?,
        );
        let file = |name: &str| Some(ConfinedFile::new(root.clone(), Path::new(DIR).join(name)));
        Ok(Self::with(
            PluginStates::open(file("plugins.json"))?,
            EventLog::open(file("events.jsonl")),
            AlertStore::open(file("alerts.json")),
        ))
    }

    /// Operations that keep nothing on disk (tests, benchmarks).
    pub fn in_memory() -> Self {
        Self::with(
            PluginStates::default(),
            EventLog::open(None),
            AlertStore::open(None),
        )
    }

    fn with(states: PluginStates, events: EventLog, alerts: AlertStore) -> Self {
        Self {
            states,
            events,
            feed: CallFeed::default(),
            alerts,
            plugins: RwLock::default(),
            changes: tokio::sync::watch::Sender::new(0),
        }
    }

    fn plugin(&self, name: &str) -> Option<Arc<PluginOps>> {
        let plugins = match self.plugins.read() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        plugins.get(name).cloned()
    }

    /// Starts (or updates) tracking plugin `name` under `policy`.
    pub fn track(&self, name: &str, policy: BreakerPolicy) {
        if let Some(ops) = self.plugin(name) {
            ops.breaker.set_policy(policy);
            return;
        }
        let ops = Arc::new(PluginOps {
            name: name.to_owned(),
            paused: AtomicBool::new(self.states.get(name).state == PluginState::Paused),
            breaker: Breaker::new(policy),
            last_error: Mutex::new(None),
        });
        let mut plugins = match self.plugins.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        plugins.entry(name.to_owned()).or_insert(ops);
    }

    /// Whether a call to plugin `name`'s tool may run now. Names that are
    /// not tracked (the host's own tools) always may.
    pub fn admit(&self, name: &str) -> Result<Admission, Held> {
        let Some(ops) = self.plugin(name) else {
            return Ok(Admission {
                plugin: None,
                pass: Pass::Normal,
            });
        };
        if ops.paused.load(Ordering::Relaxed) {
            let why = self
                .states
                .get(name)
                .reason
                .map(|r| format!(" ({r})"))
                .unwrap_or_default();
            return Err(Held::Paused(format!(
                "plugin `{name}` is paused by the operator{why}; its tools answer again once it \
                 is resumed (`toolmesh plugin resume {name}`)"
            )));
        }
        match ops.breaker.admit(Instant::now()) {
            Ok((pass, transition)) => {
                if let Some(t) = transition {
                    self.transition(&ops.name, t);
                }
                Ok(Admission {
                    plugin: Some(ops),
                    pass,
                })
            }
            Err(tripped) => Err(Held::BreakerOpen(format!(
                "plugin `{name}`'s circuit breaker is open: {}; it lets a call through again in \
                 {:.1} s",
                tripped.reason,
                tripped.retry_in.as_secs_f64()
            ))),
        }
    }

    /// Records how an admitted call ended.
    pub fn finish(&self, admission: Admission, outcome: Outcome) {
        let Some(ops) = admission.plugin else {
            return;
        };
        let failed = matches!(outcome, Outcome::Trap | Outcome::Quota | Outcome::HostError);
        let counted = failed || matches!(outcome, Outcome::Ok | Outcome::ToolError);
        if !counted {
            // Refused or cancelled: says nothing of the plugin. A probe
            // leaves the next call to probe.
            if admission.pass == Pass::Probe {
                ops.breaker.release();
            }
            return;
        }
        if let Some(t) = ops.breaker.record(admission.pass, failed, Instant::now()) {
            self.transition(&ops.name, t);
        }
    }

    fn transition(&self, plugin: &str, transition: Transition) {
        let (kind, reason) = match transition {
            Transition::Opened(reason) => (EventKind::BreakerOpened, Some(reason)),
            Transition::HalfOpened => (EventKind::BreakerHalfOpen, None),
            Transition::Closed => (EventKind::BreakerClosed, None),
        };
        self.events.record(plugin, kind, reason);
        self.changed();
    }

    /// The breaker of plugin `name`, if tracked.
    pub fn breaker(&self, name: &str) -> Option<BreakerView> {
        let ops = self.plugin(name)?;
        Some(ops.breaker.view(Instant::now(), unix_ms(SystemTime::now())))
    }

    /// Sets plugin `name`'s state (persisted), records `kind`.
    pub fn set_state(
        &self,
        name: &str,
        state: PluginState,
        kind: EventKind,
        reason: Option<String>,
    ) -> Result<(), String> {
        self.states.set(
            name,
            StateRecord {
                state,
                reason: reason.clone(),
                since_ms: unix_ms(SystemTime::now()),
            },
        )?;
        if let Some(ops) = self.plugin(name) {
            ops.paused
                .store(state == PluginState::Paused, Ordering::Relaxed);
        }
        self.events.record(name, kind, reason);
        self.changed();
        Ok(())
    }

    /// Remembers why plugin `name`'s last load failed (`None`: it loaded).
    pub fn set_last_error(&self, name: &str, error: Option<String>) {
        if let Some(ops) = self.plugin(name) {
            *match ops.last_error.lock() {
                Ok(guard) => guard,
                Err(poisoned) => poisoned.into_inner(),
            } = error;
        }
    }

    /// Why plugin `name`'s last load failed, if it did.
    pub fn last_error(&self, name: &str) -> Option<String> {
        let ops = self.plugin(name)?;
        let guard = match ops.last_error.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        guard.clone()
    }

    /// Says that plugin states changed (live views refetch).
    pub fn changed(&self) {
        self.changes.send_modify(|v| *v += 1);
    }

    /// Wakes when plugin states change.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn paused_plugins_and_open_breakers_hold_calls_with_reasons() {
        let ops = Operations::in_memory();
        ops.track(
            "flaky",
            BreakerPolicy {
                failures: 2,
                window: Duration::from_secs(60),
                ratio: 0.5,
                cooldown: Duration::from_secs(60),
            },
        );
        assert!(ops.admit("mesh").is_ok(), "untracked names pass");
        // Tool errors do not count; traps do.
        ops.finish(ops.admit("flaky").unwrap(), Outcome::ToolError);
        ops.finish(ops.admit("flaky").unwrap(), Outcome::Trap);
        ops.finish(ops.admit("flaky").unwrap(), Outcome::Trap);
        let held = ops.admit("flaky").unwrap_err();
        assert_eq!(held.outcome(), Outcome::BreakerOpen);
        assert!(
            held.message().contains("circuit breaker is open"),
            "{held:?}"
        );
        assert_eq!(ops.events.recent(1)[0].kind, EventKind::BreakerOpened);

        ops.track("quiet", BreakerPolicy::default());
        ops.set_state(
            "quiet",
            PluginState::Paused,
            EventKind::Paused,
            Some("maintenance".into()),
        )
        .unwrap();
        let held = ops.admit("quiet").unwrap_err();
        assert!(
            held.message()
                .contains("paused by the operator (maintenance)"),
            "{held:?}"
        );
        ops.set_state("quiet", PluginState::Enabled, EventKind::Resumed, None)
            .unwrap();
        assert!(ops.admit("quiet").is_ok());
    }
}
