//! The request envelope: sign-then-encrypt from an account to a validator's x25519 key.
//!
//! The sender signs, with its ed25519 account key, a domain-separated encoding that binds the
//! payload, the sender, the recipient's x25519 key, a timestamp, a request id and the optional
//! reply key; the signed plaintext is then sealed with HPKE (RFC 9180, base mode,
//! DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305) to the recipient. The signature
//! stops forgery for another payload and replay to another node; the timestamp bounds replay in
//! time (callers keep a request-id cache for the window). Byte layouts are in `docs/PROTOCOL.md`.

use hpke::{Deserializable as _, OpModeR, OpModeS, Serializable as _};
use serde::{Deserialize, Serialize};
use sigil_primitives::{AccountId, Ed25519Signature, RequestId, X25519PublicKey};

use crate::keys::{AccountKeypair, X25519StaticKey, verify_signature};

/// The HPKE suite of the envelope.
pub mod suite {
    /// DHKEM(X25519, HKDF-SHA256), KEM id 0x0020.
    pub type Kem = hpke::kem::X25519HkdfSha256;
    /// HKDF-SHA256, KDF id 0x0001.
    pub type Kdf = hpke::kdf::HkdfSha256;
    /// ChaCha20-Poly1305, AEAD id 0x0003.
    pub type Aead = hpke::aead::ChaCha20Poly1305;
}

/// The envelope format version this code writes and reads.
pub const ENVELOPE_VERSION: u8 = 1;
/// HPKE `info` prefix; the recipient's key follows it.
pub const HPKE_INFO_PREFIX: &[u8] = b"sigil/v1/envelope";
/// Prefix of the bytes the sender's ed25519 signature covers.
pub const SIGNATURE_DOMAIN: &[u8] = b"sigil/v1/envelope-signature";
/// Largest payload an envelope carries: a 1 MiB message plus request fields.
pub const MAX_PAYLOAD: usize = (1 << 20) + 64 * 1024;

/// Fixed bytes of the signed plaintext around the payload.
const HEADER_LEN: usize = 1 + 32 + 32 + 8 + 32 + 1;

/// Why an envelope could not be sealed or opened. Each failure has its own variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// The envelope's version byte is not one this code reads.
    #[error("unsupported envelope version {0}")]
    UnsupportedVersion(u8),
    /// The envelope names another recipient key than ours.
    #[error("envelope is addressed to {0}, not to this node")]
    NotForThisRecipient(X25519PublicKey),
    /// HPKE decryption failed: the ciphertext or encapsulated key was altered.
    #[error("envelope does not decrypt: it was altered or sealed to another key")]
    DecryptionFailed,
    /// The decrypted plaintext is not a well-formed signed payload.
    #[error("malformed envelope: {0}")]
    Malformed(&'static str),
    /// The sender's signature does not verify.
    #[error("envelope signature does not verify for sender {0}")]
    BadSignature(AccountId),
    /// The signed recipient differs from us: the payload was re-sealed to another node.
    #[error("envelope was signed for recipient {signed_for}, not for this node: replayed")]
    RecipientMismatch {
        /// The recipient the sender signed for.
        signed_for: X25519PublicKey,
    },
    /// The envelope comes from another account than the one expected.
    #[error("envelope comes from {actual}, expected {expected}")]
    UnexpectedSender {
        /// The account expected.
        expected: AccountId,
        /// The account that signed.
        actual: AccountId,
    },
    /// The timestamp is older than the allowed age.
    #[error("envelope expired: it is {age_ms} ms old, the limit is {max_age_ms} ms")]
    Expired {
        /// How old the envelope is.
        age_ms: u64,
        /// The allowed age.
        max_age_ms: u64,
    },
    /// The timestamp is further in the future than clock skew explains.
    #[error("envelope timestamp is {ahead_ms} ms in the future")]
    FromTheFuture {
        /// How far ahead the timestamp is.
        ahead_ms: u64,
    },
    /// The payload is larger than [`MAX_PAYLOAD`].
    #[error("envelope payload of {0} bytes exceeds the {MAX_PAYLOAD}-byte limit")]
    PayloadTooLarge(usize),
    /// A reply was requested but the request named no reply key.
    #[error("the request named no reply key")]
    NoReplyKey,
    /// HPKE refused to seal (e.g. a small-order recipient key).
    #[error("cannot seal to this recipient key")]
    SealFailed,
}

