//! The WebAssembly runtime: one engine and linker for the process, a cached
//! `InstancePre` per plugin, and a fresh `Store` for every call, run on tokio
//! under the plugin's security level (fuel, memory, handles, deadline, output
//! size) and the caller's cancellation.
//!
//! - [`exports`]: what a plugin exports (tools, of WIT 0.2 or 0.1; optional
//!   resources, prompts, completions), found once when it is prepared.
//! - [`size`]: what a guest's answer costs against the output quota.

pub mod cache;
mod engine;
mod exports;
pub mod size;
mod state;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use wasmtime::component::{Component, InstancePre, Linker, ResourceTableError};
use wasmtime::{Engine, Store, Trap};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

use crate::capability::{Access, CallCapabilities, CallInputs, CallScope, HostStores, PluginScope};
use crate::config::RuntimeConfig;
use crate::content_hash::ContentHash;
use crate::level::Level;
use crate::wit::{
    CallContext, Completion, CompletionRequest, PromptResult, PromptSpec, ResourceContents,
    ResourceError, ResourceSpec, TemplateSpec, ToolError, ToolOutput, ToolSpec,
};
pub use cache::Origin;
pub use engine::EPOCH_TICK;
use exports::{Export, Exported, Exports};
pub use exports::{Hook, WitVersion};
pub use size::output_size;
pub use state::CallState;
use state::STDERR_CAPACITY;

/// Why a call into a plugin did not return a result.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The tool ran and reported an error.
    #[error("{}", describe_tool_error(.0))]
    Tool(ToolError),
    /// A resource read reported an error.
    #[error("{}", describe_resource_error(.0))]
    Resource(ResourceError),
    /// The plugin does not export what was asked of it.
    #[error("the plugin does not export `{0}`")]
    NotExported(&'static str),
    /// The guest trapped (a panic, an out-of-bounds access, ...).
    #[error("the plugin crashed: {message}{}", stderr_suffix(.stderr))]
    Trap {
        /// The trap, as wasmtime describes it.
        message: String,
        /// The end of the guest's standard error (a panic message, say).
        stderr: String,
    },
    /// The caller cancelled the call; the guest was stopped.
    #[error("cancelled by the client")]
    Cancelled,
    /// The call ran past its wall-clock limit; the guest was stopped.
    #[error("deadline exceeded: the call ran longer than {} ms", .0.as_millis())]
    Deadline(Duration),
    /// The guest used up its fuel; it was stopped.
    #[error("fuel exhausted: {0} units (the `{1}` level's limit per call)")]
    FuelExhausted(u64, String),
    /// The guest tried to grow its memory past the level's quota.
    #[error(
        "memory limit exceeded: the plugin asked for {requested} bytes of linear memory; the \
         `{level}` level allows {limit}"
    )]
    MemoryLimit {
        /// The size the guest asked for.
        requested: usize,
        /// The quota.
        limit: usize,
        /// The level.
        level: String,
    },
    /// The guest tried to hold more handles than the level allows.
    #[error("handle limit exceeded: the `{level}` level allows {limit} open handles")]
    HandleLimit {
        /// The quota.
        limit: usize,
        /// The level.
        level: String,
    },
    /// The result is larger than the level allows.
    #[error("output too large: {size} bytes; the `{level}` level allows {limit}")]
    OutputTooLarge {
        /// The result's size.
        size: usize,
        /// The quota.
        limit: usize,
        /// The level.
        level: String,
    },
    /// The host could not run the call (instantiation failed, say).
    #[error("the host could not run the plugin: {0:#}")]
    Host(anyhow::Error),
    /// A tool the host runs itself (not a guest) failed; the message is for
    /// the caller as it is.
    #[error("{0}")]
    HostTool(String),
}

fn describe_tool_error(e: &ToolError) -> String {
    match e {
        ToolError::InvalidArguments(m) => format!("invalid arguments: {m}"),
        ToolError::Denied(m) => format!("denied: {m}"),
        ToolError::Failed(m) => format!("failed: {m}"),
    }
}

