//! The request core: every check a relayer and a committee member run on a user's request,
//! as pure functions of the request and one ledger snapshot. Nothing here does I/O; the
//! snapshot is read beforehand ([`fetch`]) and program evaluation is CPU work the caller
//! runs on the blocking pool. Each refusal is an [`ApiError`] whose code fixes its status.

pub(crate) mod fetch;
mod signer;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::sync::Arc;

use sigil_client::types::{BlockHeader, Parameters, ProgramRecord, Registration, SignerSet};
use sigil_crypto::{CommitteeSeed, select_committee};
use sigil_primitives::request::SignatureRequest;
use sigil_primitives::{AccountId, ErrorCode, HashingAlgorithm, KeyScheme, MAX_MESSAGE_SIZE};
use sigil_programs::{OracleEntry, ProgramCall, ProgramHost, oracle};

use crate::error::ApiError;

pub(crate) use signer::{Session, admit_caller, admit_relayer, check_session, open_forwarded};

/// What the ledger says about a request's block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlockFacts {
    /// The header's hash (committee seed).
    pub hash: [u8; 32],
    /// The header's timestamp, ms (program oracle data).
    pub timestamp_ms: u64,
}

impl BlockFacts {
    /// The facts of `header`.
    pub(crate) fn of(header: &BlockHeader) -> Self {
        Self {
            hash: sigil_ledger_api::header::header_hash(header),
            timestamp_ms: header.timestamp_ms,
        }
    }
}

/// The ledger state one request is checked against, read once before the checks.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    /// The head when the snapshot was read.
    pub head: u64,
    /// The ledger parameters.
    pub params: Parameters,
    /// The request's block, if the ledger has it (left unread when the block is refused).
    pub block: Option<BlockFacts>,
    /// The key's registration, if any.
    pub registration: Option<Registration>,
    /// The registration's programs, in its order.
    pub programs: Vec<Arc<ProgramRecord>>,
}

/// A request that passed every check.
#[derive(Debug)]
pub(crate) struct Checked {
    /// The decoded request.
    pub request: Arc<SignatureRequest>,
    /// Who signed it.
    pub requester: AccountId,
    /// Its key's registration.
    pub registration: Registration,
    /// The prehash to sign.
    pub message_hash: [u8; 32],
    /// The request digest (committee seed, session id, attestations).
    pub digest: [u8; 32],
    /// The hash of the request's block (committee seed).
    pub block_hash: [u8; 32],
}

impl Checked {
    /// The bytes the key signs: the message itself for hashing `none`, else the prehash.
    pub fn signed_bytes(&self) -> &[u8] {
        sigil_crypto::signed_bytes(
            self.request.hashing,
            &self.request.message,
            &self.message_hash,
        )
    }
}

/// Decodes the user's payload (§7.1).
pub(crate) fn decode_request(payload: &[u8]) -> Result<SignatureRequest, ApiError> {
    SignatureRequest::decode(payload)
        .map_err(|e| ApiError::new(ErrorCode::MalformedRequest, e.to_string()))
}

/// The block must be known (≤ head) and at most `window` blocks old.
pub(crate) fn check_block(block: u64, head: u64, window: u64) -> Result<(), ApiError> {
    if block > head {
        return Err(ApiError::new(
            ErrorCode::UnknownBlock,
            format!("block {block} is ahead of the head {head}"),
        ));
    }
    if head - block > window {
        return Err(ApiError::new(
            ErrorCode::StaleBlock,
            format!(
                "block {block} is {} blocks behind the head {head}; at most {window} are allowed",
                head - block
            ),
        ));
    }
    Ok(())
}

/// The common checks (`docs/PROTOCOL.md` §7.3), in order, ending with the programs and the
/// message hash. `digest` is the request digest of the user's signed plaintext.
pub(crate) fn validate(
    request: SignatureRequest,
    requester: &AccountId,
    digest: [u8; 32],
    snapshot: &Snapshot,
    window: u64,
    host: &ProgramHost,
) -> Result<Checked, ApiError> {
    let max_message = (snapshot.params.max_message_size as usize).min(MAX_MESSAGE_SIZE);
    if request.message.len() > max_message {
        return Err(ApiError::new(
            ErrorCode::MessageTooLarge,
            format!(
                "the message is {} bytes; at most {max_message} may be signed",
                request.message.len()
            ),
        ));
    }
    check_block(request.block, snapshot.head, window)?;
    let block = snapshot
        .block
        .ok_or_else(|| ApiError::new(ErrorCode::UnknownBlock, "no such block"))?;
    let registration = snapshot.registration.clone().ok_or_else(|| {
        ApiError::new(
            ErrorCode::UnregisteredKey,
            format!("{} is not a registered key", request.verifying_key),
        )
    })?;
    if !registration.admits(requester) {
        return Err(ApiError::new(
            ErrorCode::NotAuthorised,
            format!(
                "{requester} may not request signatures with {}: only its owner and the \
                 accounts the owner authorised may",
                request.verifying_key
            ),
        ));
    }
    check_programs_match(&request, &registration, snapshot)?;
    check_hashing_fits_scheme(&request)?;
    let message_hash = evaluate(&request, &registration, snapshot, block, host)?;
    Ok(Checked {
        request: Arc::new(request),
        requester: *requester,
        registration,
        message_hash,
        digest,
        block_hash: block.hash,
    })
}

