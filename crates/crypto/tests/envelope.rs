//! The request envelope: round trip, and each way an envelope can be wrong failing with its own
//! error.

use hpke::{Deserializable as _, OpModeR, OpModeS, Serializable as _};
use sigil_crypto::envelope::{
    ENVELOPE_VERSION, Envelope, EnvelopeError, HPKE_INFO_PREFIX, MAX_PAYLOAD, OpenPolicy,
    SealParams, now_ms, open, seal, suite,
};
use sigil_crypto::{AccountKeypair, X25519StaticKey};
use sigil_primitives::{RequestId, X25519PublicKey};

const MINUTE: u64 = 60_000;

fn params(recipient: X25519PublicKey, payload: &[u8]) -> SealParams<'_> {
    SealParams {
        recipient,
        request_id: RequestId::from_bytes([9; 32]).expect("any bytes"),
        timestamp_ms: now_ms(),
        reply_to: None,
        payload,
    }
}

/// Decrypts an envelope with raw HPKE, as anyone holding the recipient key could.
fn raw_open(envelope: &Envelope, key: &X25519StaticKey) -> Vec<u8> {
    let sk =
        <suite::Kem as hpke::Kem>::PrivateKey::from_bytes(key.secret_bytes().as_ref()).expect("sk");
    let enc = <suite::Kem as hpke::Kem>::EncappedKey::from_bytes(&envelope.enc).expect("enc");
    let info = [HPKE_INFO_PREFIX, key.public_key().as_bytes()].concat();
    hpke::single_shot_open::<suite::Aead, suite::Kdf, suite::Kem>(
        &OpModeR::Base,
        &sk,
        &enc,
        &info,
        &envelope.ciphertext,
        b"",
    )
    .expect("raw open")
}

/// Seals arbitrary plaintext to `recipient` with raw HPKE, as any attacker could.
fn raw_seal(plaintext: &[u8], recipient: X25519PublicKey) -> Envelope {
    let pk = <suite::Kem as hpke::Kem>::PublicKey::from_bytes(recipient.as_bytes()).expect("pk");
    let info = [HPKE_INFO_PREFIX, recipient.as_bytes()].concat();
    let (enc, ciphertext) = hpke::single_shot_seal::<suite::Aead, suite::Kdf, suite::Kem>(
        &OpModeS::Base,
        &pk,
        &info,
        plaintext,
        b"",
    )
    .expect("raw seal");
    Envelope {
        version: ENVELOPE_VERSION,
        recipient,
        enc: enc.to_bytes().to_vec(),
        ciphertext,
    }
}

#[test]
fn round_trip() {
    let user = AccountKeypair::generate();
    let node = X25519StaticKey::generate();
    let reply = X25519StaticKey::generate();
    let mut p = params(node.public_key(), b"sign this please");
    p.reply_to = Some(reply.public_key());
    let envelope = seal(&user, &p).expect("seals");

    let policy = OpenPolicy::fresh_within(MINUTE).from_sender(user.account_id());
    let opened = open(&envelope, &node, &policy).expect("opens");
    assert_eq!(opened.sender, user.account_id());
    assert_eq!(opened.payload, b"sign this please");
    assert_eq!(opened.request_id, p.request_id);
    assert_eq!(opened.reply_to, Some(reply.public_key()));

    // The JSON and binary encodings carry the envelope unchanged.
    let json = serde_json::to_string(&envelope).expect("json");
    assert_eq!(
        serde_json::from_str::<Envelope>(&json).expect("parses"),
        envelope
    );
    assert_eq!(
        Envelope::from_bytes(&envelope.to_bytes()).expect("parses"),
        envelope
    );
}

#[test]
fn reply_is_sealed_to_the_named_ephemeral_key() {
    let user = AccountKeypair::generate();
    let node_account = AccountKeypair::generate();
    let node = X25519StaticKey::generate();
    let reply = X25519StaticKey::generate();
    let mut p = params(node.public_key(), b"request");
    p.reply_to = Some(reply.public_key());
    let opened = open(
        &seal(&user, &p).expect("seals"),
        &node,
        &OpenPolicy::fresh_within(MINUTE),
    )
    .expect("opens");

    let response = opened
        .seal_reply(&node_account, b"secret result")
        .expect("seals reply");
    let policy = OpenPolicy::fresh_within(MINUTE).from_sender(node_account.account_id());
    let got = open(&response, &reply, &policy).expect("user opens reply");
    assert_eq!(got.payload, b"secret result");
    assert_eq!(got.request_id, p.request_id);
    // Nobody else, not even the node's static key, can open it.
    assert!(matches!(
        open(&response, &node, &policy),
        Err(EnvelopeError::NotForThisRecipient(_))
    ));

    let opened = open(
        &seal(&user, &params(node.public_key(), b"x")).expect("seals"),
        &node,
        &OpenPolicy::fresh_within(MINUTE),
    )
    .expect("opens");
    assert_eq!(
        opened.seal_reply(&node_account, b"y"),
        Err(EnvelopeError::NoReplyKey)
    );
}

