//! Tool calls independent of the transport: resolve the name, validate the
//! arguments against the tool's input schema, run the guest, check its result
//! against the output schema, and express the outcome as an MCP
//! `CallToolResult`. Every failure the agent should read becomes an
//! `isError` result that says what went wrong.

use std::sync::Arc;
use std::time::Instant;

use base64::Engine as _;
use rmcp::model::{CallToolResult, ContentBlock, JsonObject, Tool as McpTool, ToolAnnotations};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::enforce::Enforcement;
use crate::capability::progress::ProgressSink;
use crate::plugin::tool::Tool;
use crate::plugin::{LoadedPlugin, Registry};
use crate::runtime::bindings::{ContentBlock as GuestContent, ToolOutput};
use crate::runtime::{CallError, GuestUsage, Runtime, call_context, output_size};
use crate::usage::{CallUsage, Outcome, ProcessSummary, ProcessView, ToolUsageSummary};

/// Facts about a call, for the guest's `call-context`.
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
}

/// The name does not resolve to a tool.
#[derive(Debug, thiserror::Error)]
#[error("unknown tool `{name}`{hint}")]
pub struct UnknownTool {
    /// The name asked for.
    pub name: String,
    hint: String,
}

/// Serves the registry's tools and keeps their usage.
#[derive(Clone)]
pub struct ToolHost {
    runtime: Arc<Runtime>,
    registry: Arc<Registry>,
    process: Option<Arc<ProcessView>>,
    enforcement: Arc<Enforcement>,
}

impl ToolHost {
    /// A host for `registry`'s plugins on `runtime`.
    pub fn new(runtime: Arc<Runtime>, registry: Arc<Registry>) -> Self {
        Self {
            runtime,
            registry,
            process: ProcessView::new().map(Arc::new),
            enforcement: Arc::new(Enforcement::default()),
        }
    }

    /// Applies `enforcement` to every call.
    pub fn with_enforcement(mut self, enforcement: Enforcement) -> Self {
        self.enforcement = Arc::new(enforcement);
        self
    }

    /// The registry.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Every tool, as MCP describes tools.
    pub fn list(&self) -> Vec<McpTool> {
        self.registry
            .snapshot()
            .tools()
            .map(|t| describe(t))
            .collect()
    }

    /// The MCP description of tool `name`, if there is one.
    pub fn get(&self, name: &str) -> Option<McpTool> {
        let snapshot = self.registry.snapshot();
        snapshot.resolve(name).map(|(_, tool)| describe(tool))
    }

    /// Runs tool `name` with `arguments`, after the host's enforcement (a
    /// permission grant, if the tool needs one; the caller's budget, if
    /// metering is on). Only an unknown name is an `Err`; every other failure
    /// is an error result for the agent to read.
    pub async fn call(
        &self,
        name: &str,
        arguments: Option<JsonObject>,
        meta: CallMeta,
        cancel: &CancellationToken,
    ) -> Result<CallToolResult, UnknownTool> {
        let snapshot = self.registry.snapshot();
        let Some((plugin, tool)) = snapshot.resolve(name) else {
            return Err(unknown_tool(name, snapshot.tool_count()));
        };
        let started = Instant::now();
        let arguments = Value::Object(arguments.unwrap_or_default());
        if let Err(problems) = tool.validate_arguments(&arguments) {
            record(
                tool,
                started,
                0,
                GuestUsage::default(),
                0,
                Outcome::InvalidArguments,
            );
            return Ok(error_result(format!(
                "invalid arguments for `{}`: {problems}",
                tool.qualified_name
            )));
        }
        let charge = match self.enforcement.admit(self, plugin, tool, &meta).await {
            Ok(charge) => charge,
            Err(refusal) => {
                record(tool, started, 0, GuestUsage::default(), 0, Outcome::Denied);
                return Ok(error_result(refusal));
            }
        };
        let (result, guest) = self
            .run(plugin, tool, &arguments, meta, cancel, started)
            .await;
        if let Some(charge) = charge {
            self.enforcement.settle(self, charge, guest.fuel).await;
        }
        Ok(result)
    }

    /// Calls tool `name` for the host itself (no enforcement, no progress)
    /// and returns its structured result, or its error text.
    pub(crate) async fn call_internal(
        &self,
        name: &str,
        arguments: Value,
    ) -> Result<Value, String> {
        let snapshot = self.registry.snapshot();
        let Some((plugin, tool)) = snapshot.resolve(name) else {
            return Err(format!("`{name}` is not loaded"));
        };
        let started = Instant::now();
        if let Err(problems) = tool.validate_arguments(&arguments) {
            return Err(format!("invalid arguments for `{name}`: {problems}"));
        }
        let meta = CallMeta {
            request_id: "host".into(),
            client: Some("toolmesh".into()),
            ..CallMeta::default()
        };
        let (result, _) = self
            .run(
                plugin,
                tool,
                &arguments,
                meta,
                &CancellationToken::new(),
                started,
            )
            .await;
        let text = || {
            result
                .content
                .first()
                .and_then(|c| c.as_text())
                .map(|t| t.text.clone())
                .unwrap_or_default()
        };
        match (result.is_error, &result.structured_content) {
            (Some(true), _) => Err(text()),
            (_, Some(value)) => Ok(value.clone()),
            (_, None) => Ok(Value::String(text())),
        }
    }

