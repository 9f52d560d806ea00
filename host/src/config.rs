//! `toolmesh.toml`: where the host keeps its data and plugins, and how calls run.
//!
//! Every field has a default, so a host runs with no file at all. Command-line
//! flags override the file (see `main.rs`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::http::config::HttpConfig;
use crate::level::{LevelOverrides, Levels};
use crate::monitor::MonitorConfig;
use crate::monitor::alerting::AlertRule;
use crate::p2p::P2pConfig;
use crate::plugin::trust::{REFUSE, TrustPolicy};

/// Errors reading the configuration file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown or mistyped keys.
    #[error("invalid config {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why, with the line and column.
        source: Box<toml::de::Error>,
    },
    /// A value is out of its range.
    #[error("invalid config {path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the host keeps its state: compiled-component cache, plugins (by
    /// default), and later stores. Default: `$XDG_DATA_HOME/toolmesh`.
    pub data_dir: Option<PathBuf>,
    /// The plugin directory. Default: `<data_dir>/plugins`.
    pub plugins_dir: Option<PathBuf>,
    /// Where compiled components are cached. Default:
    /// `<data_dir>/cache/components`. Hosts may share one.
    pub cache_dir: Option<PathBuf>,
    /// Whether to load the plugins bundled with the host binary.
    pub bundled_plugins: bool,
    /// Whether `serve` watches the plugin directory and loads, replaces
    /// and removes plugins as they change (hot reload).
    pub watch_plugins: bool,
    /// How calls run.
    pub runtime: RuntimeConfig,
    /// Security levels: overrides of the built-in levels' quotas, and new
    /// levels (see [`crate::level`]).
    pub levels: BTreeMap<String, LevelOverrides>,
    /// Per-plugin settings, by plugin name.
    pub plugins: BTreeMap<String, PluginSettings>,
    /// Which tools need a permission grant, and who validates grants.
    pub permissions: PermissionsConfig,
    /// Charging calls to the caller's budget.
    pub metering: MeteringConfig,
    /// Trusted publishers and the level ceilings of everything else.
    pub trust: TrustPolicy,
    /// The peer-to-peer mesh.
    pub p2p: P2pConfig,
    /// MCP over Streamable HTTP.
    pub http: HttpConfig,
    /// Usage history.
    pub monitor: MonitorConfig,
    /// Alert rules (`[[alerts]]`).
    pub alerts: Vec<AlertRule>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: None,
            plugins_dir: None,
            cache_dir: None,
            bundled_plugins: true,
            watch_plugins: true,
            runtime: RuntimeConfig::default(),
            levels: BTreeMap::new(),
            plugins: BTreeMap::new(),
            permissions: PermissionsConfig::default(),
            metering: MeteringConfig::default(),
            trust: TrustPolicy::default(),
            p2p: P2pConfig::default(),
            http: HttpConfig::default(),
            monitor: MonitorConfig::default(),
            alerts: Vec::new(),
        }
    }
}

/// `[plugins.<name>]`: settings of one plugin.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginSettings {
    /// `[plugins.<name>.config]`: handed to the plugin as JSON through the
    /// `config` interface.
    pub config: toml::Table,
    /// Whether the plugin's tools are named `<plugin>__<tool>` (the
    /// default) or just `<tool>` (for clients that call tools by fixed
    /// names, like the MCP conformance suite). A clash with another tool is
    /// a load error.
    pub prefix: bool,
}

impl Default for PluginSettings {
    fn default() -> Self {
        Self {
            config: toml::Table::new(),
            prefix: true,
        }
    }
}

/// `[permissions]`: tools that need a grant, on top of those whose manifest
/// says so.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PermissionsConfig {
    /// The plugin whose `validate` tool checks grant tokens.
    pub plugin: String,
    /// Qualified tool name → the resource type a grant must be for.
    pub requires: BTreeMap<String, String>,
}

impl Default for PermissionsConfig {
    fn default() -> Self {
        Self {
            plugin: "permission".into(),
            requires: BTreeMap::new(),
        }
    }
}

/// `[metering]`: charge each call to the caller's budget.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MeteringConfig {
    /// Whether calls are charged. Off by default.
    pub enabled: bool,
    /// The plugin that keeps budgets.
    pub plugin: String,
    /// Fixed prices per call, by qualified tool name, in budget units.
    pub prices: BTreeMap<String, u64>,
    /// For tools without a price: fuel units per budget unit charged
    /// (rounded up).
    pub fuel_per_unit: u64,
    /// Namespaces (plugins, and `mesh` for the mesh tools) whose calls are
    /// never charged.
    pub exempt: Vec<String>,
}

impl Default for MeteringConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            plugin: "budget".into(),
            prices: BTreeMap::new(),
            fuel_per_unit: 1_000_000,
            exempt: ["budget", "permission", "discovery", "mesh"]
                .map(String::from)
                .into(),
        }
    }
}

/// `[runtime]`: engine-wide settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// How many tool calls may run at once; more wait for a slot. Each slot
    /// reserves address space (not memory) in the pooling allocator.
    pub max_concurrent_calls: u32,
    /// Whether to meter fuel. Off, the levels' fuel quotas are not enforced
    /// (the wall-clock deadline still is) and CPU-bound guests run faster.
    pub fuel_metering: bool,
    /// Whether to keep compiled components on disk so restarts skip compiling.
    pub compile_cache: bool,
    /// How long `serve` waits for the plugins to load before it answers
    /// clients. Plugins still loading then are served when they finish
    /// (clients hear `tools/list_changed`).
    pub startup_wait_ms: u64,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            max_concurrent_calls: 128,
            fuel_metering: true,
            compile_cache: true,
            startup_wait_ms: 5_000,
        }
    }
}

