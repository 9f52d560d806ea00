//! The host's enforcement around a tool call, using the core plugins as the
//! authorities:
//!
//! - **Grants.** A tool needs a grant when its manifest says so
//!   (`[tools.<tool>] requires = "<resource type>"`) or the operator does
//!   (`[permissions.requires]`). The caller passes `toolmesh/agent` and
//!   `toolmesh/token` in the request's `_meta`; before the tool runs, the host
//!   asks the permission plugin's `validate` tool. No token, or an invalid
//!   one, and the call is refused with the reason.
//! - **Metering.** With `[metering] enabled = true`, each call is charged to
//!   the caller's budget (`_meta` `toolmesh/budget`, else `toolmesh/agent`)
//!   through the budget plugin: a fixed price per tool from
//!   `[metering.prices]`, or the fuel it used divided by `fuel_per_unit`. A
//!   call whose budget cannot pay is refused before it runs; the charge is
//!   recorded after it ran (calls in flight together may overdraw by their
//!   own cost).
//!
//! Calls to plugins in `metering.exempt` (the core plugins, by default) are
//! never charged, so agents can always see and manage their budgets.

use serde_json::{Value, json};

use super::tools::{CallMeta, ToolHost};
use crate::config::{MeteringConfig, PermissionsConfig};
use crate::plugin::LoadedPlugin;
use crate::plugin::tool::Tool;

/// The `_meta` key naming the calling agent.
pub const META_AGENT: &str = "toolmesh/agent";
/// The `_meta` key carrying a permission grant token.
pub const META_TOKEN: &str = "toolmesh/token";
/// The `_meta` key naming the budget to charge.
pub const META_BUDGET: &str = "toolmesh/budget";

/// What the host enforces.
#[derive(Debug, Clone, Default)]
pub struct Enforcement {
    permissions: PermissionsConfig,
    metering: MeteringConfig,
}

/// A charge to settle after the call.
#[derive(Debug)]
pub struct Charge {
    budget: String,
    price: Option<u64>,
}

impl Enforcement {
    /// Enforcement as configured.
    pub fn new(permissions: PermissionsConfig, metering: MeteringConfig) -> Self {
        Self {
            permissions,
            metering,
        }
    }

    /// The resource type a grant must be for to call `tool`, if any.
    pub fn required_resource<'a>(&'a self, tool: &'a Tool) -> Option<&'a str> {
        self.permissions
            .requires
            .get(&tool.qualified_name)
            .or(tool.requires.as_ref())
            .map(String::as_str)
    }

    /// Checks that the call may run: its grant, then its budget. `Err` is
    /// the refusal, for the agent to read; `Ok(Some)` is a charge to settle.
    pub async fn admit(
        &self,
        host: &ToolHost,
        plugin: &LoadedPlugin,
        tool: &Tool,
        meta: &CallMeta,
    ) -> Result<Option<Charge>, String> {
        if let Some(resource) = self.required_resource(tool) {
            self.check_grant(host, tool, resource, meta).await?;
        }
        if !self.metering.enabled || self.metering.exempt.contains(&plugin.manifest.name) {
            return Ok(None);
        }
        let Some(budget) = meta.budget.as_ref().or(meta.agent.as_ref()) else {
            return Err(format!(
                "denied: metering is on and `{}` is charged to the caller's budget: pass \
                 `{META_BUDGET}` (or `{META_AGENT}`) in the request's _meta",
                tool.qualified_name
            ));
        };
        let price = self.metering.prices.get(&tool.qualified_name).copied();
        let status = host
            .call_internal(
                &format!("{}__status", self.metering.plugin),
                json!({ "id": budget }),
            )
            .await
            .map_err(|e| format!("denied: cannot charge budget `{budget}`: {e}"))?;
        let remaining = status.get("remaining").and_then(Value::as_u64).unwrap_or(0);
        let needed = price.unwrap_or(1);
        if remaining < needed {
            return Err(format!(
                "denied: over budget: `{budget}` has {remaining} remaining; `{}` costs {}",
                tool.qualified_name,
                price.map_or_else(|| "at least 1".to_owned(), |p| p.to_string())
            ));
        }
        Ok(Some(Charge {
            budget: budget.clone(),
            price,
        }))
    }

    async fn check_grant(
        &self,
        host: &ToolHost,
        tool: &Tool,
        resource: &str,
        meta: &CallMeta,
    ) -> Result<(), String> {
        let (Some(agent), Some(token)) = (&meta.agent, &meta.token) else {
            return Err(format!(
                "denied: `{}` needs a permission grant for `{resource}`: pass `{META_AGENT}` and \
                 `{META_TOKEN}` in the request's _meta (ask `{}__request` for a token)",
                tool.qualified_name, self.permissions.plugin
            ));
        };
        let verdict = host
            .call_internal(
                &format!("{}__validate", self.permissions.plugin),
                json!({ "token": token, "agent": agent, "resource": resource }),
            )
            .await
            .map_err(|e| format!("denied: the grant could not be checked: {e}"))?;
        if verdict.get("valid").and_then(Value::as_bool) == Some(true) {
            return Ok(());
        }
        let reason = verdict
            .get("reason")
            .and_then(Value::as_str)
            .unwrap_or("the permission plugin said no");
        Err(format!("denied: no valid grant for `{resource}`: {reason}"))
    }

    /// Records the call's cost against its budget.
    pub async fn settle(&self, host: &ToolHost, charge: Charge, fuel: u64) {
        let amount = charge
            .price
            .unwrap_or_else(|| fuel.div_ceil(self.metering.fuel_per_unit));
        if amount == 0 {
            return;
        }
        let report = json!({ "id": charge.budget, "amount": amount, "allow_overdraft": true });
        if let Err(e) = host
            .call_internal(
                &format!("{}__report_spending", self.metering.plugin),
                report,
            )
            .await
        {
            tracing::warn!(budget = %charge.budget, amount, "charge not recorded: {e}");
        }
    }
}
