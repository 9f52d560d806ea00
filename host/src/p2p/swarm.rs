//! The libp2p swarm and the one task that owns it: TCP and QUIC with noise
//! and yamux; identify, ping, kademlia, gossipsub, mDNS and the share
//! protocol; connection limits and a block list. Everything else talks to
//! the task through [`Command`]s and reads the [`PeerBook`] it keeps.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{
    Multiaddr, PeerId, StreamProtocol, Swarm, allow_block_list, connection_limits, gossipsub,
    identify, identity, kad, mdns, noise, ping, request_response, tcp, yamux,
};
use tokio::sync::{mpsc, oneshot};

use super::peers::PeerBook;
use super::protocol::{
    ANNOUNCE_TOPIC, Announcement, Offer, Request, Response, SHARE_PROTOCOL, ShareCodec,
};
use super::tree::{chaining_values, chunk_count, chunk_range};
use super::{P2pConfig, lock};
use crate::capability::blobs::BlobStore;
use crate::content_hash::ContentHash;

/// How long a share request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// The behaviours, combined.
#[derive(NetworkBehaviour)]
struct Behaviour {
    limits: connection_limits::Behaviour,
    blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    kad: kad::Behaviour<kad::store::MemoryStore>,
    gossipsub: gossipsub::Behaviour,
    mdns: Toggle<mdns::tokio::Behaviour>,
    share: request_response::Behaviour<ShareCodec>,
}

/// What the swarm task is asked to do.
pub enum Command {
    /// Connect to `address`.
    Dial(Multiaddr, oneshot::Sender<Result<(), String>>),
    /// Send a share request to `peer`.
    Request {
        /// To whom.
        peer: PeerId,
        /// What.
        request: Request,
        /// Where the response goes.
        reply: oneshot::Sender<Result<Response, String>>,
    },
    /// Announce these offers (everything this host provides) and register
    /// each as a kademlia provider record.
    Announce(Vec<Offer>),
    /// Ask kademlia who provides blob `hash`.
    FindProviders(ContentHash, oneshot::Sender<Vec<PeerId>>),
    /// Count a misbehaviour against `peer` (a corrupt chunk, say).
    Strike(PeerId, String),
    /// Send a response to an inbound request.
    Respond(request_response::ResponseChannel<Response>, Box<Response>),
}

/// What the swarm tells the mesh service.
#[derive(Debug, Clone)]
pub enum Event {
    /// `peer` offers something this host had not seen offered.
    Offered {
        /// Who.
        peer: PeerId,
        /// What.
        offer: Offer,
    },
}

/// The chunk list of blob `hash`, computed now so that the first fetch does
/// not wait for it.
pub fn warm_tree(blobs: &BlobStore, trees: &TreeCache, hash: &ContentHash) {
    let _ = answer(
        blobs,
        trees,
        Request::Tree {
            hash: hash.to_string(),
        },
    );
}

/// Chunk lists already computed, by blob.
pub type TreeCache = Mutex<HashMap<ContentHash, Tree>>;

/// The running swarm's handles.
pub struct Started {
    /// This host's peer id.
    pub peer_id: PeerId,
    /// Commands to the swarm task.
    pub commands: mpsc::Sender<Command>,
    /// Events from it.
    pub events: mpsc::Receiver<Event>,
    /// The addresses it listens on, once known.
    pub listening: Arc<Mutex<Vec<Multiaddr>>>,
    /// The chunk lists it serves.
    pub trees: Arc<TreeCache>,
    /// Bytes moved.
    pub traffic: Arc<super::traffic::Traffic>,
}

