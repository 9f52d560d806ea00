//! The load phase at start: every plugin of a [`PluginSet`] loads at once
//! (each as its own task, so compiling and listing use every core), and
//! the phase ends when all are done or when its bound passes, whichever
//! comes first. What is ready then serves; what is still loading arrives
//! later through [`LateLoads`], to be swapped into the registry one by one
//! (clients hear `list_changed`). Plugins that stall while they are listed
//! therefore delay the start by at most the bound, never by their sum.
//!
//! A plugin in the directory replaces a bundled plugin of the same name,
//! also when it is the later of the two to finish.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::bundled::BUNDLED;
use super::loader::{bundled_name, manifest_name, plugin_dirs};
use super::registry::{LoadFailure, Snapshot};
use super::{LoadError, LoadedPlugin, Loader, PluginSet, Source};

/// How one plugin's load ended.
#[derive(Debug)]
pub struct LoadOutcome {
    /// Where it came from.
    pub source: Source,
    /// Its name as its manifest says (if the manifest could be read).
    pub name: Option<String>,
    /// The plugin, or why it was refused.
    pub result: Result<LoadedPlugin, LoadError>,
}

/// What the load phase gave.
pub struct LoadPhase {
    /// The plugins ready when it ended.
    pub snapshot: Snapshot,
    /// The plugins refused by then.
    pub failures: Vec<LoadFailure>,
    /// The plugins still loading.
    pub late: LateLoads,
}

/// Plugins still loading when the load phase ended, each arriving when
/// its load ends.
pub struct LateLoads {
    outcomes: mpsc::UnboundedReceiver<LoadOutcome>,
    pending: usize,
    /// Names of directory plugins still loading.
    pending_dirs: BTreeSet<String>,
}

impl LateLoads {
    /// How many plugins are still loading.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// Whether a directory plugin named `name` is still loading (a bundled
    /// plugin of that name then waits: the directory's may replace it).
    pub fn dir_pending(&self, name: &str) -> bool {
        self.pending_dirs.contains(name)
    }

    /// The next load to end; `None` when none is left.
    pub async fn next(&mut self) -> Option<LoadOutcome> {
        if self.pending == 0 {
            return None;
        }
        let outcome = self.outcomes.recv().await;
        match &outcome {
            Some(outcome) => {
                self.pending -= 1;
                if let (Source::Dir(_), Some(name)) = (&outcome.source, &outcome.name) {
                    self.pending_dirs.remove(name);
                }
            }
            // A load task ended without an outcome (it panicked): nothing more comes.
            None => self.pending = 0,
        }
        outcome
    }
}

impl Loader {
    /// Loads every plugin of `set`, all at once, and returns what is ready
    /// within `bound` (with `None`, waits for all). Broken plugins are
    /// reported, not fatal.
    pub async fn load_all(self: &Arc<Self>, set: &PluginSet, bound: Option<Duration>) -> LoadPhase {
        let mut failures = Vec::new();
        let (sender, outcomes) = mpsc::unbounded_channel();
        let mut late = LateLoads {
            outcomes,
            pending: 0,
            pending_dirs: BTreeSet::new(),
        };
        if let Some(dir) = &set.dir {
            match plugin_dirs(dir) {
                Ok(paths) => {
                    for path in paths {
                        let name = manifest_name(&path);
                        if name.as_ref().is_some_and(|n| set.disabled.contains(n)) {
                            continue;
                        }
                        late.pending_dirs.extend(name.clone());
                        late.pending += 1;
                        let (loader, sender) = (self.clone(), sender.clone());
                        tokio::spawn(async move {
                            let result = loader.load_dir(&path).await;
                            let source = Source::Dir(path);
                            let _ = sender.send(LoadOutcome {
                                source,
                                name,
                                result,
                            });
                        });
                    }
                }
                Err(error) => failures.push(LoadFailure {
                    source: Source::Dir(dir.clone()),
                    error,
                }),
            }
        }
        if set.bundled {
            for bundled in BUNDLED {
                let name = bundled_name(bundled);
                if name.as_ref().is_some_and(|n| set.disabled.contains(n)) {
                    continue;
                }
                late.pending += 1;
                let (loader, sender) = (self.clone(), sender.clone());
                tokio::spawn(async move {
                    let result = loader.load_bundled(bundled).await;
                    let _ = sender.send(LoadOutcome {
                        source: Source::Bundled,
                        name,
                        result,
                    });
                });
            }
        }
        drop(sender);
        let deadline = bound.map(|b| tokio::time::Instant::now() + b);
        let mut ready = Vec::new();
        loop {
            let next = match deadline {
                Some(deadline) => match tokio::time::timeout_at(deadline, late.next()).await {
                    Ok(next) => next,
                    Err(_) => break,
                },
                None => late.next().await,
            };
            match next {
                Some(outcome) => ready.push(outcome),
                None => break,
            }
        }
        let (snapshot, refused) = Self::ready_snapshot(ready, &late);
        failures.extend(refused);
        LoadPhase {
            snapshot,
            failures,
            late,
        }
    }

    /// The snapshot of the loads that ended in time: a directory plugin
    /// replaces a bundled one of the same name (a bundled plugin whose
    /// directory version is still loading serves until that arrives).
    fn ready_snapshot(ready: Vec<LoadOutcome>, late: &LateLoads) -> (Snapshot, Vec<LoadFailure>) {
        let mut failures = Vec::new();
        let mut dir_plugins = Vec::new();
        let mut bundled = Vec::new();
        for outcome in ready {
            match (outcome.source, outcome.result) {
                (source, Err(error)) => failures.push(LoadFailure { source, error }),
                (Source::Dir(_), Ok(plugin)) => dir_plugins.push(plugin),
                (Source::Bundled, Ok(plugin)) => bundled.push(plugin),
            }
        }
        let mut loaded = Vec::new();
        for plugin in bundled {
            let name = &plugin.manifest.name;
            if dir_plugins.iter().any(|p| &p.manifest.name == name) {
                tracing::info!(plugin = %name, "the plugin directory overrides the bundled plugin");
            } else {
                if late.dir_pending(name) {
                    tracing::info!(
                        plugin = %name,
                        "the bundled plugin serves until the plugin directory's version has loaded"
                    );
                }
                loaded.push(plugin);
            }
        }
        // Bundled first, then the directory's, in a stable order (of two
        // directories naming the same plugin, the first by path serves).
        dir_plugins.sort_by(|a, b| source_path(&a.source).cmp(&source_path(&b.source)));
        loaded.sort_by(|a, b| a.manifest.name.cmp(&b.manifest.name));
        loaded.extend(dir_plugins);
        let (snapshot, duplicates) = Snapshot::new(loaded);
        failures.extend(duplicates);
        (snapshot, failures)
    }
}

/// The directory of a plugin from the plugin directory.
fn source_path(source: &Source) -> Option<&std::path::Path> {
    match source {
        Source::Dir(path) => Some(path),
        Source::Bundled => None,
    }
}
