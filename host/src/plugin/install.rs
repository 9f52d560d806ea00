//! `toolmesh plugin install`: validate a plugin completely (the same loader
//! the host serves with), then copy its manifest and component into the plugin
//! directory through a hidden staging directory and a rename. A plugin that
//! does not load is never copied. An installed plugin is replaced only with
//! `--force`, in one `renameat2(RENAME_EXCHANGE)` that swaps the staged and
//! the installed directory (a process killed at any moment leaves the old
//! plugin or the new one, whole). Where the file system cannot exchange,
//! the old directory is moved aside and the new one renamed in; an install
//! killed between the two is put right by [`recover`], which every install
//! and every host start run first.

use std::path::{Path, PathBuf};

use super::files::PluginFiles;
use super::loader::{LoadError, LoadedPlugin, Loader};
use super::manifest::MANIFEST_FILE;
use super::trust::{PROVENANCE_FILE, SIGNATURE_FILE};
use crate::fs::Confined;

/// Why an install did not happen.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The plugin does not load.
    #[error("{path} is not a valid plugin: {error}")]
    Invalid {
        /// The source.
        path: PathBuf,
        /// Why.
        error: LoadError,
    },
    /// A plugin of that name is installed and `force` was not given.
    #[error("plugin `{name}` {version} is already installed at {path}; pass --force to replace it")]
    AlreadyInstalled {
        /// Its name.
        name: String,
        /// The installed version.
        version: String,
        /// Where.
        path: PathBuf,
    },
    /// A file operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
}

/// What was installed.
#[derive(Debug)]
pub struct Installed {
    /// The plugin, as loaded from its source.
    pub plugin: LoadedPlugin,
    /// Its directory in the plugin directory.
    pub path: PathBuf,
    /// Whether it replaced an installed plugin.
    pub replaced: bool,
}

/// Installs the plugin at `source` (its directory, or its `plugin.toml`) into
/// `plugins_dir`.
pub async fn install(
    loader: &Loader,
    source: &Path,
    plugins_dir: &Path,
    force: bool,
) -> Result<Installed, InstallError> {
    let source_dir = if source.is_file() {
        source.parent().unwrap_or(Path::new(".")).to_owned()
    } else {
        source.to_owned()
    };
    let plugin = loader
        .load_dir(&source_dir)
        .await
        .map_err(|error| InstallError::Invalid {
            path: source_dir.clone(),
            error,
        })?;
    let name = plugin.manifest.name.clone();
    let dest = plugins_dir.join(&name);
    let io = |what: String| {
        move |source| InstallError::Io {
            what,
            source: super::files::escape_explained(source),
        }
    };
    let plugins = Confined::open(plugins_dir)
        .map_err(io(format!("cannot open {}", plugins_dir.display())))?;
    let installed_version = installed_version(&plugins, &name);
    if let Some(version) = &installed_version
        && !force
    {
        return Err(InstallError::AlreadyInstalled {
            name,
            version: version.clone(),
            path: dest,
        });
    }

    recover_in(&plugins);
    // Stage in a hidden directory beside the destination (same file system,
    // so the final rename is atomic; hidden, so a loader passes it over).
    // Every name below is one component inside the plugin directory's
    // handle: nothing here can land outside it.
    let staged = plugins
        .create_unique_dir(&format!("{STAGING}{}-{name}-", std::process::id()))
        .map_err(io(format!("cannot stage in {}", plugins_dir.display())))?;
    let staged_at = plugins.display(&staged);
    let copied = copy_plugin(&source_dir, &plugin, &plugins, &staged);
    let moved = copied.and_then(|()| {
        if installed_version.is_some() {
            replace_dir(&plugins, &name, &staged).map_err(io(format!(
                "cannot move the new plugin to {}",
                dest.display()
            )))
        } else {
            plugins
                .rename(&staged, Path::new(&name))
                .map_err(io(format!(
                    "cannot move the new plugin to {}",
                    dest.display()
                )))
        }
    });
    if let Err(e) = moved {
        let _ = plugins.remove_dir_all(&staged);
        tracing::debug!(staging = %staged_at.display(), "install abandoned");
        return Err(e);
    }
    // The rename itself is durable once the directory is.
    let _ = plugins.sync();
    let replaced = installed_version.is_some();
    let mut plugin = plugin;
    plugin.source = super::loader::Source::Dir(dest.clone());
    Ok(Installed {
        plugin,
        path: dest,
        replaced,
    })
}

