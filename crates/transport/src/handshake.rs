//! The Noise XK handshake over websocket binary messages, with the signed hello and the
//! responder's verdict (docs/PROTOCOL.md §5.2–§5.4).

use futures::{SinkExt as _, StreamExt as _};
use sigil_crypto::keys::{AccountKeypair, X25519StaticKey, verify_signature};
use sigil_primitives::{AccountId, X25519PublicKey};
use snow::{HandshakeState, StatelessTransportState};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::{WebSocketStream, tungstenite::Message};

use crate::wire::{
    HELLO_LEN, Hello, NOISE_MAX_MESSAGE, NOISE_PARAMS, PROLOGUE, PROTOCOL_VERSION, Verdict,
    hello_signed_bytes,
};
use crate::{RefusalCode, TransportError, ValidatorInfo};

/// This node's keys, as the handshake needs them.
pub(crate) struct Identity {
    pub account: AccountKeypair,
    pub static_key: X25519StaticKey,
}

/// A finished handshake: the transport ciphers and where each direction's nonce stands.
pub(crate) struct Established {
    pub noise: StatelessTransportState,
    pub peer: AccountId,
    pub send_nonce: u64,
    pub recv_nonce: u64,
}

/// Why an inbound handshake did not complete (for logs and metrics; never sent as is).
#[derive(Debug)]
pub(crate) struct InboundFailure {
    /// Set when we refused with a verdict.
    pub code: Option<RefusalCode>,
    /// The account the initiator claimed, if it got that far.
    pub claimed: Option<AccountId>,
    pub reason: String,
}

fn builder() -> snow::Builder<'static> {
    // The name is a constant that snow supports, so parsing cannot fail.
    let params = NOISE_PARAMS
        .parse()
        .unwrap_or_else(|_| unreachable!("supported Noise pattern"));
    snow::Builder::new(params)
}

async fn recv_binary<S>(ws: &mut WebSocketStream<S>) -> Result<Vec<u8>, String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        match ws.next().await {
            Some(Ok(Message::Binary(b))) => return Ok(b.into()),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Close(_))) | None => return Err("connection closed".into()),
            Some(Ok(_)) => return Err("unexpected non-binary websocket message".into()),
            Some(Err(e)) => return Err(format!("websocket: {e}")),
        }
    }
}

async fn send_binary<S>(ws: &mut WebSocketStream<S>, bytes: Vec<u8>) -> Result<(), String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    ws.send(Message::binary(bytes))
        .await
        .map_err(|e| format!("websocket: {e}"))
}

/// Writes one handshake message with `payload`.
fn write(hs: &mut HandshakeState, payload: &[u8]) -> Result<Vec<u8>, String> {
    let mut buf = vec![0u8; NOISE_MAX_MESSAGE];
    let n = hs
        .write_message(payload, &mut buf)
        .map_err(|e| format!("noise: {e}"))?;
    buf.truncate(n);
    Ok(buf)
}

/// Reads one handshake message, returning its payload.
fn read(hs: &mut HandshakeState, msg: &[u8]) -> Result<Vec<u8>, String> {
    let mut buf = vec![0u8; NOISE_MAX_MESSAGE];
    let n = hs
        .read_message(msg, &mut buf)
        .map_err(|e| format!("noise: {e}"))?;
    buf.truncate(n);
    Ok(buf)
}

fn hash32(hs: &HandshakeState) -> [u8; 32] {
    let mut h = [0u8; 32];
    // BLAKE2s hashes are 32 bytes.
    h.copy_from_slice(hs.get_handshake_hash());
    h
}

