//! The plugin control: the one place that changes which plugins serve, for
//! the operator (CLI through the control socket, admin tools, the
//! dashboard) and for the directory watcher. Every change goes through the
//! loader's checks and lands as one registry swap: a version that fails to
//! load never replaces the one serving, and calls in flight finish on the
//! snapshot they started with.
//!
//! Enable, disable, pause, resume, reload a plugin by name; [`PluginControl::sync_dir`]
//! brings the registry in line with the plugin directory (new, replaced
//! and removed plugins). Changes are serialized.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::Operations;
use super::breaker::BreakerPolicy;
use super::events::EventKind;
use super::state::PluginState;
use crate::plugin::bundled::BUNDLED;
use crate::plugin::load_phase::LateLoads;
use crate::plugin::loader::{bundled_name, manifest_name, plugin_dirs};
use crate::plugin::{LoadedPlugin, Loader, PluginSet, Registry, Source};
use crate::runtime::Hook;

/// A lifecycle action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Load a disabled plugin and serve it.
    Enable,
    /// Stop serving a plugin and unlist its tools.
    Disable,
    /// Keep its tools listed, refuse their calls.
    Pause,
    /// Serve a paused plugin's calls again.
    Resume,
    /// Load it again from its source.
    Reload,
}

impl std::str::FromStr for Action {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "enable" => Ok(Action::Enable),
            "disable" => Ok(Action::Disable),
            "pause" => Ok(Action::Pause),
            "resume" => Ok(Action::Resume),
            "reload" => Ok(Action::Reload),
            other => Err(format!(
                "unknown action `{}` (enable, disable, pause, resume or reload)",
                crate::text::truncate(other, 64)
            )),
        }
    }
}

/// What the control remembers of the plugin directory: each plugin
/// directory's fingerprint when last looked at.
#[derive(Debug, Default)]
struct DirState {
    fingerprints: HashMap<PathBuf, blake3::Hash>,
}

/// Changes which plugins serve.
pub struct PluginControl {
    loader: Arc<Loader>,
    registry: Arc<Registry>,
    ops: Arc<Operations>,
    set: PluginSet,
    /// Where each plugin the host knows of (loaded or disabled) comes from.
    sources: std::sync::Mutex<BTreeMap<String, Source>>,
    busy: tokio::sync::Mutex<DirState>,
}

impl PluginControl {
    /// Control over `registry`'s plugins, loaded from `set` by `loader`.
    /// Takes note of what is loaded and of the directory as it is now.
    pub fn new(
        loader: Arc<Loader>,
        registry: Arc<Registry>,
        ops: Arc<Operations>,
        set: PluginSet,
    ) -> Self {
        let mut sources = BTreeMap::new();
        if set.bundled {
            for bundled in BUNDLED {
                if let Some(name) = bundled_name(bundled) {
                    sources.insert(name, Source::Bundled);
                }
            }
        }
        let mut dir = DirState::default();
        if let Some(plugins_dir) = &set.dir {
            for path in plugin_dirs(plugins_dir).unwrap_or_default() {
                if let Some(name) = manifest_name(&path) {
                    sources.insert(name, Source::Dir(path.clone()));
                }
                if let Ok(fingerprint) = fingerprint(&path) {
                    dir.fingerprints.insert(path, fingerprint);
                }
            }
        }
        for plugin in registry.snapshot().plugins() {
            sources.insert(plugin.manifest.name.clone(), plugin.source.clone());
            ops.track(&plugin.manifest.name, policy_of(plugin));
        }
        Self {
            loader,
            registry,
            ops,
            set,
            sources: std::sync::Mutex::new(sources),
            busy: tokio::sync::Mutex::new(dir),
        }
    }

    /// The operations the control records in.
    pub fn operations(&self) -> &Arc<Operations> {
        &self.ops
    }

    /// The registry it changes.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// The loader it loads with.
    pub fn loader(&self) -> &Arc<Loader> {
        &self.loader
    }

    /// The plugin directory, if there is one.
    pub fn plugins_dir(&self) -> Option<&Path> {
        self.set.dir.as_deref()
    }

