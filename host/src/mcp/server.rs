//! The MCP server: an rmcp `ServerHandler` over the [`ToolHost`], served on
//! stdio. The handler is thin; the semantics live in `tools.rs`.

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListResourcesResult, ListToolsResult, PaginatedRequestParams, ProgressNotificationParam,
    ProgressToken, ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Resource,
    ResourceContents, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::{NotificationContext, RequestContext};
use rmcp::{ErrorData, Peer, RoleServer, ServerHandler, ServiceExt};

use std::sync::Arc;

use super::dispatch::{Dispatch, serve_on_own_thread};
use super::enforce::{META_AGENT, META_BUDGET, META_TOKEN};
use super::mesh_tools;
use super::tools::{CallMeta, ToolHost};
use crate::capability::progress::{self, ProgressSink};
use crate::p2p::Mesh;

/// The resource that serves usage aggregates.
pub const USAGE_URI: &str = "toolmesh://usage";

const INSTRUCTIONS: &str = "toolmesh serves sandboxed WebAssembly tools. Tool names are \
`<plugin>__<tool>`; every call runs in a fresh sandbox under the plugin's limits.";

/// The MCP server of a toolmesh host.
#[derive(Clone)]
pub struct McpServer {
    tools: ToolHost,
    mesh: Option<Arc<Mesh>>,
    dispatch: Dispatch,
}

impl McpServer {
    /// A server for `tools`.
    pub fn new(tools: ToolHost) -> Self {
        Self {
            tools,
            mesh: None,
            dispatch: Dispatch::default(),
        }
    }

    /// Also serves the mesh tools (`mesh__*`).
    pub fn with_mesh(mut self, mesh: Arc<Mesh>) -> Self {
        self.mesh = Some(mesh);
        self
    }

    /// Serves MCP on this process's stdin and stdout until the client
    /// disconnects. The protocol runs on a thread of its own; calls start
    /// there and move to this runtime's pool when they first wait (see
    /// [`dispatch`](super::dispatch)).
    pub async fn serve_stdio(self) -> anyhow::Result<()> {
        serve_on_own_thread("toolmesh-mcp", move |dispatch| async move {
            let server = Self { dispatch, ..self };
            let running = server.serve(rmcp::transport::io::stdio_pipes()).await?;
            let reason = running.waiting().await?;
            tracing::info!(?reason, "client disconnected");
            Ok(())
        })
        .await
    }
}

/// The URI of resource `name` of plugin `plugin`.
pub fn plugin_resource_uri(plugin: &str, name: &str) -> String {
    format!("toolmesh://{plugin}/{name}")
}

impl McpServer {
    /// Reads a plugin's resource by calling the tool behind it.
    async fn read_plugin_resource(&self, uri: &str) -> Result<ReadResourceResponse, ErrorData> {
        let not_found = || {
            ErrorData::resource_not_found(
                format!("no resource `{uri}`; resources/list shows the resources"),
                None,
            )
        };
        let (plugin, name) = uri
            .strip_prefix("toolmesh://")
            .and_then(|rest| rest.split_once('/'))
            .ok_or_else(not_found)?;
        let tool = {
            let snapshot = self.tools.registry().snapshot();
            let loaded = snapshot
                .plugins()
                .find(|p| p.manifest.name == plugin)
                .ok_or_else(not_found)?;
            let decl = loaded
                .manifest
                .resources
                .iter()
                .find(|r| r.name == name)
                .ok_or_else(not_found)?;
            format!("{plugin}__{}", decl.tool)
        };
        let value = self
            .tools
            .call_internal(&tool, serde_json::json!({}))
            .await
            .map_err(|e| ErrorData::internal_error(format!("reading `{uri}` failed: {e}"), None))?;
        let text = serde_json::to_string_pretty(&value)
            .map_err(|e| ErrorData::internal_error(format!("cannot encode `{uri}`: {e}"), None))?;
        let contents = ResourceContents::text(text, uri).with_mime_type("application/json");
        Ok(ReadResourceResult::new(vec![contents]).into())
    }
}

impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tool_list_changed()
                .enable_resources()
                .build(),
        )
        .with_server_info(Implementation::new("toolmesh", env!("CARGO_PKG_VERSION")))
        .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let mut tools = self.tools.list();
        if self.mesh.is_some() {
            tools.extend(mesh_tools::list());
        }
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        // Plugins installed while the client is connected (from a peer, say)
        // change the tool list: tell the client.
        let mut changes = self.tools.registry().changes();
        let peer = context.peer;
        tokio::spawn(async move {
            while changes.changed().await.is_ok() {
                if peer.notify_tool_list_changed().await.is_err() {
                    break;
                }
            }
        });
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let usage = Resource::new(USAGE_URI, "usage")
            .with_title("Tool usage")
            .with_description(
                "Per plugin and per tool: calls, errors by outcome, latency percentiles, fuel, \
                 peak memory, bytes in and out; and the host process's memory and CPU.",
            )
            .with_mime_type("application/json");
        let mut resources = vec![usage];
        let snapshot = self.tools.registry().snapshot();
        for plugin in snapshot.plugins() {
            for r in &plugin.manifest.resources {
                resources.push(
                    Resource::new(
                        plugin_resource_uri(&plugin.manifest.name, &r.name),
                        r.name.clone(),
                    )
                    .with_description(r.description.clone())
                    .with_mime_type("application/json"),
                );
            }
        }
        Ok(ListResourcesResult::with_all_items(resources))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        if request.uri != USAGE_URI {
            return self.read_plugin_resource(&request.uri).await;
        }
        let report = serde_json::to_string_pretty(&self.tools.usage_report())
            .map_err(|e| ErrorData::internal_error(format!("cannot encode usage: {e}"), None))?;
        let contents = ResourceContents::text(report, USAGE_URI).with_mime_type("application/json");
        Ok(ReadResourceResult::new(vec![contents]).into())
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        if self.mesh.is_some() && name.starts_with(mesh_tools::PREFIX) {
            return mesh_tools::list().into_iter().find(|t| t.name == name);
        }
        self.tools.get(name)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let (progress, forwarder) = match context.meta.get_progress_token() {
            Some(token) => {
                let (sink, task) = forward_progress(token, context.peer.clone());
                (Some(sink), Some(task))
            }
            None => (None, None),
        };
        let meta_text = |key: &str| {
            context
                .meta
                .0
                .0
                .get(key)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        let meta = CallMeta {
            request_id: context.id.to_string(),
            client: context
                .peer
                .peer_info()
                .map(|info| info.client_info.name.clone()),
            progress,
            agent: meta_text(META_AGENT),
            token: meta_text(META_TOKEN),
            budget: meta_text(META_BUDGET),
        };
        let outcome = match &self.mesh {
            Some(mesh) if request.name.starts_with(mesh_tools::PREFIX) => {
                let mesh = mesh.clone();
                let arguments = request.arguments.unwrap_or_default();
                let sink = meta.progress;
                let call = async move {
                    let result =
                        mesh_tools::call(&mesh, &request.name, &arguments, sink.as_ref()).await;
                    drop(sink);
                    result
                };
                Ok(match self.dispatch.run(call).await {
                    Ok(value) => CallToolResult::structured(value),
                    Err(message) => CallToolResult::error(vec![ContentBlock::text(message)]),
                })
            }
            _ => {
                let tools = self.tools.clone();
                let cancel = context.ct.clone();
                let call = async move {
                    tools
                        .call(&request.name, request.arguments, meta, &cancel)
                        .await
                };
                self.dispatch.run(call).await
            }
        };
        // The call's store (and with it the sink) is gone: let the forwarder
        // send what is queued, so every progress notification precedes the
        // result. Bounded, so a stalled client cannot hold the result back.
        if let Some(task) = forwarder
            && tokio::time::timeout(PROGRESS_FLUSH, task).await.is_err()
        {
            tracing::debug!("progress notifications still queued when the result was sent");
        }
        match outcome {
            Ok(result) => Ok(result.into()),
            // MCP: an unknown tool is a protocol error (-32602).
            Err(unknown) => Err(ErrorData::invalid_params(unknown.to_string(), None)),
        }
    }
}

/// Longest wait for queued progress notifications once a call has ended.
const PROGRESS_FLUSH: std::time::Duration = std::time::Duration::from_secs(1);

/// A sink whose reports become `notifications/progress` for `token`, sent
/// by a task that ends when the call's store (and so the sink) is dropped.
fn forward_progress(
    token: ProgressToken,
    peer: Peer<RoleServer>,
) -> (ProgressSink, tokio::task::JoinHandle<()>) {
    let (sink, mut reports) = progress::channel();
    let task = tokio::spawn(async move {
        while let Some(report) = reports.recv().await {
            let mut param = ProgressNotificationParam::new(token.clone(), report.done);
            param.total = report.total;
            param.message = report.message;
            if let Err(e) = peer.notify_progress(param).await {
                tracing::debug!("progress notification not sent: {e}");
                break;
            }
        }
    });
    (sink, task)
}
