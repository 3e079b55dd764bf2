//! FROST key generation and signing for Ed25519 and BIP-340 among in-memory parties: the
//! signatures verify with independent libraries (ed25519-dalek, k256's BIP-340 verifier), and a
//! party that corrupts its secret share or signature share is named by every honest party.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sigil_crypto::{AccountKeypair, NodeSeed, SchnorrChild, derive_schnorr_child};
use sigil_mpc::frost::{self, FrostShare, Scheme};
use sigil_mpc::{
    Channel, ChannelError, ChannelSender, FaultKind, MemoryChannel, MemorySender, MpcError,
};
use sigil_primitives::AccountId;

const ROUND_TIMEOUT: Duration = Duration::from_secs(10);
/// The signing session id the tests sign in.
const SESSION: [u8; 32] = [0x5e; 32];

/// The account key of one of the parties [`accounts`] makes.
fn keypair(account: AccountId) -> AccountKeypair {
    (0..32)
        .map(|i| NodeSeed::dev(&format!("frost-{i}")).account_keypair())
        .find(|k| k.account_id() == account)
        .expect("a test party")
}

fn accounts(n: usize) -> Vec<AccountId> {
    let mut ids: Vec<AccountId> = (0..n)
        .map(|i| {
            NodeSeed::dev(&format!("frost-{i}"))
                .account_keypair()
                .account_id()
        })
        .collect();
    ids.sort();
    ids
}

/// A party's channel that corrupts the `nth` message (1-based) it sends to each peer by
/// flipping the lowest bit of the byte at `offset` (from the end when negative).
struct Corrupting {
    inner: MemoryChannel,
    sender: CorruptingSender,
}

#[derive(Clone)]
struct CorruptingSender {
    inner: MemorySender,
    nth: usize,
    offset: isize,
    /// Only messages to this peer, if set.
    to: Option<AccountId>,
    sent: Arc<Mutex<BTreeMap<AccountId, usize>>>,
}

impl ChannelSender for CorruptingSender {
    async fn send(&self, to: AccountId, mut payload: Vec<u8>) -> Result<(), ChannelError> {
        let count = {
            let mut sent = self.sent.lock().unwrap();
            let count = sent.entry(to).or_default();
            *count += 1;
            *count
        };
        if count == self.nth && self.to.is_none_or(|peer| peer == to) {
            let at = if self.offset < 0 {
                payload.len() - self.offset.unsigned_abs()
            } else {
                self.offset.unsigned_abs()
            };
            payload[at] ^= 1;
        }
        self.inner.send(to, payload).await
    }
}

impl Channel for Corrupting {
    type Sender = CorruptingSender;

    fn sender(&self) -> CorruptingSender {
        self.sender.clone()
    }

    async fn recv(&mut self) -> Option<(AccountId, Vec<u8>)> {
        self.inner.recv().await
    }
}

/// Where a scalar's low bit sits in a postcard(Wire) message carrying it: Ed25519 scalars are
/// little-endian (first payload byte, after the variant and length bytes), secp256k1's
/// big-endian (last byte).
fn low_bit(scheme: Scheme) -> isize {
    match scheme {
        Scheme::Ed25519 => -32,
        Scheme::Bip340 => -1,
    }
}

/// A party that corrupts the `nth` message to each peer (or to `to` only) at `offset`.
#[derive(Clone, Copy)]
struct Corrupt {
    who: AccountId,
    nth: usize,
    offset: isize,
    to: Option<AccountId>,
}

impl Corrupt {
    fn new(who: AccountId, nth: usize, offset: isize) -> Option<Self> {
        Some(Self {
            who,
            nth,
            offset,
            to: None,
        })
    }
}

type Corruption = Option<Corrupt>;

/// How a signing member misbehaves: bytes changed in transit, or a wrong share it signs
/// itself ([`frost::CorruptShares`]).
#[derive(Clone, Copy)]
enum Cheat {
    Honest,
    Bytes(Corrupt),
    BadShare(AccountId),
}

impl Cheat {
    fn bytes(self) -> Corruption {
        match self {
            Self::Bytes(corrupt) => Some(corrupt),
            _ => None,
        }
    }

    fn lies(self, me: AccountId) -> bool {
        matches!(self, Self::BadShare(liar) if liar == me)
    }
}

