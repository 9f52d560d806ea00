//! The `log` capability: a guest's log records go into the host's log
//! (target `plugin`, tagged with the plugin's name), each cut to
//! [`MAX_MESSAGE_BYTES`] so that one call cannot flood it with one record.
//! When the client asked for log messages, records at or above its level
//! also go to it ([`ClientLog`]: bounded, never blocking the guest; the MCP
//! server sends them as `notifications/message`). Denied, records are
//! dropped.

use std::sync::Arc;

use tokio::sync::mpsc;

use wasmtime::component::Linker;

use super::{CallCapability, CallData, CallScope, Capability, HostStores, PluginScope};
use crate::wit::LogLevel;
use crate::wit::toolmesh::plugin::log;

/// The longest guest log message kept; longer ones are cut, with a marker.
pub const MAX_MESSAGE_BYTES: usize = 4096;

/// How many records for the client may wait to be sent.
pub const CLIENT_CAPACITY: usize = 64;

/// One record for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientLogRecord {
    /// How much it matters.
    pub level: LogLevel,
    /// The plugin that wrote it (the MCP logger name).
    pub plugin: Arc<str>,
    /// What it says.
    pub message: String,
}

/// Where a call's records for the client go, and the least level sent.
#[derive(Debug, Clone)]
pub struct ClientLog {
    tx: mpsc::Sender<ClientLogRecord>,
    min: LogLevel,
}

/// Creates a sink for records at `min` or above, and the stream it feeds.
pub fn client_channel(min: LogLevel) -> (ClientLog, mpsc::Receiver<ClientLogRecord>) {
    let (tx, rx) = mpsc::channel(CLIENT_CAPACITY);
    (ClientLog { tx, min }, rx)
}

impl ClientLog {
    /// Whether a record at `level` goes to the client.
    pub fn wants(&self, level: LogLevel) -> bool {
        level as u8 >= self.min as u8
    }

    /// Queues `record` if the client wants its level; false if it was
    /// dropped (filtered, the queue is full, or no one listens).
    pub fn send(&self, record: ClientLogRecord) -> bool {
        self.wants(record.level) && self.tx.try_send(record).is_ok()
    }
}

/// A call's log: the plugin's name, if it may log, the client's sink, and
/// what is left of the call's log budget.
pub struct LogCtx {
    plugin: Option<Arc<str>>,
    client: Option<ClientLog>,
    level: Arc<str>,
    records_left: u32,
    bytes_left: u64,
    dropped_records: u64,
    dropped_bytes: u64,
}

impl LogCtx {
    /// Takes `bytes` of one record from the budget; false (and counted) if
    /// it is spent.
    fn spend(&mut self, plugin: &str, bytes: usize) -> bool {
        if self.records_left > 0 && self.bytes_left >= bytes as u64 {
            self.records_left -= 1;
            self.bytes_left -= bytes as u64;
            return true;
        }
        if self.dropped_records == 0 {
            tracing::warn!(
                target: "plugin",
                plugin,
                level = %self.level,
                "this call's log budget is spent; its further records are dropped"
            );
        }
        self.dropped_records += 1;
        self.dropped_bytes += bytes as u64;
        false
    }
}

impl Drop for LogCtx {
    fn drop(&mut self) {
        if self.dropped_records > 0 {
            tracing::warn!(
                target: "plugin",
                plugin = self.plugin.as_deref().unwrap_or_default(),
                records = self.dropped_records,
                bytes = self.dropped_bytes,
                "log records dropped over the call's budget"
            );
        }
    }
}

impl CallCapability for LogCtx {
    fn add_to_linker<T: CallData>(
        linker: &mut Linker<T>,
        get: fn(&mut T) -> &mut Self,
    ) -> wasmtime::Result<()> {
        link_v0_1_and_v0_2!(log, linker, get)
    }

    fn for_call(
        _: &HostStores,
        plugin: &PluginScope<'_>,
        call: &CallScope,
    ) -> anyhow::Result<Self> {
        let granted = plugin.access.has(Capability::Log);
        Ok(Self {
            plugin: granted.then(|| plugin.name.clone()),
            client: call.client_log.clone().filter(|_| granted),
            level: plugin.level.name.as_str().into(),
            records_left: plugin.level.log_records,
            bytes_left: plugin.level.log_bytes,
            dropped_records: 0,
            dropped_bytes: 0,
        })
    }
}

impl log::Host for LogCtx {
    fn log(&mut self, level: LogLevel, message: String) {
        let Some(plugin) = self.plugin.clone() else {
            return;
        };
        let plugin = &*plugin;
        let message = crate::text::truncate(&message, MAX_MESSAGE_BYTES);
        if !self.spend(plugin, message.len()) {
            return;
        }
        if let Some(client) = &self.client
            && client.wants(level)
        {
            client.send(ClientLogRecord {
                level,
                plugin: plugin.into(),
                message: message.clone().into_owned(),
            });
        }
        match level {
            LogLevel::Trace => tracing::trace!(target: "plugin", plugin, "{message}"),
            LogLevel::Debug => tracing::debug!(target: "plugin", plugin, "{message}"),
            LogLevel::Info => tracing::info!(target: "plugin", plugin, "{message}"),
            LogLevel::Warn => tracing::warn!(target: "plugin", plugin, "{message}"),
            LogLevel::Error => tracing::error!(target: "plugin", plugin, "{message}"),
        }
    }
}
