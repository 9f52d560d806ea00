//! Host capabilities a plugin may be granted, one file each. A capability
//! file holds everything about it: its per-call context (granted or denied),
//! its `Host` impl of the WIT interface, its linker wiring, and how its
//! context is built for a call from the plugin's [`Access`] and level (the
//! shape of wasmtime's `crates/wasi` and Spin's factors).
//!
//! The set of capabilities is the one table in this file
//! ([`capabilities!`]): adding a capability is a new file (with its `mod`
//! line) and its row there.
//!
//! Every capability is deny-by-default: a plugin gets only what its manifest
//! asks for and its level allows (decided by the loader,
//! [`plugin::access`](crate::plugin::access)).

/// Links `$interface`'s host implementation (`HasSelf<Self>`, in an
/// `add_to_linker` of a [`CallCapability`]) under its 0.2 name and under its
/// 0.1 name: the capability interfaces did not change between the two, so
/// plugins built against 0.1 link to the same code.
macro_rules! link_v0_1_and_v0_2 {
    ($interface:ident, $linker:expr, $get:expr) => {{
        $interface::add_to_linker::<T, wasmtime::component::HasSelf<Self>>($linker, $get)?;
        $interface::add_to_linker_instance::<T, wasmtime::component::HasSelf<Self>>(
            &mut $linker.instance(concat!(
                "toolmesh:plugin/",
                stringify!($interface),
                "@0.1.0"
            ))?,
            $get,
        )
    }};
}

pub mod blobs;
pub mod caller;
pub mod client;
pub mod config;
pub mod kv;
pub mod log;
pub mod notify;
pub mod progress;
pub mod wasi;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use wasmtime::component::Linker;
use wasmtime_wasi::WasiView;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

use crate::identity::Caller;
use crate::level::Level;

/// A capability's per-call context: how it joins the linker and how it is
/// built for one call. Denied, it still links (the loader refuses plugins
/// that import what they were not granted; this is the second line) and
/// answers every call with an error.
pub trait CallCapability: Sized + Send + 'static {
    /// Adds the capability's interfaces to `linker`; `get` finds this
    /// context in a call's store data.
    fn add_to_linker<T: CallData>(
        linker: &mut Linker<T>,
        get: fn(&mut T) -> &mut Self,
    ) -> wasmtime::Result<()>;

    /// This capability's context for a call into `plugin`.
    fn for_call(
        host: &HostStores,
        plugin: &PluginScope<'_>,
        call: &CallScope,
    ) -> anyhow::Result<Self>;
}

/// A call's store data as the capabilities see it: their contexts, and the
/// WASI view (the resource table is shared with WASI's handles).
pub trait CallData: WasiView + Send + 'static {
    /// Every capability's context for this call.
    fn capabilities(&mut self) -> &mut CallCapabilities;
}

/// The host-wide state behind the capabilities, shared by every plugin.
/// A missing store makes its capability fail with a storage error.
#[derive(Default, Clone)]
pub struct HostStores {
    /// The kv database.
    pub kv: Option<Arc<kv::KvStore>>,
    /// The blob store.
    pub blobs: Option<Arc<blobs::BlobStore>>,
    /// Where plugins' resource-updated announcements go.
    pub updates: Option<Arc<notify::ResourceUpdates>>,
}

/// What a capability knows of the plugin a call runs in.
pub struct PluginScope<'a> {
    /// The plugin's name.
    pub name: &'a Arc<str>,
    /// The security level its calls run under.
    pub level: &'a Level,
    /// What it was granted.
    pub access: &'a Access,
    /// The operator's configuration for it (JSON object text).
    pub config: &'a Arc<str>,
}

/// What a capability knows of the call itself.
pub struct CallScope {
    /// Where the guest's progress reports go, if the client asked for them.
    pub progress: Option<progress::ProgressSink>,
    /// The guest's standard error (kept for crash reports).
    pub stderr: MemoryOutputPipe,
    /// Who is calling.
    pub caller: Arc<Caller>,
    /// The way back to the client, if the transport has one.
    pub client: Option<Arc<dyn client::ClientLink>>,
    /// Where log records for the client go, if it asked for them.
    pub client_log: Option<log::ClientLog>,
}

/// What the transport hands a call's capabilities: where progress and log
/// records for the client go, who is calling, and the way back to the client.
#[derive(Clone)]
pub struct CallInputs {
    /// Where the guest's progress reports go, if the client asked for them.
    pub progress: Option<progress::ProgressSink>,
    /// Who is calling.
    pub caller: Arc<Caller>,
    /// The way back to the client (elicitation, sampling, roots), if the
    /// transport has one.
    pub client: Option<Arc<dyn client::ClientLink>>,
    /// Where log records for the client go, if it asked for them.
    pub client_log: Option<log::ClientLog>,
}

impl CallInputs {
    /// No progress, the local user calling, no client: the host's own calls.
    pub fn local() -> Self {
        Self {
            progress: None,
            caller: Arc::new(Caller::local()),
            client: None,
            client_log: None,
        }
    }
}

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

/// What a plugin may access: the capabilities it was granted, and what it
/// asked for and did not get.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Access {
    /// The host interfaces it may use.
    pub imports: Vec<Capability>,
    /// The directories it sees.
    pub preopens: Vec<Preopen>,
    /// The environment it sees (names and values, read at load).
    pub env: Vec<(String, String)>,
    /// What it asked for and did not get, and why.
    pub refused: Vec<String>,
}

