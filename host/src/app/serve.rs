//! `toolmesh serve`: the host stack, its usage snapshot kept in the data
//! directory, the mesh (with its tools and the control socket) when asked
//! for, and the transports: MCP on stdio, over HTTP, or both, sharing one
//! registry, one usage tracker and one mesh.
//!
//! The HTTP listener binds before the plugins load, so `/healthz` answers
//! at once and `/readyz` says when the tools are there.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::bail;

use super::Stack;
use crate::audit::{self, AuditLog};
use crate::config::Config;
use crate::control;
use crate::dashboard::Dashboard;
use crate::http::HttpServer;
use crate::mcp::McpServer;
use crate::monitor::Monitor;
use crate::ops::view::Quotas;
use crate::ops::{self, control::Action, events::EventKind};
use crate::p2p::Mesh;
use crate::p2p::mesh::MeshPaths;
use crate::plugin::Source;
use crate::plugin::loader::manifest_name;
use crate::service::admin_tools::AdminTools;
use crate::service::mesh_tools::MeshTools;
use crate::stats;

/// What to serve.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServeOptions {
    /// Join the mesh (also `[p2p] enabled = true`).
    pub p2p: bool,
    /// Serve MCP over HTTP on this address (also `[http] listen`).
    pub http: Option<SocketAddr>,
    /// With HTTP, serve stdio too (without HTTP, stdio is always served).
    pub stdio: bool,
}

/// Serves `config`'s plugins: until the MCP client on stdio disconnects,
/// or, with HTTP only, until the process is told to stop (SIGINT, SIGTERM).
pub async fn serve(config: &Config, options: ServeOptions) -> anyhow::Result<()> {
    if let Some(dir) = &config.plugins_dir
        && !dir.is_dir()
    {
        bail!("the plugin directory {} does not exist", dir.display());
    }
    let http_addr = options.http.or(config.http.listen);
    let http = match http_addr {
        Some(addr) => {
            let audit = if config.http.audit.enabled {
                let dir = config.data_dir().join(audit::DIR);
                Some(AuditLog::open(dir, config.http.audit.retention_days)?)
            } else {
                None
            };
            Some(HttpServer::start(&config.http, addr, &config.data_dir(), audit).await?)
        }
        None => None,
    };
    let bound = std::time::Duration::from_millis(config.runtime.startup_wait_ms);
    let stack = Stack::start_within(config, Some(bound)).await?;
    let snapshot = stack.registry.snapshot();
    let stdio = http.is_none() || options.stdio;
    tracing::info!(
        plugins = snapshot.plugins().len(),
        tools = snapshot.tool_count(),
        refused = stack.failures.len(),
        loading = stack.loading,
        stdio,
        http = ?http.as_ref().map(HttpServer::addr),
        "serving MCP"
    );
    for plugin in snapshot.plugins() {
        stack.ops.events.record(
            &plugin.manifest.name,
            EventKind::Loaded,
            Some(format!("from {}", plugin.source)),
        );
    }
    for failure in &stack.failures {
        let name = match &failure.source {
            Source::Dir(dir) => manifest_name(dir).unwrap_or_else(|| dir.display().to_string()),
            Source::Bundled => "(bundled)".to_owned(),
        };
        stack
            .ops
            .events
            .record(&name, EventKind::Failed, Some(failure.to_string()));
    }
    relist_on_announcement(&stack);
    // Hot reload: the plugin directory is watched (it exists: checked above, or defaulted).
    let _watch = if config.watch_plugins {
        ops::watch::start(stack.control.clone()).unwrap_or_else(|e| {
            tracing::warn!("hot reload is off: {e}");
            None
        })
    } else {
        None
    };
    let mut service = stack
        .service
        .clone()
        .with_provider(Arc::new(AdminTools::new(stack.control.clone())));
    let snapshot_path = config.data_dir().join(stats::FILE);
    let snapshots = tokio::spawn(stats::keep_written(service.clone(), snapshot_path.clone()));
    let mut mesh_handle = None;
    if options.p2p || config.p2p.enabled {
        let state_dir = config.p2p_dir();
        let mesh = Mesh::start(
            &config.p2p,
            stack.loader.clone(),
            stack.registry.clone(),
            MeshPaths {
                state_dir: state_dir.clone(),
                plugins_dir: config.plugins_dir(),
            },
            config.p2p.auto_install,
        )
        .await?;
        mesh_handle = Some(mesh.clone());
        service = service.with_provider(Arc::new(MeshTools::new(mesh)));
    }
    let monitor = Arc::new(Monitor::start(
        &config.monitor,
        config.alerts.clone(),
        &config.data_dir(),
        service.clone(),
        mesh_handle.clone(),
    ));
    let socket_dir = config.p2p_dir();
    if let Err(e) = std::fs::create_dir_all(&socket_dir) {
        tracing::warn!(dir = %socket_dir.display(), "no control socket: {e}");
    }
    tokio::spawn(control::serve(
        service.clone(),
        socket_dir.join(control::SOCKET_FILE),
    ));
    if let Some(http) = &http {
        let dashboard = Dashboard::new(
            service.clone(),
            stack.control.clone(),
            monitor.clone(),
            mesh_handle.clone(),
            config_view(config),
            http.counters().clone(),
        );
        http.ready(service.clone(), Some(dashboard));
    }
    let served = if stdio {
        McpServer::new(service.clone()).serve_stdio().await
    } else {
        stop_signal().await
    };
    if let Some(http) = &http {
        http.stop().await;
    }
    snapshots.abort();
    if let Err(e) = stats::write(&service, &snapshot_path) {
        tracing::warn!(path = %snapshot_path.display(), "cannot write the usage snapshot: {e}");
    }
    served
}

