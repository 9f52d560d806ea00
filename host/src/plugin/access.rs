//! Deciding what a plugin may access: what its manifest asks for, cut down
//! to what its security level allows. Every refusal is kept as a sentence for
//! the operator (logged at load, shown by `toolmesh plugin list`). Policy, so
//! it sits beside the loader; the capabilities only read the outcome.

use std::path::{Path, PathBuf};

use crate::capability::{Access, Capability, Preopen};
use crate::level::Level;
use crate::plugin::manifest::{HostDir, Manifest};

/// Where plugin `plugin`'s own files live under `files_root`.
pub fn own_files_dir(files_root: &Path, plugin: &str) -> PathBuf {
    files_root.join(plugin)
}

/// Grants `manifest`'s requests that `level` allows. Relative `[[fs]]` paths
/// resolve inside `<files_root>/<plugin>/` and are created if missing; without
/// a `files_root` they are refused. Absolute paths must be existing
/// directories.
pub fn decide(manifest: &Manifest, level: &Level, files_root: Option<&Path>) -> Access {
    let mut access = Access::default();
    let allowed = |c: Capability| level.capabilities.contains(&c);
    let refuse = |what: String, c: Capability| {
        format!("{what}: the `{}` level does not allow `{c}`", level.name)
    };
    for &capability in &manifest.capabilities {
        if allowed(capability) {
            access.imports.push(capability);
        } else {
            access
                .refused
                .push(refuse(format!("capability `{capability}`"), capability));
        }
    }
    for request in &manifest.fs {
        let what = format!("fs `{}`", request.guest);
        let capability = request.capability();
        if !allowed(capability) {
            access.refused.push(refuse(what, capability));
            continue;
        }
        let host = match &request.host {
            HostDir::Own(relative) => {
                let Some(root) = files_root else {
                    access.refused.push(format!(
                        "{what}: this host has no data directory for plugin files"
                    ));
                    continue;
                };
                let dir = own_files_dir(root, &manifest.name).join(relative);
                if let Err(e) = std::fs::create_dir_all(&dir) {
                    access
                        .refused
                        .push(format!("{what}: cannot create {}: {e}", dir.display()));
                    continue;
                }
                dir
            }
            HostDir::Absolute(path) => {
                if !path.is_dir() {
                    access.refused.push(format!(
                        "{what}: {} is not an existing directory",
                        path.display()
                    ));
                    continue;
                }
                path.clone()
            }
        };
        access.preopens.push(Preopen {
            host,
            guest: request.guest.clone(),
            writable: request.writable,
        });
    }
    for name in &manifest.env {
        let what = format!("env `{name}`");
        if !allowed(Capability::Env) {
            access.refused.push(refuse(what, Capability::Env));
            continue;
        }
        match std::env::var(name) {
            Ok(value) => access.env.push((name.clone(), value)),
            Err(std::env::VarError::NotPresent) => access
                .refused
                .push(format!("{what}: not set in the host's environment")),
            Err(std::env::VarError::NotUnicode(_)) => access
                .refused
                .push(format!("{what}: its value is not UTF-8")),
        }
    }
    access
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
        let access = decide(&m, &Levels::default().get("trusted").unwrap(), None);
        assert_eq!(
            access.refused,
            [
                "fs `/x`: /surely/not/a/dir is not an existing directory",
                "env `TOOLMESH_SURELY_UNSET_VARIABLE`: not set in the host's environment",
            ]
        );
    }
}
