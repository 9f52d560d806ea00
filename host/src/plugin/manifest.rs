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
//! capabilities = ["log"]         # the host capabilities it asks for
//! ```

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

/// The manifest file name inside a plugin directory.
pub const MANIFEST_FILE: &str = "plugin.toml";

/// Longest plugin name; with `__` and a tool name it must fit MCP's 64.
pub const MAX_PLUGIN_NAME: usize = 32;

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
    /// The host capabilities the plugin asks for.
    pub capabilities: Vec<Capability>,
}

/// A host capability a plugin may import.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Capability {
    /// `toolmesh:plugin/log`: logs into the host's log.
    Log,
    /// `toolmesh:plugin/kv`: a persistent key-value store of its own.
    Kv,
}

impl Capability {
    /// Every capability this host knows.
    pub const ALL: &[Capability] = &[Capability::Log, Capability::Kv];

    /// The name used in manifests.
    pub fn name(self) -> &'static str {
        match self {
            Capability::Log => "log",
            Capability::Kv => "kv",
        }
    }
}

impl FromStr for Capability {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Capability::ALL
            .iter()
            .copied()
            .find(|c| c.name() == s)
            .ok_or_else(|| {
                let known: Vec<_> = Capability::ALL.iter().map(|c| c.name()).collect();
                format!(
                    "unknown capability `{s}` (this host knows: {})",
                    known.join(", ")
                )
            })
    }
}

/// A BLAKE3 content hash, written `blake3:<64 hex digits>`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ContentHash(pub blake3::Hash);

impl ContentHash {
    /// Hashes `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(blake3::hash(bytes))
    }

    /// The hex digits alone.
    pub fn to_hex(&self) -> String {
        self.0.to_hex().to_string()
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "blake3:{}", self.0.to_hex())
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for ContentHash {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hex = s
            .strip_prefix("blake3:")
            .ok_or_else(|| format!("hash `{s}` must start with `blake3:`"))?;
        blake3::Hash::from_hex(hex)
            .map(Self)
            .map_err(|_| format!("hash `{s}` must be `blake3:` and 64 hex digits"))
    }
}

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
        capabilities.sort();
        capabilities.dedup();
        Ok(Self {
            name: raw.name,
            version,
            description: raw.description,
            component: raw.component,
            hash,
            level,
            capabilities,
        })
    }
}

fn check_name(name: &str) -> Result<(), String> {
    let well_formed = !name.is_empty()
        && name.len() <= MAX_PLUGIN_NAME
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if well_formed {
        Ok(())
    } else {
        Err(format!(
            "name `{name}` must be 1 to {MAX_PLUGIN_NAME} characters of a-z, 0-9 and `-`, \
             starting with a letter"
        ))
    }
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
    }
}
