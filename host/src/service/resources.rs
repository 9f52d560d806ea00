//! The resources the host serves: `toolmesh://usage` (usage aggregates) and
//! each plugin's manifest-declared resources (`toolmesh://<plugin>/<name>`),
//! each read by calling the tool behind it for the host.

use rmcp::model::{ReadResourceResult, Resource, ResourceContents};

use super::ToolService;
use crate::plugin::Snapshot;

/// The resource that serves usage aggregates.
pub const USAGE_URI: &str = "toolmesh://usage";

/// The URI of resource `name` of plugin `plugin`.
pub fn plugin_resource_uri(plugin: &str, name: &str) -> String {
    format!("toolmesh://{plugin}/{name}")
}

/// Why a resource could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    /// No such resource.
    #[error("no resource `{0}`; resources/list shows the resources")]
    NotFound(String),
    /// Reading it failed.
    #[error("reading `{uri}` failed: {reason}")]
    Failed {
        /// The resource.
        uri: String,
        /// Why.
        reason: String,
    },
}

/// Every resource, for `resources/list`.
pub fn list(service: &ToolService) -> Vec<Resource> {
    let snapshot = service.plugins().registry().snapshot();
    let usage = Resource::new(USAGE_URI, "usage")
        .with_title("Tool usage")
        .with_description(
            "Per plugin and per tool: calls, errors by outcome, latency percentiles, fuel, \
             peak memory, bytes in and out; and the host process's memory and CPU.",
        )
        .with_mime_type("application/json");
    let mut resources = vec![usage];
    for plugin in snapshot.plugins() {
        for r in &plugin.manifest.resources {
            resources.push(
                Resource::new(
                    plugin_resource_uri(&plugin.manifest.name, &r.name),
                    r.name.clone(),
                )
                .with_description(r.description.clone())
                .with_mime_type("application/json"),
            );
        }
    }
    resources
}

/// Reads resource `uri`.
pub async fn read(service: &ToolService, uri: &str) -> Result<ReadResourceResult, ResourceError> {
    let failed = |reason: String| ResourceError::Failed {
        uri: uri.to_owned(),
        reason,
    };
    let text = if uri == USAGE_URI {
        serde_json::to_string_pretty(&service.usage_report())
    } else {
        let tool = backing_tool(&service.plugins().registry().snapshot(), uri)
            .ok_or_else(|| ResourceError::NotFound(uri.to_owned()))?;
        let value = service
            .plugins()
            .call_internal(&tool, serde_json::json!({}))
            .await
            .map_err(failed)?;
        serde_json::to_string_pretty(&value)
    }
    .map_err(|e| failed(e.to_string()))?;
    let contents = ResourceContents::text(text, uri).with_mime_type("application/json");
    Ok(ReadResourceResult::new(vec![contents]))
}

/// The qualified name of the tool behind plugin resource `uri`.
fn backing_tool(snapshot: &Snapshot, uri: &str) -> Option<String> {
    let (plugin, name) = uri.strip_prefix("toolmesh://")?.split_once('/')?;
    let loaded = snapshot.plugin(plugin)?;
    let decl = loaded.manifest.resources.iter().find(|r| r.name == name)?;
    Some(format!("{plugin}__{}", decl.tool))
}
