//! The operator's policy (`[plugins.permission.config]` in `toolmesh.toml`)
//! and the decision it makes on a request: resource types, roles with
//! permission templates and inheritance, trust per agent or role, and rules
//! on justification and duration.
//!
//! ```toml
//! [plugins.permission.config]
//! max_duration_s = 3600            # the longest grant for any resource
//! min_justification_chars = 10
//! max_audit_records = 100000       # the audit trail keeps the newest this many
//!
//! [plugins.permission.config.resource_types.secrets]
//! min_trust = 2                    # agents below this trust are refused
//! max_duration_s = 600             # tighter than the global maximum
//! scopes = ["read", "write"]       # the scopes a grant may name (empty: any)
//!
//! [plugins.permission.config.roles.reader]
//! permissions = ["secrets:read"]   # `type`, `type:scope`, or `*`
//! trust = 1
//!
//! [plugins.permission.config.roles.admin]
//! inherits = ["reader"]
//! permissions = ["*"]
//! trust = 3
//!
//! [plugins.permission.config.agents.alice]
//! roles = ["admin"]
//!
//! [plugins.permission.config.zone_trust]   # the most trust a caller from
//! external = 1                              # a zone has (none: no ceiling)
//! ```

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

/// The policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// The longest grant, in seconds.
    pub max_duration_s: u64,
    /// The shortest justification, in characters.
    pub min_justification_chars: usize,
    /// The resource types grants may be for.
    pub resource_types: BTreeMap<String, ResourceType>,
    /// Roles: named sets of permissions.
    pub roles: BTreeMap<String, Role>,
    /// The agents the policy knows.
    pub agents: BTreeMap<String, Agent>,
    /// How many audit records to keep (the oldest go first; 0 keeps all).
    pub max_audit_records: u32,
    /// The most trust an agent calling from a zone (`local`, `trusted`,
    /// `external`: where the host's client configuration puts it) has,
    /// whatever its roles say. A zone not listed has no ceiling.
    pub zone_trust: BTreeMap<String, u32>,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            max_duration_s: 3600,
            min_justification_chars: 10,
            resource_types: BTreeMap::new(),
            roles: BTreeMap::new(),
            agents: BTreeMap::new(),
            max_audit_records: 100_000,
            zone_trust: BTreeMap::new(),
        }
    }
}

/// Rules for one resource type.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResourceType {
    /// The least trust an agent needs.
    pub min_trust: u32,
    /// The longest grant for this type, if tighter than the policy's.
    pub max_duration_s: Option<u64>,
    /// The scopes a grant may name; empty means any.
    pub scopes: Vec<String>,
}

/// A role.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Role {
    /// Permission templates: `type` (every scope), `type:scope`, or `*`.
    pub permissions: Vec<String>,
    /// Roles whose permissions this one has too.
    pub inherits: Vec<String>,
    /// The trust this role confers.
    pub trust: Option<u32>,
}

/// An agent the policy knows.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Agent {
    /// Its roles.
    pub roles: Vec<String>,
    /// Its trust (the highest of this and its roles' counts).
    pub trust: Option<u32>,
}

/// What is asked.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// The agent.
    pub agent: &'a str,
    /// The resource type.
    pub resource: &'a str,
    /// The scope, if any.
    pub scope: Option<&'a str>,
    /// Why.
    pub justification: &'a str,
    /// For how long, in seconds.
    pub duration_s: u64,
    /// The caller's trust zone.
    pub zone: &'a str,
}

/// Input the policy cannot decide on: an error for the caller, not a
/// decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadRequest {
    /// The agent is not in the policy.
    UnknownAgent(String),
    /// The resource type is not in the policy.
    UnknownResource(String),
}

impl std::fmt::Display for BadRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BadRequest::UnknownAgent(a) => write!(
                f,
                "unknown agent `{a}`: the operator's policy has no such agent"
            ),
            BadRequest::UnknownResource(r) => write!(
                f,
                "unknown resource type `{r}`: the operator's policy has no such type"
            ),
        }
    }
}

impl Policy {
    /// The agent's trust: its own, or the highest of its roles' (with
    /// inherited roles), whichever is higher.
    pub fn trust(&self, agent: &Agent) -> u32 {
        let roles = self.expand_roles(&agent.roles);
        roles
            .iter()
            .filter_map(|r| self.roles.get(r).and_then(|r| r.trust))
            .chain(agent.trust)
            .max()
            .unwrap_or(0)
    }

