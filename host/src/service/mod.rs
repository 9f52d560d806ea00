//! The tool service: the one path every tool call and listing takes,
//! whatever provides the tool and whichever transport the call came in on.
//! A call is resolved to a provider, its arguments validated against the
//! tool's schema, gated (permission grant, budget), run, recorded in the
//! tool's usage aggregates, and its outcome mapped to an MCP result.
//!
//! - [`provider`]: what a provider offers (list, resolve, run).
//! - [`plugins`]: the plugin registry as a provider, and the host's own calls.
//! - [`mesh_tools`]: the mesh as a provider.
//! - [`gate`]: grants and budgets, asking [`core_plugins`] (typed clients).
//! - [`result`]: outcomes as MCP results, tools as MCP describes them.
//! - [`resources`]: the resources the host serves.

pub mod admin_tools;
pub mod content;
pub mod core_plugins;
pub mod gate;
pub mod mesh_tools;
pub mod plugins;
pub mod prompts;
pub mod provider;
pub mod resources;
pub mod result;

use std::sync::Arc;
use std::time::Instant;

use rmcp::model::{CallToolResult, JsonObject, Tool as McpTool};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::capability::CallInputs;
use crate::capability::client::ClientLink;
use crate::capability::log::ClientLog;
use crate::capability::progress::ProgressSink;
use crate::identity::Caller;
use crate::ops::Operations;
use crate::ops::feed::CallEvent;
use crate::plugin::tool::Tool;
use crate::runtime::GuestUsage;
use crate::text;
use crate::usage::{CallUsage, Outcome, ProcessView, QuotaKind, UsageReport};
use crate::wit::CallContext;
use gate::{Gate, Refusal};
use plugins::PluginTools;
use provider::{Provider, ProviderCall, Runnable};

/// Facts about a call, from the transport that received it.
#[derive(Debug, Clone, Default)]
pub struct CallMeta {
    /// The request id, as text.
    pub request_id: String,
    /// The client's name, if known.
    pub client: Option<String>,
    /// Where the guest's progress reports go, if the client asked for them.
    pub progress: Option<ProgressSink>,
    /// The calling agent (`_meta` key `toolmesh/agent`).
    pub agent: Option<String>,
    /// A permission grant token (`_meta` key `toolmesh/token`).
    pub token: Option<String>,
    /// The budget to charge (`_meta` key `toolmesh/budget`; default: the agent).
    pub budget: Option<String>,
    /// The call comes from the host's operator (the control socket, which
    /// only the data directory's owner can reach): the gate, whose grants
    /// and budgets are for agents, lets it through.
    pub operator: bool,
    /// Who the transport authenticated (HTTP). `None` is the local user
    /// (stdio, the CLI), trusted to name any agent in `_meta`.
    pub caller: Option<Caller>,
    /// The way back to the client (elicitation, sampling, roots).
    pub client_link: Option<Arc<dyn ClientLink>>,
    /// Where the guest's log records for the client go, if it asked.
    pub client_log: Option<ClientLog>,
}

impl CallMeta {
    /// Settles the caller and splits this into what the guest sees of the
    /// call and what its capabilities get. `Err` is the refusal.
    pub fn into_call(mut self) -> Result<(CallContext, CallInputs), String> {
        let caller = self.settle_caller()?;
        Ok((
            CallContext {
                request_id: self.request_id,
                client: self.client,
            },
            CallInputs {
                progress: self.progress,
                caller,
                client: self.client_link,
                client_log: self.client_log,
            },
        ))
    }

    /// Settles who is calling: an authenticated caller is its own agent
    /// (`_meta` may not name another, nor charge another's budget, unless
    /// the caller is an admin); the local user is whoever `_meta` names.
    /// `Err` is the refusal, for the agent to read.
    fn settle_caller(&mut self) -> Result<Arc<Caller>, String> {
        let caller = self.caller.clone().unwrap_or_else(Caller::local);
        let (true, Some(own)) = (caller.authenticated, caller.agent.clone()) else {
            // Not authenticated: trusted to be whoever `_meta` names.
            return Ok(Arc::new(Caller {
                agent: self.agent.clone(),
                ..caller
            }));
        };
        let claimed = self.agent.as_deref().unwrap_or(&own);
        if claimed != own && !caller.admin {
            return Err(format!(
                "denied: this client is authenticated as agent `{own}`, but the request's \
                 `{}` names `{}`: an agent may act only as itself (drop the key, or use a \
                 client with the admin scope)",
                gate::META_AGENT,
                text::truncate(claimed, 128)
            ));
        }
        if let Some(budget) = self.budget.as_deref()
            && budget != claimed
            && !caller.admin
        {
            return Err(format!(
                "denied: agent `{own}` may charge only its own budget, not `{}` (`{}` in _meta)",
                text::truncate(budget, 128),
                gate::META_BUDGET
            ));
        }
        self.agent = Some(claimed.to_owned());
        Ok(Arc::new(Caller {
            agent: self.agent.clone(),
            ..caller
        }))
    }
}