/// Builds the swarm, starts listening and dialing the bootstrap peers, and
/// spawns the task that drives it.
pub fn start(
    config: &P2pConfig,
    keypair: identity::Keypair,
    book: Arc<Mutex<PeerBook>>,
    blobs: Arc<BlobStore>,
    local_offers: Arc<Mutex<Vec<Offer>>>,
) -> anyhow::Result<Started> {
    let bootstrap = config
        .bootstrap_peers()
        .map_err(|e| anyhow::anyhow!("p2p: {e}"))?;
    let mut swarm = build(config, keypair)?;
    for address in &config.listen {
        swarm
            .listen_on(address.clone())
            .map_err(|e| anyhow::anyhow!("p2p: cannot listen on {address}: {e}"))?;
    }
    let topic = gossipsub::IdentTopic::new(ANNOUNCE_TOPIC);
    swarm
        .behaviour_mut()
        .gossipsub
        .subscribe(&topic)
        .map_err(|e| anyhow::anyhow!("p2p: cannot subscribe to announcements: {e}"))?;
    for address in bootstrap {
        if let Some(peer) = peer_of(&address) {
            swarm
                .behaviour_mut()
                .kad
                .add_address(&peer, address.clone());
        }
        if let Err(e) = swarm.dial(address.clone()) {
            tracing::warn!(%address, "cannot dial bootstrap peer: {e}");
        }
    }
    let (commands, command_rx) = mpsc::channel(1024);
    let (event_tx, events) = mpsc::channel(1024);
    let listening = Arc::new(Mutex::new(Vec::new()));
    let peer_id = *swarm.local_peer_id();
    let trees: Arc<TreeCache> = Arc::default();
    let traffic: Arc<super::traffic::Traffic> = Arc::default();
    let driver = Driver {
        swarm,
        topic,
        book,
        blobs,
        local_offers,
        events: event_tx,
        commands: commands.clone(),
        pending: HashMap::new(),
        dials: HashMap::new(),
        queries: HashMap::new(),
        trees: trees.clone(),
        traffic: traffic.clone(),
        listening: listening.clone(),
        ttl: config.peer_ttl(),
    };
    tokio::spawn(driver.run(command_rx));
    Ok(Started {
        peer_id,
        commands,
        events,
        listening,
        trees,
        traffic,
    })
}

/// The peer id at the end of `address` (`…/p2p/<id>`), if it names one.
pub fn peer_of(address: &Multiaddr) -> Option<PeerId> {
    address.iter().find_map(|p| match p {
        libp2p::multiaddr::Protocol::P2p(peer) => Some(peer),
        _ => None,
    })
}

fn build(config: &P2pConfig, keypair: identity::Keypair) -> anyhow::Result<Swarm<Behaviour>> {
    let ttl = config.peer_ttl();
    let limits = connection_limits::ConnectionLimits::default()
        .with_max_established(Some(config.max_connections))
        .with_max_pending_incoming(Some(config.max_pending_incoming))
        .with_max_pending_outgoing(Some(config.max_pending_incoming))
        .with_max_established_per_peer(Some(2));
    let mdns_enabled = config.mdns;
    let swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )?
        .with_quic()
        .with_behaviour(
            |key| -> Result<Behaviour, Box<dyn std::error::Error + Send + Sync>> {
                let peer_id = key.public().to_peer_id();
                let gossipsub = gossipsub::Behaviour::new(
                    gossipsub::MessageAuthenticity::Signed(key.clone()),
                    gossipsub::ConfigBuilder::default()
                        .heartbeat_interval(Duration::from_millis(500))
                        .validation_mode(gossipsub::ValidationMode::Strict)
                        .max_transmit_size(256 << 10)
                        .build()?,
                )?;
                let mut kad = kad::Behaviour::with_config(
                    peer_id,
                    kad::store::MemoryStore::new(peer_id),
                    kad::Config::new(StreamProtocol::new("/toolmesh/kad/1")),
                );
                kad.set_mode(Some(kad::Mode::Server));
                let mdns = if mdns_enabled {
                    Some(mdns::tokio::Behaviour::new(
                        mdns::Config::default(),
                        peer_id,
                    )?)
                } else {
                    None
                };
                Ok(Behaviour {
                    limits: connection_limits::Behaviour::new(limits),
                    blocked: allow_block_list::Behaviour::default(),
                    identify: identify::Behaviour::new(
                        identify::Config::new("/toolmesh/id/1".into(), key.public())
                            .with_agent_version(format!("toolmesh/{}", env!("CARGO_PKG_VERSION"))),
                    ),
                    ping: ping::Behaviour::new(ping::Config::new().with_interval(
                        (ttl / 3).clamp(Duration::from_millis(500), Duration::from_secs(15)),
                    )),
                    kad,
                    gossipsub,
                    mdns: mdns.into(),
                    share: request_response::Behaviour::with_codec(
                        ShareCodec,
                        [(
                            StreamProtocol::new(SHARE_PROTOCOL),
                            request_response::ProtocolSupport::Full,
                        )],
                        request_response::Config::default()
                            .with_request_timeout(REQUEST_TIMEOUT)
                            .with_max_concurrent_streams(256),
                    ),
                })
            },
        )?
        .with_swarm_config(|c| c.with_idle_connection_timeout(ttl.max(Duration::from_secs(30))))
        .build();
    Ok(swarm)
}

type Tree = Arc<(u64, Vec<[u8; 32]>)>;

