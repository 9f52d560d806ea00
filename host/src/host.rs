//! Assembles a running host from a configuration: the runtime, the plugins
//! it loads, and the tool host that serves them. Shared by every command.

use std::sync::Arc;

use crate::capability::kv::KvStore;
use crate::config::Config;
use crate::mcp::ToolHost;
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
        let runtime = Arc::new(Runtime::new(
            &config.runtime,
            config.levels()?,
            config.compile_cache_dir(),
            open_kv(config),
        )?);
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
            tools: ToolHost::new(runtime.clone(), registry),
            runtime,
            failures,
        })
    }
}

/// The kv database of `config`'s data directory. A host that cannot open it
/// (another `toolmesh serve` holds it, say) still serves; kv calls then fail
/// with a storage error.
fn open_kv(config: &Config) -> Option<Arc<KvStore>> {
    let path = config.data_dir().join("kv.redb");
    match KvStore::open(&path) {
        Ok(store) => Some(Arc::new(store)),
        Err(e) => {
            tracing::warn!(path = %path.display(), "kv store unavailable: {e}");
            None
        }
    }
}
