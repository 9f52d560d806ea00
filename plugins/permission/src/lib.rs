//! `permission`: grants agents access to resource types under the operator's
//! policy (see [`policy`]). A granted request gets a token: 32 random bytes
//! from the host's secure random source, written `tm_<64 hex digits>`. Only
//! the token's BLAKE3 hash is stored (`grant/<hash>` in kv), so reading the
//! store does not reveal tokens. Tokens expire and can be revoked. Every
//! decision (granted, refused, validated, invalid, expired, revoked) is
//! appended to the audit trail (`audit/<sequence>`), which no tool edits.
//!
//! The host calls `validate` before running a tool that needs a grant.

pub mod policy;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toolmesh_sdk::{
    Plugin, Prompt, PromptMessage, Resource, ResourceContents, Structured, Tool, ToolError, kv,
    notify,
};

use policy::{Policy, Request};

const GRANTS: &str = "grant/";
const AUDIT: &str = "audit/";
const TOKEN_PREFIX: &str = "tm_";
/// The longest agent, resource, scope or justification accepted.
const MAX_FIELD: usize = 256;
const MAX_JUSTIFICATION: usize = 4096;

/// A stored grant. The token itself is never stored.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Grant {
    /// The grant's id: the first 16 hex digits of the token's hash.
    pub id: String,
    /// Who it is for.
    pub agent: String,
    /// The resource type.
    pub resource: String,
    /// The scope, if the request named one.
    pub scope: Option<String>,
    /// Why it was asked for.
    pub justification: String,
    /// When it was granted (ms since the Unix epoch).
    pub granted_at_ms: u64,
    /// When it expires (ms since the Unix epoch).
    pub expires_at_ms: u64,
    /// When it was revoked, if it was.
    pub revoked_at_ms: Option<u64>,
}

/// One audit record.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct AuditRecord {
    /// Its position in the trail, from 1.
    #[serde(default)]
    pub seq: u64,
    /// When (ms since the Unix epoch).
    pub at_ms: u64,
    /// `granted`, `refused`, `validated`, `invalid`, `expired` or `revoked`.
    pub event: String,
    /// The agent concerned.
    pub agent: String,
    /// The resource type concerned.
    pub resource: String,
    /// The grant concerned, if any.
    pub grant: Option<String>,
    /// Details (the reason for a refusal, say).
    pub detail: Option<String>,
}

fn policy() -> Result<Policy, ToolError> {
    toolmesh_sdk::config::get()
}

fn audit(
    event: &str,
    agent: &str,
    resource: &str,
    grant: Option<&str>,
    detail: Option<String>,
) -> Result<(), ToolError> {
    let record = AuditRecord {
        seq: 0,
        at_ms: toolmesh_sdk::unix_time_ms(),
        event: event.to_owned(),
        agent: agent.to_owned(),
        resource: resource.to_owned(),
        grant: grant.map(str::to_owned),
        detail,
    };
    let keep = policy()?.max_audit_records;
    kv::append_json(AUDIT, &record, keep)?;
    // Every decision is in the trail, and may change the active grants.
    notify::resource_updated(AUDIT_URI);
    notify::resource_updated(GRANTS_URI);
    Ok(())
}

/// The resource of the active grants.
const GRANTS_URI: &str = "permission://grants";
/// The resource of the audit trail.
const AUDIT_URI: &str = "permission://audit";

fn check_field(name: &str, value: &str, max: usize) -> Result<(), ToolError> {
    if value.trim().is_empty() || value.len() > max || value.chars().any(char::is_control) {
        return Err(ToolError::invalid_arguments(format!(
            "`{name}` must be 1 to {max} bytes of printable text"
        )));
    }
    Ok(())
}

/// The hash a token is stored under, or an error if it is not a token.
fn token_hash(token: &str) -> Result<String, ToolError> {
    let well_formed = token
        .strip_prefix(TOKEN_PREFIX)
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()));
    if !well_formed {
        return Err(ToolError::invalid_arguments(format!(
            "malformed token: a token is `{TOKEN_PREFIX}` and 64 hex digits"
        )));
    }
    Ok(blake3::hash(token.as_bytes()).to_hex().to_string())
}

