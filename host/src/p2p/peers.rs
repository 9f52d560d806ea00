//! What a host knows of its peers: their addresses, when each was last
//! heard from, the strikes it earned by misbehaving, and what each offers.
//! Silent peers expire after the TTL; a peer with [`MAX_STRIKES`] is
//! banned. Pure bookkeeping, no I/O: the swarm feeds it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use libp2p::{Multiaddr, PeerId};
use serde::Serialize;

use super::protocol::{MAX_OFFERS, Offer};
use crate::content_hash::ContentHash;

/// Strikes after which a peer is banned (disconnected and refused).
pub const MAX_STRIKES: u32 = 3;

/// Most addresses kept per peer.
const MAX_ADDRESSES: usize = 16;

/// One peer.
#[derive(Debug, Clone)]
pub struct PeerEntry {
    /// Where it can be reached.
    pub addresses: BTreeSet<Multiaddr>,
    /// When it was last heard from.
    pub last_seen: Instant,
    /// Misbehaviours counted against it, and the last reason.
    pub strikes: u32,
    /// Why it got its last strike.
    pub last_strike: Option<String>,
    /// Whether a connection is open.
    pub connected: bool,
    /// What it says it runs (identify's agent version).
    pub agent: Option<String>,
}

/// A blob some peers offer.
#[derive(Debug, Clone)]
pub struct RemoteOffer {
    /// What it is.
    pub offer: Offer,
    /// Who offers it.
    pub providers: BTreeSet<PeerId>,
}

/// A peer, as the MCP tools and the CLI show it.
#[derive(Debug, Clone, Serialize)]
pub struct PeerView {
    /// Its peer id.
    pub id: String,
    /// Its addresses.
    pub addresses: Vec<String>,
    /// Whether a connection is open.
    pub connected: bool,
    /// Milliseconds since it was last heard from.
    pub last_seen_ms: u64,
    /// Strikes against it.
    pub strikes: u32,
    /// Why it got its last strike.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_strike: Option<String>,
    /// What it runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// How many blobs it offers.
    pub offers: usize,
}

/// The book of peers.
#[derive(Debug)]
pub struct PeerBook {
    ttl: Duration,
    peers: HashMap<PeerId, PeerEntry>,
    offers: BTreeMap<ContentHash, RemoteOffer>,
    banned: BTreeSet<PeerId>,
}

