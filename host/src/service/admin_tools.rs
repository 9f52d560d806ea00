//! The admin tools (`admin__plugins`, `admin__plugin`, `admin__events`,
//! `admin__alerts`, `admin__ack_alert`): the operator's lifecycle and
//! alert actions as MCP tools, for clients with the `admin` scope (the
//! local user over stdio and the control socket; over HTTP, keys and
//! tokens with `admin`). Everyone else is refused. Plugins cannot call
//! tools at all, so they never reach these.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::mesh_tools::spec;
use super::provider::{Provider, ProviderCall, Ran, Runnable};
use crate::identity::Caller;
use crate::ops::control::{Action, PluginControl};
use crate::ops::view;
use crate::plugin::tool::Tool;
use crate::wit::ToolSpec;

/// The namespace of every admin tool.
pub const NAMESPACE: &str = "admin";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PluginArgs {
    plugin: String,
    action: String,
    reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsArgs {
    limit: Option<usize>,
    plugin: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AckArgs {
    id: u64,
}

/// The admin tools.
pub struct AdminTools {
    control: Arc<PluginControl>,
    tools: Vec<Arc<Tool>>,
}

impl AdminTools {
    /// The admin tools over `control`.
    pub fn new(control: Arc<PluginControl>) -> Self {
        let tools = specs()
            .into_iter()
            .map(|spec| {
                let tool = Tool::from_spec(NAMESPACE, spec)
                    .unwrap_or_else(|e| panic!("an admin tool spec is invalid: {e}"));
                Arc::new(tool)
            })
            .collect();
        Self { control, tools }
    }
}

impl Provider for AdminTools {
    fn tools(&self) -> Vec<Arc<Tool>> {
        self.tools.clone()
    }

    fn resolve(&self, name: &str) -> Option<Box<dyn Runnable>> {
        let tool = self.tools.iter().find(|t| t.qualified_name == name)?;
        Some(Box::new(AdminTool {
            control: self.control.clone(),
            tool: tool.clone(),
        }))
    }
}

struct AdminTool {
    control: Arc<PluginControl>,
    tool: Arc<Tool>,
}

impl Runnable for AdminTool {
    fn tool(&self) -> &Arc<Tool> {
        &self.tool
    }

    fn run(self: Box<Self>, call: ProviderCall) -> BoxFuture<'static, Ran> {
        async move {
            let caller = call.inputs.caller.clone();
            let outcome = if caller.admin {
                run(&self.control, &self.tool.name, &call.arguments, &caller).await
            } else {
                Err(format!(
                    "denied: `{}` is an admin tool; this client lacks the admin scope",
                    self.tool.qualified_name
                ))
            };
            Ran::host(outcome)
        }
        .boxed()
    }
}

fn parse<T: DeserializeOwned>(arguments: &str) -> Result<T, String> {
    serde_json::from_str(arguments).map_err(|e| format!("invalid arguments: {e}"))
}

/// Who acts, for the records: the client's name, else its agent, else the
/// local operator.
fn actor(caller: &Caller) -> String {
    caller
        .client
        .clone()
        .or_else(|| caller.agent.clone())
        .unwrap_or_else(|| "operator".into())
}

async fn run(
    control: &PluginControl,
    name: &str,
    arguments: &str,
    caller: &Caller,
) -> Result<Value, String> {
    let ops = control.operations();
    match name {
        "plugins" => Ok(json!({"plugins": view::plugins(control)})),
        "plugin" => {
            let args: PluginArgs = parse(arguments)?;
            let action: Action = args.action.parse()?;
            let reason = Some(match args.reason {
                Some(reason) => format!("{reason} (by {})", actor(caller)),
                None => format!("by {}", actor(caller)),
            });
            let message = control.apply(&args.plugin, action, reason).await?;
            Ok(json!({"message": message, "plugin": view::plugin(control, &args.plugin)}))
        }
        "events" => {
            let args: EventsArgs = parse(arguments)?;
            let limit = args.limit.unwrap_or(100).min(crate::ops::events::KEEP);
            let events: Vec<_> = ops
                .events
                .recent(crate::ops::events::KEEP)
                .into_iter()
                .filter(|e| args.plugin.as_ref().is_none_or(|p| &e.plugin == p))
                .take(limit)
                .collect();
            Ok(json!({"events": events}))
        }
        "alerts" => Ok(json!({"alerts": ops.alerts.all()})),
        "ack_alert" => {
            let args: AckArgs = parse(arguments)?;
            let alert = ops
                .alerts
                .acknowledge(args.id, &actor(caller))
                .ok_or_else(|| format!("no alert {}", args.id))?;
            Ok(json!({"alert": alert}))
        }
        other => Err(format!("no admin tool `{other}`")),
    }
}

fn specs() -> Vec<ToolSpec> {
    vec![
        spec(
            "plugins",
            "Every plugin the host knows of, loaded or disabled: state (enabled, paused, \
             disabled), circuit breaker, level and quotas, granted and refused capabilities, \
             tools with their usage, and the last load error.",
            json!({"type": "object", "properties": {}, "additionalProperties": false}),
            true,
        ),
        spec(
            "plugin",
            "Changes a plugin's lifecycle: `enable` (load and serve a disabled plugin), \
             `disable` (unlist its tools), `pause` (keep them listed, refuse calls), `resume`, \
             `reload` (load it again from its source; a version that fails keeps the loaded \
             one serving). The state survives a restart.",
            json!({
                "type": "object",
                "properties": {
                    "plugin": {"type": "string", "description": "The plugin's name."},
                    "action": {"type": "string", "enum": ["enable", "disable", "pause", "resume", "reload"]},
                    "reason": {"type": "string", "maxLength": 1024, "description": "Why, for the lifecycle record."}
                },
                "required": ["plugin", "action"],
                "additionalProperties": false
            }),
            false,
        ),
        spec(
            "events",
            "Lifecycle events, newest first: loaded, enabled, disabled, paused, resumed, \
             reloaded, removed, failed, breaker opened, half-open and closed; each with its \
             time and reason.",
            json!({
                "type": "object",
                "properties": {
                    "limit": {"type": "integer", "minimum": 1, "maximum": 1000},
                    "plugin": {"type": "string", "description": "Only this plugin's events."}
                },
                "additionalProperties": false
            }),
            true,
        ),
        spec(
            "alerts",
            "Alerts raised by the rules in toolmesh.toml, newest first, with whether each is \
             acknowledged.",
            json!({"type": "object", "properties": {}, "additionalProperties": false}),
            true,
        ),
        spec(
            "ack_alert",
            "Acknowledges an alert by id.",
            json!({
                "type": "object",
                "properties": {"id": {"type": "integer", "minimum": 0}},
                "required": ["id"],
                "additionalProperties": false
            }),
            false,
        ),
    ]
}
