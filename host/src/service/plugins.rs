//! The plugin registry as a tool provider: resolves names to loaded plugins'
//! tools and runs them in the runtime, each call in a fresh instance. Also
//! the path the host's own calls into plugins take (the core plugins'
//! typed clients, resources backed by tools): no gate, no progress, usage
//! recorded like any other call.

use std::sync::Arc;
use std::time::Instant;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::provider::{Provider, ProviderCall, Ran, Runnable};
use super::result;
use crate::capability::CallInputs;
use crate::capability::notify::ResourceUpdates;
use crate::plugin::tool::Tool;
use crate::plugin::{LoadedPlugin, Registry};
use crate::runtime::{CallError, ReadTarget, Runtime};
use crate::usage::PluginUsage;
use crate::wit::{CallContext, Completion, CompletionRequest, PromptResult, ResourceContents};

/// The loaded plugins' tools.
pub struct PluginTools {
    runtime: Arc<Runtime>,
    registry: Arc<Registry>,
}

impl PluginTools {
    /// The tools of `registry`'s plugins, run on `runtime`.
    pub fn new(runtime: Arc<Runtime>, registry: Arc<Registry>) -> Self {
        Self { runtime, registry }
    }

    /// The registry.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Where plugins announce that their resources changed, if this host
    /// listens.
    pub fn resource_updates(&self) -> Option<&Arc<ResourceUpdates>> {
        self.runtime.stores().updates.as_ref()
    }

    /// Calls tool `name` for the host itself (no gate, no progress) and
    /// returns its structured result (its text, if it has none), or its
    /// error text.
    pub async fn call_internal(&self, name: &str, arguments: Value) -> Result<Value, String> {
        let Some(runnable) = self.resolve(name) else {
            return Err(format!("`{name}` is not loaded"));
        };
        if let Err(problems) = runnable.tool().validate_arguments(&arguments) {
            return Err(format!("invalid arguments for `{name}`: {problems}"));
        }
        let call = ProviderCall {
            arguments: arguments.to_string(),
            context: CallContext {
                request_id: "host".into(),
                client: Some("toolmesh".into()),
            },
            inputs: CallInputs::local(),
            cancel: CancellationToken::new(),
        };
        let (result, _) = super::run_recorded(runnable, call, Instant::now()).await;
        result::into_value(&result)
    }

    /// Reads `target` of `plugin` in a fresh instance.
    pub async fn read_resource(
        &self,
        plugin: &LoadedPlugin,
        target: ReadTarget<'_>,
        ctx: &CallContext,
        inputs: CallInputs,
        cancel: &CancellationToken,
    ) -> Result<Vec<ResourceContents>, CallError> {
        self.runtime
            .read_resource(&plugin.code, ctx, target, cancel, inputs)
            .await
            .0
    }

    /// Fills in `plugin`'s prompt `name` in a fresh instance.
    pub async fn get_prompt(
        &self,
        plugin: &LoadedPlugin,
        name: &str,
        arguments: &[(String, String)],
        ctx: &CallContext,
        inputs: CallInputs,
        cancel: &CancellationToken,
    ) -> Result<PromptResult, CallError> {
        self.runtime
            .get_prompt(&plugin.code, ctx, name, arguments, cancel, inputs)
            .await
            .0
    }

    /// Asks `plugin` for completions in a fresh instance.
    pub async fn complete(
        &self,
        plugin: &LoadedPlugin,
        request: &CompletionRequest,
        cancel: &CancellationToken,
    ) -> Result<Completion, CallError> {
        let ctx = CallContext {
            request_id: "complete".into(),
            client: None,
        };
        self.runtime
            .complete(&plugin.code, &ctx, request, cancel)
            .await
            .0
    }

    /// Calls recorded so far, over every plugin tool.
    pub fn total_calls(&self) -> u64 {
        self.registry
            .snapshot()
            .tools()
            .map(|t| t.usage.calls())
            .sum()
    }

    /// Usage aggregates of every plugin and its tools.
    pub fn usage(&self) -> Vec<PluginUsage> {
        self.registry
            .snapshot()
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
            .collect()
    }
}

impl Provider for PluginTools {
    fn tools(&self) -> Vec<Arc<Tool>> {
        self.registry.snapshot().tools().cloned().collect()
    }

    fn has_tools(&self) -> bool {
        self.registry.snapshot().tool_count() > 0
    }

    fn resolve(&self, name: &str) -> Option<Box<dyn Runnable>> {
        let snapshot = self.registry.snapshot();
        let (plugin, tool) = snapshot.resolve(name)?;
        Some(Box::new(PluginTool {
            runtime: self.runtime.clone(),
            plugin: plugin.clone(),
            tool: tool.clone(),
        }))
    }
}

/// A plugin's tool, resolved.
struct PluginTool {
    runtime: Arc<Runtime>,
    plugin: Arc<LoadedPlugin>,
    tool: Arc<Tool>,
}

impl Runnable for PluginTool {
    fn tool(&self) -> &Arc<Tool> {
        &self.tool
    }

    fn run(self: Box<Self>, call: ProviderCall) -> BoxFuture<'static, Ran> {
        async move {
            let (outcome, usage) = self
                .runtime
                .call(
                    &self.plugin.code,
                    &call.context,
                    &self.tool.name,
                    &call.arguments,
                    &call.cancel,
                    call.inputs,
                )
                .await;
            Ran { outcome, usage }
        }
        .boxed()
    }
}