fn new_token() -> Result<String, ToolError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| ToolError::failed(format!("no secure random source: {e}")))?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("{TOKEN_PREFIX}{hex}"))
}

/// A request for a grant.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestArgs {
    /// The agent asking.
    pub agent: String,
    /// The resource type.
    pub resource: String,
    /// The scope within the resource type (e.g. `read`), if any.
    pub scope: Option<String>,
    /// Why the agent needs it.
    pub justification: String,
    /// For how long, in seconds.
    #[schemars(range(min = 1))]
    pub duration_s: u64,
}

/// The decision on a request.
#[derive(Serialize, JsonSchema)]
pub struct Decision {
    /// Whether it was granted.
    pub granted: bool,
    /// The token to present (only when granted; shown once).
    pub token: Option<String>,
    /// The grant's id (for listings and the audit trail).
    pub grant: Option<String>,
    /// When the grant expires (ms since the Unix epoch).
    pub expires_at_ms: Option<u64>,
    /// Why it was refused.
    pub reason: Option<String>,
}

fn request(args: RequestArgs) -> Result<Structured<Decision>, ToolError> {
    check_field("agent", &args.agent, MAX_FIELD)?;
    check_field("resource", &args.resource, MAX_FIELD)?;
    if let Some(scope) = &args.scope {
        check_field("scope", scope, MAX_FIELD)?;
    }
    if args.justification.len() > MAX_JUSTIFICATION {
        return Err(ToolError::invalid_arguments(format!(
            "`justification` is longer than {MAX_JUSTIFICATION} bytes"
        )));
    }
    if args.duration_s == 0 {
        return Err(ToolError::invalid_arguments(
            "`duration_s` must be at least 1",
        ));
    }
    toolmesh_sdk::caller::require_act_for(&args.agent, "request grants")?;
    let caller = toolmesh_sdk::caller::get();
    let policy = policy()?;
    let decision = policy
        .decide(&Request {
            zone: caller.zone.name(),
            agent: &args.agent,
            resource: &args.resource,
            scope: args.scope.as_deref(),
            justification: &args.justification,
            duration_s: args.duration_s,
        })
        .map_err(|bad| ToolError::invalid_arguments(bad.to_string()))?;
    let duration_s = match decision {
        Ok(duration_s) => duration_s,
        Err(reason) => {
            audit(
                "refused",
                &args.agent,
                &args.resource,
                None,
                Some(reason.clone()),
            )?;
            return Ok(Structured(Decision {
                granted: false,
                token: None,
                grant: None,
                expires_at_ms: None,
                reason: Some(reason),
            }));
        }
    };
    let token = new_token()?;
    let hash = token_hash(&token)?;
    let now = toolmesh_sdk::unix_time_ms();
    let grant = Grant {
        id: hash[..16].to_owned(),
        agent: args.agent,
        resource: args.resource,
        scope: args.scope,
        justification: args.justification,
        granted_at_ms: now,
        expires_at_ms: now.saturating_add(duration_s.saturating_mul(1000)),
        revoked_at_ms: None,
    };
    kv::set_json(&format!("{GRANTS}{hash}"), &grant)?;
    audit(
        "granted",
        &grant.agent,
        &grant.resource,
        Some(&grant.id),
        Some(format!("for {duration_s} s")),
    )?;
    Ok(Structured(Decision {
        granted: true,
        token: Some(token),
        grant: Some(grant.id),
        expires_at_ms: Some(grant.expires_at_ms),
        reason: None,
    }))
}

/// A token to check.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidateArgs {
    /// The token.
    pub token: String,
    /// The agent presenting it.
    pub agent: String,
    /// The resource type it must be for.
    pub resource: String,
    /// The scope it must cover, if any.
    pub scope: Option<String>,
}

/// Whether a token is good.
#[derive(Serialize, JsonSchema)]
pub struct Validity {
    /// Whether it is.
    pub valid: bool,
    /// The grant's id, if the token names one.
    pub grant: Option<String>,
    /// When it expires.
    pub expires_at_ms: Option<u64>,
    /// Why not.
    pub reason: Option<String>,
}