#[test]
fn wrong_recipient_key() {
    let user = AccountKeypair::generate();
    let node = X25519StaticKey::generate();
    let other = X25519StaticKey::generate();
    let envelope = seal(&user, &params(node.public_key(), b"m")).expect("seals");
    assert_eq!(
        open(&envelope, &other, &OpenPolicy::fresh_within(MINUTE)),
        Err(EnvelopeError::NotForThisRecipient(node.public_key()))
    );
    // Relabelling the clear recipient does not help: HPKE's info binds the real one.
    let mut relabelled = envelope.clone();
    relabelled.recipient = other.public_key();
    assert_eq!(
        open(&relabelled, &other, &OpenPolicy::fresh_within(MINUTE)),
        Err(EnvelopeError::DecryptionFailed)
    );
}

#[test]
fn tampered_ciphertext() {
    let user = AccountKeypair::generate();
    let node = X25519StaticKey::generate();
    let envelope = seal(&user, &params(node.public_key(), b"m")).expect("seals");
    for i in [
        0,
        envelope.ciphertext.len() / 2,
        envelope.ciphertext.len() - 1,
    ] {
        let mut bad = envelope.clone();
        bad.ciphertext[i] ^= 0x01;
        assert_eq!(
            open(&bad, &node, &OpenPolicy::fresh_within(MINUTE)),
            Err(EnvelopeError::DecryptionFailed)
        );
    }
    let mut bad = envelope.clone();
    bad.enc[3] ^= 0x80;
    assert_eq!(
        open(&bad, &node, &OpenPolicy::fresh_within(MINUTE)),
        Err(EnvelopeError::DecryptionFailed)
    );
    let mut bad = envelope;
    bad.ciphertext.truncate(10);
    assert_eq!(
        open(&bad, &node, &OpenPolicy::fresh_within(MINUTE)),
        Err(EnvelopeError::DecryptionFailed)
    );
}

#[test]
fn tampered_signature_or_payload() {
    let user = AccountKeypair::generate();
    let node = X25519StaticKey::generate();
    let envelope = seal(&user, &params(node.public_key(), b"pay 1 coin")).expect("seals");
    let plaintext = raw_open(&envelope, &node);

    let mut bad_sig = plaintext.clone();
    let last = bad_sig.len() - 1;
    bad_sig[last] ^= 0x01;
    assert_eq!(
        open(
            &raw_seal(&bad_sig, node.public_key()),
            &node,
            &OpenPolicy::fresh_within(MINUTE)
        ),
        Err(EnvelopeError::BadSignature(user.account_id()))
    );

    // Same length, other payload, original signature: forgery for another payload fails.
    let mut bad_payload = plaintext.clone();
    let at = plaintext.len() - 64 - 6;
    bad_payload[at..at + 6].copy_from_slice(b"9 coin");
    assert_eq!(
        open(
            &raw_seal(&bad_payload, node.public_key()),
            &node,
            &OpenPolicy::fresh_within(MINUTE)
        ),
        Err(EnvelopeError::BadSignature(user.account_id()))
    );
}

#[test]
fn other_sender() {
    let alice = AccountKeypair::generate();
    let mallory = AccountKeypair::generate();
    let node = X25519StaticKey::generate();

    // Mallory signs herself but the node expects Alice.
    let envelope = seal(&mallory, &params(node.public_key(), b"m")).expect("seals");
    let policy = OpenPolicy::fresh_within(MINUTE).from_sender(alice.account_id());
    assert_eq!(
        open(&envelope, &node, &policy),
        Err(EnvelopeError::UnexpectedSender {
            expected: alice.account_id(),
            actual: mallory.account_id()
        })
    );

    // Mallory claims Alice's account on her own signature.
    let mut plaintext = raw_open(&envelope, &node);
    plaintext[1..33].copy_from_slice(alice.account_id().as_bytes());
    assert_eq!(
        open(&raw_seal(&plaintext, node.public_key()), &node, &policy),
        Err(EnvelopeError::BadSignature(alice.account_id()))
    );
}

