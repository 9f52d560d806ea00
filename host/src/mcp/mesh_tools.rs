//! The mesh as MCP tools (`mesh__peers`, `mesh__offers`, `mesh__connect`,
//! `mesh__publish`, `mesh__fetch`), served by the host itself when the mesh
//! runs. The CLI reaches the same tools through the control socket.

use rmcp::model::{JsonObject, Tool as McpTool, ToolAnnotations};
use serde_json::{Value, json};

use crate::capability::progress::ProgressSink;
use crate::content_hash::ContentHash;
use crate::p2p::Mesh;

/// The prefix of every mesh tool.
pub const PREFIX: &str = "mesh__";

fn schema(value: Value) -> JsonObject {
    match value {
        Value::Object(map) => map,
        _ => JsonObject::new(),
    }
}

/// The mesh tools, as MCP describes tools.
pub fn list() -> Vec<McpTool> {
    let read_only = ToolAnnotations::new().read_only(true).open_world(true);
    let empty =
        || schema(json!({"type": "object", "properties": {}, "additionalProperties": false}));
    vec![
        McpTool::new(
            "mesh__peers",
            "This host's peer id and addresses, and the peers it knows: addresses, whether \
             connected, when last heard from, strikes for misbehaviour, how much each offers.",
            empty(),
        )
        .with_annotations(read_only.clone()),
        McpTool::new(
            "mesh__offers",
            "What this host provides, and what peers offer (plugins with name, version, \
             publisher and install status; neural weights with network and topology), each \
             with its blake3 hash and providers.",
            empty(),
        )
        .with_annotations(read_only),
        McpTool::new(
            "mesh__connect",
            "Connects to a peer by multiaddr, e.g. /ip4/10.0.0.2/tcp/4001/p2p/12D3Koo…",
            schema(json!({
                "type": "object",
                "properties": {"address": {"type": "string", "description": "The peer's multiaddr."}},
                "required": ["address"],
                "additionalProperties": false
            })),
        ),
        McpTool::new(
            "mesh__publish",
            "Offers something to the mesh: an installed plugin by name, or a neural weights \
             blob by hash (with the network's name). Peers that trust the plugin's publisher \
             install it.",
            schema(json!({
                "type": "object",
                "properties": {
                    "plugin": {"type": "string", "description": "An installed plugin's name."},
                    "weights": {"type": "string", "description": "A weights blob hash (blake3:…)."},
                    "network": {"type": "string", "description": "The network the weights belong to."}
                },
                "additionalProperties": false
            })),
        ),
        McpTool::new(
            "mesh__fetch",
            "Fetches a blob from peers by hash, or what a peer offers by plugin or network \
             name: verified chunk by chunk, from several providers, with progress. A plugin is \
             then installed if signed by a trusted publisher; weights can be loaded with \
             neural__load_weights.",
            schema(json!({
                "type": "object",
                "properties": {"target": {"type": "string", "description": "blake3:… hash, plugin name or network name."}},
                "required": ["target"],
                "additionalProperties": false
            })),
        ),
    ]
}

fn encode<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

fn text(arguments: &JsonObject, key: &str) -> Option<String> {
    arguments
        .get(key)
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// Runs mesh tool `name`. `Err` is a message for the caller.
pub async fn call(
    mesh: &Mesh,
    name: &str,
    arguments: &JsonObject,
    progress: Option<&ProgressSink>,
) -> Result<Value, String> {
    match name {
        "mesh__peers" => Ok(json!({
            "peer_id": mesh.peer_id().to_string(),
            "addresses": mesh.addresses().iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            "peers": encode(&mesh.peers()),
        })),
        "mesh__offers" => Ok(json!({
            "provided": encode(&mesh.provided()),
            "offered": encode(&mesh.offers()),
        })),
        "mesh__connect" => {
            let address = text(arguments, "address").ok_or("`address` is required")?;
            let address = address
                .parse()
                .map_err(|e| format!("`{address}` is not a multiaddr: {e}"))?;
            mesh.connect(address).await?;
            Ok(json!({"connected": true}))
        }
        "mesh__publish" => {
            let offer = match (
                text(arguments, "plugin"),
                text(arguments, "weights"),
                text(arguments, "network"),
            ) {
                (Some(plugin), None, None) => mesh.publish_plugin(&plugin).await?,
                (None, Some(weights), network) => {
                    let hash: ContentHash = weights.parse()?;
                    mesh.publish_weights(hash, network.as_deref().unwrap_or("unnamed"))
                        .await?
                }
                _ => return Err("give either `plugin`, or `weights` (and `network`)".into()),
            };
            Ok(json!({"published": encode(&offer)}))
        }
        "mesh__fetch" => {
            let target = text(arguments, "target").ok_or("`target` is required")?;
            let (report, plugin) = mesh.fetch_target(&target, progress).await?;
            Ok(json!({"fetched": encode(&report), "plugin": encode(&plugin)}))
        }
        other => Err(format!("unknown mesh tool `{other}`")),
    }
}