    fn sources(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Source>> {
        match self.sources.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Every plugin the host knows of, loaded or disabled, by name.
    pub fn known(&self) -> BTreeMap<String, Source> {
        self.sources().clone()
    }

    /// Applies `action` to plugin `name` for the reason given; `Ok` is what
    /// happened, for the operator to read.
    pub async fn apply(
        &self,
        name: &str,
        action: Action,
        reason: Option<String>,
    ) -> Result<String, String> {
        let _busy = self.busy.lock().await;
        let state = self.ops.states.get(name).state;
        let loaded = self.registry.snapshot().plugin(name).cloned();
        let known = self.sources().get(name).cloned();
        if loaded.is_none() && known.is_none() {
            return Err(format!(
                "no plugin `{}` (`toolmesh plugin list` shows them)",
                crate::text::truncate(name, 128)
            ));
        }
        match action {
            Action::Enable => {
                if state != PluginState::Disabled {
                    return Ok(format!("plugin `{name}` is already {}", state.name()));
                }
                let source = known.ok_or_else(|| format!("plugin `{name}` has no source"))?;
                let plugin = self.load(name, &source).await?;
                // The state is written first: a host that cannot record it does not change.
                self.ops
                    .set_state(name, PluginState::Enabled, EventKind::Enabled, reason)?;
                self.serve(plugin, None)?;
                Ok(format!("plugin `{name}` enabled"))
            }
            Action::Disable => {
                if state == PluginState::Disabled {
                    return Ok(format!("plugin `{name}` is already disabled"));
                }
                self.ops
                    .set_state(name, PluginState::Disabled, EventKind::Disabled, reason)?;
                if let Some(old) = self.registry.remove(name) {
                    self.unloaded(old);
                }
                Ok(format!(
                    "plugin `{name}` disabled: its tools are no longer listed"
                ))
            }
            Action::Pause | Action::Resume => {
                let (to, kind) = if action == Action::Pause {
                    (PluginState::Paused, EventKind::Paused)
                } else {
                    (PluginState::Enabled, EventKind::Resumed)
                };
                if state == PluginState::Disabled {
                    return Err(format!(
                        "plugin `{name}` is disabled; enable it first (`toolmesh plugin enable \
                         {name}`)"
                    ));
                }
                if state == to {
                    return Ok(format!("plugin `{name}` is already {}", to.name()));
                }
                self.ops.set_state(name, to, kind, reason)?;
                Ok(format!(
                    "plugin `{name}` {}",
                    if to == PluginState::Paused {
                        "paused"
                    } else {
                        "resumed"
                    }
                ))
            }
            Action::Reload => {
                let Some(current) = loaded else {
                    return Err(format!(
                        "plugin `{name}` is disabled; enable it to load it (`toolmesh plugin \
                         enable {name}`)"
                    ));
                };
                let plugin = self.load(name, &current.source).await?;
                self.serve(
                    plugin,
                    Some(reason.unwrap_or_else(|| "by the operator".into())),
                )?;
                Ok(format!("plugin `{name}` reloaded"))
            }
        }
    }

    /// Loads `name` from `source`; a failure is recorded and returned.
    async fn load(&self, name: &str, source: &Source) -> Result<LoadedPlugin, String> {
        match self.loader.load_source(name, source).await {
            Ok(plugin) => Ok(plugin),
            Err(e) => {
                let message = format!("{source}: {e}");
                self.failed(name, message.clone());
                Err(message)
            }
        }
    }

    /// Swaps `plugin` into the registry and records it: `reloaded` says it
    /// replaced a loaded version (and why), else it is newly loaded.
    fn serve(&self, plugin: LoadedPlugin, reloaded: Option<String>) -> Result<(), String> {
        let name = plugin.manifest.name.clone();
        let source = plugin.source.clone();
        let policy = policy_of(&plugin);
        let old = self.registry.snapshot().plugin(&name).cloned();
        let replaced = old.is_some();
        if let Err(e) = self.registry.insert(plugin) {
            let message = format!("{source}: {e}");
            self.ops
                .events
                .record(&name, EventKind::Failed, Some(message.clone()));
            return Err(message);
        }
        if let Some(old) = old {
            self.unloaded(old);
        }
        self.ops.track(&name, policy);
        self.ops.set_last_error(&name, None);
        self.sources().insert(name.clone(), source.clone());
        let (kind, reason) = match (replaced, reloaded) {
            (true, reason) => (
                EventKind::Reloaded,
                reason.or(Some(format!("from {source}"))),
            ),
            (false, _) => (EventKind::Loaded, Some(format!("from {source}"))),
        };
        self.ops.events.record(&name, kind, reason);
        self.ops.changed();
        Ok(())
    }

    /// Brings the registry in line with the plugin directory: loads new
    /// plugins, replaces changed ones (a version that fails keeps the old
    /// one serving), and removes those whose directory is gone (a bundled
    /// plugin of the same name serves again). Returns how many changed.
    pub async fn sync_dir(&self) -> usize {
        let Some(dir) = self.set.dir.clone() else {
            return 0;
        };
        let mut state = self.busy.lock().await;
        let paths = match plugin_dirs(&dir) {
            Ok(paths) => paths,
            Err(e) => {
                tracing::warn!(dir = %dir.display(), "cannot read the plugin directory: {e}");
                return 0;
            }
        };
        let mut changed = 0;
        for path in &paths {
            let Ok(print) = fingerprint(path) else {
                // Being written, or unreadable: looked at again on the next change.
                continue;
            };
            if state.fingerprints.get(path) == Some(&print) {
                continue;
            }
            state.fingerprints.insert(path.clone(), print);
            let name = manifest_name(path);
            if let Some(name) = &name {
                self.sources()
                    .insert(name.clone(), Source::Dir(path.clone()));
                if self.ops.states.get(name).state == PluginState::Disabled {
                    continue;
                }
            }
            let label = name.clone().unwrap_or_else(|| {
                path.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            });
            changed += 1;
            match self.loader.load_dir(path).await {
                Ok(plugin) => {
                    let name = plugin.manifest.name.clone();
                    let replaced = self.registry.snapshot().plugin(&name).is_some();
                    let why = replaced.then(|| format!("{} changed", path.display()));
                    if let Err(e) = self.serve(plugin, why) {
                        tracing::error!(plugin = %name, "not served: {e}");
                    }
                }
                Err(e) => {
                    let message = format!("{}: {e}", path.display());
                    tracing::error!(plugin = %label, "plugin not loaded: {message}");
                    let serving = self.registry.snapshot().plugin(&label).is_some();
                    let message = if serving {
                        format!("{message} (the loaded version keeps serving)")
                    } else {
                        message
                    };
                    self.failed(&label, message);
                }
            }
        }
        state.fingerprints.retain(|p, _| paths.contains(p));
        // Plugins whose directory is gone.
        let gone: Vec<Arc<LoadedPlugin>> = self
            .registry
            .snapshot()
            .plugins()
            .filter(|p| matches!(&p.source, Source::Dir(d) if d.starts_with(&dir) && !paths.contains(d)))
            .cloned()
            .collect();
        for plugin in gone {
            let name = plugin.manifest.name.clone();
            changed += 1;
            if let Some(old) = self.registry.remove(&name) {
                self.unloaded(old);
            }
            self.sources().remove(&name);
            self.ops.events.record(
                &name,
                EventKind::Removed,
                Some(format!("{} was removed", plugin.source)),
            );
            self.ops.changed();
            let bundled = self.set.bundled
                && BUNDLED
                    .iter()
                    .any(|b| bundled_name(b).as_deref() == Some(name.as_str()));
            if bundled {
                self.sources().insert(name.clone(), Source::Bundled);
                if let Ok(plugin) = self.load(&name, &Source::Bundled).await {
                    let _ = self.serve(plugin, None);
                }
            }
        }
        changed
    }
}

impl PluginControl {
    /// Serves the plugins that were still loading when the load phase
    /// ended, each as it arrives (one swap each; clients hear
    /// `list_changed`). A directory plugin replaces a bundled one of the
    /// same name; a bundled plugin whose directory version is still loading
    /// waits for it (and serves if that fails). A plugin disabled, or
    /// reloaded by the watcher, in the meantime is left as it is.
    pub async fn admit_late(&self, mut late: LateLoads) {
        let mut waiting: BTreeMap<String, LoadedPlugin> = BTreeMap::new();
        while let Some(outcome) = late.next().await {
            let _busy = self.busy.lock().await;
            let label = outcome
                .name
                .clone()
                .unwrap_or_else(|| outcome.source.to_string());
            let plugin = match outcome.result {
                Ok(plugin) => plugin,
                Err(e) => {
                    let message = format!("{}: {e}", outcome.source);
                    tracing::error!(plugin = %label, "plugin not loaded: {message}");
                    self.failed(&label, message);
                    if let Some(bundled) = waiting.remove(&label) {
                        self.serve_late(bundled, None);
                    }
                    continue;
                }
            };
            let name = plugin.manifest.name.clone();
            let serving = self.registry.snapshot().plugin(&name).cloned();
            match (&plugin.source, serving.as_ref().map(|p| &p.source)) {
                (Source::Dir(_), Some(Source::Bundled)) => {
                    waiting.remove(&name);
                    self.serve_late(
                        plugin,
                        Some("the plugin directory overrides the bundled plugin"),
                    );
                }
                (Source::Dir(path), Some(Source::Dir(other))) => {
                    waiting.remove(&name);
                    if path != other {
                        let message = format!(
                            "{}: duplicate plugin name `{name}`: already loaded from {}",
                            path.display(),
                            other.display()
                        );
                        tracing::error!(plugin = %name, "plugin not loaded: {message}");
                        self.ops
                            .events
                            .record(&name, EventKind::Failed, Some(message));
                    }
                    // The same directory: the watcher loaded a newer version meanwhile.
                }
                (Source::Dir(_), None) => {
                    waiting.remove(&name);
                    self.serve_late(plugin, None);
                }
                (Source::Bundled, Some(_)) => {}
                (Source::Bundled, None) if late.dir_pending(&name) => {
                    waiting.insert(name, plugin);
                }
                (Source::Bundled, None) => self.serve_late(plugin, None),
            }
        }
        for (_, bundled) in waiting {
            self.serve_late(bundled, None);
        }
    }

    /// Records that plugin `name` failed to load: its last error, a
    /// `failed` event, and a change for the live views.
    fn failed(&self, name: &str, message: String) {
        self.ops.set_last_error(name, Some(message.clone()));
        self.ops
            .events
            .record(name, EventKind::Failed, Some(message));
        self.ops.changed();
    }

    /// Serves a plugin that finished loading after the load phase, unless
    /// the operator disabled it meanwhile.
    fn serve_late(&self, plugin: LoadedPlugin, why: Option<&str>) {
        let name = plugin.manifest.name.clone();
        if self.ops.states.get(&name).state == PluginState::Disabled {
            return;
        }
        match self.serve(plugin, why.map(str::to_owned)) {
            Ok(()) => tracing::info!(plugin = %name, "plugin loaded after the start"),
            Err(e) => tracing::error!(plugin = %name, "not served: {e}"),
        }
    }
}

impl PluginControl {
    /// Runs the unload hook of a version no longer served, in the
    /// background (calls still in flight on it finish on their snapshot).
    fn unloaded(&self, plugin: Arc<LoadedPlugin>) {
        let runtime = self.loader.runtime().clone();
        tokio::spawn(async move {
            if let Err(e) = runtime.hook(&plugin.code, Hook::Unload).await {
                tracing::warn!(plugin = %plugin.manifest.name, "unload hook failed: {e}");
            }
        });
    }
}

/// The breaker policy of `plugin`'s level.
fn policy_of(plugin: &LoadedPlugin) -> BreakerPolicy {
    plugin.code.level().breaker
}

/// A plugin directory's fingerprint: the names and contents of its files.
fn fingerprint(dir: &Path) -> std::io::Result<blake3::Hash> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.path())
        .collect();
    entries.sort();
    let mut hasher = blake3::Hasher::new();
    for path in entries {
        hasher.update(
            path.file_name()
                .map(std::ffi::OsStr::as_encoded_bytes)
                .unwrap_or_default(),
        );
        hasher.update(&[0]);
        hasher.update_reader(std::fs::File::open(&path)?)?;
        hasher.update(&[0]);
    }
    Ok(hasher.finalize())
}
