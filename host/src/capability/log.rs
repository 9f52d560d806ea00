//! The `log` capability: a guest's log records go into the host's log
//! (target `plugin`, tagged with the plugin's name), each cut to
//! [`MAX_MESSAGE_BYTES`] so that one call cannot flood it with one record.
//! Denied, records are dropped.

use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker};

use super::{CallCapability, CallData, CallScope, Capability, HostStores, PluginScope};
use crate::wit::LogLevel;
use crate::wit::toolmesh::plugin::log;

/// The longest guest log message kept; longer ones are cut, with a marker.
pub const MAX_MESSAGE_BYTES: usize = 4096;

/// A call's log: the plugin's name, if it may log.
pub struct LogCtx {
    plugin: Option<Arc<str>>,
}

impl CallCapability for LogCtx {
    fn add_to_linker<T: CallData>(
        linker: &mut Linker<T>,
        get: fn(&mut T) -> &mut Self,
    ) -> wasmtime::Result<()> {
        log::add_to_linker::<T, HasSelf<Self>>(linker, get)
    }

    fn for_call(_: &HostStores, plugin: &PluginScope<'_>, _: &CallScope) -> anyhow::Result<Self> {
        Ok(Self {
            plugin: plugin
                .access
                .has(Capability::Log)
                .then(|| plugin.name.clone()),
        })
    }
}

impl log::Host for LogCtx {
    fn log(&mut self, level: LogLevel, message: String) {
        let Some(plugin) = self.plugin.as_deref() else {
            return;
        };
        let message = crate::text::truncate(&message, MAX_MESSAGE_BYTES);
        match level {
            LogLevel::Trace => tracing::trace!(target: "plugin", plugin, "{message}"),
            LogLevel::Debug => tracing::debug!(target: "plugin", plugin, "{message}"),
            LogLevel::Info => tracing::info!(target: "plugin", plugin, "{message}"),
            LogLevel::Warn => tracing::warn!(target: "plugin", plugin, "{message}"),
            LogLevel::Error => tracing::error!(target: "plugin", plugin, "{message}"),
        }
    }
}