impl Access {
    /// Whether interface capability `capability` was granted.
    pub fn has(&self, capability: Capability) -> bool {
        self.imports.contains(&capability)
    }
}

impl PluginScope<'_> {
    /// `store`, if this plugin was granted `capability` and the store opened.
    pub fn granted<'s, S>(
        &self,
        capability: Capability,
        store: &'s Option<Arc<S>>,
    ) -> Option<&'s Arc<S>> {
        store.as_ref().filter(|_| self.access.has(capability))
    }
}

macro_rules! interface {
    () => {
        None
    };
    ($interface:literal) => {
        Some($interface)
    };
}

/// Defines [`Capability`] (the names manifests and levels use) and
/// [`CallCapabilities`] (every capability's context in a call's store) from
/// one table: per row, the store field, its context type, and the manifest
/// capabilities it brings (name, and the `toolmesh:plugin` interface that
/// needs it, if any).
macro_rules! capabilities {
    ($(
        $field:ident: $ctx:ty =>
            [$($variant:ident = $name:literal $(in $interface:literal)?),*]
    ),* $(,)?) => {
        /// Something a plugin may be granted: a `toolmesh:plugin` interface
        /// a manifest lists in `capabilities`, or WASI access it asks for
        /// with `[[fs]]` tables and `env = [...]`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Capability {
            $($(
                #[doc = concat!("`", $name, "`")]
                $variant,
            )*)*
        }

        impl Capability {
            /// Every capability this host knows.
            pub const ALL: &[Capability] = &[$($(Capability::$variant,)*)*];

            /// The name used in manifests and level definitions.
            pub fn name(self) -> &'static str {
                match self {
                    $($(Capability::$variant => $name,)*)*
                }
            }

            /// The `toolmesh:plugin` interface that brings this capability,
            /// if any (the others are WASI access).
            pub fn interface(self) -> Option<&'static str> {
                match self {
                    $($(Capability::$variant => interface!($($interface)?),)*)*
                }
            }
        }

        /// Every capability's context for one call.
        pub struct CallCapabilities {
            $(pub(crate) $field: $ctx,)*
        }

        impl CallCapabilities {
            /// Adds every capability's interfaces to `linker`.
            pub fn add_to_linker<T: CallData>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
                $(<$ctx as CallCapability>::add_to_linker(linker, |data: &mut T| {
                    &mut data.capabilities().$field
                })?;)*
                Ok(())
            }

            /// Every capability's context for a call into `plugin`.
            pub fn for_call(
                host: &HostStores,
                plugin: &PluginScope<'_>,
                call: &CallScope,
            ) -> anyhow::Result<Self> {
                Ok(Self {
                    $($field: <$ctx as CallCapability>::for_call(host, plugin, call)?,)*
                })
            }
        }
    };
}

capabilities! {
    config: config::ConfigCtx => [],
    caller: caller::CallerCtx => [],
    log: log::LogCtx => [Log = "log" in "log"],
    kv: kv::KvCtx => [Kv = "kv" in "kv"],
    blobs: blobs::BlobsCtx => [Blobs = "blobs" in "blobs"],
    progress: progress::ProgressCtx => [Progress = "progress" in "progress"],
    notify: notify::NotifyCtx => [],
    client: client::ClientCtx => [
        Elicitation = "elicitation" in "client",
        Sampling = "sampling" in "client",
        Roots = "roots" in "client"
    ],
    wasi: wasi::WasiState => [
        FsRead = "fs-read", FsWrite = "fs-write", FsHost = "fs-host", Env = "env"
    ],
}

impl CallCapabilities {
    /// The WASI context (files, environment, stdio) of this call.
    pub fn wasi_ctx(&mut self) -> &mut wasmtime_wasi::WasiCtx {
        &mut self.wasi.ctx
    }
}

impl Capability {
    /// The capabilities a manifest lists by name in `capabilities`: those
    /// a `toolmesh:plugin` interface brings.
    pub fn imports() -> impl Iterator<Item = Capability> {
        Self::ALL
            .iter()
            .copied()
            .filter(|c| c.interface().is_some())
    }

    /// The capability `toolmesh:plugin/<interface>` brings.
    pub fn of_interface(interface: &str) -> Option<Self> {
        Self::imports().find(|c| c.interface() == Some(interface))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_names_every_capability_once() {
        let names: Vec<_> = Capability::ALL.iter().map(|c| c.name()).collect();
        assert_eq!(
            names,
            [
                "log",
                "kv",
                "blobs",
                "progress",
                "elicitation",
                "sampling",
                "roots",
                "fs-read",
                "fs-write",
                "fs-host",
                "env"
            ]
        );
        assert_eq!(Capability::of_interface("kv"), Some(Capability::Kv));
        assert_eq!(Capability::of_interface("config"), None);
        assert_eq!(Capability::imports().count(), 7);
        assert_eq!("fs-host".parse(), Ok(Capability::FsHost));
        assert!(
            "net"
                .parse::<Capability>()
                .unwrap_err()
                .contains("this host knows")
        );
    }
}
