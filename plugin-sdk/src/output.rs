//! What a tool returns: text, media, or structured JSON matching an output schema.

use schemars::{JsonSchema, Schema};
use serde::Serialize;

use crate::ToolError;

/// One block of unstructured content in a tool's result.
#[derive(Debug, Clone, PartialEq)]
pub enum Content {
    /// Plain or Markdown text.
    Text(String),
    /// An image: raw bytes and their media type (`image/png`, ...).
    Image {
        /// The raw bytes.
        data: Vec<u8>,
        /// The IANA media type.
        mime_type: String,
    },
    /// An audio clip: raw bytes and their media type.
    Audio {
        /// The raw bytes.
        data: Vec<u8>,
        /// The IANA media type.
        mime_type: String,
    },
    /// A resource's contents, embedded.
    Resource(crate::ResourceContents),
    /// A link to a resource the client may read.
    ResourceLink {
        /// Its URI, as this plugin names it.
        uri: String,
        /// Its name.
        name: String,
        /// What it is.
        description: Option<String>,
        /// Its media type.
        mime_type: Option<String>,
    },
}

/// A tool's successful result, as the host receives it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ToolOutput {
    /// Content blocks for the agent to read.
    pub content: Vec<Content>,
    /// The structured result as JSON text, for tools with an output schema.
    pub structured: Option<String>,
}

impl ToolOutput {
    /// A result made of one text block.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            content: vec![Content::Text(text.into())],
            structured: None,
        }
    }

    /// Adds a content block.
    pub fn with(mut self, block: Content) -> Self {
        self.content.push(block);
        self
    }
}

/// A structured result: `T` is serialized to JSON and its JSON Schema becomes
/// the tool's output schema, so agents know the shape in advance.
///
/// `T` should serialize to a JSON object (a struct), as MCP requires.
#[derive(Debug, Clone, PartialEq)]
pub struct Structured<T>(pub T);

/// A type a tool handler may return.
pub trait IntoToolOutput {
    /// The tool's output schema, if results of this type are structured.
    fn output_schema() -> Option<Schema>;

    /// Converts the value into the result the host receives.
    fn into_tool_output(self) -> Result<ToolOutput, ToolError>;
}

impl IntoToolOutput for String {
    fn output_schema() -> Option<Schema> {
        None
    }

    fn into_tool_output(self) -> Result<ToolOutput, ToolError> {
        Ok(ToolOutput::text(self))
    }
}

impl IntoToolOutput for ToolOutput {
    fn output_schema() -> Option<Schema> {
        None
    }

    fn into_tool_output(self) -> Result<ToolOutput, ToolError> {
        Ok(self)
    }
}

impl IntoToolOutput for () {
    fn output_schema() -> Option<Schema> {
        None
    }

    fn into_tool_output(self) -> Result<ToolOutput, ToolError> {
        Ok(ToolOutput::default())
    }
}

impl<T: Serialize + JsonSchema> IntoToolOutput for Structured<T> {
    fn output_schema() -> Option<Schema> {
        Some(schemars::schema_for!(T))
    }

    fn into_tool_output(self) -> Result<ToolOutput, ToolError> {
        let json = serde_json::to_string(&self.0)
            .map_err(|e| ToolError::failed(format!("cannot encode the result as JSON: {e}")))?;
        Ok(ToolOutput {
            content: Vec::new(),
            structured: Some(json),
        })
    }
}