impl Config {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|e| match e {
            ConfigError::Parse { source, .. } => ConfigError::Parse {
                path: path.to_owned(),
                source,
            },
            ConfigError::Invalid { reason, .. } => ConfigError::Invalid {
                path: path.to_owned(),
                reason,
            },
            other => other,
        })
    }

    /// Parses and checks configuration text.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|source| ConfigError::Parse {
            path: PathBuf::new(),
            source: Box::new(source),
        })?;
        config.check().map_err(|reason| ConfigError::Invalid {
            path: PathBuf::new(),
            reason,
        })?;
        Ok(config)
    }

    fn check(&self) -> Result<(), String> {
        let rt = &self.runtime;
        if !(1..=10_000).contains(&rt.max_concurrent_calls) {
            return Err(format!(
                "runtime.max_concurrent_calls must be 1 to 10000, not {}",
                rt.max_concurrent_calls
            ));
        }
        let levels = Levels::new(&self.levels)?;
        if let Some(unsigned) = self.trust.unsigned.as_deref().filter(|u| *u != REFUSE) {
            levels
                .get(unsigned)
                .map_err(|e| format!("trust.unsigned: {e}"))?;
        }
        levels
            .get(&self.trust.peer)
            .map_err(|e| format!("trust.peer: {e}"))?;
        self.p2p.check().map_err(|e| format!("p2p: {e}"))?;
        self.http.check()?;
        self.monitor.check()?;
        for rule in &self.alerts {
            rule.check()?;
        }
        if self.metering.fuel_per_unit == 0 {
            return Err("metering.fuel_per_unit must be at least 1".into());
        }
        Ok(())
    }

    /// The security levels in force.
    pub fn levels(&self) -> Result<Levels, ConfigError> {
        Levels::new(&self.levels).map_err(|reason| ConfigError::Invalid {
            path: PathBuf::new(),
            reason,
        })
    }

    /// Each plugin's configuration as JSON text, by plugin name.
    pub fn plugin_configs(&self) -> BTreeMap<String, String> {
        self.plugins
            .iter()
            .map(|(name, settings)| {
                let json =
                    serde_json::to_string(&settings.config).unwrap_or_else(|_| "{}".to_owned());
                (name.clone(), json)
            })
            .collect()
    }

    /// The plugins whose tools are served without the `<plugin>__` prefix.
    pub fn unprefixed_plugins(&self) -> std::collections::BTreeSet<String> {
        self.plugins
            .iter()
            .filter(|(_, s)| !s.prefix)
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// The data directory in force.
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(default_data_dir)
    }

    /// The plugin directory in force.
    pub fn plugins_dir(&self) -> PathBuf {
        self.plugins_dir
            .clone()
            .unwrap_or_else(|| self.data_dir().join("plugins"))
    }

    /// Where the mesh keeps its files: host key, offers, node file,
    /// control socket.
    pub fn p2p_dir(&self) -> PathBuf {
        self.data_dir().join("p2p")
    }

    /// Where the blob store keeps its files.
    pub fn blobs_dir(&self) -> PathBuf {
        self.data_dir().join("blobs")
    }

    /// Where each plugin's own files directory lives (`<this>/<plugin>`).
    pub fn files_dir(&self) -> PathBuf {
        self.data_dir().join("files")
    }

    /// Where compiled components are cached.
    pub fn compile_cache_dir(&self) -> Option<PathBuf> {
        self.runtime.compile_cache.then(|| {
            self.cache_dir
                .clone()
                .unwrap_or_else(|| self.data_dir().join("cache").join("components"))
        })
    }
}

fn default_data_dir() -> PathBuf {
    dirs::data_dir()
        .map(|d| d.join("toolmesh"))
        .unwrap_or_else(|| PathBuf::from(".toolmesh"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults() {
        let c = Config::parse("").unwrap();
        assert!(c.bundled_plugins);
        assert_eq!(c.runtime.max_concurrent_calls, 128);
    }

    #[test]
    fn values_are_read_and_paths_derived() {
        let c = Config::parse(
            "data_dir = \"/srv/tm\"\n[runtime]\ncompile_cache = false\n[levels.untrusted]\ntimeout_ms = 500\n",
        )
        .unwrap();
        assert_eq!(c.plugins_dir(), PathBuf::from("/srv/tm/plugins"));
        let untrusted = c.levels().unwrap().get("untrusted").unwrap();
        assert_eq!(untrusted.timeout, std::time::Duration::from_millis(500));
        assert_eq!(c.compile_cache_dir(), None);
    }

    #[test]
    fn unknown_keys_and_bad_ranges_are_refused() {
        let err = Config::parse("plugin_dir = \"x\"").unwrap_err().to_string();
        assert!(err.contains("unknown field `plugin_dir`"), "{err}");
        let err = Config::parse("[runtime]\nmax_concurrent_calls = 0")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("max_concurrent_calls must be 1 to 10000"),
            "{err}"
        );
    }
}
