//! What the mesh moves: bytes of verified chunks received and of chunks
//! served, and the fetches in progress (for the dashboard's progress bars
//! and the metrics). Counting is two relaxed atomic adds per chunk.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// The mesh's traffic.
#[derive(Debug, Default)]
pub struct Traffic {
    received: AtomicU64,
    sent: AtomicU64,
    next_id: AtomicU64,
    transfers: Mutex<BTreeMap<u64, TransferView>>,
}

/// A fetch in progress.
#[derive(Debug, Clone, Serialize)]
pub struct TransferView {
    /// Its number.
    pub id: u64,
    /// What is fetched (the blob's hash).
    pub what: String,
    /// Bytes verified so far.
    pub done_bytes: u64,
    /// The blob's size, once known.
    pub total_bytes: Option<u64>,
}

/// A fetch in progress; dropping it ends it.
pub struct Transfer {
    traffic: Arc<Traffic>,
    id: u64,
}

impl Traffic {
    fn transfers(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, TransferView>> {
        match self.transfers.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Bytes of verified chunks received.
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// Bytes of chunks served.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Counts `bytes` served.
    pub fn served(&self, bytes: usize) {
        self.sent.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// The fetches in progress.
    pub fn in_progress(&self) -> Vec<TransferView> {
        self.transfers().values().cloned().collect()
    }

    /// Starts tracking a fetch of `what`.
    pub fn start(self: &Arc<Self>, what: String) -> Transfer {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.transfers().insert(
            id,
            TransferView {
                id,
                what,
                done_bytes: 0,
                total_bytes: None,
            },
        );
        Transfer {
            traffic: self.clone(),
            id,
        }
    }
}

impl Transfer {
    /// The blob's size is known.
    pub fn sized(&self, total: u64) {
        if let Some(t) = self.traffic.transfers().get_mut(&self.id) {
            t.total_bytes = Some(total);
        }
    }

    /// `bytes` more were received and verified.
    pub fn received(&self, bytes: usize) {
        self.traffic
            .received
            .fetch_add(bytes as u64, Ordering::Relaxed);
        if let Some(t) = self.traffic.transfers().get_mut(&self.id) {
            t.done_bytes += bytes as u64;
        }
    }
}

impl Drop for Transfer {
    fn drop(&mut self) {
        self.traffic.transfers().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transfers_count_and_end_when_dropped() {
        let traffic = Arc::new(Traffic::default());
        let transfer = traffic.start("blake3:ab".into());
        transfer.sized(100);
        transfer.received(40);
        traffic.served(7);
        let now = traffic.in_progress();
        assert_eq!((now[0].done_bytes, now[0].total_bytes), (40, Some(100)));
        drop(transfer);
        assert!(traffic.in_progress().is_empty());
        assert_eq!((traffic.received(), traffic.sent()), (40, 7));
    }
}