fn validate(args: ValidateArgs) -> Result<Structured<Validity>, ToolError> {
    check_field("agent", &args.agent, MAX_FIELD)?;
    check_field("resource", &args.resource, MAX_FIELD)?;
    let hash = token_hash(&args.token)?;
    let grant: Option<Grant> = kv::get_json(&format!("{GRANTS}{hash}"))?;
    let now = toolmesh_sdk::unix_time_ms();
    let (event, reason) = match &grant {
        None => ("invalid", Some("no such grant".to_owned())),
        Some(g) if g.revoked_at_ms.is_some() => ("invalid", Some("the grant was revoked".into())),
        Some(g) if now >= g.expires_at_ms => ("expired", Some("the grant has expired".into())),
        Some(g) if g.agent != args.agent => (
            "invalid",
            Some(format!("the grant is not for agent `{}`", args.agent)),
        ),
        Some(g) if g.resource != args.resource => (
            "invalid",
            Some(format!("the grant is not for `{}`", args.resource)),
        ),
        Some(g) if args.scope.is_some() && g.scope.is_some() && g.scope != args.scope => (
            "invalid",
            Some(format!(
                "the grant covers scope `{}` only",
                g.scope.as_deref().unwrap_or_default()
            )),
        ),
        Some(_) => ("validated", None),
    };
    audit(
        event,
        &args.agent,
        &args.resource,
        grant.as_ref().map(|g| g.id.as_str()),
        reason.clone(),
    )?;
    Ok(Structured(Validity {
        valid: reason.is_none(),
        grant: grant.as_ref().map(|g| g.id.clone()),
        expires_at_ms: grant.map(|g| g.expires_at_ms),
        reason,
    }))
}

/// A token to revoke.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeArgs {
    /// The token.
    pub token: String,
}

/// The outcome of a revocation.
#[derive(Serialize, JsonSchema)]
pub struct Revoked {
    /// Whether the grant was active and is now revoked.
    pub revoked: bool,
    /// The grant.
    pub grant: Option<String>,
}

fn revoke(args: RevokeArgs) -> Result<Structured<Revoked>, ToolError> {
    let hash = token_hash(&args.token)?;
    let now = toolmesh_sdk::unix_time_ms();
    let outcome = kv::update_json(&format!("{GRANTS}{hash}"), |grant: Option<Grant>| {
        Ok(match grant {
            Some(mut g) if g.revoked_at_ms.is_none() => {
                g.revoked_at_ms = Some(now);
                let id = g.id.clone();
                let who = (g.agent.clone(), g.resource.clone());
                (Some(g), Some((id, who)))
            }
            other => (other, None),
        })
    })?;
    let Some((id, (agent, resource))) = outcome else {
        return Ok(Structured(Revoked {
            revoked: false,
            grant: None,
        }));
    };
    audit("revoked", &agent, &resource, Some(&id), None)?;
    Ok(Structured(Revoked {
        revoked: true,
        grant: Some(id),
    }))
}

/// Which grants to list.
#[derive(Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ListArgs {
    /// Only this agent's.
    pub agent: Option<String>,
}

/// Active grants.
#[derive(Serialize, JsonSchema)]
pub struct Grants {
    /// Grants neither expired nor revoked, oldest first.
    pub grants: Vec<Grant>,
}

fn list_grants(args: ListArgs) -> Result<Structured<Grants>, ToolError> {
    // An agent that is not an admin sees only its own grants.
    let caller = toolmesh_sdk::caller::get();
    let agent = match (args.agent, caller.admin) {
        (agent, true) => agent,
        (Some(a), false) if !caller.may_act_for(&a) => {
            return Err(ToolError::denied(format!(
                "agent `{}` may list only its own grants",
                caller.agent.as_deref().unwrap_or("(unnamed)")
            )));
        }
        (_, false) => caller.agent,
    };
    let args = ListArgs { agent };
    let now = toolmesh_sdk::unix_time_ms();
    let mut grants = Vec::new();
    for key in kv::list_keys(GRANTS, u32::MAX)? {
        let Some(grant) = kv::get_json::<Grant>(&key)? else {
            continue;
        };
        let active = grant.revoked_at_ms.is_none() && now < grant.expires_at_ms;
        if active && args.agent.as_ref().is_none_or(|a| *a == grant.agent) {
            grants.push(grant);
        }
    }
    grants.sort_by_key(|g| g.granted_at_ms);
    Ok(Structured(Grants { grants }))
}