    /// Runs a resolved, validated call in the guest and records its usage.
    async fn run(
        &self,
        plugin: &LoadedPlugin,
        tool: &Tool,
        arguments: &Value,
        meta: CallMeta,
        cancel: &CancellationToken,
        started: Instant,
    ) -> (CallToolResult, GuestUsage) {
        let arguments = arguments.to_string();
        let ctx = call_context(meta.request_id, meta.client);
        let (outcome, guest) = self
            .runtime
            .call(
                &plugin.code,
                &ctx,
                &tool.name,
                &arguments,
                cancel,
                meta.progress,
            )
            .await;
        let (result, bytes_out, outcome) = match outcome {
            Ok(output) => {
                let bytes_out = output_size(&output);
                let result = success_result(tool, output);
                // A result that breaks the plugin's own contract is the plugin's fault.
                let outcome = if result.is_error == Some(true) {
                    Outcome::HostError
                } else {
                    Outcome::Ok
                };
                (result, bytes_out, outcome)
            }
            Err(e) => {
                let outcome = match &e {
                    CallError::Tool(_) => Outcome::ToolError,
                    CallError::Trap { .. } => Outcome::Trap,
                    CallError::Cancelled => Outcome::Cancelled,
                    CallError::Host(_) => {
                        tracing::warn!(tool = %tool.qualified_name, "{e}");
                        Outcome::HostError
                    }
                    CallError::Deadline(_)
                    | CallError::FuelExhausted(..)
                    | CallError::MemoryLimit { .. }
                    | CallError::HandleLimit { .. }
                    | CallError::OutputTooLarge { .. } => Outcome::Quota,
                };
                (error_result(e.to_string()), 0, outcome)
            }
        };
        record(tool, started, arguments.len(), guest, bytes_out, outcome);
        (result, guest)
    }

    /// Calls recorded so far, over every tool.
    pub fn total_calls(&self) -> u64 {
        self.registry
            .snapshot()
            .tools()
            .map(|t| t.usage.calls())
            .sum()
    }

    /// Usage aggregates of every plugin and tool, and the host process.
    pub fn usage_report(&self) -> UsageReport {
        let snapshot = self.registry.snapshot();
        let plugins = snapshot
            .plugins()
            .map(|plugin| PluginUsage {
                plugin: plugin.manifest.name.clone(),
                level: plugin.manifest.level.clone(),
                tools: plugin
                    .tools
                    .iter()
                    .map(|t| (t.qualified_name.clone(), t.usage.summary()))
                    .collect(),
            })
            .collect();
        UsageReport {
            process: self.process.as_ref().and_then(|p| p.read()),
            plugins,
        }
    }
}

/// Usage aggregates, as served by the `toolmesh://usage` resource.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct UsageReport {
    /// The host process (absent where sysinfo cannot read it).
    pub process: Option<ProcessSummary>,
    /// Each plugin's tools.
    pub plugins: Vec<PluginUsage>,
}

/// One plugin's usage.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PluginUsage {
    /// The plugin.
    pub plugin: String,
    /// Its security level.
    pub level: String,
    /// Each tool, by qualified name.
    pub tools: std::collections::BTreeMap<String, ToolUsageSummary>,
}

/// Records one call's usage in its tool's aggregates and the debug log.
fn record(
    tool: &Tool,
    started: Instant,
    bytes_in: usize,
    guest: GuestUsage,
    bytes_out: usize,
    outcome: Outcome,
) {
    let usage = CallUsage {
        fuel: guest.fuel,
        peak_memory_bytes: guest.peak_memory_bytes,
        wall: started.elapsed(),
        bytes_in,
        bytes_out,
        outcome,
    };
    tool.usage.record(&usage);
    tracing::debug!(
        tool = %tool.qualified_name,
        fuel = usage.fuel,
        peak_memory = usage.peak_memory_bytes,
        micros = usage.wall.as_micros() as u64,
        bytes_in,
        bytes_out,
        outcome = ?usage.outcome,
        "call"
    );
}

fn unknown_tool(name: &str, tool_count: usize) -> UnknownTool {
    let hint = if tool_count == 0 {
        "; no tools are loaded".to_owned()
    } else {
        "; tools/list shows the available tools".to_owned()
    };
    UnknownTool {
        name: name.chars().take(128).collect(),
        hint,
    }
}

