//! What one call's `Store` holds: the WASI context (deny-by-default, with
//! the plugin's granted directories and environment), the resource table
//! (capped at the level's handle quota), the plugin's name for logs, its
//! granted host capabilities, and the memory limiter that enforces the
//! level's memory quota and remembers a refusal so the error can name the
//! quota.

use std::sync::Arc;

use wasmtime::ResourceLimiter;

use super::bindings::{BlobError, KvError};
use crate::capability::blobs::PluginBlobs;
use crate::capability::grant::Grants;
use crate::capability::kv::PluginKv;
use crate::capability::progress::ProgressSink;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, ResourceTable, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

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
    config: Arc<str>,
    log: bool,
    kv: Option<PluginKv>,
    blobs: Option<PluginBlobs>,
    progress: Option<ProgressSink>,
}

/// The WASI context of a call into a plugin with `grants`: its granted
/// directories (with cap-std's confinement: no way out through `..`,
/// absolute paths or symlinks) and environment variables; no arguments, no
/// network, an empty stdin, stdout discarded and stderr into `stderr`.
pub fn wasi_ctx(grants: &Grants, stderr: MemoryOutputPipe) -> anyhow::Result<WasiCtx> {
    let mut builder = WasiCtxBuilder::new();
    builder.stderr(stderr);
    for (name, value) in &grants.env {
        builder.env(name, value);
    }
    for preopen in &grants.preopens {
        let perms = if preopen.writable {
            FsPerms::ReadWrite
        } else {
            FsPerms::ReadOnly
        };
        builder
            .preopened_dir(&preopen.host, &preopen.guest, perms)
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot open {} for the plugin's `{}`: {e:#}",
                    preopen.host.display(),
                    preopen.guest
                )
            })?;
    }
    Ok(builder.build())
}

impl CallState {
    /// A fresh state for a call into `plugin` with WASI context `wasi` (see
    /// [`wasi_ctx`]) and no host capabilities (add them with the `with_`
    /// methods). It may hold `handles` resources at once and grow its linear
    /// memory to `memory_limit` bytes.
    pub fn new(plugin: Arc<str>, wasi: WasiCtx, memory_limit: usize, handles: usize) -> Self {
        let mut table = ResourceTable::new();
        table.set_max_capacity(handles);
        Self {
            plugin,
            wasi,
            table,
            memory_limit,
            memory_refused: None,
            peak_memory: 0,
            config: Arc::from("{}"),
            log: false,
            kv: None,
            blobs: None,
            progress: None,
        }
    }

    /// The operator's configuration for the plugin (JSON object text).
    pub fn with_config(mut self, config: Arc<str>) -> Self {
        self.config = config;
        self
    }

    /// The plugin's configuration.
    pub fn config(&self) -> &str {
        &self.config
    }

    /// Grants the `log` capability for this call.
    pub fn with_log(mut self) -> Self {
        self.log = true;
        self
    }

    /// Grants the `blobs` capability for this call.
    pub fn with_blobs(mut self, blobs: PluginBlobs) -> Self {
        self.blobs = Some(blobs);
        self
    }

    /// Sends this call's progress reports to `sink`.
    pub fn with_progress(mut self, sink: ProgressSink) -> Self {
        self.progress = Some(sink);
        self
    }

    /// Whether the plugin's logs are kept.
    pub fn logs(&self) -> bool {
        self.log
    }

    /// The plugin's view of the blob store, if granted.
    pub fn blobs(&self) -> Result<&PluginBlobs, BlobError> {
        self.blobs.as_ref().ok_or_else(|| {
            BlobError::Storage("the `blobs` capability was not granted to this plugin".into())
        })
    }

    /// Where this call's progress goes, if the plugin may report it and the
    /// agent asked for it.
    pub fn progress(&self) -> Option<&ProgressSink> {
        self.progress.as_ref()
    }

    /// Grants the `kv` capability for this call.
    pub fn with_kv(mut self, kv: PluginKv) -> Self {
        self.kv = Some(kv);
        self
    }

    /// The plugin's kv store, if granted. (The loader refuses plugins that
    /// import kv without asking for it, so this is a second line.)
    pub fn kv(&self) -> Result<&PluginKv, KvError> {
        self.kv.as_ref().ok_or_else(|| {
            KvError::Storage("the `kv` capability was not granted to this plugin".into())
        })
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