/// Which audit records to read.
#[derive(Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AuditArgs {
    /// Records after this sequence number (default: from the start).
    pub after: Option<u64>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<u32>,
}

/// Audit records.
#[derive(Serialize, JsonSchema)]
pub struct Trail {
    /// The records, oldest first.
    pub records: Vec<AuditRecord>,
    /// The sequence number of the newest record in the trail.
    pub last: u64,
}

fn read_audit(args: AuditArgs) -> Result<Structured<Trail>, ToolError> {
    let last = kv::log_head(AUDIT)?;
    let limit = u64::from(args.limit.unwrap_or(100).min(1000));
    let first = args.after.unwrap_or(0).saturating_add(1);
    let mut records = Vec::new();
    for seq in first..=last.min(first.saturating_add(limit).saturating_sub(1)) {
        if let Some(mut record) = kv::get_json::<AuditRecord>(&format!("{AUDIT}{seq:020}"))? {
            record.seq = seq;
            records.push(record);
        }
    }
    Ok(Structured(Trail { records, last }))
}

/// The plugin's tools.
/// The grants and the audit trail as resources (subscribe to hear of each
/// decision), and a prompt that walks an agent through asking for access.
fn offers(plugin: Plugin) -> Plugin {
    plugin
        .resource(
            Resource::new(GRANTS_URI, "grants", |_| {
                let grants = list_grants(ListArgs::default())?;
                Ok(vec![ResourceContents::json(GRANTS_URI, &grants.0)?])
            })
            .description(
                "The grants active now, without tokens (an agent sees its own; an admin all).",
            )
            .mime_type("application/json"),
        )
        .resource(
            Resource::new(AUDIT_URI, "audit", |_| {
                let trail = read_audit(AuditArgs::default())?;
                Ok(vec![ResourceContents::json(AUDIT_URI, &trail.0)?])
            })
            .description("The audit trail: every decision, oldest first.")
            .mime_type("application/json"),
        )
        .prompt(
            Prompt::new(
                "request_access",
                "Ask for a grant to a resource type: fills in the permission request.",
                |_, args| {
                    let resource = args.get("resource")?;
                    let justification = args.get("justification")?;
                    let duration = args.optional("duration_s").unwrap_or("3600");
                    let agent = toolmesh_sdk::caller::get()
                        .agent
                        .unwrap_or_else(|| "<your agent id>".into());
                    let request = serde_json::json!({
                        "agent": agent,
                        "resource": resource,
                        "justification": justification,
                        "duration_s": duration.parse::<u64>().unwrap_or(3600),
                    });
                    Ok(vec![PromptMessage::user(format!(
                        "I need access to `{resource}`. Call the tool `permission__request` \
                         with these arguments, then pass the token it returns as \
                         `_meta[\"toolmesh/token\"]` on the calls that need it:\n{request:#}"
                    ))])
                },
            )
            .title("Request access")
            .argument(
                "resource",
                "The resource type to access (e.g. `secrets`).",
                true,
            )
            .argument(
                "justification",
                "Why you need it (the policy may ask for detail).",
                true,
            )
            .argument("duration_s", "For how many seconds (default 3600).", false),
        )
}

pub fn plugin() -> Plugin {
    offers(Plugin::new())
        .tool(Tool::new(
            "request",
            "Asks for a grant: an agent, a resource type (and scope), a justification and a \
             duration. Returns a token, or the reason for refusal.",
            request,
        ))
        .tool(Tool::new(
            "validate",
            "Checks that a token is a live grant for the agent and resource type.",
            validate,
        ))
        .tool(Tool::new(
            "revoke",
            "Revokes the grant behind a token.",
            revoke,
        ))
        .tool(Tool::new(
            "list_grants",
            "Lists the grants active now (without tokens).",
            list_grants,
        ))
        .tool(Tool::new(
            "audit",
            "Reads the audit trail, oldest first.",
            read_audit,
        ))
}