/// Hashing `none` signs the message as it is, which only Ed25519 keys can do; the others sign
/// a 32-byte hash.
fn check_hashing_fits_scheme(request: &SignatureRequest) -> Result<(), ApiError> {
    let scheme = request.verifying_key.scheme();
    if request.hashing == HashingAlgorithm::None && scheme != KeyScheme::Ed25519 {
        return Err(ApiError::new(
            ErrorCode::BadMessageForHash,
            format!(
                "hashing none signs the message itself, which only ed25519 keys do; a {scheme} \
                 key signs a 32-byte hash (use identity for a ready hash)"
            ),
        ));
    }
    Ok(())
}

/// The request's auxiliary data and custom hash index must fit the key's programs.
fn check_programs_match(
    request: &SignatureRequest,
    registration: &Registration,
    snapshot: &Snapshot,
) -> Result<(), ApiError> {
    let count = registration.programs.as_slice().len();
    if request.aux_data.len() != count {
        return Err(ApiError::new(
            ErrorCode::AuxDataMismatch,
            format!(
                "the key has {count} programs but the request carries {} auxiliary data items",
                request.aux_data.len()
            ),
        ));
    }
    if let HashingAlgorithm::Custom(index) = request.hashing
        && usize::from(index) >= count
    {
        return Err(ApiError::new(
            ErrorCode::BadHashIndex,
            format!("custom:{index} names no program: the key has {count}"),
        ));
    }
    if snapshot.programs.len() != count {
        return Err(ApiError::internal(
            "the snapshot does not hold every program of the key",
        ));
    }
    Ok(())
}

/// Runs every program with the block's oracle data, then computes the message hash.
fn evaluate(
    request: &SignatureRequest,
    registration: &Registration,
    snapshot: &Snapshot,
    block: BlockFacts,
    host: &ProgramHost,
) -> Result<[u8; 32], ApiError> {
    let oracle: Vec<OracleEntry> = vec![
        (
            oracle::BLOCK_NUMBER.into(),
            request.block.to_be_bytes().to_vec(),
        ),
        (
            oracle::TIMESTAMP.into(),
            (block.timestamp_ms / 1000).to_be_bytes().to_vec(),
        ),
        (
            oracle::KEY_SCHEME.into(),
            request.verifying_key.scheme().name().as_bytes().to_vec(),
        ),
    ];
    let calls: Vec<ProgramCall<'_>> = registration
        .programs
        .as_slice()
        .iter()
        .zip(&snapshot.programs)
        .zip(&request.aux_data)
        .map(|((instance, record), aux)| ProgramCall::new(instance, &record.bytecode, aux))
        .collect();
    let fuel = snapshot.params.fuel_per_program;
    let program_error = |failure: sigil_programs::ProgramFailure| {
        ApiError::new(failure.error.code(), failure.to_string())
    };
    let started = std::time::Instant::now();
    host.evaluate_all(&request.message, &calls, &oracle, fuel)
        .map_err(program_error)?;
    metrics::histogram!("sigil_node_program_seconds").record(started.elapsed().as_secs_f64());
    let hash = match request.hashing {
        HashingAlgorithm::Custom(index) => {
            let index = usize::from(index);
            let program = &calls[index];
            host.custom_hash(program.id, program.bytecode, &request.message, fuel)
                .map_err(|error| {
                    program_error(sigil_programs::ProgramFailure {
                        index,
                        program: program.id,
                        error,
                    })
                })?
        }
        algorithm => sigil_crypto::message_hash(algorithm, &request.message)
            .map_err(|e| ApiError::new(ErrorCode::BadMessageForHash, e.to_string()))?,
    };
    Ok(hash)
}

/// The committee for attempt `attempt` of a checked request (`docs/PROTOCOL.md` §6).
/// Whom an attempt leaves out at `head` (§6): those the ledger sidelines, and both sides of
/// every live dispute between two members of this request's failed committees (`failed`), while
/// `threshold` signers remain; a retry never pairs an accuser with the signer it just accused.
pub(crate) fn left_out(
    signer_set: &SignerSet,
    head: u64,
    failed: &BTreeSet<AccountId>,
) -> BTreeSet<AccountId> {
    let sidelined = signer_set.sidelined_at(head);
    let mut avoided = sidelined.clone();
    for dispute in signer_set.disputes_at(head) {
        if failed.contains(&dispute.accuser) && failed.contains(&dispute.accused) {
            avoided.extend([dispute.accuser, dispute.accused]);
        }
    }
    let remaining = signer_set
        .signers
        .iter()
        .filter(|s| !avoided.contains(s))
        .count();
    if remaining >= usize::from(signer_set.threshold) {
        avoided
    } else {
        sidelined
    }
}

pub(crate) fn committee_for(
    signer_set: &SignerSet,
    checked: &Checked,
    attempt: u32,
    excluded: &BTreeSet<AccountId>,
) -> Result<BTreeSet<AccountId>, ApiError> {
    let signers: BTreeSet<AccountId> = signer_set.signers.iter().copied().collect();
    select_committee(
        &signers,
        excluded,
        usize::from(signer_set.threshold),
        &CommitteeSeed {
            block_hash: &checked.block_hash,
            request_digest: &checked.digest,
            attempt,
        },
    )
    .map_err(|e| ApiError::new(ErrorCode::NoCommittee, e.to_string()))
}
