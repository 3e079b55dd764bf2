//! FROST (RFC 9591) threshold Schnorr signatures for Ed25519 and BIP-340 keys, on ZF's
//! `frost-ed25519` and `frost-secp256k1-tr`: distributed key generation and two-round signing
//! among a committee over a [`Channel`]. No frost type leaves this module.
//!
//! Every message is `postcard(Wire)`. Key generation runs frost's three DKG parts with every
//! package signed by its sender ([`SignedDkg`]); its round-1 packages must reach everyone alike
//! (the DKG assumes a broadcast channel), so each party then sends every other the SHA-256 of
//! all round-1 packages it holds, and a difference stops the session. Signing has no coordinator: every member sends its nonce commitments to all, all
//! build the same signing package, every member sends its signature share to all, and each
//! aggregates with frost's cheater detection, which names a member whose share does not verify.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use frost_core::{self as frost, Ciphersuite, Element, Identifier, Scalar};
use rand_core::OsRng;
use serde::{Deserialize, Serialize};
use sha2_v010::{Digest as _, Sha256};
use sigil_crypto::{AccountKeypair, SecretBytes};
use sigil_primitives::{AccountId, KeyScheme, VerifyingKey};
use zeroize::{Zeroize as _, Zeroizing};

mod dkg;
mod prepared;
mod rotate;
mod shares;

pub use dkg::{DkgEvidence, DkgStatement, SignedDkg, verify_dkg_evidence};
pub use prepared::{PreparedNonce, PreparedSigning, prepare_nonces, sign_prepared};
pub use rotate::{Rotation, rotate};
pub use shares::{ShareEvidence, ShareStatement, verify_share_evidence};

use crate::channel::{Channel, ChannelSender as _};
use crate::error::{FailureReason, Fault, FaultKind, MpcError, ProtocolKind, SessionFailure};

/// A signature scheme FROST signs for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scheme {
    /// Ed25519 (RFC 8032 verification), as Solana and NEAR use.
    Ed25519,
    /// BIP-340 Schnorr over secp256k1 with x-only keys, as Bitcoin Taproot uses.
    Bip340,
}

impl Scheme {
    /// Both schemes.
    pub const ALL: [Scheme; 2] = [Scheme::Ed25519, Scheme::Bip340];

    /// The FROST scheme of a key scheme; `None` for ECDSA.
    pub fn of(scheme: KeyScheme) -> Option<Self> {
        match scheme {
            KeyScheme::Ed25519 => Some(Self::Ed25519),
            KeyScheme::Bip340 => Some(Self::Bip340),
            KeyScheme::EcdsaSecp256k1 => None,
        }
    }

    /// The key scheme this FROST scheme signs for.
    pub fn key_scheme(self) -> KeyScheme {
        match self {
            Self::Ed25519 => KeyScheme::Ed25519,
            Self::Bip340 => KeyScheme::Bip340,
        }
    }
}

/// The FROST ciphersuite of a scheme.
type Ed25519 = frost_ed25519::Ed25519Sha512;
/// The FROST ciphersuite of BIP-340 (with BIP-341's even-Y rules built in).
type Bip340 = frost_secp256k1_tr::Secp256K1Sha256TR;

/// One party's share of a FROST key: frost's key package and the group's public key package,
/// serialized, with the scheme and the parties that hold shares.
#[derive(Clone, Serialize, Deserialize)]
pub struct FrostShare {
    scheme: Scheme,
    owner: AccountId,
    threshold: u16,
    parties: Vec<AccountId>,
    key_package: Vec<u8>,
    public_package: Vec<u8>,
    verifying_key: Vec<u8>,
}

impl std::fmt::Debug for FrostShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrostShare")
            .field("scheme", &self.scheme)
            .field("owner", &self.owner)
            .field("threshold", &self.threshold)
            .field("parties", &self.parties)
            .field("verifying_key", &hex_of(&self.verifying_key))
            .finish_non_exhaustive()
    }
}