/// Runs `run` for every party of an in-memory network among `parties`, each on its own task,
/// the `corrupt` party's channel corrupting.
async fn run_all<T, Fut>(
    parties: &[AccountId],
    corrupt: Corruption,
    run: impl Fn(AccountId, Corrupting) -> Fut,
) -> BTreeMap<AccountId, T>
where
    T: Send + 'static,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    let runs = MemoryChannel::network(parties)
        .into_iter()
        .map(|(me, channel)| {
            let corrupt = corrupt.filter(|c| c.who == me);
            let task = tokio::spawn(run(me, corrupting(channel, corrupt)));
            async move { (me, task.await.expect("joins")) }
        });
    futures::future::join_all(runs).await.into_iter().collect()
}

fn corrupting(inner: MemoryChannel, corrupt: Corruption) -> Corrupting {
    let sender = CorruptingSender {
        inner: inner.sender(),
        nth: corrupt.map_or(0, |c| c.nth),
        offset: corrupt.map_or(0, |c| c.offset),
        to: corrupt.and_then(|c| c.to),
        sent: Arc::default(),
    };
    Corrupting { inner, sender }
}

/// The chain id key generations run for.
const CHAIN: &str = "sigil-test";

/// Runs key generation among `parties`.
async fn keygen(
    scheme: Scheme,
    parties: &[AccountId],
    threshold: u16,
    cheat: Cheat,
) -> BTreeMap<AccountId, Result<FrostShare, MpcError>> {
    run_all(parties, cheat.bytes(), |me, mut channel| {
        let parties = parties.to_vec();
        async move {
            let signer = keypair(me);
            let target = frost::KeygenTarget {
                chain_id: CHAIN,
                parties: &parties,
                threshold,
            };
            if cheat.lies(me) {
                let mut channel = frost::CorruptShares {
                    channel: &mut channel,
                    signer: signer.clone(),
                };
                frost::keygen(scheme, &signer, target, &mut channel, ROUND_TIMEOUT).await
            } else {
                frost::keygen(scheme, &signer, target, &mut channel, ROUND_TIMEOUT).await
            }
        }
    })
    .await
}

/// Signs `message` with the shares of `committee`, as the user key at `path`.
async fn sign(
    shares: &BTreeMap<AccountId, FrostShare>,
    committee: &BTreeSet<AccountId>,
    message: &[u8],
    path: &str,
    cheat: Cheat,
) -> BTreeMap<AccountId, Result<Vec<u8>, MpcError>> {
    let members: Vec<AccountId> = committee.iter().copied().collect();
    let tweak = user_key(shares, path).tweak;
    run_all(&members, cheat.bytes(), |me, mut channel| {
        let (share, committee, message) =
            (shares[&me].clone(), committee.clone(), message.to_vec());
        async move {
            let target = frost::SignTarget {
                session: &SESSION,
                message: &message,
                tweak: &tweak,
            };
            let signer = keypair(me);
            if cheat.lies(me) {
                let mut channel = frost::CorruptShares {
                    channel: &mut channel,
                    signer: signer.clone(),
                };
                frost::sign(
                    &share,
                    &signer,
                    &committee,
                    target,
                    &mut channel,
                    ROUND_TIMEOUT,
                )
                .await
            } else {
                frost::sign(
                    &share,
                    &signer,
                    &committee,
                    target,
                    &mut channel,
                    ROUND_TIMEOUT,
                )
                .await
            }
        }
    })
    .await
}

/// The user key at `path` below the shares' network key.
fn user_key(shares: &BTreeMap<AccountId, FrostShare>, path: &str) -> SchnorrChild {
    let network = shares
        .values()
        .next()
        .expect("a share")
        .network_key()
        .expect("a network key");
    derive_schnorr_child(&network, &path.parse().expect("a path")).expect("derives")
}

/// Every party's share, with one verifying key among them.
async fn shares(
    scheme: Scheme,
    parties: &[AccountId],
    threshold: u16,
) -> BTreeMap<AccountId, FrostShare> {
    let shares: BTreeMap<AccountId, FrostShare> = keygen(scheme, parties, threshold, Cheat::Honest)
        .await
        .into_iter()
        .map(|(party, share)| (party, share.expect("key generation")))
        .collect();
    let keys: BTreeSet<&[u8]> = shares.values().map(FrostShare::verifying_key).collect();
    assert_eq!(keys.len(), 1, "one verifying key");
    shares
}