/// A sealed envelope as it travels: JSON with hex fields over HTTP, or [`Envelope::to_bytes`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    /// Format version, [`ENVELOPE_VERSION`].
    pub version: u8,
    /// The recipient's x25519 key, in clear so a node can refuse mail for another key at once.
    pub recipient: X25519PublicKey,
    /// HPKE encapsulated key (the sender's ephemeral x25519 public key).
    #[serde(with = "sigil_primitives::bytes::hex_vec")]
    pub enc: Vec<u8>,
    /// HPKE ciphertext of the signed payload (with the 16-byte tag).
    #[serde(with = "sigil_primitives::bytes::hex_vec")]
    pub ciphertext: Vec<u8>,
}

/// What the sender puts in an envelope besides the payload.
#[derive(Debug, Clone)]
pub struct SealParams<'a> {
    /// The recipient's x25519 public key (from the ledger).
    pub recipient: X25519PublicKey,
    /// Unique id of this request.
    pub request_id: RequestId,
    /// Sender's clock, milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// Where a reply that carries secrets should be sealed to, if any.
    pub reply_to: Option<X25519PublicKey>,
    /// The application payload.
    pub payload: &'a [u8],
}

/// How the recipient judges an envelope's sender and age.
#[derive(Debug, Clone, Copy)]
pub struct OpenPolicy {
    /// Receiver's clock, milliseconds since the Unix epoch.
    pub now_ms: u64,
    /// Oldest acceptable timestamp, as an age.
    pub max_age_ms: u64,
    /// Largest acceptable clock skew into the future.
    pub max_future_ms: u64,
    /// If set, only this account may be the sender.
    pub expected_sender: Option<AccountId>,
}

impl OpenPolicy {
    /// Accept any sender, with the given age limit and 30 s of future skew, judged now.
    pub fn fresh_within(max_age_ms: u64) -> Self {
        Self {
            now_ms: now_ms(),
            max_age_ms,
            max_future_ms: 30_000,
            expected_sender: None,
        }
    }

    /// Only accept envelopes from `sender`.
    pub fn from_sender(mut self, sender: AccountId) -> Self {
        self.expected_sender = Some(sender);
        self
    }
}

/// An opened, verified envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The account that signed it.
    pub sender: AccountId,
    /// The request id it carried.
    pub request_id: RequestId,
    /// The sender's timestamp.
    pub timestamp_ms: u64,
    /// Where to seal a reply that carries secrets.
    pub reply_to: Option<X25519PublicKey>,
    /// The application payload.
    pub payload: Vec<u8>,
    /// The sender's signature (kept as proof of what was asked).
    pub signature: Ed25519Signature,
    /// The recipient key the sender signed for.
    pub signed_for: X25519PublicKey,
    /// The whole signed plaintext (§3.1), signature included: what a relayer forwards so
    /// others can check the sender's signature themselves with [`verify_signed_plaintext`].
    pub signed_plaintext: Vec<u8>,
}

/// The current time in milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn hpke_info(recipient: &X25519PublicKey) -> Vec<u8> {
    [HPKE_INFO_PREFIX, recipient.as_bytes()].concat()
}

/// The signed plaintext without its signature: the fields in a fixed layout.
fn unsigned_plaintext(sender: &AccountId, params: &SealParams<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + 32 + 4 + params.payload.len() + 64);
    out.push(ENVELOPE_VERSION);
    out.extend_from_slice(sender.as_bytes());
    out.extend_from_slice(params.recipient.as_bytes());
    out.extend_from_slice(&params.timestamp_ms.to_be_bytes());
    out.extend_from_slice(params.request_id.as_bytes());
    match &params.reply_to {
        Some(key) => {
            out.push(1);
            out.extend_from_slice(key.as_bytes());
        }
        None => out.push(0),
    }
    let len = u32::try_from(params.payload.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(params.payload);
    out
}

fn signature_preimage(unsigned: &[u8]) -> Vec<u8> {
    [SIGNATURE_DOMAIN, unsigned].concat()
}

