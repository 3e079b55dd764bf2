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

/// docs/PROTOCOL.md §4.4 against the code: its worked example's bytes, and its table of calls.
#[cfg(test)]
mod protocol_doc {
    use sigil_crypto::NodeSeed;
    use sigil_primitives::{
        Endpoint, ProgramId, ProgramInstance, ProgramList, SessionId, VerifyingKey, X25519PublicKey,
    };

    use super::*;
    use crate::types::{
        Event, FaultKind, OffenceRecord, Parameters, ValidatorRecord, ValidatorStatus,
    };

    const DOC: &str = include_str!("../../../docs/PROTOCOL.md");

    #[test]
    fn the_transfer_example_encodes_as_written() {
        let sender = NodeSeed::dev("alice").account_keypair();
        let to = NodeSeed::dev("bob").account_keypair().account_id();
        let call = Call::Transfer { to, amount: 5000 };
        let stx = sign(&sender, "sigil-dev", 3, call);
        let mut expected = vec![0x20];
        expected.extend_from_slice(sender.account_id().as_bytes());
        expected.extend_from_slice(&[0x03, 0x00, 0x20]);
        expected.extend_from_slice(to.as_bytes());
        expected.extend_from_slice(&[0x88, 0x27]);
        assert_eq!(encode(&stx.tx), expected);
        expected.push(0x40);
        expected.extend_from_slice(&stx.signature.to_bytes());
        assert_eq!(encode(&stx), expected);
        assert!(DOC.contains("0x20 ‖ to(32) ‖ 0x88 0x27 (5000 as a varint)"));
    }

    /// An account, a verifying key (the secp256k1 generator) and a program id for samples.
    fn sample_ids() -> (AccountId, VerifyingKey, ProgramId) {
        let account = NodeSeed::dev("alice").account_keypair().account_id();
        let key = "0x0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
            .parse()
            .expect("the secp256k1 generator");
        (account, key, ProgramId::from_bytes([1; 32]).expect("id"))
    }

    /// One call of every kind; the match makes a new kind fail to compile until it is here.
    fn samples() -> Vec<Call> {
        let (account, key, program) = sample_ids();
        let programs = ProgramList::new(vec![ProgramInstance {
            program,
            config: vec![],
        }])
        .expect("list");
        let x25519 = X25519PublicKey::from_bytes([2; 32]).expect("x25519");
        let endpoint = Endpoint::new("127.0.0.1:3001").expect("endpoint");
        let ticket = sign_ticket(
            &NodeSeed::dev("eve").account_keypair(),
            "sigil-dev",
            SessionId::new([3; 32]),
            sigil_primitives::BlockNumber(1),
            0,
            vec![account],
        );
        vec![
            Call::Transfer {
                to: account,
                amount: 1,
            },
            Call::Validate {
                x25519,
                endpoint: endpoint.clone(),
                stake: 1,
            },
            Call::ChangeEndpoint { endpoint },
            Call::ChangeKeys { x25519 },
            Call::Leave,
            Call::JumpStart,
            Call::ConfirmJumpStart { verifying_key: key },
            Call::StoreProgram {
                bytecode: vec![],
                config_schema: vec![],
                aux_schema: vec![],
                oracle_keys: vec![],
                version: 1,
            },
            Call::RemoveProgram { program },
            Call::Register {
                programs: programs.clone(),
                public: false,
                scheme: sigil_primitives::KeyScheme::EcdsaSecp256k1,
            },
            Call::ChangePrograms {
                verifying_key: key,
                programs,
            },
            Call::ChangeOwner {
                verifying_key: key,
                new_owner: account,
            },
            Call::ReportOffence {
                ticket,
                offender: account,
                kind: FaultKind::Unresponsive,
                evidence: vec![],
            },
            Call::ConfirmReshare { verifying_key: key },
            Call::SetParameters {
                parameters: Parameters::default(),
            },
            Call::Authorise {
                verifying_key: key,
                account,
            },
            Call::Deauthorise {
                verifying_key: key,
                account,
            },
            Call::SetPublic {
                verifying_key: key,
                public: true,
            },
            Call::Unregister { verifying_key: key },
            Call::ReportConsensusFault {
                evidence: vec![7, 1, 2],
            },
            Call::ChangeReplica {
                consensus_key: [5; 32],
                address: "127.0.0.1:7000".into(),
                proof: sigil_primitives::Ed25519Signature::from_bytes([6; 64]).expect("64 bytes"),
            },
            Call::ReportKeygenFault {
                scheme: sigil_primitives::KeyScheme::Bip340,
                offender: account,
                evidence: vec![9, 8],
            },
        ]
    }