/// The one signature every member returned.
fn agreed(results: BTreeMap<AccountId, Result<Vec<u8>, MpcError>>) -> Vec<u8> {
    let signatures: BTreeSet<Vec<u8>> = results.into_values().map(|r| r.expect("signed")).collect();
    assert_eq!(signatures.len(), 1, "every member has the same signature");
    signatures.into_iter().next().expect("one")
}

/// Every honest party's failure names `culprit`, and only it, as one of `kinds`.
fn named_by_the_others<T: std::fmt::Debug>(
    results: &BTreeMap<AccountId, Result<T, MpcError>>,
    culprit: AccountId,
    kinds: &[FaultKind],
) {
    for (party, result) in results {
        if *party == culprit {
            continue;
        }
        let Err(MpcError::Failed(failure)) = result else {
            panic!("{party}: expected a named failure, got {result:?}")
        };
        assert_eq!(failure.accused(), vec![culprit], "{failure}");
        let kind = failure.fault_of(&culprit).expect("named").kind;
        assert!(kinds.contains(&kind), "{failure}");
    }
}

#[tokio::test]
async fn ed25519_derived_keys_sign_and_ed25519_dalek_verifies() {
    let parties = accounts(4);
    let shares = shares(Scheme::Ed25519, &parties, 3).await;
    let message = b"a Solana transaction message, signed whole".to_vec();
    for (committee, path) in [(&parties[..3], "m"), (&parties[1..], "m/7/1/2")] {
        let committee: BTreeSet<AccountId> = committee.iter().copied().collect();
        let signature = agreed(sign(&shares, &committee, &message, path, Cheat::Honest).await);
        let key: [u8; 32] = user_key(&shares, path)
            .key
            .key_bytes()
            .try_into()
            .expect("32 bytes");
        let key = ed25519_dalek::VerifyingKey::from_bytes(&key).expect("a key");
        let signature = ed25519_dalek::Signature::from_slice(&signature).expect("64 bytes");
        key.verify_strict(&message, &signature).expect("verifies");
    }
    assert_ne!(user_key(&shares, "m/1").key, user_key(&shares, "m/2").key);
}

#[tokio::test]
async fn bip340_derived_keys_sign_as_taproot_output_keys_and_k256_verifies() {
    let parties = accounts(3);
    let shares = shares(Scheme::Bip340, &parties, 2).await;
    let message = [7u8; 32];
    let committee: BTreeSet<AccountId> = parties[1..].iter().copied().collect();
    for path in ["m", "m/44/0/3"] {
        let signature = agreed(sign(&shares, &committee, &message, path, Cheat::Honest).await);
        let key = user_key(&shares, path).key;
        let x_only = k256::schnorr::VerifyingKey::from_bytes(key.key_bytes()).expect("x-only");
        let signature = k256::schnorr::Signature::try_from(signature.as_slice()).expect("64 bytes");
        x_only.verify_raw(&message, &signature).expect("verifies");
    }
}

#[tokio::test]
async fn too_small_a_committee_fails_to_aggregate() {
    let parties = accounts(3);
    let shares = shares(Scheme::Ed25519, &parties, 3).await;
    let committee: BTreeSet<AccountId> = parties[..2].iter().copied().collect();
    for (_, result) in sign(&shares, &committee, b"m", "m", Cheat::Honest).await {
        assert!(result.is_err(), "two of a 3-of-3 key cannot sign");
    }
}

/// A member that signs a wrong share is named `failed_proof` by every other member, with
/// evidence the ledger's verifier accepts, on both paths and for both schemes.
#[tokio::test]
async fn a_wrong_signed_share_is_named_with_evidence_that_verifies() {
    for scheme in Scheme::ALL {
        let parties = accounts(3);
        let shares = shares(scheme, &parties, 3).await;
        let committee = set(&parties);
        let culprit = parties[1];
        let cheat = Cheat::BadShare(culprit);
        let interactive = sign(&shares, &committee, &[9; 32], "m/5", cheat).await;
        let prepared = sign_prepared(&shares, &committee, &[9; 32], "m/5", cheat, None).await;
        for results in [interactive, prepared] {
            named_by_the_others(&results, culprit, &[FaultKind::FailedProof]);
            for evidence in evidence_against(&results, culprit) {
                sigil_mpc::verify_evidence(&SESSION, &culprit, FaultKind::FailedProof, &evidence)
                    .expect("the evidence holds");
                evidence_is_refused_when_altered(culprit, &evidence);
            }
        }
    }
}

