//! Byte layouts of the transport (docs/PROTOCOL.md §5): the hello, the handshake response and
//! the frames that carry chunks of session messages. Sans-IO: no sockets here.

use sigil_primitives::{AccountId, Ed25519Signature, X25519PublicKey};

use crate::{Kind, RefusalCode, SessionId};

/// The transport protocol version this crate speaks (in the hello and in every frame).
pub const PROTOCOL_VERSION: u8 = 1;
/// The Noise protocol name.
pub const NOISE_PARAMS: &str = "Noise_XK_25519_ChaChaPoly_BLAKE2s";
/// The Noise prologue.
pub const PROLOGUE: &[u8] = b"sigil/v1";
/// Domain string prefixed to the bytes the hello signature covers.
pub const HELLO_DOMAIN: &[u8] = b"sigil/v1/transport-hello";
/// Largest Noise message, ciphertext and tag included.
pub const NOISE_MAX_MESSAGE: usize = 65_535;
/// The AEAD tag every Noise transport message carries.
pub const NOISE_TAG_LEN: usize = 16;
/// Largest plaintext of one Noise transport message.
pub const MAX_FRAME_LEN: usize = NOISE_MAX_MESSAGE - NOISE_TAG_LEN;
/// Bytes of the frame header before the chunk data.
pub const FRAME_HEADER_LEN: usize = 42;
/// Largest chunk of message data one frame carries.
pub const MAX_CHUNK_LEN: usize = MAX_FRAME_LEN - FRAME_HEADER_LEN;
/// Length of the hello: version, account id, signature.
pub const HELLO_LEN: usize = 1 + 32 + 64;
/// Longest refusal code on the wire.
pub const MAX_CODE_LEN: usize = 64;
/// Longest refusal text on the wire, in bytes.
pub const MAX_REFUSAL_TEXT: usize = 1024;

/// The bytes the initiator signs: domain ‖ version ‖ account ‖ initiator static ‖ responder
/// static ‖ handshake hash after message 2. The initiator's static key is not yet in that hash
/// (it travels in message 3), so it is bound explicitly.
pub fn hello_signed_bytes(
    version: u8,
    account: &AccountId,
    initiator_static: &X25519PublicKey,
    responder_static: &X25519PublicKey,
    handshake_hash: &[u8; 32],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(HELLO_DOMAIN.len() + 1 + 32 * 4);
    out.extend_from_slice(HELLO_DOMAIN);
    out.push(version);
    out.extend_from_slice(account.as_bytes());
    out.extend_from_slice(initiator_static.as_bytes());
    out.extend_from_slice(responder_static.as_bytes());
    out.extend_from_slice(handshake_hash);
    out
}

/// The payload of the third handshake message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// Protocol version of the initiator.
    pub version: u8,
    /// The initiator's account.
    pub account: AccountId,
    /// Signature over [`hello_signed_bytes`].
    pub signature: Ed25519Signature,
}

impl Hello {
    /// `version(1) ‖ account(32) ‖ signature(64)`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HELLO_LEN);
        out.push(self.version);
        out.extend_from_slice(self.account.as_bytes());
        out.extend_from_slice(self.signature.as_bytes());
        out
    }

    /// Decodes a hello; the version is checked first so a later version may change the layout.
    pub fn decode(bytes: &[u8]) -> Result<Self, RefusalCode> {
        match bytes.first() {
            None => return Err(RefusalCode::MalformedHello),
            Some(&v) if v != PROTOCOL_VERSION => return Err(RefusalCode::UnsupportedVersion),
            Some(_) => {}
        }
        if bytes.len() != HELLO_LEN {
            return Err(RefusalCode::MalformedHello);
        }
        let account =
            AccountId::from_slice(&bytes[1..33]).map_err(|_| RefusalCode::MalformedHello)?;
        let signature =
            Ed25519Signature::from_slice(&bytes[33..]).map_err(|_| RefusalCode::MalformedHello)?;
        Ok(Self {
            version: bytes[0],
            account,
            signature,
        })
    }
}

/// The responder's verdict, its first Noise transport message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// `0x00`.
    Accepted,
    /// `0x01 ‖ code_len(1) ‖ code ‖ text_len(u16 BE) ‖ text`.
    Refused {
        /// Stable code.
        code: RefusalCode,
        /// Human-readable explanation.
        message: String,
    },
}

