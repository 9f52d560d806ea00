//! The mesh service: what the mesh tools (and through them the CLI) ask of
//! the mesh. It
//! owns the swarm's handles, what this host provides (kept in
//! `<data>/p2p/offers.json` across restarts), and the policy for plugins
//! that peers offer: fetched and installed only when signed by a trusted
//! publisher, through the same install path as the plugin directory, at the
//! level the trust policy allows peers; otherwise listed, not installed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use libp2p::{Multiaddr, PeerId};
use serde::Serialize;
use tokio::sync::oneshot;

use super::bundle::Bundle;
use super::fetch::{self, FetchError, FetchReport, Link, ProviderSource};
use super::peers::{PeerBook, PeerView};
use super::protocol::Offer;
use super::swarm::{self, Command, Event, TreeCache};
use super::{P2pConfig, identity, lock};
use crate::capability::blobs::BlobStore;
use crate::capability::progress::ProgressSink;
use crate::content_hash::ContentHash;
use crate::fs::Confined;
use crate::plugin::install::install;
use crate::plugin::trust::{Provenance, Signature};
use crate::plugin::{Loader, Registry, Source};

/// The file that keeps what this host provides.
const OFFERS_FILE: &str = "offers.json";

/// The file a running host writes its peer id and addresses to.
pub const NODE_FILE: &str = "node.json";

/// The weights format's magic and the topology hash's place in its header.
const WEIGHTS_MAGIC: &[u8] = b"TMNW";
const WEIGHTS_TOPOLOGY: std::ops::Range<usize> = 5..37;

/// Where the mesh keeps its files and installs plugins.
pub struct MeshPaths {
    /// `<data>/p2p`: host key, offers, node file, control socket.
    pub state_dir: PathBuf,
    /// The plugin directory.
    pub plugins_dir: PathBuf,
}

/// A peer's offer as shown to agents and operators.
#[derive(Debug, Clone, Serialize)]
pub struct OfferView {
    /// What is offered.
    #[serde(flatten)]
    pub offer: Offer,
    /// Who offers it.
    pub providers: Vec<String>,
    /// For plugins: installed, or why not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// What `node.json` holds.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct NodeInfo {
    /// The host's peer id.
    pub peer_id: String,
    /// Its listen addresses, each ending in `/p2p/<peer id>`.
    pub addresses: Vec<String>,
    /// The host's process id.
    pub pid: u32,
}

/// A plugin installed from a peer.
#[derive(Debug, Clone, Serialize)]
pub struct ReceivedPlugin {
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// Its tools.
    pub tools: Vec<String>,
    /// The level it runs at.
    pub level: String,
    /// Who signed it.
    pub publisher: String,
    /// Whether it was installed just now (false: it already was).
    pub installed: bool,
}

/// The mesh service.
pub struct Mesh {
    peer_id: PeerId,
    link: Link,
    book: Arc<Mutex<PeerBook>>,
    local: Arc<Mutex<Vec<Offer>>>,
    listening: Arc<Mutex<Vec<Multiaddr>>>,
    trees: Arc<TreeCache>,
    blobs: Arc<BlobStore>,
    loader: Arc<Loader>,
    registry: Arc<Registry>,
    paths: MeshPaths,
    /// `paths.state_dir`, opened through the data directory (a `p2p`
    /// planted there as a link out is refused) and confining every file
    /// the mesh keeps.
    state: Confined,
    statuses: Mutex<HashMap<ContentHash, String>>,
    installing: tokio::sync::Mutex<()>,
}

impl ProviderSource for Mesh {
    async fn providers(&self, hash: ContentHash, ask_the_dht: bool) -> Vec<PeerId> {
        let mut providers = lock(&self.book).providers(&hash);
        // The DHT walk can take seconds (it dials peers that may be gone):
        // only when no known peer offers the blob, or all have failed.
        if providers.is_empty() || ask_the_dht {
            for peer in self.link.find_providers(hash, Duration::from_secs(2)).await {
                let banned = lock(&self.book).is_banned(&peer);
                if peer != self.peer_id && !banned && !providers.contains(&peer) {
                    providers.push(peer);
                }
            }
        }
        providers
    }
}