/// The evidence each other member holds against `culprit`.
fn evidence_against<T>(
    results: &BTreeMap<AccountId, Result<T, MpcError>>,
    culprit: AccountId,
) -> Vec<Vec<u8>> {
    let evidence: Vec<Vec<u8>> = results
        .iter()
        .filter(|(party, _)| **party != culprit)
        .filter_map(|(_, result)| match result {
            Err(MpcError::Failed(failure)) => failure.fault_of(&culprit)?.evidence.clone(),
            _ => None,
        })
        .collect();
    assert_eq!(
        evidence.len(),
        results.len() - 1,
        "every other member holds evidence"
    );
    evidence
}

/// Evidence with any field changed, against another party, of another session or fault kind,
/// is refused; so is an honest share's statement, which verifies.
fn evidence_is_refused_when_altered(culprit: AccountId, evidence: &[u8]) {
    let refused = |session: &[u8; 32], offender: &AccountId, kind, bytes: &[u8]| {
        sigil_mpc::verify_evidence(session, offender, kind, bytes).is_err()
    };
    let record: frost::ShareEvidence = postcard::from_bytes(evidence).expect("decodes");
    let innocent = accounts(3)
        .into_iter()
        .find(|p| *p != culprit)
        .expect("another");
    assert!(refused(
        &SESSION,
        &innocent,
        FaultKind::FailedProof,
        evidence
    ));
    assert!(refused(
        &[1; 32],
        &culprit,
        FaultKind::FailedProof,
        evidence
    ));
    assert!(refused(
        &SESSION,
        &culprit,
        FaultKind::InvalidMessage,
        evidence
    ));
    let mut altered = Vec::new();
    let mut push = |change: &dyn Fn(&mut frost::ShareEvidence)| {
        let mut copy = record.clone();
        change(&mut copy);
        altered.push(postcard::to_allocvec(&copy).expect("encodes"));
    };
    push(&|r| r.statement.tweak[0] ^= 1);
    push(&|r| r.statement.share[5] ^= 1);
    push(&|r| r.statement.signing_package[0] ^= 1);
    push(&|r| *r.public_package.last_mut().expect("bytes") ^= 1);
    push(&|r| *r.signing_package.last_mut().expect("bytes") ^= 1);
    push(&|r| r.signature = flipped(&r.signature));
    for bytes in altered {
        assert!(refused(&SESSION, &culprit, FaultKind::FailedProof, &bytes));
    }
    // The culprit's share fixed and signed again: a share that verifies proves nothing.
    let mut honest = record.clone();
    honest.statement.share = honest_share(&record);
    honest.signature = keypair(culprit).sign(&statement_bytes(&honest.statement));
    let bytes = postcard::to_allocvec(&honest).expect("encodes");
    let verdict = sigil_mpc::verify_evidence(&SESSION, &culprit, FaultKind::FailedProof, &bytes);
    assert!(
        verdict
            .as_ref()
            .is_err_and(|e| e.to_string().contains("the share verifies")),
        "{verdict:?}"
    );
    assert!(refused(
        &SESSION,
        &culprit,
        FaultKind::FailedProof,
        &evidence[1..]
    ));
}

/// What a share statement's signature covers (PROTOCOL.md §8.3).
fn statement_bytes(statement: &frost::ShareStatement) -> Vec<u8> {
    [
        b"sigil/v1/frost-share".as_slice(),
        &postcard::to_allocvec(statement).expect("encodes"),
    ]
    .concat()
}

/// The share [`frost::CorruptShares`] changed, changed back (it flips one bit).
fn honest_share(record: &frost::ShareEvidence) -> Vec<u8> {
    let mut share = record.statement.share.clone();
    let at = share.len() - 16;
    share[at] ^= 1;
    share
}

/// `signature` with one bit flipped.
fn flipped(signature: &sigil_primitives::Ed25519Signature) -> sigil_primitives::Ed25519Signature {
    let mut bytes = *signature.as_bytes();
    bytes[10] ^= 1;
    sigil_primitives::Ed25519Signature::from_bytes(bytes).expect("64 bytes")
}

