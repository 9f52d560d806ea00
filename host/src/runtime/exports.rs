//! What a plugin exports, found once when it is prepared: its `tools`
//! (WIT 0.2, or 0.1 converted to 0.2's types) and, for 0.2 plugins, each of
//! `resources`, `prompts` and `completions` it has. Running an [`Export`]
//! in an instance answers with the matching [`Exported`] case.

use wasmtime::Store;
use wasmtime::component::{Instance, InstancePre};

use super::Catalog;
use super::state::CallState;
use crate::wit::exports::toolmesh::plugin::{completions, lifecycle, prompts, resources, tools};
use crate::wit::{
    CallContext, Completion, CompletionRequest, PromptResult, ResourceContents, ResourceError,
    ToolError, ToolOutput, v0_1,
};

/// The `toolmesh:plugin` version a plugin was built against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WitVersion {
    /// 0.1: tools only.
    V0_1,
    /// 0.2: tools, and optionally resources, prompts and completions.
    V0_2,
}

impl std::fmt::Display for WitVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WitVersion::V0_1 => "0.1",
            WitVersion::V0_2 => "0.2",
        })
    }
}

/// The tools export, of either version.
enum ToolsExport {
    V0_1(v0_1::ToolsIndices),
    V0_2(tools::GuestIndices),
}

/// A plugin's exports.
pub struct Exports {
    tools: ToolsExport,
    resources: Option<resources::GuestIndices>,
    prompts: Option<prompts::GuestIndices>,
    completions: Option<completions::GuestIndices>,
    lifecycle: Option<lifecycle::GuestIndices>,
}

/// A lifecycle hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// The host is about to serve this version.
    Load,
    /// The host stopped serving it.
    Unload,
}

/// What a guest is asked to do.
pub enum Export<'a> {
    /// List everything it offers.
    Describe,
    /// Run a tool.
    Call {
        ctx: &'a CallContext,
        tool: &'a str,
        arguments: &'a str,
    },
    /// Read a resource.
    Read {
        ctx: &'a CallContext,
        uri: &'a str,
        template: Option<&'a str>,
        variables: &'a [(String, String)],
    },
    /// Fill in a prompt.
    Prompt {
        ctx: &'a CallContext,
        name: &'a str,
        arguments: &'a [(String, String)],
    },
    /// Complete an argument.
    Complete {
        ctx: &'a CallContext,
        request: &'a CompletionRequest,
    },
    /// Run a lifecycle hook (nothing, if it exports none).
    Hook(Hook),
}

/// What the guest answered.
pub enum Exported {
    Catalog(Catalog),
    Output(Result<ToolOutput, ToolError>),
    Contents(Result<Vec<ResourceContents>, ResourceError>),
    Prompt(Result<PromptResult, ToolError>),
    Completion(Result<Completion, ToolError>),
    Hooked(Result<(), ToolError>),
}

impl Exports {
    /// Finds the exports of the component behind `pre`: a `tools` export of
    /// 0.2 or 0.1 is required; the others are optional (a 0.1 plugin has
    /// none of them).
    pub fn find(pre: &InstancePre<CallState>) -> wasmtime::Result<Self> {
        if let Ok(tools) = tools::GuestIndices::new(pre) {
            return Ok(Self {
                tools: ToolsExport::V0_2(tools),
                resources: resources::GuestIndices::new(pre).ok(),
                prompts: prompts::GuestIndices::new(pre).ok(),
                completions: completions::GuestIndices::new(pre).ok(),
                lifecycle: lifecycle::GuestIndices::new(pre).ok(),
            });
        }
        let tools = v0_1::ToolsIndices::new(pre).map_err(|_| {
            wasmtime::format_err!(
                "the component exports no `toolmesh:plugin/tools` interface of version 0.2 \
                 or 0.1"
            )
        })?;
        Ok(Self {
            tools: ToolsExport::V0_1(tools),
            resources: None,
            prompts: None,
            completions: None,
            lifecycle: None,
        })
    }

    /// Whether it exports lifecycle hooks.
    pub fn has_hooks(&self) -> bool {
        self.lifecycle.is_some()
    }

    /// The version the plugin was built against.
    pub fn version(&self) -> WitVersion {
        match self.tools {
            ToolsExport::V0_1(_) => WitVersion::V0_1,
            ToolsExport::V0_2(_) => WitVersion::V0_2,
        }
    }