impl Verdict {
    /// Encodes the verdict, truncating over-long text at a character boundary.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Self::Accepted => vec![0x00],
            Self::Refused { code, message } => {
                let code = code.as_str().as_bytes();
                let code = &code[..code.len().min(MAX_CODE_LEN)];
                let mut end = message.len().min(MAX_REFUSAL_TEXT);
                while !message.is_char_boundary(end) {
                    end -= 1;
                }
                let text = &message.as_bytes()[..end];
                let mut out = Vec::with_capacity(4 + code.len() + text.len());
                out.push(0x01);
                out.push(code.len() as u8);
                out.extend_from_slice(code);
                out.extend_from_slice(&(text.len() as u16).to_be_bytes());
                out.extend_from_slice(text);
                out
            }
        }
    }

    /// Decodes a verdict; `None` if the bytes are not exactly one verdict.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        match bytes.split_first()? {
            (0x00, []) => Some(Self::Accepted),
            (0x01, rest) => {
                let (&code_len, rest) = rest.split_first()?;
                let code_len = usize::from(code_len);
                if code_len == 0 || code_len > MAX_CODE_LEN || rest.len() < code_len + 2 {
                    return None;
                }
                let code = std::str::from_utf8(&rest[..code_len]).ok()?;
                let rest = &rest[code_len..];
                let text_len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
                let rest = &rest[2..];
                if text_len > MAX_REFUSAL_TEXT || rest.len() != text_len {
                    return None;
                }
                Some(Self::Refused {
                    code: RefusalCode::parse(code),
                    // The text is the peer's: keep control characters out of our logs.
                    message: String::from_utf8_lossy(rest)
                        .chars()
                        .map(|c| if c.is_control() { '?' } else { c })
                        .collect(),
                })
            }
            _ => None,
        }
    }
}

/// A session message cut into frame plaintexts (each ≤ [`MAX_FRAME_LEN`]), in sending order.
pub fn frames(kind: Kind, session: &SessionId, payload: &[u8]) -> impl Iterator<Item = Vec<u8>> {
    let total = payload.len() as u32;
    // An empty message still needs one frame to exist on the wire.
    let count = payload.len().div_ceil(MAX_CHUNK_LEN).max(1);
    (0..count).map(move |i| {
        let start = i * MAX_CHUNK_LEN;
        let chunk = &payload[start..payload.len().min(start + MAX_CHUNK_LEN)];
        let mut out = Vec::with_capacity(FRAME_HEADER_LEN + chunk.len());
        out.push(PROTOCOL_VERSION);
        out.push(kind.to_byte());
        out.extend_from_slice(session.as_bytes());
        out.extend_from_slice(&total.to_be_bytes());
        out.extend_from_slice(&(start as u32).to_be_bytes());
        out.extend_from_slice(chunk);
        out
    })
}

/// A frame the peer should not have sent; the connection is closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Shorter than the header or longer than a Noise message allows.
    #[error("frame of {0} bytes has a bad length")]
    BadLength(usize),
    /// Unknown frame version.
    #[error("unsupported frame version {0}")]
    Version(u8),
    /// Unknown kind byte.
    #[error("unknown message kind {0}")]
    Kind(u8),
    /// Offset, length or header do not continue the message being reassembled.
    #[error("chunk does not continue the message in progress: {0}")]
    Sequence(&'static str),
}

/// What one frame completed.
#[derive(Debug, PartialEq, Eq)]
pub enum Reassembled {
    /// A whole message.
    Message {
        /// Broadcast or direct.
        kind: Kind,
        /// Its session.
        session: SessionId,
        /// Its bytes.
        payload: Vec<u8>,
    },
    /// The first chunk of a message over the local limit: its chunks are skipped.
    Oversized {
        /// Its session.
        session: SessionId,
        /// The announced size.
        size: usize,
    },
}

struct Partial {
    kind: Kind,
    session: SessionId,
    total: usize,
    received: usize,
    /// `None` while skipping an oversized message.
    buf: Option<Vec<u8>>,
}

/// Rebuilds messages from frames. Chunks of one message arrive consecutively and in order.
pub struct Reassembler {
    max_message: usize,
    current: Option<Partial>,
}