impl Drop for FrostShare {
    fn drop(&mut self) {
        self.key_package.zeroize();
    }
}

impl FrostShare {
    /// The scheme the key signs for.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The parties holding shares, ascending.
    pub fn parties(&self) -> &[AccountId] {
        &self.parties
    }

    /// How many parties sign.
    pub fn threshold(&self) -> u16 {
        self.threshold
    }

    /// The encrypted keystore's form of the share (secret).
    pub fn to_bytes(&self) -> SecretBytes {
        crate::keys::encode(self.owner, self)
    }

    /// Reads a share written by [`FrostShare::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MpcError> {
        const WHAT: &str = "frost share";
        let (owner, share): (AccountId, FrostShare) = crate::keys::decode(WHAT, bytes)?;
        if owner != share.owner || !share.parties.contains(&owner) {
            return Err(crate::keys::decode_error(WHAT, "the owner is not a holder"));
        }
        if share.threshold == 0 || usize::from(share.threshold) > share.parties.len() {
            return Err(crate::keys::decode_error(
                WHAT,
                "threshold exceeds the holders",
            ));
        }
        Ok(share)
    }

    /// The group's verifying key as frost serializes it: 32 bytes for Ed25519, 33 (compressed
    /// SEC1) for BIP-340, whose x-only key is the last 32.
    pub fn verifying_key(&self) -> &[u8] {
        &self.verifying_key
    }

    /// The network key's tagged identifier (`docs/PROTOCOL.md` §1 and §2, "User keys"): `0xed ‖ key` for
    /// Ed25519, `0x54 ‖ x-only key` for BIP-340.
    pub fn network_key(&self) -> Result<VerifyingKey, MpcError> {
        tagged_network_key(self.scheme, &self.verifying_key)
    }
}

/// The tagged identifier of a group key as frost serializes it (see
/// [`FrostShare::verifying_key`]).
fn tagged_network_key(scheme: Scheme, frost_key: &[u8]) -> Result<VerifyingKey, MpcError> {
    let short = || MpcError::Local("a FROST key of under 32 bytes".into());
    let tail = frost_key.len().checked_sub(32).ok_or_else(short)?;
    let key: [u8; 32] = frost_key[tail..].try_into().map_err(|_| short())?;
    VerifyingKey::tagged(scheme.key_scheme(), &key).map_err(|e| MpcError::Local(e.to_string()))
}

/// What a FROST session sends: one variant per round.
#[derive(Debug, Serialize, Deserialize)]
enum Wire {
    /// DKG round 1: the sender's commitment and proof of knowledge, signed (to all).
    Package1(SignedDkg),
    /// DKG round 1 echo: SHA-256 of every round-1 package the sender holds.
    Echo([u8; 32]),
    /// DKG round 2: the sender's secret share for the recipient, signed (point to point).
    Package2(SignedDkg),
    /// Signing round 1: the sender's nonce commitments (to all).
    Commitments(Vec<u8>),
    /// Signing round 2 (the only round with commitments made ahead): the sender's signature
    /// share in its signed statement (to all).
    SignedShare(shares::SignedShare),
    /// Rotation, repair: a helper's delta for another helper, towards `joiner`'s share
    /// (point to point).
    RepairDelta {
        /// The new party being enrolled.
        joiner: AccountId,
        /// frost's serialized `Delta`.
        delta: Vec<u8>,
    },
    /// Rotation, repair: a helper's sigma and the group's public key package (to the joiner).
    RepairSigma {
        /// frost's serialized `Sigma`.
        sigma: Vec<u8>,
        /// frost's serialized `PublicKeyPackage`.
        public_package: Vec<u8>,
    },
    /// Rotation, refresh round 1: the sender's commitment to a zero sharing (to the new set).
    Refresh1(Vec<u8>),
    /// Rotation, refresh round 2: the sender's zero share for the recipient (point to point).
    Refresh2(Vec<u8>),
    /// The sender stops (it refused the nonce named for it, or its repaired share failed the
    /// check of a rotation): stop without blame.
    Refused,
}

