//! The host side of the `toolmesh:plugin` world (`wit/plugin.wit`), as
//! wasmtime's `bindgen!` generates it. A leaf: it imports nothing of ours.
//! Each capability implements its own interface's `Host` trait (see
//! [`capability`](crate::capability)); the runtime instantiates [`Plugin`].

wasmtime::component::bindgen!({
    world: "plugin",
    path: "../wit",
    exports: { default: async },
});

pub use self::toolmesh::plugin::blobs::BlobError;
pub use self::toolmesh::plugin::kv::KvError;
pub use self::toolmesh::plugin::log::Level as LogLevel;
pub use self::toolmesh::plugin::types::{
    CallContext, ContentBlock, Media, ToolError, ToolHints, ToolOutput, ToolSpec,
};
