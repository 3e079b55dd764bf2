//! The node's short-lived memory: seen request ids, kept results, rate-limit counters and
//! the program records it has read.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sigil_client::types::ProgramRecord;
use sigil_primitives::ProgramId;
use sigil_programs::LruCache;

use sigil_primitives::request::{
    AttemptReport, ErrorDetail, OffenceSummary, RelayResponse, RequestStatus, SignatureStatus,
};
use sigil_primitives::{AccountId, RequestId, VerifyingKey};

/// Entries the replay cache holds before it sweeps out expired ones.
const REPLAY_SWEEP_AT: usize = 4096;

/// Program records kept in memory; ids are content hashes, so entries never go stale.
pub const PROGRAM_RECORDS_CACHED: usize = 256;

/// Locks `mutex`, recovering the data of a holder that panicked (every update is one step).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the request paths remember: program records, replay and rate limits, kept results.
#[derive(Default)]
pub struct RequestMemory {
    /// Program records read from the ledger.
    pub programs: ProgramCache,
    /// Replay cache and rate limits.
    pub limits: Limits,
    results: Mutex<Results>,
}

impl RequestMemory {
    /// Results of relayed requests.
    pub fn results(&self) -> MutexGuard<'_, Results> {
        lock(&self.results)
    }
}

/// What admits a request: the replay cache and the rate limits.
#[derive(Default)]
pub struct Limits {
    replay: Mutex<ReplayCache>,
    rate: Mutex<RateLimiter>,
}

impl Limits {
    /// The replay cache.
    pub fn replay(&self) -> MutexGuard<'_, ReplayCache> {
        lock(&self.replay)
    }

    /// The rate limiter.
    pub fn rate(&self) -> MutexGuard<'_, RateLimiter> {
        lock(&self.rate)
    }
}

/// Program records read from the ledger, least recently used evicted first.
pub struct ProgramCache(Mutex<LruCache<ProgramRecord>>);

impl Default for ProgramCache {
    fn default() -> Self {
        Self(Mutex::new(LruCache::new(PROGRAM_RECORDS_CACHED)))
    }
}

impl ProgramCache {
    /// The cached record of `id`.
    pub fn get(&self, id: &ProgramId) -> Option<Arc<ProgramRecord>> {
        lock(&self.0).get(id)
    }

    /// Caches `record`; returns the record now cached for `id`.
    pub fn insert(&self, id: ProgramId, record: Arc<ProgramRecord>) -> Arc<ProgramRecord> {
        lock(&self.0).insert(id, record)
    }
}

/// Request ids seen within the freshness window; a repeat is a replay.
#[derive(Default)]
pub struct ReplayCache {
    seen: HashMap<[u8; 32], Instant>,
}