/// Dials side: runs XK as initiator towards `peer` and waits for its verdict.
pub(crate) async fn initiate<S>(
    ws: &mut WebSocketStream<S>,
    local: &Identity,
    peer: &ValidatorInfo,
) -> Result<Established, TransportError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let account = local.account.account_id();
    let initiator_static = local.static_key.public_key();
    initiate_with(ws, local, peer, |h| {
        let signed = hello_signed_bytes(
            PROTOCOL_VERSION,
            &account,
            &initiator_static,
            &peer.x25519,
            h,
        );
        Hello {
            version: PROTOCOL_VERSION,
            account,
            signature: local.account.sign(&signed),
        }
        .encode()
    })
    .await
}

/// [`initiate`] with the hello built by `make_hello` from the handshake hash (tests forge it).
/// Any failure closes the websocket.
pub(crate) async fn initiate_with<S>(
    ws: &mut WebSocketStream<S>,
    local: &Identity,
    peer: &ValidatorInfo,
    make_hello: impl FnOnce(&[u8; 32]) -> Vec<u8>,
) -> Result<Established, TransportError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let outcome = initiate_inner(ws, local, peer, make_hello).await;
    if outcome.is_err() {
        let _ = ws.close(None).await;
    }
    outcome
}

async fn initiate_inner<S>(
    ws: &mut WebSocketStream<S>,
    local: &Identity,
    peer: &ValidatorInfo,
    make_hello: impl FnOnce(&[u8; 32]) -> Vec<u8>,
) -> Result<Established, TransportError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let fail = |reason: String| TransportError::Handshake {
        peer: peer.account.to_string(),
        reason,
    };
    let secret = local.static_key.secret_bytes();
    let mut hs = builder()
        .local_private_key(secret.as_ref())
        .and_then(|b| b.remote_public_key(peer.x25519.as_bytes()))
        .and_then(|b| b.prologue(PROLOGUE))
        .and_then(|b| b.build_initiator())
        .map_err(|e| fail(format!("noise setup: {e}")))?;
    drop(secret);

    let msg1 = write(&mut hs, &[]).map_err(fail)?;
    send_binary(ws, msg1).await.map_err(fail)?;

    let msg2 = recv_binary(ws).await.map_err(|e| {
        fail(format!(
            "{e} after message 1 (does the peer's x25519 key match its ledger record?)"
        ))
    })?;
    let payload = read(&mut hs, &msg2).map_err(fail)?;
    if !payload.is_empty() {
        return Err(fail("message 2 carries a payload".into()));
    }

    let hello = make_hello(&hash32(&hs));
    let msg3 = write(&mut hs, &hello).map_err(fail)?;
    send_binary(ws, msg3).await.map_err(fail)?;
    let noise = hs
        .into_stateless_transport_mode()
        .map_err(|e| fail(format!("noise: {e}")))?;

    let verdict = recv_binary(ws).await.map_err(fail)?;
    let mut buf = vec![0u8; NOISE_MAX_MESSAGE];
    let n = noise
        .read_message(0, &verdict, &mut buf)
        .map_err(|e| fail(format!("verdict: noise: {e}")))?;
    match Verdict::decode(&buf[..n]) {
        Some(Verdict::Accepted) => Ok(Established {
            noise,
            peer: peer.account,
            send_nonce: 0,
            recv_nonce: 1,
        }),
        Some(Verdict::Refused { code, message }) => Err(TransportError::Refused {
            peer: peer.account,
            code,
            message,
        }),
        None => Err(fail("malformed verdict".into())),
    }
}

/// Listening side: runs XK as responder, checks the hello against `lookup` (the directory's
/// x25519 key for an account) and sends the verdict. Any failure closes the websocket.
pub(crate) async fn respond<S>(
    ws: &mut WebSocketStream<S>,
    local: &Identity,
    lookup: impl FnOnce(&AccountId) -> Option<X25519PublicKey>,
) -> Result<Established, InboundFailure>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let outcome = respond_inner(ws, local, lookup).await;
    if outcome.is_err() {
        // Best effort: tells the initiator at once instead of leaving it to its timeout.
        let _ = ws.close(None).await;
    }
    outcome
}