    /// The position of a call's kind in [`samples`], kept in step by the compiler.
    fn kind(call: &Call) -> usize {
        match call {
            Call::Transfer { .. } => 0,
            Call::Validate { .. } => 1,
            Call::ChangeEndpoint { .. } => 2,
            Call::ChangeKeys { .. } => 3,
            Call::Leave => 4,
            Call::JumpStart => 5,
            Call::ConfirmJumpStart { .. } => 6,
            Call::StoreProgram { .. } => 7,
            Call::RemoveProgram { .. } => 8,
            Call::Register { .. } => 9,
            Call::ChangePrograms { .. } => 10,
            Call::ChangeOwner { .. } => 11,
            Call::ReportOffence { .. } => 12,
            Call::ConfirmReshare { .. } => 13,
            Call::SetParameters { .. } => 14,
            Call::Authorise { .. } => 15,
            Call::Deauthorise { .. } => 16,
            Call::SetPublic { .. } => 17,
            Call::Unregister { .. } => 18,
            Call::ReportConsensusFault { .. } => 19,
            Call::ChangeReplica { .. } => 20,
            Call::ReportKeygenFault { .. } => 21,
        }
    }

    /// The rows `| index | `name` | … |` of the §4.4 table after `heading`.
    fn table(heading: &str) -> Vec<(u8, String)> {
        let section = DOC
            .split(heading)
            .nth(1)
            .and_then(|rest| rest.split("\n\n").nth(1))
            .unwrap_or_else(|| panic!("the table after {heading}"));
        section
            .lines()
            .skip(2)
            .map(|row| {
                let cells: Vec<&str> = row.split('|').map(str::trim).collect();
                (
                    cells[1].parse().expect("an index"),
                    cells[2].trim_matches('`').to_owned(),
                )
            })
            .collect()
    }

    /// A value's postcard variant index and JSON name.
    fn index_and_name<T: serde::Serialize>(value: &T) -> (u8, String) {
        let name = match serde_json::to_value(value).expect("json") {
            serde_json::Value::String(name) => name,
            serde_json::Value::Object(map) => map.keys().next().expect("a key").clone(),
            other => panic!("unexpected JSON {other}"),
        };
        (encode(value)[0], name)
    }

    #[test]
    fn the_call_table_gives_each_calls_index_and_name() {
        let rows = table("**Calls** (variant index, JSON name, fields):");
        let samples = samples();
        assert_eq!(rows.len(), samples.len(), "one row per call");
        for (i, call) in samples.iter().enumerate() {
            assert_eq!(kind(call), i);
            assert_eq!(rows[i], index_and_name(call), "row {i}");
        }
    }

    #[test]
    fn the_event_table_gives_each_events_index_and_name() {
        let rows = table(
            "**Events** (variant index, JSON name, fields), in a block's `events` in the order their\ntransactions applied:",
        );
        let events = event_samples();
        assert_eq!(rows.len(), events.len(), "one row per event");
        for (i, event) in events.iter().enumerate() {
            assert_eq!(event_kind(event), i);
            assert_eq!(rows[i], index_and_name(event), "row {i}");
        }
    }

    /// A validator record and an offence record of `account`, for event samples.
    fn sample_records(account: AccountId) -> (ValidatorRecord, OffenceRecord) {
        let block = sigil_primitives::BlockNumber(1);
        let info = ValidatorRecord {
            account,
            x25519: X25519PublicKey::from_bytes([2; 32]).expect("x25519"),
            endpoint: Endpoint::new("127.0.0.1:3001").expect("endpoint"),
            stake: 1,
            status: ValidatorStatus::Active,
            joined: block,
        };
        let offence = OffenceRecord {
            session: SessionId::new([3; 32]),
            reporters: vec![account],
            offender: account,
            kind: FaultKind::Unresponsive,
            proven: false,
            committee_size: 2,
            evidence_hash: vec![],
            reported: block,
            recorded: Some(block),
            slashed: 0,
        };
        (info, offence)
    }

