//! What one call's `Store` holds: the WASI context (deny-by-default), the
//! resource table (capped at the level's handle quota), the plugin's name for
//! logs, and the memory limiter that enforces the level's memory quota and
//! remembers a refusal so the error can name the quota.

use std::sync::Arc;

use wasmtime::ResourceLimiter;

use super::bindings::KvError;
use crate::capability::kv::PluginKv;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// How much of a guest's standard error is kept (panic messages land there).
pub const STDERR_CAPACITY: usize = 16 * 1024;

/// The data of one call's `Store`.
pub struct CallState {
    plugin: Arc<str>,
    wasi: WasiCtx,
    table: ResourceTable,
    memory_limit: usize,
    memory_refused: Option<usize>,
    peak_memory: usize,
    kv: Option<PluginKv>,
}

impl CallState {
    /// A fresh state for a call into `plugin`. The guest sees no files, no
    /// environment, no arguments, no network and an empty stdin; its stdout is
    /// discarded and its stderr goes to `stderr`.
    /// It may hold `handles` resources at once and grow its linear memory to
    /// `memory_limit` bytes.
    pub fn new(
        plugin: Arc<str>,
        stderr: MemoryOutputPipe,
        memory_limit: usize,
        handles: usize,
    ) -> Self {
        let wasi = WasiCtxBuilder::new().stderr(stderr).build();
        let mut table = ResourceTable::new();
        table.set_max_capacity(handles);
        Self {
            plugin,
            wasi,
            table,
            memory_limit,
            memory_refused: None,
            peak_memory: 0,
            kv: None,
        }
    }

    /// Grants the `kv` capability for this call.
    pub fn with_kv(mut self, kv: PluginKv) -> Self {
        self.kv = Some(kv);
        self
    }

    /// The plugin's kv store, if granted. (The loader refuses plugins that
    /// import kv without asking for it, so this is a second line.)
    pub fn kv(&self) -> Result<&PluginKv, KvError> {
        self.kv
            .as_ref()
            .ok_or_else(|| KvError::Storage("the kv store is not available to this call".into()))
    }

    /// The largest linear memory the guest has had, in bytes.
    pub fn peak_memory(&self) -> usize {
        self.peak_memory
    }

    /// The size the guest asked its memory to grow to, if the memory quota
    /// refused it.
    pub fn memory_refused(&self) -> Option<usize> {
        self.memory_refused
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

impl ResourceLimiter for CallState {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_limit {
            self.memory_refused = Some(desired);
            return Ok(false);
        }
        self.peak_memory = self.peak_memory.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Bounded by the pool's per-table element limit.
        Ok(true)
    }
}