impl Wire {
    /// The round a message belongs to.
    fn round(&self) -> &'static str {
        match self {
            Self::Package1(_) => "dkg round 1",
            Self::Echo(_) => "dkg round 1 (echo)",
            Self::Package2(_) => "dkg round 2",
            Self::Commitments(_) => "signing round 1",
            Self::SignedShare(_) => "signature shares",
            Self::RepairDelta { .. } => "repair (delta)",
            Self::RepairSigma { .. } => "repair (sigma)",
            Self::Refresh1(_) => "refresh round 1",
            Self::Refresh2(_) => "refresh round 2",
            Self::Refused => "refusal",
        }
    }

    /// The payload of a message with bytes.
    fn bytes(&self) -> &[u8] {
        match self {
            Self::Package1(signed) | Self::Package2(signed) => &signed.statement.package,
            Self::Commitments(b) | Self::Refresh1(b) | Self::Refresh2(b) => b,
            Self::RepairDelta { delta, .. } => delta,
            Self::RepairSigma { sigma, .. } => sigma,
            Self::SignedShare(signed) => &signed.statement.share,
            Self::Echo(digest) => digest.as_slice(),
            Self::Refused => &[],
        }
    }
}

/// One key generation: the chain it makes a network key for, the parties (this one among
/// them) and the threshold.
#[derive(Debug, Clone, Copy)]
pub struct KeygenTarget<'a> {
    /// The ledger's chain id, part of the session id ([`sigil_crypto::frost_keygen_session`]).
    pub chain_id: &'a str,
    /// The parties.
    pub parties: &'a [AccountId],
    /// Signers needed.
    pub threshold: u16,
}

/// Generates a FROST key among `target`'s parties: each party ends with its share of the same
/// verifying key. Every package travels signed by `signer`, this party's account key. A party
/// whose commitment, proof of knowledge or secret share does not verify is named
/// (`failed_proof`) with evidence ([`DkgEvidence`]); one that sends nothing within
/// `round_timeout` is named `unresponsive`.
pub async fn keygen<Ch: Channel>(
    scheme: Scheme,
    signer: &AccountKeypair,
    target: KeygenTarget<'_>,
    channel: &mut Ch,
    round_timeout: Duration,
) -> Result<FrostShare, MpcError> {
    let me = signer.account_id();
    let mut session = Session::new(
        me,
        target.parties,
        channel,
        round_timeout,
        ProtocolKind::FrostKeyGen,
    )?;
    let run = dkg::Dkg {
        chain_id: target.chain_id,
        scheme,
        threshold: target.threshold,
        signer,
    };
    match scheme {
        Scheme::Ed25519 => dkg::run::<Ed25519, _>(&mut session, &run).await,
        Scheme::Bip340 => dkg::run::<Bip340, _>(&mut session, &run).await,
    }
    .map(|parts| FrostShare {
        scheme,
        owner: me,
        threshold: target.threshold,
        parties: session.parties.clone(),
        key_package: parts.key_package.to_vec(),
        public_package: parts.public_package,
        verifying_key: parts.verifying_key,
    })
}

/// What one signing session signs: the bytes, and the user key's additive tweak below the
/// network key (`sigil_crypto::SchnorrChild::tweak`; all zero for the network key itself).
#[derive(Debug, Clone, Copy)]
pub struct SignTarget<'a> {
    /// The signing session id, which every member's signed share statement names.
    pub session: &'a [u8; 32],
    /// The message as the scheme signs it.
    pub message: &'a [u8],
    /// The derivation tweak in the scheme's scalar encoding.
    pub tweak: &'a [u8; 32],
}