async fn respond_inner<S>(
    ws: &mut WebSocketStream<S>,
    local: &Identity,
    lookup: impl FnOnce(&AccountId) -> Option<X25519PublicKey>,
) -> Result<Established, InboundFailure>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let fail = |reason: String| InboundFailure {
        code: None,
        claimed: None,
        reason,
    };
    let secret = local.static_key.secret_bytes();
    let mut hs = builder()
        .local_private_key(secret.as_ref())
        .and_then(|b| b.prologue(PROLOGUE))
        .and_then(|b| b.build_responder())
        .map_err(|e| fail(format!("noise setup: {e}")))?;
    drop(secret);

    let msg1 = recv_binary(ws).await.map_err(fail)?;
    let payload = read(&mut hs, &msg1).map_err(|e| {
        fail(format!(
            "message 1: {e} (the initiator expects another static key for us)"
        ))
    })?;
    if !payload.is_empty() {
        return Err(fail("message 1 carries a payload".into()));
    }
    let msg2 = write(&mut hs, &[]).map_err(fail)?;
    send_binary(ws, msg2).await.map_err(fail)?;
    let h = hash32(&hs);

    let msg3 = recv_binary(ws).await.map_err(fail)?;
    let hello = read(&mut hs, &msg3).map_err(fail)?;
    let remote_static = hs
        .get_remote_static()
        .and_then(|k| X25519PublicKey::from_slice(k).ok())
        .ok_or_else(|| fail("no usable remote static key".into()))?;
    let noise = hs
        .into_stateless_transport_mode()
        .map_err(|e| fail(format!("noise: {e}")))?;

    let me = local.account.account_id();
    let outcome = check_hello(
        &hello,
        &me,
        &local.static_key.public_key(),
        &remote_static,
        &h,
        lookup,
    );
    let verdict = match &outcome {
        Ok(_) => Verdict::Accepted,
        Err((code, message, _)) => Verdict::Refused {
            code: code.clone(),
            message: message.clone(),
        },
    };
    let mut buf = vec![0u8; NOISE_MAX_MESSAGE];
    let n = noise
        .write_message(0, &verdict.encode(), &mut buf)
        .map_err(|e| fail(format!("noise: {e}")))?;
    buf.truncate(n);
    send_binary(ws, buf).await.map_err(fail)?;
    match outcome {
        Ok(peer) => Ok(Established {
            noise,
            peer,
            send_nonce: 1,
            recv_nonce: 0,
        }),
        Err((code, message, claimed)) => Err(InboundFailure {
            code: Some(code),
            claimed,
            reason: message,
        }),
    }
}

type Refusal = (RefusalCode, String, Option<AccountId>);

