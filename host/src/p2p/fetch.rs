//! Fetching a blob from the mesh.
//!
//! The chunk list comes from the first provider whose list rebuilds the
//! blob's name. Chunks are then requested from every provider at once, a
//! few in flight per provider; each is verified on arrival and only then
//! written (at its offset) into a staging file outside the store. A
//! provider that fails or disappears is dropped and its chunks go to the
//! others; one that sends a wrong chunk also gets a strike. When every chunk
//! is in, the whole file is hashed once more and moved into the store.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use libp2p::PeerId;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use super::protocol::{MAX_BLOB_BYTES, Request, Response};
use super::swarm::Command;
use super::tree::{ChunkVerifier, chunk_range};
use crate::capability::blobs::BlobStore;
use crate::capability::progress::{ProgressReport, ProgressSink};
use crate::content_hash::ContentHash;

/// Chunk requests in flight per provider.
const WINDOW: usize = 6;

/// How many times to look for more providers when all have failed.
const REFRESHES: u32 = 3;

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// No peer offers the blob, or none that answered had it.
    #[error("no provider of {hash} answered{detail}")]
    NoProvider {
        /// The blob.
        hash: ContentHash,
        /// What went wrong with those that were asked.
        detail: String,
    },
    /// Every provider failed before the last chunk.
    #[error("fetching {hash} stopped after {done} of {total} chunks: no provider left ({detail})")]
    Incomplete {
        /// The blob.
        hash: ContentHash,
        /// Chunks verified.
        done: u64,
        /// Chunks in all.
        total: u64,
        /// The last failures.
        detail: String,
    },
    /// The blob is larger than a host fetches.
    #[error("blob {hash} is {size} bytes; at most {MAX_BLOB_BYTES} are fetched")]
    TooLarge {
        /// The blob.
        hash: ContentHash,
        /// Its size.
        size: u64,
    },
    /// The local store failed.
    #[error("blob store: {0}")]
    Store(String),
}

/// What a fetch did.
#[derive(Debug, Clone, Serialize)]
pub struct FetchReport {
    /// The blob.
    pub hash: String,
    /// Its size.
    pub size: u64,
    /// Chunks in all.
    pub chunks: u64,
    /// Verified chunks per provider.
    pub from: BTreeMap<String, u64>,
    /// Providers dropped along the way, and why.
    pub dropped: Vec<String>,
    /// Whether the store had it already (nothing fetched).
    pub already_had: bool,
    /// Wall time.
    pub millis: u64,
}

/// The fetcher's way to the swarm.
#[derive(Clone)]
pub struct Link {
    /// Commands to the swarm task.
    pub commands: mpsc::Sender<Command>,
    /// Bytes moved and fetches in progress.
    pub traffic: Arc<super::traffic::Traffic>,
}

impl Link {
    /// Sends `request` to `peer` and waits for the response.
    pub async fn request(&self, peer: PeerId, request: Request) -> Result<Response, String> {
        let (reply, response) = oneshot::channel();
        self.commands
            .send(Command::Request {
                peer,
                request,
                reply,
            })
            .await
            .map_err(|_| "the mesh has stopped".to_owned())?;
        response
            .await
            .map_err(|_| "the mesh has stopped".to_owned())?
    }

    /// Counts a misbehaviour against `peer`.
    pub async fn strike(&self, peer: PeerId, reason: String) {
        let _ = self.commands.send(Command::Strike(peer, reason)).await;
    }

    /// Who the DHT says provides `hash` (waits at most `wait`).
    pub async fn find_providers(&self, hash: ContentHash, wait: Duration) -> Vec<PeerId> {
        let (reply, found) = oneshot::channel();
        if self
            .commands
            .send(Command::FindProviders(hash, reply))
            .await
            .is_err()
        {
            return Vec::new();
        }
        tokio::time::timeout(wait, found)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default()
    }
}

/// Finds providers of a blob: the peers known to offer it, then the DHT.
pub trait ProviderSource {
    /// Providers of `hash`, best first; `ask_the_dht` also walks the DHT
    /// (slower) rather than only asking it when no provider is known.
    fn providers(
        &self,
        hash: ContentHash,
        ask_the_dht: bool,
    ) -> impl Future<Output = Vec<PeerId>> + Send;
}