/// Signs `params` with `sender` and seals the result to `params.recipient`.
pub fn seal(sender: &AccountKeypair, params: &SealParams<'_>) -> Result<Envelope, EnvelopeError> {
    seal_signed(sender, params).map(|(envelope, _)| envelope)
}

/// As [`seal`], also returning the signed plaintext (§3.1) that was sealed, from which the
/// request digest is computed.
pub fn seal_signed(
    sender: &AccountKeypair,
    params: &SealParams<'_>,
) -> Result<(Envelope, Vec<u8>), EnvelopeError> {
    if params.payload.len() > MAX_PAYLOAD {
        return Err(EnvelopeError::PayloadTooLarge(params.payload.len()));
    }
    let mut plaintext = unsigned_plaintext(&sender.account_id(), params);
    let signature = sender.sign(&signature_preimage(&plaintext));
    plaintext.extend_from_slice(signature.as_bytes());

    let recipient_key =
        <suite::Kem as hpke::Kem>::PublicKey::from_bytes(params.recipient.as_bytes())
            .map_err(|_| EnvelopeError::SealFailed)?;
    let (enc, ciphertext) = hpke::single_shot_seal::<suite::Aead, suite::Kdf, suite::Kem>(
        &OpModeS::Base,
        &recipient_key,
        &hpke_info(&params.recipient),
        &plaintext,
        b"",
    )
    .map_err(|_| EnvelopeError::SealFailed)?;
    let envelope = Envelope {
        version: ENVELOPE_VERSION,
        recipient: params.recipient,
        enc: enc.to_bytes().to_vec(),
        ciphertext,
    };
    Ok((envelope, plaintext))
}

/// Decrypts and verifies an envelope addressed to `recipient`, judging it by `policy`.
pub fn open(
    envelope: &Envelope,
    recipient: &X25519StaticKey,
    policy: &OpenPolicy,
) -> Result<Opened, EnvelopeError> {
    if envelope.version != ENVELOPE_VERSION {
        return Err(EnvelopeError::UnsupportedVersion(envelope.version));
    }
    let own_key = recipient.public_key();
    if envelope.recipient != own_key {
        return Err(EnvelopeError::NotForThisRecipient(envelope.recipient));
    }
    if envelope.ciphertext.len() > MAX_PAYLOAD + HEADER_LEN + 32 + 4 + 64 + 16 {
        return Err(EnvelopeError::PayloadTooLarge(envelope.ciphertext.len()));
    }
    let secret =
        <suite::Kem as hpke::Kem>::PrivateKey::from_bytes(recipient.secret_bytes().as_ref())
            .map_err(|_| EnvelopeError::DecryptionFailed)?;
    let enc = <suite::Kem as hpke::Kem>::EncappedKey::from_bytes(&envelope.enc)
        .map_err(|_| EnvelopeError::DecryptionFailed)?;
    let plaintext = hpke::single_shot_open::<suite::Aead, suite::Kdf, suite::Kem>(
        &OpModeR::Base,
        &secret,
        &enc,
        &hpke_info(&own_key),
        &envelope.ciphertext,
        b"",
    )
    .map_err(|_| EnvelopeError::DecryptionFailed)?;

    let opened = verify_signed_plaintext(plaintext)?;
    if let Some(expected) = policy.expected_sender
        && expected != opened.sender
    {
        return Err(EnvelopeError::UnexpectedSender {
            expected,
            actual: opened.sender,
        });
    }
    if opened.signed_for != own_key {
        return Err(EnvelopeError::RecipientMismatch {
            signed_for: opened.signed_for,
        });
    }
    if opened.timestamp_ms > policy.now_ms.saturating_add(policy.max_future_ms) {
        return Err(EnvelopeError::FromTheFuture {
            ahead_ms: opened.timestamp_ms - policy.now_ms,
        });
    }
    let age_ms = policy.now_ms.saturating_sub(opened.timestamp_ms);
    if age_ms > policy.max_age_ms {
        return Err(EnvelopeError::Expired {
            age_ms,
            max_age_ms: policy.max_age_ms,
        });
    }
    Ok(opened)
}

