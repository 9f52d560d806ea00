//! `discovery`: a registry of agents. An agent registers its id,
//! capabilities, endpoint, trust level and metadata, then sends heartbeats;
//! others discover it by capability and trust. An entry whose last heartbeat
//! is older than the TTL (`ttl_s` in `[plugins.discovery.config]`, default 30
//! minutes) is treated as gone and removed.
//!
//! Each entry lives at `agent/<id>` in kv. The state is ready to federate:
//! every entry carries `updated_ms` and the `origin` that wrote it, and
//! [`Entry::merge`] is last-writer-wins per agent (ties broken by origin), so
//! replicas that exchange entries in any order converge.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toolmesh_sdk::{Plugin, Resource, ResourceContents, Structured, Tool, ToolError, kv, notify};

const AGENTS: &str = "agent/";
/// This host's entries, as opposed to ones merged from peers.
const LOCAL: &str = "local";

/// `[plugins.discovery.config]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Seconds without a heartbeat after which an agent is gone.
    pub ttl_s: u64,
    /// The largest metadata object, in bytes of JSON.
    pub max_metadata_bytes: usize,
    /// The most capabilities one agent may list.
    pub max_capabilities: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            ttl_s: 30 * 60,
            max_metadata_bytes: 4096,
            max_capabilities: 64,
        }
    }
}

/// A registered agent.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Entry {
    /// Its id.
    pub id: String,
    /// What it can do.
    pub capabilities: Vec<String>,
    /// Where to reach it, if anywhere.
    pub endpoint: Option<String>,
    /// Its trust level (0 to 10).
    pub trust: u8,
    /// Anything else, as a JSON object.
    pub metadata: BTreeMap<String, serde_json::Value>,
    /// When it registered (ms since the Unix epoch).
    pub registered_at_ms: u64,
    /// Its last heartbeat (ms since the Unix epoch).
    pub last_seen_ms: u64,
    /// When this entry last changed: the last-writer-wins clock.
    pub updated_ms: u64,
    /// Who wrote it: `local`, or a peer's id once registries federate.
    pub origin: String,
}

impl Entry {
    /// Last-writer-wins: the entry with the later `updated_ms` wins; on a
    /// tie, the greater `origin`. Commutative, associative and idempotent.
    pub fn merge(self, other: Entry) -> Entry {
        if (other.updated_ms, &other.origin) > (self.updated_ms, &self.origin) {
            other
        } else {
            self
        }
    }

    fn alive(&self, now: u64, ttl_s: u64) -> bool {
        now.saturating_sub(self.last_seen_ms) <= ttl_s.saturating_mul(1000)
    }
}

fn settings() -> Result<Settings, ToolError> {
    toolmesh_sdk::config::get()
}

fn check_id(id: &str) -> Result<(), ToolError> {
    toolmesh_sdk::check_id("agent id", id, 128, "._:-@")
}

fn key(id: &str) -> String {
    format!("{AGENTS}{id}")
}

/// An agent to register (or re-register: the entry is replaced).
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterArgs {
    /// Its id.
    pub id: String,
    /// What it can do (e.g. `summarize`, `code-review`).
    pub capabilities: Vec<String>,
    /// Where to reach it.
    pub endpoint: Option<String>,
    /// Its trust level, 0 to 10 (default 0).
    #[serde(default)]
    #[schemars(range(max = 10))]
    pub trust: u8,
    /// Anything else, as a JSON object.
    #[serde(default)]
    pub metadata: BTreeMap<String, serde_json::Value>,
}

fn register(args: RegisterArgs) -> Result<Structured<Entry>, ToolError> {
    let settings = settings()?;
    check_id(&args.id)?;
    toolmesh_sdk::caller::require_act_for(&args.id, "register")?;
    if args.trust > 10 {
        return Err(ToolError::invalid_arguments("`trust` is 0 to 10"));
    }
    if args.capabilities.len() > settings.max_capabilities {
        return Err(ToolError::invalid_arguments(format!(
            "at most {} capabilities",
            settings.max_capabilities
        )));
    }
    if let Some(bad) = args
        .capabilities
        .iter()
        .find(|c| c.is_empty() || c.len() > 128)
    {
        return Err(ToolError::invalid_arguments(format!(
            "capability `{bad}` must be 1 to 128 bytes"
        )));
    }
    if args.endpoint.as_ref().is_some_and(|e| e.len() > 2048) {
        return Err(ToolError::invalid_arguments(
            "`endpoint` is longer than 2048 bytes",
        ));
    }
    let metadata_bytes = serde_json::to_vec(&args.metadata).map_or(usize::MAX, |v| v.len());
    if metadata_bytes > settings.max_metadata_bytes {
        return Err(ToolError::invalid_arguments(format!(
            "`metadata` is {metadata_bytes} bytes of JSON; at most {} are kept",
            settings.max_metadata_bytes
        )));
    }
    let now = toolmesh_sdk::unix_time_ms();
    let mut capabilities = args.capabilities;
    capabilities.sort();
    capabilities.dedup();
    let entry = kv::update_json(&key(&args.id), |old: Option<Entry>| {
        let entry = Entry {
            id: args.id.clone(),
            capabilities: capabilities.clone(),
            endpoint: args.endpoint.clone(),
            trust: args.trust,
            metadata: args.metadata.clone(),
            registered_at_ms: old.map_or(now, |o| o.registered_at_ms),
            last_seen_ms: now,
            updated_ms: now,
            origin: LOCAL.to_owned(),
        };
        Ok((Some(entry.clone()), entry))
    })?;
    notify::resource_updated(AGENTS_URI);
    Ok(Structured(entry))
}

