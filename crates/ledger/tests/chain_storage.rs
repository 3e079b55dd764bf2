//! The chain stores every kind of record and reopens to the same state.

use std::sync::Arc;

use sigil_crypto::NodeSeed;
use sigil_ledger::chain::{Chain, ChainError, Proposal};
use sigil_ledger::node::{component_header_check, dev_genesis};
use sigil_ledger::tx;
use sigil_ledger::types::*;
use sigil_primitives::{
    Endpoint, KeyScheme, ProgramInstance, ProgramList, VerifyingKey, X25519PublicKey,
};

#[test]
fn every_record_kind_survives_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let validate = Arc::new(|b: &[u8]| component_header_check(b));
    let genesis = dev_genesis();
    let mut chain =
        Chain::open(dir.path(), Some(&genesis), validate.clone(), None).expect("creates");
    let chain_id = chain.chain_id().to_owned();
    let k = |n: &str| NodeSeed::dev(n).account_keypair();
    let mut nonces = std::collections::HashMap::new();
    let mut sign = |n: &str, call: Call| {
        let nonce = nonces.entry(n.to_owned()).or_insert(0u64);
        *nonce += 1;
        tx::sign(&k(n), &chain_id, *nonce - 1, call)
    };
    let network = {
        let sk = k256::ecdsa::SigningKey::from_slice(&[5; 32]).expect("scalar");
        VerifyingKey::from_k256(&(*sk.verifying_key()).into())
    };
    let mut txs = vec![];
    for (i, n) in ["bob", "charlie", "dave"].into_iter().enumerate() {
        txs.push(sign(
            n,
            Call::Validate {
                x25519: X25519PublicKey::from_bytes([i as u8 + 1; 32]).expect("key"),
                endpoint: Endpoint::new(format!("127.0.0.1:{}", 3001 + i)).expect("endpoint"),
                stake: 5_000,
            },
        ));
    }
    txs.push(sign("alice", Call::JumpStart));
    for n in ["bob", "charlie", "dave"] {
        txs.push(sign(
            n,
            Call::ConfirmJumpStart {
                verifying_key: network,
            },
        ));
    }
    let bytecode = b"\0asm\x0d\x00\x01\x00policy".to_vec();
    let program = sigil_crypto::ProgramContents {
        bytecode: &bytecode,
        config_schema: b"",
        aux_schema: b"",
        oracle_keys: &[],
        version: 1,
    }
    .id();
    txs.push(sign(
        "eve",
        Call::StoreProgram {
            bytecode,
            config_schema: vec![],
            aux_schema: vec![],
            oracle_keys: vec![],
            version: 1,
        },
    ));
    let programs = ProgramList::new(vec![ProgramInstance {
        program,
        config: vec![],
    }])
    .expect("list");
    txs.push(sign(
        "eve",
        Call::Register {
            programs,
            public: false,
            scheme: KeyScheme::EcdsaSecp256k1,
        },
    ));
    // eve joins after the jump start, so it is a relayer that can vouch for a session.
    txs.push(sign(
        "eve",
        Call::Validate {
            x25519: X25519PublicKey::from_bytes([9; 32]).expect("key"),
            endpoint: Endpoint::new("127.0.0.1:3009").expect("endpoint"),
            stake: 5_000,
        },
    ));
    let mut committee = vec![k("bob").account_id(), k("dave").account_id()];
    committee.sort();
    let ticket = tx::sign_ticket(
        &k("eve"),
        &chain_id,
        sigil_primitives::SessionId::new([1; 32]),
        sigil_primitives::BlockNumber(1),
        0,
        committee,
    );
    txs.push(sign(
        "bob",
        Call::ReportOffence {
            ticket,
            offender: k("dave").account_id(),
            kind: FaultKind::Unresponsive,
            evidence: vec![],
        },
    ));
    // One transaction whose sender cannot pay the fee: left out of the block, reported in the
    // outcomes.
    txs.push(sign(
        "ferdie",
        Call::Transfer {
            to: k("alice").account_id(),
            amount: 1,
        },
    ));
    // One whose call fails: in the block with its fee paid and a `call_failed` event.
    txs.push(sign(
        "alice",
        Call::RemoveProgram {
            program: sigil_primitives::ProgramId::from_bytes([7; 32]).expect("id"),
        },
    ));

    let (block, outcomes) = chain
        .execute(Proposal {
            timestamp_ms: 1,
            transactions: txs,
        })
        .expect("executes");
    assert_eq!(outcomes.iter().filter(|o| o.result.is_err()).count(), 2);
    assert_eq!(outcomes.iter().filter(|o| !o.included).count(), 1);
    assert_eq!(block.transactions.len(), outcomes.len() - 1);
    assert!(
        block
            .events
            .iter()
            .any(|e| matches!(e, Event::CallFailed { code, .. } if code == "not_found"))
    );
    let (block2, _) = chain
        .execute(Proposal {
            timestamp_ms: 0,
            transactions: vec![],
        })
        .expect("empty block");
    assert!(
        block2.header.timestamp_ms >= block.header.timestamp_ms,
        "time never goes backwards"
    );
    let digest = chain.state().digest();
    let head = chain.head().clone();
    drop(chain);

    let reopened = Chain::open(dir.path(), None, validate.clone(), None).expect("reopens");
    assert_eq!(reopened.state().digest(), digest);
    assert_eq!(reopened.head(), &head);
    assert_eq!(reopened.block(1).expect("read").expect("stored"), block);
    assert_eq!(reopened.state().registrations.len(), 1);
    let stored = reopened.program(&program).expect("reads").expect("stored");
    assert_eq!(
        stored.bytecode, b"\0asm\x0d\x00\x01\x00policy",
        "read from disk"
    );
    assert_eq!(stored.deposit, 10 * stored.bytecode.len() as u64);
    assert_eq!(reopened.state().offences.len(), 1);
    assert_eq!(
        reopened.state().globals.signer_set.jump_start,
        JumpStartStatus::Done
    );
    drop(reopened);
    let (replayed, recorded) =
        Chain::replay_digest(dir.path(), validate.clone(), None).expect("replays");
    assert_eq!(replayed.to_vec(), recorded);
    assert_eq!(replayed, digest);

    // A data directory for another chain is refused.
    let mut other = dev_genesis();
    other.chain_id = "other".into();
    assert!(Chain::open(dir.path(), Some(&other), validate.clone(), None).is_err());
    // A new directory without genesis is refused.
    assert!(Chain::open(&dir.path().join("empty"), None, validate, None).is_err());
}

