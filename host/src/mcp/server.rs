//! The MCP server: an rmcp `ServerHandler` over the [`ToolService`], served
//! on stdio or, through [`crate::http`], over Streamable HTTP. The handler
//! only translates: MCP requests in, the service's answers out. Validation,
//! gates, usage and mapping live in the service. Over HTTP it also takes
//! the caller the edge authenticated (an agent cannot claim another), holds
//! a session to the client that opened it, caps the client's calls in
//! flight, and audits each request.
//!
//! Per request it wires the call's way back to the client: progress, log
//! records at the client's level, and questions (elicitation, sampling,
//! roots) as requests on the session (2025-11-25) or input-required rounds
//! (2026-07-28). Per session it keeps the log level and the resource
//! subscriptions.

// Logging, sampling and subscribe are legacy in rmcp (SEP-2577) but what
// 2025-11-25 clients use.
#![allow(deprecated)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Instant, SystemTime};

use rmcp::model::{
    CacheScope, CallToolRequestParams, CallToolResponse, ClientCapabilities, CompleteRequestParams,
    CompleteResult, GetPromptRequestParams, GetPromptResponse, Implementation,
    InitializeRequestParams, InitializeResult, InputResponses, ListPromptsResult,
    ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
    ProgressNotificationParam, ProgressToken, ReadResourceRequestParams, ReadResourceResponse,
    ReadResourceResult, Resource, ResourceContents, ServerCapabilities, ServerConfig,
    SetLevelRequestMethod, SetLevelRequestParams, SubscribeRequestMethod, SubscribeRequestParams,
    SubscriptionFilter, Tool, UnsubscribeRequestMethod, UnsubscribeRequestParams,
};
use rmcp::service::{
    NotificationContext, RequestContext, SubscriptionContext, SubscriptionSendError,
};
use rmcp::{ErrorData, Peer, RoleServer, ServerHandler, ServiceExt};
use serde_json::{Value, json};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::client_link::{Declared, PeerLink, RoundLink};
use super::dispatch::{Dispatch, serve_on_own_thread};
use super::logging;
use super::mrtr::{self, Round, RoundScope, RoundStates};
use super::paging::{self, LIST_TTL_MS};
use super::subscriptions::{self, Subscriptions};
use crate::audit::{self, AuditFilter, AuditLog, AuditRecord, unix_ms};
use crate::capability::client::{ClientLink, feature_name};
use crate::capability::log::client_channel;
use crate::capability::progress::{self, ProgressSink};
use crate::http::edge::EdgeCaller;
use crate::plugin::tool::NAMESPACE_SEPARATOR;
use crate::service::admin_tools;
use crate::service::gate::{META_AGENT, META_BUDGET, META_TOKEN};
use crate::service::prompts::{self, PromptError};
use crate::service::resources::{self, ResourceError};
use crate::service::result;
use crate::service::{CallMeta, ToolService};
use crate::text;
use crate::wit::LogLevel;

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
    /// The session's log level (2025-11-25 `logging/setLevel`): `None`
    /// until set; `Some(None)` when set above anything a plugin logs.
    log_level: Arc<Mutex<Option<Option<LogLevel>>>>,
    /// The session's resource subscriptions (2025-11-25).
    subscriptions: Subscriptions,
    /// Cancelled when the last clone of this server (the session) is gone:
    /// the session's notification tasks end with it.
    session_over: CancellationToken,
    _session_guard: Arc<tokio_util::sync::DropGuard>,
}

/// The key input-required states are sealed with, made once per process.
fn round_states() -> Result<&'static RoundStates, ErrorData> {
    static STATES: OnceLock<Option<RoundStates>> = OnceLock::new();
    STATES
        .get_or_init(|| match RoundStates::new() {
            Ok(states) => Some(states),
            Err(e) => {
                tracing::error!("{e:#}");
                None
            }
        })
        .as_ref()
        .ok_or_else(|| ErrorData::internal_error("the host has no request-state key", None))
}

/// Whether the request speaks the stateless 2026-07-28 protocol (or later).
fn stateless(context: &RequestContext<RoleServer>) -> bool {
    context
        .protocol_version()
        .is_some_and(|version| !version.has_initialize())
}