/// A share changed in transit no longer carries its sender's signature: named
/// `invalid_message`, without evidence.
#[tokio::test]
async fn a_share_altered_in_transit_is_an_unsigned_message() {
    let parties = accounts(3);
    let shares = shares(Scheme::Ed25519, &parties, 3).await;
    let committee = set(&parties);
    let culprit = parties[0];
    // The only message of one-round signing is the signed share; flip its last byte.
    let cheat = Cheat::Bytes(Corrupt::new(culprit, 1, -1).expect("a corruption"));
    let results = sign_prepared(&shares, &committee, b"m", "m", cheat, None).await;
    named_by_the_others(&results, culprit, &[FaultKind::InvalidMessage]);
    for (_, result) in results.iter().filter(|(p, _)| **p != culprit) {
        let Err(MpcError::Failed(failure)) = result else {
            unreachable!()
        };
        assert!(
            failure
                .fault_of(&culprit)
                .expect("named")
                .evidence
                .is_none()
        );
    }
}

/// A party that sends a wrong secret share, signed, is named `failed_proof` by its recipients
/// with evidence the ledger's verifier accepts; altered, the evidence is refused.
#[tokio::test]
async fn a_wrong_signed_secret_share_is_named_with_evidence_that_verifies() {
    for scheme in Scheme::ALL {
        let parties = accounts(3);
        let culprit = parties[2];
        let results = keygen(scheme, &parties, 2, Cheat::BadShare(culprit)).await;
        named_by_the_others(&results, culprit, &[FaultKind::FailedProof]);
        let session = sigil_crypto::frost_keygen_session(CHAIN, scheme.key_scheme(), 2, &parties);
        for evidence in evidence_against(&results, culprit) {
            sigil_mpc::verify_keygen_evidence(&session, &culprit, &evidence)
                .expect("the evidence holds");
            keygen_evidence_is_refused_when_altered(&session, culprit, &evidence);
        }
    }
}

/// Key generation evidence against another party, of another key generation, or with any
/// field changed is refused; so is the culprit's round-1 package alone, which verifies.
fn keygen_evidence_is_refused_when_altered(
    session: &[u8; 32],
    culprit: AccountId,
    evidence: &[u8],
) {
    let refused = |session: &[u8; 32], offender: &AccountId, bytes: &[u8]| {
        sigil_mpc::verify_keygen_evidence(session, offender, bytes).is_err()
    };
    let record: frost::DkgEvidence = postcard::from_bytes(evidence).expect("decodes");
    let recipient = record
        .share
        .as_ref()
        .and_then(|s| s.statement.recipient)
        .expect("a share");
    assert!(refused(session, &recipient, evidence));
    assert!(refused(&[1; 32], &culprit, evidence));
    assert!(
        sigil_mpc::verify_evidence(session, &culprit, FaultKind::FailedProof, evidence).is_err(),
        "not a signing session's evidence"
    );
    let mut altered = Vec::new();
    let mut push = |change: &dyn Fn(&mut frost::DkgEvidence)| {
        let mut copy = record.clone();
        change(&mut copy);
        altered.push(postcard::to_allocvec(&copy).expect("encodes"));
    };
    push(&|r| r.chain_id.push('x'));
    push(&|r| r.threshold = 3);
    push(&|r| r.parties.reverse());
    push(&|r| r.share = None);
    push(&|r| {
        let share = r.share.as_mut().expect("a share");
        *share.statement.package.last_mut().expect("bytes") ^= 1;
    });
    push(&|r| {
        let share = r.share.as_mut().expect("a share");
        share.statement.recipient = Some(culprit);
    });
    push(&|r| *r.commitment.statement.package.last_mut().expect("bytes") ^= 1);
    push(&|r| r.commitment.signature = flipped(&r.commitment.signature));
    push(&|r| std::mem::swap(&mut r.commitment, r.share.as_mut().expect("a share")));
    for (i, bytes) in altered.iter().enumerate() {
        assert!(refused(session, &culprit, bytes), "alteration {i}");
    }
    let mut extended = evidence.to_vec();
    extended.push(0);
    assert!(refused(session, &culprit, &extended));
}