/// Copies the validated plugin's files from `source_dir` into `staged`
/// and checks that the staged component is byte for byte what was
/// validated.
fn copy_plugin(
    source_dir: &Path,
    plugin: &LoadedPlugin,
    plugins: &Confined,
    staged: &Path,
) -> Result<(), InstallError> {
    let io = |what: String| {
        move |source| InstallError::Io {
            what,
            source: super::files::escape_explained(source),
        }
    };
    let source = PluginFiles::open(source_dir).map_err(|error| InstallError::Invalid {
        path: source_dir.to_owned(),
        error,
    })?;
    let staging = plugins.subdir(staged).map_err(io(format!(
        "cannot open {}",
        plugins.display(staged).display()
    )))?;
    // The signature and provenance, when present, travel with the plugin:
    // the loader checks them again at every start.
    let optional = [SIGNATURE_FILE, PROVENANCE_FILE]
        .into_iter()
        .filter(|file| source.confined().is_file(Path::new(file)));
    let files = [MANIFEST_FILE, plugin.manifest.component.as_str()]
        .into_iter()
        .chain(optional);
    for file in files {
        source
            .confined()
            .copy_to(Path::new(file), &staging, Path::new(file))
            .map_err(io(format!(
                "cannot copy {} to {}",
                source.path(file).display(),
                staging.display(Path::new(file)).display()
            )))?;
    }
    let staged_wasm = staging
        .read(Path::new(&plugin.manifest.component))
        .map_err(io("cannot re-read the staged component".into()))?;
    if super::manifest::ContentHash::of(&staged_wasm) != plugin.hash {
        return Err(InstallError::Invalid {
            path: source_dir.to_owned(),
            error: LoadError::Manifest("the component changed while it was being installed".into()),
        });
    }
    Ok(())
}

/// Swaps the staged directory in for the installed plugin `name`; the old
/// version ends up at `staged` (exchange) and is removed, or (where the
/// file system cannot exchange) is moved aside first.
fn replace_dir(plugins: &Confined, name: &str, staged: &Path) -> std::io::Result<()> {
    let dest = Path::new(name);
    match plugins.exchange(staged, dest) {
        Ok(()) => {
            let _ = plugins.remove_dir_all(staged);
            return Ok(());
        }
        Err(e)
            if rustix::io::Errno::from_io_error(&e).is_some_and(|e| {
                e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOSYS
            }) => {}
        Err(e) => return Err(e),
    }
    let retired = PathBuf::from(format!("{RETIRED}{}-{name}", std::process::id()));
    let _ = plugins.remove_dir_all(&retired);
    plugins.rename(dest, &retired)?;
    if let Err(e) = plugins.rename(staged, dest) {
        // Put the old plugin back: a failed install changes nothing.
        let _ = plugins.rename(&retired, dest);
        return Err(e);
    }
    let _ = plugins.remove_dir_all(&retired);
    Ok(())
}

/// The prefix of a staging directory.
const STAGING: &str = ".install-";
/// The prefix of an old version moved aside (where exchange is not had).
const RETIRED: &str = ".retired-";

/// Puts right what an install killed midway left in `plugins_dir`: an old
/// version moved aside whose name is free again is moved back, and
/// staging directories and leftover old versions are removed. Installs
/// still running (their process id is in the names) are left alone. (The
/// loader passes hidden directories over, so none of these was served.)
pub fn recover(plugins_dir: &Path) {
    if let Ok(plugins) = Confined::open_existing(plugins_dir) {
        recover_in(&plugins);
    }
}

