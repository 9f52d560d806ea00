//! The host side of the `toolmesh:plugin` package (`wit/plugin.wit`), as
//! wasmtime's `bindgen!` generates it, and of its 0.1 predecessor
//! ([`v0_1`], `wit/compat/0.1.0/`), whose tools export is converted here to
//! the current types. A leaf: it imports nothing of ours. Each capability
//! implements its own interface's `Host` trait (see
//! [`capability`](crate::capability)); the runtime looks up each export of
//! a plugin (see [`crate::runtime`]).
//!
//! The 0.1 capability interfaces (`log`, `kv`, `blobs`, `progress`,
//! `config`, `caller`) are the same in 0.2, so their host implementations
//! are linked under both versions' names; only the exported `tools`
//! interface differs (content blocks and tool specs grew).

wasmtime::component::bindgen!({
    world: "full-plugin",
    path: "../wit/plugin.wit",
    imports: {
        "toolmesh:plugin/client.elicit": async,
        "toolmesh:plugin/client.create-message": async,
        "toolmesh:plugin/client.list-roots": async,
        "toolmesh:plugin/client.ask": async,
    },
    exports: { default: async },
});

pub use self::exports::toolmesh::plugin::completions::{
    Completion, CompletionRef, CompletionRequest,
};
pub use self::exports::toolmesh::plugin::prompts::{
    PromptArgument, PromptMessage, PromptResult, PromptSpec,
};
pub use self::exports::toolmesh::plugin::resources::{
    Annotations, ResourceError, ResourceSpec, TemplateSpec,
};
pub use self::toolmesh::plugin::blobs::BlobError;
pub use self::toolmesh::plugin::kv::KvError;
pub use self::toolmesh::plugin::log::Level as LogLevel;
pub use self::toolmesh::plugin::types::{
    CallContext, ClientFeature, ContentBlock, Media, ResourceBody, ResourceContents, ResourceLink,
    Role, ToolError, ToolHints, ToolOutput, ToolSpec,
};

/// The `toolmesh:plugin@0.1.0` package, for plugins built before 0.2: only
/// its `tools` export is used (its imports are the 0.2 ones under the old
/// names).
pub mod v0_1 {
    wasmtime::component::bindgen!({
        world: "plugin",
        path: "../wit/compat/0.1.0/plugin.wit",
        exports: { default: async },
    });

    use self::toolmesh::plugin::types as old;
    use super::toolmesh::plugin::types as new;

    /// The 0.1 `tools` export.
    pub use self::exports::toolmesh::plugin::tools::{
        Guest as Tools, GuestIndices as ToolsIndices,
    };

    impl From<old::ToolSpec> for new::ToolSpec {
        fn from(spec: old::ToolSpec) -> Self {
            let old::ToolHints {
                read_only,
                destructive,
                idempotent,
                open_world,
            } = spec.hints;
            Self {
                name: spec.name,
                title: spec.title,
                description: spec.description,
                input_schema: spec.input_schema,
                output_schema: spec.output_schema,
                hints: new::ToolHints {
                    read_only,
                    destructive,
                    idempotent,
                    open_world,
                },
                needs: Vec::new(),
            }
        }
    }

    impl From<old::ToolOutput> for new::ToolOutput {
        fn from(output: old::ToolOutput) -> Self {
            let media = |m: old::Media| new::Media {
                data: m.data,
                mime_type: m.mime_type,
            };
            Self {
                content: output
                    .content
                    .into_iter()
                    .map(|block| match block {
                        old::ContentBlock::Text(text) => new::ContentBlock::Text(text),
                        old::ContentBlock::Image(m) => new::ContentBlock::Image(media(m)),
                        old::ContentBlock::Audio(m) => new::ContentBlock::Audio(media(m)),
                    })
                    .collect(),
                structured: output.structured,
            }
        }
    }

    impl From<old::ToolError> for new::ToolError {
        fn from(error: old::ToolError) -> Self {
            match error {
                old::ToolError::InvalidArguments(m) => Self::InvalidArguments(m),
                old::ToolError::Denied(m) => Self::Denied(m),
                old::ToolError::Failed(m) => Self::Failed(m),
            }
        }
    }

    impl From<&new::CallContext> for old::CallContext {
        fn from(ctx: &new::CallContext) -> Self {
            Self {
                request_id: ctx.request_id.clone(),
                client: ctx.client.clone(),
            }
        }
    }
}