/// Lists a plugin again when it announces that its lists changed
/// (`notify.list-changed`): loaded anew from where it came from, through
/// the same checks, and swapped into the registry (clients then hear
/// `tools/list_changed`). A failed reload keeps the loaded version.
fn relist_on_announcement(stack: &Stack) {
    let Some(updates) = stack.loader.runtime().stores().updates.clone() else {
        return;
    };
    let mut changes = updates.list_changes();
    let control = stack.control.clone();
    tokio::spawn(async move {
        loop {
            let plugin = match changes.recv().await {
                Ok(plugin) => plugin,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            };
            if control.registry().snapshot().plugin(&plugin).is_none() {
                continue;
            }
            let why = Some("the plugin announced that its lists changed".to_owned());
            match control.apply(&plugin, Action::Reload, why).await {
                Ok(_) => tracing::info!(%plugin, "lists changed: listed again"),
                Err(e) => {
                    tracing::warn!(%plugin, "lists changed, but listing it again failed: {e}");
                }
            }
        }
    });
}

/// The configuration as the dashboard's config view shows it (no secrets:
/// keys and tokens are not in `toolmesh.toml`, and TLS keys are named only).
fn config_view(config: &Config) -> serde_json::Value {
    let levels: serde_json::Map<String, serde_json::Value> = config
        .levels()
        .map(|levels| {
            levels
                .iter()
                .map(|level| {
                    let mut quotas = serde_json::to_value(Quotas::of(level)).unwrap_or_default();
                    quotas["capabilities"] = level
                        .capabilities
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .into();
                    quotas["breaker"] = serde_json::json!({
                        "failures": level.breaker.failures,
                        "window_ms": level.breaker.window.as_millis() as u64,
                        "ratio": level.breaker.ratio,
                        "cooldown_ms": level.breaker.cooldown.as_millis() as u64,
                    });
                    (level.name.clone(), quotas)
                })
                .collect()
        })
        .unwrap_or_default();
    let http = &config.http;
    serde_json::json!({
        "data_dir": config.data_dir().display().to_string(),
        "plugins_dir": config.plugins_dir().display().to_string(),
        "bundled_plugins": config.bundled_plugins,
        "watch_plugins": config.watch_plugins,
        "levels": levels,
        "http": {
            "listen": http.listen.map(|a| a.to_string()),
            "auth": format!("{:?}", http.auth).to_lowercase(),
            "tls": http.tls_cert.is_some(),
            "max_connections": http.max_connections,
            "max_body_bytes": http.max_body_bytes,
            "audit": http.audit.enabled,
        },
        "p2p": {"enabled": config.p2p.enabled},
        "monitor": {
            "rollup_s": config.monitor.rollup_s,
            "retention_days": config.monitor.retention_days,
        },
        "alert_rules": config.alerts,
    })
}

/// Waits for SIGINT or SIGTERM.
async fn stop_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("stopping");
    Ok(())
}
