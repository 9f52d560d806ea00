//! Typed clients for the host's own calls into the core plugins: check a
//! permission grant (`permission__validate`), read a budget
//! (`budget__status`), charge it (`budget__report_spending`). Requests are
//! serialized from and answers parsed into the types below, so a host and a
//! plugin that disagree about a field fail loudly with an error that says
//! so, never silently as "denied".
//!
//! The calls go through a [`CoreCaller`]: the plugin registry in a running
//! host, a fake in unit tests.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::plugins::PluginTools;

/// Runs a tool for the host itself and returns its structured result, or
/// its error text.
pub trait CoreCaller: Send + Sync + 'static {
    /// Calls `tool` with `arguments`.
    fn call(&self, tool: String, arguments: Value) -> BoxFuture<'_, Result<Value, String>>;
}

impl CoreCaller for PluginTools {
    fn call(&self, tool: String, arguments: Value) -> BoxFuture<'_, Result<Value, String>> {
        async move { self.call_internal(&tool, arguments).await }.boxed()
    }
}

/// Why a core plugin did not answer a question.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// The call failed (the plugin is not loaded, or the tool said no).
    #[error("{0}")]
    Failed(String),
    /// It answered in a shape this host does not understand.
    #[error(
        "`{tool}` answered in a shape this host does not understand ({problem}): the plugin and \
         the host do not match; install the plugin version this host was built with"
    )]
    Malformed {
        /// The tool.
        tool: String,
        /// What did not parse.
        problem: String,
    },
}

/// A grant to check.
#[derive(Debug, Serialize)]
pub struct GrantCheck<'a> {
    /// The token presented.
    pub token: &'a str,
    /// The agent presenting it.
    pub agent: &'a str,
    /// The resource type it must be for.
    pub resource: &'a str,
}

/// The permission plugin's verdict on a grant.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct GrantVerdict {
    /// Whether the grant is good.
    pub valid: bool,
    /// Why not.
    #[serde(default)]
    pub reason: Option<String>,
}

/// What the host reads of a budget.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BudgetStatus {
    /// Neither spent nor allocated.
    pub remaining: u64,
}

#[derive(Serialize)]
struct BudgetId<'a> {
    id: &'a str,
}

#[derive(Serialize)]
struct Spending<'a> {
    id: &'a str,
    amount: u64,
    allow_overdraft: bool,
}

/// The core plugins, as the host asks them.
#[derive(Clone)]
pub struct CorePlugins {
    caller: Arc<dyn CoreCaller>,
    permission: String,
    budget: String,
}

impl CorePlugins {
    /// Asks the permission plugin `permission` and the budget plugin
    /// `budget` through `caller`.
    pub fn new(caller: Arc<dyn CoreCaller>, permission: &str, budget: &str) -> Self {
        Self {
            caller,
            permission: permission.to_owned(),
            budget: budget.to_owned(),
        }
    }

    /// The permission plugin's name.
    pub fn permission_plugin(&self) -> &str {
        &self.permission
    }

    /// Whether `check`'s grant is valid.
    pub async fn validate_grant(&self, check: GrantCheck<'_>) -> Result<GrantVerdict, CoreError> {
        self.ask(&self.permission, "validate", &check).await
    }

    /// Budget `id`'s status.
    pub async fn budget_status(&self, id: &str) -> Result<BudgetStatus, CoreError> {
        self.ask(&self.budget, "status", &BudgetId { id }).await
    }

    /// Charges `amount` to budget `id` (it may go over its limit: the call
    /// has already run). The answer (the budget after) is not needed.
    pub async fn report_spending(&self, id: &str, amount: u64) -> Result<(), CoreError> {
        let spending = Spending {
            id,
            amount,
            allow_overdraft: true,
        };
        let _: serde::de::IgnoredAny = self.ask(&self.budget, "report_spending", &spending).await?;
        Ok(())
    }

    async fn ask<R: DeserializeOwned>(
        &self,
        plugin: &str,
        tool: &str,
        request: &impl Serialize,
    ) -> Result<R, CoreError> {
        let tool = format!("{plugin}__{tool}");
        let arguments = serde_json::to_value(request).map_err(|e| CoreError::Malformed {
            tool: tool.clone(),
            problem: format!("the request does not encode: {e}"),
        })?;
        let answer = self
            .caller
            .call(tool.clone(), arguments)
            .await
            .map_err(CoreError::Failed)?;
        serde_json::from_value(answer).map_err(|e| CoreError::Malformed {
            tool,
            problem: e.to_string(),
        })
    }
}