/// A `_meta` string of the request.
fn meta_text(context: &RequestContext<RoleServer>, key: &str) -> Option<String> {
    context
        .meta
        .0
        .0
        .get(key)
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// What one request's call needs from the transport, and the tasks that
/// forward its progress and log records (flushed before the result).
struct CallWiring {
    meta: CallMeta,
    declared: Declared,
    forwarders: Forwarders,
    rounds: Option<Rounds>,
}

/// A 2026-07-28 call's link, and where it says why it stopped.
type Rounds = (
    Arc<RoundLink>,
    tokio::sync::mpsc::UnboundedReceiver<super::client_link::RoundEnd>,
);

/// The tasks sending a call's progress and log notifications; each ends
/// when the call's store (holding the sending end) is gone.
#[derive(Default)]
struct Forwarders(Vec<tokio::task::JoinHandle<()>>);

impl Forwarders {
    /// Waits (bounded, so a stalled client cannot hold the result back) for
    /// what is queued to be sent, so every notification precedes the result.
    async fn flush(self) {
        for task in self.0 {
            if tokio::time::timeout(PROGRESS_FLUSH, task).await.is_err() {
                tracing::debug!("notifications still queued when the result was sent");
            }
        }
    }
}

/// The URI of the audit log resource (admin clients only).
pub const AUDIT_URI: &str = "toolmesh://audit";

/// How many audit records the resource shows (the newest).
const AUDIT_RESOURCE_RECORDS: usize = 1000;

impl McpServer {
    /// A server for `service`'s tools.
    pub fn new(service: ToolService) -> Self {
        let session_over = CancellationToken::new();
        Self {
            service,
            dispatch: Dispatch::default(),
            audit: None,
            owner: Arc::default(),
            log_level: Arc::default(),
            subscriptions: Subscriptions::default(),
            _session_guard: Arc::new(session_over.clone().drop_guard()),
            session_over,
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
            let (stdin, stdout) = rmcp::transport::io::stdio_pipes();
            let running = server
                .serve(super::stdio_edge::split(stdin, stdout))
                .await?;
            let reason = running.waiting().await?;
            tracing::info!(?reason, "client disconnected");
            Ok(())
        })
        .await
    }
}

impl McpServer {
    /// Wires a call of `context`'s request: who calls, progress, log records
    /// at the client's level, and the way back to the client. `given` are
    /// the answers the request brought (2026-07-28).
    fn wire(
        &self,
        context: &RequestContext<RoleServer>,
        edge: Option<&EdgeCaller>,
        given: BTreeMap<String, Value>,
    ) -> CallWiring {
        let declared = Declared::of(context.client_capabilities().as_ref());
        let mut forwarders = Forwarders::default();
        let progress = context.meta.get_progress_token().map(|token| {
            let (sink, task) = forward_progress(token, context.peer.clone());
            forwarders.0.push(task);
            sink
        });
        let modern = stateless(context);
        let level = if modern {
            meta_text(context, logging::META_LOG_LEVEL)
                .and_then(|name| logging::least_level(&name))
                .flatten()
        } else {
            match self.log_level.lock() {
                Ok(level) => level.flatten(),
                Err(poisoned) => poisoned.into_inner().flatten(),
            }
        };
        let client_log = level.map(|least| {
            let (sink, records) = client_channel(least);
            forwarders
                .0
                .push(logging::forward(records, context.peer.clone()));
            sink
        });
        let (client_link, rounds): (Arc<dyn ClientLink>, _) = if modern {
            let (link, ended) = RoundLink::new(declared, given);
            (link.clone(), Some((link, ended)))
        } else {
            let link = PeerLink::new(context.peer.clone(), declared);
            (Arc::new(link), None)
        };
        let meta = CallMeta {
            request_id: context.id.to_string(),
            client: context.client_info().map(|info| info.name),
            progress,
            agent: meta_text(context, META_AGENT),
            token: meta_text(context, META_TOKEN),
            budget: meta_text(context, META_BUDGET),
            operator: false,
            caller: edge.map(|e| e.auth.caller.clone()),
            client_link: Some(client_link),
            client_log,
        };
        CallWiring {
            meta,
            declared,
            forwarders,
            rounds,
        }
    }

    /// The answers a retried request brought (2026-07-28): those sealed in
    /// its state, verified, and its `inputResponses`.
    fn given(
        context: &RequestContext<RoleServer>,
        scope: &RoundScope<'_>,
        input_responses: Option<&InputResponses>,
        request_state: Option<&str>,
    ) -> Result<BTreeMap<String, Value>, ErrorData> {
        if !stateless(context) || (input_responses.is_none() && request_state.is_none()) {
            return Ok(BTreeMap::new());
        }
        round_states()?.given(scope, input_responses, request_state)
    }