impl ReplayCache {
    /// Records `id`; false if it was already seen within `window`.
    pub fn insert(&mut self, id: [u8; 32], window: Duration) -> bool {
        let now = Instant::now();
        if self.seen.len() > REPLAY_SWEEP_AT {
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

/// Results kept between sweeps of the expired ones: reads skip expired entries, so sweeping
/// on every insert (a scan of all of them) is not needed.
const RESULTS_SWEEP_EVERY: u32 = 256;

/// Results of relayed requests, kept for `GET /v1/signature/{id}`.
#[derive(Default)]
pub struct Results {
    entries: HashMap<RequestId, (SignatureStatus, Instant)>,
    puts: u32,
}

impl Results {
    fn put(&mut self, status: SignatureStatus, ttl: Duration) {
        let now = Instant::now();
        self.puts = self.puts.wrapping_add(1);
        if self.puts.is_multiple_of(RESULTS_SWEEP_EVERY) {
            self.entries
                .retain(|_, (_, at)| now.duration_since(*at) < ttl);
        }
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
                attempts: vec![],
                offences: vec![],
            },
            ttl,
        );
    }

    /// Adds a finished attempt to a pending request.
    pub fn attempted(&mut self, request_id: &RequestId, attempt: AttemptReport) {
        if let Some((status, _)) = self.entries.get_mut(request_id) {
            status.attempts.push(attempt);
        }
    }

    /// Replaces what is known of the offences of a request's sessions.
    pub fn offences(&mut self, request_id: &RequestId, offences: Vec<OffenceSummary>) {
        if let Some((status, _)) = self.entries.get_mut(request_id) {
            status.offences = offences;
        }
    }

    /// Stores a request's signature.
    pub fn done(&mut self, response: RelayResponse, ttl: Duration) {
        self.put(
            SignatureStatus {
                request_id: response.request_id,
                status: RequestStatus::Done,
                attempts: response.attempts.clone(),
                offences: response.offences.clone(),
                result: Some(response),
                error: None,
            },
            ttl,
        );
    }

    /// Stores why a request failed.
    pub fn failed(&mut self, request_id: RequestId, error: ErrorDetail, ttl: Duration) {
        let (attempts, offences) = self
            .entries
            .remove(&request_id)
            .map(|(status, _)| (status.attempts, status.offences))
            .unwrap_or_default();
        self.put(
            SignatureStatus {
                request_id,
                status: RequestStatus::Failed,
                result: None,
                error: Some(error),
                attempts,
                offences,
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

/// What a signature counts against, per request block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bucket {
    /// A key's allowance, one for its owner and authorised accounts and another for everyone
    /// else (public keys), so strangers can never use up the owner's.
    Key {
        /// The key.
        key: VerifyingKey,
        /// Whether the requester is the owner or authorised.
        insider: bool,
    },
    /// One requester's allowance, whatever the key.
    Requester(AccountId),
}

/// Signatures per bucket per request block: successes plus those in flight, so concurrent
/// requests cannot overshoot a limit.
#[derive(Default)]
pub struct RateLimiter {
    counts: HashMap<(Bucket, u64), u32>,
}

impl RateLimiter {
    /// Takes a slot in every one of `buckets` (each with its limit) at `block`, or in none: the
    /// first bucket already full is the error.
    pub fn reserve(
        &mut self,
        buckets: &[(Bucket, u32)],
        block: u64,
        oldest: u64,
    ) -> Result<(), (Bucket, u32)> {
        self.counts.retain(|(_, b), _| *b >= oldest);
        for (bucket, limit) in buckets {
            if self.counts.get(&(*bucket, block)).copied().unwrap_or(0) >= *limit {
                return Err((*bucket, *limit));
            }
        }
        for (bucket, _) in buckets {
            *self.counts.entry((*bucket, block)).or_default() += 1;
        }
        Ok(())
    }

    /// Gives back the slots whose signing failed (only successes count).
    pub fn release(&mut self, buckets: &[Bucket], block: u64) {
        for bucket in buckets {
            if let Some(count) = self.counts.get_mut(&(*bucket, block)) {
                *count = count.saturating_sub(1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> VerifyingKey {
        sigil_crypto::derive_user_key(
            &"0x0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
                .parse()
                .unwrap(),
            &sigil_primitives::DerivationPath::new(vec![u32::from(n)]).unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn replays_are_refused_within_the_window_only() {
        let mut cache = ReplayCache::default();
        assert!(cache.insert([1; 32], Duration::from_secs(60)));
        assert!(!cache.insert([1; 32], Duration::from_secs(60)));
        assert!(cache.insert([2; 32], Duration::from_secs(60)));
        assert!(
            cache.insert([1; 32], Duration::ZERO),
            "expired entries are accepted again"
        );
    }

    #[test]
    fn rate_limit_counts_per_bucket_and_block_and_releases_failures() {
        let mut rate = RateLimiter::default();
        let owner = |k| Bucket::Key {
            key: k,
            insider: true,
        };
        let (a, b) = (key(1), key(2));
        assert!(rate.reserve(&[(owner(a), 2)], 10, 0).is_ok());
        assert!(rate.reserve(&[(owner(a), 2)], 10, 0).is_ok());
        assert_eq!(
            rate.reserve(&[(owner(a), 2)], 10, 0),
            Err((owner(a), 2)),
            "third in the same block"
        );
        assert!(
            rate.reserve(&[(owner(b), 2)], 10, 0).is_ok(),
            "another key has its own allowance"
        );
        assert!(
            rate.reserve(&[(owner(a), 2)], 11, 0).is_ok(),
            "the next block has its own allowance"
        );
        rate.release(&[owner(a)], 10);
        assert!(
            rate.reserve(&[(owner(a), 2)], 10, 0).is_ok(),
            "a failed signature gives its slot back"
        );
        assert!(rate.reserve(&[(owner(a), 2)], 10, 0).is_err());
        assert!(
            rate.reserve(&[(owner(a), 2)], 10, 11).is_ok()
                && rate.reserve(&[(owner(a), 2)], 10, 11).is_ok(),
            "old blocks are forgotten"
        );
    }

    #[test]
    fn strangers_cannot_use_up_the_owners_allowance_and_each_requester_has_its_own() {
        let mut rate = RateLimiter::default();
        let key = key(3);
        let stranger = |n: &str| {
            sigil_crypto::NodeSeed::dev(n)
                .account_keypair()
                .account_id()
        };
        let public = Bucket::Key {
            key,
            insider: false,
        };
        let insider = Bucket::Key { key, insider: true };
        let (mallory, trudy, owner) = (stranger("mallory"), stranger("trudy"), stranger("owner"));
        let ask = |rate: &mut RateLimiter, bucket, who| {
            rate.reserve(&[(bucket, 3), (Bucket::Requester(who), 2)], 7, 0)
        };
        assert!(ask(&mut rate, public, mallory).is_ok());
        assert!(ask(&mut rate, public, mallory).is_ok());
        assert_eq!(
            ask(&mut rate, public, mallory),
            Err((Bucket::Requester(mallory), 2)),
            "one requester's own limit"
        );
        assert!(ask(&mut rate, public, trudy).is_ok());
        assert_eq!(
            ask(&mut rate, public, trudy),
            Err((public, 3)),
            "the strangers' share"
        );
        assert!(
            ask(&mut rate, insider, owner).is_ok(),
            "the owner's share is whole"
        );
        assert!(ask(&mut rate, insider, owner).is_ok());
    }

    #[test]
    fn results_expire() {
        let mut results = Results::default();
        let id = RequestId::from_slice(&[3; 32]).unwrap();
        results.pending(id, Duration::from_secs(60));
        assert_eq!(
            results.get(&id, Duration::from_secs(60)).unwrap().status,
            RequestStatus::Pending
        );
        results.failed(
            id,
            ErrorDetail {
                code: sigil_primitives::ErrorCode::ProgramDenied,
                message: "no".into(),
            },
            Duration::from_secs(60),
        );
        let kept = results.get(&id, Duration::from_secs(60)).unwrap();
        assert_eq!(kept.status, RequestStatus::Failed);
        assert_eq!(
            kept.error.unwrap().code,
            sigil_primitives::ErrorCode::ProgramDenied
        );
        assert!(results.get(&id, Duration::ZERO).is_none());
    }
}
