//! Tools: a name, a description, hints, schemas derived from the argument
//! and result types, and the handler.

use std::fmt;

use schemars::{JsonSchema, Schema};
use serde::de::DeserializeOwned;

use crate::bindings::toolmesh::plugin::types as wit;
use crate::output::{IntoToolOutput, ToolOutput};

/// Facts about the call in progress, for handlers made with
/// [`Tool::with_context`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallContext {
    /// The MCP request id, as text.
    pub request_id: String,
    /// The MCP client's name, if it gave one.
    pub client: Option<String>,
}

/// Why a tool call failed. The host shows the agent the kind and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolError {
    /// The arguments cannot be used (an unknown id, a value out of range, ...).
    InvalidArguments(String),
    /// The call is not permitted.
    Denied(String),
    /// The tool tried and failed.
    Failed(String),
}

impl ToolError {
    /// The arguments cannot be used.
    pub fn invalid_arguments(message: impl Into<String>) -> Self {
        Self::InvalidArguments(message.into())
    }

    /// The call is not permitted.
    pub fn denied(message: impl Into<String>) -> Self {
        Self::Denied(message.into())
    }

    /// The tool tried and failed.
    pub fn failed(message: impl Into<String>) -> Self {
        Self::Failed(message.into())
    }
}

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidArguments(m) => write!(f, "invalid arguments: {m}"),
            Self::Denied(m) => write!(f, "denied: {m}"),
            Self::Failed(m) => write!(f, "failed: {m}"),
        }
    }
}

impl std::error::Error for ToolError {}

type Handler = Box<dyn Fn(&CallContext, &str) -> Result<ToolOutput, ToolError>>;

/// A feature of the connected client a tool needs on every call (see
/// [`Tool::needs`]).
pub use crate::bindings::toolmesh::plugin::types::ClientFeature;

/// One tool: its name, description, hints, schemas and handler.
pub struct Tool {
    name: &'static str,
    title: Option<&'static str>,
    description: &'static str,
    read_only: bool,
    destructive: bool,
    idempotent: bool,
    open_world: bool,
    input_schema: fn() -> Schema,
    output_schema: fn() -> Option<Schema>,
    needs: Vec<ClientFeature>,
    pub(crate) handler: Handler,
}

impl Tool {
    /// A tool named `name` (1 to 48 characters from `[a-zA-Z0-9_-]`) that runs
    /// `handler` on its decoded arguments.
    ///
    /// Hints start at MCP's defaults (not read-only, destructive, not
    /// idempotent, open world); say what is true with the builder methods.
    pub fn new<A, R, F>(name: &'static str, description: &'static str, handler: F) -> Self
    where
        A: DeserializeOwned + JsonSchema,
        R: IntoToolOutput,
        F: Fn(A) -> Result<R, ToolError> + 'static,
    {
        Self::with_context(name, description, move |_: &CallContext, args: A| {
            handler(args)
        })
    }

    /// Like [`Tool::new`], for a handler that also reads the [`CallContext`].
    pub fn with_context<A, R, F>(name: &'static str, description: &'static str, handler: F) -> Self
    where
        A: DeserializeOwned + JsonSchema,
        R: IntoToolOutput,
        F: Fn(&CallContext, A) -> Result<R, ToolError> + 'static,
    {
        Self {
            name,
            title: None,
            description,
            read_only: false,
            destructive: true,
            idempotent: false,
            open_world: true,
            input_schema: || schemars::schema_for!(A),
            output_schema: R::output_schema,
            needs: Vec::new(),
            handler: Box::new(move |ctx, json| {
                let args: A = serde_json::from_str(json)
                    .map_err(|e| ToolError::InvalidArguments(e.to_string()))?;
                handler(ctx, args)?.into_tool_output()
            }),
        }
    }

    /// A human-readable title.
    pub fn title(mut self, title: &'static str) -> Self {
        self.title = Some(title);
        self
    }

    /// The tool does not change its environment (and so is not destructive).
    pub fn read_only(mut self) -> Self {
        self.read_only = true;
        self.destructive = false;
        self
    }

    /// The tool's changes are additive only: it never destroys anything.
    pub fn non_destructive(mut self) -> Self {
        self.destructive = false;
        self
    }

    /// Calling again with the same arguments has no further effect.
    pub fn idempotent(mut self) -> Self {
        self.idempotent = true;
        self
    }

    /// The tool only touches a closed world (its own state), not the internet.
    pub fn closed_world(mut self) -> Self {
        self.open_world = false;
        self
    }

    /// Every call needs the client to have `feature` (it asks through
    /// [`client`](crate::client)): a client without it is refused before
    /// the tool runs, with an error naming the feature.
    pub fn needs(mut self, feature: ClientFeature) -> Self {
        if !self.needs.contains(&feature) {
            self.needs.push(feature);
        }
        self
    }

    /// The tool's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    pub(crate) fn spec(&self) -> wit::ToolSpec {
        wit::ToolSpec {
            name: self.name.to_owned(),
            title: self.title.map(str::to_owned),
            description: self.description.to_owned(),
            input_schema: schema_json(&(self.input_schema)()),
            output_schema: (self.output_schema)().map(|s| schema_json(&s)),
            hints: wit::ToolHints {
                read_only: self.read_only,
                destructive: self.destructive,
                idempotent: self.idempotent,
                open_world: self.open_world,
            },
            needs: self.needs.clone(),
        }
    }
}

pub(crate) fn schema_json(schema: &Schema) -> String {
    // A `Schema` is a JSON value already; writing it cannot fail.
    serde_json::to_string(schema).unwrap_or_else(|_| "{}".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Plugin, Structured};
    use serde::{Deserialize, Serialize};

    #[derive(Deserialize, JsonSchema)]
    struct Pair {
        a: i64,
        b: i64,
    }

    #[derive(Serialize, JsonSchema)]
    struct Total {
        total: i64,
    }

    fn plugin() -> Plugin {
        Plugin::new()
            .tool(
                Tool::new("sum", "Adds.", |p: Pair| {
                    Ok(Structured(Total { total: p.a + p.b }))
                })
                .read_only(),
            )
            .tool(Tool::new("echo", "Echoes.", |s: String| Ok(s)))
    }

    #[test]
    fn structured_result_is_json_and_has_an_output_schema() {
        let p = plugin();
        let out = p.call_json("sum", r#"{"a":2,"b":40}"#).unwrap();
        assert_eq!(out.structured.as_deref(), Some(r#"{"total":42}"#));
        let specs = p.__wit_list();
        let schema: serde_json::Value =
            serde_json::from_str(specs[0].output_schema.as_ref().unwrap()).unwrap();
        assert_eq!(schema["properties"]["total"]["type"], "integer");
        assert!(specs[0].hints.read_only && !specs[0].hints.destructive);
        assert!(specs[1].output_schema.is_none());
    }

    #[test]
    fn bad_arguments_become_invalid_arguments_with_serde_message() {
        let err = plugin().call_json("sum", r#"{"a":"x","b":1}"#).unwrap_err();
        match err {
            ToolError::InvalidArguments(m) => assert!(m.contains("invalid type"), "{m}"),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn unknown_tool_is_reported() {
        let err = plugin().call_json("nope", "{}").unwrap_err();
        assert_eq!(
            err,
            ToolError::InvalidArguments("no tool named `nope`".into())
        );
    }
}
