//! What the tool service asks of whoever provides tools: the tools it has
//! now, and a tool found by name, ready to run. The plugin registry and the
//! mesh are the first two providers; the service does everything around the
//! run (validation, gates, usage, mapping to MCP) the same way for each.

use std::sync::Arc;

use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use crate::capability::CallInputs;
use crate::plugin::tool::Tool;
use crate::runtime::{CallError, GuestUsage};
use crate::wit::{CallContext, ToolOutput};

/// A source of tools.
pub trait Provider: Send + Sync + 'static {
    /// Its tools now, in the order they are listed.
    fn tools(&self) -> Vec<Arc<Tool>>;

    /// Whether it has any tool now (without listing them).
    fn has_tools(&self) -> bool {
        !self.tools().is_empty()
    }

    /// The tool called `name`, if this provider has it.
    fn resolve(&self, name: &str) -> Option<Box<dyn Runnable>>;
}

/// A tool found by name, ready to run.
pub trait Runnable: Send {
    /// The tool: its name, schemas, hints, and usage aggregates.
    fn tool(&self) -> &Arc<Tool>;

    /// Runs it with arguments that the service has validated and admitted.
    fn run(self: Box<Self>, call: ProviderCall) -> BoxFuture<'static, Ran>;
}

/// One call, as a provider gets it.
pub struct ProviderCall {
    /// The arguments, a JSON object as text, valid against the input schema.
    pub arguments: String,
    /// Facts about the call for the guest.
    pub context: CallContext,
    /// Where progress reports go, and who is calling.
    pub inputs: CallInputs,
    /// Fires when the client cancels.
    pub cancel: CancellationToken,
}

/// What a run produced, and what it consumed.
pub struct Ran {
    /// The tool's output, or why there is none.
    pub outcome: Result<ToolOutput, CallError>,
    /// What the guest consumed (nothing, for tools the host runs itself).
    pub usage: GuestUsage,
}

impl Ran {
    /// The outcome of a tool the host runs itself (it consumes no guest
    /// resources): a JSON object as structured content, or a failure
    /// message.
    pub fn host(outcome: Result<serde_json::Value, String>) -> Self {
        let outcome = outcome
            .map(|value| ToolOutput {
                content: Vec::new(),
                structured: Some(value.to_string()),
            })
            .map_err(CallError::HostTool);
        Self {
            outcome,
            usage: GuestUsage::default(),
        }
    }
}
