//! The role checks of the relayer and committee-member paths (`docs/PROTOCOL.md` §7.3), pure
//! functions of the caller, the forwarded request and the ledger view.

use std::collections::BTreeSet;

use sigil_client::types::{SessionTicket, SignerSet, ValidatorRecord};
use sigil_crypto::request::sign_session_id;
use sigil_crypto::{Opened, verify_signed_plaintext};
use sigil_primitives::request::ForwardedRequest;
use sigil_primitives::{AccountId, BlockNumber, ErrorCode, SessionId, VerifyingKey};

use super::{Checked, committee_for};
use crate::error::ApiError;
use crate::view::View;

/// A relayer must be a validator and not a signer.
pub(crate) fn admit_relayer(view: &View, me: &AccountId) -> Result<(), ApiError> {
    if !view.is_validator(me) {
        return Err(ApiError::not_ready("this node is not a validator yet"));
    }
    if view.is_signer(me) {
        return Err(ApiError::new(
            ErrorCode::NotARelayer,
            "this node is a signer; send requests to a relayer (a validator outside the signer set)",
        ));
    }
    Ok(())
}

/// The caller of `/v1/sign` must be a validator, and this node a signer holding a share of
/// the current network key (`held`: the key and the signers it was made for).
pub(crate) fn admit_caller<'v>(
    view: &'v View,
    me: &AccountId,
    caller: &AccountId,
    held: Option<(VerifyingKey, &BTreeSet<AccountId>)>,
) -> Result<&'v ValidatorRecord, ApiError> {
    let relayer = view.validators.get(caller).ok_or_else(|| {
        ApiError::new(
            ErrorCode::NotAValidator,
            format!("{caller} is not a validator; only validators may call /v1/sign"),
        )
    })?;
    if !view.is_signer(me) {
        return Err(ApiError::new(
            ErrorCode::NotASigner,
            "this node is not a signer",
        ));
    }
    let signers: BTreeSet<AccountId> = view.signer_set.signers.iter().copied().collect();
    let current = held.is_some_and(|(key, holders)| {
        view.signer_set.network_key == Some(key) && *holders == signers
    });
    if !current {
        return Err(ApiError::not_ready(
            "this signer holds no share of the current network key",
        ));
    }
    Ok(relayer)
}

/// Decodes the forwarded request and checks the user's own signature, that the user signed
/// it for the forwarding relayer, and that it is at most `max_age_ms` old at `now_ms`.
pub(crate) fn open_forwarded(
    payload: &[u8],
    relayer: &ValidatorRecord,
    now_ms: u64,
    max_age_ms: u64,
) -> Result<(ForwardedRequest, Opened), ApiError> {
    let forwarded = ForwardedRequest::decode(payload)
        .map_err(|e| ApiError::new(ErrorCode::MalformedRequest, e.to_string()))?;
    let user = verify_signed_plaintext(forwarded.user_plaintext.clone())?;
    if user.signed_for != relayer.x25519 {
        return Err(ApiError::new(
            ErrorCode::RecipientMismatch,
            "the user's request was signed for another node than the relayer that forwarded it",
        ));
    }
    let age = now_ms.saturating_sub(user.timestamp_ms);
    if age > max_age_ms {
        return Err(ApiError::new(
            ErrorCode::Expired,
            format!("the user's request is {age} ms old"),
        ));
    }
    Ok((forwarded, user))
}

/// A committee member's signing session, once the relayer's claims check out.
#[derive(Debug)]
pub(crate) struct Session {
    /// The session id (§7.4).
    pub id: SessionId,
    /// The relayer's ticket, kept to prove the session in offence reports.
    pub ticket: SessionTicket,
    /// The committee, which holds this node.
    pub committee: BTreeSet<AccountId>,
}

/// Checks the relayer's ticket, exclusions and committee against `signer_set`: the ticket
/// verifies, every excluded signer is excludable by the ledger beyond the request's block, the
/// named committee is the one selection gives, and it holds `me`.
pub(crate) fn check_session(
    checked: &Checked,
    forwarded: &ForwardedRequest,
    relayer: &AccountId,
    chain_id: &str,
    signer_set: &SignerSet,
    me: &AccountId,
) -> Result<Session, ApiError> {
    let id = sign_session_id(&checked.digest, forwarded.attempt);
    let ticket = SessionTicket {
        session: id,
        block: BlockNumber(checked.request.block),
        attempt: forwarded.attempt,
        committee: forwarded.committee.clone(),
        relayer: *relayer,
        signature: forwarded.ticket,
    };
    if !sigil_ledger_api::tx::verify_ticket(chain_id, &ticket) {
        return Err(ApiError::new(
            ErrorCode::BadTicket,
            "the relayer's session ticket does not verify",
        ));
    }
    let excluded = named_exclusions(&forwarded.excluded)?;
    if !exclusions_allowed(&excluded, signer_set, checked.request.block) {
        return Err(ApiError::new(
            ErrorCode::WrongCommittee,
            "the relayer excluded a signer the ledger does not exclude",
        ));
    }
    let committee = committee_for(signer_set, checked, forwarded.attempt, &excluded)?;
    let named: BTreeSet<AccountId> = forwarded.committee.iter().copied().collect();
    if named != committee || named.len() != forwarded.committee.len() {
        return Err(ApiError::new(
            ErrorCode::WrongCommittee,
            "the named committee is not the one the ledger state selects for this request",
        ));
    }
    if !committee.contains(me) {
        return Err(ApiError::new(
            ErrorCode::NotInCommittee,
            "this signer is not in the request's committee",
        ));
    }
    Ok(Session {
        id,
        ticket,
        committee,
    })
}

/// The relayer's exclusion list as a set; an account named twice is malformed.
pub(crate) fn named_exclusions(named: &[AccountId]) -> Result<BTreeSet<AccountId>, ApiError> {
    let excluded: BTreeSet<AccountId> = named.iter().copied().collect();
    if excluded.len() != named.len() {
        return Err(ApiError::new(
            ErrorCode::MalformedRequest,
            "the excluded list repeats an account",
        ));
    }
    Ok(excluded)
}

/// Whether the ledger lets a relayer leave out every account of `excluded` beyond `block`: each
/// is a proven offender or a side of a dispute (§6).
pub(crate) fn exclusions_allowed(
    excluded: &BTreeSet<AccountId>,
    signer_set: &SignerSet,
    block: u64,
) -> bool {
    excluded.is_subset(&signer_set.excludable_at(block))
}
