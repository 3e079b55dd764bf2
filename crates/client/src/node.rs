//! Requests to TSS nodes: ask a relayer for a signature, read a kept result, read node info.
//!
//! [`LedgerClient::sign`] does the whole user path of `docs/PROTOCOL.md` §7: it picks a
//! relayer from the ledger, builds and signs the request, seals it to the relayer, posts it,
//! and checks the answer (the signature against the key, every attestation against its
//! signer) before returning it.

use std::time::Duration;

use sigil_crypto::request::{request_digest, verify_attestation};
use sigil_crypto::{
    AccountKeypair, Envelope, SealParams, message_hash, seal_signed, signed_bytes,
    verify_user_signature,
};
use sigil_ledger_api::rpc::LedgerApiClient;
use sigil_ledger_api::types::ValidatorRecord;
use sigil_primitives::request::{
    ErrorBody, NodeInfo, RelayResponse, SignatureRequest, SignatureStatus, SignerResponse,
};
use sigil_primitives::{HashingAlgorithm, RequestId, VerifyingKey};

use crate::{ClientError, LedgerClient};

/// What to sign.
#[derive(Debug, Clone)]
pub struct SignRequest {
    /// The registered key that should sign.
    pub verifying_key: VerifyingKey,
    /// The message (at most 1 MiB).
    pub message: Vec<u8>,
    /// How the message becomes the 32-byte prehash.
    pub hashing: HashingAlgorithm,
    /// Auxiliary data, one entry per program of the key.
    pub aux_data: Vec<Vec<u8>>,
}

/// A verified answer to a signing request.
pub type SignResponse = RelayResponse;

/// How long a relay request may take end to end (signing takes seconds; retries more).
const RELAY_TIMEOUT: Duration = Duration::from_secs(300);

/// A sealed request ready to post, with what is needed to check its answer.
#[derive(Debug, Clone)]
pub struct SealedRequest {
    /// The envelope to post to the relayer.
    pub envelope: Envelope,
    /// The request id inside it.
    pub request_id: RequestId,
    /// Its request digest (`docs/PROTOCOL.md` §7.4).
    pub digest: [u8; 32],
}

/// Builds the payload of `request` at `block`, signs it with `account` and seals it to
/// `relayer`'s x25519 key.
pub fn seal_request(
    account: &AccountKeypair,
    relayer: &ValidatorRecord,
    request: &SignatureRequest,
) -> Result<SealedRequest, ClientError> {
    let request_id = RequestId::from_slice(&sigil_crypto::secret::random_array::<32>())
        .map_err(|e| ClientError::Invalid(e.to_string()))?;
    let payload = request.encode();
    let (envelope, plaintext) = seal_signed(
        account,
        &SealParams {
            recipient: relayer.x25519,
            request_id,
            timestamp_ms: sigil_crypto::envelope::now_ms(),
            reply_to: None,
            payload: &payload,
        },
    )
    .map_err(|e| ClientError::Invalid(e.to_string()))?;
    Ok(SealedRequest {
        envelope,
        request_id,
        digest: request_digest(&plaintext),
    })
}

/// An HTTP client for one node's API.
#[derive(Debug, Clone)]
pub struct NodeClient {
    http: reqwest::Client,
    base: String,
}

impl NodeClient {
    /// A client for the node at `endpoint` (`host:port`, as published on the ledger).
    pub fn new(endpoint: &str) -> Self {
        let http = reqwest::Client::builder()
            .timeout(RELAY_TIMEOUT)
            .build()
            .unwrap_or_default();
        Self {
            http,
            base: format!("http://{endpoint}"),
        }
    }

    /// A client for the node at `endpoint` that shares `http`'s connection pool (a relayer
    /// talks to many members with one pool).
    pub fn with_http(http: reqwest::Client, endpoint: &str) -> Self {
        Self {
            http,
            base: format!("http://{endpoint}"),
        }
    }

    /// The base URL, `http://host:port`.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// `POST /v1/relay` with a sealed envelope; the node's answer, unverified.
    pub async fn relay(&self, envelope: &Envelope) -> Result<RelayResponse, ClientError> {
        let response = self
            .http
            .post(format!("{}/v1/relay", self.base))
            .json(envelope)
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        decode(response).await
    }

    /// `POST /v1/sign` with an envelope sealed to this committee member; its answer, unverified.
    pub async fn sign(&self, envelope: &Envelope) -> Result<SignerResponse, ClientError> {
        let response = self
            .http
            .post(format!("{}/v1/sign", self.base))
            .json(envelope)
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        decode(response).await
    }

