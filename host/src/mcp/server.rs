//! The MCP server: an rmcp `ServerHandler` over the [`ToolService`], served
//! on stdio. The handler only translates: MCP requests in, the service's
//! answers out. Validation, gates, usage and mapping live in the service.

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, Implementation, ListResourcesResult, ListToolsResult,
    PaginatedRequestParams, ProgressNotificationParam, ProgressToken, ReadResourceRequestParams,
    ReadResourceResponse, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::{NotificationContext, RequestContext};
use rmcp::{ErrorData, Peer, RoleServer, ServerHandler, ServiceExt};

use super::dispatch::{Dispatch, serve_on_own_thread};
use crate::capability::progress::{self, ProgressSink};
use crate::service::gate::{META_AGENT, META_BUDGET, META_TOKEN};
use crate::service::resources::{self, ResourceError};
use crate::service::{CallMeta, ToolService};

const INSTRUCTIONS: &str = "toolmesh serves sandboxed WebAssembly tools. Tool names are \
`<plugin>__<tool>`; every call runs in a fresh sandbox under the plugin's limits.";

/// The MCP server of a toolmesh host.
#[derive(Clone)]
pub struct McpServer {
    service: ToolService,
    dispatch: Dispatch,
}

impl McpServer {
    /// A server for `service`'s tools.
    pub fn new(service: ToolService) -> Self {
        Self {
            service,
            dispatch: Dispatch::default(),
        }
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
        Ok(ListToolsResult::with_all_items(self.service.list()))
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        // Plugins installed while the client is connected (from a peer, say)
        // change the tool list: tell the client.
        let mut changes = self.service.plugins().registry().changes();
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
        Ok(ListResourcesResult::with_all_items(resources::list(
            &self.service,
        )))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        match resources::read(&self.service, &request.uri).await {
            Ok(result) => Ok(result.into()),
            Err(e @ ResourceError::NotFound(_)) => {
                Err(ErrorData::resource_not_found(e.to_string(), None))
            }
            Err(e) => Err(ErrorData::internal_error(e.to_string(), None)),
        }
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.service.get(name)
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
            operator: false,
        };
        let service = self.service.clone();
        let cancel = context.ct.clone();
        let call = async move {
            service
                .call(&request.name, request.arguments, meta, &cancel)
                .await
        };
        let outcome = self.dispatch.run(call).await;
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
