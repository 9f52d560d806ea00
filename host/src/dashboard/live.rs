//! The live stream (`GET /api/live`): Server-Sent Events for the page.
//! `calls` (finished calls, batched as they come), `overview` (once a
//! second, computed once for every viewer), `lifecycle`, `alert`, and
//! `plugins` (the plugin set or a state changed: refetch).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde_json::Value;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::{broadcast, watch};

use super::Dashboard;
use super::api::overview;
use crate::ops::alerts::Alert;
use crate::ops::control::PluginControl;
use crate::ops::events::Event as LifecycleEvent;
use crate::ops::feed::CallEvent;
use crate::p2p::Mesh;
use crate::service::ToolService;

/// Most calls in one `calls` event.
const MAX_BATCH: usize = 200;

/// Computes the overview once a second while it runs.
pub struct OverviewTask(tokio::task::JoinHandle<()>);

impl Drop for OverviewTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl OverviewTask {
    /// Starts it; the receiver holds the newest overview.
    pub fn start(
        service: ToolService,
        control: Arc<PluginControl>,
        mesh: Option<Arc<Mesh>>,
    ) -> (watch::Receiver<Arc<Value>>, Self) {
        let first = overview(&service, &control, mesh.as_deref(), false);
        let (tx, rx) = watch::channel(Arc::new(first));
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(Duration::from_secs(1));
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                ticks.tick().await;
                if tx.receiver_count() == 0 {
                    continue;
                }
                let now = overview(&service, &control, mesh.as_deref(), false);
                if tx.send(Arc::new(now)).is_err() {
                    return;
                }
            }
        });
        (rx, Self(task))
    }
}

struct Listening {
    calls: broadcast::Receiver<CallEvent>,
    events: broadcast::Receiver<LifecycleEvent>,
    alerts: broadcast::Receiver<Alert>,
    overview: watch::Receiver<Arc<Value>>,
    states: watch::Receiver<u64>,
    registry: watch::Receiver<u64>,
}

fn event(name: &str, data: &impl serde::Serialize) -> Event {
    Event::default()
        .event(name)
        .data(serde_json::to_string(data).unwrap_or_else(|_| "null".into()))
}

/// The stream for one viewer.
pub fn stream(dashboard: &Dashboard) -> Sse<impl Stream<Item = Result<Event, Infallible>> + use<>> {
    let ops = dashboard.service.operations();
    let mut overview = dashboard.overview.clone();
    overview.mark_changed();
    let listening = Listening {
        calls: ops.feed.subscribe(),
        events: ops.events.subscribe(),
        alerts: ops.alerts.subscribe(),
        overview,
        states: ops.changes(),
        registry: dashboard.control.registry().changes(),
    };
    let stream = futures::stream::unfold(listening, |mut l| async move {
        let next = tokio::select! {
            call = l.calls.recv() => match call {
                Ok(first) => {
                    let mut batch = vec![first];
                    while batch.len() < MAX_BATCH {
                        match l.calls.try_recv() {
                            Ok(more) => batch.push(more),
                            Err(TryRecvError::Lagged(_)) => continue,
                            Err(_) => break,
                        }
                    }
                    event("calls", &batch)
                }
                // A slow viewer missed some: it sees the next ones.
                Err(RecvError::Lagged(_)) => Event::default().comment("lagged"),
                Err(RecvError::Closed) => return None,
            },
            e = l.events.recv() => match e {
                Ok(e) => event("lifecycle", &e),
                Err(RecvError::Lagged(_)) => Event::default().comment("lagged"),
                Err(RecvError::Closed) => return None,
            },
            a = l.alerts.recv() => match a {
                Ok(a) => event("alert", &a),
                Err(RecvError::Lagged(_)) => Event::default().comment("lagged"),
                Err(RecvError::Closed) => return None,
            },
            changed = l.overview.changed() => {
                if changed.is_err() {
                    return None;
                }
                let now = l.overview.borrow_and_update().clone();
                event("overview", &*now)
            },
            changed = l.states.changed() => {
                if changed.is_err() {
                    return None;
                }
                event("plugins", &serde_json::json!({}))
            },
            changed = l.registry.changed() => {
                if changed.is_err() {
                    return None;
                }
                event("plugins", &serde_json::json!({}))
            },
        };
        Some((Ok(next), l))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