#[test]
fn import_accepts_only_identical_replays() {
    let validate = Arc::new(|b: &[u8]| component_header_check(b));
    let (a, b) = (
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
    );
    let mut producer =
        Chain::open(a.path(), Some(&dev_genesis()), validate.clone(), None).expect("a");
    let mut replica = Chain::open(b.path(), Some(&dev_genesis()), validate, None).expect("b");
    let alice = NodeSeed::dev("alice").account_keypair();
    let t = tx::sign(
        &alice,
        "sigil-dev",
        0,
        Call::Transfer {
            to: NodeSeed::dev("bob").account_keypair().account_id(),
            amount: 5,
        },
    );
    let (block, _) = producer
        .execute(Proposal {
            timestamp_ms: 10,
            transactions: vec![t],
        })
        .expect("executes");
    let mut forged = block.clone();
    forged.header.state_digest = vec![0; 32];
    assert!(replica.import(forged).is_err());
    drop(replica);
    let mut replica = Chain::open(
        b.path(),
        None,
        Arc::new(|b: &[u8]| component_header_check(b)),
        None,
    )
    .expect("reopen after a refused import");
    replica.import(block).expect("identical replay");
    assert_eq!(replica.state().digest(), producer.state().digest());
}

#[test]
fn a_data_directory_of_another_storage_format_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let validate = Arc::new(|b: &[u8]| component_header_check(b));
    drop(Chain::open(dir.path(), Some(&dev_genesis()), validate.clone(), None).expect("creates"));
    // What a build from before formats were recorded left: no format entry.
    {
        let db = redb::Database::open(dir.path().join("ledger.redb")).expect("db");
        let write = db.begin_write().expect("write");
        {
            let meta = redb::TableDefinition::<&str, &[u8]>::new("meta");
            write
                .open_table(meta)
                .expect("meta")
                .remove("format")
                .expect("remove");
        }
        write.commit().expect("commit");
    }
    let Err(error) = Chain::open(dir.path(), None, validate, None) else {
        panic!("an older data directory opened")
    };
    assert!(
        matches!(error, ChainError::OtherFormat { found: 1, .. }),
        "{error}"
    );
    assert!(error.to_string().contains("storage format 1"), "{error}");
}

