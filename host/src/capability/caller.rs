//! The `caller` interface: who is calling, as the transport authenticated
//! it (see [`crate::identity`]). Every plugin has it; the core plugins use
//! it so that an agent acts only as itself unless it is an admin.

use std::sync::Arc;

use wasmtime::component::Linker;

use super::{CallCapability, CallData, CallScope, HostStores, PluginScope};
use crate::identity::{Caller, Zone};
use crate::wit::toolmesh::plugin::caller;

/// A call's view of its caller.
pub struct CallerCtx {
    caller: Arc<Caller>,
}

impl CallCapability for CallerCtx {
    fn add_to_linker<T: CallData>(
        linker: &mut Linker<T>,
        get: fn(&mut T) -> &mut Self,
    ) -> wasmtime::Result<()> {
        link_v0_1_and_v0_2!(caller, linker, get)
    }

    fn for_call(_: &HostStores, _: &PluginScope<'_>, call: &CallScope) -> anyhow::Result<Self> {
        Ok(Self {
            caller: call.caller.clone(),
        })
    }
}

impl caller::Host for CallerCtx {
    fn get(&mut self) -> caller::Identity {
        let c = &*self.caller;
        caller::Identity {
            agent: c.agent.clone(),
            client: c.client.clone(),
            zone: match c.zone {
                Zone::Local => caller::Zone::Local,
                Zone::Trusted => caller::Zone::Trusted,
                Zone::External => caller::Zone::External,
            },
            admin: c.admin,
            authenticated: c.authenticated,
        }
    }
}
