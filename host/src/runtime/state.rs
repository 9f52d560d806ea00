//! What one call's `Store` holds: the WASI context (deny-by-default), the
//! resource table, and the plugin's name for logs.

use std::sync::Arc;

use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// How much of a guest's standard error is kept (panic messages land there).
pub const STDERR_CAPACITY: usize = 16 * 1024;

/// The data of one call's `Store`.
pub struct CallState {
    plugin: Arc<str>,
    wasi: WasiCtx,
    table: ResourceTable,
}

impl CallState {
    /// A fresh state for a call into `plugin`. The guest sees no files, no
    /// environment, no arguments, no network and an empty stdin; its stdout is
    /// discarded and its stderr goes to `stderr`.
    pub fn new(plugin: Arc<str>, stderr: MemoryOutputPipe) -> Self {
        let wasi = WasiCtxBuilder::new().stderr(stderr).build();
        Self {
            plugin,
            wasi,
            table: ResourceTable::new(),
        }
    }

    /// The plugin this call runs.
    pub fn plugin(&self) -> &str {
        &self.plugin
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}
