//! Resource subscriptions: the URIs a client subscribed to, and the task
//! that tells it when one changes. On 2025-11-25 a session subscribes with
//! `resources/subscribe` and hears `notifications/resources/updated` on its
//! stream; on 2026-07-28 the URIs come with `subscriptions/listen` and the
//! notifications go on that stream (see the server's `listen`).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use rmcp::model::ResourceUpdatedNotificationParam;
use rmcp::{Peer, RoleServer};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::capability::notify::ResourceUpdate;
use crate::plugin::Registry;

/// Most URIs one session may subscribe to.
pub const MAX_SUBSCRIPTIONS: usize = 256;

/// A session's subscribed URIs.
#[derive(Debug, Clone, Default)]
pub struct Subscriptions {
    uris: Arc<Mutex<HashSet<String>>>,
}

impl Subscriptions {
    /// Subscribes to `uri`; `Err` if the session has too many.
    pub fn add(&self, uri: String) -> Result<(), String> {
        let mut uris = self.lock();
        if uris.len() >= MAX_SUBSCRIPTIONS && !uris.contains(&uri) {
            return Err(format!(
                "a session may subscribe to at most {MAX_SUBSCRIPTIONS} resources"
            ));
        }
        uris.insert(uri);
        Ok(())
    }

    /// Unsubscribes from `uri`.
    pub fn remove(&self, uri: &str) {
        self.lock().remove(uri);
    }

    /// Whether the session subscribed to `uri`.
    pub fn contains(&self, uri: &str) -> bool {
        self.lock().contains(uri)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        match self.uris.lock() {
            Ok(uris) => uris,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

/// The public URI of `update` (the plugin's namespace applied), if its
/// plugin is still loaded.
pub fn public_uri(registry: &Registry, update: &ResourceUpdate) -> Option<String> {
    let snapshot = registry.snapshot();
    let plugin = snapshot.plugin(&update.plugin)?;
    Some(plugin.namespace.public_uri(&update.uri))
}

/// Tells `peer` of each update to a URI in `subscriptions`, until the peer
/// is gone or `session_over` fires.
pub fn forward(
    mut updates: broadcast::Receiver<ResourceUpdate>,
    registry: Arc<Registry>,
    subscriptions: Subscriptions,
    peer: Peer<RoleServer>,
    session_over: CancellationToken,
) {
    tokio::spawn(async move {
        loop {
            let received = tokio::select! {
                _ = session_over.cancelled() => return,
                received = updates.recv() => received,
            };
            let update = match received {
                Ok(update) => update,
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::debug!(missed, "resource updates missed by a slow session");
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            };
            let Some(uri) = public_uri(&registry, &update) else {
                continue;
            };
            if !subscriptions.contains(&uri) {
                continue;
            }
            if peer
                .notify_resource_updated(ResourceUpdatedNotificationParam::new(uri))
                .await
                .is_err()
            {
                return;
            }
        }
    });
}
