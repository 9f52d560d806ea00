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

use super::loader::{LoadError, LoadedPlugin, Loader};
use super::manifest::MANIFEST_FILE;
use super::trust::{PROVENANCE_FILE, SIGNATURE_FILE};

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
    let installed_version = installed_version(&dest);
    if let Some(version) = &installed_version
        && !force
    {
        return Err(InstallError::AlreadyInstalled {
            name,
            version: version.clone(),
            path: dest,
        });
    }

    let io = |what: String| move |source| InstallError::Io { what, source };
    std::fs::create_dir_all(plugins_dir)
        .map_err(io(format!("cannot create {}", plugins_dir.display())))?;
    recover(plugins_dir);
    // Stage in a hidden directory beside the destination (same file system,
    // so the final rename is atomic; hidden, so a loader passes it over).
    let staging = tempfile::Builder::new()
        .prefix(&format!("{STAGING}{}-{name}-", std::process::id()))
        .tempdir_in(plugins_dir)
        .map_err(io(format!("cannot stage in {}", plugins_dir.display())))?;
    // The signature and provenance, when present, travel with the plugin:
    // the loader checks them again at every start.
    let optional = [SIGNATURE_FILE, PROVENANCE_FILE]
        .into_iter()
        .filter(|file| source_dir.join(file).is_file());
    let files = [MANIFEST_FILE, plugin.manifest.component.as_str()]
        .into_iter()
        .chain(optional);
    for file in files {
        let from = source_dir.join(file);
        let to = staging.path().join(file);
        std::fs::copy(&from, &to).map_err(io(format!(
            "cannot copy {} to {}",
            from.display(),
            to.display()
        )))?;
        std::fs::File::open(&to)
            .and_then(|f| f.sync_all())
            .map_err(io(format!("cannot sync {}", to.display())))?;
    }
    // The staged copy must be byte-for-byte what was validated.
    let staged_wasm = std::fs::read(staging.path().join(&plugin.manifest.component))
        .map_err(io("cannot re-read the staged component".into()))?;
    if super::manifest::ContentHash::of(&staged_wasm) != plugin.hash {
        return Err(InstallError::Invalid {
            path: source_dir,
            error: LoadError::Manifest("the component changed while it was being installed".into()),
        });
    }

    let staged = staging.keep();
    let replaced = installed_version.is_some();
    let moved = if replaced {
        replace_dir(plugins_dir, &name, &staged, &dest)
    } else {
        std::fs::rename(&staged, &dest)
    };
    if let Err(e) = moved {
        let _ = std::fs::remove_dir_all(&staged);
        return Err(io(format!(
            "cannot move the new plugin to {}",
            dest.display()
        ))(e));
    }
    // The rename itself is durable once the directory is.
    let _ = std::fs::File::open(plugins_dir).and_then(|d| d.sync_all());
    let mut plugin = plugin;
    plugin.source = super::loader::Source::Dir(dest.clone());
    Ok(Installed {
        plugin,
        path: dest,
        replaced,
    })
}

/// Swaps the staged directory in for the installed one at `dest`; the old
/// version ends up at `staged` (exchange) or is removed (fallback).
fn replace_dir(plugins_dir: &Path, name: &str, staged: &Path, dest: &Path) -> std::io::Result<()> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    match renameat_with(CWD, staged, CWD, dest, RenameFlags::EXCHANGE) {
        Ok(()) => {
            let _ = std::fs::remove_dir_all(staged);
            return Ok(());
        }
        Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOSYS => {}
        Err(e) => return Err(e.into()),
    }
    let retired = plugins_dir.join(format!("{RETIRED}{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&retired);
    std::fs::rename(dest, &retired)?;
    if let Err(e) = std::fs::rename(staged, dest) {
        // Put the old plugin back: a failed install changes nothing.
        let _ = std::fs::rename(&retired, dest);
        return Err(e);
    }
    let _ = std::fs::remove_dir_all(&retired);
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
    let Ok(entries) = std::fs::read_dir(plugins_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
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
        let path = entry.path();
        let dest = plugins_dir.join(name);
        if retired && !name.is_empty() && !dest.exists() && std::fs::rename(&path, &dest).is_ok() {
            tracing::warn!(plugin = name, "an interrupted install was rolled back");
        } else {
            let _ = std::fs::remove_dir_all(&path);
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
fn installed_version(dir: &Path) -> Option<String> {
    if !dir.exists() {
        return None;
    }
    let version = std::fs::read_to_string(dir.join(MANIFEST_FILE))
        .ok()
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
        replace_dir(dir.path(), "p", &staged, &dest).unwrap();
        assert_eq!(version(&dest), "2.0.0");
        assert!(!staged.exists(), "the old version is gone");
    }
}