#[tokio::test]
async fn a_secret_share_changed_in_transit_names_its_sender_without_evidence() {
    for scheme in Scheme::ALL {
        let parties = accounts(3);
        let culprit = parties[2];
        // The third message to each peer is its secret share (after the round-1 package and
        // the echo); the flipped bit breaks the sender's signature.
        let results = keygen(
            scheme,
            &parties,
            2,
            Cheat::Bytes(Corrupt::new(culprit, 3, low_bit(scheme)).expect("a cheat")),
        )
        .await;
        named_by_the_others(&results, culprit, &[FaultKind::InvalidMessage]);
    }
}

#[tokio::test]
async fn different_round_one_packages_stop_key_generation() {
    let parties = accounts(3);
    // A flipped bit in one peer's round-1 package: its signature fails for that peer or the
    // echo shows the packages differ; nobody ends with a key.
    let results = keygen(
        Scheme::Ed25519,
        &parties,
        2,
        Cheat::Bytes(Corrupt::new(parties[0], 1, -1).expect("a cheat")),
    )
    .await;
    for (party, result) in &results {
        assert!(result.is_err(), "{party}: {result:?}");
    }
}

/// A fresh nonce of every member: the commitments named for each, and each one's secret.
type Nonces = (BTreeMap<AccountId, Vec<u8>>, BTreeMap<AccountId, Vec<u8>>);

fn fresh_nonces(shares: &BTreeMap<AccountId, FrostShare>, members: &[AccountId]) -> Nonces {
    let mut named = BTreeMap::new();
    let mut secrets = BTreeMap::new();
    for member in members {
        let nonce = frost::prepare_nonces(&shares[member], 1)
            .expect("nonces")
            .remove(0);
        named.insert(*member, nonce.commitments.clone());
        secrets.insert(*member, nonce.secret.expose().to_vec());
    }
    (named, secrets)
}

/// Signs `message` at `path` in one round with fresh prepared nonces; `tamper` may change the
/// commitments one member is told about.
async fn sign_prepared(
    shares: &BTreeMap<AccountId, FrostShare>,
    committee: &BTreeSet<AccountId>,
    message: &[u8],
    path: &str,
    cheat: Cheat,
    tamper: Option<AccountId>,
) -> BTreeMap<AccountId, Result<Vec<u8>, MpcError>> {
    let members: Vec<AccountId> = committee.iter().copied().collect();
    let tweak = user_key(shares, path).tweak;
    let (named, secrets) = fresh_nonces(shares, &members);
    run_all(&members, cheat.bytes(), |me, mut channel| {
        let (share, committee, message) =
            (shares[&me].clone(), committee.clone(), message.to_vec());
        let own_nonce = secrets[&me].clone();
        let mut commitments = named.clone();
        if tamper == Some(me) {
            // This member is told another member's commitments are a fresh pair's.
            let other = *members.iter().find(|m| **m != me).expect("another member");
            let fresh = frost::prepare_nonces(&shares[&other], 1).expect("nonces");
            commitments.insert(other, fresh[0].commitments.clone());
        }
        async move {
            let target = frost::SignTarget {
                session: &SESSION,
                message: &message,
                tweak: &tweak,
            };
            let prepared = frost::PreparedSigning {
                commitments: &commitments,
                own_nonce: &own_nonce,
            };
            let signer = keypair(me);
            let (committee, timeout) = (&committee, ROUND_TIMEOUT);
            if cheat.lies(me) {
                let mut channel = frost::CorruptShares {
                    channel: &mut channel,
                    signer: signer.clone(),
                };
                let channel = &mut channel;
                frost::sign_prepared(
                    &share, &signer, committee, target, prepared, channel, timeout,
                )
                .await
            } else {
                let channel = &mut channel;
                frost::sign_prepared(
                    &share, &signer, committee, target, prepared, channel, timeout,
                )
                .await
            }
        }
    })
    .await
}

#[tokio::test]
async fn prepared_nonces_sign_in_one_round_for_both_schemes() {
    for scheme in [Scheme::Ed25519, Scheme::Bip340] {
        let parties = accounts(4);
        let shares = shares(scheme, &parties, 3).await;
        let committee: BTreeSet<AccountId> = parties[1..].iter().copied().collect();
        let message = [3u8; 32];
        let signature =
            agreed(sign_prepared(&shares, &committee, &message, "m/9", Cheat::Honest, None).await);
        let key = user_key(&shares, "m/9").key;
        match scheme {
            Scheme::Ed25519 => {
                let vk =
                    ed25519_dalek::VerifyingKey::from_bytes(key.key_bytes().try_into().unwrap())
                        .expect("key");
                let sig = ed25519_dalek::Signature::from_slice(&signature).expect("64 bytes");
                vk.verify_strict(&message, &sig).expect("verifies");
            }
            Scheme::Bip340 => {
                let vk = k256::schnorr::VerifyingKey::from_bytes(key.key_bytes()).expect("key");
                let sig = k256::schnorr::Signature::try_from(signature.as_slice()).expect("64");
                vk.verify_raw(&message, &sig).expect("verifies");
            }
        }
    }
}

