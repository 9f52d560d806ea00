//! The MCP server: an rmcp `ServerHandler` over the [`ToolService`], served
//! on stdio or, through [`crate::http`], over Streamable HTTP. The handler
//! only translates: MCP requests in, the service's answers out. Validation,
//! gates, usage and mapping live in the service. Over HTTP it also takes
//! the caller the edge authenticated (an agent cannot claim another), holds
//! a session to the client that opened it, caps the client's calls in
//! flight, and audits each request.

use std::sync::{Arc, OnceLock};
use std::time::{Instant, SystemTime};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, Implementation, InitializeRequestParams,
    InitializeResult, ListPromptsRequestMethod, ListPromptsResult, ListResourcesResult,
    ListToolsResult, PaginatedRequestParams, ProgressNotificationParam, ProgressToken,
    ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Resource,
    ResourceContents, ServerCapabilities, ServerConfig, SubscriptionFilter, Tool,
};
use rmcp::service::{NotificationContext, RequestContext, SubscriptionContext};
use rmcp::{ErrorData, Peer, RoleServer, ServerHandler, ServiceExt};

use super::dispatch::{Dispatch, serve_on_own_thread};
use crate::audit::{self, AuditFilter, AuditLog, AuditRecord, unix_ms};
use crate::capability::progress::{self, ProgressSink};
use crate::http::edge::EdgeCaller;
use crate::service::gate::{META_AGENT, META_BUDGET, META_TOKEN};
use crate::service::resources::{self, ResourceError};
use crate::service::result;
use crate::service::{CallMeta, ToolService};
use crate::text;

const INSTRUCTIONS: &str = "toolmesh serves sandboxed WebAssembly tools. Tool names are \
`<plugin>__<tool>`; every call runs in a fresh sandbox under the plugin's limits.";

/// The MCP server of a toolmesh host.
#[derive(Clone)]
pub struct McpServer {
    service: ToolService,
    dispatch: Dispatch,
    audit: Option<AuditLog>,
    /// The client that opened this session (HTTP): no other may use it.
    owner: Arc<OnceLock<String>>,
}

/// The URI of the audit log resource (admin clients only).
pub const AUDIT_URI: &str = "toolmesh://audit";

/// How many audit records the resource shows (the newest).
const AUDIT_RESOURCE_RECORDS: usize = 1000;

impl McpServer {
    /// A server for `service`'s tools.
    pub fn new(service: ToolService) -> Self {
        Self {
            service,
            dispatch: Dispatch::default(),
            audit: None,
            owner: Arc::default(),
        }
    }

    /// A server for one HTTP session (or one stateless request), auditing
    /// to `audit`.
    pub fn for_http(service: ToolService, audit: Option<AuditLog>) -> Self {
        Self {
            audit,
            ..Self::new(service)
        }
    }