/// Parses a signed plaintext (§3.1) and checks the sender's signature over it. Freshness and
/// the signed recipient are left to the caller.
pub fn verify_signed_plaintext(plaintext: Vec<u8>) -> Result<Opened, EnvelopeError> {
    let take = |range: std::ops::Range<usize>, what: &'static str| {
        plaintext.get(range).ok_or(EnvelopeError::Malformed(what))
    };
    if plaintext.first() != Some(&ENVELOPE_VERSION) {
        return Err(EnvelopeError::Malformed("inner version"));
    }
    let sender = AccountId::from_slice(take(1..33, "sender")?)
        .map_err(|_| EnvelopeError::Malformed("sender is not a valid account id"))?;
    let signed_for = X25519PublicKey::from_slice(take(33..65, "recipient key")?)
        .map_err(|_| EnvelopeError::Malformed("recipient key"))?;
    let timestamp_ms = u64::from_be_bytes(
        take(65..73, "timestamp")?
            .try_into()
            .map_err(|_| EnvelopeError::Malformed("timestamp"))?,
    );
    let request_id = RequestId::from_slice(take(73..105, "request id")?)
        .map_err(|_| EnvelopeError::Malformed("request id"))?;
    let (reply_to, mut pos) = match take(105..106, "reply flag")?[0] {
        0 => (None, 106),
        1 => {
            let key = X25519PublicKey::from_slice(take(106..138, "reply key")?)
                .map_err(|_| EnvelopeError::Malformed("reply key is not a valid x25519 key"))?;
            (Some(key), 138)
        }
        _ => return Err(EnvelopeError::Malformed("reply flag must be 0 or 1")),
    };
    let len_bytes: [u8; 4] = take(pos..pos + 4, "payload length")?
        .try_into()
        .map_err(|_| EnvelopeError::Malformed("length"))?;
    pos += 4;
    let len = usize::try_from(u32::from_be_bytes(len_bytes))
        .map_err(|_| EnvelopeError::Malformed("length"))?;
    if len > MAX_PAYLOAD {
        return Err(EnvelopeError::PayloadTooLarge(len));
    }
    let payload = take(pos..pos + len, "payload")?.to_vec();
    pos += len;
    if plaintext.len() != pos + 64 {
        return Err(EnvelopeError::Malformed(
            "length does not match the payload and signature",
        ));
    }
    let signature = Ed25519Signature::from_slice(&plaintext[pos..])
        .map_err(|_| EnvelopeError::Malformed("signature"))?;
    verify_signature(&sender, &signature_preimage(&plaintext[..pos]), &signature)
        .map_err(|_| EnvelopeError::BadSignature(sender))?;
    Ok(Opened {
        sender,
        request_id,
        timestamp_ms,
        reply_to,
        payload,
        signature,
        signed_for,
        signed_plaintext: plaintext,
    })
}

impl Opened {
    /// Seals `payload` back to the reply key this request named, signed by `responder`.
    pub fn seal_reply(
        &self,
        responder: &AccountKeypair,
        payload: &[u8],
    ) -> Result<Envelope, EnvelopeError> {
        let reply_to = self.reply_to.ok_or(EnvelopeError::NoReplyKey)?;
        seal(
            responder,
            &SealParams {
                recipient: reply_to,
                request_id: self.request_id,
                timestamp_ms: now_ms(),
                reply_to: None,
                payload,
            },
        )
    }
}

impl Envelope {
    /// The binary form: `version ‖ recipient(32) ‖ enc(32) ‖ ciphertext`.
    pub fn to_bytes(&self) -> Vec<u8> {
        [
            &[self.version][..],
            self.recipient.as_bytes(),
            &self.enc,
            &self.ciphertext,
        ]
        .concat()
    }

    /// Parses the binary form.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        let version = *bytes
            .first()
            .ok_or(EnvelopeError::Malformed("empty envelope"))?;
        if version != ENVELOPE_VERSION {
            return Err(EnvelopeError::UnsupportedVersion(version));
        }
        if bytes.len() < 1 + 32 + 32 + 16 {
            return Err(EnvelopeError::Malformed("envelope too short"));
        }
        let recipient = X25519PublicKey::from_slice(&bytes[1..33])
            .map_err(|_| EnvelopeError::Malformed("recipient key"))?;
        Ok(Self {
            version,
            recipient,
            enc: bytes[33..65].to_vec(),
            ciphertext: bytes[65..].to_vec(),
        })
    }
}
