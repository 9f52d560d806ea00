//! What every plugin has, granted or not: the shared `types` interface and
//! `config`, the operator's configuration for the plugin
//! (`[plugins.<name>.config]` in `toolmesh.toml`, as JSON object text).

use std::sync::Arc;

use wasmtime::component::Linker;

use super::{CallCapability, CallData, CallScope, HostStores, PluginScope};
use crate::wit::toolmesh::plugin::{config, types};

/// A call's view of its plugin's configuration.
pub struct ConfigCtx {
    json: Arc<str>,
}

impl CallCapability for ConfigCtx {
    fn add_to_linker<T: CallData>(
        linker: &mut Linker<T>,
        get: fn(&mut T) -> &mut Self,
    ) -> wasmtime::Result<()> {
        link_v0_1_and_v0_2!(types, linker, get)?;
        link_v0_1_and_v0_2!(config, linker, get)
    }

    fn for_call(_: &HostStores, plugin: &PluginScope<'_>, _: &CallScope) -> anyhow::Result<Self> {
        Ok(Self {
            json: plugin.config.clone(),
        })
    }
}

impl types::Host for ConfigCtx {}

impl config::Host for ConfigCtx {
    fn get(&mut self) -> String {
        self.json.to_string()
    }
}