    /// The caller the HTTP edge authenticated, checked against the
    /// session's owner. `Ok(None)` over stdio.
    fn edge_caller(
        &self,
        context: &RequestContext<RoleServer>,
    ) -> Result<Option<EdgeCaller>, ErrorData> {
        let Some(edge) = context
            .extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<EdgeCaller>())
        else {
            return Ok(None);
        };
        let owner = self.owner.get_or_init(|| edge.auth.client.clone());
        if *owner != edge.auth.client {
            return Err(ErrorData::invalid_request(
                "this session belongs to another client: initialize a session of your own",
                None,
            ));
        }
        Ok(Some(edge.clone()))
    }

    /// Audits one request of `edge`'s.
    async fn audit(&self, edge: &EdgeCaller, entry: AuditEntry<'_>) {
        let Some(audit) = &self.audit else {
            return;
        };
        audit
            .record(AuditRecord {
                time_ms: unix_ms(SystemTime::now()),
                client: Some(edge.auth.client.clone()),
                agent: edge.auth.caller.agent.clone(),
                remote: edge.remote.map(|r| r.to_string()),
                method: entry.method.into(),
                target: entry.target.map(|t| text::truncate(t, 256).into_owned()),
                outcome: entry.outcome.into(),
                detail: entry.detail,
                latency_us: entry.started.elapsed().as_micros() as u64,
                bytes_in: entry.bytes_in as u64,
                bytes_out: entry.bytes_out as u64,
            })
            .await;
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

    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, ErrorData> {
        // The session belongs to the client that opens it.
        self.edge_caller(&context)?;
        context.peer.set_peer_info(request.clone());
        self.negotiate_initialize(&request)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let started = Instant::now();
        let edge = self.edge_caller(&context)?;
        let tools = ListToolsResult::with_all_items(self.service.list());
        if let Some(edge) = &edge {
            self.audit(edge, AuditEntry::new("tools/list", None, "ok", started))
                .await;
        }
        Ok(tools)
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

    /// No prompts yet: say so (-32601), as the capabilities do, rather
    /// than answering an empty list.
    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        Err(ErrorData::method_not_found::<ListPromptsRequestMethod>())
    }

    /// 2026-07-28: `tools/list_changed` travels on `subscriptions/listen`.
    fn accepted_subscription_filter(
        &self,
        _requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        Some(SubscriptionFilter::builder().tools_list_changed().build())
    }

    async fn listen(&self, subscription: SubscriptionContext) -> Result<(), ErrorData> {
        if subscription.sink().accepted().tools_list_changed != Some(true) {
            subscription.cancelled().await;
            return Ok(());
        }
        let mut changes = self.service.plugins().registry().changes();
        loop {
            tokio::select! {
                _ = subscription.cancelled() => return Ok(()),
                changed = changes.changed() => {
                    if changed.is_err()
                        || subscription.sink().notify_tool_list_changed().await.is_err()
                    {
                        return Ok(());
                    }
                }
            }
        }
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let started = Instant::now();
        let edge = self.edge_caller(&context)?;
        let mut list = resources::list(&self.service);
        if let Some(edge) = &edge {
            if edge.auth.caller.admin && self.audit.is_some() {
                list.push(audit_resource());
            }
            self.audit(edge, AuditEntry::new("resources/list", None, "ok", started))
                .await;
        }
        Ok(ListResourcesResult::with_all_items(list))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let started = Instant::now();
        let edge = self.edge_caller(&context)?;
        let read = match (&edge, &self.audit) {
            (Some(edge), Some(audit)) if request.uri == AUDIT_URI && edge.auth.caller.admin => {
                read_audit(audit).await
            }
            _ => resources::read(&self.service, &request.uri).await,
        };
        if let Some(edge) = &edge {
            let outcome = if read.is_ok() { "ok" } else { "error" };
            let entry = AuditEntry::new("resources/read", Some(&request.uri), outcome, started);
            self.audit(edge, entry).await;
        }
        match read {
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
        let started = Instant::now();
        let edge = self.edge_caller(&context)?;
        // Sizes are for the audit log only: skip the work without one.
        let audited = edge.is_some() && self.audit.is_some();
        let bytes_in = match &request.arguments {
            Some(a) if audited => serde_json::to_vec(a).map_or(0, |v| v.len()),
            _ => 0,
        };
        // The client's cap on calls in flight, held until the call ends.
        let _slot = match &edge {
            Some(edge) => match edge.allowance.start_call(&edge.auth.client) {
                Ok(slot) => Some(slot),
                Err(too_many) => {
                    let message = too_many.to_string();
                    let entry = AuditEntry {
                        detail: Some(message.clone()),
                        bytes_in,
                        ..AuditEntry::new(
                            "tools/call",
                            Some(&request.name),
                            "rate_limited",
                            started,
                        )
                    };
                    self.audit(edge, entry).await;
                    return Ok(result::error_result(message).into());
                }
            },
            None => None,
        };
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
            caller: edge.as_ref().map(|e| e.auth.caller.clone()),
        };
        let service = self.service.clone();
        let cancel = context.ct.clone();
        let name = request.name.clone();
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
        if let Some(edge) = edge.as_ref().filter(|_| audited) {
            let (outcome_name, bytes_out) = match &outcome {
                Ok(result) => (
                    if result.is_error == Some(true) {
                        "error"
                    } else {
                        "ok"
                    },
                    serde_json::to_vec(result).map_or(0, |v| v.len()),
                ),
                Err(_) => ("unknown_tool", 0),
            };
            let entry = AuditEntry {
                bytes_in,
                bytes_out,
                ..AuditEntry::new("tools/call", Some(&name), outcome_name, started)
            };
            self.audit(edge, entry).await;
        }
        match outcome {
            Ok(result) => Ok(result.into()),
            // MCP: an unknown tool is a protocol error (-32602).
            Err(unknown) => Err(ErrorData::invalid_params(unknown.to_string(), None)),
        }
    }
}

/// What one audited request did.
struct AuditEntry<'a> {
    method: &'static str,
    target: Option<&'a str>,
    outcome: &'static str,
    detail: Option<String>,
    started: Instant,
    bytes_in: usize,
    bytes_out: usize,
}

impl<'a> AuditEntry<'a> {
    fn new(
        method: &'static str,
        target: Option<&'a str>,
        outcome: &'static str,
        started: Instant,
    ) -> Self {
        Self {
            method,
            target,
            outcome,
            detail: None,
            started,
            bytes_in: 0,
            bytes_out: 0,
        }
    }
}

fn audit_resource() -> Resource {
    Resource::new(AUDIT_URI, "audit")
        .with_title("Audit log")
        .with_description("HTTP requests to the tool service, newest last (admin clients only).")
        .with_mime_type("application/json")
}

fn failed(reason: String) -> ResourceError {
    ResourceError::Failed {
        uri: AUDIT_URI.into(),
        reason,
    }
}

async fn read_audit(audit: &AuditLog) -> Result<ReadResourceResult, ResourceError> {
    audit.flush().await;
    let filter = AuditFilter {
        limit: Some(AUDIT_RESOURCE_RECORDS),
        ..AuditFilter::default()
    };
    let dir = audit.dir().to_owned();
    let records = tokio::task::spawn_blocking(move || audit::read(&dir, &filter))
        .await
        .map_err(|e| failed(e.to_string()))?
        .map_err(|e| failed(format!("cannot read the audit log: {e}")))?;
    let text = serde_json::to_string_pretty(&records).map_err(|e| failed(e.to_string()))?;
    Ok(ReadResourceResult::new(vec![ResourceContents::text(
        text, AUDIT_URI,
    )]))
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
