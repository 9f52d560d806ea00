//! The set of loaded plugins and the index from qualified tool names to
//! tools. Readers take a cheap snapshot; loading builds a new snapshot and
//! swaps it in whole, so a call never sees half a change.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use super::loader::{LoadError, LoadedPlugin, Source};
use super::resource::{PluginPrompt, PluginResource, PluginTemplate};
use super::tool::{NAMESPACE_SEPARATOR, Tool};

/// A plugin that was not loaded, and why.
#[derive(Debug)]
pub struct LoadFailure {
    /// Where it was.
    pub source: Source,
    /// Why it was refused.
    pub error: LoadError,
}

impl std::fmt::Display for LoadFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.source, self.error)
    }
}

/// One consistent view of the loaded plugins.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    plugins: BTreeMap<String, Arc<LoadedPlugin>>,
    tools: HashMap<String, (Arc<LoadedPlugin>, Arc<Tool>)>,
    /// Prompts by public name: the plugin and the prompt's index in it.
    prompts: HashMap<String, (Arc<LoadedPlugin>, usize)>,
    /// Fixed resources by public URI: the plugin and the resource's index.
    resources: HashMap<String, (Arc<LoadedPlugin>, usize)>,
}

/// What a public resource URI names: a plugin's fixed resource, or a URI
/// that one of its templates matches.
pub enum ResourceTarget<'a> {
    /// A fixed resource.
    Fixed(&'a Arc<LoadedPlugin>, &'a PluginResource),
    /// A templated one, with the plugin's own URI and the template.
    Templated {
        /// The plugin.
        plugin: &'a Arc<LoadedPlugin>,
        /// The template the URI matches.
        template: &'a PluginTemplate,
        /// The URI as the plugin names it.
        uri: String,
        /// The values of the template's variables in it.
        variables: Vec<(String, String)>,
    },
}

impl Snapshot {
    /// Builds the index from loaded plugins; later plugins with a name already
    /// taken are returned as failures.
    pub fn new(plugins: Vec<LoadedPlugin>) -> (Self, Vec<LoadFailure>) {
        let mut snapshot = Snapshot::default();
        let mut failures = Vec::new();
        for plugin in plugins {
            if let Some(first) = snapshot.plugins.get(&plugin.manifest.name) {
                failures.push(LoadFailure {
                    error: LoadError::Manifest(format!(
                        "duplicate plugin name `{}`: already loaded from {}",
                        plugin.manifest.name, first.source
                    )),
                    source: plugin.source,
                });
                continue;
            }
            if let Some(clash) = snapshot.clash(&plugin) {
                failures.push(LoadFailure {
                    error: LoadError::Tool(clash),
                    source: plugin.source,
                });
                continue;
            }
            snapshot.add(Arc::new(plugin));
        }
        (snapshot, failures)
    }

    /// Why `plugin` cannot join: one of its tool names belongs to another
    /// plugin's tool (possible when a plugin is served without its prefix).
    fn clash(&self, plugin: &LoadedPlugin) -> Option<String> {
        let other = |owner: &Arc<LoadedPlugin>| owner.manifest.name != plugin.manifest.name;
        let message = |what: &str, name: &str, owner: &Arc<LoadedPlugin>| {
            format!(
                "{what} `{name}` clashes with plugin `{}`'s {what} of the same name; serve one \
                 of them with its prefix (`[plugins.NAME] prefix = true`)",
                owner.manifest.name
            )
        };
        let tools = plugin.tools.iter().find_map(|tool| {
            let (owner, _) = self.tools.get(&tool.qualified_name)?;
            other(owner).then(|| message("tool", &tool.qualified_name, owner))
        });
        let prompts = || {
            plugin.prompts.iter().find_map(|prompt| {
                let (owner, _) = self.prompts.get(&prompt.public_name)?;
                other(owner).then(|| message("prompt", &prompt.public_name, owner))
            })
        };
        let resources = || {
            plugin.resources.iter().find_map(|resource| {
                let (owner, _) = self.resources.get(&resource.public_uri)?;
                other(owner).then(|| message("resource", &resource.public_uri, owner))
            })
        };
        tools.or_else(prompts).or_else(resources)
    }

