//! Deciding what a plugin gets: what its manifest asks for, cut down to what
//! its security level allows. Every refusal is kept as a sentence for the
//! operator (logged at load, shown by `toolmesh plugin list`).

use std::path::{Path, PathBuf};

use super::Capability;
use crate::level::Level;
use crate::plugin::manifest::{HostDir, Manifest};

/// A directory the plugin sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preopen {
    /// The host directory.
    pub host: PathBuf,
    /// Where the plugin sees it.
    pub guest: String,
    /// Whether the plugin may change what is in it.
    pub writable: bool,
}

/// What a plugin was granted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    /// The host interfaces it may use.
    pub imports: Vec<Capability>,
    /// The directories it sees.
    pub preopens: Vec<Preopen>,
    /// The environment it sees (names and values, read at load).
    pub env: Vec<(String, String)>,
    /// What it asked for and did not get, and why.
    pub refused: Vec<String>,
}

impl Grants {
    /// Whether interface capability `capability` was granted.
    pub fn has(&self, capability: Capability) -> bool {
        self.imports.contains(&capability)
    }
}

/// Where plugin `plugin`'s own files live under `files_root`.
pub fn own_files_dir(files_root: &Path, plugin: &str) -> PathBuf {
    files_root.join(plugin)
}

/// Grants `manifest`'s requests that `level` allows. Relative `[[fs]]` paths
/// resolve inside `<files_root>/<plugin>/` and are created if missing; without
/// a `files_root` they are refused. Absolute paths must be existing
/// directories.
pub fn decide(manifest: &Manifest, level: &Level, files_root: Option<&Path>) -> Grants {
    let mut grants = Grants::default();
    let allowed = |c: Capability| level.capabilities.contains(&c);
    let refuse = |what: String, c: Capability| {
        format!("{what}: the `{}` level does not allow `{c}`", level.name)
    };
    for &capability in &manifest.capabilities {
        if allowed(capability) {
            grants.imports.push(capability);
        } else {
            grants
                .refused
                .push(refuse(format!("capability `{capability}`"), capability));
        }
    }
    for request in &manifest.fs {
        let what = format!("fs `{}`", request.guest);
        let capability = request.capability();
        if !allowed(capability) {
            grants.refused.push(refuse(what, capability));
            continue;
        }
        let host = match &request.host {
            HostDir::Own(relative) => {
                let Some(root) = files_root else {
                    grants.refused.push(format!(
                        "{what}: this host has no data directory for plugin files"
                    ));
                    continue;
                };
                let dir = own_files_dir(root, &manifest.name).join(relative);
                if let Err(e) = std::fs::create_dir_all(&dir) {
                    grants
                        .refused
                        .push(format!("{what}: cannot create {}: {e}", dir.display()));
                    continue;
                }
                dir
            }
            HostDir::Absolute(path) => {
                if !path.is_dir() {
                    grants.refused.push(format!(
                        "{what}: {} is not an existing directory",
                        path.display()
                    ));
                    continue;
                }
                path.clone()
            }
        };
        grants.preopens.push(Preopen {
            host,
            guest: request.guest.clone(),
            writable: request.writable,
        });
    }
    for name in &manifest.env {
        let what = format!("env `{name}`");
        if !allowed(Capability::Env) {
            grants.refused.push(refuse(what, Capability::Env));
            continue;
        }
        match std::env::var(name) {
            Ok(value) => grants.env.push((name.clone(), value)),
            Err(std::env::VarError::NotPresent) => grants
                .refused
                .push(format!("{what}: not set in the host's environment")),
            Err(std::env::VarError::NotUnicode(_)) => grants
                .refused
                .push(format!("{what}: its value is not UTF-8")),
        }
    }
    grants
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::level::Levels;

    fn manifest(extra: &str) -> Manifest {
        Manifest::parse(&format!(
            "name = \"p\"\nversion = \"0.1.0\"\ndescription = \"d\"\ncomponent = \"p.wasm\"\n{extra}"
        ))
        .unwrap()
    }

    #[test]
    fn the_level_caps_what_the_manifest_asks_for() {
        let root = tempfile::tempdir().unwrap();
        let m = manifest(
            "capabilities = [\"log\", \"kv\"]\nenv = [\"PATH\"]\n\
             [[fs]]\nguest = \"/ro\"\nhost = \"ro\"\n\
             [[fs]]\nguest = \"/rw\"\nhost = \"rw\"\nmode = \"read-write\"\n\
             [[fs]]\nguest = \"/etc\"\nhost = \"/etc\"\n",
        );
        let levels = Levels::default();
        let untrusted = decide(&m, &levels.get("untrusted").unwrap(), Some(root.path()));
        assert_eq!(untrusted.imports, [Capability::Log, Capability::Kv]);
        assert_eq!(untrusted.preopens.len(), 1);
        assert_eq!(untrusted.preopens[0].host, root.path().join("p/ro"));
        assert!(root.path().join("p/ro").is_dir(), "created on grant");
        assert!(untrusted.env.is_empty());
        assert_eq!(
            untrusted.refused,
            [
                "fs `/rw`: the `untrusted` level does not allow `fs-write`",
                "fs `/etc`: the `untrusted` level does not allow `fs-host`",
                "env `PATH`: the `untrusted` level does not allow `env`",
            ]
        );
        let trusted = decide(&m, &levels.get("trusted").unwrap(), Some(root.path()));
        assert!(trusted.refused.is_empty(), "{:?}", trusted.refused);
        assert_eq!(trusted.preopens.len(), 3);
        assert_eq!(trusted.env[0].0, "PATH");
    }

    #[test]
    fn missing_host_directories_and_unset_variables_are_reported() {
        let m = manifest(
            "env = [\"TOOLMESH_SURELY_UNSET_VARIABLE\"]\n\
             [[fs]]\nguest = \"/x\"\nhost = \"/surely/not/a/dir\"\n",
        );
        let grants = decide(&m, &Levels::default().get("trusted").unwrap(), None);
        assert_eq!(
            grants.refused,
            [
                "fs `/x`: /surely/not/a/dir is not an existing directory",
                "env `TOOLMESH_SURELY_UNSET_VARIABLE`: not set in the host's environment",
            ]
        );
    }
}