    /// The wiring of a call that may ask its client (`scope` names it): the
    /// answers the request brought, verified, and the rest of [`Self::wire`].
    fn wire_call(
        &self,
        context: &RequestContext<RoleServer>,
        edge: Option<&EdgeCaller>,
        scope: &RoundScope<'_>,
        input_responses: Option<&InputResponses>,
        request_state: Option<&str>,
    ) -> Result<CallWiring, ErrorData> {
        let given = Self::given(context, scope, input_responses, request_state)?;
        Ok(self.wire(context, edge, given))
    }

    /// The page of `items` `request`'s cursor asks for, and the next cursor.
    fn page<T>(
        &self,
        items: Vec<T>,
        request: Option<PaginatedRequestParams>,
    ) -> Result<(Vec<T>, Option<String>), ErrorData> {
        let version = self.service.plugins().registry().version();
        let cursor = request.and_then(|r| r.cursor);
        paging::page(items, cursor.as_deref(), version)
    }

    /// Runs `call` to its end, or (2026-07-28) until it stops to ask its
    /// client; then flushes its notifications.
    async fn run_call<T: Send + 'static>(
        &self,
        call: impl Future<Output = T> + Send + 'static,
        forwarders: Forwarders,
        rounds: Option<Rounds>,
        scope: &RoundScope<'_>,
    ) -> Result<Round<T>, ErrorData> {
        let run = self.dispatch.run(call);
        let round = match rounds {
            Some((link, ended)) => match round_states() {
                Ok(states) => mrtr::run(run, &link, ended, states, scope).await,
                Err(e) => Err(e),
            },
            None => Ok(Round::Done(run.await)),
        };
        forwarders.flush().await;
        round
    }

    /// Audits a request without sizes.
    async fn audit_simple(
        &self,
        edge: Option<&EdgeCaller>,
        method: &'static str,
        target: Option<&str>,
        outcome: &'static str,
        started: Instant,
    ) {
        if let Some(edge) = edge {
            self.audit(edge, AuditEntry::new(method, target, outcome, started))
                .await;
        }
    }
}

/// The audit outcome of a call that may have stopped to ask its client.
fn round_outcome<T, E>(round: &Result<Round<Result<T, E>>, ErrorData>) -> &'static str {
    match round {
        Ok(Round::Done(Ok(_))) => "ok",
        Ok(Round::InputRequired(_)) => "input_required",
        _ => "error",
    }
}

/// The owner a round's state is bound to.
fn owner_of(edge: Option<&EdgeCaller>) -> &str {
    edge.map_or("local", |e| e.auth.client.as_str())
}

/// Client capabilities naming `features`, for a -32021 error.
fn required(features: &[crate::wit::ClientFeature]) -> ClientCapabilities {
    let object: serde_json::Map<String, Value> = features
        .iter()
        .map(|f| (feature_name(*f).to_owned(), json!({})))
        .collect();
    serde_json::from_value(Value::Object(object)).unwrap_or_default()
}

/// Sets 2026-07-28 cache hints on a list result.
macro_rules! cache_hints {
    ($result:expr, $context:expr, $scope:expr) => {{
        let mut result = $result;
        if stateless($context) {
            result.ttl_ms = Some(LIST_TTL_MS);
            result.cache_scope = Some($scope);
        }
        result
    }};
}

