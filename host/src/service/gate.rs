//! The gate every call passes before it runs, with the core plugins as the
//! authorities:
//!
//! - **Grants.** A tool needs a grant when its manifest says so
//!   (`[tools.<tool>] requires = "<resource type>"`) or the operator does
//!   (`[permissions.requires]`, by qualified name: plugin and host tools
//!   alike). The caller passes `toolmesh/agent` and `toolmesh/token` in the
//!   request's `_meta`; before the tool runs, the host asks the permission
//!   plugin. No token, or an invalid one, and the call is refused with the
//!   reason.
//! - **Metering.** With `[metering] enabled = true`, each call is charged to
//!   the caller's budget (`_meta` `toolmesh/budget`, else `toolmesh/agent`)
//!   through the budget plugin: a fixed price per tool from
//!   `[metering.prices]`, or the fuel it used divided by `fuel_per_unit`. A
//!   call whose budget cannot pay is refused before it runs; the charge is
//!   recorded after it ran (calls in flight together may overdraw by their
//!   own cost).
//!
//! Calls to tools in `metering.exempt` namespaces (the core plugins and the
//! mesh, by default) are never charged, so agents can always see and manage
//! their budgets. A core plugin that answers in a shape the host does not
//! understand makes the call fail with an error, not a denial.

use super::CallMeta;
use super::core_plugins::{CoreError, CorePlugins, GrantCheck};
use crate::config::{MeteringConfig, PermissionsConfig};
use crate::plugin::tool::Tool;

/// The `_meta` key naming the calling agent.
pub const META_AGENT: &str = "toolmesh/agent";
/// The `_meta` key carrying a permission grant token.
pub const META_TOKEN: &str = "toolmesh/token";
/// The `_meta` key naming the budget to charge.
pub const META_BUDGET: &str = "toolmesh/budget";

/// What the gate enforces, and whom it asks.
#[derive(Clone)]
pub struct Gate {
    permissions: PermissionsConfig,
    metering: MeteringConfig,
    core: CorePlugins,
}

/// Why a call may not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The caller may not make it (no grant, an invalid one, no budget).
    Denied(String),
    /// The host could not decide (a core plugin answered nonsense).
    Failed(String),
}

/// A charge to settle after the call.
#[derive(Debug)]
pub struct Charge {
    budget: String,
    price: Option<u64>,
}