fn describe_resource_error(e: &ResourceError) -> String {
    match e {
        ResourceError::NotFound(m) => format!("not found: {m}"),
        ResourceError::Denied(m) => format!("denied: {m}"),
        ResourceError::Failed(m) => format!("failed: {m}"),
    }
}

fn stderr_suffix(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!("\nplugin stderr:\n{stderr}")
    }
}

/// What the guest consumed during one call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GuestUsage {
    /// Fuel units consumed.
    pub fuel: u64,
    /// The largest linear memory it had, in bytes.
    pub peak_memory_bytes: usize,
}

/// A plugin's compiled component, linked and ready to instantiate, with the
/// security level its calls run under and what it may access.
#[derive(Clone)]
pub struct PluginCode {
    name: Arc<str>,
    level: Arc<Level>,
    access: Arc<Access>,
    config: Arc<str>,
    pre: InstancePre<CallState>,
    exports: Arc<Exports>,
}

impl PluginCode {
    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The security level its calls run under.
    pub fn level(&self) -> &Level {
        &self.level
    }

    /// What it may access.
    pub fn access(&self) -> &Access {
        &self.access
    }

    /// The `toolmesh:plugin` version it was built against.
    pub fn wit_version(&self) -> WitVersion {
        self.exports.version()
    }
}

/// Which resource a read is for: the plugin's URI, and the template that
/// matched it with the values of its variables, if it is templated.
#[derive(Debug, Clone, Copy)]
pub struct ReadTarget<'a> {
    /// The URI, as the plugin names it.
    pub uri: &'a str,
    /// The template's `uri-template`, for a templated resource.
    pub template: Option<&'a str>,
    /// The template's variables.
    pub variables: &'a [(String, String)],
}

/// What a plugin offers, as it lists it once at load.
#[derive(Debug, Default)]
pub struct Catalog {
    /// Its tools.
    pub tools: Vec<ToolSpec>,
    /// Its fixed resources.
    pub resources: Vec<ResourceSpec>,
    /// Its resource templates.
    pub templates: Vec<TemplateSpec>,
    /// Its prompts.
    pub prompts: Vec<PromptSpec>,
    /// Whether it completes prompt arguments and template variables.
    pub completes: bool,
}

/// [`Runtime::run`] answers each [`Export`] with its own [`Exported`] case;
/// this is the error for the other one.
fn mismatched_export() -> CallError {
    CallError::Host(anyhow::anyhow!(
        "the runtime matched an answer to the wrong export"
    ))
}

/// The runtime shared by every plugin: the engine, the linker, the compile
/// cache, and calls. What a plugin may do is decided before it gets here
/// (by the loader); the runtime enforces it.
pub struct Runtime {
    engine: Engine,
    linker: Linker<CallState>,
    cache: Option<cache::CompileCache>,
    slots: Semaphore,
    stores: HostStores,
    _ticker: engine::EpochTicker,
}

impl Runtime {
    /// Builds the engine (linear memories up to `max_memory_bytes`, the
    /// largest any level allows), the linker (every capability's
    /// interfaces) and the epoch ticker.
    pub fn new(
        config: &RuntimeConfig,
        max_memory_bytes: usize,
        cache_dir: Option<PathBuf>,
        stores: HostStores,
    ) -> anyhow::Result<Self> {
        let engine = engine::new_engine(
            config.max_concurrent_calls,
            max_memory_bytes,
            config.fuel_metering,
        )?;
        let mut linker = Linker::new(&engine);
        CallCapabilities::add_to_linker(&mut linker)?;
        let cache = cache_dir.map(|dir| cache::CompileCache::new(dir, &engine));
        let ticker = engine::EpochTicker::start(engine.clone())?;
        Ok(Self {
            engine,
            linker,
            cache,
            slots: Semaphore::new(config.max_concurrent_calls as usize),
            stores,
            _ticker: ticker,
        })
    }