impl Reassembler {
    /// A reassembler that skips messages larger than `max_message` bytes.
    pub fn new(max_message: usize) -> Self {
        Self {
            max_message,
            current: None,
        }
    }

    /// Takes one decrypted frame.
    pub fn push(&mut self, frame: &[u8]) -> Result<Option<Reassembled>, FrameError> {
        if frame.len() < FRAME_HEADER_LEN || frame.len() > MAX_FRAME_LEN {
            return Err(FrameError::BadLength(frame.len()));
        }
        if frame[0] != PROTOCOL_VERSION {
            return Err(FrameError::Version(frame[0]));
        }
        let kind = Kind::from_byte(frame[1]).ok_or(FrameError::Kind(frame[1]))?;
        let mut session = [0u8; 32];
        session.copy_from_slice(&frame[2..34]);
        let session = SessionId::new(session);
        let total = u32::from_be_bytes([frame[34], frame[35], frame[36], frame[37]]) as usize;
        let offset = u32::from_be_bytes([frame[38], frame[39], frame[40], frame[41]]) as usize;
        let data = &frame[FRAME_HEADER_LEN..];

        let mut announce = None;
        let partial = match self.current.as_mut() {
            None => {
                if offset != 0 {
                    return Err(FrameError::Sequence("first chunk must have offset 0"));
                }
                let buf = if total > self.max_message {
                    announce = Some(Reassembled::Oversized {
                        session,
                        size: total,
                    });
                    None
                } else {
                    Some(Vec::with_capacity(total))
                };
                self.current.insert(Partial {
                    kind,
                    session,
                    total,
                    received: 0,
                    buf,
                })
            }
            Some(p) => {
                if p.kind != kind || p.session != session || p.total != total {
                    return Err(FrameError::Sequence(
                        "header differs from the message in progress",
                    ));
                }
                if offset != p.received {
                    return Err(FrameError::Sequence(
                        "offset is not the bytes received so far",
                    ));
                }
                p
            }
        };
        if data.is_empty() && total != 0 {
            return Err(FrameError::Sequence("empty chunk of a non-empty message"));
        }
        if partial.received + data.len() > partial.total {
            return Err(FrameError::Sequence("chunk runs past the message length"));
        }
        partial.received += data.len();
        if let Some(buf) = partial.buf.as_mut() {
            buf.extend_from_slice(data);
        }
        if partial.received < partial.total {
            return Ok(announce);
        }
        let done = self.current.take().expect("a message is in progress");
        Ok(match done.buf {
            Some(payload) => Some(Reassembled::Message {
                kind: done.kind,
                session: done.session,
                payload,
            }),
            // A one-frame oversized message is announced and finished at once.
            None => announce,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sigil_crypto::keys::NodeSeed;

    fn sid(b: u8) -> SessionId {
        SessionId::new([b; 32])
    }

    #[test]
    fn frames_round_trip_across_sizes() {
        for size in [
            0,
            1,
            MAX_CHUNK_LEN - 1,
            MAX_CHUNK_LEN,
            MAX_CHUNK_LEN + 1,
            3 * MAX_CHUNK_LEN + 17,
        ] {
            let payload: Vec<u8> = (0..size).map(|i| (i * 7) as u8).collect();
            let mut r = Reassembler::new(1 << 20);
            let frames: Vec<_> = frames(Kind::Direct, &sid(3), &payload).collect();
            assert_eq!(frames.len(), size.div_ceil(MAX_CHUNK_LEN).max(1));
            let mut out = None;
            for (i, f) in frames.iter().enumerate() {
                assert!(f.len() <= MAX_FRAME_LEN);
                let got = r.push(f).expect("valid frame");
                if i + 1 < frames.len() {
                    assert_eq!(got, None);
                } else {
                    out = got;
                }
            }
            assert_eq!(
                out,
                Some(Reassembled::Message {
                    kind: Kind::Direct,
                    session: sid(3),
                    payload
                })
            );
        }
    }

    #[test]
    fn header_layout_is_fixed() {
        let f: Vec<_> = frames(Kind::Broadcast, &sid(9), b"abc").collect();
        let mut expected = vec![1, 1];
        expected.extend_from_slice(&[9; 32]);
        expected.extend_from_slice(&[0, 0, 0, 3, 0, 0, 0, 0]);
        expected.extend_from_slice(b"abc");
        assert_eq!(f, vec![expected]);
    }

    #[test]
    fn oversized_messages_are_skipped_then_next_delivered() {
        let mut r = Reassembler::new(MAX_CHUNK_LEN);
        let big = vec![1u8; 2 * MAX_CHUNK_LEN + 1];
        let got: Vec<_> = frames(Kind::Direct, &sid(1), &big)
            .map(|f| r.push(&f).expect("valid"))
            .collect();
        assert_eq!(
            got[0],
            Some(Reassembled::Oversized {
                session: sid(1),
                size: big.len()
            })
        );
        assert!(got[1..].iter().all(Option::is_none));
        let small: Vec<_> = frames(Kind::Direct, &sid(2), b"ok").collect();
        assert!(matches!(
            r.push(&small[0]),
            Ok(Some(Reassembled::Message { .. }))
        ));
    }

    #[test]
    fn out_of_order_and_malformed_frames_are_errors() {
        let payload = vec![0u8; MAX_CHUNK_LEN + 5];
        let f: Vec<_> = frames(Kind::Direct, &sid(1), &payload).collect();
        assert!(matches!(
            Reassembler::new(1 << 20).push(&f[1]),
            Err(FrameError::Sequence(_))
        ));
        let mut r = Reassembler::new(1 << 20);
        r.push(&f[0]).expect("first");
        let other: Vec<_> = frames(Kind::Direct, &sid(2), b"x").collect();
        assert!(matches!(r.push(&other[0]), Err(FrameError::Sequence(_))));
        assert_eq!(
            Reassembler::new(10).push(&[1; 5]),
            Err(FrameError::BadLength(5))
        );
        let mut bad = other[0].clone();
        bad[0] = 2;
        assert_eq!(Reassembler::new(10).push(&bad), Err(FrameError::Version(2)));
        bad[0] = 1;
        bad[1] = 9;
        assert_eq!(Reassembler::new(10).push(&bad), Err(FrameError::Kind(9)));
        // Announced length shorter than the data.
        let mut long = other[0].clone();
        long[37] = 0;
        assert!(matches!(
            Reassembler::new(10).push(&long),
            Err(FrameError::Sequence(_))
        ));
    }

    #[test]
    fn hello_round_trip_and_errors() {
        let k = NodeSeed::dev("alice").account_keypair();
        let hello = Hello {
            version: PROTOCOL_VERSION,
            account: k.account_id(),
            signature: k.sign(b"x"),
        };
        let bytes = hello.encode();
        assert_eq!(bytes.len(), HELLO_LEN);
        assert_eq!(Hello::decode(&bytes), Ok(hello));
        assert_eq!(
            Hello::decode(&bytes[..50]),
            Err(RefusalCode::MalformedHello)
        );
        assert_eq!(Hello::decode(&[]), Err(RefusalCode::MalformedHello));
        let mut v2 = bytes.clone();
        v2[0] = 2;
        assert_eq!(Hello::decode(&v2), Err(RefusalCode::UnsupportedVersion));
    }

    #[test]
    fn verdict_round_trip() {
        assert_eq!(Verdict::Accepted.encode(), vec![0]);
        let refused = Verdict::Refused {
            code: RefusalCode::KeyMismatch,
            message: "nope".into(),
        };
        let bytes = refused.encode();
        let mut expected = vec![1, 12];
        expected.extend_from_slice(b"key_mismatch");
        expected.extend_from_slice(&[0, 4]);
        expected.extend_from_slice(b"nope");
        assert_eq!(bytes, expected);
        assert_eq!(Verdict::decode(&bytes), Some(refused));
        assert_eq!(Verdict::decode(&[0]), Some(Verdict::Accepted));
        assert_eq!(Verdict::decode(&[0, 0]), None);
        assert_eq!(Verdict::decode(&bytes[..bytes.len() - 1]), None);
        let long = Verdict::Refused {
            code: RefusalCode::Other("x".repeat(100)),
            message: "é".repeat(2000),
        };
        let decoded = Verdict::decode(&long.encode()).expect("decodes");
        let Verdict::Refused { code, message } = decoded else {
            panic!("refused")
        };
        assert_eq!(code.as_str().len(), MAX_CODE_LEN);
        assert_eq!(message.len(), MAX_REFUSAL_TEXT);
    }
}
