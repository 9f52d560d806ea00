//! `toolmesh serve`: the host stack, its usage snapshot kept in the data
//! directory, the mesh (with its tools and the control socket) when asked
//! for, and MCP on stdio until the client leaves.

use std::sync::Arc;

use anyhow::bail;

use super::Stack;
use crate::config::Config;
use crate::control;
use crate::mcp::McpServer;
use crate::p2p::Mesh;
use crate::p2p::mesh::MeshPaths;
use crate::service::mesh_tools::MeshTools;
use crate::stats;

/// What to serve besides MCP on stdio.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServeOptions {
    /// Join the mesh (also `[p2p] enabled = true`).
    pub p2p: bool,
}

/// Serves `config`'s plugins until the MCP client on stdio disconnects.
pub async fn serve(config: &Config, options: ServeOptions) -> anyhow::Result<()> {
    if let Some(dir) = &config.plugins_dir
        && !dir.is_dir()
    {
        bail!("the plugin directory {} does not exist", dir.display());
    }
    let stack = Stack::start(config).await?;
    let snapshot = stack.registry.snapshot();
    tracing::info!(
        plugins = snapshot.plugins().len(),
        tools = snapshot.tool_count(),
        refused = stack.failures.len(),
        "serving MCP on stdio"
    );
    let mut service = stack.service.clone();
    let snapshot_path = config.data_dir().join(stats::FILE);
    let snapshots = tokio::spawn(stats::keep_written(service.clone(), snapshot_path.clone()));
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
        service = service.with_provider(Arc::new(MeshTools::new(mesh)));
        tokio::spawn(control::serve(
            service.clone(),
            state_dir.join(control::SOCKET_FILE),
        ));
    }
    let served = McpServer::new(service.clone()).serve_stdio().await;
    snapshots.abort();
    if let Err(e) = stats::write(&service, &snapshot_path) {
        tracing::warn!(path = %snapshot_path.display(), "cannot write the usage snapshot: {e}");
    }
    served
}