/// An agent's id.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IdArgs {
    /// The agent.
    pub id: String,
}

fn heartbeat(args: IdArgs) -> Result<Structured<Entry>, ToolError> {
    check_id(&args.id)?;
    toolmesh_sdk::caller::require_act_for(&args.id, "send heartbeats")?;
    let settings = settings()?;
    let now = toolmesh_sdk::unix_time_ms();
    let entry = kv::update_json(&key(&args.id), |entry: Option<Entry>| match entry {
        Some(e) if e.alive(now, settings.ttl_s) => {
            let mut e = e;
            e.last_seen_ms = now;
            e.updated_ms = now;
            Ok((Some(e.clone()), e))
        }
        Some(_) => Err(ToolError::invalid_arguments(format!(
            "agent `{}` expired (no heartbeat for over {} s): register it again",
            args.id, settings.ttl_s
        ))),
        None => Err(ToolError::invalid_arguments(format!(
            "unknown agent `{}`: register it first",
            args.id
        ))),
    })?;
    Ok(Structured(entry))
}

/// Whether an agent was removed.
#[derive(Serialize, JsonSchema)]
pub struct Removed {
    /// True if it was registered.
    pub removed: bool,
}

fn unregister(args: IdArgs) -> Result<Structured<Removed>, ToolError> {
    check_id(&args.id)?;
    toolmesh_sdk::caller::require_act_for(&args.id, "unregister")?;
    let removed = kv::delete(&key(&args.id))?;
    notify::resource_updated(AGENTS_URI);
    Ok(Structured(Removed { removed }))
}

/// The resource of the live agents.
const AGENTS_URI: &str = "discovery://agents";

/// Every live agent; entries past the TTL are removed on the way (only if
/// nobody refreshed them meanwhile).
fn live_agents() -> Result<Vec<Entry>, ToolError> {
    let settings = settings()?;
    let now = toolmesh_sdk::unix_time_ms();
    let mut live = Vec::new();
    for key in kv::list_keys(AGENTS, u32::MAX)? {
        let Some(bytes) = kv::get(&key)? else {
            continue;
        };
        let entry: Entry = serde_json::from_slice(&bytes)
            .map_err(|e| ToolError::failed(format!("entry `{key}` is not valid: {e}")))?;
        if entry.alive(now, settings.ttl_s) {
            live.push(entry);
        } else if kv::compare_and_swap(&key, Some(&bytes), None)? {
            toolmesh_sdk::log(
                toolmesh_sdk::LogLevel::Info,
                &format!("agent `{}` expired and was removed", entry.id),
            );
        }
    }
    Ok(live)
}

/// What to look for.
#[derive(Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields, default)]
pub struct DiscoverArgs {
    /// Agents with this capability.
    pub capability: Option<String>,
    /// Agents with at least this trust.
    pub min_trust: Option<u8>,
}

/// Agents found.
#[derive(Serialize, JsonSchema)]
pub struct Agents {
    /// The agents, most trusted first, then by id.
    pub agents: Vec<Entry>,
}

fn discover(args: DiscoverArgs) -> Result<Structured<Agents>, ToolError> {
    let mut agents: Vec<Entry> = live_agents()?
        .into_iter()
        .filter(|e| {
            args.capability
                .as_ref()
                .is_none_or(|c| e.capabilities.contains(c))
                && args.min_trust.is_none_or(|t| e.trust >= t)
        })
        .collect();
    agents.sort_by(|a, b| b.trust.cmp(&a.trust).then_with(|| a.id.cmp(&b.id)));
    Ok(Structured(Agents { agents }))
}

/// No arguments.
#[derive(Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct Nothing {}

fn list(_: Nothing) -> Result<Structured<Agents>, ToolError> {
    discover(DiscoverArgs::default())
}

