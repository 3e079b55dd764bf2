//! The signing flow end to end: a ledger and six `sigil node` processes (alice…eve the 3-of-5
//! signers with the committed fixture shares, ferdie the relayer), production parameters.
//!
//! One devnet serves every case, run in order, because starting one costs seconds; each case
//! asserts the exact error code the protocol specifies (docs/PROTOCOL.md §7).

mod common;

use common::*;
use std::time::Duration;

use sigil::devnet::{Devnet, DevnetConfig};
use sigil_client::rpc::LedgerApiClient;
use sigil_client::types::Call;
use sigil_client::{ClientError, LedgerClient, NodeClient, SignRequest, seal_request};
use sigil_crypto::request::{request_digest, sign_session_id};
use sigil_crypto::{
    AccountKeypair, CommitteeSeed, Envelope, NodeSeed, SealParams, eth_address, recover_signer,
    seal, seal_signed, select_committee, verify_ecdsa,
};
use sigil_primitives::request::{ForwardedRequest, RequestStatus, SignatureRequest};
use sigil_primitives::{AccountId, HashingAlgorithm, RequestId, VerifyingKey};

/// Requests may name a block at most this far behind the head.
const WINDOW: u64 = 8;

fn random_id() -> RequestId {
    RequestId::from_slice(&sigil_crypto::secret::random_array::<32>()).unwrap()
}

/// A request posted by hand, with what is needed to check its answer.
#[derive(Debug)]
struct Posted {
    request: SignatureRequest,
    sealed: sigil_client::SealedRequest,
}

async fn request(
    ledger: &LedgerClient,
    key: VerifyingKey,
    message: &[u8],
    aux: usize,
) -> SignatureRequest {
    SignatureRequest {
        verifying_key: key,
        block: head(ledger).await,
        hashing: HashingAlgorithm::Keccak256,
        aux_data: vec![vec![]; aux],
        message: message.to_vec(),
    }
}

async fn post(
    ledger: &LedgerClient,
    to: &NodeClient,
    user: &AccountKeypair,
    request: SignatureRequest,
) -> (
    Posted,
    Result<sigil_primitives::request::RelayResponse, ClientError>,
) {
    let relayer = &ledger.relayers().await.unwrap()[0];
    let sealed = seal_request(user, relayer, &request).unwrap();
    let answer = to.relay(&sealed.envelope).await;
    (Posted { request, sealed }, answer)
}

/// Posts `request` to `to` and checks it is refused with `status` and `code`.
async fn refuse(
    ledger: &LedgerClient,
    to: &NodeClient,
    user: &AccountKeypair,
    request: SignatureRequest,
    status: u16,
    code: &str,
) {
    let (_, answer) = post(ledger, to, user, request).await;
    assert_code(answer, status, code);
}