    /// `roles` with every role they inherit, transitively (cycles are fine).
    fn expand_roles(&self, roles: &[String]) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<&String> = roles.iter().collect();
        while let Some(role) = todo.pop() {
            if seen.insert(role.clone())
                && let Some(r) = self.roles.get(role)
            {
                todo.extend(r.inherits.iter());
            }
        }
        seen
    }

    /// Whether the agent's roles permit `resource` with `scope`.
    fn permits(&self, agent: &Agent, resource: &str, scope: Option<&str>) -> bool {
        self.expand_roles(&agent.roles)
            .iter()
            .filter_map(|r| self.roles.get(r))
            .flat_map(|r| r.permissions.iter())
            .any(|p| match p.split_once(':') {
                _ if p == "*" || p == resource => true,
                Some((r, s)) => r == resource && (s == "*" || Some(s) == scope),
                None => false,
            })
    }

    /// Decides `request`: `Ok(Ok(duration))` grants it for `duration`
    /// seconds, `Ok(Err(reason))` refuses it, `Err` is input the policy
    /// cannot decide on.
    pub fn decide(&self, request: &Request<'_>) -> Result<Result<u64, String>, BadRequest> {
        let agent = self
            .agents
            .get(request.agent)
            .ok_or_else(|| BadRequest::UnknownAgent(request.agent.to_owned()))?;
        let resource = self
            .resource_types
            .get(request.resource)
            .ok_or_else(|| BadRequest::UnknownResource(request.resource.to_owned()))?;
        if let Some(scope) = request.scope
            && !resource.scopes.is_empty()
            && !resource.scopes.iter().any(|s| s == scope)
        {
            return Ok(Err(format!(
                "`{}` has no scope `{scope}` (its scopes: {})",
                request.resource,
                resource.scopes.join(", ")
            )));
        }
        if !self.permits(agent, request.resource, request.scope) {
            return Ok(Err(format!(
                "agent `{}` has no role that permits `{}{}`",
                request.agent,
                request.resource,
                request.scope.map(|s| format!(":{s}")).unwrap_or_default()
            )));
        }
        let trust = self.trust(agent);
        let ceiling = self.zone_trust.get(request.zone).copied();
        let trust_here = ceiling.map_or(trust, |c| trust.min(c));
        if trust_here < resource.min_trust {
            let from = match ceiling {
                Some(c) if c < trust => {
                    format!(
                        " (at most {c} when calling from the `{}` zone)",
                        request.zone
                    )
                }
                _ => String::new(),
            };
            return Ok(Err(format!(
                "agent `{}` has trust {trust_here}{from}; `{}` needs {}",
                request.agent, request.resource, resource.min_trust
            )));
        }
        let chars = request.justification.trim().chars().count();
        if chars < self.min_justification_chars {
            return Ok(Err(format!(
                "the justification has {chars} characters; the policy asks for at least {}",
                self.min_justification_chars
            )));
        }
        let max = resource
            .max_duration_s
            .map_or(self.max_duration_s, |m| m.min(self.max_duration_s));
        if request.duration_s > max {
            return Ok(Err(format!(
                "{} s is longer than the {max} s allowed for `{}`",
                request.duration_s, request.resource
            )));
        }
        Ok(Ok(request.duration_s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        serde_json::from_value(serde_json::json!({
            "max_duration_s": 3600,
            "min_justification_chars": 5,
            "resource_types": {
                "secrets": {"min_trust": 2, "max_duration_s": 600, "scopes": ["read", "write"]},
                "logs": {}
            },
            "roles": {
                "reader": {"permissions": ["secrets:read", "logs"], "trust": 1},
                "admin": {"inherits": ["reader", "admin"], "permissions": ["*"], "trust": 3}
            },
            "agents": {
                "alice": {"roles": ["admin"]},
                "bob": {"roles": ["reader"]},
                "carol": {"roles": ["reader"], "trust": 2}
            }
        }))
        .unwrap()
    }

    fn ask<'a>(agent: &'a str, resource: &'a str, scope: Option<&'a str>) -> Request<'a> {
        Request {
            agent,
            resource,
            scope,
            justification: "needed for the nightly job",
            duration_s: 60,
            zone: "local",
        }
    }

    #[test]
    fn a_zone_caps_trust() {
        let mut p = policy();
        p.zone_trust.insert("external".into(), 1);
        let from_outside = Request {
            zone: "external",
            ..ask("alice", "secrets", Some("read"))
        };
        let refused = p.decide(&from_outside).unwrap().unwrap_err();
        assert!(
            refused.contains("at most 1 when calling from the `external` zone"),
            "{refused}"
        );
        assert_eq!(p.decide(&ask("alice", "secrets", Some("read"))), Ok(Ok(60)));
    }

    #[test]
    fn roles_inherit_and_trust_is_the_highest() {
        let p = policy();
        assert_eq!(p.trust(&p.agents["alice"]), 3);
        assert_eq!(p.trust(&p.agents["bob"]), 1);
        assert_eq!(p.trust(&p.agents["carol"]), 2);
        assert_eq!(
            p.decide(&ask("alice", "secrets", Some("write"))),
            Ok(Ok(60))
        );
        assert_eq!(p.decide(&ask("carol", "secrets", Some("read"))), Ok(Ok(60)));
    }

    #[test]
    fn refusals_say_why() {
        let p = policy();
        let refused = |r: Request<'_>| p.decide(&r).unwrap().unwrap_err();
        assert!(refused(ask("bob", "secrets", Some("read"))).contains("trust 1"));
        assert!(
            refused(ask("carol", "secrets", Some("write")))
                .contains("no role that permits `secrets:write`")
        );
        assert!(refused(ask("alice", "secrets", Some("delete"))).contains("no scope `delete`"));
        let mut long = ask("alice", "secrets", None);
        long.duration_s = 601;
        assert!(refused(long).contains("longer than the 600 s"));
        let mut terse = ask("alice", "logs", None);
        terse.justification = " hi ";
        assert!(refused(terse).contains("at least 5"));
    }

    #[test]
    fn unknown_agents_and_types_are_bad_requests() {
        let p = policy();
        assert_eq!(
            p.decide(&ask("mallory", "logs", None)),
            Err(BadRequest::UnknownAgent("mallory".into()))
        );
        assert_eq!(
            p.decide(&ask("alice", "nukes", None)),
            Err(BadRequest::UnknownResource("nukes".into()))
        );
    }
}
