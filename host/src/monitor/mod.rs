//! Monitoring: what a running host reports about itself. [`metrics`] for
//! Prometheus, [`history`] (per-minute rollups, persisted), [`alerting`]
//! (the rules and their checks). [`Monitor::start`] runs the rollups and
//! the event-driven rules in the background.

pub mod alerting;
pub mod history;
pub mod metrics;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use crate::ops::events::EventKind;
use crate::p2p::Mesh;
use crate::service::ToolService;
use alerting::AlertRule;
use history::{History, Settings};

/// `[monitor]` in `toolmesh.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MonitorConfig {
    /// Seconds between history rollups.
    pub rollup_s: u64,
    /// Days of history kept.
    pub retention_days: u64,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        Self {
            rollup_s: 60,
            retention_days: 7,
        }
    }
}

impl MonitorConfig {
    /// Why the settings cannot be used, if they cannot.
    pub fn check(&self) -> Result<(), String> {
        if !(1..=3_600).contains(&self.rollup_s) {
            return Err(format!(
                "monitor.rollup_s is {}; it must be 1 to 3600",
                self.rollup_s
            ));
        }
        if !(1..=3_650).contains(&self.retention_days) {
            return Err(format!(
                "monitor.retention_days is {}; it must be 1 to 3650",
                self.retention_days
            ));
        }
        Ok(())
    }
}

/// The running monitor.
pub struct Monitor {
    /// The usage history.
    pub history: Arc<History>,
    /// The alert rules.
    pub rules: Arc<[AlertRule]>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Monitor {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Monitor {
    /// Starts rolling `service`'s usage up into history under `data_dir`
    /// and checking `rules`.
    pub fn start(
        config: &MonitorConfig,
        rules: Vec<AlertRule>,
        data_dir: &Path,
        service: ToolService,
        mesh: Option<Arc<Mesh>>,
    ) -> Self {
        let history = Arc::new(History::open(Settings {
            dir: Some(data_dir.join(history::DIR)),
            rollup: Duration::from_secs(config.rollup_s),
            retention: Duration::from_secs(config.retention_days * 86_400),
        }));
        let rules: Arc<[AlertRule]> = rules.into();
        history.baseline(&service.tools());
        let mut tasks = Vec::new();
        tasks.push(tokio::spawn(roll(
            history.clone(),
            rules.clone(),
            service.clone(),
        )));
        tasks.push(tokio::spawn(watch_breakers(rules.clone(), service.clone())));
        if rules.iter().any(|r| r.kind == alerting::RuleKind::Budget) {
            tasks.push(tokio::spawn(watch_budgets(rules.clone(), service.clone())));
        }
        if let Some(mesh) = mesh
            && rules.iter().any(|r| r.kind == alerting::RuleKind::PeerLost)
        {
            tasks.push(tokio::spawn(watch_peers(rules.clone(), service, mesh)));
        }
        Self {
            history,
            rules,
            tasks,
        }
    }
}

async fn roll(history: Arc<History>, rules: Arc<[AlertRule]>, service: ToolService) {
    let mut ticks = tokio::time::interval(history.interval());
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let tools = service.tools();
        let history = history.clone();
        // Reading and writing take a little CPU and a disk write: off the executor.
        let rollup = tokio::task::spawn_blocking(move || history.roll(&tools)).await;
        if let Ok(rollup) = rollup {
            alerting::check_rollup(&rules, &rollup, service.operations());
        }
    }
}

async fn watch_breakers(rules: Arc<[AlertRule]>, service: ToolService) {
    let ops = service.operations().clone();
    let mut events = ops.events.subscribe();
    loop {
        match events.recv().await {
            Ok(event) if event.kind == EventKind::BreakerOpened => {
                let reason = event.reason.unwrap_or_default();
                alerting::breaker_opened(&rules, &event.plugin, &reason, &ops);
            }
            Ok(_) | Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => return,
        }
    }
}

/// The budget plugin announces `budget://alerts` when it records a
/// threshold alert; the newest one is read through its `alerts` tool.
async fn watch_budgets(rules: Arc<[AlertRule]>, service: ToolService) {
    let Some(updates) = service.plugins().resource_updates().cloned() else {
        return;
    };
    let mut updates = updates.subscribe();
    loop {
        match updates.recv().await {
            Ok(update) if &*update.plugin == "budget" && update.uri == "budget://alerts" => {
                let alerts = service
                    .plugins()
                    .call_internal("budget__alerts", serde_json::json!({}))
                    .await;
                let newest = alerts.ok().and_then(|v| {
                    let list = v.get("alerts").cloned().unwrap_or(v);
                    list.as_array().and_then(|a| a.last().cloned())
                });
                if let Some(alert) = newest {
                    alerting::budget_alert(&rules, &alert, service.operations());
                }
            }
            Ok(_) | Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => return,
        }
    }
}

async fn watch_peers(rules: Arc<[AlertRule]>, service: ToolService, mesh: Arc<Mesh>) {
    let connected = |mesh: &Mesh| -> BTreeSet<String> {
        mesh.peers()
            .into_iter()
            .filter(|p| p.connected)
            .map(|p| p.id)
            .collect()
    };
    let mut before = connected(&mesh);
    let mut ticks = tokio::time::interval(Duration::from_secs(2));
    loop {
        ticks.tick().await;
        let now = connected(&mesh);
        alerting::peers_lost(&rules, &before, &now, service.operations());
        before = now;
    }
}