/// The name does not resolve to a tool.
#[derive(Debug, thiserror::Error)]
#[error("unknown tool `{name}`{hint}")]
pub struct UnknownTool {
    /// The name asked for.
    pub name: String,
    hint: String,
}

/// Serves every provider's tools through one gate.
#[derive(Clone)]
pub struct ToolService {
    plugins: Arc<PluginTools>,
    providers: Arc<[Arc<dyn Provider>]>,
    gate: Arc<Gate>,
    process: Option<Arc<ProcessView>>,
    ops: Arc<Operations>,
}

impl ToolService {
    /// A service for the plugin tools `plugins`, behind `gate`.
    pub fn new(plugins: Arc<PluginTools>, gate: Gate) -> Self {
        Self {
            providers: Arc::from([plugins.clone() as Arc<dyn Provider>]),
            plugins,
            gate: Arc::new(gate),
            process: ProcessView::new().map(Arc::new),
            ops: Arc::new(Operations::in_memory()),
        }
    }

    /// Admits calls through, and reports them to, `ops` (lifecycle states,
    /// breakers, the live feed).
    pub fn with_operations(mut self, ops: Arc<Operations>) -> Self {
        self.ops = ops;
        self
    }

    /// The operations calls report to.
    pub fn operations(&self) -> &Arc<Operations> {
        &self.ops
    }

    /// The host process's resource use now.
    pub fn process(&self) -> Option<crate::usage::ProcessSummary> {
        self.process.as_ref().and_then(|p| p.read())
    }

    /// Also serves `provider`'s tools (listed after those already served).
    pub fn with_provider(mut self, provider: Arc<dyn Provider>) -> Self {
        let mut providers = self.providers.to_vec();
        providers.push(provider);
        self.providers = providers.into();
        self
    }

    /// The plugin tools.
    pub fn plugins(&self) -> &Arc<PluginTools> {
        &self.plugins
    }

    /// Every tool, as MCP describes tools.
    pub fn list(&self) -> Vec<McpTool> {
        self.providers
            .iter()
            .flat_map(|p| p.tools())
            .map(|t| result::describe(&t))
            .collect()
    }

    /// Every provider's tools now.
    pub fn tools(&self) -> Vec<Arc<Tool>> {
        self.providers.iter().flat_map(|p| p.tools()).collect()
    }

    /// The MCP description of tool `name`, if there is one.
    pub fn get(&self, name: &str) -> Option<McpTool> {
        self.resolve(name).map(|r| result::describe(r.tool()))
    }

    /// The client features tool `name` needs on every call (none if there
    /// is no such tool).
    pub fn needs(&self, name: &str) -> Vec<crate::wit::ClientFeature> {
        self.resolve(name)
            .map(|r| r.tool().needs.clone())
            .unwrap_or_default()
    }

    fn resolve(&self, name: &str) -> Option<Box<dyn Runnable>> {
        self.providers.iter().find_map(|p| p.resolve(name))
    }

    /// Runs tool `name` with `arguments`, after the gate (a permission
    /// grant, if the tool needs one; the caller's budget, if metering is
    /// on). Only an unknown name is an `Err`; every other failure is an
    /// error result for the agent to read.
    pub async fn call(
        &self,
        name: &str,
        arguments: Option<JsonObject>,
        meta: CallMeta,
        cancel: &CancellationToken,
    ) -> Result<CallToolResult, UnknownTool> {
        self.call_recorded(name, arguments, meta, cancel)
            .await
            .map(|(result, _)| result)
    }

    /// [`ToolService::call`], also returning the call's usage record.
    pub async fn call_recorded(
        &self,
        name: &str,
        arguments: Option<JsonObject>,
        mut meta: CallMeta,
        cancel: &CancellationToken,
    ) -> Result<(CallToolResult, CallUsage), UnknownTool> {
        let Some(runnable) = self.resolve(name) else {
            return Err(self.unknown_tool(name));
        };
        let tool = runnable.tool().clone();
        let started = Instant::now();
        let refuse = |meta: &CallMeta, outcome: Outcome, message: String| {
            let usage = self.record(&tool, started, Run::refused(outcome), meta);
            Ok((result::error_result(message), usage))
        };
        // A paused plugin, or one whose breaker is open, is refused at once.
        let admission = match self.ops.admit(&tool.namespace) {
            Ok(admission) => admission,
            Err(held) => return refuse(&meta, held.outcome(), held.message().to_owned()),
        };
        let arguments = Value::Object(arguments.unwrap_or_default());
        if let Err(problems) = tool.validate_arguments(&arguments) {
            self.ops.finish(admission, Outcome::InvalidArguments);
            let message = format!(
                "invalid arguments for `{}`: {problems}",
                tool.qualified_name
            );
            return refuse(&meta, Outcome::InvalidArguments, message);
        }
        let caller = match meta.settle_caller() {
            Ok(caller) => caller,
            Err(refusal) => {
                self.ops.finish(admission, Outcome::Denied);
                return refuse(&meta, Outcome::Denied, refusal);
            }
        };
        let charge = match self.gate.admit(&tool, &meta).await {
            Ok(charge) => charge,
            Err(refusal) => {
                let (outcome, message) = match refusal {
                    Refusal::Denied(message) => (Outcome::Denied, message),
                    Refusal::Failed(message) => {
                        tracing::warn!(tool = %tool.qualified_name, "{message}");
                        (
                            Outcome::HostError,
                            format!("the host could not admit the call: {message}"),
                        )
                    }
                };
                // The gate's failure is not the plugin's: it does not count against it.
                self.ops.finish(admission, Outcome::Denied);
                return refuse(&meta, outcome, message);
            }
        };
        let call = ProviderCall {
            arguments: arguments.to_string(),
            context: CallContext {
                request_id: std::mem::take(&mut meta.request_id),
                client: meta.client.clone(),
            },
            inputs: CallInputs {
                progress: meta.progress.take(),
                caller,
                client: meta.client_link.take(),
                client_log: meta.client_log.take(),
            },
            cancel: cancel.clone(),
        };
        let bytes_in = call.arguments.len();
        let ran = runnable.run(call).await;
        let guest = ran.usage;
        let mapped = result::map(&tool, ran.outcome);
        self.ops.finish(admission, mapped.outcome);
        if let Some(charge) = charge {
            self.gate.settle(charge, guest.fuel).await;
        }
        let run = Run {
            bytes_in,
            guest,
            bytes_out: mapped.bytes_out,
            outcome: mapped.outcome,
            quota: mapped.quota,
        };
        let usage = self.record(&tool, started, run, &meta);
        Ok((mapped.result, usage))
    }

