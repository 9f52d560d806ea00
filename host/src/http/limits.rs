//! Per-client fairness: a token bucket of requests (429 with `Retry-After`
//! past it) and a cap on tool calls running at once (a tool error naming
//! the limit past it). Each client has its own, so one client flooding the
//! host spends only its own allowance.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::http::config::ClientLimits;

/// One client's allowance.
pub struct ClientAllowance {
    limits: ClientLimits,
    requests: DefaultDirectRateLimiter,
    calls: Arc<Semaphore>,
}

impl std::fmt::Debug for ClientAllowance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientAllowance")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// Past the request rate: when to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub Duration);

/// Past the calls-in-flight cap.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "client `{client}` already has {limit} tool calls running (its limit): wait for one to finish"
)]
pub struct TooManyCalls {
    /// The client.
    pub client: String,
    /// Its cap.
    pub limit: u32,
}

impl ClientAllowance {
    fn new(limits: ClientLimits) -> Self {
        let rate = NonZeroU32::new(limits.requests_per_s).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(limits.burst).unwrap_or(NonZeroU32::MIN);
        Self {
            limits,
            requests: RateLimiter::direct(Quota::per_second(rate).allow_burst(burst)),
            calls: Arc::new(Semaphore::new(limits.max_in_flight as usize)),
        }
    }

    /// Takes one request from the bucket.
    pub fn admit_request(&self) -> Result<(), RetryAfter> {
        self.requests.check().map_err(|not_until| {
            RetryAfter(not_until.wait_time_from(DefaultClock::default().now()))
        })
    }

    /// Takes a call slot, held until the permit drops.
    pub fn start_call(&self, client: &str) -> Result<OwnedSemaphorePermit, TooManyCalls> {
        self.calls
            .clone()
            .try_acquire_owned()
            .map_err(|_| TooManyCalls {
                client: client.to_owned(),
                limit: self.limits.max_in_flight,
            })
    }
}

/// Every client's allowance, made on first sight and remade when its
/// configured limits change.
#[derive(Default)]
pub struct Allowances {
    clients: RwLock<HashMap<String, Arc<ClientAllowance>>>,
}

impl Allowances {
    /// The allowance of `client`, with `limits`.
    pub fn of(&self, client: &str, limits: ClientLimits) -> Arc<ClientAllowance> {
        if let Some(a) = self
            .clients
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(client)
            .filter(|a| a.limits == limits)
        {
            return a.clone();
        }
        let mut clients = self
            .clients
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = clients
            .entry(client.to_owned())
            .or_insert_with(|| Arc::new(ClientAllowance::new(limits)));
        if entry.limits != limits {
            *entry = Arc::new(ClientAllowance::new(limits));
        }
        entry.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_empties_and_says_when_to_retry() {
        let allowances = Allowances::default();
        let limits = ClientLimits {
            requests_per_s: 1,
            burst: 3,
            max_in_flight: 1,
        };
        let a = allowances.of("a", limits);
        for _ in 0..3 {
            a.admit_request().unwrap();
        }
        let RetryAfter(wait) = a.admit_request().unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        // Another client is untouched.
        allowances.of("b", limits).admit_request().unwrap();
        let held = a.start_call("a").unwrap();
        let refused = a.start_call("a").unwrap_err();
        assert!(refused.to_string().contains("1 tool calls running"));
        drop(held);
        let _again = a.start_call("a").unwrap();
    }
}
