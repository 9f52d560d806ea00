//! What one call's `Store` holds: every capability's context for the call,
//! the resource table (capped at the level's handle quota, shared with
//! WASI's handles), and the memory limiter that enforces the level's memory
//! quota and remembers a refusal so the error can name the quota.

use wasmtime::ResourceLimiter;
use wasmtime_wasi::{ResourceTable, WasiCtxView, WasiView};

use crate::capability::{CallCapabilities, CallData};

/// How much of a guest's standard error is kept (panic messages land there).
pub const STDERR_CAPACITY: usize = 16 * 1024;

/// The data of one call's `Store`.
pub struct CallState {
    capabilities: CallCapabilities,
    table: ResourceTable,
    memory_limit: usize,
    memory_refused: Option<usize>,
    peak_memory: usize,
}

impl CallState {
    /// A fresh state with `capabilities`, which may hold `handles` resources
    /// at once and grow its linear memory to `memory_limit` bytes.
    pub fn new(capabilities: CallCapabilities, memory_limit: usize, handles: usize) -> Self {
        let mut table = ResourceTable::new();
        table.set_max_capacity(handles);
        Self {
            capabilities,
            table,
            memory_limit,
            memory_refused: None,
            peak_memory: 0,
        }
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
}

impl CallData for CallState {
    fn capabilities(&mut self) -> &mut CallCapabilities {
        &mut self.capabilities
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: self.capabilities.wasi_ctx(),
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
