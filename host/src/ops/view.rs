//! What an operator sees of the plugins: each one the host knows of
//! (loaded or disabled) with its state, breaker, level and quotas, granted
//! and refused capabilities, tools and their usage, and its last load
//! error. One view for the admin tools and the dashboard.

use serde::Serialize;
use serde_json::Value;

use super::breaker::BreakerView;
use super::control::PluginControl;
use crate::level::Level;
use crate::plugin::LoadedPlugin;

/// One plugin.
#[derive(Debug, Clone, Serialize)]
pub struct PluginView {
    /// Its name.
    pub name: String,
    /// Its version (when loaded).
    pub version: Option<String>,
    /// What it does (when loaded).
    pub description: Option<String>,
    /// The level it runs at (when loaded).
    pub level: Option<String>,
    /// `enabled`, `paused` or `disabled`.
    pub state: &'static str,
    /// Why the operator set that state.
    pub state_reason: Option<String>,
    /// Its circuit breaker.
    pub breaker: Option<BreakerView>,
    /// Where it comes from.
    pub source: String,
    /// Who vouches for it (when loaded).
    pub trust: Option<String>,
    /// Its level's quotas (when loaded).
    pub quotas: Option<Quotas>,
    /// Capabilities granted and refused.
    pub capabilities: Capabilities,
    /// Its tools.
    pub tools: Vec<ToolView>,
    /// Why its last load failed, if it did.
    pub last_error: Option<String>,
}

/// A level's quotas.
#[derive(Debug, Clone, Serialize)]
pub struct Quotas {
    /// Fuel per call.
    pub fuel: u64,
    /// Linear memory.
    pub memory_bytes: usize,
    /// Open handles.
    pub handles: usize,
    /// Wall-clock limit.
    pub timeout_ms: u64,
    /// Largest result.
    pub max_output_bytes: usize,
    /// kv bytes.
    pub kv_bytes: u64,
    /// Blob bytes.
    pub blob_bytes: u64,
}

impl Quotas {
    /// The quotas of `level`.
    pub fn of(level: &Level) -> Self {
        Self {
            fuel: level.fuel,
            memory_bytes: level.memory_bytes,
            handles: level.handles,
            timeout_ms: level.timeout.as_millis() as u64,
            max_output_bytes: level.max_output_bytes,
            kv_bytes: level.kv_bytes,
            blob_bytes: level.blob_bytes,
        }
    }
}

/// Capabilities granted and refused.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Capabilities {
    /// Granted.
    pub granted: Vec<String>,
    /// Refused, with why.
    pub refused: Vec<String>,
}

/// One tool.
#[derive(Debug, Clone, Serialize)]
pub struct ToolView {
    /// The qualified name.
    pub name: String,
    /// Its title.
    pub title: Option<String>,
    /// What it does.
    pub description: String,
    /// The arguments' schema.
    pub input_schema: Value,
    /// The structured result's schema.
    pub output_schema: Option<Value>,
    /// Calls so far.
    pub calls: u64,
    /// Calls that did not end `ok`.
    pub errors: u64,
    /// Median latency, µs.
    pub p50_us: u64,
    /// 99th percentile latency, µs.
    pub p99_us: u64,
}

/// Every plugin `control` knows of, by name.
pub fn plugins(control: &PluginControl) -> Vec<PluginView> {
    let snapshot = control.registry().snapshot();
    let ops = control.operations();
    control
        .known()
        .into_iter()
        .map(|(name, source)| {
            let record = ops.states.get(&name);
            let mut view = PluginView {
                state: record.state.name(),
                state_reason: record.reason,
                breaker: ops.breaker(&name),
                source: source.to_string(),
                last_error: ops.last_error(&name),
                version: None,
                description: None,
                level: None,
                trust: None,
                quotas: None,
                capabilities: Capabilities::default(),
                tools: Vec::new(),
                name,
            };
            if let Some(plugin) = snapshot.plugin(&view.name) {
                fill(&mut view, plugin);
            }
            view
        })
        .collect()
}

/// The view of plugin `name`, if the host knows of it.
pub fn plugin(control: &PluginControl, name: &str) -> Option<PluginView> {
    plugins(control).into_iter().find(|p| p.name == name)
}

fn fill(view: &mut PluginView, plugin: &LoadedPlugin) {
    let level = plugin.code.level();
    let access = plugin.code.access();
    view.version = Some(plugin.manifest.version.to_string());
    view.description = Some(plugin.manifest.description.clone());
    view.level = Some(level.name.clone());
    view.trust = Some(plugin.trust.to_string());
    view.quotas = Some(Quotas::of(level));
    view.capabilities = Capabilities {
        granted: access.imports.iter().map(ToString::to_string).collect(),
        refused: access.refused.clone(),
    };
    view.tools = plugin
        .tools
        .iter()
        .map(|tool| {
            let usage = tool.usage.summary();
            ToolView {
                name: tool.qualified_name.clone(),
                title: tool.title.clone(),
                description: tool.description.clone(),
                input_schema: Value::Object((*tool.input_schema).clone()),
                output_schema: tool
                    .output_schema
                    .as_ref()
                    .map(|s| Value::Object((**s).clone())),
                calls: usage.calls,
                errors: usage.errors,
                p50_us: usage.latency_us.p50,
                p99_us: usage.latency_us.p99,
            }
        })
        .collect();
}
