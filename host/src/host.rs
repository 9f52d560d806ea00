//! Assembles a running host from a configuration: the runtime, the plugins
//! it loads, and the tool host that serves them. Shared by every command.

use std::sync::Arc;

use crate::capability::HostStores;
use crate::capability::blobs::BlobStore;
use crate::capability::kv::KvStore;
use crate::config::Config;
use crate::mcp::{Enforcement, ToolHost};
use crate::plugin::{LoadFailure, PluginSet, Registry, load_all};
use crate::runtime::Runtime;

/// A host with its plugins loaded.
pub struct Host {
    /// The runtime.
    pub runtime: Arc<Runtime>,
    /// The tools, ready to call.
    pub tools: ToolHost,
    /// Plugins that did not load (already logged).
    pub failures: Vec<LoadFailure>,
}

impl Host {
    /// Starts the runtime and loads the plugins of `config`. Broken plugins
    /// are logged and skipped.
    pub async fn start(config: &Config) -> anyhow::Result<Self> {
        let runtime = Arc::new(
            Runtime::new(
                &config.runtime,
                config.levels()?,
                config.compile_cache_dir(),
                open_stores(config),
            )?
            .with_plugin_configs(config.plugin_configs())
            .with_trust(config.trust.clone()),
        );
        let set = PluginSet {
            bundled: config.bundled_plugins,
            dir: Some(config.plugins_dir()).filter(|d| d.exists() || config.plugins_dir.is_some()),
        };
        let (snapshot, failures) = load_all(&runtime, &set).await;
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
        let registry = Arc::new(Registry::new(snapshot));
        Ok(Self {
            tools: ToolHost::new(runtime.clone(), registry).with_enforcement(Enforcement::new(
                config.permissions.clone(),
                config.metering.clone(),
            )),
            runtime,
            failures,
        })
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
        files_root: Some(config.files_dir()),
    }
}
