//! Transaction signing, verification and hashing.

use sha2::Digest as _;
use sigil_crypto::{AccountKeypair, verify_signature};

use sigil_primitives::{AccountId, BlockNumber, SessionId};

use crate::types::{Call, SessionTicket, SignedTransaction, Transaction};

/// Domain separator of transaction signatures.
const SIGNING_DOMAIN: &[u8] = b"sigil/v1/transaction";

/// Bytes the sender signs: domain ‖ chain id length (u32 BE) ‖ chain id ‖ postcard(tx).
/// The chain id keeps a transaction from being replayed on another chain.
pub fn signing_payload(chain_id: &str, tx: &Transaction) -> Vec<u8> {
    chain_bound(SIGNING_DOMAIN, chain_id, &encode(tx))
}

/// `domain ‖ chain id length (u32 BE) ‖ chain id ‖ body`: what signatures bound to one chain
/// sign.
fn chain_bound(domain: &[u8], chain_id: &str, body: &[u8]) -> Vec<u8> {
    let mut out = domain.to_vec();
    out.extend_from_slice(
        &u32::try_from(chain_id.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    out.extend_from_slice(chain_id.as_bytes());
    out.extend_from_slice(body);
    out
}

/// Signs a transaction for `chain_id`.
pub fn sign(key: &AccountKeypair, chain_id: &str, nonce: u64, call: Call) -> SignedTransaction {
    let tx = Transaction {
        sender: key.account_id(),
        nonce,
        call,
    };
    let signature = key.sign(&signing_payload(chain_id, &tx));
    SignedTransaction { tx, signature }
}

/// Checks the sender's signature.
pub fn verify(chain_id: &str, stx: &SignedTransaction) -> bool {
    verify_signature(
        &stx.tx.sender,
        &signing_payload(chain_id, &stx.tx),
        &stx.signature,
    )
    .is_ok()
}

/// The transaction hash: SHA-256 of its postcard encoding (signature included).
pub fn hash(stx: &SignedTransaction) -> [u8; 32] {
    sha2::Sha256::digest(encode(stx)).into()
}

/// The canonical binary encoding (postcard) of ledger values.
pub fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    postcard::to_stdvec(value).unwrap_or_else(|e| unreachable!("ledger types always encode: {e}"))
}

/// Decodes a postcard value.
pub fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, postcard::Error> {
    postcard::from_bytes(bytes)
}

/// Domain separator of session tickets.
const TICKET_DOMAIN: &[u8] = b"sigil/v1/session-ticket";

/// Bytes a relayer signs for a session ticket: domain ‖ chain id length (u32 BE) ‖ chain id ‖
/// postcard(session, block, attempt, committee, relayer).
pub fn ticket_payload(chain_id: &str, ticket: &SessionTicket) -> Vec<u8> {
    ticket_fields_payload(
        chain_id,
        ticket.session.as_bytes(),
        ticket.block,
        ticket.attempt,
        &ticket.committee,
        &ticket.relayer,
    )
}

/// The session id goes in as a 32-byte array (no length prefix), as §8.2 specifies.
fn ticket_fields_payload(
    chain_id: &str,
    session: &[u8; 32],
    block: BlockNumber,
    attempt: u32,
    committee: &[AccountId],
    relayer: &AccountId,
) -> Vec<u8> {
    let fields = encode(&(session, block, attempt, committee, relayer));
    chain_bound(TICKET_DOMAIN, chain_id, &fields)
}

/// Issues a relayer's ticket for a signing session.
pub fn sign_ticket(
    relayer: &AccountKeypair,
    chain_id: &str,
    session: SessionId,
    block: BlockNumber,
    attempt: u32,
    committee: Vec<AccountId>,
) -> SessionTicket {
    let account = relayer.account_id();
    let signature = relayer.sign(&ticket_fields_payload(
        chain_id,
        session.as_bytes(),
        block,
        attempt,
        &committee,
        &account,
    ));
    SessionTicket {
        session,
        block,
        attempt,
        committee,
        relayer: account,
        signature,
    }
}

/// Checks a ticket's signature by the relayer it names.
pub fn verify_ticket(chain_id: &str, ticket: &SessionTicket) -> bool {
    verify_signature(
        &ticket.relayer,
        &ticket_payload(chain_id, ticket),
        &ticket.signature,
    )
    .is_ok()
}