    /// `POST /v1/nonces` with a relayer's sealed nonce request.
    pub async fn nonces(
        &self,
        envelope: &Envelope,
    ) -> Result<sigil_primitives::request::NonceBatch, ClientError> {
        let response = self
            .http
            .post(format!("{}/v1/nonces", self.base))
            .json(envelope)
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        decode(response).await
    }

    /// `GET /v1/signature/{request_id}`.
    pub async fn signature(&self, request_id: &RequestId) -> Result<SignatureStatus, ClientError> {
        let response = self
            .http
            .get(format!("{}/v1/signature/{request_id}", self.base))
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        decode(response).await
    }

    /// `GET /v1/info`.
    pub async fn info(&self) -> Result<NodeInfo, ClientError> {
        let response = self
            .http
            .get(format!("{}/v1/info", self.base))
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        decode(response).await
    }

    fn unreachable(&self, error: reqwest::Error) -> ClientError {
        ClientError::NodeUnreachable {
            url: self.base.clone(),
            reason: error.to_string(),
        }
    }
}

/// A 2xx body as `T`, anything else as [`ClientError::Node`].
async fn decode<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
) -> Result<T, ClientError> {
    let status = response.status();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| ClientError::Invalid(format!("reading the node's answer: {e}")))?;
    if status.is_success() {
        return serde_json::from_slice(&bytes)
            .map_err(|e| ClientError::Invalid(format!("the node's answer does not parse: {e}")));
    }
    match serde_json::from_slice::<ErrorBody>(&bytes) {
        Ok(body) => Err(ClientError::Node {
            status: status.as_u16(),
            code: body.error.code,
            message: body.error.message,
        }),
        Err(_) => Err(ClientError::UnexpectedAnswer {
            status: status.as_u16(),
            body: String::from_utf8_lossy(&bytes).chars().take(200).collect(),
        }),
    }
}

/// Checks a relayer's answer: it is for this request and key, the hash is the message's
/// (for built-in algorithms), the signature verifies, and every committee member attested it.
pub fn verify_response(
    sealed: &SealedRequest,
    request: &SignatureRequest,
    response: &RelayResponse,
) -> Result<(), ClientError> {
    let bad = |what: &str| Err(ClientError::BadResponse(what.to_owned()));
    if response.request_id != sealed.request_id {
        return bad("the answer is for another request id");
    }
    if response.verifying_key != request.verifying_key {
        return bad("the answer is for another key");
    }
    if !matches!(request.hashing, HashingAlgorithm::Custom(_)) {
        let expected = message_hash(request.hashing, &request.message)
            .map_err(|e| ClientError::Invalid(e.to_string()))?;
        if expected != response.message_hash {
            return bad("the signed hash is not the hash of the message");
        }
    }
    let signed = signed_bytes(request.hashing, &request.message, &response.message_hash);
    if verify_user_signature(&response.verifying_key, signed, &response.signature).is_err() {
        return bad("the signature does not verify against the key");
    }
    if response.attestations.len() != response.committee.len() {
        return bad("not every committee member attested the signature");
    }
    for attestation in &response.attestations {
        if !response.committee.contains(&attestation.signer)
            || verify_attestation(
                &attestation.signer,
                &attestation.attestation,
                &sealed.digest,
                &response.verifying_key,
                &response.message_hash,
                &response.signature,
            )
            .is_err()
        {
            return bad("an attestation does not verify");
        }
    }
    Ok(())
}

impl LedgerClient {
    /// The validators that relay requests: every validator that is not a signer.
    pub async fn relayers(&self) -> Result<Vec<ValidatorRecord>, ClientError> {
        let signers = self.rpc().signer_set().await?.signers;
        Ok(self
            .rpc()
            .validators()
            .await?
            .into_iter()
            .filter(|v| !signers.contains(&v.account))
            .collect())
    }

    /// Asks the network to sign `request` as `account`: picks a relayer, seals the request
    /// at the current head, posts it and verifies the answer.
    pub async fn sign(
        &self,
        account: &AccountKeypair,
        request: SignRequest,
    ) -> Result<SignResponse, ClientError> {
        let relayers = self.relayers().await?;
        if relayers.is_empty() {
            return Err(ClientError::Invalid(
                "no relayer: every validator is a signer".into(),
            ));
        }
        let pick = usize::from(sigil_crypto::secret::random_array::<1>()[0]) % relayers.len();
        let relayer = &relayers[pick];
        let head = self.rpc().head().await?.height;
        let request = SignatureRequest {
            verifying_key: request.verifying_key,
            block: head.0,
            hashing: request.hashing,
            aux_data: request.aux_data,
            message: request.message,
        };
        let sealed = seal_request(account, relayer, &request)?;
        let response = NodeClient::new(relayer.endpoint.as_str())
            .relay(&sealed.envelope)
            .await?;
        verify_response(&sealed, &request, &response)?;
        Ok(response)
    }
}