#[tokio::test]
async fn different_commitments_to_different_members_blame_nobody() {
    let parties = accounts(3);
    let shares = shares(Scheme::Bip340, &parties, 2).await;
    let committee: BTreeSet<AccountId> = parties[..2].iter().copied().collect();
    let results = sign_prepared(
        &shares,
        &committee,
        &[1; 32],
        "m",
        Cheat::Honest,
        Some(parties[0]),
    )
    .await;
    for (party, result) in results {
        match result {
            Err(MpcError::Failed(failure)) => panic!("{party} blamed someone: {failure}"),
            Err(_) => {}
            Ok(_) => panic!("{party} signed over packages that differ"),
        }
    }
}

/// Rotates `shares` (of the parties in `helpers`) to `new_parties`; returns each party's
/// result (`None` for a helper that leaves).
async fn rotate(
    shares: &BTreeMap<AccountId, FrostShare>,
    helpers: &BTreeSet<AccountId>,
    new_parties: &BTreeSet<AccountId>,
    corrupt: Corruption,
) -> BTreeMap<AccountId, Result<Option<FrostShare>, MpcError>> {
    let any = shares.values().next().expect("a share");
    let (scheme, threshold, network_key) = (
        any.scheme(),
        any.threshold(),
        any.network_key().expect("a key"),
    );
    let everyone: Vec<AccountId> = helpers.union(new_parties).copied().collect();
    run_all(&everyone, corrupt, |me, mut channel| {
        let share = shares.get(&me).cloned();
        let (helpers, new_parties) = (helpers.clone(), new_parties.clone());
        async move {
            let plan = frost::Rotation {
                scheme,
                network_key,
                helpers: &helpers,
                new_parties: &new_parties,
                threshold,
            };
            frost::rotate(share.as_ref(), me, &plan, &mut channel, ROUND_TIMEOUT).await
        }
    })
    .await
}

fn set(parties: &[AccountId]) -> BTreeSet<AccountId> {
    parties.iter().copied().collect()
}

/// One party leaves and another joins, then two leave and two join with the leavers helping:
/// the user key stays the same and the new parties sign for it (verified by the independent
/// libraries).
#[tokio::test]
async fn rotated_keys_keep_every_user_key_and_sign_with_new_parties() {
    let parties = accounts(6);
    for scheme in Scheme::ALL {
        let old = shares(scheme, &parties[..3], 2).await;
        let before = user_key(&old, "m/5/1");
        // parties[2] leaves, parties[3] joins; the two that stay help.
        let staying = set(&parties[..2]);
        let next = set(&[parties[0], parties[1], parties[3]]);
        let results = rotate(&old, &staying, &next, None).await;
        let rotated: BTreeMap<AccountId, FrostShare> = results
            .into_iter()
            .map(|(p, r)| (p, r.expect("rotated").expect("a new share")))
            .collect();
        assert_eq!(rotated.keys().copied().collect::<BTreeSet<_>>(), next);
        assert!(
            rotated
                .values()
                .all(|s| s.parties() == next.iter().copied().collect::<Vec<_>>())
        );
        assert_eq!(user_key(&rotated, "m/5/1").key, before.key, "same user key");
        // Two leave, two join: one helper alone is under the threshold, so all old ones help.
        let last = set(&[parties[0], parties[4], parties[5]]);
        let results = rotate(&rotated, &next, &last, None).await;
        assert!(results[&parties[1]].as_ref().expect("helped").is_none());
        let last_shares: BTreeMap<AccountId, FrostShare> = results
            .into_iter()
            .filter_map(|(p, r)| r.expect("rotated").map(|s| (p, s)))
            .collect();
        assert_eq!(last_shares.keys().copied().collect::<BTreeSet<_>>(), last);
        let message = [9u8; 32];
        let joiners = set(&parties[4..6]);
        let signature =
            agreed(sign(&last_shares, &joiners, &message, "m/5/1", Cheat::Honest).await);
        verify(scheme, &before, &message, &signature);
    }
}

