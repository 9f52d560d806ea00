//! The `notify` interface: a plugin says one of its resources changed, and
//! clients subscribed to it hear of it; or that its lists changed, and the
//! host lists it again (see `app::serve`). Every plugin may import it. The host
//! coalesces: a URI is announced at most once per [`MIN_INTERVAL`] (a later
//! change inside the interval is announced when it ends, so the last change
//! is never lost), and one call may announce at most [`MAX_PER_CALL`]
//! distinct URIs; the rest are dropped and counted in the log.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::broadcast;
use wasmtime::component::Linker;

use super::{CallCapability, CallData, CallScope, HostStores, PluginScope};
use crate::wit::toolmesh::plugin::notify;

/// The shortest time between two announcements of one URI.
pub const MIN_INTERVAL: Duration = Duration::from_millis(200);

/// Most distinct URIs one call may announce.
pub const MAX_PER_CALL: usize = 64;

/// Longest URI announced.
const MAX_URI_BYTES: usize = 1024;

/// How many announcements may wait for a slow listener before it misses
/// some (it then re-reads what it subscribed to).
const CAPACITY: usize = 1024;

/// A resource changed: `uri` as plugin `plugin` names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResourceUpdate {
    /// The plugin.
    pub plugin: Arc<str>,
    /// The URI, as the plugin names it.
    pub uri: String,
}

/// What is announced, paced one key at a time.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Change {
    /// A resource changed.
    Resource(ResourceUpdate),
    /// A plugin's lists changed.
    Lists(Arc<str>),
}

#[derive(Default)]
struct Pace {
    /// When each change was last announced, and whether another waits.
    last: HashMap<Change, (Instant, bool)>,
}

/// Where announcements go: every listener (each MCP session) hears every
/// resource update and keeps those it subscribed to; the host hears of
/// plugins whose lists changed.
pub struct ResourceUpdates {
    tx: broadcast::Sender<ResourceUpdate>,
    lists: broadcast::Sender<Arc<str>>,
    pace: Mutex<Pace>,
}

impl Default for ResourceUpdates {
    fn default() -> Self {
        Self {
            tx: broadcast::Sender::new(CAPACITY),
            lists: broadcast::Sender::new(64),
            pace: Mutex::default(),
        }
    }
}

impl ResourceUpdates {
    /// A receiver of every resource update from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<ResourceUpdate> {
        self.tx.subscribe()
    }

    /// A receiver of the names of plugins whose lists changed.
    pub fn list_changes(&self) -> broadcast::Receiver<Arc<str>> {
        self.lists.subscribe()
    }

    /// Announces that `plugin`'s lists changed (paced like a resource).
    pub fn announce_lists(self: &Arc<Self>, plugin: &Arc<str>) {
        self.pace(Change::Lists(plugin.clone()));
    }

    /// Announces `update` now, or at the end of its interval if it was
    /// announced less than [`MIN_INTERVAL`] ago.
    pub fn announce(self: &Arc<Self>, update: ResourceUpdate) {
        self.pace(Change::Resource(update));
    }

    /// Sends `update` now, or at the end of its interval.
    fn pace(self: &Arc<Self>, update: Change) {
        let now = Instant::now();
        let mut pace = match self.pace.lock() {
            Ok(pace) => pace,
            Err(poisoned) => poisoned.into_inner(),
        };
        // Forget what is long past, so the table stays small.
        if pace.last.len() > 4096 {
            pace.last
                .retain(|_, (at, waiting)| *waiting || now.duration_since(*at) < MIN_INTERVAL);
        }
        match pace.last.get_mut(&update) {
            Some((_, true)) => {} // already due at the end of its interval
            Some((at, waiting)) if now.duration_since(*at) < MIN_INTERVAL => {
                *waiting = true;
                let due = *at + MIN_INTERVAL;
                let this = self.clone();
                let handle = tokio::runtime::Handle::try_current();
                drop(pace);
                match handle {
                    Ok(handle) => {
                        handle.spawn(async move {
                            tokio::time::sleep_until(due.into()).await;
                            this.send_due(update);
                        });
                    }
                    Err(_) => self.send_due(update),
                }
            }
            _ => {
                pace.last.insert(update.clone(), (now, false));
                drop(pace);
                self.send(update);
            }
        }
    }

    fn send_due(&self, update: Change) {
        let mut pace = match self.pace.lock() {
            Ok(pace) => pace,
            Err(poisoned) => poisoned.into_inner(),
        };
        pace.last.insert(update.clone(), (Instant::now(), false));
        drop(pace);
        self.send(update);
    }

    /// Sends `change` to its listeners (none listening is fine).
    fn send(&self, change: Change) {
        match change {
            Change::Resource(update) => {
                let _ = self.tx.send(update);
            }
            Change::Lists(plugin) => {
                let _ = self.lists.send(plugin);
            }
        }
    }
}

/// A call's announcements: the plugin's name, where they go, and how many
/// distinct URIs it announced.
pub struct NotifyCtx {
    plugin: Arc<str>,
    updates: Option<Arc<ResourceUpdates>>,
    announced: Vec<String>,
    dropped: u64,
}

impl CallCapability for NotifyCtx {
    fn add_to_linker<T: CallData>(
        linker: &mut Linker<T>,
        get: fn(&mut T) -> &mut Self,
    ) -> wasmtime::Result<()> {
        notify::add_to_linker::<T, wasmtime::component::HasSelf<Self>>(linker, get)
    }

    fn for_call(
        host: &HostStores,
        plugin: &PluginScope<'_>,
        _: &CallScope,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            plugin: plugin.name.clone(),
            updates: host.updates.clone(),
            announced: Vec::new(),
            dropped: 0,
        })
    }
}

impl notify::Host for NotifyCtx {
    fn list_changed(&mut self) {
        if let Some(updates) = &self.updates {
            updates.announce_lists(&self.plugin);
        }
    }

    fn resource_updated(&mut self, uri: String) {
        let Some(updates) = &self.updates else {
            return;
        };
        if uri.is_empty() || uri.len() > MAX_URI_BYTES {
            self.dropped += 1;
            return;
        }
        if !self.announced.contains(&uri) {
            if self.announced.len() >= MAX_PER_CALL {
                self.dropped += 1;
                return;
            }
            self.announced.push(uri.clone());
        }
        updates.announce(ResourceUpdate {
            plugin: self.plugin.clone(),
            uri,
        });
    }
}

impl Drop for NotifyCtx {
    fn drop(&mut self) {
        if self.dropped > 0 {
            tracing::warn!(
                target: "plugin",
                plugin = %self.plugin,
                dropped = self.dropped,
                "resource-updated announcements dropped: at most {MAX_PER_CALL} distinct URIs \
                 of at most {MAX_URI_BYTES} bytes per call"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_flood_is_coalesced_and_the_last_change_still_arrives() {
        let updates = Arc::new(ResourceUpdates::default());
        let mut rx = updates.subscribe();
        let update = ResourceUpdate {
            plugin: "p".into(),
            uri: "x://a".into(),
        };
        for _ in 0..10_000 {
            updates.announce(update.clone());
        }
        assert_eq!(rx.try_recv().unwrap(), update);
        assert!(rx.try_recv().is_err(), "the rest wait for the interval");
        let last = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
        assert_eq!(last.unwrap().unwrap(), update, "the last change arrives");
        tokio::time::sleep(MIN_INTERVAL * 2).await;
        assert!(rx.try_recv().is_err(), "once");
    }
}
