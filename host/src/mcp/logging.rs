//! Plugins' log records for the client, as `notifications/message`: the
//! least level the client wants (set per session with `logging/setLevel`
//! on 2025-11-25, or per request in `_meta` on 2026-07-28; none set: no
//! records), and the task that sends a call's records (logger: the plugin).

use rmcp::model::ServerNotification;
use rmcp::{Peer, RoleServer};
use serde_json::json;
use tokio::sync::mpsc;

use crate::capability::log::ClientLogRecord;
use crate::wit::LogLevel;

/// The `_meta` key of a request's log level on 2026-07-28.
pub const META_LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";

/// The least guest level a client asking for MCP level `name` gets, or
/// `None` if no guest record is that severe (or `name` is not a level).
pub fn least_level(name: &str) -> Option<Option<LogLevel>> {
    Some(match name {
        "debug" => Some(LogLevel::Trace),
        "info" => Some(LogLevel::Info),
        "notice" | "warning" => Some(LogLevel::Warn),
        "error" => Some(LogLevel::Error),
        "critical" | "alert" | "emergency" => None,
        _ => return None,
    })
}

/// The MCP name of guest level `level`.
fn mcp_level(level: LogLevel) -> &'static str {
    match level {
        LogLevel::Trace | LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warning",
        LogLevel::Error => "error",
    }
}

/// Sends each record of `records` to `peer` until the call's sink is gone.
pub fn forward(
    mut records: mpsc::Receiver<ClientLogRecord>,
    peer: Peer<RoleServer>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(record) = records.recv().await {
            let notification = json!({
                "method": "notifications/message",
                "params": {
                    "level": mcp_level(record.level),
                    "logger": &*record.plugin,
                    "data": record.message,
                },
            });
            let Ok(notification) = serde_json::from_value::<ServerNotification>(notification)
            else {
                break;
            };
            if let Err(e) = peer.send_notification(notification).await {
                tracing::debug!("log notification not sent: {e}");
                break;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_map_to_the_least_guest_level() {
        assert_eq!(least_level("debug"), Some(Some(LogLevel::Trace)));
        assert_eq!(least_level("notice"), Some(Some(LogLevel::Warn)));
        assert_eq!(least_level("alert"), Some(None));
        assert_eq!(least_level("loud"), None);
        assert_eq!(mcp_level(LogLevel::Warn), "warning");
    }
}
