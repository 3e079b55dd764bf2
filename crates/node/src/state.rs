//! The node's short-lived memory: seen request ids, kept results and rate-limit counters.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use sigil_primitives::request::{ErrorDetail, RelayResponse, RequestStatus, SignatureStatus};
use sigil_primitives::{RequestId, VerifyingKey};

/// Request ids seen within the freshness window; a repeat is a replay.
#[derive(Default)]
pub struct ReplayCache {
    seen: HashMap<[u8; 32], Instant>,
}

impl ReplayCache {
    /// Records `id`; false if it was already seen within `window`.
    pub fn insert(&mut self, id: [u8; 32], window: Duration) -> bool {
        let now = Instant::now();
        if self.seen.len() > 4096 {
            self.seen.retain(|_, at| now.duration_since(*at) < window);
        }
        match self.seen.get(&id) {
            Some(at) if now.duration_since(*at) < window => false,
            _ => {
                self.seen.insert(id, now);
                true
            }
        }
    }
}

/// Results of relayed requests, kept for `GET /v1/signature/{id}`.
#[derive(Default)]
pub struct Results {
    entries: HashMap<RequestId, (SignatureStatus, Instant)>,
}

impl Results {
    fn put(&mut self, status: SignatureStatus, ttl: Duration) {
        let now = Instant::now();
        self.entries
            .retain(|_, (_, at)| now.duration_since(*at) < ttl);
        self.entries.insert(status.request_id, (status, now));
    }

    /// Marks a request as being signed.
    pub fn pending(&mut self, request_id: RequestId, ttl: Duration) {
        self.put(
            SignatureStatus {
                request_id,
                status: RequestStatus::Pending,
                result: None,
                error: None,
            },
            ttl,
        );
    }

    /// Stores a request's signature.
    pub fn done(&mut self, response: RelayResponse, ttl: Duration) {
        self.put(
            SignatureStatus {
                request_id: response.request_id,
                status: RequestStatus::Done,
                result: Some(response),
                error: None,
            },
            ttl,
        );
    }

    /// Stores why a request failed.
    pub fn failed(&mut self, request_id: RequestId, error: ErrorDetail, ttl: Duration) {
        self.put(
            SignatureStatus {
                request_id,
                status: RequestStatus::Failed,
                result: None,
                error: Some(error),
            },
            ttl,
        );
    }

    /// A kept result, if still within `ttl`.
    pub fn get(&self, request_id: &RequestId, ttl: Duration) -> Option<SignatureStatus> {
        self.entries
            .get(request_id)
            .filter(|(_, at)| at.elapsed() < ttl)
            .map(|(status, _)| status.clone())
    }
}

/// Signatures per verifying key per request block: successes plus those in flight, so
/// concurrent requests cannot overshoot the limit.
#[derive(Default)]
pub struct RateLimiter {
    counts: HashMap<(VerifyingKey, u64), u32>,
}

impl RateLimiter {
    /// Takes a slot for `key` at `block`; false if `limit` are already used or in flight.
    pub fn reserve(&mut self, key: VerifyingKey, block: u64, limit: u32, oldest: u64) -> bool {
        self.counts.retain(|(_, b), _| *b >= oldest);
        let count = self.counts.entry((key, block)).or_default();
        if *count >= limit {
            return false;
        }
        *count += 1;
        true
    }

    /// Gives back a slot whose signing failed (only successes count).
    pub fn release(&mut self, key: VerifyingKey, block: u64) {
        if let Some(count) = self.counts.get_mut(&(key, block)) {
            *count = count.saturating_sub(1);
        }
    }
}
