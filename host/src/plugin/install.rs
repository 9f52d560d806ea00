//! `toolmesh plugin install`: validate a plugin completely (the same loader
//! the host serves with), then copy its manifest and component into the plugin
//! directory through a hidden staging directory and a rename. A plugin that
//! does not load is never copied. An installed plugin is replaced only with
//! `--force`: the old directory is moved aside, the new one renamed in, and
//! the old one put back if that fails. (A single-syscall swap would need
//! `renameat2(RENAME_EXCHANGE)`; a loader scanning at that instant may miss
//! the plugin once.)

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
    // Stage in a hidden directory beside the destination (same file system,
    // so the final rename is atomic; hidden, so a loader passes it over).
    let staging = tempfile::Builder::new()
        .prefix(&format!(".install-{name}-"))
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
    if replaced {
        let retired = plugins_dir.join(format!(".retired-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&retired);
        std::fs::rename(&dest, &retired)
            .map_err(io(format!("cannot move {} aside", dest.display())))?;
        if let Err(e) = std::fs::rename(&staged, &dest) {
            // Put the old plugin back: a failed install changes nothing.
            let _ = std::fs::rename(&retired, &dest);
            let _ = std::fs::remove_dir_all(&staged);
            return Err(io(format!(
                "cannot move the new plugin to {}",
                dest.display()
            ))(e));
        }
        let _ = std::fs::remove_dir_all(&retired);
    } else if let Err(e) = std::fs::rename(&staged, &dest) {
        let _ = std::fs::remove_dir_all(&staged);
        return Err(io(format!(
            "cannot move the new plugin to {}",
            dest.display()
        ))(e));
    }
    let mut plugin = plugin;
    plugin.source = super::loader::Source::Dir(dest.clone());
    Ok(Installed {
        plugin,
        path: dest,
        replaced,
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