/// Signs `target` with `share` among `committee` (at least the key's threshold of its
/// parties, `me` among them): every member returns the same signature, 64 bytes (Ed25519's
/// R ‖ s; BIP-340's x(R) ‖ s). For BIP-340 the key signs as the Taproot output key of the
/// derived internal key (BIP-341, no script path). A member whose signature share does not
/// verify is named (`failed_proof`) with evidence ([`ShareEvidence`]); every share travels
/// signed by `signer`, this member's account key.
pub async fn sign<Ch: Channel>(
    share: &FrostShare,
    signer: &AccountKeypair,
    committee: &BTreeSet<AccountId>,
    target: SignTarget<'_>,
    channel: &mut Ch,
    round_timeout: Duration,
) -> Result<Vec<u8>, MpcError> {
    if !committee.iter().all(|m| share.parties.contains(m)) {
        return Err(MpcError::Local(
            "the committee holds members without a share of this key".into(),
        ));
    }
    let members: Vec<AccountId> = committee.iter().copied().collect();
    let mut session = Session::new(
        signer.account_id(),
        &members,
        channel,
        round_timeout,
        ProtocolKind::FrostSigning,
    )?;
    match share.scheme {
        Scheme::Ed25519 => sign_with::<Ed25519, _>(&mut session, signer, share, target).await,
        Scheme::Bip340 => sign_with::<Bip340, _>(&mut session, signer, share, target).await,
    }
}

/// Tells the other members of `committee` that `me` does not take part in this signing
/// session (it refused the request before signing), so they stop without waiting for it and
/// blame nobody.
pub async fn refuse<Ch: Channel>(
    me: AccountId,
    committee: &BTreeSet<AccountId>,
    channel: &mut Ch,
) -> Result<(), MpcError> {
    let bytes = postcard::to_allocvec(&Wire::Refused).map_err(local)?;
    let sender = channel.sender();
    for to in committee.iter().filter(|m| **m != me) {
        sender
            .send(*to, bytes.clone())
            .await
            .map_err(|e| MpcError::Local(format!("cannot send to {to}: {e}")))?;
    }
    Ok(())
}

/// A key generation's result, serialized.
struct KeyParts {
    key_package: Zeroizing<Vec<u8>>,
    public_package: Vec<u8>,
    verifying_key: Vec<u8>,
}

/// A party's key package and the group's public key package.
type Packages<C> = (frost::keys::KeyPackage<C>, frost::keys::PublicKeyPackage<C>);

/// How a ciphersuite turns the network key's packages into the packages a user key signs with.
trait Derive: Ciphersuite {
    fn derive(packages: Packages<Self>, tweak: &[u8; 32]) -> Result<Packages<Self>, MpcError>;

    /// The public key package alone, derived as [`Derive::derive`] derives it.
    fn derive_public(
        public: frost::keys::PublicKeyPackage<Self>,
        tweak: &[u8; 32],
    ) -> Result<frost::keys::PublicKeyPackage<Self>, MpcError>;

    /// `share`'s packages, derived along `tweak`.
    fn derived(share: &FrostShare, tweak: &[u8; 32]) -> Result<Packages<Self>, MpcError> {
        let key =
            frost::keys::KeyPackage::<Self>::deserialize(&share.key_package).map_err(local)?;
        let public = frost::keys::PublicKeyPackage::<Self>::deserialize(&share.public_package)
            .map_err(local)?;
        Self::derive((key, public), tweak)
    }
}

impl Derive for Ed25519 {
    fn derive((key, public): Packages<Self>, tweak: &[u8; 32]) -> Result<Packages<Self>, MpcError> {
        add_tweak(&key, &public, tweak)
    }

    fn derive_public(
        public: frost::keys::PublicKeyPackage<Self>,
        tweak: &[u8; 32],
    ) -> Result<frost::keys::PublicKeyPackage<Self>, MpcError> {
        Ok(shift_public(&public, tweak_point::<Self>(tweak)?.1))
    }
}