    /// The stores behind the capabilities.
    pub fn stores(&self) -> &HostStores {
        &self.stores
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Compiles `wasm`, or loads it from the compile cache.
    pub fn compile(
        &self,
        wasm: &[u8],
        hash: &ContentHash,
    ) -> wasmtime::Result<(Component, Origin)> {
        match &self.cache {
            Some(cache) => cache.load_or_compile(&self.engine, hash, wasm),
            None => Ok((Component::new(&self.engine, wasm)?, Origin::Compiled)),
        }
    }

    /// Links `component` against the host's imports, for plugin `name`
    /// running at `level` with `access` and the operator's `config` (JSON
    /// object text). Fails with wasmtime's message when it imports something
    /// the host does not provide, and when it does not export a `tools`
    /// interface of a version the host serves.
    pub fn prepare(
        &self,
        name: &str,
        level: Arc<Level>,
        access: Access,
        config: Arc<str>,
        component: &Component,
    ) -> wasmtime::Result<PluginCode> {
        let pre = self.linker.instantiate_pre(component)?;
        let exports = Exports::find(&pre)?;
        Ok(PluginCode {
            name: name.into(),
            level,
            access: Arc::new(access),
            config,
            pre,
            exports: Arc::new(exports),
        })
    }

    /// Asks the plugin for everything it offers (tools, resources,
    /// templates, prompts), in one instance under its level's quotas.
    pub async fn describe(&self, code: &PluginCode) -> Result<Catalog, CallError> {
        let cancel = CancellationToken::new();
        match self
            .run(code, Export::Describe, &cancel, CallInputs::local())
            .await
            .0?
        {
            Exported::Catalog(catalog) => Ok(catalog),
            _ => Err(mismatched_export()),
        }
    }

    /// Runs lifecycle hook `hook` of the plugin in a fresh instance under
    /// its quotas (nothing, if it exports no hooks). `Err` is why it
    /// failed: the plugin's own error, or a trap or quota.
    pub async fn hook(&self, code: &PluginCode, hook: Hook) -> Result<(), CallError> {
        if !code.exports.has_hooks() {
            return Ok(());
        }
        let cancel = CancellationToken::new();
        match self
            .run(code, Export::Hook(hook), &cancel, CallInputs::local())
            .await
            .0?
        {
            Exported::Hooked(outcome) => outcome.map_err(|e| tool_error(code, e)),
            _ => Err(mismatched_export()),
        }
    }

    /// Runs tool `tool` of the plugin with `arguments` (JSON text) in a fresh
    /// instance. `cancel` stops the guest wherever it is; its progress
    /// reports go to `inputs.progress`, if the plugin may report progress,
    /// and it sees `inputs.caller` as its caller. Returns
    /// what the guest consumed along with the outcome.
    pub async fn call(
        &self,
        code: &PluginCode,
        ctx: &CallContext,
        tool: &str,
        arguments: &str,
        cancel: &CancellationToken,
        inputs: CallInputs,
    ) -> (Result<ToolOutput, CallError>, GuestUsage) {
        let export = Export::Call {
            ctx,
            tool,
            arguments,
        };
        let (outcome, usage) = self.run(code, export, cancel, inputs).await;
        let checked = outcome.and_then(|exported| match exported {
            Exported::Output(output) => {
                let output = output.map_err(|e| tool_error(code, e))?;
                within_output_quota(code, output_size(&output))?;
                Ok(output)
            }
            _ => Err(mismatched_export()),
        });
        (checked, usage)
    }

    /// Reads resource `uri` (as the plugin names it; matched by `template`
    /// with `variables`, if it is templated) in a fresh instance, under the
    /// same quotas as a tool call.
    pub async fn read_resource(
        &self,
        code: &PluginCode,
        ctx: &CallContext,
        target: ReadTarget<'_>,
        cancel: &CancellationToken,
        inputs: CallInputs,
    ) -> (Result<Vec<ResourceContents>, CallError>, GuestUsage) {
        let export = Export::Read {
            ctx,
            uri: target.uri,
            template: target.template,
            variables: target.variables,
        };
        let (outcome, usage) = self.run(code, export, cancel, inputs).await;
        let checked = outcome.and_then(|exported| match exported {
            Exported::Contents(contents) => {
                let contents = contents.map_err(|e| resource_error(code, e))?;
                within_output_quota(code, contents.iter().map(size::contents_size).sum())?;
                Ok(contents)
            }
            _ => Err(mismatched_export()),
        });
        (checked, usage)
    }

    /// Fills in prompt `name` with `arguments` in a fresh instance.
    pub async fn get_prompt(
        &self,
        code: &PluginCode,
        ctx: &CallContext,
        name: &str,
        arguments: &[(String, String)],
        cancel: &CancellationToken,
        inputs: CallInputs,
    ) -> (Result<PromptResult, CallError>, GuestUsage) {
        let export = Export::Prompt {
            ctx,
            name,
            arguments,
        };
        let (outcome, usage) = self.run(code, export, cancel, inputs).await;
        let checked = outcome.and_then(|exported| match exported {
            Exported::Prompt(prompt) => {
                let prompt = prompt.map_err(|e| tool_error(code, e))?;
                within_output_quota(code, size::prompt_size(&prompt))?;
                Ok(prompt)
            }
            _ => Err(mismatched_export()),
        });
        (checked, usage)
    }

    /// Candidate values for `request`, from a fresh instance.
    pub async fn complete(
        &self,
        code: &PluginCode,
        ctx: &CallContext,
        request: &CompletionRequest,
        cancel: &CancellationToken,
    ) -> (Result<Completion, CallError>, GuestUsage) {
        let export = Export::Complete { ctx, request };
        let (outcome, usage) = self.run(code, export, cancel, CallInputs::local()).await;
        let checked = outcome.and_then(|exported| match exported {
            Exported::Completion(completion) => {
                let completion = completion.map_err(|e| tool_error(code, e))?;
                within_output_quota(code, size::completion_size(&completion))?;
                Ok(completion)
            }
            _ => Err(mismatched_export()),
        });
        (checked, usage)
    }

    /// Runs `export` in a fresh instance of `code`: a call slot, a store
    /// with the plugin's capabilities, the guest under the deadline and
    /// `cancel`, and the quota that stopped it named.
    async fn run(
        &self,
        code: &PluginCode,
        export: Export<'_>,
        cancel: &CancellationToken,
        inputs: CallInputs,
    ) -> (Result<Exported, CallError>, GuestUsage) {
        // Declared before the store, so dropped after it: the pool slot is
        // free again before the next call can take the permit.
        let _slot = match self.acquire_slot(cancel).await {
            Ok(slot) => slot,
            Err(e) => return (Err(e), GuestUsage::default()),
        };
        let (mut store, stderr) = match self.new_store(code, inputs) {
            Ok(store) => store,
            Err(e) => return (Err(e), GuestUsage::default()),
        };
        let run = async {
            let instance = code.pre.instantiate_async(&mut store).await?;
            code.exports.run(&mut store, &instance, export).await
        };
        let outcome = self.guarded(run, cancel, &code.level, &stderr).await;
        let usage = GuestUsage {
            // With metering off there is no fuel to read: report none used.
            fuel: store.get_fuel().map_or(0, |left| code.level.fuel - left),
            peak_memory_bytes: store.data().peak_memory(),
        };
        (quota_error(outcome, &store, &code.level), usage)
    }

    /// A store for one call into `code`, with the plugin's capabilities.
    fn new_store(
        &self,
        code: &PluginCode,
        inputs: CallInputs,
    ) -> Result<(Store<CallState>, MemoryOutputPipe), CallError> {
        let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
        let level = &code.level;
        let plugin = PluginScope {
            name: &code.name,
            level,
            access: &code.access,
            config: &code.config,
        };
        let call = CallScope {
            progress: inputs.progress,
            stderr: stderr.clone(),
            caller: inputs.caller,
            client: inputs.client,
            client_log: inputs.client_log,
        };
        let capabilities =
            CallCapabilities::for_call(&self.stores, &plugin, &call).map_err(CallError::Host)?;
        let state = CallState::new(capabilities, level.memory_bytes, level.handles);
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| state);
        // Fails only when fuel metering is off, and then there is no quota.
        let _ = store.set_fuel(level.fuel);
        // Yield to the executor on every epoch tick, so that the deadline and
        // cancellation below can stop a guest that never calls the host.
        // The first deadline is the next tick (a new store's is the current
        // epoch, which would yield at the guest's first check).
        store.set_epoch_deadline(1);
        store.epoch_deadline_async_yield_and_update(1);
        Ok((store, stderr))
    }