    /// One event of every kind, in variant order.
    fn event_samples() -> Vec<Event> {
        let (account, key, program) = sample_ids();
        let (info, offence) = sample_records(account);
        let replica = crate::types::Replica {
            account,
            consensus_key: [5; 32],
            address: "127.0.0.1:7000".into(),
        };
        vec![
            Event::Transferred {
                from: account,
                to: account,
                amount: 1,
            },
            Event::ValidatorJoined { info: info.clone() },
            Event::ValidatorChanged { info },
            Event::ValidatorLeft { account },
            Event::JumpStartStarted {
                signers: vec![account],
                threshold: 2,
            },
            Event::JumpStartConfirmed { signer: account },
            Event::JumpStartDone { network_key: key },
            Event::ProgramStored {
                program,
                deployer: account,
            },
            Event::ProgramRemoved { program },
            Event::Registered {
                owner: account,
                verifying_key: key,
                derivation_path: sigil_primitives::DerivationPath::new(vec![1]).expect("path"),
            },
            Event::ProgramsChanged { verifying_key: key },
            Event::OwnerChanged {
                verifying_key: key,
                new_owner: account,
            },
            Event::OffenceReportReceived {
                reporter: account,
                offender: account,
                kind: FaultKind::Unresponsive,
            },
            Event::OffenceReported { offence },
            Event::Slashed {
                account,
                amount: 1,
                stake: 1,
            },
            Event::ReshareStarted {
                new_signers: vec![account],
                new_threshold: 2,
            },
            Event::ReshareConfirmed { signer: account },
            Event::SignerSetChanged {
                signers: vec![account],
                threshold: 2,
            },
            Event::ParametersChanged {
                parameters: Parameters::default(),
            },
            Event::AccessChanged {
                verifying_key: key,
                public: true,
                authorised: vec![],
            },
            Event::Unregistered {
                verifying_key: key,
                owner: account,
                refund: 1,
            },
            Event::CallFailed {
                sender: account,
                nonce: 0,
                code: "not_found".into(),
                message: "not found".into(),
            },
            Event::ReplicaChanged {
                account,
                replica: Some(replica.clone()),
            },
            Event::ConsensusSetChanged {
                epoch: 1,
                replicas: vec![replica],
            },
            Event::AccusationWithdrawn {
                session: SessionId::new([7; 32]),
                reporter: account,
                offender: account,
            },
            Event::NetworkKeyCreated { network_key: key },
        ]
    }

    /// The position of an event's kind in [`event_samples`], kept in step by the compiler.
    fn event_kind(event: &Event) -> usize {
        match event {
            Event::Transferred { .. } => 0,
            Event::ValidatorJoined { .. } => 1,
            Event::ValidatorChanged { .. } => 2,
            Event::ValidatorLeft { .. } => 3,
            Event::JumpStartStarted { .. } => 4,
            Event::JumpStartConfirmed { .. } => 5,
            Event::JumpStartDone { .. } => 6,
            Event::ProgramStored { .. } => 7,
            Event::ProgramRemoved { .. } => 8,
            Event::Registered { .. } => 9,
            Event::ProgramsChanged { .. } => 10,
            Event::OwnerChanged { .. } => 11,
            Event::OffenceReportReceived { .. } => 12,
            Event::OffenceReported { .. } => 13,
            Event::Slashed { .. } => 14,
            Event::ReshareStarted { .. } => 15,
            Event::ReshareConfirmed { .. } => 16,
            Event::SignerSetChanged { .. } => 17,
            Event::ParametersChanged { .. } => 18,
            Event::AccessChanged { .. } => 19,
            Event::Unregistered { .. } => 20,
            Event::CallFailed { .. } => 21,
            Event::ReplicaChanged { .. } => 22,
            Event::ConsensusSetChanged { .. } => 23,
            Event::AccusationWithdrawn { .. } => 24,
            Event::NetworkKeyCreated { .. } => 25,
        }
    }
}
