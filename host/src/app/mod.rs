//! The application: the host stack assembled from a configuration (stores,
//! runtime, loader, registry, tool service), in one place for every command,
//! test and benchmark; serving it ([`serve`]); one local call ([`call`]);
//! and the operator's view of what it loaded ([`listing`]).

pub mod listing;
pub mod serve;

use std::sync::Arc;
use std::time::Duration;

use rmcp::model::{CallToolResult, JsonObject};
use tokio_util::sync::CancellationToken;

use crate::capability::HostStores;
use crate::capability::blobs::BlobStore;
use crate::capability::kv::KvStore;
use crate::config::Config;
use crate::ops::Operations;
use crate::ops::control::PluginControl;
use crate::plugin::load_phase::LoadPhase;
use crate::plugin::loader::LoadPolicy;
use crate::plugin::{LoadFailure, Loader, PluginSet, Registry};
use crate::runtime::Runtime;
use crate::service::core_plugins::CorePlugins;
use crate::service::gate::Gate;
use crate::service::plugins::PluginTools;
use crate::service::{CallMeta, ToolService};

pub use serve::{ServeOptions, serve};

/// `toolmesh call`: runs one tool on a host started for the purpose, as an
/// agent's call would run (the same gate), cancelled by Ctrl-C. Only an
/// unknown tool or a host that cannot start is an `Err`.
pub async fn call(
    config: &Config,
    tool: &str,
    arguments: JsonObject,
    meta: CallMeta,
) -> anyhow::Result<CallToolResult> {
    let stack = Stack::start(config).await?;
    let cancel = CancellationToken::new();
    let ctrl_c = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            ctrl_c.cancel();
        }
    });
    Ok(stack
        .service
        .call(tool, Some(arguments), meta, &cancel)
        .await?)
}

/// Whether a stack opens the data directory's stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stores {
    /// Open kv and blobs (a host that serves calls).
    Open,
    /// Open none (validating a plugin beside a running host, which holds
    /// them): calls that use them fail with a storage error.
    None,
}

/// A host with its plugins loaded, ready to serve.
pub struct Stack {
    /// The loader (and through it the runtime).
    pub loader: Arc<Loader>,
    /// The loaded plugins.
    pub registry: Arc<Registry>,
    /// Every tool, behind the gate.
    pub service: ToolService,
    /// Plugins that did not load (already logged).
    pub failures: Vec<LoadFailure>,
    /// Lifecycle states, breakers, events, the live feed, alerts.
    pub ops: Arc<Operations>,
    /// Changes which plugins serve.
    pub control: Arc<PluginControl>,
    /// How many plugins were still loading when the stack started.
    pub loading: usize,
}

impl Stack {
    /// Opens the stores, starts the runtime and loads the plugins of
    /// `config`, all of them. Broken plugins are logged and skipped.
    pub async fn start(config: &Config) -> anyhow::Result<Self> {
        Self::start_within(config, None).await
    }

    /// [`Stack::start`], but done when `bound` has passed (with `Some`):
    /// plugins still loading then are served as they finish.
    pub async fn start_within(config: &Config, bound: Option<Duration>) -> anyhow::Result<Self> {
        let loader = Self::loader(config, Stores::Open)?;
        let ops = Arc::new(Operations::open(&config.data_dir()).map_err(anyhow::Error::msg)?);
        let set = PluginSet {
            bundled: config.bundled_plugins,
            dir: Some(config.plugins_dir()).filter(|d| d.exists() || config.plugins_dir.is_some()),
            disabled: ops.states.disabled().into_iter().collect(),
        };
        if let Some(dir) = &set.dir {
            crate::plugin::install::recover(dir);
        }
        let LoadPhase {
            snapshot,
            failures,
            late,
        } = loader.load_all(&set, bound).await;
        for failure in &failures {
            tracing::error!("plugin not loaded: {failure}");
        }
        for plugin in snapshot.plugins() {
            tracing::info!(
                plugin = %plugin.manifest.name,
                version = %plugin.manifest.version,
                tools = plugin.tools.len(),
                source = %plugin.source,
                compiled = ?plugin.origin,
                "plugin loaded"
            );
        }
        let loading = late.pending();
        if loading > 0 {
            tracing::warn!(
                loading,
                "plugins still loading after {} ms: served when they finish",
                bound.unwrap_or_default().as_millis()
            );
        }
        let registry = Arc::new(Registry::new(snapshot));
        let control = Arc::new(PluginControl::new(
            loader.clone(),
            registry.clone(),
            ops.clone(),
            set,
        ));
        if loading > 0 {
            let control = control.clone();
            tokio::spawn(async move { control.admit_late(late).await });
        }
        let plugins = Arc::new(PluginTools::new(loader.runtime().clone(), registry.clone()));
        let core = CorePlugins::new(
            plugins.clone(),
            &config.permissions.plugin,
            &config.metering.plugin,
        );
        let gate = Gate::new(config.permissions.clone(), config.metering.clone(), core);
        Ok(Self {
            service: ToolService::new(plugins, gate).with_operations(ops.clone()),
            loader,
            registry,
            failures,
            ops,
            control,
            loading,
        })
    }

    /// The runtime and the loader of `config`, with or without its stores.
    pub fn loader(config: &Config, stores: Stores) -> anyhow::Result<Arc<Loader>> {
        let stores = match stores {
            Stores::Open => open_stores(config),
            Stores::None => HostStores::default(),
        };
        let levels = config.levels()?;
        let runtime = Runtime::new(
            &config.runtime,
            levels.max_memory_bytes(),
            config.compile_cache_dir(),
            stores,
        )?;
        let policy = LoadPolicy {
            levels,
            trust: config.trust.clone(),
            plugin_configs: config.plugin_configs(),
            files_root: Some(config.files_dir()),
            unprefixed: config.unprefixed_plugins(),
        };
        Ok(Arc::new(Loader::new(Arc::new(runtime), policy)))
    }
}

/// The stores of `config`'s data directory. A host that cannot open one
/// (another `toolmesh serve` holds it, say) still serves; calls using it
/// then fail with a storage error.
fn open_stores(config: &Config) -> HostStores {
    let kv_path = config.data_dir().join("kv.redb");
    let kv = KvStore::open(&kv_path)
        .inspect_err(|e| tracing::warn!(path = %kv_path.display(), "kv store unavailable: {e}"))
        .ok()
        .map(Arc::new);
    let blobs_dir = config.blobs_dir();
    let blobs = BlobStore::open(&blobs_dir)
        .inspect_err(|e| tracing::warn!(path = %blobs_dir.display(), "blob store unavailable: {e}"))
        .ok()
        .map(Arc::new);
    HostStores {
        kv,
        blobs,
        updates: Some(Arc::default()),
    }
}