/// Fetches blob `hash` into `blobs` from the providers `source` finds.
pub async fn fetch(
    link: &Link,
    source: &impl ProviderSource,
    blobs: &Arc<BlobStore>,
    hash: ContentHash,
    progress: Option<&ProgressSink>,
) -> Result<FetchReport, FetchError> {
    let started = Instant::now();
    let mut report = FetchReport {
        hash: hash.to_string(),
        size: 0,
        chunks: 0,
        from: BTreeMap::new(),
        dropped: Vec::new(),
        already_had: false,
        millis: 0,
    };
    if let Ok(Some(size)) = blobs.size(&hash) {
        report.size = size;
        report.already_had = true;
        return Ok(report);
    }
    let mut dropped: HashSet<PeerId> = HashSet::new();
    let mut providers: Vec<PeerId> = source.providers(hash, false).await;
    let no_provider = |report: &FetchReport| FetchError::NoProvider {
        hash,
        detail: if report.dropped.is_empty() {
            String::new()
        } else {
            format!(": {}", report.dropped.join("; "))
        },
    };

    // The chunk list, from the first provider whose list is authentic.
    let mut verifier = None;
    for &peer in &providers {
        match link
            .request(
                peer,
                Request::Tree {
                    hash: hash.to_string(),
                },
            )
            .await
        {
            Ok(Response::Tree { size, cvs }) => match ChunkVerifier::new(hash, size, cvs) {
                Ok(v) => {
                    verifier = Some(v);
                    break;
                }
                Err(e) => {
                    link.strike(peer, e.to_string()).await;
                    report.dropped.push(format!("{peer}: {e}"));
                    dropped.insert(peer);
                }
            },
            Ok(Response::Missing(reason)) => {
                report.dropped.push(format!("{peer}: {reason}"));
                dropped.insert(peer);
            }
            Ok(_) => {
                link.strike(peer, "answered a tree request with something else".into())
                    .await;
                dropped.insert(peer);
            }
            Err(e) => {
                report.dropped.push(format!("{peer}: {e}"));
                dropped.insert(peer);
            }
        }
    }
    let verifier = verifier.ok_or_else(|| no_provider(&report))?;
    let size = verifier.size();
    let transfer = link.traffic.start(hash.to_string());
    transfer.sized(size);
    if size > MAX_BLOB_BYTES {
        return Err(FetchError::TooLarge { hash, size });
    }
    report.size = size;
    report.chunks = verifier.chunk_count();

    let store_error = |e: &dyn std::fmt::Display| FetchError::Store(e.to_string());
    let staging = blobs.staging_file().map_err(|e| store_error(&e))?;
    staging
        .as_file()
        .set_len(size)
        .map_err(|e| store_error(&e))?;

    let total = verifier.chunk_count();
    let mut queue: VecDeque<u64> = (0..total).collect();
    let mut done = 0u64;
    let mut in_flight = FuturesUnordered::new();
    let mut per_peer: HashMap<PeerId, usize> = HashMap::new();
    let mut refreshes = 0;
    providers.retain(|p| !dropped.contains(p));
    while done < total {
        for &peer in &providers {
            let slots = per_peer.entry(peer).or_default();
            while *slots < WINDOW {
                let Some(index) = queue.pop_front() else {
                    break;
                };
                *slots += 1;
                let link = link.clone();
                let request = Request::Chunk {
                    hash: hash.to_string(),
                    index,
                };
                in_flight.push(async move { (peer, index, link.request(peer, request).await) });
            }
        }
        let Some((peer, index, result)) = in_flight.next().await else {
            // Nothing in flight and chunks left: every provider is gone.
            if refreshes == REFRESHES {
                return Err(FetchError::Incomplete {
                    hash,
                    done,
                    total,
                    detail: report.dropped.join("; "),
                });
            }
            refreshes += 1;
            tokio::time::sleep(Duration::from_millis(200)).await;
            providers = source
                .providers(hash, true)
                .await
                .into_iter()
                .filter(|p| !dropped.contains(p))
                .collect();
            continue;
        };
        if let Some(slots) = per_peer.get_mut(&peer) {
            *slots = slots.saturating_sub(1);
        }
        let failure = match result {
            Ok(Response::Chunk(data)) => match verifier.verify(index, &data) {
                Ok(()) => {
                    let offset = chunk_range(size, index).start;
                    staging
                        .as_file()
                        .write_all_at(&data, offset)
                        .map_err(|e| store_error(&e))?;
                    done += 1;
                    transfer.received(data.len());
                    *report.from.entry(peer.to_string()).or_default() += 1;
                    if let Some(progress) = progress {
                        progress.report(ProgressReport {
                            done: (done * size / total) as f64,
                            total: Some(size as f64),
                            message: Some(format!("{done} of {total} chunks")),
                        });
                    }
                    None
                }
                Err(e) => Some((e.to_string(), true)),
            },
            Ok(Response::Missing(reason)) => Some((reason, false)),
            Ok(_) => Some((
                "answered a chunk request with something else".to_owned(),
                true,
            )),
            Err(e) => Some((e, false)),
        };
        if let Some((reason, misbehaved)) = failure {
            tracing::warn!(%peer, %hash, index, "chunk not fetched: {reason}");
            queue.push_front(index);
            // One strike per peer and fetch: the chunks it already had in
            // flight are the same offence.
            if dropped.insert(peer) {
                if misbehaved {
                    link.strike(peer, reason.clone()).await;
                }
                report.dropped.push(format!("{peer}: {reason}"));
            }
            providers.retain(|p| *p != peer);
        }
    }
    drop(in_flight);
    let blobs = blobs.clone();
    tokio::task::spawn_blocking(move || blobs.adopt(staging, &hash))
        .await
        .map_err(|e| store_error(&e))?
        .map_err(|e| store_error(&e))?;
    report.millis = started.elapsed().as_millis() as u64;
    Ok(report)
}
