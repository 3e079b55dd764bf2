//! The checks a relayer and every committee member run on a user's request, from ledger state
//! alone: decoding, freshness, registration, sizes, programs and the message hash.

use std::sync::Arc;

use axum::http::StatusCode;
use sigil_client::rpc::LedgerApiClient;
use sigil_client::types::{ProgramRecord, Registration};
use sigil_crypto::Opened;
use sigil_crypto::request::request_digest;
use sigil_primitives::request::SignatureRequest;
use sigil_primitives::{HashingAlgorithm, MAX_MESSAGE_SIZE, ProgramId};
use sigil_programs::{OracleEntry, ProgramCall, oracle};

use crate::error::ApiError;
use crate::node::Inner;
use crate::view::View;

/// A request that passed every check.
pub(crate) struct Checked {
    /// The decoded request.
    pub request: Arc<SignatureRequest>,
    /// Its key's registration.
    pub registration: Registration,
    /// The prehash to sign.
    pub message_hash: [u8; 32],
    /// The request digest (committee seed, session id, attestations).
    pub digest: [u8; 32],
    /// The hash of the request's block (committee seed).
    pub block_hash: [u8; 32],
}

impl Inner {
    /// Runs every check on the user's opened request against `view`.
    pub(crate) async fn check_request(
        &self,
        user: &Opened,
        view: &View,
        window: u64,
    ) -> Result<Checked, ApiError> {
        let request = SignatureRequest::decode(&user.payload)
            .map_err(|e| ApiError::bad_request("malformed_request", e.to_string()))?;
        let max_message = (view.params.max_message_size as usize).min(MAX_MESSAGE_SIZE);
        if request.message.len() > max_message {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "message_too_large",
                format!(
                    "the message is {} bytes; at most {max_message} may be signed",
                    request.message.len()
                ),
            ));
        }
        let ledger = self.ledger();
        let rpc = ledger.rpc();
        let mut head = view.head;
        if request.block > head {
            // The client may have seen a block this node's subscription has not delivered yet.
            head = rpc.head().await.map_err(ApiError::ledger)?.height.0;
        }
        if request.block > head {
            return Err(ApiError::bad_request(
                "unknown_block",
                format!("block {} is ahead of the head {head}", request.block),
            ));
        }
        if head - request.block > window {
            return Err(ApiError::bad_request(
                "stale_block",
                format!(
                    "block {} is {} blocks behind the head {}; at most {} are allowed",
                    request.block,
                    head - request.block,
                    head,
                    window
                ),
            ));
        }
        let block_hash = match view.hashes.get(&request.block) {
            Some(hash) => *hash,
            None => {
                let block = rpc
                    .block(request.block)
                    .await
                    .map_err(ApiError::ledger)?
                    .ok_or_else(|| ApiError::bad_request("unknown_block", "no such block"))?;
                sigil_ledger::chain::header_hash(&block.header)
            }
        };
        let registration = rpc
            .registration(request.verifying_key)
            .await
            .map_err(ApiError::ledger)?
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    "unregistered_key",
                    format!("{} is not a registered key", request.verifying_key),
                )
            })?;
        let instances = registration.programs.as_slice();
        if request.aux_data.len() != instances.len() {
            return Err(ApiError::bad_request(
                "aux_data_mismatch",
                format!(
                    "the key has {} programs but the request carries {} auxiliary data items",
                    instances.len(),
                    request.aux_data.len()
                ),
            ));
        }
        if let HashingAlgorithm::Custom(index) = request.hashing
            && usize::from(index) >= instances.len()
        {
            return Err(ApiError::bad_request(
                "bad_hash_index",
                format!(
                    "custom:{index} names no program: the key has {}",
                    instances.len()
                ),
            ));
        }
        let mut records = Vec::with_capacity(instances.len());
        for instance in instances {
            records.push(self.program(instance.program).await?);
        }
        let oracle = rpc
            .oracle(request.block)
            .await
            .map_err(ApiError::ledger)?
            .ok_or_else(|| {
                ApiError::bad_request("unknown_block", "no oracle data for the block")
            })?;
        let oracle: Vec<OracleEntry> = vec![
            (
                oracle::BLOCK_NUMBER.into(),
                oracle.block_number.to_be_bytes().to_vec(),
            ),
            (
                oracle::TIMESTAMP.into(),
                (oracle.timestamp_ms / 1000).to_be_bytes().to_vec(),
            ),
        ];

        let request = Arc::new(request);
        let host = self.host.clone();
        let fuel = view.params.fuel_per_program;
        let evaluated = {
            let request = request.clone();
            let instances = instances.to_vec();
            tokio::task::spawn_blocking(move || {
                let calls: Vec<ProgramCall<'_>> = instances
                    .iter()
                    .zip(&records)
                    .zip(&request.aux_data)
                    .map(|((instance, record), aux)| {
                        ProgramCall::new(instance, &record.bytecode, aux)
                    })
                    .collect();
                let started = std::time::Instant::now();
                host.evaluate_all(&request.message, &calls, &oracle, fuel)?;
                metrics::histogram!("sigil_node_program_seconds")
                    .record(started.elapsed().as_secs_f64());
                let hash = match request.hashing {
                    HashingAlgorithm::Custom(index) => {
                        let index = usize::from(index);
                        let program = &calls[index];
                        host.custom_hash(program.id, program.bytecode, &request.message, fuel)
                            .map(Ok)
                            .map_err(|error| sigil_programs::ProgramFailure {
                                index,
                                program: program.id,
                                error,
                            })?
                    }
                    algorithm => sigil_crypto::message_hash(algorithm, &request.message),
                };
                Ok::<_, sigil_programs::ProgramFailure>(hash)
            })
            .await
            .map_err(|e| ApiError::internal(format!("program evaluation panicked: {e}")))?
        };
        let message_hash = match evaluated {
            Ok(Ok(hash)) => hash,
            Ok(Err(error)) => {
                return Err(ApiError::bad_request(
                    "bad_message_for_hash",
                    error.to_string(),
                ));
            }
            Err(failure) => {
                let code = failure.error.code();
                let status = if code == "message_too_large" {
                    StatusCode::PAYLOAD_TOO_LARGE
                } else {
                    StatusCode::FORBIDDEN
                };
                return Err(ApiError::new(status, code, failure.to_string()));
            }
        };
        Ok(Checked {
            request,
            registration,
            message_hash,
            digest: request_digest(&user.signed_plaintext),
            block_hash,
        })
    }

    /// Takes one of the key's signatures for the request's block (`request_limit` per key per
    /// block, counting successes and those in flight); refused with `429 rate_limited`.
    pub(crate) fn reserve_rate(&self, checked: &Checked, view: &View) -> Result<(), ApiError> {
        let vk = checked.request.verifying_key;
        let block = checked.request.block;
        let limit = view.params.request_limit;
        let oldest = view.head.saturating_sub(self.config.request_window);
        if self
            .rate
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .reserve(vk, block, limit, oldest)
        {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("key {vk} reached its limit of {limit} signatures for block {block}"),
            ))
        }
    }

    /// Gives back a slot taken by [`Inner::reserve_rate`] when the signature failed.
    pub(crate) fn release_rate(&self, vk: sigil_primitives::VerifyingKey, block: u64) {
        self.rate
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .release(vk, block);
    }

    /// A stored program, cached by id (ids are content hashes, so entries never go stale).
    async fn program(&self, id: ProgramId) -> Result<Arc<ProgramRecord>, ApiError> {
        if let Some(record) = self
            .programs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
        {
            return Ok(record.clone());
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
        let record = Arc::new(record);
        let mut cache = self.programs.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= 256 {
            cache.clear();
        }
        cache.insert(id, record.clone());
        Ok(record)
    }
}