impl Derive for Bip340 {
    fn derive((key, public): Packages<Self>, tweak: &[u8; 32]) -> Result<Packages<Self>, MpcError> {
        use frost_secp256k1_tr::keys::{EvenY as _, Tweak as _};
        // The network key counts as its x-only (even-y) point; the child is the internal key
        // and signs as its BIP-341 output key.
        let (key, public) = add_tweak(&key.into_even_y(None), &public.into_even_y(None), tweak)?;
        Ok((key.tweak::<&[u8]>(None), public.tweak::<&[u8]>(None)))
    }

    fn derive_public(
        public: frost::keys::PublicKeyPackage<Self>,
        tweak: &[u8; 32],
    ) -> Result<frost::keys::PublicKeyPackage<Self>, MpcError> {
        use frost_secp256k1_tr::keys::{EvenY as _, Tweak as _};
        let shifted = shift_public(&public.into_even_y(None), tweak_point::<Self>(tweak)?.1);
        Ok(shifted.tweak::<&[u8]>(None))
    }
}

/// Adds `tweak·G` to the group key and every verifying share, and `tweak` to this party's
/// signing share: the shares of `key + tweak`, since Lagrange coefficients sum to one.
fn add_tweak<C: Ciphersuite>(
    key: &frost::keys::KeyPackage<C>,
    public: &frost::keys::PublicKeyPackage<C>,
    tweak: &[u8; 32],
) -> Result<Packages<C>, MpcError> {
    use frost::keys::{SigningShare, VerifyingShare};
    let (t, shift) = tweak_point::<C>(tweak)?;
    let derived = frost::keys::KeyPackage::new(
        *key.identifier(),
        SigningShare::new(key.signing_share().to_scalar() + t),
        VerifyingShare::new(key.verifying_share().to_element() + shift),
        frost::VerifyingKey::new(key.verifying_key().to_element() + shift),
        *key.min_signers(),
    );
    Ok((derived, shift_public(public, shift)))
}

/// The scalar of `tweak` and its point `tweak·G`.
fn tweak_point<C: Ciphersuite>(tweak: &[u8; 32]) -> Result<(Scalar<C>, Element<C>), MpcError> {
    use frost::{Field as _, Group as _};
    type FieldOf<C> = <<C as Ciphersuite>::Group as frost::Group>::Field;
    let encoded = <FieldOf<C> as frost::Field>::Serialization::try_from(&tweak[..])
        .map_err(|_| MpcError::Local("the derivation tweak has the wrong length".into()))?;
    let t = FieldOf::<C>::deserialize(&encoded)
        .map_err(|_| MpcError::Local("the derivation tweak is not a scalar".into()))?;
    Ok((t, C::Group::generator() * t))
}

/// `public` with `shift` added to the group key and every verifying share.
fn shift_public<C: Ciphersuite>(
    public: &frost::keys::PublicKeyPackage<C>,
    shift: Element<C>,
) -> frost::keys::PublicKeyPackage<C> {
    use frost::keys::VerifyingShare;
    let shares = public
        .verifying_shares()
        .iter()
        .map(|(id, share)| (*id, VerifyingShare::new(share.to_element() + shift)))
        .collect();
    frost::keys::PublicKeyPackage::new(
        shares,
        frost::VerifyingKey::new(public.verifying_key().to_element() + shift),
        public.min_signers(),
    )
}

async fn sign_with<C: Derive, Ch: Channel>(
    session: &mut Session<'_, Ch>,
    signer: &AccountKeypair,
    share: &FrostShare,
    target: SignTarget<'_>,
) -> Result<Vec<u8>, MpcError> {
    let ids = session.identifiers::<C>()?;
    let (key_package, public_package) = C::derived(share, target.tweak)?;
    let message = target.message;
    let (nonces, commitments) = frost::round1::commit(key_package.signing_share(), &mut OsRng);
    let own = commitments.serialize().map_err(local)?;
    session.broadcast(|| Wire::Commitments(own.clone())).await?;
    let received = session
        .collect("signing round 1", |w| matches!(w, Wire::Commitments(_)))
        .await?;
    let mut all = session.decode(&received, |b| {
        frost::round1::SigningCommitments::<C>::deserialize(b)
    })?;
    all.insert(session.me, commitments);
    let signing_package = frost::SigningPackage::new(by_identifier(&ids, all), message);
    let own_share = frost::round2::sign(&signing_package, &nonces, &key_package).map_err(local)?;
    let own = shares::OwnShare::new(
        share.scheme,
        &target,
        (&share.public_package, &public_package),
        &signing_package,
        own_share,
    )?;
    shares::exchange(session, signer, own).await
}