impl ServerHandler for McpServer {
    #[allow(deprecated)] // logging: legacy-only in rmcp, still what 2025-11-25 clients use
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tool_list_changed()
                .enable_resources()
                .enable_resources_subscribe()
                .enable_prompts()
                .enable_completions()
                .enable_logging()
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
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let started = Instant::now();
        let edge = self.edge_caller(&context)?;
        // The admin tools are listed only to those who may call them.
        let admin = edge.as_ref().is_none_or(|e| e.auth.caller.admin);
        let mut tools = self.service.list();
        if !admin {
            let prefix = format!("{}{NAMESPACE_SEPARATOR}", admin_tools::NAMESPACE);
            tools.retain(|t| !t.name.starts_with(&prefix));
        }
        let (tools, next) = self.page(tools, request)?;
        let mut result = ListToolsResult::with_all_items(tools);
        result.next_cursor = next;
        self.audit_simple(edge.as_ref(), "tools/list", None, "ok", started)
            .await;
        let scope = if admin {
            CacheScope::Private
        } else {
            CacheScope::Public
        };
        Ok(cache_hints!(result, &context, scope))
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        // Plugins installed while the client is connected (from a peer, say)
        // change the tool list: tell the client.
        let mut changes = self.service.plugins().registry().changes();
        let peer = context.peer;
        if let Some(updates) = self.service.plugins().resource_updates() {
            subscriptions::forward(
                updates.subscribe(),
                self.service.plugins().registry().clone(),
                self.subscriptions.clone(),
                peer.clone(),
                self.session_over.clone(),
            );
        }
        let session_over = self.session_over.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = session_over.cancelled() => return,
                    changed = changes.changed() => {
                        if changed.is_err() || peer.notify_tool_list_changed().await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
    }