struct Driver {
    swarm: Swarm<Behaviour>,
    topic: gossipsub::IdentTopic,
    book: Arc<Mutex<PeerBook>>,
    blobs: Arc<BlobStore>,
    local_offers: Arc<Mutex<Vec<Offer>>>,
    events: mpsc::Sender<Event>,
    commands: mpsc::Sender<Command>,
    pending:
        HashMap<request_response::OutboundRequestId, oneshot::Sender<Result<Response, String>>>,
    dials: HashMap<libp2p::swarm::ConnectionId, oneshot::Sender<Result<(), String>>>,
    queries: HashMap<kad::QueryId, (oneshot::Sender<Vec<PeerId>>, Vec<PeerId>)>,
    trees: Arc<TreeCache>,
    traffic: Arc<super::traffic::Traffic>,
    listening: Arc<Mutex<Vec<Multiaddr>>>,
    ttl: Duration,
}

impl Driver {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut sweep = tokio::time::interval((self.ttl / 4).max(Duration::from_millis(250)));
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                command = commands.recv() => match command {
                    Some(command) => self.on_command(command),
                    None => break,
                },
                _ = sweep.tick() => self.expire_silent_peers(),
            }
        }
        tracing::debug!("p2p swarm stopped");
    }

    fn expire_silent_peers(&mut self) {
        let gone = lock(&self.book).expire(std::time::Instant::now());
        for peer in gone {
            tracing::info!(%peer, "peer silent for longer than the TTL: dropped");
            let _ = self.swarm.disconnect_peer_id(peer);
            self.swarm.behaviour_mut().kad.remove_peer(&peer);
        }
    }

    fn strike(&mut self, peer: PeerId, reason: &str) {
        if lock(&self.book).strike(peer, reason) {
            self.swarm.behaviour_mut().blocked.block_peer(peer);
            self.swarm.behaviour_mut().kad.remove_peer(&peer);
            let _ = self.swarm.disconnect_peer_id(peer);
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Dial(address, reply) => {
                if let Some(peer) = peer_of(&address) {
                    self.swarm
                        .behaviour_mut()
                        .kad
                        .add_address(&peer, address.clone());
                }
                let dial = libp2p::swarm::dial_opts::DialOpts::from(address);
                let id = dial.connection_id();
                match self.swarm.dial(dial) {
                    Ok(()) => {
                        self.dials.insert(id, reply);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e.to_string()));
                    }
                }
            }
            Command::Request {
                peer,
                request,
                reply,
            } => {
                let addresses: Vec<Multiaddr> = lock(&self.book)
                    .get(&peer)
                    .map(|e| e.addresses.iter().cloned().collect())
                    .unwrap_or_default();
                let id = self
                    .swarm
                    .behaviour_mut()
                    .share
                    .send_request_with_addresses(&peer, request, addresses);
                self.pending.insert(id, reply);
            }
            Command::Announce(offers) => self.announce(offers, true),
            Command::FindProviders(hash, reply) => {
                let key = kad::RecordKey::new(hash.0.as_bytes());
                let id = self.swarm.behaviour_mut().kad.get_providers(key);
                self.queries.insert(id, (reply, Vec::new()));
            }
            Command::Strike(peer, reason) => self.strike(peer, &reason),
            Command::Respond(channel, response) => {
                if self
                    .swarm
                    .behaviour_mut()
                    .share
                    .send_response(channel, *response)
                    .is_err()
                {
                    tracing::debug!("response not sent: the requester went away");
                }
            }
        }
    }

    /// Announces `offers` over gossipsub; with `records`, also registers
    /// each as a kademlia provider record.
    fn announce(&mut self, offers: Vec<Offer>, records: bool) {
        for offer in offers.iter().filter(|_| records) {
            if let Ok(hash) = offer.hash_text().parse::<ContentHash>() {
                let key = kad::RecordKey::new(hash.0.as_bytes());
                if let Err(e) = self.swarm.behaviour_mut().kad.start_providing(key) {
                    tracing::warn!(%hash, "cannot register a provider record: {e}");
                }
            }
        }
        let message = match serde_json::to_vec(&Announcement { offers }) {
            Ok(message) => message,
            Err(e) => {
                tracing::error!("cannot encode an announcement: {e}");
                return;
            }
        };
        let topic = self.topic.clone();
        match self.swarm.behaviour_mut().gossipsub.publish(topic, message) {
            Ok(_) => {}
            Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => {
                tracing::debug!("announcement not sent: no subscribed peers yet");
            }
            Err(e) => tracing::warn!("announcement not sent: {e}"),
        }
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, "p2p listening");
                lock(&self.listening).push(address);
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                ..
            } => {
                if let Some(reply) = self.dials.remove(&connection_id) {
                    let _ = reply.send(Ok(()));
                }
                if endpoint.is_dialer() {
                    let address = endpoint.get_remote_address().clone();
                    lock(&self.book).add_address(peer_id, address);
                }
                lock(&self.book).set_connected(peer_id, true);
                // Ask every new peer what it provides: announcements made
                // before this connection would otherwise be missed.
                let id = self
                    .swarm
                    .behaviour_mut()
                    .share
                    .send_request(&peer_id, Request::Catalog);
                let (reply, response) = oneshot::channel();
                self.pending.insert(id, reply);
                let commands = self.commands.clone();
                let book = self.book.clone();
                let events = self.events.clone();
                tokio::spawn(async move {
                    if let Ok(Ok(Response::Catalog(offers))) = response.await {
                        record_offers(&book, &events, &commands, peer_id, offers).await;
                    }
                });
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                lock(&self.book).set_connected(peer_id, false);
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                error,
                ..
            } => {
                if let Some(reply) = self.dials.remove(&connection_id) {
                    let _ = reply.send(Err(error.to_string()));
                }
            }
            SwarmEvent::Behaviour(event) => self.on_behaviour_event(event),
            _ => {}
        }
    }

    fn on_behaviour_event(&mut self, event: BehaviourEvent) {
        match event {
            BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                let mut book = lock(&self.book);
                book.set_agent(peer_id, info.agent_version);
                for address in info.listen_addrs.into_iter().take(16) {
                    book.add_address(peer_id, address);
                }
                book.seen(peer_id);
                if let Some(entry) = book.get(&peer_id) {
                    let addresses: Vec<Multiaddr> = entry.addresses.iter().cloned().collect();
                    drop(book);
                    for address in addresses {
                        self.swarm
                            .behaviour_mut()
                            .kad
                            .add_address(&peer_id, address);
                    }
                }
            }
            BehaviourEvent::Ping(ping::Event {
                peer,
                result: Ok(_),
                ..
            }) => lock(&self.book).seen(peer),
            BehaviourEvent::Mdns(mdns::Event::Discovered(found)) => {
                for (peer, address) in found {
                    lock(&self.book).add_address(peer, address.clone());
                    self.swarm
                        .behaviour_mut()
                        .kad
                        .add_address(&peer, address.clone());
                    if !self.swarm.is_connected(&peer) {
                        let _ = self.swarm.dial(address);
                    }
                }
            }
            BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message,
                ..
            }) => {
                let provider = message.source.unwrap_or(propagation_source);
                match serde_json::from_slice::<Announcement>(&message.data) {
                    Ok(announcement) => {
                        let (book, events, commands) = (
                            self.book.clone(),
                            self.events.clone(),
                            self.commands.clone(),
                        );
                        tokio::spawn(async move {
                            record_offers(&book, &events, &commands, provider, announcement.offers)
                                .await;
                        });
                    }
                    Err(e) => {
                        self.strike(propagation_source, &format!("malformed announcement: {e}"));
                    }
                }
            }
            BehaviourEvent::Gossipsub(gossipsub::Event::Subscribed { peer_id, .. }) => {
                // A peer that just joined the topic missed earlier
                // announcements: announce again.
                lock(&self.book).seen(peer_id);
                let offers = lock(&self.local_offers).clone();
                if !offers.is_empty() {
                    self.announce(offers, false);
                }
            }
            BehaviourEvent::Kad(kad::Event::OutboundQueryProgressed {
                id,
                result: kad::QueryResult::GetProviders(result),
                step,
                ..
            }) => {
                if let Some((_, found)) = self.queries.get_mut(&id)
                    && let Ok(kad::GetProvidersOk::FoundProviders { providers, .. }) = result
                {
                    found.extend(providers);
                }
                if step.last
                    && let Some((reply, found)) = self.queries.remove(&id)
                {
                    let _ = reply.send(found);
                }
            }
            BehaviourEvent::Share(event) => self.on_share_event(event),
            _ => {}
        }
    }

    fn on_share_event(&mut self, event: request_response::Event<Request, Response>) {
        use request_response::{Event as E, Message};
        match event {
            E::Message {
                peer,
                message:
                    Message::Request {
                        request, channel, ..
                    },
                ..
            } => {
                lock(&self.book).seen(peer);
                self.serve(request, channel);
            }
            E::Message {
                peer,
                message:
                    Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                lock(&self.book).seen(peer);
                if let Some(reply) = self.pending.remove(&request_id) {
                    let _ = reply.send(Ok(response));
                }
            }
            E::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                if let Some(reply) = self.pending.remove(&request_id) {
                    let _ = reply.send(Err(error.to_string()));
                }
                if let request_response::OutboundFailure::Io(e) = &error
                    && e.kind() == std::io::ErrorKind::InvalidData
                {
                    self.strike(peer, &format!("malformed response: {e}"));
                }
            }
            E::InboundFailure { peer, error, .. } => {
                if let request_response::InboundFailure::Io(e) = &error
                    && e.kind() == std::io::ErrorKind::InvalidData
                {
                    self.strike(peer, &format!("malformed request: {e}"));
                }
            }
            E::ResponseSent { .. } => {}
        }
    }

    /// Answers a share request. Catalogs come from memory; trees and chunks
    /// read the blob store on a blocking thread and respond through a
    /// command, so the swarm never waits on the disk.
    fn serve(&mut self, request: Request, channel: request_response::ResponseChannel<Response>) {
        if let Request::Catalog = request {
            let offers = lock(&self.local_offers).clone();
            let _ = self
                .swarm
                .behaviour_mut()
                .share
                .send_response(channel, Response::Catalog(offers));
            return;
        }
        let blobs = self.blobs.clone();
        let trees = self.trees.clone();
        let commands = self.commands.clone();
        let traffic = self.traffic.clone();
        tokio::spawn(async move {
            let response = tokio::task::spawn_blocking(move || answer(&blobs, &trees, request))
                .await
                .unwrap_or_else(|e| Response::Missing(format!("internal error: {e}")));
            if let Response::Chunk(data) = &response {
                traffic.served(data.len());
            }
            let _ = commands
                .send(Command::Respond(channel, Box::new(response)))
                .await;
        });
    }
}