/// A FROST session's parties, channel and messages that arrived ahead of their round.
struct Session<'c, Ch: Channel> {
    me: AccountId,
    parties: Vec<AccountId>,
    /// The parties of the current phase (all of them but in a rotation's phases).
    active: Vec<AccountId>,
    channel: &'c mut Ch,
    round_timeout: Duration,
    protocol: ProtocolKind,
    early: Vec<(AccountId, Wire)>,
}

impl<'c, Ch: Channel> Session<'c, Ch> {
    fn new(
        me: AccountId,
        parties: &[AccountId],
        channel: &'c mut Ch,
        round_timeout: Duration,
        protocol: ProtocolKind,
    ) -> Result<Self, MpcError> {
        let set: BTreeSet<AccountId> = parties.iter().copied().collect();
        if set.len() != parties.len() || !set.contains(&me) || set.len() < 2 {
            return Err(MpcError::Local(
                "a FROST session needs two or more distinct parties, this one among them".into(),
            ));
        }
        let parties: Vec<AccountId> = set.into_iter().collect();
        Ok(Self {
            me,
            active: parties.clone(),
            parties,
            channel,
            round_timeout,
            protocol,
            early: Vec::new(),
        })
    }

    /// Every party's frost identifier, derived from its account id.
    fn identifiers<C: Ciphersuite>(&self) -> Result<BTreeMap<AccountId, Identifier<C>>, MpcError> {
        self.parties
            .iter()
            .map(|p| Ok((*p, Identifier::derive(p.as_bytes()).map_err(local)?)))
            .collect()
    }

