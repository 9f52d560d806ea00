//! MCP over stdio: the rmcp server, a thin adapter on the
//! [`ToolService`](crate::service::ToolService), and where its calls run.

pub mod dispatch;
pub mod server;

pub use server::McpServer;