fn assert_code<T: std::fmt::Debug>(result: Result<T, ClientError>, status: u16, code: &str) {
    match result {
        Err(ClientError::Node {
            status: s,
            code: c,
            message,
        }) => {
            assert_eq!((s, c.as_str()), (status, code), "message: {message}");
        }
        other => panic!("expected {status} {code}, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_signing_flow_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = DevnetConfig::new(SIGIL, dir.path());
    config.validators = 6;
    config.signers = 5;
    config.threshold = 3;
    config.key_share_fixtures = Some(workspace().join("crates/mpc/fixtures"));
    config.extra_node_args = vec!["--request-window".into(), WINDOW.to_string()];
    let devnet = Devnet::start(config).await.expect("devnet");
    let ledger = devnet.client();
    let relayer_info = ledger.relayers().await.unwrap();
    assert_eq!(relayer_info.len(), 1, "ferdie is the only relayer");
    let relayer = NodeClient::new(relayer_info[0].endpoint.as_str());
    let alice = NodeClient::new(&devnet.node("alice").unwrap().endpoint);
    let user = dev("bob");

    let size = deploy(ledger, "message-size").await;
    let hog = deploy(ledger, "infinite-loop").await;
    let key = register(ledger, &user, &[(size, r#"{"max_length": 2000000}"#)]).await;
    let small = register(ledger, &user, &[(size, r#"{"max_length": 16}"#)]).await;
    let looping = register(ledger, &user, &[(hog, "")]).await;

    // A signature by a derived key: verifies, and the Ethereum sender is the key's address.
    let signed = ledger
        .sign(
            &user,
            SignRequest {
                verifying_key: key,
                message: b"transfer 5 to carol".to_vec(),
                hashing: HashingAlgorithm::Keccak256,
                aux_data: vec![vec![]],
            },
        )
        .await
        .expect("signature");
    let hash = sigil_crypto::keccak256(b"transfer 5 to carol");
    assert_eq!(signed.message_hash, hash);
    verify_ecdsa(&key, &hash, signed.signature.ecdsa().unwrap()).unwrap();
    let (recovered, address) = recover_signer(&hash, signed.signature.ecdsa().unwrap()).unwrap();
    assert_eq!(recovered, key);
    assert_eq!(address, eth_address(&key));
    assert_ne!(
        key,
        devnet.network_key().unwrap(),
        "a derived key, not the network key"
    );
    assert_eq!(signed.committee.len(), 3);
    assert_eq!(signed.attestations.len(), 3);
    println!("signed by {:?}", signed.committee);

    // The result stays retrievable by request id.
    let kept = relayer.signature(&signed.request_id).await.unwrap();
    assert_eq!(kept.status, RequestStatus::Done);
    assert_eq!(kept.result.as_ref().unwrap().signature, signed.signature);
    assert_code(
        relayer.signature(&random_id()).await,
        404,
        "unknown_request",
    );

    // Relaying to a signer is refused.
    let (_, answer) = post(ledger, &alice, &user, request(ledger, key, b"x", 1).await).await;
    assert_code(answer, 403, "not_a_relayer");

    // An unregistered key.
    let unregistered = sigil_crypto::derive_user_key(
        &devnet.network_key().unwrap(),
        &sigil_primitives::DerivationPath::new(vec![1, 2, 3]).unwrap(),
    )
    .unwrap();
    refuse(
        ledger,
        &relayer,
        &user,
        request(ledger, unregistered, b"x", 1).await,
        404,
        "unregistered_key",
    )
    .await;

    // Wrong number of auxiliary data items.
    refuse(
        ledger,
        &relayer,
        &user,
        request(ledger, key, b"x", 2).await,
        400,
        "aux_data_mismatch",
    )
    .await;

    // A custom hash naming a program the key does not have.
    let mut custom = request(ledger, key, b"x", 1).await;
    custom.hashing = HashingAlgorithm::Custom(1);
    refuse(ledger, &relayer, &user, custom, 400, "bad_hash_index").await;

    // The program denies; another runs out of fuel.
    refuse(
        ledger,
        &relayer,
        &user,
        request(ledger, small, &[7; 17], 1).await,
        403,
        "program_denied",
    )
    .await;
    refuse(
        ledger,
        &relayer,
        &user,
        request(ledger, looping, b"x", 1).await,
        403,
        "program_out_of_fuel",
    )
    .await;

    // A message of 1 MiB + 1 byte.
    refuse(
        ledger,
        &relayer,
        &user,
        request(ledger, key, &vec![1u8; (1 << 20) + 1], 1).await,
        413,
        "message_too_large",
    )
    .await;

    // A stale block.
    while head(ledger).await <= WINDOW + 1 {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let mut stale = request(ledger, key, b"x", 1).await;
    stale.block -= WINDOW + 1;
    refuse(ledger, &relayer, &user, stale, 400, "stale_block").await;

    // A replayed request id: the same envelope twice.
    let (posted, first) = post(
        ledger,
        &relayer,
        &user,
        request(ledger, small, &[0; 17], 1).await,
    )
    .await;
    assert_code(first, 403, "program_denied");
    assert_code(
        relayer.relay(&posted.sealed.envelope).await,
        409,
        "replayed",
    );
    let failed = relayer.signature(&posted.sealed.request_id).await.unwrap();
    assert_eq!(failed.status, RequestStatus::Failed);
    assert_eq!(failed.error.unwrap().code.as_str(), "program_denied");

    // An envelope sealed to another node (alice) posted to the relayer.
    let alice_info = ledger
        .rpc()
        .validator(dev("alice").account_id())
        .await
        .unwrap()
        .unwrap();
    let to_alice = seal_request(&user, &alice_info, &request(ledger, key, b"x", 1).await).unwrap();
    assert_code(
        relayer.relay(&to_alice.envelope).await,
        400,
        "wrong_recipient",
    );

    // A tampered envelope does not open.
    let (posted, _) = post(
        ledger,
        &relayer,
        &user,
        request(ledger, small, &[0; 17], 1).await,
    )
    .await;
    let mut tampered = posted.sealed.envelope.clone();
    let last = tampered.ciphertext.len() - 1;
    tampered.ciphertext[last] ^= 1;
    assert_code(relayer.relay(&tampered).await, 400, "decryption_failed");

    // `/v1/sign` called by a non-validator.
    let outsider = AccountKeypair::generate();
    let forwarded = forwarded_for(ledger, &user, &relayer_info[0], key, 0, None).await;
    let envelope = seal_to(&outsider, &alice_info, &forwarded.0.encode());
    assert_code(alice.sign(&envelope).await, 403, "not_a_validator");

    // A relayer (ferdie's identity) that names a wrong committee is refused by the signers.
    let ferdie = dev("ferdie");
    let (forwarded, committee, outsider_member) =
        forwarded_for(ledger, &user, &relayer_info[0], key, 0, Some(())).await;
    let member = committee.iter().find(|m| **m != outsider_member).unwrap();
    let member_info = ledger.rpc().validator(*member).await.unwrap().unwrap();
    let envelope = seal_to(&ferdie, &member_info, &forwarded.encode());
    let member_client = NodeClient::new(member_info.endpoint.as_str());
    assert_code(member_client.sign(&envelope).await, 403, "wrong_committee");

    // A user signature that was tampered with, forwarded by a validator.
    let (mut forwarded, committee, _) =
        forwarded_for(ledger, &user, &relayer_info[0], key, 0, None).await;
    let last = forwarded.user_plaintext.len() - 1;
    forwarded.user_plaintext[last] ^= 1;
    let member_info = ledger
        .rpc()
        .validator(*committee.first().unwrap())
        .await
        .unwrap()
        .unwrap();
    let envelope = seal_to(&ferdie, &member_info, &forwarded.encode());
    let member_client = NodeClient::new(member_info.endpoint.as_str());
    assert_code(member_client.sign(&envelope).await, 401, "bad_signature");

    // An outsider dialling /v1/ws is refused by the transport handshake.
    outsider_is_refused(&alice_info).await;

    // Concurrent requests for different keys.
    let owners = ["charlie", "dave", "eve"];
    let mut keys = Vec::new();
    for owner in owners {
        keys.push((
            owner,
            register(ledger, &dev(owner), &[(size, r#"{"max_length": 256}"#)]).await,
        ));
    }
    let jobs = keys.iter().map(|(owner, key)| {
        let owner = dev(owner);
        let key = *key;
        async move {
            let message = format!("concurrent request for {key}").into_bytes();
            let response = ledger
                .sign(
                    &owner,
                    SignRequest {
                        verifying_key: key,
                        message: message.clone(),
                        hashing: HashingAlgorithm::Sha256,
                        aux_data: vec![vec![]],
                    },
                )
                .await
                .expect("concurrent signature");
            let hash = sigil_crypto::message_hash(HashingAlgorithm::Sha256, &message).unwrap();
            verify_ecdsa(&key, &hash, response.signature.ecdsa().unwrap()).unwrap();
        }
    });
    futures::future::join_all(jobs).await;

    // Rate limit: two signatures per key per block, then refused, then the next block is fine.
    let mut parameters = ledger.rpc().parameters().await.unwrap();
    parameters.request_limit = 2;
    ledger
        .submit(&dev("alice"), Call::SetParameters { parameters }, true)
        .await
        .unwrap();
    // Wait for the nodes to see the new parameters.
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Three at once naming the same block: two are signed, one is refused.
    let block = head(ledger).await;
    let (relayer_ref, user_ref) = (&relayer, &user);
    let jobs = (0..3u8).map(|i| async move {
        let mut r = request(ledger, key, &[i; 4], 1).await;
        r.block = block;
        let (posted, answer) = post(ledger, relayer_ref, user_ref, r).await;
        answer.map(|response| (posted, response))
    });
    // Meanwhile, as soon as the next block exists, a request naming it is signed.
    let next_block = async {
        while head(ledger).await <= block {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut next = request(ledger, key, b"next block", 1).await;
        next.block = block + 1;
        post(ledger, relayer_ref, user_ref, next).await.1
    };
    let (answers, next) = tokio::join!(futures::future::join_all(jobs), next_block);
    next.expect("the next block has a fresh allowance");
    let mut signed = 0;
    for answer in answers {
        match answer {
            Ok((posted, response)) => {
                sigil_client::verify_response(&posted.sealed, &posted.request, &response).unwrap();
                signed += 1;
            }
            refused => assert_code(refused, 429, "rate_limited"),
        }
    }
    assert_eq!(signed, 2, "exactly the limit is signed");

    devnet.stop().await.unwrap();
}

/// A forwarded request for a fresh user request; with `Some(())` its committee has one member
/// swapped for a signer outside it (returned third), otherwise it is the right committee.
async fn forwarded_for(
    ledger: &LedgerClient,
    user: &AccountKeypair,
    relayer: &sigil_client::types::ValidatorRecord,
    key: VerifyingKey,
    attempt: u32,
    wrong: Option<()>,
) -> (ForwardedRequest, Vec<AccountId>, AccountId) {
    let request = request(ledger, key, b"forwarded", 1).await;
    let (_, plaintext) = seal_signed(
        user,
        &SealParams {
            recipient: relayer.x25519,
            request_id: random_id(),
            timestamp_ms: sigil_crypto::envelope::now_ms(),
            reply_to: None,
            payload: &request.encode(),
        },
    )
    .unwrap();
    let set = ledger.rpc().signer_set().await.unwrap();
    let signers = set.signers.iter().copied().collect();
    let block = ledger.rpc().block(request.block).await.unwrap().unwrap();
    let block_hash = sigil_ledger::chain::header_hash(&block.header);
    let digest = request_digest(&plaintext);
    let mut committee: Vec<AccountId> = select_committee(
        &signers,
        &Default::default(),
        usize::from(set.threshold),
        &CommitteeSeed {
            block_hash: &block_hash,
            request_digest: &digest,
            attempt,
        },
    )
    .unwrap()
    .into_iter()
    .collect();
    let mut swapped_in = committee[0];
    if wrong.is_some() {
        swapped_in = *set.signers.iter().find(|s| !committee.contains(s)).unwrap();
        committee[0] = swapped_in;
        committee.sort();
    }
    // The relayer (ferdie) vouches for the session it starts.
    let ticket = sigil_client::tx::sign_ticket(
        &dev("ferdie"),
        ledger.chain_id(),
        sign_session_id(&digest, attempt),
        sigil_primitives::BlockNumber(request.block),
        attempt,
        committee.clone(),
    );
    (
        ForwardedRequest {
            attempt,
            committee: committee.clone(),
            excluded: vec![],
            ticket: ticket.signature,
            user_plaintext: plaintext,
            prepared: vec![],
        },
        committee,
        swapped_in,
    )
}

fn seal_to(
    sender: &AccountKeypair,
    to: &sigil_client::types::ValidatorRecord,
    payload: &[u8],
) -> Envelope {
    seal(
        sender,
        &SealParams {
            recipient: to.x25519,
            request_id: random_id(),
            timestamp_ms: sigil_crypto::envelope::now_ms(),
            reply_to: None,
            payload,
        },
    )
    .unwrap()
}

async fn outsider_is_refused(target: &sigil_client::types::ValidatorRecord) {
    use sigil_transport::{Transport, TransportConfig, TransportError, ValidatorInfo};
    // The outsider must be the dialling side: its account id must be the larger.
    let seed = loop {
        let seed = NodeSeed::generate();
        if seed.account_keypair().account_id() > target.account {
            break seed;
        }
    };
    let transport = Transport::new(
        seed.account_keypair(),
        seed.x25519_key(),
        TransportConfig::default(),
    );
    transport.set_peers(vec![ValidatorInfo {
        account: target.account,
        x25519: target.x25519,
        endpoint: target.endpoint.clone(),
    }]);
    match transport.connect(&target.account).await {
        Err(TransportError::Refused { code, .. }) => {
            assert_eq!(code.as_str(), "unknown_peer");
        }
        other => panic!("an outsider must be refused, got {other:?}"),
    }
    transport.shutdown();
}