    /// Runs `export` in `instance`.
    pub async fn run(
        &self,
        store: &mut Store<CallState>,
        instance: &Instance,
        export: Export<'_>,
    ) -> wasmtime::Result<Exported> {
        match export {
            Export::Describe => self.describe(store, instance).await.map(Exported::Catalog),
            Export::Call {
                ctx,
                tool,
                arguments,
            } => self
                .call_tool(store, instance, ctx, tool, arguments)
                .await
                .map(Exported::Output),
            Export::Read {
                ctx,
                uri,
                template,
                variables,
            } => {
                let guest =
                    loaded::<resources::Guest>(&self.resources, "resources", store, instance)?;
                guest
                    .call_read(store, ctx, uri, template, variables)
                    .await
                    .map(Exported::Contents)
            }
            Export::Prompt {
                ctx,
                name,
                arguments,
            } => {
                let guest = loaded::<prompts::Guest>(&self.prompts, "prompts", store, instance)?;
                guest
                    .call_get(store, ctx, name, arguments)
                    .await
                    .map(Exported::Prompt)
            }
            Export::Complete { ctx, request } => {
                let guest = loaded::<completions::Guest>(
                    &self.completions,
                    "completions",
                    store,
                    instance,
                )?;
                guest
                    .call_complete(store, ctx, request)
                    .await
                    .map(Exported::Completion)
            }
            Export::Hook(hook) => {
                let Some(indices) = &self.lifecycle else {
                    return Ok(Exported::Hooked(Ok(())));
                };
                let guest = indices.load(&mut *store, instance)?;
                match hook {
                    Hook::Load => guest.call_on_load(store).await.map(Exported::Hooked),
                    Hook::Unload => guest
                        .call_on_unload(store)
                        .await
                        .map(|()| Exported::Hooked(Ok(()))),
                }
            }
        }
    }

    async fn describe(
        &self,
        store: &mut Store<CallState>,
        instance: &Instance,
    ) -> wasmtime::Result<Catalog> {
        let tools = match &self.tools {
            ToolsExport::V0_2(indices) => {
                indices
                    .load(&mut *store, instance)?
                    .call_list_tools(&mut *store)
                    .await?
            }
            ToolsExport::V0_1(indices) => indices
                .load(&mut *store, instance)?
                .call_list_tools(&mut *store)
                .await?
                .into_iter()
                .map(Into::into)
                .collect(),
        };
        let mut catalog = Catalog {
            tools,
            completes: self.completions.is_some(),
            ..Catalog::default()
        };
        if let Some(indices) = &self.resources {
            let guest = indices.load(&mut *store, instance)?;
            catalog.resources = guest.call_list_resources(&mut *store).await?;
            catalog.templates = guest.call_list_templates(&mut *store).await?;
        }
        if let Some(indices) = &self.prompts {
            let guest = indices.load(&mut *store, instance)?;
            catalog.prompts = guest.call_list_prompts(&mut *store).await?;
        }
        Ok(catalog)
    }

    async fn call_tool(
        &self,
        store: &mut Store<CallState>,
        instance: &Instance,
        ctx: &CallContext,
        tool: &str,
        arguments: &str,
    ) -> wasmtime::Result<Result<ToolOutput, ToolError>> {
        match &self.tools {
            ToolsExport::V0_2(indices) => {
                indices
                    .load(&mut *store, instance)?
                    .call_call(&mut *store, ctx, tool, arguments)
                    .await
            }
            ToolsExport::V0_1(indices) => {
                let ctx = v0_1::toolmesh::plugin::types::CallContext::from(ctx);
                let outcome = indices
                    .load(&mut *store, instance)?
                    .call_call(&mut *store, &ctx, tool, arguments)
                    .await?;
                Ok(outcome.map(Into::into).map_err(Into::into))
            }
        }
    }
}

/// The export behind `indices`, loaded from `instance`; an error naming
/// `interface` when the plugin does not have it.
fn loaded<G: LoadGuest>(
    indices: &Option<G::Indices>,
    interface: &'static str,
    store: &mut Store<CallState>,
    instance: &Instance,
) -> wasmtime::Result<G> {
    let indices = indices
        .as_ref()
        .ok_or_else(|| wasmtime::Error::new(NotExported(interface)))?;
    G::load(indices, store, instance)
}

/// The plugin does not export an interface (turned into
/// [`CallError::NotExported`] by the runtime).
#[derive(Debug, thiserror::Error)]
#[error("the plugin does not export `{0}`")]
pub struct NotExported(pub &'static str);

/// An optional export's bindings, loaded from an instance.
trait LoadGuest: Sized {
    type Indices;
    fn load(
        indices: &Self::Indices,
        store: &mut Store<CallState>,
        instance: &Instance,
    ) -> wasmtime::Result<Self>;
}

macro_rules! load_guest {
    ($($module:ident),*) => {$(
        impl LoadGuest for $module::Guest {
            type Indices = $module::GuestIndices;
            fn load(
                indices: &Self::Indices,
                store: &mut Store<CallState>,
                instance: &Instance,
            ) -> wasmtime::Result<Self> {
                indices.load(store, instance)
            }
        }
    )*};
}

load_guest!(resources, prompts, completions);