#[test]
fn a_program_checked_at_admission_is_not_compiled_again_in_its_block() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let dir = tempfile::tempdir().expect("tempdir");
    let compiled = Arc::new(AtomicUsize::new(0));
    let counter = compiled.clone();
    let validate = Arc::new(move |b: &[u8]| {
        counter.fetch_add(1, Ordering::SeqCst);
        component_header_check(b)
    });
    let mut chain = Chain::open(dir.path(), Some(&dev_genesis()), validate, None).expect("creates");
    let store = |bytecode: &[u8], nonce| {
        let call = Call::StoreProgram {
            bytecode: bytecode.to_vec(),
            config_schema: vec![],
            aux_schema: vec![],
            oracle_keys: vec![],
            version: 1,
        };
        tx::sign(
            &NodeSeed::dev("eve").account_keypair(),
            chain.chain_id(),
            nonce,
            call,
        )
    };
    let admitted = b"\0asm\x0d\x00\x01\x00admitted".to_vec();
    let fresh = b"\0asm\x0d\x00\x01\x00fresh".to_vec();
    let txs = vec![store(&admitted, 0), store(&fresh, 1)];
    // What the RPC does at admission.
    chain.program_check()(&admitted).expect("valid");
    assert_eq!(compiled.load(Ordering::SeqCst), 1);
    let (block, outcomes) = chain
        .execute(Proposal {
            timestamp_ms: 1,
            transactions: txs,
        })
        .expect("executes");
    assert!(outcomes.iter().all(|o| o.result.is_ok()), "{outcomes:?}");
    assert_eq!(block.transactions.len(), 2);
    assert_eq!(
        compiled.load(Ordering::SeqCst),
        2,
        "only the program not checked before is compiled in the block"
    );
}

#[test]
fn a_replica_refuses_a_block_over_the_transaction_limit() {
    let (a, b) = (
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
    );
    let validate = Arc::new(|b: &[u8]| component_header_check(b));
    let mut producer =
        Chain::open(a.path(), Some(&dev_genesis()), validate.clone(), None).expect("a");
    let mut replica = Chain::open(b.path(), Some(&dev_genesis()), validate, None).expect("b");
    let alice = NodeSeed::dev("alice").account_keypair();
    let to = NodeSeed::dev("bob").account_keypair().account_id();
    let limit = sigil_ledger::producer::MAX_BLOCK_TRANSACTIONS as u64;
    let transactions = (0..=limit)
        .map(|nonce| {
            tx::sign(
                &alice,
                producer.chain_id(),
                nonce,
                Call::Transfer { to, amount: 1 },
            )
        })
        .collect();
    // A producer that ignored the limit made it; a replica does not take it.
    let (block, _) = producer
        .execute(Proposal {
            timestamp_ms: 10,
            transactions,
        })
        .expect("executes");
    let refused = replica.import(block).expect_err("over the limit");
    assert!(
        refused.to_string().contains("exceed a block's limits"),
        "{refused}"
    );
}
