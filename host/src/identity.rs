//! Who is calling: the identity a transport fixes at its edge and every
//! layer below reads (the gate, the core plugins through the `caller`
//! capability, the audit log). Over stdio the local user is trusted; over
//! HTTP the caller is who their API key or OAuth token says.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How far a caller is trusted, by where it comes from. The permission
/// plugin maps each zone to a trust ceiling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Zone {
    /// This machine: stdio, the control socket.
    Local,
    /// A network the operator trusts.
    Trusted,
    /// Anywhere else.
    #[default]
    External,
}

impl Zone {
    /// The zone's name, as configured.
    pub fn name(self) -> &'static str {
        match self {
            Zone::Local => "local",
            Zone::Trusted => "trusted",
            Zone::External => "external",
        }
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Zone {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "local" => Ok(Zone::Local),
            "trusted" => Ok(Zone::Trusted),
            "external" => Ok(Zone::External),
            other => Err(format!(
                "unknown trust zone `{other}` (local, trusted or external)"
            )),
        }
    }
}

/// What an authenticated client may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// List and call tools, read resources.
    Tools,
    /// Act for any agent, read the audit log, operate the host.
    Admin,
}

impl Scope {
    /// The scope's name, as keys and tokens carry it.
    pub fn name(self) -> &'static str {
        match self {
            Scope::Tools => "tools",
            Scope::Admin => "admin",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Scope {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "tools" => Ok(Scope::Tools),
            "admin" => Ok(Scope::Admin),
            other => Err(format!("unknown scope `{other}` (tools or admin)")),
        }
    }
}

/// The caller of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The agent, when the transport authenticated one. `None` over stdio,
    /// where the agent is whatever the request's `_meta` names.
    pub agent: Option<String>,
    /// The client (API key name, or the token's client id), if known.
    pub client: Option<String>,
    /// Where it comes from.
    pub zone: Zone,
    /// Whether it may act for other agents (the `admin` scope; the local
    /// user always may).
    pub admin: bool,
    /// Whether a transport authenticated `agent` (over stdio it is only
    /// what the request's `_meta` says).
    pub authenticated: bool,
}

impl Caller {
    /// The local user (stdio, the control socket, `toolmesh call`): trusted.
    pub fn local() -> Self {
        Self {
            agent: None,
            client: None,
            zone: Zone::Local,
            admin: true,
            authenticated: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for zone in [Zone::Local, Zone::Trusted, Zone::External] {
            assert_eq!(zone.name().parse::<Zone>(), Ok(zone));
        }
        for scope in [Scope::Tools, Scope::Admin] {
            assert_eq!(scope.name().parse::<Scope>(), Ok(scope));
        }
        assert!(
            "root"
                .parse::<Scope>()
                .unwrap_err()
                .contains("tools or admin")
        );
    }
}
