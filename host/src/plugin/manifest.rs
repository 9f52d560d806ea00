//! `plugin.toml`: what a plugin is, which file holds its component, the
//! component's content hash, and what it asks the host for.
//!
//! ```toml
//! name = "hello"
//! version = "0.1.0"
//! description = "Greets people and adds numbers."
//! component = "hello.wasm"
//! hash = "blake3:5f1c..."        # BLAKE3 of the component file
//! level = "untrusted"            # the security level it asks for
//! capabilities = ["log"]         # host interfaces: log, kv, blobs, progress
//! env = ["LANG"]                 # host environment variables it may read
//!
//! [[fs]]                         # a directory the plugin sees (any number)
//! guest = "/cache"               # where the plugin sees it
//! host = "cache"                 # relative: inside the plugin's own files
//!                                # directory, <data_dir>/files/<plugin>/cache;
//!                                # absolute: that host directory (level needs fs-host)
//! mode = "read-write"            # or "read-only" (the default)
//! ```

use std::path::{Component, Path, PathBuf};

use serde::Deserialize;

use super::tool::check_simple_name;

/// The manifest file name inside a plugin directory.
pub const MANIFEST_FILE: &str = "plugin.toml";

/// Longest plugin name; with `__` and a tool name it must fit MCP's 64.
pub const MAX_PLUGIN_NAME: usize = 32;

/// Namespaces the host's own tools use, which no plugin may take.
pub const RESERVED_NAMES: &[&str] = &["mesh"];

/// A parsed and checked manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// `^[a-z][a-z0-9-]*$`, at most [`MAX_PLUGIN_NAME`] characters; the
    /// prefix of every tool name the plugin exposes.
    pub name: String,
    /// The plugin's own version.
    pub version: semver::Version,
    /// One line for operators and agents.
    pub description: String,
    /// The component's file name, inside the plugin directory.
    pub component: String,
    /// The component's BLAKE3 hash, if the manifest states one.
    pub hash: Option<ContentHash>,
    /// The security level the plugin asks for.
    pub level: String,
    /// The host interfaces the plugin asks for (a subset of
    /// [`Capability::imports`]).
    pub capabilities: Vec<Capability>,
    /// The directories it asks to see.
    pub fs: Vec<FsRequest>,
    /// The host environment variables it asks to read.
    pub env: Vec<String>,
    /// MCP resources it serves, each backed by one of its tools.
    pub resources: Vec<ResourceDecl>,
    /// Tools that need a permission grant: tool name → resource type.
    pub requires: std::collections::BTreeMap<String, String>,
}

/// An MCP resource a plugin serves: reading `toolmesh://<plugin>/<name>`
/// calls `tool` with no arguments and returns its result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceDecl {
    /// The resource's name (the URI's last part).
    pub name: String,
    /// The tool that produces it (a tool of this plugin).
    pub tool: String,
    /// What it is.
    pub description: String,
}

/// A directory a plugin asks to see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsRequest {
    /// Where the plugin sees it: an absolute guest path such as `/data`.
    pub guest: String,
    /// Which host directory it is.
    pub host: HostDir,
    /// Whether the plugin may create, change and remove files in it.
    pub writable: bool,
}

impl FsRequest {
    /// The capability this request needs from the level.
    pub fn capability(&self) -> Capability {
        match (&self.host, self.writable) {
            (HostDir::Absolute(_), _) => Capability::FsHost,
            (HostDir::Own(_), true) => Capability::FsWrite,
            (HostDir::Own(_), false) => Capability::FsRead,
        }
    }
}

/// The host side of a directory a plugin asks to see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostDir {
    /// A path inside the plugin's own files directory (no `..`).
    Own(PathBuf),
    /// An absolute host path.
    Absolute(PathBuf),
}

/// Most `[[fs]]` tables and `env` names a manifest may have.
pub const MAX_FS: usize = 16;
/// Most environment variables a manifest may ask for.
pub const MAX_ENV: usize = 64;

pub use crate::capability::Capability;
pub use crate::content_hash::ContentHash;

