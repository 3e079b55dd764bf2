//! Ed25519 and BIP-340 keys end to end on a devnet of real processes: the signers make each
//! scheme's network key (FROST) and confirm it on the ledger; a registered key of each scheme
//! signs through a relayer and the committee, and independent libraries (ed25519-dalek, k256's
//! BIP-340 verifier) accept the signatures under the registered keys; after a signer leaves
//! and another joins, the same keys sign with the newcomer in the committee; a signer that
//! spoils a key generation is proven at fault, slashed and rotated out.

mod common;

use common::*;
use sigil_client::rpc::LedgerApiClient as _;
use sigil_client::seal_request;
use sigil_client::types::{Call, FaultKind};
use sigil_crypto::request::sign_session_id;
use sigil_primitives::request::SignatureRequest;
use sigil_primitives::{
    AccountId, ErrorCode, HashingAlgorithm, KeyScheme, Signature, VerifyingKey,
};

/// Signs `message` with `key` through the relayer, checking the answer as a client does.
async fn sign(
    ledger: &sigil_client::LedgerClient,
    key: VerifyingKey,
    hashing: HashingAlgorithm,
    message: Vec<u8>,
) -> Result<[u8; 64], sigil_client::ClientError> {
    let request = SignatureRequest {
        verifying_key: key,
        block: head(ledger).await,
        hashing,
        aux_data: vec![vec![]],
        message,
    };
    let relayer = &ledger.relayers().await.unwrap()[0];
    let sealed = seal_request(&dev("bob"), relayer, &request).unwrap();
    let response = common::relayer(ledger)
        .await
        .relay(&sealed.envelope)
        .await?;
    sigil_client::verify_response(&sealed, &request, &response).expect("a valid answer");
    match response.signature {
        Signature::Schnorr(bytes) => Ok(bytes),
        other => panic!("a 64-byte signature, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ed25519_and_bip340_keys_are_made_registered_and_sign() {
    let dir = TestDir::new();
    // Short exclusions: alice's proven offences below must not keep it out for long.
    let (devnet, ecdsa_key) = fixture_devnet_of(6, dir.path(), &[], |p| {
        p.offence_window = 20;
        p.max_offences = 100;
    })
    .await;
    let ledger = devnet.client();
    wait_scheme_keys(ledger).await;
    let set = ledger.rpc().signer_set().await.unwrap();
    assert_eq!(set.scheme_keys.len(), 2, "{set:?}");
    // The fixture devnet stored `message-size` for its ECDSA key.
    let registration = ledger.rpc().registration(ecdsa_key).await.unwrap().unwrap();
    let program = registration.programs.as_slice()[0].program;
    let programs = [(program, r#"{"max_length": 2048}"#)];

    // Ed25519: a message of any length, signed as it is.
    let ed_key = register_scheme(ledger, &dev("bob"), &programs, KeyScheme::Ed25519).await;
    assert_eq!(ed_key.scheme(), KeyScheme::Ed25519);
    let message: Vec<u8> = (0..1500u32).map(|i| (i % 251) as u8).collect();
    let signature = sign(ledger, ed_key, HashingAlgorithm::None, message.clone())
        .await
        .expect("an ed25519 signature");
    verify_ed25519(ed_key, &message, &signature);

    // BIP-340: a 32-byte message (a sighash) under the x-only Taproot output key.
    let taproot = register_scheme(ledger, &dev("bob"), &programs, KeyScheme::Bip340).await;
    assert_eq!(taproot.scheme(), KeyScheme::Bip340);
    let sighash = [0x5a; 32];
    let signature = sign(
        ledger,
        taproot,
        HashingAlgorithm::Identity,
        sighash.to_vec(),
    )
    .await
    .expect("a BIP-340 signature");
    let vk = k256::schnorr::VerifyingKey::from_bytes(taproot.key_bytes()).expect("x-only key");
    let signature = k256::schnorr::Signature::try_from(&signature[..]).expect("64 bytes");
    vk.verify_raw(&sighash, &signature)
        .expect("k256 accepts the BIP-340 signature");

    // The relayer keeps commitments made ahead: once its pool is warm, requests sign in one
    // round (the signers count the sessions by path).
    let relayer = devnet.node("eve").expect("eve relays").endpoint.clone();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while metric_sum(&relayer, "sigil_node_nonce_pool", r#"scheme="ed25519""#).await < 8.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the nonce pool never filled"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let signers: Vec<String> = devnet.nodes()[..4]
        .iter()
        .map(|n| n.endpoint.clone())
        .collect();
    let prepared_sessions = || async {
        let mut total = 0.0;
        for endpoint in &signers {
            total += metric_sum(
                endpoint,
                "sigil_node_frost_sessions_total",
                r#"path="prepared""#,
            )
            .await;
        }
        total
    };
    let before = prepared_sessions().await;
    for i in 0..3u8 {
        let message = vec![i; 100];
        let signature = sign(ledger, ed_key, HashingAlgorithm::None, message.clone())
            .await
            .expect("a one-round signature");
        verify_ed25519(ed_key, &message, &signature);
    }
    // Two members per session (2-of-4), three sessions.
    assert_eq!(prepared_sessions().await - before, 6.0);

    // A BIP-340 key signs 32 bytes: `none` is refused with its own code, before any session.
    let refused = sign(
        ledger,
        taproot,
        HashingAlgorithm::None,
        b"raw text".to_vec(),
    )
    .await
    .expect_err("refused");
    assert!(
        matches!(&refused, sigil_client::ClientError::Node { code, .. } if *code == ErrorCode::BadMessageForHash),
        "{refused}"
    );

    // alice signs wrong signature shares: bob, the other member, proves it `failed_proof`
    // through the offence path (the ledger re-checks the evidence and slashes alice) and the
    // user still gets a signature from another committee.
    for key in [ed_key, taproot] {
        wait_exclusions_expire(ledger).await;
        corrupted_share_names_its_sender(ledger, &devnet, key).await;
    }

    // dave leaves: the FROST keys follow the signer set (repair for the newcomer, refresh for
    // all) and the same user keys sign with the newcomer in the committee.
    let newcomer = rotate_out(&devnet, "dave").await;
    for key in [ed_key, taproot] {
        let (request, sealed) = request_with(ledger, &dev("bob"), key, &[newcomer]).await;
        let response = sign_checked(ledger, &request, &sealed).await;
        assert!(response.committee.contains(&newcomer), "{response:?}");
        // request_with hashes with keccak256: both schemes sign the 32-byte hash.
        let signed = sigil_crypto::message_hash(request.hashing, &request.message).unwrap();
        verify_independently(key, &signed, &response.signature);
    }
}

/// alice corrupts the secret shares it deals in both FROST key generations: the other signers
/// prove it with the signed packages (`report_keygen_fault`, re-checked by the ledger), alice is
/// slashed and rotated out, the next signer set makes both keys, and an Ed25519 key of theirs
/// signs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signer_that_spoils_key_generation_is_proven_slashed_and_rotated_out() {
    let dir = TestDir::new();
    let mut config = fixture_config(6, dir.path(), &[]);
    config.jump_start = false;
    let mut devnet = sigil::devnet::Devnet::start(config).await.expect("devnet");
    let ledger = sigil_client::LedgerClient::connect(devnet.ledger_url())
        .await
        .expect("a ledger");
    let alice = devnet.node("alice").unwrap().account;
    let stake_before = stake(&ledger, alice).await;
    let alice_node = sigil_client::NodeClient::new(&devnet.node("alice").unwrap().endpoint);
    set_fault(&alice_node, Some("corrupt")).await;
    devnet
        .jump_start()
        .await
        .expect("the keys are made without alice");

    let set = ledger.rpc().signer_set().await.unwrap();
    assert!(!set.signers.contains(&alice), "{set:?}");
    assert_eq!(set.scheme_keys.len(), 2, "{set:?}");
    let first: Vec<AccountId> = ["alice", "bob", "charlie", "dave"]
        .iter()
        .map(|n| devnet.node(n).unwrap().account)
        .collect();
    let sessions: Vec<sigil_primitives::SessionId> = [KeyScheme::Ed25519, KeyScheme::Bip340]
        .into_iter()
        .map(|scheme| {
            let id = sigil_crypto::frost_keygen_session(ledger.chain_id(), scheme, 2, &first);
            sigil_primitives::SessionId::new(id)
        })
        .collect();
    let proven: Vec<_> = offences(&ledger)
        .await
        .into_iter()
        .filter(|o| o.offender == alice && sessions.contains(&o.session))
        .collect();
    assert!(!proven.is_empty(), "no key generation offence recorded");
    for offence in &proven {
        assert!(offence.proven && offence.slashed > 0, "{offence:?}");
        assert_eq!(offence.kind, FaultKind::FailedProof);
        assert_eq!(offence.reporters.len(), 1, "{offence:?}");
        assert!(first[1..].contains(&offence.reporters[0]), "{offence:?}");
    }
    let slashed: u64 = proven.iter().map(|o| o.slashed).sum();
    assert_eq!(stake(&ledger, alice).await, stake_before - slashed);

    set_fault(&alice_node, None).await;
    let program = deploy(&ledger, "message-size").await;
    let programs = [(program, r#"{"max_length": 1024}"#)];
    let key = register_scheme(&ledger, &dev("bob"), &programs, KeyScheme::Ed25519).await;
    let message = b"signed by a signer set without alice".to_vec();
    let signature = sign(&ledger, key, HashingAlgorithm::None, message.clone())
        .await
        .expect("an ed25519 signature");
    verify_ed25519(key, &message, &signature);
}

/// ed25519-dalek's strict check of `signature` over `message` under the Ed25519 `key`.
fn verify_ed25519(key: VerifyingKey, message: &[u8], signature: &[u8; 64]) {
    let vk = ed25519_dalek::VerifyingKey::from_bytes(key.key_bytes().try_into().unwrap())
        .expect("an ed25519 key");
    vk.verify_strict(message, &ed25519_dalek::Signature::from_bytes(signature))
        .expect("ed25519-dalek accepts the signature");
}

/// alice, told to corrupt what it sends, signs `key` with bob: the request is still signed,
/// and the ledger holds one new offence, alice's `failed_proof`, reported by bob and proven by
/// the evidence the ledger checked: alice is slashed.
async fn corrupted_share_names_its_sender(
    ledger: &sigil_client::LedgerClient,
    devnet: &sigil::devnet::Devnet,
    key: VerifyingKey,
) {
    let [alice, bob] = ["alice", "bob"].map(|n| devnet.node(n).unwrap().account);
    let client = sigil_client::NodeClient::new(&devnet.node("alice").unwrap().endpoint);
    let known = offences(ledger).await.len();
    let stake_before = stake(ledger, alice).await;
    set_fault(&client, Some("corrupt")).await;
    let (request, sealed) = request_with(ledger, &dev("bob"), key, &[alice, bob]).await;
    let response = sign_checked(ledger, &request, &sealed).await;
    set_fault(&client, None).await;
    assert!(response.attempts[0].error.is_some(), "{response:?}");
    assert!(!response.committee.contains(&alice), "{response:?}");
    let reported: Vec<_> = response
        .offences
        .iter()
        .map(|o| (o.offender, o.kind))
        .collect();
    assert_eq!(
        reported,
        vec![(alice, FaultKind::FailedProof)],
        "{response:?}"
    );
    let new: Vec<_> = offences(ledger).await.into_iter().skip(known).collect();
    assert_eq!(new.len(), 1, "{new:?}");
    assert_eq!(
        (new[0].offender, new[0].kind),
        (alice, FaultKind::FailedProof)
    );
    assert_eq!(new[0].reporters, vec![bob], "{new:?}");
    assert_eq!(new[0].session, sign_session_id(&sealed.digest, 0));
    assert!(new[0].proven && new[0].slashed > 0, "{new:?}");
    assert_eq!(stake(ledger, alice).await, stake_before - new[0].slashed);
}

/// `name` (a signer) leaves; waits for the reshare to finish with every network key
/// unchanged and returns the signer that took its place.
async fn rotate_out(devnet: &sigil::devnet::Devnet, name: &str) -> AccountId {
    let ledger = devnet.client();
    let before = ledger.rpc().signer_set().await.unwrap();
    let leaving = devnet.node(name).unwrap().account;
    ledger
        .submit(&dev(name), Call::Leave, true)
        .await
        .expect("leave");
    let started = std::time::Instant::now();
    let set = loop {
        let set = ledger.rpc().signer_set().await.unwrap();
        if set.pending_reshare.is_none() && !set.signers.contains(&leaving) {
            break set;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(300),
            "the reshare did not finish: {set:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    };
    eprintln!("the reshare took {:?}", started.elapsed());
    assert_eq!(set.network_key, before.network_key, "same ECDSA key");
    assert_eq!(set.scheme_keys, before.scheme_keys, "same FROST keys");
    let newcomer = *set
        .signers
        .iter()
        .find(|s| !before.signers.contains(s))
        .expect("a new signer");
    // Let every node see the switch.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    newcomer
}

/// Checks a 64-byte signature over `signed` with ed25519-dalek or k256's BIP-340 verifier.
fn verify_independently(key: VerifyingKey, signed: &[u8], signature: &Signature) {
    let Signature::Schnorr(signature) = signature else {
        panic!("a 64-byte signature, got {signature}")
    };
    match key.scheme() {
        KeyScheme::Ed25519 => verify_ed25519(key, signed, signature),
        _ => {
            let vk = k256::schnorr::VerifyingKey::from_bytes(key.key_bytes()).expect("x-only");
            let signature = k256::schnorr::Signature::try_from(&signature[..]).expect("64 bytes");
            vk.verify_raw(signed, &signature)
                .expect("k256 accepts the BIP-340 signature");
        }
    }
}

/// The test plays the relayer eve (a dev identity) against the signers' own API: it asks for
/// nonces, builds forwarded requests that name them and posts them to the committee.
struct Relayer<'a> {
    ledger: &'a sigil_client::LedgerClient,
    eve: sigil_crypto::AccountKeypair,
    eve_x25519: sigil_crypto::X25519StaticKey,
    /// The scheme of the nonces it asks for.
    scheme: KeyScheme,
}

impl Relayer<'_> {
    fn seal_to(
        &self,
        to: &sigil_client::types::ValidatorRecord,
        payload: &[u8],
    ) -> sigil_crypto::Envelope {
        sigil_crypto::seal(
            &self.eve,
            &sigil_crypto::SealParams {
                recipient: to.x25519,
                request_id: sigil_primitives::RequestId::from_bytes(
                    sigil_crypto::secret::random_array(),
                )
                .unwrap(),
                timestamp_ms: sigil_crypto::envelope::now_ms(),
                reply_to: None,
                payload,
            },
        )
        .unwrap()
    }

    async fn record(
        &self,
        account: &sigil_primitives::AccountId,
    ) -> sigil_client::types::ValidatorRecord {
        self.ledger
            .rpc()
            .validators()
            .await
            .unwrap()
            .into_iter()
            .find(|v| v.account == *account)
            .unwrap()
    }

    /// `count` fresh nonces of `signer`, issued to eve.
    async fn nonces(&self, signer: &sigil_primitives::AccountId, count: u16) -> usize {
        let record = self.record(signer).await;
        let request = sigil_primitives::request::NonceRequest {
            scheme: self.scheme,
            count,
        };
        sigil_client::NodeClient::new(record.endpoint.as_str())
            .nonces(&self.seal_to(&record, &request.encode()))
            .await
            .expect("nonces")
            .nonces
            .len()
    }

    /// One fresh nonce of `signer`, issued to eve.
    async fn nonce(
        &self,
        signer: &sigil_primitives::AccountId,
    ) -> sigil_primitives::request::NamedCommitment {
        let record = self.record(signer).await;
        let request = sigil_primitives::request::NonceRequest {
            scheme: self.scheme,
            count: 1,
        };
        let batch = sigil_client::NodeClient::new(record.endpoint.as_str())
            .nonces(&self.seal_to(&record, &request.encode()))
            .await
            .expect("a nonce");
        let issued = &batch.nonces[0];
        sigil_primitives::request::NamedCommitment {
            member: *signer,
            id: issued.id.as_slice().try_into().unwrap(),
            commitments: issued.commitments.clone(),
        }
    }

    /// A user request for `key` whose attempt-0 committee contains `member`, forwarded as eve
    /// would with `prepared` built by `name` for the committee.
    async fn forward(
        &self,
        key: VerifyingKey,
        member: sigil_primitives::AccountId,
        name: impl AsyncFn(&sigil_primitives::AccountId) -> sigil_primitives::request::NamedCommitment,
    ) -> (sigil_primitives::request::ForwardedRequest, Vec<u8>) {
        let (request, sealed) = request_with(self.ledger, &dev("bob"), key, &[member]).await;
        assert_eq!(request.verifying_key, key);
        let opened = sigil_crypto::open(
            &sealed.envelope,
            &self.eve_x25519,
            &sigil_crypto::OpenPolicy::fresh_within(120_000),
        )
        .unwrap();
        let set = self.ledger.rpc().signer_set().await.unwrap();
        let block = self
            .ledger
            .rpc()
            .block(request.block)
            .await
            .unwrap()
            .unwrap();
        let committee: Vec<_> = sigil_crypto::select_committee(
            &set.signers.iter().copied().collect(),
            &Default::default(),
            usize::from(set.threshold),
            &sigil_crypto::CommitteeSeed {
                block_hash: &sigil_client::header::header_hash(&block.header),
                request_digest: &sealed.digest,
                attempt: 0,
            },
        )
        .unwrap()
        .into_iter()
        .collect();
        let ticket = sigil_client::tx::sign_ticket(
            &self.eve,
            self.ledger.chain_id(),
            sigil_crypto::request::sign_session_id(&sealed.digest, 0),
            sigil_primitives::BlockNumber(request.block),
            0,
            committee.clone(),
        );
        let mut prepared = Vec::new();
        for m in &committee {
            prepared.push(name(m).await);
        }
        let forwarded = sigil_primitives::request::ForwardedRequest {
            attempt: 0,
            committee,
            excluded: vec![],
            ticket: ticket.signature,
            user_plaintext: opened.signed_plaintext,
            prepared,
        };
        (forwarded, request.message)
    }

    /// Posts `forwarded` to every committee member at once.
    async fn post(
        &self,
        forwarded: &sigil_primitives::request::ForwardedRequest,
    ) -> Vec<Result<sigil_primitives::request::SignerResponse, sigil_client::ClientError>> {
        let payload = forwarded.encode();
        let mut calls = Vec::new();
        for member in &forwarded.committee {
            let record = self.record(member).await;
            let envelope = self.seal_to(&record, &payload);
            calls.push(async move {
                sigil_client::NodeClient::new(record.endpoint.as_str())
                    .sign(&envelope)
                    .await
            });
        }
        futures::future::join_all(calls).await
    }
}

/// For each scheme, the test plays the relayer against the signers' API (`/v1/nonces`,
/// `/v1/sign`): see [`a_nonce_signs_once`].
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nonce_made_ahead_never_signs_twice_even_across_a_crash() {
    let dir = TestDir::new();
    // alice's crash gets her accused by the other member each time: short windows, so that
    // neither the disputes nor the accusations carry over to the next scheme.
    let (mut devnet, ecdsa_key) = fixture_devnet(dir.path(), &["--round-timeout", "3s"], |p| {
        p.offence_window = 20;
        p.accusation_window = 20;
    })
    .await;
    let ledger = sigil_client::LedgerClient::connect(devnet.ledger_url())
        .await
        .unwrap();
    wait_scheme_keys(&ledger).await;
    let registration = ledger.rpc().registration(ecdsa_key).await.unwrap().unwrap();
    let program = registration.programs.as_slice()[0].program;
    let eve_seed = sigil_crypto::NodeSeed::dev("eve");
    for scheme in [KeyScheme::Ed25519, KeyScheme::Bip340] {
        let relayer = Relayer {
            ledger: &ledger,
            eve: eve_seed.account_keypair(),
            eve_x25519: eve_seed.x25519_key(),
            scheme,
        };
        let programs = [(program, r#"{"max_length": 64}"#)];
        let key = register_scheme(&ledger, &dev("bob"), &programs, scheme).await;
        wait_exclusions_expire(&ledger).await;
        a_nonce_signs_once(&mut devnet, &relayer, key).await;
    }
}

/// With `key`: one round with the nonces named signs; a relayer asking again and again still
/// gets full batches; alice, crashing right after deleting her nonce (before her share leaves),
/// refuses that nonce after a restart.
async fn a_nonce_signs_once(
    devnet: &mut sigil::devnet::Devnet,
    relayer: &Relayer<'_>,
    key: VerifyingKey,
) {
    let alice = devnet.node("alice").unwrap().account;
    // One round with the nonces named: every member answers the same valid signature.
    let (forwarded, message) = relayer
        .forward(key, alice, async |m| relayer.nonce(m).await)
        .await;
    let answers = relayer.post(&forwarded).await;
    for answer in &answers {
        // `request_with` asks for keccak256: the key signed the 32-byte hash.
        let signed = sigil_crypto::keccak256(&message);
        verify_independently(key, &signed, &answer.as_ref().expect("signed").signature);
    }

    // A relayer that keeps asking (one that restarted and lost its pool) still gets full
    // batches: the signer drops its oldest unused nonces instead of refusing.
    for _ in 0..3 {
        assert_eq!(relayer.nonces(&alice, 64).await, 64);
    }

    // alice dies right after deleting her nonce, before her share leaves.
    let alice_node = sigil_client::NodeClient::new(&devnet.node("alice").unwrap().endpoint);
    set_fault(&alice_node, Some("crash-after-nonce")).await;
    let alices = relayer.nonce(&alice).await;
    let kept = alices.clone();
    let (forwarded, _) = relayer
        .forward(key, alice, async |m| {
            if *m == alice {
                kept.clone()
            } else {
                relayer.nonce(m).await
            }
        })
        .await;
    let answers = relayer.post(&forwarded).await;
    assert!(
        answers.iter().all(Result::is_err),
        "nobody signs without alice's share"
    );
    devnet.restart("alice").await.expect("alice restarts");

    // Named again in a new request, the nonce is refused: its deletion was durable.
    let (forwarded, _) = relayer
        .forward(key, alice, async |m| {
            if *m == alice {
                alices.clone()
            } else {
                relayer.nonce(m).await
            }
        })
        .await;
    let answers = relayer.post(&forwarded).await;
    let position = forwarded
        .committee
        .iter()
        .position(|m| *m == alice)
        .unwrap();
    match &answers[position] {
        Err(sigil_client::ClientError::Node { code, .. }) => {
            assert_eq!(*code, ErrorCode::NonceRefused)
        }
        other => panic!("alice must refuse the used nonce, got {other:?}"),
    }
}