    fn others(&self) -> impl Iterator<Item = AccountId> + '_ {
        self.active.iter().copied().filter(|p| *p != self.me)
    }

    /// Makes `parties` (ascending) the ones the next rounds send to and wait for.
    fn scope(&mut self, parties: &BTreeSet<AccountId>) {
        self.active = parties.iter().copied().collect();
    }

    async fn send(&self, to: AccountId, wire: Wire) -> Result<(), MpcError> {
        let bytes = postcard::to_allocvec(&wire).map_err(local)?;
        self.channel
            .sender()
            .send(to, bytes)
            .await
            .map_err(|e| MpcError::Local(format!("cannot send to {to}: {e}")))
    }

    async fn broadcast(&self, wire: impl Fn() -> Wire) -> Result<(), MpcError> {
        for to in self.others().collect::<Vec<_>>() {
            self.send(to, wire()).await?;
        }
        Ok(())
    }

    /// One message of the round `is` picks from every other party, keeping messages of other
    /// rounds for later; names the parties that sent nothing in time, or garbage.
    async fn collect(
        &mut self,
        round: &'static str,
        is: impl Fn(&Wire) -> bool,
    ) -> Result<BTreeMap<AccountId, Wire>, MpcError> {
        let expected: BTreeSet<AccountId> = self.others().collect();
        let mut got = BTreeMap::new();
        let refused = |from: &AccountId, wire: &Wire| {
            matches!(wire, Wire::Refused) && expected.contains(from)
        };
        if self.early.iter().any(|(from, wire)| refused(from, wire)) {
            return Err(self.failure(round, FailureReason::Aborted, vec![]));
        }
        for (from, wire) in std::mem::take(&mut self.early) {
            if is(&wire) && expected.contains(&from) && !got.contains_key(&from) {
                got.insert(from, wire);
            } else {
                self.early.push((from, wire));
            }
        }
        let deadline = tokio::time::Instant::now() + self.round_timeout;
        while got.len() < expected.len() {
            let next = tokio::time::timeout_at(deadline, self.channel.recv()).await;
            let (from, bytes) = match next {
                Ok(Some(message)) => message,
                Ok(None) => return Err(self.failure(round, FailureReason::ChannelClosed, vec![])),
                Err(_) => {
                    let silent = expected.iter().filter(|p| !got.contains_key(*p));
                    let faults = silent
                        .map(|p| {
                            fault(
                                *p,
                                FaultKind::Unresponsive,
                                format!("sent nothing in {round}"),
                            )
                        })
                        .collect();
                    return Err(self.failure(round, FailureReason::TimedOut, faults));
                }
            };
            if !self.parties.contains(&from) {
                continue;
            }
            let Ok(wire) = postcard::from_bytes::<Wire>(&bytes) else {
                let why = format!("an undecodable message in {round}");
                let faults = vec![fault(from, FaultKind::InvalidMessage, why)];
                return Err(self.failure(round, FailureReason::Misbehaviour, faults));
            };
            if refused(&from, &wire) {
                return Err(self.failure(round, FailureReason::Aborted, vec![]));
            }
            // A party outside this phase's scope may already be in the next phase.
            if is(&wire) && expected.contains(&from) && !got.contains_key(&from) {
                got.insert(from, wire);
            } else {
                self.early.push((from, wire));
            }
        }
        Ok(got)
    }

    /// Sends every other party the digest of all round-1 packages and checks theirs: the same
    /// packages reached everyone.
    async fn check_echo(
        &mut self,
        own: &[u8],
        received: &BTreeMap<AccountId, Wire>,
    ) -> Result<(), MpcError> {
        let mut hasher = Sha256::new();
        for party in &self.active {
            let bytes = if *party == self.me {
                own
            } else {
                received[party].bytes()
            };
            hasher.update(party.as_bytes());
            hasher.update((bytes.len() as u64).to_be_bytes());
            hasher.update(bytes);
        }
        let digest: [u8; 32] = hasher.finalize().into();
        self.broadcast(|| Wire::Echo(digest)).await?;
        let echoes = self
            .collect("dkg round 1 (echo)", |w| matches!(w, Wire::Echo(_)))
            .await?;
        if echoes.values().any(|echo| echo.bytes() != digest) {
            // Digests are not signed: a difference shows that someone sent different packages,
            // not who.
            return Err(self.failure("dkg round 1 (echo)", FailureReason::Misbehaviour, vec![]));
        }
        Ok(())
    }

    /// Decodes each party's message; one that does not decode names its sender.
    fn decode<C: Ciphersuite, T>(
        &self,
        received: &BTreeMap<AccountId, Wire>,
        decode: impl Fn(&[u8]) -> Result<T, frost::Error<C>>,
    ) -> Result<BTreeMap<AccountId, T>, MpcError> {
        let mut out = BTreeMap::new();
        let mut faults = Vec::new();
        for (from, wire) in received {
            match decode(wire.bytes()) {
                Ok(value) => {
                    out.insert(*from, value);
                }
                Err(e) => faults.push(fault(
                    *from,
                    FaultKind::InvalidMessage,
                    format!("{}: {e}", wire.round()),
                )),
            }
        }
        if faults.is_empty() {
            Ok(out)
        } else {
            Err(self.failure("decoding", FailureReason::Misbehaviour, faults))
        }
    }

    /// frost's error, naming its culprits (a failed proof of knowledge, a secret share or a
    /// signature share that does not verify).
    fn blamed<C: Ciphersuite>(
        &self,
        ids: &BTreeMap<AccountId, Identifier<C>>,
        error: &frost::Error<C>,
    ) -> MpcError {
        let culprits = error.culprits();
        if culprits.is_empty() {
            return MpcError::Local(error.to_string());
        }
        let faults = culprits
            .iter()
            .filter_map(|id| account_of(ids, id).ok())
            .map(|party| fault(party, FaultKind::FailedProof, error.to_string()))
            .collect();
        self.failure("verification", FailureReason::Misbehaviour, faults)
    }

    fn failure(&self, round: &str, reason: FailureReason, faults: Vec<Fault>) -> MpcError {
        MpcError::Failed(Box::new(SessionFailure {
            protocol: self.protocol,
            reason,
            round: round.to_string(),
            faults,
        }))
    }
}