toolmesh_sdk::export_plugin!(plugin);

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() {
        toolmesh_sdk::config::set_for_tests(
            r#"{
                "min_justification_chars": 3,
                "resource_types": {"secrets": {"max_duration_s": 60}},
                "roles": {"reader": {"permissions": ["secrets"]}},
                "agents": {"alice": {"roles": ["reader"]}, "bob": {}}
            }"#,
        );
    }

    fn ask(agent: &str, duration_s: u64) -> Result<Decision, ToolError> {
        request(RequestArgs {
            agent: agent.into(),
            resource: "secrets".into(),
            scope: None,
            justification: "the nightly job".into(),
            duration_s,
        })
        .map(|s| s.0)
    }

    fn check(token: &str, agent: &str) -> Result<Validity, ToolError> {
        validate(ValidateArgs {
            token: token.into(),
            agent: agent.into(),
            resource: "secrets".into(),
            scope: None,
        })
        .map(|s| s.0)
    }

    #[test]
    fn grant_validate_revoke_and_audit() {
        setup();
        let granted = ask("alice", 30).unwrap();
        let token = granted.token.unwrap();
        assert!(token.starts_with("tm_") && token.len() == 67);
        assert!(check(&token, "alice").unwrap().valid);
        let wrong_agent = check(&token, "bob").unwrap();
        assert!(!wrong_agent.valid);
        assert!(wrong_agent.reason.unwrap().contains("not for agent `bob`"));
        assert_eq!(list_grants(ListArgs::default()).unwrap().0.grants.len(), 1);
        assert!(
            revoke(RevokeArgs {
                token: token.clone()
            })
            .unwrap()
            .0
            .revoked
        );
        assert!(
            !revoke(RevokeArgs {
                token: token.clone()
            })
            .unwrap()
            .0
            .revoked
        );
        assert!(!check(&token, "alice").unwrap().valid);
        assert!(
            list_grants(ListArgs::default())
                .unwrap()
                .0
                .grants
                .is_empty()
        );
        let refused = ask("bob", 30).unwrap();
        assert!(!refused.granted && refused.token.is_none());
        let events: Vec<String> = read_audit(AuditArgs::default())
            .unwrap()
            .0
            .records
            .into_iter()
            .map(|r| r.event)
            .collect();
        assert_eq!(
            events,
            [
                "granted",
                "validated",
                "invalid",
                "revoked",
                "invalid",
                "refused"
            ]
        );
        let page = read_audit(AuditArgs {
            after: Some(4),
            limit: Some(1),
        })
        .unwrap()
        .0;
        assert_eq!(page.records.len(), 1);
        assert_eq!(page.records[0].seq, 5);
        assert_eq!(page.last, 6);
    }

    #[test]
    fn bad_input_is_an_error_and_changes_nothing() {
        setup();
        assert!(matches!(
            ask("mallory", 30),
            Err(ToolError::InvalidArguments(m)) if m.contains("unknown agent `mallory`")
        ));
        assert!(matches!(
            check("tm_nothex", "alice"),
            Err(ToolError::InvalidArguments(m)) if m.contains("malformed token")
        ));
        assert!(matches!(
            ask("alice", 0),
            Err(ToolError::InvalidArguments(_))
        ));
        assert_eq!(read_audit(AuditArgs::default()).unwrap().0.last, 0);
        assert!(kv::list_keys("", 10).unwrap().is_empty());
    }

    #[test]
    fn tokens_are_unguessable_and_only_their_hash_is_stored() {
        setup();
        let a = ask("alice", 30).unwrap().token.unwrap();
        let b = ask("alice", 30).unwrap().token.unwrap();
        assert_ne!(a, b);
        for key in kv::list_keys("", 100).unwrap() {
            let value = kv::get(&key).unwrap().unwrap();
            let text = String::from_utf8_lossy(&value);
            assert!(
                !key.contains(&a[3..]) && !text.contains(&a[3..]),
                "{key}: {text}"
            );
        }
    }
}