impl Gate {
    /// A gate as configured, asking `core`.
    pub fn new(
        permissions: PermissionsConfig,
        metering: MeteringConfig,
        core: CorePlugins,
    ) -> Self {
        Self {
            permissions,
            metering,
            core,
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

    /// Checks that the call may run: its grant, then its budget.
    /// `Ok(Some)` is a charge to settle once it ran.
    pub async fn admit(&self, tool: &Tool, meta: &CallMeta) -> Result<Option<Charge>, Refusal> {
        if meta.operator {
            return Ok(None);
        }
        if let Some(resource) = self.required_resource(tool) {
            self.check_grant(tool, resource, meta).await?;
        }
        if !self.metering.enabled || self.metering.exempt.contains(&tool.namespace) {
            return Ok(None);
        }
        let Some(budget) = meta.budget.as_ref().or(meta.agent.as_ref()) else {
            return Err(Refusal::Denied(format!(
                "denied: metering is on and `{}` is charged to the caller's budget: pass \
                 `{META_BUDGET}` (or `{META_AGENT}`) in the request's _meta",
                tool.qualified_name
            )));
        };
        let price = self.metering.prices.get(&tool.qualified_name).copied();
        let status = self.core.budget_status(budget).await.map_err(|e| match e {
            CoreError::Failed(e) => {
                Refusal::Denied(format!("denied: cannot charge budget `{budget}`: {e}"))
            }
            malformed => Refusal::Failed(format!("cannot charge budget `{budget}`: {malformed}")),
        })?;
        let needed = price.unwrap_or(1);
        if status.remaining < needed {
            return Err(Refusal::Denied(format!(
                "denied: over budget: `{budget}` has {} remaining; `{}` costs {}",
                status.remaining,
                tool.qualified_name,
                price.map_or_else(|| "at least 1".to_owned(), |p| p.to_string())
            )));
        }
        Ok(Some(Charge {
            budget: budget.clone(),
            price,
        }))
    }

    async fn check_grant(
        &self,
        tool: &Tool,
        resource: &str,
        meta: &CallMeta,
    ) -> Result<(), Refusal> {
        let (Some(agent), Some(token)) = (&meta.agent, &meta.token) else {
            return Err(Refusal::Denied(format!(
                "denied: `{}` needs a permission grant for `{resource}`: pass `{META_AGENT}` and \
                 `{META_TOKEN}` in the request's _meta (ask `{}__request` for a token)",
                tool.qualified_name,
                self.core.permission_plugin()
            )));
        };
        let check = GrantCheck {
            token,
            agent,
            resource,
        };
        let verdict = self.core.validate_grant(check).await.map_err(|e| match e {
            CoreError::Failed(e) => {
                Refusal::Denied(format!("denied: the grant could not be checked: {e}"))
            }
            malformed => Refusal::Failed(format!("the grant could not be checked: {malformed}")),
        })?;
        if verdict.valid {
            return Ok(());
        }
        let reason = verdict
            .reason
            .unwrap_or_else(|| "the permission plugin said no".into());
        Err(Refusal::Denied(format!(
            "denied: no valid grant for `{resource}`: {reason}"
        )))
    }

    /// Records the call's cost against its budget.
    pub async fn settle(&self, charge: Charge, fuel: u64) {
        let amount = charge
            .price
            .unwrap_or_else(|| fuel.div_ceil(self.metering.fuel_per_unit));
        if amount == 0 {
            return;
        }
        if let Err(e) = self.core.report_spending(&charge.budget, amount).await {
            tracing::warn!(budget = %charge.budget, amount, "charge not recorded: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    use futures::FutureExt;
    use futures::future::BoxFuture;
    use serde_json::{Value, json};

    use super::*;
    use crate::service::core_plugins::CoreCaller;
    use crate::wit::{ToolHints, ToolSpec};

    /// Core plugins that answer each tool with a fixed JSON value (or
    /// failure), and remember what they were asked.
    #[derive(Default)]
    struct FakeCore {
        answers: BTreeMap<&'static str, Result<Value, String>>,
        asked: Mutex<Vec<(String, Value)>>,
    }

    impl CoreCaller for FakeCore {
        fn call(&self, tool: String, arguments: Value) -> BoxFuture<'_, Result<Value, String>> {
            let answer = self
                .answers
                .get(tool.as_str())
                .cloned()
                .unwrap_or_else(|| Err(format!("`{tool}` is not loaded")));
            self.asked.lock().unwrap().push((tool, arguments));
            async move { answer }.boxed()
        }
    }

    fn tool(namespace: &str) -> Tool {
        let spec = ToolSpec {
            name: "work".into(),
            title: None,
            description: "d".into(),
            input_schema: r#"{"type":"object"}"#.into(),
            output_schema: None,
            hints: ToolHints {
                read_only: false,
                destructive: false,
                idempotent: false,
                open_world: false,
            },
            needs: Vec::new(),
        };
        Tool::from_spec(namespace, spec).unwrap()
    }

    fn gate(core: Arc<FakeCore>, metering: bool) -> Gate {
        let permissions = PermissionsConfig {
            requires: [("tools__work".to_owned(), "work".to_owned())].into(),
            ..PermissionsConfig::default()
        };
        let metering = MeteringConfig {
            enabled: metering,
            ..MeteringConfig::default()
        };
        Gate::new(
            permissions,
            metering,
            CorePlugins::new(core, "permission", "budget"),
        )
    }

    fn meta(token: Option<&str>) -> CallMeta {
        CallMeta {
            agent: Some("agent-1".into()),
            token: token.map(Into::into),
            ..CallMeta::default()
        }
    }

    fn run<T>(future: impl Future<Output = T>) -> T {
        futures::executor::block_on(future)
    }

    fn denied(refusal: Result<Option<Charge>, Refusal>) -> String {
        match refusal {
            Err(Refusal::Denied(message)) => message,
            other => panic!("expected a denial, got {other:?}"),
        }
    }

    #[test]
    fn a_missing_token_is_denied_without_asking() {
        let core = Arc::new(FakeCore::default());
        let message = denied(run(
            gate(core.clone(), false).admit(&tool("tools"), &meta(None))
        ));
        assert!(
            message.contains("needs a permission grant for `work`"),
            "{message}"
        );
        assert!(message.contains("permission__request"), "{message}");
        assert!(core.asked.lock().unwrap().is_empty());
    }

    #[test]
    fn the_operator_passes_without_a_grant_or_a_budget() {
        let core = Arc::new(FakeCore::default());
        let operator = CallMeta {
            operator: true,
            ..CallMeta::default()
        };
        assert!(matches!(
            run(gate(core.clone(), true).admit(&tool("tools"), &operator)),
            Ok(None)
        ));
        assert!(core.asked.lock().unwrap().is_empty());
    }

    #[test]
    fn an_invalid_token_is_denied_with_the_plugins_reason() {
        let core = Arc::new(FakeCore {
            answers: [(
                "permission__validate",
                Ok(json!({"valid": false, "reason": "expired"})),
            )]
            .into(),
            ..FakeCore::default()
        });
        let message = denied(run(
            gate(core.clone(), false).admit(&tool("tools"), &meta(Some("t0k")))
        ));
        assert_eq!(message, "denied: no valid grant for `work`: expired");
        let asked = core.asked.lock().unwrap();
        assert_eq!(
            asked[0],
            (
                "permission__validate".to_owned(),
                json!({"token": "t0k", "agent": "agent-1", "resource": "work"})
            )
        );
    }

    #[test]
    fn a_valid_token_admits_and_other_tools_need_none() {
        let core = Arc::new(FakeCore {
            answers: [("permission__validate", Ok(json!({"valid": true})))].into(),
            ..FakeCore::default()
        });
        let gate = gate(core, false);
        assert!(matches!(
            run(gate.admit(&tool("tools"), &meta(Some("t")))),
            Ok(None)
        ));
        assert!(matches!(
            run(gate.admit(&tool("other"), &meta(None))),
            Ok(None)
        ));
    }

    #[test]
    fn over_budget_is_denied_and_exempt_namespaces_are_not_charged() {
        let core = Arc::new(FakeCore {
            answers: [(
                "budget__status",
                Ok(json!({"id": "agent-1", "remaining": 0})),
            )]
            .into(),
            ..FakeCore::default()
        });
        let gate = gate(core.clone(), true);
        let message = denied(run(gate.admit(&tool("other"), &meta(None))));
        assert!(
            message.contains("over budget: `agent-1` has 0 remaining"),
            "{message}"
        );
        for exempt in ["budget", "permission", "discovery", "mesh"] {
            assert!(matches!(
                run(gate.admit(&tool(exempt), &meta(None))),
                Ok(None)
            ));
        }
        assert_eq!(
            core.asked.lock().unwrap().len(),
            1,
            "exempt calls ask nothing"
        );
    }

    #[test]
    fn a_budget_that_can_pay_yields_a_charge_settled_through_the_plugin() {
        let core = Arc::new(FakeCore {
            answers: [
                ("budget__status", Ok(json!({"remaining": 5}))),
                ("budget__report_spending", Ok(json!({"remaining": 4}))),
            ]
            .into(),
            ..FakeCore::default()
        });
        let gate = gate(core.clone(), true);
        let charge = run(gate.admit(&tool("other"), &meta(None)))
            .unwrap()
            .expect("a charge");
        run(gate.settle(charge, 1_500_000));
        let asked = core.asked.lock().unwrap();
        assert_eq!(
            asked[1],
            (
                "budget__report_spending".to_owned(),
                json!({"id": "agent-1", "amount": 2, "allow_overdraft": true})
            )
        );
    }

    #[test]
    fn an_unknown_budget_is_a_denial_but_a_malformed_status_is_an_error() {
        let unknown = Arc::new(FakeCore {
            answers: [("budget__status", Err("failed: no budget `agent-1`".into()))].into(),
            ..FakeCore::default()
        });
        let message = denied(run(gate(unknown, true).admit(&tool("other"), &meta(None))));
        assert!(
            message.contains("cannot charge budget `agent-1`"),
            "{message}"
        );

        // A renamed field (`left` for `remaining`) must not read as "over budget".
        let renamed = Arc::new(FakeCore {
            answers: [("budget__status", Ok(json!({"left": 100})))].into(),
            ..FakeCore::default()
        });
        match run(gate(renamed, true).admit(&tool("other"), &meta(None))) {
            Err(Refusal::Failed(message)) => {
                assert!(
                    message.contains("`budget__status` answered in a shape"),
                    "{message}"
                );
                assert!(message.contains("missing field `remaining`"), "{message}");
            }
            other => panic!("expected an error, got {other:?}"),
        }
        let malformed_verdict = Arc::new(FakeCore {
            answers: [("permission__validate", Ok(json!({"ok": true})))].into(),
            ..FakeCore::default()
        });
        match run(gate(malformed_verdict, false).admit(&tool("tools"), &meta(Some("t")))) {
            Err(Refusal::Failed(message)) => {
                assert!(message.contains("missing field `valid`"), "{message}");
            }
            other => panic!("expected an error, got {other:?}"),
        }
    }
}