/// A tool as MCP describes it.
pub fn describe(tool: &Tool) -> McpTool {
    let annotations = ToolAnnotations::new()
        .read_only(tool.hints.read_only)
        .destructive(tool.hints.destructive)
        .idempotent(tool.hints.idempotent)
        .open_world(tool.hints.open_world);
    let mut described = McpTool::new(
        tool.qualified_name.clone(),
        tool.description.clone(),
        tool.input_schema.clone(),
    )
    .with_annotations(annotations);
    if let Some(title) = &tool.title {
        described = described.with_title(title.clone());
    }
    if let Some(schema) = &tool.output_schema {
        described = described.with_raw_output_schema(schema.clone());
    }
    described
}

fn error_result(message: String) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message)])
}

fn success_result(tool: &Tool, output: ToolOutput) -> CallToolResult {
    let content: Vec<ContentBlock> = output.content.into_iter().map(content_block).collect();
    let structured = match output.structured {
        None if tool.output_schema.is_some() => {
            return error_result(format!(
                "the plugin broke its contract: `{}` declares an output schema but returned no \
                 structured result",
                tool.qualified_name
            ));
        }
        None => return CallToolResult::success(content),
        Some(json) => json,
    };
    let value: Value = match serde_json::from_str(&structured) {
        Ok(value @ Value::Object(_)) => value,
        Ok(_) => {
            return error_result(format!(
                "the plugin broke its contract: `{}` returned a structured result that is not a \
                 JSON object",
                tool.qualified_name
            ));
        }
        Err(e) => {
            return error_result(format!(
                "the plugin broke its contract: `{}` returned invalid JSON: {e}",
                tool.qualified_name
            ));
        }
    };
    if let Err(problems) = tool.validate_output(&value) {
        return error_result(format!(
            "the plugin broke its contract: the result of `{}` does not match its output \
             schema: {problems}",
            tool.qualified_name
        ));
    }
    // Clients that ignore structured content read the same JSON as text.
    let content = if content.is_empty() {
        vec![ContentBlock::text(structured)]
    } else {
        content
    };
    let mut result = CallToolResult::success(content);
    result.structured_content = Some(value);
    result
}

fn content_block(block: GuestContent) -> ContentBlock {
    let b64 = |data: &[u8]| base64::engine::general_purpose::STANDARD.encode(data);
    match block {
        GuestContent::Text(text) => ContentBlock::text(text),
        GuestContent::Image(media) => ContentBlock::image(b64(&media.data), media.mime_type),
        GuestContent::Audio(media) => ContentBlock::audio(b64(&media.data), media.mime_type),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::bindings::{Media, ToolHints, ToolSpec};

    fn tool(output_schema: Option<&str>) -> Tool {
        let spec = ToolSpec {
            name: "t".into(),
            title: None,
            description: "d".into(),
            input_schema: r#"{"type":"object"}"#.into(),
            output_schema: output_schema.map(Into::into),
            hints: ToolHints {
                read_only: true,
                destructive: false,
                idempotent: true,
                open_world: false,
            },
        };
        Tool::from_spec("p", spec).unwrap()
    }

    const COUNT: &str =
        r#"{"type":"object","properties":{"n":{"type":"integer"}},"required":["n"]}"#;

    fn output(structured: Option<&str>) -> ToolOutput {
        ToolOutput {
            content: Vec::new(),
            structured: structured.map(Into::into),
        }
    }

    fn error_text(result: &CallToolResult) -> &str {
        assert_eq!(result.is_error, Some(true));
        result.content[0]
            .as_text()
            .map(|t| t.text.as_str())
            .unwrap_or("")
    }

    #[test]
    fn structured_results_must_keep_the_declared_contract() {
        let counted = tool(Some(COUNT));
        let missing = success_result(&counted, output(None));
        assert!(error_text(&missing).contains("returned no structured result"));
        let wrong = success_result(&counted, output(Some(r#"{"n":"x"}"#)));
        assert!(error_text(&wrong).contains("does not match its output schema: at `/n`"));
        let not_json = success_result(&counted, output(Some("{")));
        assert!(error_text(&not_json).contains("returned invalid JSON"));
        let not_object = success_result(&tool(None), output(Some("[1]")));
        assert!(error_text(&not_object).contains("not a JSON object"));
    }

    #[test]
    fn structured_results_get_a_text_copy_and_media_is_base64() {
        let ok = success_result(&tool(Some(COUNT)), output(Some(r#"{"n":3}"#)));
        assert_eq!(ok.is_error, Some(false));
        assert_eq!(ok.structured_content, Some(serde_json::json!({"n": 3})));
        assert_eq!(ok.content[0].as_text().unwrap().text, r#"{"n":3}"#);

        let image = ToolOutput {
            content: vec![GuestContent::Image(Media {
                data: vec![0xff, 0x00],
                mime_type: "image/png".into(),
            })],
            structured: None,
        };
        let result = success_result(&tool(None), image);
        let json = serde_json::to_value(&result).unwrap();
        assert_eq!(json["content"][0]["type"], "image");
        assert_eq!(json["content"][0]["data"], "/wA=");
        assert_eq!(json["content"][0]["mimeType"], "image/png");
    }
}