/// The plugin's tools.
pub fn plugin() -> Plugin {
    Plugin::new()
        .resource(
            Resource::new(AGENTS_URI, "agents", |_| {
                Ok(vec![ResourceContents::json(
                    AGENTS_URI,
                    &list(Nothing {})?.0,
                )?])
            })
            .description("The agents registered and alive now; subscribe to hear of changes.")
            .mime_type("application/json"),
        )
        .tool(Tool::new(
            "register",
            "Registers an agent (or replaces its entry): id, capabilities, endpoint, trust \
             level (0-10) and metadata.",
            register,
        ))
        .tool(Tool::new(
            "heartbeat",
            "Tells the registry an agent is still alive.",
            heartbeat,
        ))
        .tool(Tool::new(
            "discover",
            "Finds live agents by capability and minimum trust.",
            discover,
        ))
        .tool(Tool::new("list", "Lists every live agent.", list))
        .tool(Tool::new(
            "unregister",
            "Removes an agent from the registry.",
            unregister,
        ))
}

toolmesh_sdk::export_plugin!(plugin);

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(id: &str, capabilities: &[&str], trust: u8) -> Result<Entry, ToolError> {
        register(RegisterArgs {
            id: id.into(),
            capabilities: capabilities.iter().map(ToString::to_string).collect(),
            endpoint: None,
            trust,
            metadata: BTreeMap::new(),
        })
        .map(|s| s.0)
    }

    fn ids(agents: Agents) -> Vec<String> {
        agents.agents.into_iter().map(|e| e.id).collect()
    }

    #[test]
    fn register_discover_heartbeat_unregister() {
        toolmesh_sdk::config::set_for_tests("{}");
        reg("a", &["search", "code"], 1).unwrap();
        reg("b", &["search"], 5).unwrap();
        let found = discover(DiscoverArgs {
            capability: Some("search".into()),
            min_trust: None,
        })
        .unwrap()
        .0;
        assert_eq!(ids(found), ["b", "a"]);
        let trusted = discover(DiscoverArgs {
            capability: None,
            min_trust: Some(3),
        })
        .unwrap()
        .0;
        assert_eq!(ids(trusted), ["b"]);
        heartbeat(IdArgs { id: "a".into() }).unwrap();
        assert!(unregister(IdArgs { id: "a".into() }).unwrap().0.removed);
        assert!(matches!(
            heartbeat(IdArgs { id: "a".into() }),
            Err(ToolError::InvalidArguments(m)) if m.contains("unknown agent `a`")
        ));
    }

    #[test]
    fn expired_entries_are_gone_and_removed() {
        toolmesh_sdk::config::set_for_tests(r#"{"ttl_s": 0}"#);
        let mut stale = reg("old", &["x"], 0).unwrap();
        stale.last_seen_ms -= 5_000;
        kv::set_json(&key("old"), &stale).unwrap();
        assert!(ids(list(Nothing {}).unwrap().0).is_empty());
        assert_eq!(kv::get("agent/old").unwrap(), None);
    }

    #[test]
    fn bad_input_changes_nothing() {
        toolmesh_sdk::config::set_for_tests(r#"{"max_metadata_bytes": 16}"#);
        let mut args = RegisterArgs {
            id: "a".into(),
            capabilities: vec![],
            endpoint: None,
            trust: 0,
            metadata: BTreeMap::from([("k".into(), serde_json::json!("x".repeat(100)))]),
        };
        assert!(
            matches!(register(args), Err(ToolError::InvalidArguments(m)) if m.contains("at most 16"))
        );
        args = RegisterArgs {
            id: "bad id!".into(),
            capabilities: vec![],
            endpoint: None,
            trust: 0,
            metadata: BTreeMap::new(),
        };
        assert!(register(args).is_err());
        assert!(matches!(
            reg("a", &[], 11),
            Err(ToolError::InvalidArguments(_))
        ));
        assert!(kv::list_keys("", 10).unwrap().is_empty());
    }

    #[test]
    fn merge_is_last_writer_wins_and_order_free() {
        let base = Entry {
            id: "a".into(),
            capabilities: vec![],
            endpoint: None,
            trust: 0,
            metadata: BTreeMap::new(),
            registered_at_ms: 1,
            last_seen_ms: 1,
            updated_ms: 10,
            origin: "peer-a".into(),
        };
        let newer = Entry {
            updated_ms: 20,
            trust: 3,
            ..base.clone()
        };
        let tie = Entry {
            origin: "peer-b".into(),
            trust: 7,
            ..base.clone()
        };
        assert_eq!(base.clone().merge(newer.clone()), newer);
        assert_eq!(newer.clone().merge(base.clone()), newer);
        assert_eq!(base.clone().merge(tie.clone()), tie);
        assert_eq!(tie.clone().merge(base.clone()), tie);
        assert_eq!(newer.clone().merge(newer.clone()), newer);
    }
}
