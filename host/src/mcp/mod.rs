//! MCP: the transport-independent tool semantics and the rmcp server.

pub mod dispatch;
pub mod enforce;
pub mod mesh_tools;
pub mod server;
pub mod tools;

pub use enforce::Enforcement;
pub use server::McpServer;
pub use tools::{CallMeta, PluginUsage, ToolHost, UnknownTool, UsageReport};