impl PeerBook {
    /// An empty book dropping peers silent for `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            peers: HashMap::new(),
            offers: BTreeMap::new(),
            banned: BTreeSet::new(),
        }
    }

    fn entry(&mut self, peer: PeerId) -> &mut PeerEntry {
        self.peers.entry(peer).or_insert_with(|| PeerEntry {
            addresses: BTreeSet::new(),
            last_seen: Instant::now(),
            strikes: 0,
            last_strike: None,
            connected: false,
            agent: None,
        })
    }

    /// `peer` was heard from just now.
    pub fn seen(&mut self, peer: PeerId) {
        if !self.banned.contains(&peer) {
            self.entry(peer).last_seen = Instant::now();
        }
    }

    /// `peer` can be reached at `address`.
    pub fn add_address(&mut self, peer: PeerId, address: Multiaddr) {
        if self.banned.contains(&peer) {
            return;
        }
        let entry = self.entry(peer);
        if entry.addresses.len() < MAX_ADDRESSES {
            entry.addresses.insert(address);
        }
    }

    /// A connection to `peer` opened or (all) closed. Opening counts as
    /// hearing from it; closing does not.
    pub fn set_connected(&mut self, peer: PeerId, connected: bool) {
        if self.banned.contains(&peer) {
            return;
        }
        if connected {
            let entry = self.entry(peer);
            entry.connected = true;
            entry.last_seen = Instant::now();
        } else if let Some(entry) = self.peers.get_mut(&peer) {
            entry.connected = false;
        }
    }

    /// `peer` says it runs `agent`.
    pub fn set_agent(&mut self, peer: PeerId, agent: String) {
        if !self.banned.contains(&peer) {
            self.entry(peer).agent = Some(agent.chars().take(128).collect());
        }
    }

    /// Records what `peer` offers. Returns the offers new to this host, and
    /// whether the list was acceptable (an invalid one earns a strike).
    pub fn offered(&mut self, peer: PeerId, offers: Vec<Offer>) -> Result<Vec<Offer>, String> {
        if self.banned.contains(&peer) {
            return Ok(Vec::new());
        }
        if offers.len() > MAX_OFFERS {
            return Err(format!("{} offers at once", offers.len()));
        }
        let mut checked = Vec::with_capacity(offers.len());
        for offer in offers {
            let hash = offer.check().map_err(|e| format!("invalid offer: {e}"))?;
            checked.push((hash, offer));
        }
        self.seen(peer);
        let mut new = Vec::new();
        for (hash, offer) in checked {
            let remote = self.offers.entry(hash).or_insert_with(|| {
                new.push(offer.clone());
                RemoteOffer {
                    offer,
                    providers: BTreeSet::new(),
                }
            });
            remote.providers.insert(peer);
        }
        Ok(new)
    }

    /// Counts a misbehaviour against `peer`; true when it is now banned.
    pub fn strike(&mut self, peer: PeerId, reason: &str) -> bool {
        if self.banned.contains(&peer) {
            return false;
        }
        let entry = self.entry(peer);
        entry.strikes += 1;
        entry.last_strike = Some(reason.to_owned());
        tracing::warn!(%peer, strikes = entry.strikes, "peer misbehaved: {reason}");
        if entry.strikes >= MAX_STRIKES {
            tracing::warn!(%peer, "peer banned after {MAX_STRIKES} strikes");
            self.banned.insert(peer);
            self.remove(&peer);
            return true;
        }
        false
    }

    /// Whether `peer` is banned.
    pub fn is_banned(&self, peer: &PeerId) -> bool {
        self.banned.contains(peer)
    }

    fn remove(&mut self, peer: &PeerId) {
        self.peers.remove(peer);
        self.offers.retain(|_, remote| {
            remote.providers.remove(peer);
            !remote.providers.is_empty()
        });
    }

    /// The peers silent for longer than the TTL at `now`; they are removed.
    pub fn expire(&mut self, now: Instant) -> Vec<PeerId> {
        let ttl = self.ttl;
        let silent: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, e)| now.saturating_duration_since(e.last_seen) > ttl)
            .map(|(p, _)| *p)
            .collect();
        for peer in &silent {
            self.remove(peer);
        }
        silent
    }

    /// Who offers blob `hash`.
    pub fn providers(&self, hash: &ContentHash) -> Vec<PeerId> {
        self.offers
            .get(hash)
            .map(|r| r.providers.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Everything peers offer.
    pub fn offers(&self) -> impl Iterator<Item = (&ContentHash, &RemoteOffer)> {
        self.offers.iter()
    }

    /// A known peer.
    pub fn get(&self, peer: &PeerId) -> Option<&PeerEntry> {
        self.peers.get(peer)
    }

    /// Every known peer, for display.
    pub fn views(&self) -> Vec<PeerView> {
        let now = Instant::now();
        let mut views: Vec<PeerView> = self
            .peers
            .iter()
            .map(|(id, e)| PeerView {
                id: id.to_string(),
                addresses: e.addresses.iter().map(ToString::to_string).collect(),
                connected: e.connected,
                last_seen_ms: now.saturating_duration_since(e.last_seen).as_millis() as u64,
                strikes: e.strikes,
                last_strike: e.last_strike.clone(),
                agent: e.agent.clone(),
                offers: self
                    .offers
                    .values()
                    .filter(|r| r.providers.contains(id))
                    .count(),
            })
            .collect();
        views.sort_by(|a, b| a.id.cmp(&b.id));
        views
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weights(n: u8) -> Offer {
        Offer::Weights {
            network: format!("net{n}"),
            topology: "t".into(),
            hash: ContentHash::of(&[n]).to_string(),
            size: 4,
        }
    }

    #[test]
    fn offers_are_recorded_per_provider_and_checked() {
        let mut book = PeerBook::new(Duration::from_secs(60));
        let (a, b) = (PeerId::random(), PeerId::random());
        assert_eq!(book.offered(a, vec![weights(1)]).unwrap().len(), 1);
        assert!(book.offered(b, vec![weights(1)]).unwrap().is_empty());
        let hash = ContentHash::of(&[1]);
        assert_eq!(book.providers(&hash).len(), 2);

        let mut bad = weights(2);
        if let Offer::Weights { hash, .. } = &mut bad {
            *hash = "nope".into();
        }
        assert!(book.offered(a, vec![weights(3), bad]).is_err());
        assert!(
            book.providers(&ContentHash::of(&[3])).is_empty(),
            "an invalid list is refused whole"
        );
    }

    #[test]
    fn three_strikes_ban_a_peer_and_drop_its_offers() {
        let mut book = PeerBook::new(Duration::from_secs(60));
        let peer = PeerId::random();
        book.offered(peer, vec![weights(1)]).unwrap();
        assert!(!book.strike(peer, "corrupt chunk"));
        assert!(!book.strike(peer, "corrupt chunk"));
        assert!(book.strike(peer, "corrupt chunk"));
        assert!(book.is_banned(&peer));
        assert!(book.providers(&ContentHash::of(&[1])).is_empty());
        assert!(book.offered(peer, vec![weights(1)]).unwrap().is_empty());
        assert!(book.get(&peer).is_none());
    }

    #[test]
    fn silent_peers_expire() {
        let mut book = PeerBook::new(Duration::from_millis(50));
        let (quiet, chatty) = (PeerId::random(), PeerId::random());
        book.offered(quiet, vec![weights(1)]).unwrap();
        book.seen(chatty);
        let later = Instant::now() + Duration::from_millis(100);
        let mut gone = book.expire(later);
        gone.sort();
        let mut both = vec![quiet, chatty];
        both.sort();
        assert_eq!(gone, both);
        assert!(book.providers(&ContentHash::of(&[1])).is_empty());
        book.seen(chatty);
        assert!(book.expire(Instant::now()).is_empty());
    }
}