    #[allow(deprecated)] // the 2025-11-25 request; 2026-07-28 sets the level per request
    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        if stateless(&context) {
            return Err(ErrorData::method_not_found::<SetLevelRequestMethod>());
        }
        self.edge_caller(&context)?;
        let name = serde_json::to_value(request.level)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let least = logging::least_level(&name).ok_or_else(|| {
            ErrorData::invalid_params(format!("unknown log level `{name}`"), None)
        })?;
        match self.log_level.lock() {
            Ok(mut level) => *level = Some(least),
            Err(poisoned) => *poisoned.into_inner() = Some(least),
        }
        Ok(())
    }

    /// 2026-07-28: `tools/list_changed` and resource updates travel on
    /// `subscriptions/listen`.
    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        let uris: Vec<String> = requested
            .resource_subscriptions
            .iter()
            .flatten()
            .filter(|uri| resources::exists(&self.service, uri))
            .take(subscriptions::MAX_SUBSCRIPTIONS)
            .cloned()
            .collect();
        let filter = SubscriptionFilter::builder().tools_list_changed();
        Some(if uris.is_empty() {
            filter.build()
        } else {
            filter.resource_subscriptions(uris).build()
        })
    }

    async fn listen(&self, subscription: SubscriptionContext) -> Result<(), ErrorData> {
        let accepted = subscription.sink().accepted().clone();
        let tools = accepted.tools_list_changed == Some(true);
        let uris = accepted.resource_subscriptions.clone().unwrap_or_default();
        let mut changes = self.service.plugins().registry().changes();
        let mut updates = match self.service.plugins().resource_updates() {
            Some(updates) if !uris.is_empty() => updates.subscribe(),
            // Nothing to hear: a receiver that never yields.
            _ => broadcast::channel(1).1,
        };
        let registry = self.service.plugins().registry().clone();
        loop {
            let sent = tokio::select! {
                _ = subscription.cancelled() => return Ok(()),
                changed = changes.changed(), if tools => {
                    if changed.is_err() {
                        return Ok(());
                    }
                    subscription.sink().notify_tool_list_changed().await
                }
                update = updates.recv(), if !uris.is_empty() => match update {
                    Ok(update) => match subscriptions::public_uri(&registry, &update) {
                        Some(uri) if uris.contains(&uri) => {
                            subscription.sink().notify_resource_updated(uri).await
                        }
                        _ => Ok(()),
                    },
                    Err(broadcast::error::RecvError::Lagged(_)) => Ok(()),
                    Err(broadcast::error::RecvError::Closed) => return Ok(()),
                },
            };
            if matches!(
                sent,
                Err(SubscriptionSendError::SubscriptionClosed | SubscriptionSendError::Service(_))
            ) {
                return Ok(());
            }
        }
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let started = Instant::now();
        let edge = self.edge_caller(&context)?;
        let mut list = resources::list(&self.service);
        if let Some(edge) = &edge
            && edge.auth.caller.admin
            && self.audit.is_some()
        {
            list.push(audit_resource());
        }
        let (page, next) = self.page(list, request)?;
        let mut result = ListResourcesResult::with_all_items(page);
        result.next_cursor = next;
        self.audit_simple(edge.as_ref(), "resources/list", None, "ok", started)
            .await;
        Ok(cache_hints!(result, &context, CacheScope::Private))
    }

    async fn list_resource_templates(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        let started = Instant::now();
        let edge = self.edge_caller(&context)?;
        let (page, next) = self.page(resources::templates(&self.service), request)?;
        let mut result = ListResourceTemplatesResult::with_all_items(page);
        result.next_cursor = next;
        let method = "resources/templates/list";
        self.audit_simple(edge.as_ref(), method, None, "ok", started)
            .await;
        Ok(cache_hints!(result, &context, CacheScope::Public))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let started = Instant::now();
        let edge = self.edge_caller(&context)?;
        let uri = request.uri.clone();
        let read = match (&edge, &self.audit) {
            (Some(edge), Some(audit)) if uri == AUDIT_URI && edge.auth.caller.admin => {
                Ok(Round::Done(read_audit(audit).await))
            }
            _ => {
                let scope = RoundScope {
                    owner: owner_of(edge.as_ref()),
                    method: "resources/read",
                    target: &uri,
                };
                let CallWiring {
                    meta,
                    forwarders,
                    rounds,
                    ..
                } = self.wire_call(
                    &context,
                    edge.as_ref(),
                    &scope,
                    request.input_responses.as_ref(),
                    request.request_state.as_deref(),
                )?;
                let service = self.service.clone();
                let cancel = context.ct.clone();
                let target = uri.clone();
                let call = async move { resources::read(&service, &target, meta, &cancel).await };
                self.run_call(call, forwarders, rounds, &scope).await
            }
        };
        let outcome = round_outcome(&read);
        self.audit_simple(
            edge.as_ref(),
            "resources/read",
            Some(&uri),
            outcome,
            started,
        )
        .await;
        match read? {
            Round::InputRequired(input) => Ok(input.into()),
            Round::Done(Ok(result)) => {
                let result = if stateless(&context) {
                    result.with_ttl_ms(0).with_cache_scope(CacheScope::Private)
                } else {
                    result
                };
                Ok(result.into())
            }
            Round::Done(Err(e @ ResourceError::NotFound(_))) => Err(ErrorData::resource_not_found(
                e.to_string(),
                Some(json!({ "uri": uri })),
            )),
            Round::Done(Err(e @ ResourceError::Denied { .. })) => Err(ErrorData::invalid_request(
                e.to_string(),
                Some(json!({ "uri": uri })),
            )),
            Round::Done(Err(e)) => Err(ErrorData::internal_error(
                e.to_string(),
                Some(json!({ "uri": uri })),
            )),
        }
    }

    #[allow(deprecated)] // 2025-11-25 only; 2026-07-28 subscribes with subscriptions/listen
    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        if stateless(&context) {
            return Err(ErrorData::method_not_found::<SubscribeRequestMethod>());
        }
        self.edge_caller(&context)?;
        if !resources::exists(&self.service, &request.uri) {
            return Err(ErrorData::resource_not_found(
                format!(
                    "no resource `{}` to subscribe to",
                    text::truncate(&request.uri, 256)
                ),
                Some(json!({ "uri": request.uri })),
            ));
        }
        self.subscriptions
            .add(request.uri)
            .map_err(|e| ErrorData::invalid_request(e, None))
    }

    #[allow(deprecated)] // 2025-11-25 only
    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        if stateless(&context) {
            return Err(ErrorData::method_not_found::<UnsubscribeRequestMethod>());
        }
        self.edge_caller(&context)?;
        self.subscriptions.remove(&request.uri);
        Ok(())
    }

    async fn list_prompts(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        let started = Instant::now();
        let edge = self.edge_caller(&context)?;
        let (page, next) = self.page(prompts::list(&self.service), request)?;
        let mut result = ListPromptsResult::with_all_items(page);
        result.next_cursor = next;
        self.audit_simple(edge.as_ref(), "prompts/list", None, "ok", started)
            .await;
        Ok(cache_hints!(result, &context, CacheScope::Public))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let started = Instant::now();
        let edge = self.edge_caller(&context)?;
        let name = request.name.clone();
        let scope = RoundScope {
            owner: owner_of(edge.as_ref()),
            method: "prompts/get",
            target: &name,
        };
        let CallWiring {
            meta,
            forwarders,
            rounds,
            ..
        } = self.wire_call(
            &context,
            edge.as_ref(),
            &scope,
            request.input_responses.as_ref(),
            request.request_state.as_deref(),
        )?;
        let service = self.service.clone();
        let cancel = context.ct.clone();
        let target = name.clone();
        let arguments = request.arguments;
        let call = async move { prompts::get(&service, &target, arguments, meta, &cancel).await };
        let got = self.run_call(call, forwarders, rounds, &scope).await;
        let outcome = round_outcome(&got);
        self.audit_simple(edge.as_ref(), "prompts/get", Some(&name), outcome, started)
            .await;
        match got? {
            Round::InputRequired(input) => Ok(input.into()),
            Round::Done(Ok(result)) => Ok(result.into()),
            Round::Done(Err(e @ (PromptError::NotFound(_) | PromptError::InvalidArguments(_)))) => {
                Err(ErrorData::invalid_params(e.to_string(), None))
            }
            Round::Done(Err(e @ PromptError::Denied(_))) => {
                Err(ErrorData::invalid_request(e.to_string(), None))
            }
            Round::Done(Err(e)) => Err(ErrorData::internal_error(e.to_string(), None)),
        }
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        let started = Instant::now();
        let edge = self.edge_caller(&context)?;
        let context_arguments: Vec<(String, String)> = request
            .context
            .and_then(|c| c.arguments)
            .map(|arguments| arguments.into_iter().collect())
            .unwrap_or_default();
        let completed = prompts::complete(
            &self.service,
            &request.r#ref,
            &request.argument.name,
            &request.argument.value,
            context_arguments,
            &context.ct,
        )
        .await;
        let outcome = if completed.is_ok() { "ok" } else { "error" };
        self.audit_simple(edge.as_ref(), "completion/complete", None, outcome, started)
            .await;
        let info = completed.map_err(|e| ErrorData::internal_error(e, None))?;
        Ok(CompleteResult::new(info))
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
        let name = request.name.clone();
        let scope = RoundScope {
            owner: owner_of(edge.as_ref()),
            method: "tools/call",
            target: &name,
        };
        let CallWiring {
            meta,
            declared,
            forwarders,
            rounds,
        } = self.wire_call(
            &context,
            edge.as_ref(),
            &scope,
            request.input_responses.as_ref(),
            request.request_state.as_deref(),
        )?;
        // A tool that needs a client feature the client lacks is refused
        // before it runs.
        let missing: Vec<_> = self
            .service
            .needs(&name)
            .into_iter()
            .filter(|feature| !declared.has(*feature))
            .collect();
        if !missing.is_empty() {
            let names: Vec<_> = missing.iter().map(|f| feature_name(*f)).collect();
            let message = format!(
                "`{}` needs the client to declare the {} capability, which this client did not",
                text::truncate(&name, 128),
                names.join(" and ")
            );
            self.audit_simple(edge.as_ref(), "tools/call", Some(&name), "refused", started)
                .await;
            if stateless(&context) {
                let mut error = ErrorData::missing_required_client_capability(required(&missing));
                error.message =
                    format!("Missing required client capability: {}", names.join(", ")).into();
                return Err(error);
            }
            return Ok(result::error_result(message).into());
        }
        let service = self.service.clone();
        let cancel = context.ct.clone();
        let arguments = request.arguments;
        let target = name.clone();
        let call = async move { service.call(&target, arguments, meta, &cancel).await };
        let outcome = self.run_call(call, forwarders, rounds, &scope).await;
        if let Some(edge) = edge.as_ref().filter(|_| audited) {
            let (outcome_name, bytes_out) = match &outcome {
                Ok(Round::Done(Ok(result))) => (
                    if result.is_error == Some(true) {
                        "error"
                    } else {
                        "ok"
                    },
                    serde_json::to_vec(result).map_or(0, |v| v.len()),
                ),
                Ok(Round::InputRequired(_)) => ("input_required", 0),
                Ok(Round::Done(Err(_))) => ("unknown_tool", 0),
                Err(_) => ("error", 0),
            };
            let entry = AuditEntry {
                bytes_in,
                bytes_out,
                ..AuditEntry::new("tools/call", Some(&name), outcome_name, started)
            };
            self.audit(edge, entry).await;
        }
        match outcome? {
            Round::InputRequired(input) => Ok(input.into()),
            Round::Done(Ok(result)) => Ok(result.into()),
            // MCP: an unknown tool is a protocol error (-32602).
            Round::Done(Err(unknown)) => Err(ErrorData::invalid_params(unknown.to_string(), None)),
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
