//! Ed25519 and BIP-340 keys end to end on a devnet of real processes: the signers make each
//! scheme's network key (FROST) and confirm it on the ledger; a registered key of each scheme
//! signs through a relayer and the committee, and independent libraries (ed25519-dalek, k256's
//! BIP-340 verifier) accept the signatures under the registered keys.

mod common;

use common::*;
use sigil_client::rpc::LedgerApiClient as _;
use sigil_client::seal_request;
use sigil_primitives::request::SignatureRequest;
use sigil_primitives::{ErrorCode, HashingAlgorithm, KeyScheme, Signature, VerifyingKey};

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
    let (devnet, ecdsa_key) = fixture_devnet(dir.path(), &[], |_| {}).await;
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
    let vk = ed25519_dalek::VerifyingKey::from_bytes(ed_key.key_bytes().try_into().unwrap())
        .expect("an ed25519 key");
    vk.verify_strict(&message, &ed25519_dalek::Signature::from_bytes(&signature))
        .expect("ed25519-dalek accepts the signature");

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
        let vk = ed25519_dalek::VerifyingKey::from_bytes(ed_key.key_bytes().try_into().unwrap())
            .expect("key");
        vk.verify_strict(&message, &ed25519_dalek::Signature::from_bytes(&signature))
            .expect("verifies");
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
}
