//! The mesh as a tool provider (`mesh__peers`, `mesh__offers`,
//! `mesh__connect`, `mesh__publish`, `mesh__fetch`), present when the mesh
//! runs. Its tools are ordinary [`Tool`]s: the tool service validates their
//! arguments against the schemas below, gates them (`[permissions.requires]`
//! applies by qualified name) and records their usage in their aggregates,
//! like any plugin's (the `toolmesh://usage` report covers plugins only).
//! Arguments are parsed into typed structs. No plugin may be named `mesh`.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::provider::{Provider, ProviderCall, Ran, Runnable};
use crate::content_hash::ContentHash;
use crate::p2p::Mesh;
use crate::plugin::tool::{NAMESPACE_SEPARATOR, Tool};
use crate::wit::{ToolHints, ToolSpec};

/// The namespace of every mesh tool.
pub const NAMESPACE: &str = "mesh";

/// `mesh__connect`'s arguments.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConnectArgs {
    address: String,
}

/// `mesh__publish`'s arguments.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishArgs {
    plugin: Option<String>,
    weights: Option<String>,
    network: Option<String>,
}

/// `mesh__fetch`'s arguments.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FetchArgs {
    target: String,
}

/// The mesh's tools.
pub struct MeshTools {
    mesh: Arc<Mesh>,
    tools: Vec<Arc<Tool>>,
}

impl MeshTools {
    /// The tools of `mesh`.
    pub fn new(mesh: Arc<Mesh>) -> Self {
        let tools = specs()
            .into_iter()
            .map(|spec| {
                let tool = Tool::from_spec(NAMESPACE, spec)
                    .unwrap_or_else(|e| panic!("a mesh tool spec is invalid: {e}"));
                Arc::new(tool)
            })
            .collect();
        Self { mesh, tools }
    }
}

impl Provider for MeshTools {
    fn tools(&self) -> Vec<Arc<Tool>> {
        self.tools.clone()
    }

    fn resolve(&self, name: &str) -> Option<Box<dyn Runnable>> {
        let tool = self.tools.iter().find(|t| t.qualified_name == name)?;
        Some(Box::new(MeshTool {
            mesh: self.mesh.clone(),
            tool: tool.clone(),
        }))
    }
}

struct MeshTool {
    mesh: Arc<Mesh>,
    tool: Arc<Tool>,
}

impl Runnable for MeshTool {
    fn tool(&self) -> &Arc<Tool> {
        &self.tool
    }

    fn run(self: Box<Self>, call: ProviderCall) -> BoxFuture<'static, Ran> {
        async move {
            let ProviderCall {
                arguments, inputs, ..
            } = call;
            let progress = inputs.progress;
            let outcome = run(&self.mesh, &self.tool.name, &arguments, progress.as_ref()).await;
            // The sink goes with the call, so the transport's forwarder ends.
            drop(progress);
            Ran::host(outcome)
        }
        .boxed()
    }
}

fn parse<T: DeserializeOwned>(arguments: &str) -> Result<T, String> {
    serde_json::from_str(arguments).map_err(|e| format!("invalid arguments: {e}"))
}

fn encode<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// Runs mesh tool `name` (without the namespace). `Err` is a message for
/// the caller.
async fn run(
    mesh: &Mesh,
    name: &str,
    arguments: &str,
    progress: Option<&crate::capability::progress::ProgressSink>,
) -> Result<Value, String> {
    match name {
        "peers" => Ok(json!({
            "peer_id": mesh.peer_id().to_string(),
            "addresses": mesh.addresses().iter().map(ToString::to_string).collect::<Vec<_>>(),
            "peers": encode(&mesh.peers()),
        })),
        "offers" => Ok(json!({
            "provided": encode(&mesh.provided()),
            "offered": encode(&mesh.offers()),
        })),
        "connect" => {
            let ConnectArgs { address } = parse(arguments)?;
            let address = address
                .parse()
                .map_err(|e| format!("`{address}` is not a multiaddr: {e}"))?;
            mesh.connect(address).await?;
            Ok(json!({"connected": true}))
        }
        "publish" => {
            let offer = match parse::<PublishArgs>(arguments)? {
                PublishArgs {
                    plugin: Some(plugin),
                    weights: None,
                    network: None,
                } => mesh.publish_plugin(&plugin).await?,
                PublishArgs {
                    plugin: None,
                    weights: Some(weights),
                    network,
                } => {
                    let hash: ContentHash = weights.parse()?;
                    mesh.publish_weights(hash, network.as_deref().unwrap_or("unnamed"))
                        .await?
                }
                _ => return Err("give either `plugin`, or `weights` (and `network`)".into()),
            };
            Ok(json!({"published": encode(&offer)}))
        }
        "fetch" => {
            let FetchArgs { target } = parse(arguments)?;
            let (report, plugin) = mesh.fetch_target(&target, progress).await?;
            Ok(json!({"fetched": encode(&report), "plugin": encode(&plugin)}))
        }
        other => Err(format!(
            "unknown mesh tool `{NAMESPACE}{NAMESPACE_SEPARATOR}{other}`"
        )),
    }
}