impl Mesh {
    /// Starts the swarm and the service around it.
    pub async fn start(
        config: &P2pConfig,
        loader: Arc<Loader>,
        registry: Arc<Registry>,
        paths: MeshPaths,
        auto_install: bool,
    ) -> anyhow::Result<Arc<Self>> {
        let blobs = loader
            .runtime()
            .stores()
            .blobs
            .clone()
            .ok_or_else(|| anyhow::anyhow!("p2p needs the blob store, which did not open"))?;
        let state = identity::open_state_dir(&paths.state_dir)?;
        let key = identity::load_or_create_in(&state, identity::HOST_KEY_FILE)?;
        let local: Vec<Offer> = match state.read(Path::new(OFFERS_FILE)) {
            Ok(bytes) => serde_json::from_slice::<Vec<Offer>>(&bytes).unwrap_or_else(|e| {
                tracing::warn!(file = %state.display(Path::new(OFFERS_FILE)).display(),
                    "the saved offers are unreadable, starting without them: {e}");
                Vec::new()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => anyhow::bail!(
                "cannot read {}: {}",
                state.display(Path::new(OFFERS_FILE)).display(),
                crate::plugin::files::escape_explained(e)
            ),
        }
        .into_iter()
        .filter(|o| {
            o.hash_text()
                .parse::<ContentHash>()
                .is_ok_and(|h| blobs.contains(&h))
        })
        .collect();
        let local = Arc::new(Mutex::new(local));
        let book = Arc::new(Mutex::new(PeerBook::new(config.peer_ttl())));
        let started = swarm::start(
            config,
            identity::libp2p_keypair(&key),
            book.clone(),
            blobs.clone(),
            local.clone(),
        )?;
        let mesh = Arc::new(Self {
            peer_id: started.peer_id,
            link: Link {
                commands: started.commands,
                traffic: started.traffic.clone(),
            },
            book,
            local,
            listening: started.listening,
            trees: started.trees,
            blobs,
            loader,
            registry,
            paths,
            state,
            statuses: Mutex::new(HashMap::new()),
            installing: tokio::sync::Mutex::new(()),
        });
        tracing::info!(peer_id = %mesh.peer_id, "p2p mesh started");
        let offers = lock(&mesh.local).clone();
        if !offers.is_empty() {
            let _ = mesh.link.commands.send(Command::Announce(offers)).await;
        }
        tokio::spawn(write_node_file(mesh.clone(), config.listen.len()));
        tokio::spawn(handle_events(mesh.clone(), started.events, auto_install));
        Ok(mesh)
    }

    /// This host's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// This host's addresses, each with its `/p2p/<id>` suffix.
    pub fn addresses(&self) -> Vec<Multiaddr> {
        lock(&self.listening)
            .iter()
            .map(|a| {
                a.clone()
                    .with(libp2p::multiaddr::Protocol::P2p(self.peer_id))
            })
            .collect()
    }

    /// The known peers.
    pub fn peers(&self) -> Vec<PeerView> {
        lock(&self.book).views()
    }

    /// Bytes moved and fetches in progress.
    pub fn traffic(&self) -> &Arc<super::traffic::Traffic> {
        &self.link.traffic
    }

    /// What peers offer, with the install status of plugins.
    pub fn offers(&self) -> Vec<OfferView> {
        let statuses = lock(&self.statuses);
        lock(&self.book)
            .offers()
            .map(|(hash, remote)| OfferView {
                offer: remote.offer.clone(),
                providers: remote.providers.iter().map(ToString::to_string).collect(),
                status: match remote.offer {
                    Offer::Plugin { .. } => Some(
                        statuses
                            .get(hash)
                            .cloned()
                            .unwrap_or_else(|| "available, not installed".into()),
                    ),
                    Offer::Weights { .. } => None,
                },
            })
            .collect()
    }

    /// What this host provides.
    pub fn provided(&self) -> Vec<Offer> {
        lock(&self.local).clone()
    }

    /// Connects to `address`.
    pub async fn connect(&self, address: Multiaddr) -> Result<(), String> {
        let (reply, result) = oneshot::channel();
        self.link
            .commands
            .send(Command::Dial(address, reply))
            .await
            .map_err(|_| "the mesh has stopped".to_owned())?;
        tokio::time::timeout(Duration::from_secs(10), result)
            .await
            .map_err(|_| "no connection within 10 s".to_owned())?
            .map_err(|_| "the mesh has stopped".to_owned())?
    }

    /// Offers `offer` (its blob is in the store) to the mesh.
    pub async fn provide(&self, offer: Offer) -> Result<Offer, String> {
        let hash: ContentHash = offer.hash_text().parse()?;
        {
            let (blobs, trees) = (self.blobs.clone(), self.trees.clone());
            tokio::task::spawn_blocking(move || swarm::warm_tree(&blobs, &trees, &hash))
                .await
                .map_err(|e| e.to_string())?;
        }
        let offers = {
            let mut local = lock(&self.local);
            local.retain(|o| {
                o.hash_text() != offer.hash_text()
                    && !matches!((o, &offer),
                        (Offer::Plugin { name: a, .. }, Offer::Plugin { name: b, .. }) if a == b)
            });
            local.push(offer.clone());
            local.clone()
        };
        let json = serde_json::to_vec_pretty(&offers).map_err(|e| e.to_string())?;
        let file = Path::new(OFFERS_FILE);
        self.state
            .write_atomically(file, &json)
            .map_err(|e| format!("cannot save {}: {e}", self.state.display(file).display()))?;
        self.link
            .commands
            .send(Command::Announce(offers))
            .await
            .map_err(|_| "the mesh has stopped".to_owned())?;
        Ok(offer)
    }

    /// Publishes installed plugin `name`: its bundle goes into the blob
    /// store and is announced.
    pub async fn publish_plugin(&self, name: &str) -> Result<Offer, String> {
        let (dir, loaded_hash) = {
            let snapshot = self.registry.snapshot();
            let plugin = snapshot
                .plugin(name)
                .ok_or_else(|| format!("no plugin `{name}` is loaded"))?;
            match &plugin.source {
                Source::Dir(dir) => (dir.clone(), plugin.hash),
                Source::Bundled => {
                    return Err(format!(
                        "`{name}` is bundled with the host; every host has it already"
                    ));
                }
            }
        };
        let bundle = Bundle::read_dir(&dir).map_err(|e| e.to_string())?;
        if ContentHash::of(&bundle.component) != loaded_hash {
            return Err(format!(
                "the component of `{name}` in {} changed since it was loaded; reinstall it first",
                dir.display()
            ));
        }
        let manifest = bundle.manifest().map_err(|e| e.to_string())?;
        let publisher = match &bundle.signature_text {
            Some(text) => Some(
                Signature::parse(text)
                    .map_err(|e| e.to_string())?
                    .publisher
                    .to_string(),
            ),
            None => None,
        };
        let bytes = bundle.encode();
        let hash = self.blobs.put(&bytes).map_err(|e| e.to_string())?;
        self.provide(Offer::Plugin {
            name: manifest.name,
            version: manifest.version.to_string(),
            publisher,
            hash: hash.to_string(),
            size: bytes.len() as u64,
        })
        .await
    }

    /// Publishes the weights blob `hash` of network `network`.
    pub async fn publish_weights(&self, hash: ContentHash, network: &str) -> Result<Offer, String> {
        // The header only: `provide` reads (and verifies) the whole blob once
        // when it lists its chunks.
        let size = self
            .blobs
            .size(&hash)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("no blob {hash} in the store"))?;
        let header_len = WEIGHTS_TOPOLOGY.end as u64;
        let header = if size >= header_len {
            self.blobs
                .read_range(&hash, 0..header_len)
                .map_err(|e| e.to_string())?
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        if !header.starts_with(WEIGHTS_MAGIC) || header.len() < WEIGHTS_TOPOLOGY.end {
            return Err(format!("blob {hash} is not a weights blob (TMNW)"));
        }
        self.provide(Offer::Weights {
            network: network.to_owned(),
            topology: hex::encode(&header[WEIGHTS_TOPOLOGY]),
            hash: hash.to_string(),
            size,
        })
        .await
    }

    /// The hash of what `target` names: a `blake3:` hash, or the name of a
    /// plugin or network some peer offers.
    pub fn resolve(&self, target: &str) -> Result<ContentHash, String> {
        if let Ok(hash) = target.parse::<ContentHash>() {
            return Ok(hash);
        }
        let book = lock(&self.book);
        let mut matches = book.offers().filter(|(_, r)| r.offer.name() == target);
        match (matches.next(), matches.next()) {
            (Some((hash, _)), None) => Ok(*hash),
            (None, _) => Err(format!(
                "no peer offers `{target}` (a plugin or network name, or a blake3: hash)"
            )),
            (Some(_), Some(_)) => Err(format!(
                "several offers are named `{target}`: fetch one by its hash"
            )),
        }
    }

    /// Fetches blob `hash` into the store.
    pub async fn fetch(
        &self,
        hash: ContentHash,
        progress: Option<&ProgressSink>,
    ) -> Result<FetchReport, FetchError> {
        fetch::fetch(&self.link, self, &self.blobs, hash, progress).await
    }

    /// Fetches what `target` names; a plugin is then installed if the
    /// policy allows. Returns the fetch report and, for plugins, the result
    /// of installing.
    pub async fn fetch_target(
        &self,
        target: &str,
        progress: Option<&ProgressSink>,
    ) -> Result<(FetchReport, Option<ReceivedPlugin>), String> {
        let hash = self.resolve(target)?;
        let report = self
            .fetch(hash, progress)
            .await
            .map_err(|e| e.to_string())?;
        let is_plugin = self
            .blobs
            .read_range(&hash, 0..8)
            .ok()
            .flatten()
            .is_some_and(|head| Bundle::is_bundle(&head));
        if !is_plugin {
            return Ok((report, None));
        }
        let provider = report
            .from
            .keys()
            .next()
            .cloned()
            .unwrap_or_else(|| "(local store)".into());
        let received = self.install_bundle(hash, &provider).await?;
        Ok((report, Some(received)))
    }

    /// Installs the plugin bundle `hash` (in the store) from `peer`, if it
    /// is signed by a trusted publisher. Records the outcome as the offer's
    /// status either way.
    pub async fn install_bundle(
        &self,
        hash: ContentHash,
        peer: &str,
    ) -> Result<ReceivedPlugin, String> {
        let _one_at_a_time = self.installing.lock().await;
        let outcome = self.try_install(hash, peer).await;
        let status = match &outcome {
            Ok(p) => format!("installed: {} {} at level `{}`", p.name, p.version, p.level),
            Err(e) => format!("not installed: {e}"),
        };
        lock(&self.statuses).insert(hash, status);
        outcome
    }

    async fn try_install(&self, hash: ContentHash, peer: &str) -> Result<ReceivedPlugin, String> {
        let bytes = self
            .blobs
            .get(&hash)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("no blob {hash} in the store"))?;
        let bundle = Bundle::decode(&bytes).map_err(|e| e.to_string())?;
        let manifest = bundle.manifest().map_err(|e| e.to_string())?;
        let component = ContentHash::of(&bundle.component);
        let signature = self
            .loader
            .trust()
            .check_from_peer(
                bundle.signature_text.as_deref(),
                bundle.manifest_text.as_bytes(),
                &component,
            )
            .map_err(|e| e.to_string())?;
        let snapshot = self.registry.snapshot();
        if let Some(loaded) = snapshot.plugin(&manifest.name)
            && loaded.hash == component
            && loaded.manifest.version == manifest.version
        {
            return Ok(received(loaded, &signature, false));
        }
        let staging = self
            .state
            .create_unique_dir(".receive-")
            .map_err(|e| format!("cannot stage the plugin: {e}"))?;
        let received_dir = self.state.display(&staging);
        let staged = self
            .state
            .subdir(&staging)
            .map_err(|e| e.to_string())
            .and_then(|dir| {
                let provenance = Provenance {
                    peer: peer.to_owned(),
                    bundle: hash.to_string(),
                };
                bundle
                    .write_dir(&dir, &provenance)
                    .map_err(|e| e.to_string())
            });
        let installed = match staged {
            Ok(()) => install(&self.loader, &received_dir, &self.paths.plugins_dir, true)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        let _ = self.state.remove_dir_all(&staging);
        let installed = installed?;
        let view = received(&installed.plugin, &signature, true);
        tracing::info!(
            plugin = %view.name,
            version = %view.version,
            level = %view.level,
            %peer,
            "plugin installed from a peer"
        );
        self.registry
            .insert(installed.plugin)
            .map_err(|e| e.to_string())?;
        Ok(view)
    }
}

fn received(
    plugin: &crate::plugin::LoadedPlugin,
    signature: &Signature,
    installed: bool,
) -> ReceivedPlugin {
    ReceivedPlugin {
        name: plugin.manifest.name.clone(),
        version: plugin.manifest.version.to_string(),
        tools: plugin
            .tools
            .iter()
            .map(|t| t.qualified_name.clone())
            .collect(),
        level: plugin.code.level().name.clone(),
        publisher: signature.publisher.to_string(),
        installed,
    }
}

/// Writes `node.json` once the swarm listens, so that operators and tests
/// can find this host.
async fn write_node_file(mesh: Arc<Mesh>, listeners: usize) {
    for _ in 0..100 {
        if lock(&mesh.listening).len() >= listeners {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let info = NodeInfo {
        peer_id: mesh.peer_id.to_string(),
        addresses: mesh.addresses().iter().map(ToString::to_string).collect(),
        pid: std::process::id(),
    };
    let file = Path::new(NODE_FILE);
    match serde_json::to_vec_pretty(&info) {
        Ok(json) => {
            if let Err(e) = mesh.state.write_atomically(file, &json) {
                let path = mesh.state.display(file);
                tracing::warn!(path = %path.display(), "cannot write the node file: {e}");
            }
        }
        Err(e) => tracing::warn!("cannot encode the node file: {e}"),
    }
}

/// Reacts to what the swarm reports: plugins offered by peers are fetched
/// and installed when the offer names a trusted publisher (the bundle's
/// signature decides); others are listed as available.
async fn handle_events(
    mesh: Arc<Mesh>,
    mut events: tokio::sync::mpsc::Receiver<Event>,
    auto_install: bool,
) {
    while let Some(event) = events.recv().await {
        let Event::Offered { peer, offer } = event;
        let Offer::Plugin {
            name,
            publisher,
            hash,
            ..
        } = &offer
        else {
            continue;
        };
        let Ok(hash) = hash.parse::<ContentHash>() else {
            continue;
        };
        let trusted = publisher
            .as_deref()
            .and_then(|p| p.parse().ok())
            .is_some_and(|key| mesh.loader.trust().trusts(&key));
        if !trusted {
            let why = match publisher {
                None => "not installed: unsigned".to_owned(),
                Some(p) => format!("not installed: {p} is not a trusted publisher"),
            };
            tracing::info!(plugin = %name, %peer, "peer offers a plugin: {why}");
            lock(&mesh.statuses).insert(hash, why);
            continue;
        }
        if !auto_install {
            continue;
        }
        let mesh = mesh.clone();
        let name = name.clone();
        tokio::spawn(async move {
            if let Err(e) = mesh.fetch(hash, None).await {
                tracing::warn!(plugin = %name, %peer, "cannot fetch an offered plugin: {e}");
                lock(&mesh.statuses).insert(hash, format!("not installed: {e}"));
                return;
            }
            if let Err(e) = mesh.install_bundle(hash, &peer.to_string()).await {
                tracing::warn!(plugin = %name, %peer, "plugin from a peer refused: {e}");
                if e.starts_with("tampered") {
                    mesh.link
                        .strike(peer, format!("sent plugin `{name}`: {e}"))
                        .await;
                }
            }
        });
    }
}