    /// Waits for a call slot (one instance in the pool), or for `cancel`.
    async fn acquire_slot(
        &self,
        cancel: &CancellationToken,
    ) -> Result<tokio::sync::SemaphorePermit<'_>, CallError> {
        tokio::select! {
            _ = cancel.cancelled() => Err(CallError::Cancelled),
            slot = self.slots.acquire() => slot.map_err(|e| CallError::Host(e.into())),
        }
    }

    /// Runs `guest` until it finishes, the deadline passes, or `cancel`
    /// fires; dropping the future stops the guest.
    async fn guarded<R>(
        &self,
        guest: impl Future<Output = wasmtime::Result<R>>,
        cancel: &CancellationToken,
        level: &Level,
        stderr: &MemoryOutputPipe,
    ) -> Result<R, CallError> {
        let outcome = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(CallError::Cancelled),
            _ = tokio::time::sleep(level.timeout) => return Err(CallError::Deadline(level.timeout)),
            outcome = guest => outcome,
        };
        outcome.map_err(|e| trap_or_host_error(e, level, stderr))
    }
}

/// `Err` if an answer of `size` bytes is more than `code`'s level allows.
/// A tool error from the guest, unless its message is over the output
/// quota (an error goes to the client too).
fn tool_error(code: &PluginCode, error: ToolError) -> CallError {
    let size = match &error {
        ToolError::InvalidArguments(m) | ToolError::Denied(m) | ToolError::Failed(m) => m.len(),
    };
    match within_output_quota(code, size) {
        Ok(()) => CallError::Tool(error),
        Err(too_large) => too_large,
    }
}