fn hints(read_only: bool) -> ToolHints {
    ToolHints {
        read_only,
        destructive: false,
        idempotent: read_only,
        open_world: true,
    }
}

/// A host tool's spec (no title, no output schema, no client needs).
pub(crate) fn spec(name: &str, description: &str, schema: Value, read_only: bool) -> ToolSpec {
    ToolSpec {
        name: name.into(),
        title: None,
        description: description.into(),
        input_schema: schema.to_string(),
        output_schema: None,
        hints: hints(read_only),
        needs: Vec::new(),
    }
}

/// The mesh tools' specs.
fn specs() -> Vec<ToolSpec> {
    let empty = || json!({"type": "object", "properties": {}, "additionalProperties": false});
    vec![
        spec(
            "peers",
            "This host's peer id and addresses, and the peers it knows: addresses, whether \
             connected, when last heard from, strikes for misbehaviour, how much each offers.",
            empty(),
            true,
        ),
        spec(
            "offers",
            "What this host provides, and what peers offer (plugins with name, version, \
             publisher and install status; neural weights with network and topology), each \
             with its blake3 hash and providers.",
            empty(),
            true,
        ),
        spec(
            "connect",
            "Connects to a peer by multiaddr, e.g. /ip4/10.0.0.2/tcp/4001/p2p/12D3Koo…",
            json!({
                "type": "object",
                "properties": {"address": {"type": "string", "description": "The peer's multiaddr."}},
                "required": ["address"],
                "additionalProperties": false
            }),
            false,
        ),
        spec(
            "publish",
            "Offers something to the mesh: an installed plugin by name, or a neural weights \
             blob by hash (with the network's name). Peers that trust the plugin's publisher \
             install it.",
            json!({
                "type": "object",
                "properties": {
                    "plugin": {"type": "string", "description": "An installed plugin's name."},
                    "weights": {"type": "string", "description": "A weights blob hash (blake3:…)."},
                    "network": {"type": "string", "description": "The network the weights belong to."}
                },
                "additionalProperties": false
            }),
            false,
        ),
        spec(
            "fetch",
            "Fetches a blob from peers by hash, or what a peer offers by plugin or network \
             name: verified chunk by chunk, from several providers, with progress. A plugin is \
             then installed if signed by a trusted publisher; weights can be loaded with \
             neural__load_weights.",
            json!({
                "type": "object",
                "properties": {"target": {"type": "string", "description": "blake3:… hash, plugin name or network name."}},
                "required": ["target"],
                "additionalProperties": false
            }),
            false,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_plugin_can_take_the_mesh_namespace() {
        assert!(crate::plugin::manifest::RESERVED_NAMES.contains(&NAMESPACE));
    }

    #[test]
    fn every_mesh_spec_is_a_valid_tool_and_rejects_unknown_arguments() {
        for spec in specs() {
            let tool = Tool::from_spec(NAMESPACE, spec).unwrap();
            assert!(tool.qualified_name.starts_with("mesh__"));
            let extra = json!({"address": "/ip4/1.2.3.4/tcp/1", "target": "x", "bogus": 1});
            let problems = tool.validate_arguments(&extra).unwrap_err();
            assert!(
                problems.contains("bogus"),
                "{}: {problems}",
                tool.qualified_name
            );
        }
    }
}
