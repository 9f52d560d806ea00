//! The peer-to-peer mesh: hosts find each other (bootstrap peers, mDNS,
//! kademlia), announce what they provide (gossipsub, kademlia provider
//! records, and a catalog asked of every new connection), and fetch blobs
//! from each other chunk by chunk, verified against their BLAKE3 names.
//!
//! - [`identity`]: the host key and publisher keys.
//! - [`tree`]: chunk verification against a blob's name.
//! - [`protocol`]: offers, announcements, the share protocol and its codec.
//! - [`bundle`]: a plugin as one blob.
//! - [`peers`]: what the host knows of its peers: TTL, strikes, offers.
//! - [`swarm`]: the libp2p swarm and its event loop.
//! - [`fetch`]: getting a blob from one or several providers.
//! - [`mesh`]: the service the mesh tools use: peers, offers, publish,
//!   fetch, install.

pub mod bundle;
pub mod fetch;
pub mod identity;
pub mod mesh;
pub mod peers;
pub mod protocol;
pub mod swarm;
pub mod traffic;
pub mod tree;

use std::path::PathBuf;
use std::time::Duration;

use libp2p::Multiaddr;
use serde::Deserialize;

pub use mesh::Mesh;

/// Locks `m`, recovering the data if a holder panicked (the mesh's state
/// stays usable: every update to it is a single step).
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The environment variable that adds bootstrap peers (multiaddrs separated
/// by commas or white space).
pub const BOOTSTRAP_ENV: &str = "TOOLMESH_BOOTSTRAP";

/// `[p2p]` in `toolmesh.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct P2pConfig {
    /// Start the mesh with `toolmesh serve` (also `serve --p2p`).
    pub enabled: bool,
    /// Addresses to listen on.
    pub listen: Vec<Multiaddr>,
    /// Peers to connect to at start (`/ip4/…/tcp/…/p2p/<peer id>`).
    pub bootstrap: Vec<Multiaddr>,
    /// A file of more bootstrap peers, one multiaddr per line (`#` comments).
    pub bootstrap_file: Option<PathBuf>,
    /// Find peers on the local network by mDNS.
    pub mdns: bool,
    /// A peer not heard from for this long is dropped.
    pub peer_ttl_secs: u64,
    /// Most connections at once, in and out.
    pub max_connections: u32,
    /// Most connections being set up at once from outside.
    pub max_pending_incoming: u32,
    /// Fetch and install plugins that trusted publishers announce.
    pub auto_install: bool,
}

impl Default for P2pConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            listen: vec![
                "/ip4/0.0.0.0/tcp/0".parse().expect("a valid multiaddr"),
                "/ip4/0.0.0.0/udp/0/quic-v1"
                    .parse()
                    .expect("a valid multiaddr"),
            ],
            bootstrap: Vec::new(),
            bootstrap_file: None,
            mdns: true,
            peer_ttl_secs: 300,
            max_connections: 256,
            max_pending_incoming: 64,
            auto_install: true,
        }
    }
}

impl P2pConfig {
    /// Checks the values.
    pub fn check(&self) -> Result<(), String> {
        if self.peer_ttl_secs == 0 {
            return Err("peer_ttl_secs must be at least 1".into());
        }
        if self.max_connections == 0 {
            return Err("max_connections must be at least 1".into());
        }
        Ok(())
    }

    /// How long a silent peer is kept.
    pub fn peer_ttl(&self) -> Duration {
        Duration::from_secs(self.peer_ttl_secs)
    }

    /// Every bootstrap peer: from the configuration, its file, and
    /// [`BOOTSTRAP_ENV`]. A line that is not a multiaddr is an error.
    pub fn bootstrap_peers(&self) -> Result<Vec<Multiaddr>, String> {
        let mut peers = self.bootstrap.clone();
        let mut parse = |text: &str, from: &str| -> Result<(), String> {
            for item in text
                .lines()
                .map(|l| l.split('#').next().unwrap_or(""))
                .flat_map(|l| l.split([',', ' ', '\t']))
                .map(str::trim)
                .filter(|s| !s.is_empty())
            {
                peers.push(
                    item.parse()
                        .map_err(|e| format!("bootstrap peer `{item}` in {from}: {e}"))?,
                );
            }
            Ok(())
        };
        if let Some(path) = &self.bootstrap_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            parse(&text, &path.display().to_string())?;
        }
        if let Ok(text) = std::env::var(BOOTSTRAP_ENV) {
            parse(&text, BOOTSTRAP_ENV)?;
        }
        Ok(peers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_peers_come_from_config_and_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("peers");
        std::fs::write(
            &file,
            "# peers\n/ip4/10.0.0.1/tcp/4001\n\n/ip4/10.0.0.2/udp/4001/quic-v1 # lab\n",
        )
        .unwrap();
        let config = P2pConfig {
            bootstrap: vec!["/ip4/127.0.0.1/tcp/1".parse().unwrap()],
            bootstrap_file: Some(file.clone()),
            ..P2pConfig::default()
        };
        let peers = config.bootstrap_peers().unwrap();
        assert!(peers.len() >= 3, "{peers:?}");
        std::fs::write(&file, "not-an-address\n").unwrap();
        let error = config.bootstrap_peers().unwrap_err();
        assert!(error.contains("not-an-address"), "{error}");
    }
}
