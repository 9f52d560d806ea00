//! The resources the host serves: `toolmesh://usage` (usage aggregates),
//! each plugin's manifest-declared resources (`toolmesh://<plugin>/<name>`,
//! read by calling the tool behind it), and the resources and templates
//! plugins export, read by the plugin under its quotas as the caller.

use rmcp::model::{ReadResourceResult, Resource, ResourceContents, ResourceTemplate};
use tokio_util::sync::CancellationToken;

use super::{CallMeta, ToolService, content};
use crate::plugin::registry::ResourceTarget;
use crate::plugin::resource::PluginResource;
use crate::plugin::{LoadedPlugin, Snapshot};
use crate::runtime::{CallError, ReadTarget};
use crate::wit::ResourceError as GuestError;

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
    #[error("no resource `{0}`; resources/list and resources/templates/list show the resources")]
    NotFound(String),
    /// The caller may not read it.
    #[error("reading `{uri}` was denied: {reason}")]
    Denied {
        /// The resource.
        uri: String,
        /// Why.
        reason: String,
    },
    /// Reading it failed.
    #[error("reading `{uri}` failed: {reason}")]
    Failed {
        /// The resource.
        uri: String,
        /// Why.
        reason: String,
    },
}

/// Every fixed resource, for `resources/list`.
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
            let uri = plugin_resource_uri(&plugin.manifest.name, &r.name);
            // A resource the plugin serves itself takes the name.
            if snapshot.resource(&uri).is_some() {
                continue;
            }
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
    resources.extend(snapshot.resources().map(|(_, r)| describe(r)));
    resources
}

fn describe(resource: &PluginResource) -> Resource {
    let spec = &resource.spec;
    let mut out = Resource::new(resource.public_uri.clone(), spec.name.clone());
    out.title = spec.title.clone();
    out.description = spec.description.clone();
    out.mime_type = spec.mime_type.clone();
    out.size = spec.size;
    out.annotations = spec.annotations.clone().map(content::annotations);
    out
}

/// Every resource template, for `resources/templates/list`.
pub fn templates(service: &ToolService) -> Vec<ResourceTemplate> {
    let snapshot = service.plugins().registry().snapshot();
    snapshot
        .templates()
        .map(|(_, template)| {
            let spec = &template.spec;
            let mut out =
                ResourceTemplate::new(template.public_template.clone(), spec.name.clone());
            out.title = spec.title.clone();
            out.description = spec.description.clone();
            out.mime_type = spec.mime_type.clone();
            out.annotations = spec.annotations.clone().map(content::annotations);
            out
        })
        .collect()
}

/// Whether `uri` names a resource (fixed, or matching a template) that
/// clients may subscribe to.
pub fn exists(service: &ToolService, uri: &str) -> bool {
    let snapshot = service.plugins().registry().snapshot();
    uri == USAGE_URI || snapshot.resource(uri).is_some() || backing_tool(&snapshot, uri).is_some()
}

/// Reads resource `uri` for the caller `meta` describes.
pub async fn read(
    service: &ToolService,
    uri: &str,
    meta: CallMeta,
    cancel: &CancellationToken,
) -> Result<ReadResourceResult, ResourceError> {
    let failed = |reason: String| ResourceError::Failed {
        uri: uri.to_owned(),
        reason,
    };
    let snapshot = service.plugins().registry().snapshot();
    let (plugin, own_uri, template, variables) = match snapshot.resource(uri) {
        Some(ResourceTarget::Fixed(plugin, resource)) => {
            (plugin, resource.spec.uri.clone(), None, Vec::new())
        }
        Some(ResourceTarget::Templated {
            plugin,
            template,
            uri,
            variables,
        }) => (plugin, uri, Some(template), variables),
        None => return read_host_resource(service, &snapshot, uri).await,
    };
    let target = ReadTarget {
        uri: &own_uri,
        template: template.map(|t| t.spec.uri_template.as_str()),
        variables: &variables,
    };
    let (ctx, inputs) = meta.into_call().map_err(|reason| ResourceError::Denied {
        uri: uri.to_owned(),
        reason,
    })?;
    let contents = service
        .plugins()
        .read_resource(plugin, target, &ctx, inputs, cancel)
        .await
        .map_err(|e| match e {
            CallError::Resource(GuestError::NotFound(_)) => ResourceError::NotFound(uri.to_owned()),
            CallError::Resource(GuestError::Denied(reason)) => ResourceError::Denied {
                uri: uri.to_owned(),
                reason,
            },
            other => failed(other.to_string()),
        })?;
    Ok(ReadResourceResult::new(plugin_contents(plugin, contents)))
}

fn plugin_contents(
    plugin: &LoadedPlugin,
    contents: Vec<crate::wit::ResourceContents>,
) -> Vec<ResourceContents> {
    contents
        .into_iter()
        .map(|c| content::contents(&plugin.namespace, c))
        .collect()
}

/// Reads one of the host's own resources (usage, manifest resources).
async fn read_host_resource(
    service: &ToolService,
    snapshot: &Snapshot,
    uri: &str,
) -> Result<ReadResourceResult, ResourceError> {
    let failed = |reason: String| ResourceError::Failed {
        uri: uri.to_owned(),
        reason,
    };
    let text = if uri == USAGE_URI {
        serde_json::to_string_pretty(&service.usage_report())
    } else {
        let tool =
            backing_tool(snapshot, uri).ok_or_else(|| ResourceError::NotFound(uri.to_owned()))?;
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
