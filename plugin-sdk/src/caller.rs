//! Who is calling: the identity the host authenticated (always available,
//! no capability needed). Over HTTP the agent is the one the client's key
//! or token names and no request can claim another; over stdio the local
//! user is trusted and the agent is whatever the request's `_meta` names.
//!
//! A tool that acts for an agent should act only for the caller's agent
//! unless the caller is an admin ([`Caller::may_act_for`]):
//!
//! ```no_run
//! let caller = toolmesh_sdk::caller::get();
//! if !caller.may_act_for("alice") {
//!     return Err(toolmesh_sdk::ToolError::denied("only alice may do this"));
//! }
//! # Ok::<(), toolmesh_sdk::ToolError>(())
//! ```
//!
//! Outside a WebAssembly host (in a native unit test), the caller is what
//! [`set_for_tests`] last set on this thread, or the local user.

/// Where the caller comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    /// This machine.
    Local,
    /// A network the operator trusts.
    Trusted,
    /// Anywhere else.
    External,
}

impl Zone {
    /// The zone's name: `local`, `trusted` or `external`.
    pub fn name(self) -> &'static str {
        match self {
            Zone::Local => "local",
            Zone::Trusted => "trusted",
            Zone::External => "external",
        }
    }
}

/// The caller of the call in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The calling agent, if known.
    pub agent: Option<String>,
    /// The client's name, if known.
    pub client: Option<String>,
    /// Its trust zone.
    pub zone: Zone,
    /// Whether it may act for other agents.
    pub admin: bool,
    /// Whether the host authenticated `agent`.
    pub authenticated: bool,
}

impl Caller {
    /// The local user, trusted, naming no agent.
    pub fn local() -> Self {
        Self {
            agent: None,
            client: None,
            zone: Zone::Local,
            admin: true,
            authenticated: false,
        }
    }

    /// Whether the caller may act for `agent`: it is an admin (the local
    /// user is), or `agent` is its own authenticated agent.
    pub fn may_act_for(&self, agent: &str) -> bool {
        self.admin || (self.authenticated && self.agent.as_deref() == Some(agent))
    }
}

/// `Ok` if the caller may act for `agent`; else a denial naming `what` it
/// tried (e.g. `"register"`).
pub fn require_act_for(agent: &str, what: &str) -> Result<(), crate::ToolError> {
    let caller = get();
    if caller.may_act_for(agent) {
        return Ok(());
    }
    Err(crate::ToolError::denied(format!(
        "agent `{}` may {what} only for itself, not for `{agent}`",
        caller.agent.as_deref().unwrap_or("(unnamed)")
    )))
}

/// `Ok` if the caller is an admin; else a denial naming `what` it tried.
pub fn require_admin(what: &str) -> Result<(), crate::ToolError> {
    let caller = get();
    if caller.admin {
        return Ok(());
    }
    Err(crate::ToolError::denied(format!(
        "only an admin may {what} (agent `{}` is not one)",
        caller.agent.as_deref().unwrap_or("(unnamed)")
    )))
}

/// Who is calling.
pub fn get() -> Caller {
    #[cfg(target_family = "wasm")]
    {
        use crate::bindings::toolmesh::plugin::caller as wit;
        let id = wit::get();
        Caller {
            agent: id.agent,
            client: id.client,
            zone: match id.zone {
                wit::Zone::Local => Zone::Local,
                wit::Zone::Trusted => Zone::Trusted,
                wit::Zone::External => Zone::External,
            },
            admin: id.admin,
            authenticated: id.authenticated,
        }
    }
    #[cfg(not(target_family = "wasm"))]
    {
        native::CALLER.with(|c| c.borrow().clone())
    }
}

/// Sets the caller native code sees on this thread (for unit tests).
#[cfg(not(target_family = "wasm"))]
pub fn set_for_tests(caller: Caller) {
    native::CALLER.with(|c| *c.borrow_mut() = caller);
}

#[cfg(not(target_family = "wasm"))]
mod native {
    use std::cell::RefCell;

    thread_local! {
        pub static CALLER: RefCell<super::Caller> = RefCell::new(super::Caller::local());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agents_act_only_as_themselves_unless_admin() {
        let alice = Caller {
            agent: Some("alice".into()),
            client: Some("laptop".into()),
            zone: Zone::External,
            admin: false,
            authenticated: true,
        };
        assert!(alice.may_act_for("alice"));
        assert!(!alice.may_act_for("bob"));
        assert!(
            Caller {
                admin: true,
                ..alice
            }
            .may_act_for("bob")
        );
        assert!(Caller::local().may_act_for("bob"));
    }
}
