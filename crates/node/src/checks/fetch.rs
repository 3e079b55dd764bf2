//! Reading the one ledger snapshot a request is checked against, and running the pure checks
//! on it. A request costs one ledger read (its registration) when its block and programs are
//! in the node's caches.

use std::sync::Arc;

use sigil_client::rpc::LedgerApiClient;
use sigil_client::types::{ProgramRecord, SignerSet};
use sigil_crypto::Opened;
use sigil_crypto::request::request_digest;
use sigil_primitives::request::SignatureRequest;
use sigil_primitives::{AccountId, ErrorCode, ProgramId};

use super::{BlockFacts, Checked, Snapshot, check_block, decode_request, validate};
use crate::error::ApiError;
use crate::node::Inner;
use crate::state::Bucket;
use crate::view::View;

/// A request's block may be this far ahead of this node's ledger head, which then waits for it:
/// replicas finalize the same block a moment apart. Further ahead is refused at once.
const MAX_BLOCKS_AHEAD: u64 = 16;
/// How long a request waits for this node's ledger to reach its block.
const BLOCK_CATCH_UP: std::time::Duration = std::time::Duration::from_secs(3);

impl Inner {
    /// Decodes the user's opened request, reads its snapshot and runs the common checks
    /// (programs on the blocking pool).
    pub(crate) async fn check_request(
        &self,
        user: &Opened,
        view: &View,
        window: u64,
    ) -> Result<Checked, ApiError> {
        let request = decode_request(&user.payload)?;
        let snapshot = self.snapshot(&request, view, window).await?;
        let digest = request_digest(&user.signed_plaintext);
        let host = self.host.clone();
        let requester = user.sender;
        tokio::task::spawn_blocking(move || {
            validate(request, &requester, digest, &snapshot, window, &host)
        })
        .await
        .map_err(|e| ApiError::internal(format!("program evaluation panicked: {e}")))?
    }

    /// Waits, up to [`BLOCK_CATCH_UP`], until this node's view reaches `block`; returns the
    /// head it reached.
    async fn await_head(&self, block: u64) -> u64 {
        let mut views = self.view.subscribe();
        let reached = tokio::time::timeout(BLOCK_CATCH_UP, views.wait_for(|v| v.head >= block));
        match reached.await {
            Ok(Ok(view)) => view.head,
            _ => self.view().head,
        }
    }

    /// What the checks of `request` need from the ledger, read at most once each. Reads the
    /// checks would not reach (a refused block) are skipped.
    async fn snapshot(
        &self,
        request: &SignatureRequest,
        view: &View,
        window: u64,
    ) -> Result<Snapshot, ApiError> {
        let ledger = self.ledger();
        let rpc = ledger.rpc();
        let mut snapshot = Snapshot {
            head: view.head,
            params: view.params.clone(),
            block: None,
            registration: None,
            programs: Vec::new(),
        };
        if request.block > snapshot.head {
            // The client may have seen a block this node's subscription has not delivered yet,
            // or (replicated ledger) that another replica finalized a moment before this one.
            snapshot.head = rpc.head().await.map_err(ApiError::ledger)?.height.0;
            if request.block > snapshot.head && request.block <= snapshot.head + MAX_BLOCKS_AHEAD {
                snapshot.head = self.await_head(request.block).await;
            }
        }
        if check_block(request.block, snapshot.head, window).is_err() {
            return Ok(snapshot);
        }
        snapshot.block = match view.block(request.block) {
            Some(facts) => Some(facts),
            None => rpc
                .block(request.block)
                .await
                .map_err(ApiError::ledger)?
                .map(|block| BlockFacts::of(&block.header)),
        };
        snapshot.registration = rpc
            .registration(request.verifying_key)
            .await
            .map_err(ApiError::ledger)?;
        if let Some(registration) = &snapshot.registration {
            for instance in registration.programs.as_slice() {
                snapshot
                    .programs
                    .push(self.program(instance.program).await?);
            }
        }
        Ok(snapshot)
    }

    /// The signer set to check a relayer's exclusions against: the view's, or the ledger's
    /// own when the relayer is a block ahead of this node's view.
    pub(crate) async fn signer_set_for(
        &self,
        excluded: &[AccountId],
        block: u64,
        view: &View,
    ) -> Result<SignerSet, ApiError> {
        let named = super::signer::named_exclusions(excluded)?;
        if super::signer::exclusions_allowed(&named, &view.signer_set, block) {
            return Ok(view.signer_set.clone());
        }
        self.ledger()
            .rpc()
            .signer_set()
            .await
            .map_err(|e| ApiError::not_ready(format!("cannot read the ledger: {e}")))
    }

    /// Takes one of the key's signatures for the request's block (`request_limit` per key per
    /// block, counting successes and those in flight); refused with `429 rate_limited`.
    pub(crate) fn reserve_rate(&self, checked: &Checked, view: &View) -> Result<(), ApiError> {
        let block = checked.request.block;
        let params = &view.params;
        let [key, requester] = rate_buckets(checked);
        let buckets = [
            (key, params.request_limit),
            (requester, params.requester_limit),
        ];
        let oldest = view.head.saturating_sub(self.config.request_window);
        let reserved = self.requests.limits.rate().reserve(&buckets, block, oldest);
        reserved.map_err(|(bucket, limit)| {
            let whose = match bucket {
                Bucket::Key { key, insider: true } => format!("key {key}"),
                Bucket::Key {
                    key,
                    insider: false,
                } => {
                    format!("key {key}, for accounts other than its owner's,")
                }
                Bucket::Requester(account) => format!("requester {account}"),
            };
            ApiError::new(
                ErrorCode::RateLimited,
                format!("{whose} reached its limit of {limit} signatures for block {block}"),
            )
        })
    }

    /// Gives back the slots taken by [`Inner::reserve_rate`] when the signature failed.
    pub(crate) fn release_rate(&self, checked: &Checked) {
        let buckets = rate_buckets(checked);
        let block = checked.request.block;
        self.requests.limits.rate().release(&buckets, block);
    }

    /// A stored program, cached by id (ids are content hashes, so entries never go stale).
    async fn program(&self, id: ProgramId) -> Result<Arc<ProgramRecord>, ApiError> {
        if let Some(record) = self.requests.programs.get(&id) {
            return Ok(record);
        }
        let record = self
            .ledger()
            .rpc()
            .program(id)
            .await
            .map_err(ApiError::ledger)?
            .ok_or_else(|| {
                ApiError::internal(format!("program {id} is missing from the ledger"))
            })?;
        Ok(self.requests.programs.insert(id, Arc::new(record)))
    }
}

/// What a checked request counts against: its key's allowance (the insiders' or the
/// strangers' share) and its requester's.
fn rate_buckets(checked: &Checked) -> [Bucket; 2] {
    let requester = checked.requester;
    [
        Bucket::Key {
            key: checked.request.verifying_key,
            insider: checked.registration.is_insider(&requester),
        },
        Bucket::Requester(requester),
    ]
}
