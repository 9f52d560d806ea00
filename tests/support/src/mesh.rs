//! Hosts with the mesh on, for the mesh tests and benchmarks: each a real
//! `toolmesh serve --p2p` process on 127.0.0.1 driven by rmcp's client,
//! plus keys, signed plugin copies and blobs placed in a host's store.

use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;
use std::time::{Duration, Instant};

use rmcp::RoleClient;
use rmcp::service::RunningService;
use serde_json::Value;

use crate::{ProgressLog, TempHost, call, connect_command, first_text, serve_command};

/// What a host writes to `<data>/p2p/node.json`.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct NodeInfo {
    /// Its peer id.
    pub peer_id: String,
    /// Its addresses, with `/p2p/<id>`.
    pub addresses: Vec<String>,
    /// Its process id.
    pub pid: u32,
}

/// A running host with the mesh on.
pub struct MeshNode {
    /// Its directories.
    pub host: TempHost,
    /// The MCP client connected to it.
    pub client: RunningService<RoleClient, ProgressLog>,
    /// The progress notifications it sent.
    pub progress: ProgressLog,
    /// Its `node.json`.
    pub info: NodeInfo,
}

/// A configuration for test hosts: loopback only, no mDNS, `trusted`
/// publisher keys.
pub fn mesh_config(trusted: &[&str]) -> String {
    let keys: Vec<String> = trusted.iter().map(|k| format!("\"{k}\"")).collect();
    format!(
        r#"
[trust]
publishers = [{}]

[p2p]
listen = ["/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"]
mdns = false
peer_ttl_secs = 60
"#,
        keys.join(", ")
    )
}

impl MeshNode {
    /// Starts `bin serve --p2p` on `host` with `config`, bootstrapping from
    /// `bootstrap`; `bundled` loads the bundled plugins; `shared_cache`
    /// uses the compile cache shared by test hosts (else its own, empty).
    pub async fn start(
        bin: &Path,
        host: TempHost,
        config: &str,
        bootstrap: &[&MeshNode],
        bundled: bool,
        shared_cache: bool,
    ) -> anyhow::Result<Self> {
        let config_path = host.data_dir().with_file_name("toolmesh.toml");
        std::fs::write(&config_path, config)?;
        let mut args = host.args();
        if !shared_cache {
            let at = args
                .iter()
                .position(|a| a == "--cache-dir")
                .unwrap_or(args.len());
            args.drain(at..(at + 2).min(args.len()));
        }
        args.extend(["--config".into(), config_path.display().to_string()]);
        if !bundled {
            args.push("--no-bundled".into());
        }
        let mut command = serve_command(bin, &args);
        command.arg("--p2p");
        let peers: Vec<String> = bootstrap
            .iter()
            .map(|n| n.info.addresses[0].clone())
            .collect();
        command.env("TOOLMESH_BOOTSTRAP", peers.join(","));
        // Quiet unless asked: a mesh test runs several hosts.
        command.env(
            "TOOLMESH_LOG",
            std::env::var("TOOLMESH_LOG").unwrap_or_else(|_| "warn".into()),
        );
        let progress = ProgressLog::default();
        let client = connect_command(progress.clone(), command).await?;
        let node_file = host.data_dir().join("p2p").join("node.json");
        let info = eventually(
            Duration::from_secs(15),
            Duration::from_millis(25),
            || async {
                Ok(std::fs::read(&node_file)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<NodeInfo>(&b).ok())
                    .filter(|i| !i.addresses.is_empty()))
            },
        )
        .await?
        .ok_or_else(|| anyhow::anyhow!("the host did not write {}", node_file.display()))?;
        Ok(Self {
            host,
            client,
            progress,
            info,
        })
    }

    /// Starts a fresh host (no plugins, the shared compile cache) that
    /// bootstraps from `bootstrap`.
    pub async fn join(bin: &Path, config: &str, bootstrap: &[&MeshNode]) -> anyhow::Result<Self> {
        Self::start(bin, TempHost::new()?, config, bootstrap, false, true).await
    }

    /// Calls `tool`; an error result is an `Err`.
    pub async fn call(&self, tool: &str, arguments: Value) -> anyhow::Result<Value> {
        let result = call(&self.client, tool, arguments).await?;
        anyhow::ensure!(
            result.is_error != Some(true),
            "{tool}: {}",
            first_text(&result)
        );
        Ok(result.structured_content.clone().unwrap_or(Value::Null))
    }

    /// The names of the tools it lists.
    pub async fn tool_names(&self) -> Vec<String> {
        self.client
            .list_all_tools()
            .await
            .map(|tools| tools.into_iter().map(|t| t.name.to_string()).collect())
            .unwrap_or_default()
    }

    /// Whether it lists peer `peer_id` (with an open connection, if
    /// `connected`), through `mesh__peers`.
    pub async fn knows(&self, peer_id: &str, connected: bool) -> anyhow::Result<bool> {
        let peers = self.call("mesh__peers", serde_json::json!({})).await?;
        Ok(peers["peers"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|p| p["id"] == peer_id && (!connected || p["connected"] == true)))
    }

    /// Waits (at most 15 s) until a connection to `peer_id` is open.
    pub async fn wait_connected(&self, peer_id: &str) -> anyhow::Result<()> {
        eventually(
            Duration::from_secs(15),
            Duration::from_millis(5),
            || async { Ok(self.knows(peer_id, true).await?.then_some(())) },
        )
        .await?
        .ok_or_else(|| anyhow::anyhow!("no connection to {peer_id}"))
    }

    /// Kills the host process (SIGKILL).
    pub fn kill(&self) {
        let _ = StdCommand::new("kill")
            .args(["-9", &self.info.pid.to_string()])
            .status();
    }

    /// Whether its blob store holds blob `hash`, intact.
    pub fn has_blob(&self, hash: &str) -> bool {
        let hex = hash.trim_start_matches("blake3:");
        std::fs::read(blob_path(&self.host, hex))
            .is_ok_and(|bytes| blake3::hash(&bytes).to_hex().as_str() == hex)
    }
}

