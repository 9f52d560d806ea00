//! Files and environment, through WASI 0.2: a deny-by-default context with
//! only the plugin's granted directories (cap-std confines them: no way out
//! through `..`, absolute paths or symlinks) and environment variables; no
//! arguments, no network, an empty stdin, stdout discarded, and stderr kept
//! in the call's pipe for crash reports. Which directories and variables a
//! plugin gets is decided at load ([`Access`](super::Access)).

use wasmtime::component::Linker;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder};

use super::{CallCapability, CallData, CallScope, HostStores, PluginScope};

/// A call's WASI context.
pub struct WasiState {
    pub(super) ctx: WasiCtx,
}

impl CallCapability for WasiState {
    fn add_to_linker<T: CallData>(
        linker: &mut Linker<T>,
        _: fn(&mut T) -> &mut Self,
    ) -> wasmtime::Result<()> {
        // WASI finds its context through `WasiView`, which `CallData` implies.
        wasmtime_wasi::p2::add_to_linker_async(linker)
    }

    fn for_call(
        _: &HostStores,
        plugin: &PluginScope<'_>,
        call: &CallScope,
    ) -> anyhow::Result<Self> {
        let mut builder = WasiCtxBuilder::new();
        builder.stderr(call.stderr.clone());
        for (name, value) in &plugin.access.env {
            builder.env(name, value);
        }
        for preopen in &plugin.access.preopens {
            let perms = if preopen.writable {
                FsPerms::ReadWrite
            } else {
                FsPerms::ReadOnly
            };
            builder
                .preopened_dir(&preopen.host, &preopen.guest, perms)
                .map_err(|e| {
                    anyhow::anyhow!(
                        "cannot open {} for the plugin's `{}`: {e:#}",
                        preopen.host.display(),
                        preopen.guest
                    )
                })?;
        }
        Ok(Self {
            ctx: builder.build(),
        })
    }
}
