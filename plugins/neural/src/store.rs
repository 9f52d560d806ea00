//! Where networks and data sets live: each network is a `.net` file in the
//! host's blob store (so it is addressed by content), with its weights also
//! stored in the compact binary format for sharing; `net/<name>` in kv
//! points at both. Data sets are `.data` files in blobs, named by
//! `data/<name>` in kv. A network changes only by replacing its kv entry
//! in one compare-and-swap, so a failed or interrupted call leaves the last
//! saved network intact.

use neural_core::{Network, TrainData};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toolmesh_sdk::{ToolError, blobs, kv};

/// A stored network's entry in kv.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct NetEntry {
    /// Its name.
    pub name: String,
    /// The blob holding its `.net` text.
    pub net: String,
    /// The blob holding its weights in the binary format.
    pub weights: String,
    /// Its topology hash.
    pub topology: String,
    /// Neurons per layer (without bias neurons).
    pub layers: Vec<usize>,
    /// When it was last saved (ms since the Unix epoch).
    pub saved_at_ms: u64,
}

/// Names of networks and data sets.
pub fn check_name(name: &str) -> Result<(), ToolError> {
    toolmesh_sdk::check_id("name", name, 64, "._-")
}

fn net_key(name: &str) -> String {
    format!("net/{name}")
}

fn data_key(name: &str) -> String {
    format!("data/{name}")
}

/// The entry of network `name`.
pub fn entry(name: &str) -> Result<NetEntry, ToolError> {
    check_name(name)?;
    kv::get_json(&net_key(name))?.ok_or_else(|| {
        ToolError::invalid_arguments(format!("no network `{name}`: create or import it first"))
    })
}

/// Loads network `name`.
pub fn load(name: &str) -> Result<(NetEntry, Network), ToolError> {
    let entry = entry(name)?;
    let text = blobs::get(&entry.net)?.ok_or_else(|| {
        ToolError::failed(format!(
            "network `{name}`: its blob {} is missing",
            entry.net
        ))
    })?;
    let text = String::from_utf8(text)
        .map_err(|_| ToolError::failed(format!("network `{name}`: its blob is not text")))?;
    let net = Network::from_fann_str(&text)
        .map_err(|e| ToolError::failed(format!("network `{name}`: {e}")))?;
    Ok((entry, net))
}

/// The resource of the stored networks (one network: `<this>/<name>`).
pub const NETWORKS_URI: &str = "neural://networks";

/// Saves `net` as `name`; with `expected`, only if the entry is still that
/// (so concurrent trainings of one network never overwrite each other
/// silently).
pub fn save(name: &str, net: &Network, expected: Option<&NetEntry>) -> Result<NetEntry, ToolError> {
    check_name(name)?;
    toolmesh_sdk::notify::resource_updated(NETWORKS_URI);
    toolmesh_sdk::notify::resource_updated(&format!("{NETWORKS_URI}/{name}"));
    let net_blob = blobs::put(net.to_fann_string().as_bytes())?;
    let weights_blob = blobs::put(&net.weights_to_bytes())?;
    let entry = NetEntry {
        name: name.to_owned(),
        net: net_blob,
        weights: weights_blob,
        topology: net.topology_hash(),
        layers: net.layer_sizes(),
        saved_at_ms: toolmesh_sdk::unix_time_ms(),
    };
    let new = serde_json::to_vec(&entry)
        .map_err(|e| ToolError::failed(format!("cannot encode the entry: {e}")))?;
    match expected {
        None => kv::set(&net_key(name), &new)?,
        Some(old) => {
            let old = serde_json::to_vec(old)
                .map_err(|e| ToolError::failed(format!("cannot encode the entry: {e}")))?;
            if !kv::compare_and_swap(&net_key(name), Some(&old), Some(&new))? {
                return Err(ToolError::failed(format!(
                    "network `{name}` changed while this call ran; the result was not saved"
                )));
            }
        }
    }
    Ok(entry)
}

/// Removes network `name`; true if it existed.
pub fn delete(name: &str) -> Result<bool, ToolError> {
    check_name(name)?;
    Ok(kv::delete(&net_key(name))?)
}

/// Every stored network.
pub fn list() -> Result<Vec<NetEntry>, ToolError> {
    let mut out = Vec::new();
    for key in kv::list_keys("net/", u32::MAX)? {
        if let Some(entry) = kv::get_json::<NetEntry>(&key)? {
            out.push(entry);
        }
    }
    Ok(out)
}

/// Stores data set `name`; returns its blob hash.
pub fn save_data(name: &str, data: &TrainData) -> Result<String, ToolError> {
    check_name(name)?;
    let hash = blobs::put(data.to_fann_string().as_bytes())?;
    kv::set_json(&data_key(name), &hash)?;
    Ok(hash)
}

/// Loads data set `name`.
pub fn load_data(name: &str) -> Result<TrainData, ToolError> {
    check_name(name)?;
    let hash: String = kv::get_json(&data_key(name))?.ok_or_else(|| {
        ToolError::invalid_arguments(format!("no data set `{name}`: store it with store_data"))
    })?;
    let bytes = blobs::get(&hash)?
        .ok_or_else(|| ToolError::failed(format!("data set `{name}`: blob {hash} is missing")))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| ToolError::failed(format!("data set `{name}` is not text")))?;
    TrainData::parse(&text).map_err(|e| ToolError::failed(format!("data set `{name}`: {e}")))
}
