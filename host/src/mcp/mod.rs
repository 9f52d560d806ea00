//! MCP, on stdio and (through [`crate::http`]) Streamable HTTP: the rmcp
//! server, a thin adapter on the [`ToolService`](crate::service::ToolService),
//! and what it needs per session and per request.
//!
//! - [`server`]: the handler, one method per MCP request.
//! - [`client_link`]: a call's questions to its client, per wire.
//! - [`mrtr`]: input-required rounds on the stateless wire.
//! - [`logging`]: plugins' log records as `notifications/message`.
//! - [`subscriptions`]: resource subscriptions and their notifications.
//! - [`paging`]: cursors and cache hints of list results.
//! - [`dispatch`]: where calls run.
//! - [`stdio_edge`]: every stdin line checked; parse errors answered.

pub mod client_link;
pub mod dispatch;
pub mod logging;
pub mod mrtr;
pub mod paging;
pub mod server;
pub mod stdio_edge;
pub mod subscriptions;

pub use server::McpServer;