/// Records offers from `peer` and tells the mesh service about new ones; an
/// invalid list earns the peer a strike.
async fn record_offers(
    book: &Mutex<PeerBook>,
    events: &mpsc::Sender<Event>,
    commands: &mpsc::Sender<Command>,
    peer: PeerId,
    offers: Vec<Offer>,
) {
    let recorded = lock(book).offered(peer, offers);
    match recorded {
        Ok(new) => {
            for offer in new {
                let _ = events.send(Event::Offered { peer, offer }).await;
            }
        }
        Err(reason) => {
            let _ = commands.send(Command::Strike(peer, reason)).await;
        }
    }
}

/// The answer to a tree or chunk request, from the blob store.
fn answer(blobs: &BlobStore, trees: &TreeCache, request: Request) -> Response {
    let (hash_text, index) = match &request {
        Request::Tree { hash } => (hash, None),
        Request::Chunk { hash, index } => (hash, Some(*index)),
        Request::Catalog => return Response::Missing("not a blob request".into()),
    };
    let Ok(hash) = hash_text.parse::<ContentHash>() else {
        return Response::Missing(format!("`{hash_text}` is not a blob hash"));
    };
    let size = match blobs.size(&hash) {
        Ok(Some(size)) => size,
        Ok(None) => return Response::Missing(format!("no blob {hash}")),
        Err(e) => return Response::Missing(e.to_string()),
    };
    match index {
        None => {
            let cached = lock(trees).get(&hash).cloned();
            let tree = match cached {
                Some(tree) => tree,
                None => {
                    let read_chunk = |range| match blobs.read_range(&hash, range) {
                        Ok(Some(data)) => Ok(data),
                        Ok(None) => Err(format!("no blob {hash}")),
                        Err(e) => Err(e.to_string()),
                    };
                    let tree = match chaining_values(size, read_chunk) {
                        Ok(cvs) => Arc::new((size, cvs)),
                        Err(e) => return Response::Missing(e),
                    };
                    let mut trees = lock(trees);
                    if trees.len() >= 256 {
                        trees.clear();
                    }
                    trees.insert(hash, tree.clone());
                    tree
                }
            };
            Response::Tree {
                size: tree.0,
                cvs: tree.1.clone(),
            }
        }
        Some(index) => {
            if index >= chunk_count(size) {
                return Response::Missing(format!("blob {hash} has no chunk {index}"));
            }
            match blobs.read_range(&hash, chunk_range(size, index)) {
                Ok(Some(data)) => Response::Chunk(data),
                Ok(None) => Response::Missing(format!("no blob {hash}")),
                Err(e) => Response::Missing(e.to_string()),
            }
        }
    }
}