    /// Unindexes plugin `name` and its tools, prompts and resources.
    fn remove(&mut self, name: &str) {
        if let Some(old) = self.plugins.remove(name) {
            for tool in &old.tools {
                self.tools.remove(&tool.qualified_name);
            }
            for prompt in &old.prompts {
                self.prompts.remove(&prompt.public_name);
            }
            for resource in &old.resources {
                self.resources.remove(&resource.public_uri);
            }
        }
    }

    /// Indexes `plugin` and its tools (replacing a plugin of the same name).
    fn add(&mut self, plugin: Arc<LoadedPlugin>) {
        self.remove(&plugin.manifest.name);
        for tool in &plugin.tools {
            self.tools
                .insert(tool.qualified_name.clone(), (plugin.clone(), tool.clone()));
        }
        for (i, prompt) in plugin.prompts.iter().enumerate() {
            self.prompts
                .insert(prompt.public_name.clone(), (plugin.clone(), i));
        }
        for (i, resource) in plugin.resources.iter().enumerate() {
            self.resources
                .insert(resource.public_uri.clone(), (plugin.clone(), i));
        }
        self.plugins.insert(plugin.manifest.name.clone(), plugin);
    }

    /// This snapshot with `plugin` added, replacing a plugin of the same
    /// name; `Err` if its tool names clash with another plugin's.
    pub fn with_plugin(&self, plugin: LoadedPlugin) -> Result<Snapshot, LoadError> {
        if let Some(clash) = self.clash(&plugin) {
            return Err(LoadError::Tool(clash));
        }
        let mut plugin = plugin;
        if let Some(old) = self.plugins.get(&plugin.manifest.name) {
            // A new version's tools keep counting where the old one's left off.
            for tool in &mut plugin.tools {
                let before = old.tools.iter().find(|o| o.name == tool.name);
                if let (Some(before), Some(tool)) = (before, Arc::get_mut(tool)) {
                    tool.usage = before.usage.clone();
                }
            }
        }
        let mut snapshot = self.clone();
        snapshot.add(Arc::new(plugin));
        Ok(snapshot)
    }

    /// This snapshot without plugin `name`.
    pub fn without(&self, name: &str) -> Snapshot {
        let mut snapshot = self.clone();
        snapshot.remove(name);
        snapshot
    }

    /// The plugin called `name`.
    pub fn plugin(&self, name: &str) -> Option<&Arc<LoadedPlugin>> {
        self.plugins.get(name)
    }

    /// The plugins, by name.
    pub fn plugins(&self) -> impl ExactSizeIterator<Item = &Arc<LoadedPlugin>> {
        self.plugins.values()
    }

    /// Every tool, ordered by plugin and then as each plugin listed them.
    pub fn tools(&self) -> impl Iterator<Item = &Arc<Tool>> {
        self.plugins.values().flat_map(|p| p.tools.iter())
    }

    /// How many tools there are.
    pub fn tool_count(&self) -> usize {
        self.tools.len()
    }

    /// Every prompt, ordered by plugin and then as each plugin listed them.
    pub fn prompts(&self) -> impl Iterator<Item = (&Arc<LoadedPlugin>, &PluginPrompt)> {
        self.plugins
            .values()
            .flat_map(|p| p.prompts.iter().map(move |prompt| (p, prompt)))
    }

    /// The prompt clients call `name`.
    pub fn prompt(&self, name: &str) -> Option<(&Arc<LoadedPlugin>, &PluginPrompt)> {
        let (plugin, i) = self.prompts.get(name)?;
        Some((plugin, plugin.prompts.get(*i)?))
    }