/// The manifest as written, before checks.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    name: String,
    version: String,
    description: String,
    component: String,
    hash: Option<String>,
    level: Option<String>,
    #[serde(default)]
    capabilities: Vec<String>,
    #[serde(default)]
    fs: Vec<RawFs>,
    #[serde(default)]
    env: Vec<String>,
    #[serde(default)]
    resources: std::collections::BTreeMap<String, RawResource>,
    #[serde(default)]
    tools: std::collections::BTreeMap<String, RawToolPolicy>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawResource {
    tool: String,
    description: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToolPolicy {
    requires: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFs {
    guest: String,
    host: String,
    #[serde(default)]
    mode: FsMode,
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
enum FsMode {
    #[default]
    ReadOnly,
    ReadWrite,
}

/// The security level a plugin gets when its manifest names none.
pub const DEFAULT_LEVEL: &str = "untrusted";

impl Manifest {
    /// Parses and checks manifest text. The error says what is wrong and,
    /// for TOML errors, where.
    pub fn parse(text: &str) -> Result<Self, String> {
        let raw: RawManifest = toml::from_str(text).map_err(|e| e.to_string())?;
        check_name(&raw.name)?;
        let version = semver::Version::parse(&raw.version)
            .map_err(|e| format!("version `{}` is not semver: {e}", raw.version))?;
        if raw.description.trim().is_empty() {
            return Err("description must not be empty".into());
        }
        check_component_file(&raw.component)?;
        let hash = raw.hash.as_deref().map(str::parse).transpose()?;
        let level = raw.level.unwrap_or_else(|| DEFAULT_LEVEL.to_owned());
        let mut capabilities = raw
            .capabilities
            .iter()
            .map(|c| c.parse())
            .collect::<Result<Vec<Capability>, _>>()?;
        if let Some(other) = capabilities.iter().find(|c| c.interface().is_none()) {
            return Err(format!(
                "`{other}` does not go in `capabilities` (which lists host interfaces: {}): ask \
                 for directories with `[[fs]]` tables and for environment variables with \
                 `env = [...]`",
                Capability::imports()
                    .map(Capability::name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        capabilities.sort();
        capabilities.dedup();
        let fs = check_fs(raw.fs)?;
        let env = check_env(raw.env)?;
        let mut resources = Vec::with_capacity(raw.resources.len());
        for (name, r) in raw.resources {
            check_simple_name("resource", &name)?;
            check_simple_name("resource tool", &r.tool)?;
            resources.push(ResourceDecl {
                name,
                tool: r.tool,
                description: r.description,
            });
        }
        let mut requires = std::collections::BTreeMap::new();
        for (tool, policy) in raw.tools {
            check_simple_name("tool", &tool)?;
            if let Some(resource) = policy.requires {
                check_simple_name("required resource type", &resource)?;
                requires.insert(tool, resource);
            }
        }
        Ok(Self {
            name: raw.name,
            version,
            description: raw.description,
            component: raw.component,
            hash,
            level,
            capabilities,
            fs,
            env,
            resources,
            requires,
        })
    }
}

fn check_fs(raw: Vec<RawFs>) -> Result<Vec<FsRequest>, String> {
    if raw.len() > MAX_FS {
        return Err(format!(
            "at most {MAX_FS} `[[fs]]` tables, not {}",
            raw.len()
        ));
    }
    let mut fs: Vec<FsRequest> = Vec::with_capacity(raw.len());
    for entry in raw {
        let guest_ok = entry.guest.starts_with('/')
            && entry.guest.len() <= 256
            && only_normal_components(Path::new(&entry.guest[1..]));
        if !guest_ok {
            return Err(format!(
                "fs guest path `{}` must be absolute, like `/data`, without `.` or `..`",
                entry.guest
            ));
        }
        if fs.iter().any(|f| f.guest == entry.guest) {
            return Err(format!("fs guest path `{}` is listed twice", entry.guest));
        }
        let path = PathBuf::from(&entry.host);
        let host = if path.is_absolute() {
            if path.components().any(|c| c == Component::ParentDir) {
                return Err(format!(
                    "fs host path `{}` must not contain `..`",
                    entry.host
                ));
            }
            HostDir::Absolute(path)
        } else if only_normal_components(&path) {
            HostDir::Own(path)
        } else {
            return Err(format!(
                "fs host path `{}` must be a path inside the plugin's files directory (like \
                 `data` or `cache/models`, without `..`) or an absolute host path",
                entry.host
            ));
        };
        fs.push(FsRequest {
            guest: entry.guest,
            host,
            writable: matches!(entry.mode, FsMode::ReadWrite),
        });
    }
    Ok(fs)
}

/// True if `path` is relative, not empty, and has no `.`, `..` or root parts.
fn only_normal_components(path: &Path) -> bool {
    path.components().next().is_some()
        && path.components().all(|c| matches!(c, Component::Normal(_)))
}

fn check_env(mut env: Vec<String>) -> Result<Vec<String>, String> {
    if env.len() > MAX_ENV {
        return Err(format!("at most {MAX_ENV} `env` names, not {}", env.len()));
    }
    for name in &env {
        let ok = name.len() <= 128
            && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return Err(format!(
                "env name `{name}` must be letters, digits and `_`, not starting with a digit"
            ));
        }
    }
    env.sort();
    env.dedup();
    Ok(env)
}

fn check_name(name: &str) -> Result<(), String> {
    let well_formed = !name.is_empty()
        && name.len() <= MAX_PLUGIN_NAME
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !well_formed {
        return Err(format!(
            "name `{name}` must be 1 to {MAX_PLUGIN_NAME} characters of a-z, 0-9 and `-`, \
             starting with a letter"
        ));
    }
    if RESERVED_NAMES.contains(&name) {
        return Err(format!(
            "name `{name}` is reserved for the host's own tools (`{name}__*`); choose another"
        ));
    }
    Ok(())
}

fn check_component_file(file: &str) -> Result<(), String> {
    let plain = !file.is_empty()
        && !file.starts_with('.')
        && !file.contains(['/', '\\', '\0'])
        && file.ends_with(".wasm");
    if plain {
        Ok(())
    } else {
        Err(format!(
            "component `{file}` must be a plain `.wasm` file name inside the plugin directory"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "hello"
version = "0.1.0"
description = "Greets."
component = "hello.wasm"
hash = "blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
level = "standard"
capabilities = ["log", "log"]
"#;

    #[test]
    fn parses_a_good_manifest() {
        let m = Manifest::parse(GOOD).unwrap();
        assert_eq!(m.name, "hello");
        assert_eq!(m.level, "standard");
        assert_eq!(m.capabilities, vec![Capability::Log]);
        assert_eq!(m.hash.unwrap(), ContentHash::of(b""));
    }

    #[test]
    fn level_defaults_to_untrusted() {
        let m = Manifest::parse(&GOOD.replace("level = \"standard\"\n", "")).unwrap();
        assert_eq!(m.level, DEFAULT_LEVEL);
    }

    #[test]
    fn refuses_bad_fields_with_reasons() {
        let cases = [
            ("name = \"hello\"", "name = \"Hello\"", "name `Hello`"),
            ("name = \"hello\"", "name = \"hello__x\"", "name `hello__x`"),
            ("name = \"hello\"", "name = \"mesh\"", "`mesh` is reserved"),
            ("version = \"0.1.0\"", "version = \"one\"", "not semver"),
            ("\"hello.wasm\"", "\"../x.wasm\"", "plain `.wasm` file name"),
            ("blake3:af", "sha256:af", "must start with `blake3:`"),
            (
                "[\"log\", \"log\"]",
                "[\"net\"]",
                "unknown capability `net`",
            ),
            ("level", "levle", "unknown field `levle`"),
            (
                "description = \"Greets.\"",
                "description = \" \"",
                "description must not be empty",
            ),
        ];
        for (from, to, expected) in cases {
            let err = Manifest::parse(&GOOD.replacen(from, to, 1)).unwrap_err();
            assert!(err.contains(expected), "{to}: {err}");
        }
        let err = Manifest::parse("name = ").unwrap_err();
        assert!(err.contains("line 1"), "{err}");
        let err = Manifest::parse(&GOOD.replace("[\"log\", \"log\"]", "[\"env\"]")).unwrap_err();
        assert!(err.contains("`env` does not go in `capabilities`"), "{err}");
        assert!(
            err.contains(
                "host interfaces: log, kv, blobs, progress, elicitation, sampling, roots)"
            ),
            "{err}"
        );
    }

    #[test]
    fn fs_and_env_requests_are_checked() {
        let with = |extra: &str| Manifest::parse(&format!("{GOOD}{extra}"));
        let m = with(
            "env = [\"LANG\", \"HOME\", \"LANG\"]\n\
             [[fs]]\nguest = \"/data\"\nhost = \"data\"\nmode = \"read-write\"\n\
             [[fs]]\nguest = \"/etc-view\"\nhost = \"/etc\"\n",
        )
        .unwrap();
        assert_eq!(m.env, ["HOME", "LANG"]);
        assert_eq!(m.fs[0].host, HostDir::Own("data".into()));
        assert_eq!(m.fs[0].capability(), Capability::FsWrite);
        assert_eq!(m.fs[1].host, HostDir::Absolute("/etc".into()));
        assert_eq!(m.fs[1].capability(), Capability::FsHost);
        let cases = [
            (
                "[[fs]]\nguest = \"data\"\nhost = \"d\"\n",
                "must be absolute",
            ),
            (
                "[[fs]]\nguest = \"/a/../b\"\nhost = \"d\"\n",
                "must be absolute",
            ),
            ("[[fs]]\nguest = \"/a\"\nhost = \"../d\"\n", "without `..`"),
            (
                "[[fs]]\nguest = \"/a\"\nhost = \"/x/../d\"\n",
                "must not contain `..`",
            ),
            (
                "[[fs]]\nguest = \"/a\"\nhost = \"d\"\nmode = \"rw\"\n",
                "unknown variant",
            ),
            ("env = [\"A=B\"]\n", "env name `A=B`"),
        ];
        for (extra, expected) in cases {
            let err = with(extra).unwrap_err();
            assert!(err.contains(expected), "{extra}: {err}");
        }
    }
}
