//! How a tool's outcome reaches the agent: tools as MCP describes them,
//! and a run's output or error as an MCP `CallToolResult`. A structured
//! result must keep the contract its tool declared (a JSON object matching
//! the output schema); one that breaks it is the plugin's fault and reaches
//! the agent as an error that says so.

use rmcp::model::{CallToolResult, ContentBlock, Tool as McpTool, ToolAnnotations};
use serde_json::Value;

use crate::plugin::tool::Tool;
use crate::runtime::{CallError, output_size};
use crate::usage::{Outcome, QuotaKind};
use crate::wit::ToolOutput;

use super::content;

/// A run's outcome for the agent, and for the usage record.
pub struct Mapped {
    /// What the agent reads.
    pub result: CallToolResult,
    /// The output's size (0 for errors).
    pub bytes_out: usize,
    /// How the call ended.
    pub outcome: Outcome,
    /// The quota that ended it, if one did.
    pub quota: Option<QuotaKind>,
}

/// Maps a run of `tool` to an MCP result.
pub fn map(tool: &Tool, outcome: Result<ToolOutput, CallError>) -> Mapped {
    match outcome {
        Ok(output) => {
            let bytes_out = output_size(&output);
            let result = success_result(tool, output);
            // A result that breaks the plugin's own contract is the plugin's fault.
            let outcome = if result.is_error == Some(true) {
                Outcome::HostError
            } else {
                Outcome::Ok
            };
            Mapped {
                result,
                bytes_out,
                outcome,
                quota: None,
            }
        }
        Err(e) => {
            let outcome = match &e {
                CallError::Tool(_)
                | CallError::HostTool(_)
                | CallError::Resource(_)
                | CallError::NotExported(_) => Outcome::ToolError,
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
            let quota = match &e {
                CallError::Deadline(_) => Some(QuotaKind::Deadline),
                CallError::FuelExhausted(..) => Some(QuotaKind::Fuel),
                CallError::MemoryLimit { .. } => Some(QuotaKind::Memory),
                CallError::HandleLimit { .. } => Some(QuotaKind::Handles),
                CallError::OutputTooLarge { .. } => Some(QuotaKind::Output),
                _ => None,
            };
            Mapped {
                result: error_result(e.to_string()),
                bytes_out: 0,
                outcome,
                quota,
            }
        }
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

/// What a result says, for callers that are not MCP clients (the host
/// itself, the control socket): its structured content (its text, if it has
/// none), or its error text.
pub fn into_value(result: &CallToolResult) -> Result<Value, String> {
    let text = || {
        result
            .content
            .iter()
            .filter_map(|c| c.as_text())
            .map(|t| t.text.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    };
    match (result.is_error, &result.structured_content) {
        (Some(true), _) => Err(text()),
        (_, Some(value)) => Ok(value.clone()),
        (_, None) => Ok(Value::String(text())),
    }
}

/// An error result the agent reads.
pub fn error_result(message: String) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message)])
}

fn success_result(tool: &Tool, output: ToolOutput) -> CallToolResult {
    let content: Vec<ContentBlock> = output
        .content
        .into_iter()
        .map(|block| content::block(&tool.uris, block))
        .collect();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wit::{ContentBlock as GuestContent, Media, ToolHints, ToolSpec};

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
            needs: Vec::new(),
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