#[test]
fn replayed_to_another_recipient() {
    let user = AccountKeypair::generate();
    let relayer = X25519StaticKey::generate();
    let victim = X25519StaticKey::generate();
    let envelope = seal(&user, &params(relayer.public_key(), b"m")).expect("seals");
    // The relayer decrypts the genuine request and re-seals the signed bytes to another node.
    let signed = raw_open(&envelope, &relayer);
    assert_eq!(
        open(
            &raw_seal(&signed, victim.public_key()),
            &victim,
            &OpenPolicy::fresh_within(MINUTE)
        ),
        Err(EnvelopeError::RecipientMismatch {
            signed_for: relayer.public_key()
        })
    );
}

#[test]
fn expired_and_future_timestamps() {
    let user = AccountKeypair::generate();
    let node = X25519StaticKey::generate();
    let mut p = params(node.public_key(), b"m");
    p.timestamp_ms = now_ms() - 2 * MINUTE;
    let old = seal(&user, &p).expect("seals");
    assert!(matches!(
        open(&old, &node, &OpenPolicy::fresh_within(MINUTE)),
        Err(EnvelopeError::Expired { max_age_ms: MINUTE, age_ms }) if age_ms >= 2 * MINUTE
    ));
    // Within a longer window the same envelope is fine.
    open(&old, &node, &OpenPolicy::fresh_within(5 * MINUTE)).expect("fresh enough");

    p.timestamp_ms = now_ms() + 10 * MINUTE;
    let future = seal(&user, &p).expect("seals");
    assert!(matches!(
        open(&future, &node, &OpenPolicy::fresh_within(MINUTE)),
        Err(EnvelopeError::FromTheFuture { ahead_ms }) if ahead_ms > 9 * MINUTE
    ));
}

#[test]
fn malformed_inputs_are_errors() {
    let user = AccountKeypair::generate();
    let node = X25519StaticKey::generate();
    let envelope = seal(&user, &params(node.public_key(), b"m")).expect("seals");

    let mut v2 = envelope.clone();
    v2.version = 2;
    assert_eq!(
        open(&v2, &node, &OpenPolicy::fresh_within(MINUTE)),
        Err(EnvelopeError::UnsupportedVersion(2))
    );
    assert!(Envelope::from_bytes(&[]).is_err());
    assert!(Envelope::from_bytes(&[1; 40]).is_err());
    assert_eq!(
        Envelope::from_bytes(&[7; 100]),
        Err(EnvelopeError::UnsupportedVersion(7))
    );

    // Decryptable garbage: every truncation of a genuine plaintext is refused, never a panic.
    let plaintext = raw_open(&envelope, &node);
    for len in 0..plaintext.len() {
        let res = open(
            &raw_seal(&plaintext[..len], node.public_key()),
            &node,
            &OpenPolicy::fresh_within(MINUTE),
        );
        assert!(
            matches!(
                res,
                Err(EnvelopeError::Malformed(_)) | Err(EnvelopeError::BadSignature(_))
            ),
            "truncated to {len}: {res:?}"
        );
    }

    // JSON with a bad hex field or an unknown field is refused.
    let json = serde_json::to_value(&envelope).expect("json");
    let mut bad = json.clone();
    bad["enc"] = "0xzz".into();
    assert!(serde_json::from_value::<Envelope>(bad).is_err());
    let mut bad = json;
    bad["extra"] = 1.into();
    assert!(serde_json::from_value::<Envelope>(bad).is_err());
}

#[test]
fn payload_limit() {
    let user = AccountKeypair::generate();
    let node = X25519StaticKey::generate();
    let big = vec![0u8; MAX_PAYLOAD + 1];
    assert_eq!(
        seal(&user, &params(node.public_key(), &big)),
        Err(EnvelopeError::PayloadTooLarge(MAX_PAYLOAD + 1))
    );
    let max = vec![7u8; MAX_PAYLOAD];
    let envelope =
        seal(&user, &params(node.public_key(), &max)).expect("seals the largest payload");
    assert_eq!(
        open(&envelope, &node, &OpenPolicy::fresh_within(MINUTE))
            .expect("opens")
            .payload
            .len(),
        MAX_PAYLOAD
    );
}
