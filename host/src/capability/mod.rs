//! Host capabilities a plugin may be granted, one module each: the state it
//! keeps and its side of the WIT interface. [`grant`] decides, per plugin,
//! what its manifest asks for and its security level allows.
//!
//! Every capability is deny-by-default: a plugin gets only what its manifest
//! asks for, and only what its level allows.

pub mod blobs;
pub mod grant;
pub mod kv;
pub mod progress;

use std::fmt;
use std::str::FromStr;

/// Something a plugin may be granted. The first four are WIT imports a
/// manifest lists in `capabilities`; the others are WASI access a manifest
/// asks for with `[[fs]]` tables and `env = [...]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Capability {
    /// `toolmesh:plugin/log`: logs into the host's log.
    Log,
    /// `toolmesh:plugin/kv`: a persistent key-value store of its own.
    Kv,
    /// `toolmesh:plugin/blobs`: the host's content-addressed blob store.
    Blobs,
    /// `toolmesh:plugin/progress`: progress notifications to the agent.
    Progress,
    /// Read-only preopens of the plugin's own files directory.
    FsRead,
    /// Read-write preopens of the plugin's own files directory.
    FsWrite,
    /// Preopens of absolute host paths (read-only or read-write, as asked).
    FsHost,
    /// Host environment variables, by name.
    Env,
}

impl Capability {
    /// Every capability this host knows.
    pub const ALL: &[Capability] = &[
        Capability::Log,
        Capability::Kv,
        Capability::Blobs,
        Capability::Progress,
        Capability::FsRead,
        Capability::FsWrite,
        Capability::FsHost,
        Capability::Env,
    ];

    /// The capabilities a manifest lists by name in `capabilities`.
    pub const IMPORTS: &[Capability] = &[
        Capability::Log,
        Capability::Kv,
        Capability::Blobs,
        Capability::Progress,
    ];

    /// The name used in manifests and level definitions.
    pub fn name(self) -> &'static str {
        match self {
            Capability::Log => "log",
            Capability::Kv => "kv",
            Capability::Blobs => "blobs",
            Capability::Progress => "progress",
            Capability::FsRead => "fs-read",
            Capability::FsWrite => "fs-write",
            Capability::FsHost => "fs-host",
            Capability::Env => "env",
        }
    }

    /// The `toolmesh:plugin` interface that brings this capability, if any.
    pub fn interface(self) -> Option<&'static str> {
        match self {
            Capability::Log => Some("log"),
            Capability::Kv => Some("kv"),
            Capability::Blobs => Some("blobs"),
            Capability::Progress => Some("progress"),
            _ => None,
        }
    }

    /// The capability `toolmesh:plugin/<interface>` brings.
    pub fn of_interface(interface: &str) -> Option<Self> {
        Self::IMPORTS
            .iter()
            .copied()
            .find(|c| c.interface() == Some(interface))
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
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

impl<'de> serde::Deserialize<'de> for Capability {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// The host-side state behind the capabilities, shared by every plugin.
/// A missing store makes its capability fail with a storage error.
#[derive(Default, Clone)]
pub struct HostStores {
    /// The kv database.
    pub kv: Option<std::sync::Arc<kv::KvStore>>,
    /// The blob store.
    pub blobs: Option<std::sync::Arc<blobs::BlobStore>>,
    /// The root of the plugins' own files directories.
    pub files_root: Option<std::path::PathBuf>,
}