/// The responder's checks, in the order docs/PROTOCOL.md §5.3 gives.
fn check_hello(
    hello: &[u8],
    me: &AccountId,
    my_static: &X25519PublicKey,
    remote_static: &X25519PublicKey,
    h: &[u8; 32],
    lookup: impl FnOnce(&AccountId) -> Option<X25519PublicKey>,
) -> Result<AccountId, Refusal> {
    let hello = Hello::decode(hello).map_err(|code| {
        let text = match code {
            RefusalCode::UnsupportedVersion => format!(
                "this node speaks transport version {PROTOCOL_VERSION}, got version {}",
                hello.first().copied().unwrap_or_default()
            ),
            _ => format!("hello must be {HELLO_LEN} bytes, got {}", hello.len()),
        };
        (code, text, None)
    })?;
    let who = Some(hello.account);
    let Some(recorded) = lookup(&hello.account) else {
        return Err((
            RefusalCode::UnknownPeer,
            format!("{} is not a validator known to this node", hello.account),
            who,
        ));
    };
    if recorded != *remote_static {
        return Err((
            RefusalCode::KeyMismatch,
            format!(
                "Noise static key {remote_static} differs from the x25519 key {recorded} recorded for {}",
                hello.account
            ),
            who,
        ));
    }
    let signed = hello_signed_bytes(hello.version, &hello.account, remote_static, my_static, h);
    if verify_signature(&hello.account, &signed, &hello.signature).is_err() {
        return Err((
            RefusalCode::BadSignature,
            "hello signature does not verify for the account".into(),
            who,
        ));
    }
    if hello.account.as_bytes() <= me.as_bytes() {
        return Err((
            RefusalCode::WrongDirection,
            format!(
                "{} must not dial {me}: the peer with the larger account id dials",
                hello.account
            ),
            who,
        ));
    }
    Ok(hello.account)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sigil_crypto::keys::NodeSeed;
    use sigil_primitives::Endpoint;
    use tokio_tungstenite::tungstenite::protocol::Role;

    fn identity(name: &str) -> Identity {
        let seed = NodeSeed::dev(name);
        Identity {
            account: seed.account_keypair(),
            static_key: seed.x25519_key(),
        }
    }

    fn record(id: &Identity) -> ValidatorInfo {
        ValidatorInfo {
            account: id.account.account_id(),
            x25519: id.static_key.public_key(),
            endpoint: Endpoint::new("127.0.0.1:1").expect("endpoint"),
        }
    }

    /// Two identities, the first with the larger account id (so it dials).
    fn pair() -> (Identity, Identity) {
        let (a, b) = (identity("alice"), identity("bob"));
        if a.account.account_id().as_bytes() > b.account.account_id().as_bytes() {
            (a, b)
        } else {
            (b, a)
        }
    }

    async fn ws_pair() -> (
        WebSocketStream<tokio::io::DuplexStream>,
        WebSocketStream<tokio::io::DuplexStream>,
    ) {
        let (a, b) = tokio::io::duplex(1 << 16);
        (
            WebSocketStream::from_raw_socket(a, Role::Client, None).await,
            WebSocketStream::from_raw_socket(b, Role::Server, None).await,
        )
    }

    /// Runs a handshake where the responder knows `known` and the initiator builds its hello
    /// with `make_hello`; returns both outcomes.
    async fn run(
        dialer: &Identity,
        listener: &Identity,
        known: Option<ValidatorInfo>,
        make_hello: impl FnOnce(&[u8; 32]) -> Vec<u8>,
    ) -> (
        Result<Established, TransportError>,
        Result<Established, InboundFailure>,
    ) {
        let (mut c, mut s) = ws_pair().await;
        let target = record(listener);
        let lookup = move |a: &AccountId| known.filter(|r| r.account == *a).map(|r| r.x25519);
        tokio::join!(
            initiate_with(&mut c, dialer, &target, make_hello),
            respond(&mut s, listener, lookup)
        )
    }

    fn honest_hello(dialer: &Identity, listener: &Identity) -> impl FnOnce(&[u8; 32]) -> Vec<u8> {
        let account = dialer.account.account_id();
        let mine = dialer.static_key.public_key();
        let theirs = listener.static_key.public_key();
        let key = dialer.account.clone();
        move |h| {
            let signed = hello_signed_bytes(PROTOCOL_VERSION, &account, &mine, &theirs, h);
            Hello {
                version: PROTOCOL_VERSION,
                account,
                signature: key.sign(&signed),
            }
            .encode()
        }
    }

    fn refused(r: Result<Established, TransportError>) -> RefusalCode {
        match r {
            Err(TransportError::Refused { code, .. }) => code,
            Err(e) => panic!("expected a refusal, got {e}"),
            Ok(_) => panic!("expected a refusal, got a connection"),
        }
    }

    #[tokio::test]
    async fn honest_handshake_agrees_on_keys() {
        let (d, l) = pair();
        let hello = honest_hello(&d, &l);
        let (a, b) = run(&d, &l, Some(record(&d)), hello).await;
        let (a, b) = (a.expect("initiator"), b.expect("responder"));
        assert_eq!(a.peer, l.account.account_id());
        assert_eq!(b.peer, d.account.account_id());
        let mut ct = vec![0u8; 64];
        let n = a
            .noise
            .write_message(a.send_nonce, b"hi", &mut ct)
            .expect("enc");
        let mut pt = vec![0u8; 64];
        let m = b
            .noise
            .read_message(b.recv_nonce, &ct[..n], &mut pt)
            .expect("dec");
        assert_eq!(&pt[..m], b"hi");
    }

    #[tokio::test]
    async fn forged_signature_is_refused() {
        let (d, l) = pair();
        let account = d.account.account_id();
        let (a, b) = run(&d, &l, Some(record(&d)), |_| {
            Hello {
                version: PROTOCOL_VERSION,
                account,
                signature: d.account.sign(b"something else"),
            }
            .encode()
        })
        .await;
        assert_eq!(refused(a), RefusalCode::BadSignature);
        assert_eq!(
            b.err().and_then(|f| f.code),
            Some(RefusalCode::BadSignature)
        );
    }

    #[tokio::test]
    async fn hello_signed_by_another_account_is_refused() {
        // The hello names the dialer but is signed by someone else's key.
        let (d, l) = pair();
        let other = identity("mallory");
        let account = d.account.account_id();
        let (a, _) = run(&d, &l, Some(record(&d)), |h| {
            let signed = hello_signed_bytes(
                PROTOCOL_VERSION,
                &account,
                &d.static_key.public_key(),
                &l.static_key.public_key(),
                h,
            );
            Hello {
                version: PROTOCOL_VERSION,
                account,
                signature: other.account.sign(&signed),
            }
            .encode()
        })
        .await;
        assert_eq!(refused(a), RefusalCode::BadSignature);
    }

    #[tokio::test]
    async fn other_version_and_garbage_are_refused() {
        let (d, l) = pair();
        let hello = honest_hello(&d, &l);
        let (a, _) = run(&d, &l, Some(record(&d)), |h| {
            let mut bytes = hello(h);
            bytes[0] = 2;
            bytes
        })
        .await;
        assert_eq!(refused(a), RefusalCode::UnsupportedVersion);
        let (a, _) = run(&d, &l, Some(record(&d)), |_| vec![PROTOCOL_VERSION; 3]).await;
        assert_eq!(refused(a), RefusalCode::MalformedHello);
    }

    #[tokio::test]
    async fn smaller_id_dialling_is_refused() {
        let (big, small) = pair();
        let hello = honest_hello(&small, &big);
        let (a, _) = run(&small, &big, Some(record(&small)), hello).await;
        assert_eq!(refused(a), RefusalCode::WrongDirection);
    }

    #[tokio::test]
    async fn unknown_and_mismatched_keys_are_refused() {
        let (d, l) = pair();
        let (a, _) = run(&d, &l, None, honest_hello(&d, &l)).await;
        assert_eq!(refused(a), RefusalCode::UnknownPeer);
        let mut wrong = record(&d);
        wrong.x25519 = identity("mallory").static_key.public_key();
        let (a, _) = run(&d, &l, Some(wrong), honest_hello(&d, &l)).await;
        assert_eq!(refused(a), RefusalCode::KeyMismatch);
    }

    #[tokio::test]
    async fn responder_with_another_static_key_fails_the_handshake() {
        let (d, l) = pair();
        let impostor = Identity {
            account: l.account.clone(),
            static_key: identity("mallory").static_key,
        };
        let (mut c, mut s) = ws_pair().await;
        let target = record(&l);
        let (a, b) = tokio::join!(
            initiate(&mut c, &d, &target),
            respond(&mut s, &impostor, |_| Some(d.static_key.public_key()))
        );
        assert!(
            matches!(a, Err(TransportError::Handshake { .. })),
            "{:?}",
            a.err()
        );
        assert!(b.is_err());
    }
}