    /// Records a call's usage in its tool's aggregates, the debug log and
    /// the live feed.
    fn record(&self, tool: &Tool, started: Instant, run: Run, meta: &CallMeta) -> CallUsage {
        let usage = record(tool, started, run);
        let client = meta
            .caller
            .as_ref()
            .and_then(|c| c.client.clone())
            .or_else(|| meta.client.clone());
        self.ops.feed.push(CallEvent {
            seq: 0,
            time_ms: 0,
            tool: tool.qualified_name.clone(),
            plugin: tool.namespace.clone(),
            client,
            agent: meta.agent.clone(),
            outcome: usage.outcome,
            micros: usage.wall.as_micros() as u64,
            fuel: usage.fuel,
            peak_memory_bytes: usage.peak_memory_bytes,
            bytes_in: usage.bytes_in,
            bytes_out: usage.bytes_out,
        });
        usage
    }

    fn unknown_tool(&self, name: &str) -> UnknownTool {
        let hint = if !self.providers.iter().any(|p| p.has_tools()) {
            "; no tools are loaded".to_owned()
        } else {
            "; tools/list shows the available tools".to_owned()
        };
        UnknownTool {
            name: name.chars().take(128).collect(),
            hint,
        }
    }

    /// Usage aggregates of every plugin and tool, and the host process.
    pub fn usage_report(&self) -> UsageReport {
        UsageReport {
            process: self.process.as_ref().and_then(|p| p.read()),
            plugins: self.plugins.usage(),
        }
    }
}

/// What a call did, for its usage record.
#[derive(Debug, Clone, Copy)]
struct Run {
    bytes_in: usize,
    guest: GuestUsage,
    bytes_out: usize,
    outcome: Outcome,
    quota: Option<QuotaKind>,
}

impl Run {
    /// A call refused before it ran.
    fn refused(outcome: Outcome) -> Self {
        Self {
            bytes_in: 0,
            guest: GuestUsage::default(),
            bytes_out: 0,
            outcome,
            quota: None,
        }
    }
}

/// Runs an admitted call for the host itself, records its usage, and maps
/// its outcome. `started` is when the call arrived.
async fn run_recorded(
    runnable: Box<dyn Runnable>,
    call: ProviderCall,
    started: Instant,
) -> (CallToolResult, GuestUsage) {
    let tool = runnable.tool().clone();
    let bytes_in = call.arguments.len();
    let ran = runnable.run(call).await;
    let mapped = result::map(&tool, ran.outcome);
    let run = Run {
        bytes_in,
        guest: ran.usage,
        bytes_out: mapped.bytes_out,
        outcome: mapped.outcome,
        quota: mapped.quota,
    };
    record(&tool, started, run);
    (mapped.result, ran.usage)
}

/// Records one call's usage in its tool's aggregates and the debug log.
fn record(tool: &Tool, started: Instant, run: Run) -> CallUsage {
    let usage = CallUsage {
        fuel: run.guest.fuel,
        peak_memory_bytes: run.guest.peak_memory_bytes,
        wall: started.elapsed(),
        bytes_in: run.bytes_in,
        bytes_out: run.bytes_out,
        outcome: run.outcome,
        quota: run.quota,
    };
    tool.usage.record(&usage);
    tracing::debug!(
        tool = %tool.qualified_name,
        fuel = usage.fuel,
        peak_memory = usage.peak_memory_bytes,
        micros = usage.wall.as_micros() as u64,
        bytes_in = usage.bytes_in,
        bytes_out = usage.bytes_out,
        outcome = ?usage.outcome,
        "call"
    );
    usage
}
