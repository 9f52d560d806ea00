//! `conformance`: the tools the official MCP conformance suite
//! (`@modelcontextprotocol/conformance`) calls by name, for serving with
//! `[plugins.conformance] prefix = false`. Each answers what the suite's
//! server scenarios expect (`src/scenarios/server/tools.ts` there).
//!
//! Not here: `test_embedded_resource` and the resource block of
//! `test_multiple_content_types` (the 0.1 WIT has no embedded resource
//! content), `test_missing_capability` (the host, not a plugin, would have
//! to refuse it), and the tools that need logging, sampling or elicitation
//! (`test_logging_tool` and `test_streaming_elicitation` answer plainly,
//! which is what the stateless scenario checks of them).

use schemars::JsonSchema;
use serde::Deserialize;
use toolmesh_sdk::{Content, Plugin, Tool, ToolError, ToolOutput};

/// No arguments.
#[derive(Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

/// A 1×1 PNG.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0xda, 0x63, 0xfc, 0xcf, 0xc0, 0xf0,
    0x1f, 0x00, 0x05, 0x05, 0x02, 0x00, 0x5f, 0xc8, 0xf1, 0xd2, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

/// A WAV header with no samples (8 kHz, mono, 8 bit).
fn wav() -> Vec<u8> {
    let mut w = Vec::with_capacity(44);
    w.extend_from_slice(b"RIFF");
    w.extend_from_slice(&36u32.to_le_bytes());
    w.extend_from_slice(b"WAVEfmt ");
    w.extend_from_slice(&16u32.to_le_bytes());
    w.extend_from_slice(&1u16.to_le_bytes()); // PCM
    w.extend_from_slice(&1u16.to_le_bytes()); // mono
    w.extend_from_slice(&8000u32.to_le_bytes());
    w.extend_from_slice(&8000u32.to_le_bytes());
    w.extend_from_slice(&1u16.to_le_bytes());
    w.extend_from_slice(&8u16.to_le_bytes());
    w.extend_from_slice(b"data");
    w.extend_from_slice(&0u32.to_le_bytes());
    w
}

fn image() -> Content {
    Content::Image {
        data: PNG.to_vec(),
        mime_type: "image/png".into(),
    }
}

fn simple_text(_: NoArgs) -> Result<ToolOutput, ToolError> {
    Ok(ToolOutput::text(
        "This is a simple text response for testing.",
    ))
}

fn image_content(_: NoArgs) -> Result<ToolOutput, ToolError> {
    Ok(ToolOutput::default().with(image()))
}

fn audio_content(_: NoArgs) -> Result<ToolOutput, ToolError> {
    Ok(ToolOutput::default().with(Content::Audio {
        data: wav(),
        mime_type: "audio/wav".into(),
    }))
}

fn multiple_content_types(_: NoArgs) -> Result<ToolOutput, ToolError> {
    Ok(ToolOutput::text("Multiple content types test:").with(image()))
}

fn error_handling(_: NoArgs) -> Result<ToolOutput, ToolError> {
    Err(ToolError::failed(
        "This tool intentionally returns an error for testing",
    ))
}

fn with_progress(_: NoArgs) -> Result<ToolOutput, ToolError> {
    for done in [0.0, 50.0, 100.0] {
        toolmesh_sdk::progress::report(done, Some(100.0), Some("working"));
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Ok(ToolOutput::text("Progress test completed."))
}

fn logging_tool(_: NoArgs) -> Result<ToolOutput, ToolError> {
    // Client logging (notifications/message) is not a plugin capability
    // yet; the stateless scenario checks only that none is sent unasked.
    Ok(ToolOutput::text("Logging tool ran."))
}

fn streaming_elicitation(_: NoArgs) -> Result<ToolOutput, ToolError> {
    // Elicitation is not a plugin capability yet: answer without asking.
    Ok(ToolOutput::text("No input was needed."))
}

/// The plugin's tools.
pub fn plugin() -> Plugin {
    Plugin::new()
        .tool(Tool::new(
            "test_simple_text",
            "Returns a simple text response.",
            simple_text,
        ))
        .tool(Tool::new(
            "test_image_content",
            "Returns a 1x1 PNG image.",
            image_content,
        ))
        .tool(Tool::new(
            "test_audio_content",
            "Returns a short WAV clip.",
            audio_content,
        ))
        .tool(Tool::new(
            "test_multiple_content_types",
            "Returns text and an image.",
            multiple_content_types,
        ))
        .tool(Tool::new(
            "test_error_handling",
            "Always fails, for testing error results.",
            error_handling,
        ))
        .tool(Tool::new(
            "test_tool_with_progress",
            "Reports progress three times, then answers.",
            with_progress,
        ))
        .tool(Tool::new(
            "test_logging_tool",
            "Answers without sending log notifications.",
            logging_tool,
        ))
        .tool(Tool::new(
            "test_streaming_elicitation",
            "Answers without asking the client for input.",
            streaming_elicitation,
        ))
}

toolmesh_sdk::export_plugin!(plugin);