/// Where blob `hex` lives in `host`'s store.
pub fn blob_path(host: &TempHost, hex: &str) -> PathBuf {
    host.data_dir().join("blobs").join(&hex[..2]).join(hex)
}

/// Polls `probe` every `every` until it yields `Some`, or `limit` passes
/// (then `None`). An error from the probe ends the wait with that error.
pub async fn eventually<T, Fut>(
    limit: Duration,
    every: Duration,
    mut probe: impl FnMut() -> Fut,
) -> anyhow::Result<Option<T>>
where
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(found) = probe().await? {
            return Ok(Some(found));
        }
        if Instant::now() > deadline {
            return Ok(None);
        }
        tokio::time::sleep(every).await;
    }
}

/// Runs the `toolmesh` CLI `bin` with `args`; its stdout, or an error with
/// its stderr.
pub fn cli(bin: &Path, args: &[&str]) -> anyhow::Result<String> {
    let output = StdCommand::new(bin).args(args).output()?;
    anyhow::ensure!(
        output.status.success(),
        "toolmesh {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8(output.stdout)?)
}

/// Creates a publisher key with the CLI and returns (file, public key).
pub fn publisher_key(bin: &Path, dir: &Path, name: &str) -> anyhow::Result<(PathBuf, String)> {
    let file = dir.join(name);
    let out = cli(bin, &["key", "--generate", &file.display().to_string()])?;
    let key = out
        .lines()
        .find_map(|l| l.strip_prefix("publisher key: "))
        .ok_or_else(|| anyhow::anyhow!("no key in {out}"))?
        .to_owned();
    Ok((file, key))
}

/// Copies the hello plugin at `hello` into `host` as plugin `name`, asking
/// for the `trusted` level, signed with `key` (through the CLI) if given.
pub fn add_hello_copy(
    bin: &Path,
    host: &TempHost,
    hello: &Path,
    name: &str,
    key: Option<&Path>,
) -> anyhow::Result<PathBuf> {
    let dir = host.add_plugin(hello, name)?;
    let manifest = dir.join("plugin.toml");
    let text = std::fs::read_to_string(&manifest)?
        .replace("name = \"hello\"", &format!("name = \"{name}\""))
        .replace("level = \"untrusted\"", "level = \"trusted\"");
    std::fs::write(&manifest, text)?;
    if let Some(key) = key {
        cli(
            bin,
            &[
                "plugin",
                "sign",
                &dir.display().to_string(),
                "--key",
                &key.display().to_string(),
            ],
        )?;
    }
    Ok(dir)
}

/// A `TMNW` weights blob of about `size` bytes (pseudo-random weights).
pub fn weights_blob(size: usize, seed: u8) -> Vec<u8> {
    let count = (size - 41) / 4;
    let mut bytes = Vec::with_capacity(41 + count * 4);
    bytes.extend_from_slice(b"TMNW\x01");
    bytes.extend_from_slice(&[seed; 32]);
    bytes.extend_from_slice(&(count as u32).to_le_bytes());
    let mut state = u64::from(seed) + 1;
    for _ in 0..count {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&((state % 2000) as f32 / 1000.0 - 1.0).to_le_bytes());
    }
    bytes
}

/// Puts `bytes` into the blob store of `host` (before it starts) and
/// returns the blob's path and hash.
pub fn put_blob(host: &TempHost, bytes: &[u8]) -> anyhow::Result<(PathBuf, String)> {
    let hex = blake3::hash(bytes).to_hex().to_string();
    let path = blob_path(host, &hex);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&path, bytes)?;
    Ok((path, format!("blake3:{hex}")))
}