fn recover_in(plugins: &Confined) {
    let Ok(names) = plugins.names(Path::new(".")) else {
        return;
    };
    for file_name in names {
        let Some(file_name) = file_name.to_str() else {
            continue;
        };
        let (retired, rest) = if let Some(rest) = file_name.strip_prefix(STAGING) {
            (false, rest)
        } else if let Some(rest) = file_name.strip_prefix(RETIRED) {
            (true, rest)
        } else {
            continue;
        };
        // `<pid>-<name>[-<random>]`
        let Some((pid, name)) = rest.split_once('-') else {
            continue;
        };
        if pid.parse::<u32>().is_ok_and(running) {
            continue;
        }
        let path = Path::new(file_name);
        let free = !name.is_empty() && !plugins.exists(Path::new(name));
        if retired && free && plugins.rename(path, Path::new(name)).is_ok() {
            tracing::warn!(plugin = name, "an interrupted install was rolled back");
        } else {
            let _ = plugins.remove_dir_all(path);
        }
    }
}

/// Whether process `pid` runs (this one counts as not: its own installs
/// are not in progress when it recovers).
fn running(pid: u32) -> bool {
    pid != std::process::id()
        && rustix::process::Pid::from_raw(pid as i32).is_some_and(|pid| {
            !matches!(
                rustix::process::test_kill_process(pid),
                Err(rustix::io::Errno::SRCH)
            )
        })
}

/// The version of the plugin installed at `dir`, if one is (an unreadable
/// manifest still counts as installed, so it is not overwritten silently).
fn installed_version(plugins: &Confined, name: &str) -> Option<String> {
    if !plugins.exists(Path::new(name)) {
        return None;
    }
    let version = plugins
        .read(&Path::new(name).join(MANIFEST_FILE))
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| super::manifest::Manifest::parse(&text).ok())
        .map(|m| m.version.to_string())
        .unwrap_or_else(|| "(unreadable manifest)".into());
    Some(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plugin_dir(at: &Path, version: &str) {
        std::fs::create_dir_all(at).unwrap();
        std::fs::write(at.join(MANIFEST_FILE), format!("version = \"{version}\"\n")).unwrap();
    }

    fn version(at: &Path) -> String {
        let text = std::fs::read_to_string(at.join(MANIFEST_FILE)).unwrap();
        text.trim()
            .trim_start_matches("version = ")
            .trim_matches('"')
            .to_owned()
    }

    #[test]
    fn an_install_killed_between_its_renames_is_rolled_back() {
        let dir = tempfile::tempdir().unwrap();
        // Killed after moving the old version aside, before renaming the new one in.
        let dead = 999_999_999u32;
        plugin_dir(
            &dir.path().join(format!("{RETIRED}{dead}-my-tool")),
            "1.0.0",
        );
        plugin_dir(
            &dir.path().join(format!("{STAGING}{dead}-my-tool-x1y2")),
            "2.0.0",
        );
        // Another plugin, replaced whole before the kill: its old copy just goes.
        plugin_dir(&dir.path().join("other"), "2.0.0");
        plugin_dir(&dir.path().join(format!("{RETIRED}{dead}-other")), "1.0.0");
        recover(dir.path());
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["my-tool", "other"]);
        assert_eq!(version(&dir.path().join("my-tool")), "1.0.0");
        assert_eq!(version(&dir.path().join("other")), "2.0.0");
    }

    #[test]
    fn a_running_install_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        // Process 1 (init) always runs.
        let staging = dir.path().join(format!("{STAGING}1-busy-abcd"));
        plugin_dir(&staging, "1.0.0");
        recover(dir.path());
        assert!(staging.exists());
    }

    #[test]
    fn replacing_swaps_the_directories_whole() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("p");
        let staged = dir
            .path()
            .join(format!("{STAGING}{}-p-1", std::process::id()));
        plugin_dir(&dest, "1.0.0");
        plugin_dir(&staged, "2.0.0");
        let plugins = Confined::open(dir.path()).unwrap();
        let staged_name = Path::new(staged.file_name().unwrap());
        replace_dir(&plugins, "p", staged_name).unwrap();
        assert_eq!(version(&dest), "2.0.0");
        assert!(!staged.exists(), "the old version is gone");
    }
}