/// A resource error from the guest, unless its message is over the output
/// quota.
fn resource_error(code: &PluginCode, error: ResourceError) -> CallError {
    let size = match &error {
        ResourceError::NotFound(m) | ResourceError::Denied(m) | ResourceError::Failed(m) => m.len(),
    };
    match within_output_quota(code, size) {
        Ok(()) => CallError::Resource(error),
        Err(too_large) => too_large,
    }
}

fn within_output_quota(code: &PluginCode, size: usize) -> Result<(), CallError> {
    if size > code.level.max_output_bytes {
        return Err(CallError::OutputTooLarge {
            size,
            limit: code.level.max_output_bytes,
            level: code.level.name.clone(),
        });
    }
    Ok(())
}

/// A failed call whose guest was refused memory failed because of the memory
/// quota, whatever the guest did next (Rust guests abort on a failed
/// allocation).
fn quota_error<R>(
    outcome: Result<R, CallError>,
    store: &Store<CallState>,
    level: &Level,
) -> Result<R, CallError> {
    match (outcome, store.data().memory_refused()) {
        (Err(CallError::Trap { .. } | CallError::Host(_)), Some(requested)) => {
            Err(CallError::MemoryLimit {
                requested,
                limit: level.memory_bytes,
                level: level.name.clone(),
            })
        }
        (outcome, _) => outcome,
    }
}

fn trap_or_host_error(
    error: wasmtime::Error,
    level: &Level,
    stderr: &MemoryOutputPipe,
) -> CallError {
    // WASI hands the guest a resource by pushing it into the table: a full
    // table is the handle quota refusing one more.
    let table_full = error
        .chain()
        .any(|cause| matches!(cause.downcast_ref(), Some(ResourceTableError::Full)));
    if table_full {
        return CallError::HandleLimit {
            limit: level.handles,
            level: level.name.clone(),
        };
    }
    if let Some(missing) = error.downcast_ref::<exports::NotExported>() {
        return CallError::NotExported(missing.0);
    }
    let Some(trap) = error.downcast_ref::<Trap>() else {
        return CallError::Host(error.into());
    };
    if *trap == Trap::OutOfFuel {
        return CallError::FuelExhausted(level.fuel, level.name.clone());
    }
    let bytes = stderr.contents();
    let stderr = String::from_utf8_lossy(&bytes);
    CallError::Trap {
        message: trap.to_string(),
        stderr: crate::text::tail(stderr.trim_end(), 2048).to_owned(),
    }
}