    /// Every fixed resource, ordered by plugin and then as listed.
    pub fn resources(&self) -> impl Iterator<Item = (&Arc<LoadedPlugin>, &PluginResource)> {
        self.plugins
            .values()
            .flat_map(|p| p.resources.iter().map(move |r| (p, r)))
    }

    /// Every resource template, ordered by plugin and then as listed.
    pub fn templates(&self) -> impl Iterator<Item = (&Arc<LoadedPlugin>, &PluginTemplate)> {
        self.plugins
            .values()
            .flat_map(|p| p.templates.iter().map(move |t| (p, t)))
    }

    /// What public URI `uri` names: a fixed resource, else the first
    /// template (by plugin, then as listed) that matches it.
    pub fn resource(&self, uri: &str) -> Option<ResourceTarget<'_>> {
        if let Some((plugin, i)) = self.resources.get(uri) {
            return Some(ResourceTarget::Fixed(plugin, plugin.resources.get(*i)?));
        }
        self.plugins.values().find_map(|plugin| {
            let own = plugin.namespace.plugin_uri(uri)?;
            let (template, variables) = plugin
                .templates
                .iter()
                .find_map(|t| Some((t, t.matches(&own)?)))?;
            Some(ResourceTarget::Templated {
                plugin,
                template,
                uri: own,
                variables,
            })
        })
    }

    /// The tool called `name`: a qualified name (`hello__greet`), or a bare
    /// tool name when exactly one plugin has a tool by that name.
    pub fn resolve(&self, name: &str) -> Option<(&Arc<LoadedPlugin>, &Arc<Tool>)> {
        if let Some((plugin, tool)) = self.tools.get(name) {
            return Some((plugin, tool));
        }
        if name.contains(NAMESPACE_SEPARATOR) {
            return None;
        }
        let mut matches = self
            .plugins
            .values()
            .flat_map(|p| p.tools.iter().map(move |t| (p, t)))
            .filter(|(_, t)| t.name == name);
        let only = matches.next()?;
        matches.next().is_none().then_some(only)
    }
}

/// The registry: the current snapshot, replaceable as a whole. Every
/// replacement bumps a version that [`Registry::changes`] watchers see (the
/// MCP server turns it into `notifications/tools/list_changed`).
#[derive(Debug)]
pub struct Registry {
    current: RwLock<Arc<Snapshot>>,
    version: tokio::sync::watch::Sender<u64>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new(Snapshot::default())
    }
}

impl Registry {
    /// A registry serving `snapshot`.
    pub fn new(snapshot: Snapshot) -> Self {
        Self {
            current: RwLock::new(Arc::new(snapshot)),
            version: tokio::sync::watch::Sender::new(0),
        }
    }

    /// How many times the snapshot was replaced.
    pub fn version(&self) -> u64 {
        *self.version.borrow()
    }

    /// A receiver that wakes when the snapshot is replaced.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// Adds `plugin` (replacing one of the same name) in one swap; `Err`
    /// (and nothing changes) if its tool names clash with another plugin's.
    pub fn insert(&self, plugin: LoadedPlugin) -> Result<(), LoadError> {
        let mut guard = match self.current.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        *guard = Arc::new(guard.with_plugin(plugin)?);
        drop(guard);
        self.version.send_modify(|v| *v += 1);
        Ok(())
    }

    /// Removes plugin `name` in one swap; returns it, if it was loaded.
    pub fn remove(&self, name: &str) -> Option<Arc<LoadedPlugin>> {
        let mut guard = match self.current.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let old = guard.plugin(name).cloned()?;
        *guard = Arc::new(guard.without(name));
        drop(guard);
        self.version.send_modify(|v| *v += 1);
        Some(old)
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Serves `snapshot` from now on.
    pub fn replace(&self, snapshot: Snapshot) {
        let snapshot = Arc::new(snapshot);
        match self.current.write() {
            Ok(mut guard) => *guard = snapshot,
            Err(poisoned) => *poisoned.into_inner() = snapshot,
        }
        self.version.send_modify(|v| *v += 1);
    }
}