/// A helper that corrupts its sigma stops the rotation at the joiner's check, which names
/// nobody (the joiner cannot tell which helper lied).
#[tokio::test]
async fn a_corrupted_repair_is_caught_by_the_joiner() {
    let parties = accounts(4);
    let old = shares(Scheme::Ed25519, &parties[..3], 2).await;
    let staying = set(&parties[..2]);
    let next = set(&[parties[0], parties[1], parties[3]]);
    // parties[0]'s first message to the joiner is its sigma: flip the scalar's low bit (the
    // first byte after postcard's variant and length bytes; Ed25519 scalars are little-endian).
    // Its delta to the other helper stays intact, or that helper would wait for a valid one.
    let corrupt = Corrupt::new(parties[0], 1, 2).map(|c| Corrupt {
        to: Some(parties[3]),
        ..c
    });
    let started = std::time::Instant::now();
    let results = rotate(&old, &staying, &next, corrupt).await;
    let Err(MpcError::Failed(failure)) = &results[&parties[3]] else {
        panic!("the joiner's check fails: {:?}", results[&parties[3]])
    };
    assert!(failure.accused().is_empty(), "{failure}");
    // The joiner's notice stops the others at once, and they name nobody either.
    assert!(
        started.elapsed() < ROUND_TIMEOUT,
        "nobody waited for the round timeout"
    );
    for party in &parties[..2] {
        let Err(MpcError::Failed(failure)) = &results[party] else {
            panic!("{party} stops: {:?}", results[party])
        };
        assert!(failure.accused().is_empty(), "{party}: {failure}");
    }
}

fn verify(scheme: Scheme, key: &SchnorrChild, message: &[u8], signature: &[u8]) {
    match scheme {
        Scheme::Ed25519 => {
            let key: [u8; 32] = key.key.key_bytes().try_into().expect("32 bytes");
            let key = ed25519_dalek::VerifyingKey::from_bytes(&key).expect("a key");
            let signature = ed25519_dalek::Signature::from_slice(signature).expect("64 bytes");
            key.verify_strict(message, &signature).expect("verifies");
        }
        Scheme::Bip340 => {
            let x_only =
                k256::schnorr::VerifyingKey::from_bytes(key.key.key_bytes()).expect("x-only");
            let signature = k256::schnorr::Signature::try_from(signature).expect("64 bytes");
            x_only.verify_raw(message, &signature).expect("verifies");
        }
    }
}

/// A member that refuses the nonce named for it tells the others, who stop at once and blame
/// nobody (a relayer naming stale nonces cannot get an honest signer accused of silence).
#[tokio::test]
async fn a_refusing_member_stops_the_session_without_blame() {
    let parties = accounts(3);
    let shares = shares(Scheme::Ed25519, &parties, 3).await;
    let committee = set(&parties);
    let refuser = parties[0];
    let (named, secrets) = fresh_nonces(&shares, &parties);
    let tweak = user_key(&shares, "m").tweak;
    let started = std::time::Instant::now();
    let results = run_all(&parties, None, |me, mut channel| {
        let (share, committee, named) = (shares[&me].clone(), committee.clone(), named.clone());
        let own_nonce = secrets[&me].clone();
        async move {
            if me == refuser {
                frost::refuse(me, &committee, &mut channel).await?;
                return Err(MpcError::Local("refused".into()));
            }
            let target = frost::SignTarget {
                session: &SESSION,
                message: b"m",
                tweak: &tweak,
            };
            let prepared = frost::PreparedSigning {
                commitments: &named,
                own_nonce: &own_nonce,
            };
            frost::sign_prepared(
                &share,
                &keypair(me),
                &committee,
                target,
                prepared,
                &mut channel,
                ROUND_TIMEOUT,
            )
            .await
        }
    })
    .await;
    assert!(
        started.elapsed() < ROUND_TIMEOUT,
        "nobody waited for the round timeout"
    );
    for (party, result) in results.into_iter().filter(|(p, _)| *p != refuser) {
        let Err(MpcError::Failed(failure)) = result else {
            panic!("{party}: expected a failure, got {result:?}")
        };
        assert!(failure.accused().is_empty(), "{party}: {failure}");
    }
}