/// A fault this party found itself, without evidence.
fn fault(party: AccountId, kind: FaultKind, description: String) -> Fault {
    Fault {
        party,
        kind,
        description,
        evidence: None,
        reported_by: None,
    }
}

/// `values` keyed by frost identifier instead of account.
fn by_identifier<C: Ciphersuite, T>(
    ids: &BTreeMap<AccountId, Identifier<C>>,
    values: BTreeMap<AccountId, T>,
) -> BTreeMap<Identifier<C>, T> {
    values
        .into_iter()
        .map(|(party, v)| (ids[&party], v))
        .collect()
}

fn account_of<C: Ciphersuite>(
    ids: &BTreeMap<AccountId, Identifier<C>>,
    id: &Identifier<C>,
) -> Result<AccountId, MpcError> {
    ids.iter()
        .find(|(_, i)| *i == id)
        .map(|(party, _)| *party)
        .ok_or_else(|| MpcError::Local("frost named an identifier of no party".into()))
}

fn local(error: impl std::fmt::Display) -> MpcError {
    MpcError::Local(error.to_string())
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Fault injection (tests): a channel that sends every FROST signature share and key generation
/// secret share with a bit of its scalar flipped and the statement signed again with `signer` (the sender's own key, as a
/// malicious member would), so that the share does not verify and its sender gets named with
/// evidence.
pub struct CorruptShares<'c, Ch: Channel> {
    /// The channel wrapped.
    pub channel: &'c mut Ch,
    /// The sender's account key.
    pub signer: AccountKeypair,
}

/// The sending half of [`CorruptShares`].
#[derive(Clone)]
pub struct CorruptSharesSender<S> {
    inner: S,
    signer: AccountKeypair,
}

impl<Ch: Channel> Channel for CorruptShares<'_, Ch> {
    type Sender = CorruptSharesSender<Ch::Sender>;

    fn sender(&self) -> Self::Sender {
        CorruptSharesSender {
            inner: self.channel.sender(),
            signer: self.signer.clone(),
        }
    }

    async fn recv(&mut self) -> Option<(AccountId, Vec<u8>)> {
        self.channel.recv().await
    }
}

impl<S: crate::channel::ChannelSender> crate::channel::ChannelSender for CorruptSharesSender<S> {
    async fn send(&self, to: AccountId, payload: Vec<u8>) -> Result<(), crate::ChannelError> {
        self.inner
            .send(to, corrupt_share(payload, &self.signer))
            .await
    }
}

/// `payload` with the share it carries changed, if it carries one (a signature share, or a
/// key generation's secret share: a bit in the middle of the scalar flips) and signed again.
fn corrupt_share(payload: Vec<u8>, signer: &AccountKeypair) -> Vec<u8> {
    let flip = |bytes: &mut Vec<u8>| {
        if let Some(at) = bytes.len().checked_sub(16) {
            bytes[at] ^= 1;
        }
    };
    let corrupted = match postcard::from_bytes::<Wire>(&payload) {
        Ok(Wire::SignedShare(signed)) => {
            let mut statement = signed.statement;
            flip(&mut statement.share);
            shares::SignedShare::new(statement, signer).map(Wire::SignedShare)
        }
        Ok(Wire::Package2(signed)) => {
            let mut statement = signed.statement;
            flip(&mut statement.package);
            SignedDkg::new(statement, signer).map(Wire::Package2)
        }
        _ => return payload,
    };
    corrupted
        .and_then(|wire| postcard::to_allocvec(&wire).map_err(local))
        .unwrap_or(payload)
}
