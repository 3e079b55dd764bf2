//! The Rust SDK for Sigil.
//!
//! [`LedgerClient`] talks to a ledger node over JSON-RPC (websocket): typed queries,
//! subscriptions, and transactions signed with an account key and submitted with the right
//! nonce. [`LedgerClient::sign`] asks the network for a signature through a relayer and
//! verifies it; [`NodeClient`] speaks to one node's HTTP API.

mod node;

pub use node::{
    NodeClient, SealedRequest, SignRequest, SignResponse, seal_request, verify_response,
};

use jsonrpsee::core::client::{Error as RpcError, Subscription};
use jsonrpsee::ws_client::{WsClient, WsClientBuilder};
use sigil_crypto::AccountKeypair;
use sigil_ledger_api::rpc::{EventFilter, EventNotification, LedgerApiClient, SubmitResult};
use sigil_ledger_api::types::{BlockHeader, Call};
use sigil_primitives::ErrorCode;

pub use sigil_ledger_api::{header, programs, rpc, tx, types};

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Could not reach the ledger.
    #[error("cannot connect to the ledger at {url}: {reason}")]
    Connect {
        /// The URL tried.
        url: String,
        /// Why.
        reason: String,
    },
    /// The ledger answered with a JSON-RPC error (a refused transaction, a bad parameter).
    #[error("{message} (ledger error {code})")]
    Ledger {
        /// The JSON-RPC error code (`docs/PROTOCOL.md` §4.3).
        code: i32,
        /// The ledger's explanation, with its detail when it gave one.
        message: String,
    },
    /// The JSON-RPC exchange with the ledger failed (connection lost, timeout, bad answer).
    #[error("ledger connection: {0}")]
    LedgerConnection(String),
    /// Could not reach a node.
    #[error("cannot reach the node at {url}: {reason}")]
    NodeUnreachable {
        /// The URL tried.
        url: String,
        /// Why.
        reason: String,
    },
    /// A node refused or failed the request; `code` is its stable error code.
    #[error("{code}: {message} (HTTP {status})")]
    Node {
        /// HTTP status.
        status: u16,
        /// Stable error code, e.g. `program_denied` ([`ErrorCode::Unknown`] for a code this
        /// build does not know).
        code: ErrorCode,
        /// The node's explanation.
        message: String,
    },
    /// A node answered with an error status but not with an `{"error": …}` body (a proxy in
    /// between, or not a Sigil node).
    #[error("unexpected answer (HTTP {status}): {body}")]
    UnexpectedAnswer {
        /// HTTP status.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// A node's answer failed verification.
    #[error("the node's answer is not valid: {0}")]
    BadResponse(String),
    /// The request could not be built, or an answer could not be read.
    #[error("{0}")]
    Invalid(String),
}

/// One readable line per ledger error: the JSON-RPC error's message and detail, or what went
/// wrong with the exchange.
impl From<RpcError> for ClientError {
    fn from(error: RpcError) -> Self {
        match error {
            RpcError::Call(object) => {
                // Data is a string, or an object whose `message` says it in words (§4.3).
                let detail = object.data().map(|data| {
                    match serde_json::from_str::<serde_json::Value>(data.get()) {
                        Ok(serde_json::Value::String(text)) => text,
                        Ok(serde_json::Value::Object(map)) => match map.get("message") {
                            Some(serde_json::Value::String(text)) => text.clone(),
                            _ => data.get().to_string(),
                        },
                        _ => data.get().to_string(),
                    }
                });
                let message = match detail {
                    Some(detail) if !object.message().contains(&detail) => {
                        format!("{}: {detail}", object.message())
                    }
                    _ => object.message().to_string(),
                };
                Self::Ledger {
                    code: object.code(),
                    message,
                }
            }
            other => Self::LedgerConnection(other.to_string()),
        }
    }
}

/// A connection to a ledger node.
pub struct LedgerClient {
    rpc: WsClient,
    chain_id: String,
}

impl LedgerClient {
    /// Connects to `url` (`ws://host:port`) and learns the chain id.
    pub async fn connect(url: &str) -> Result<Self, ClientError> {
        let rpc = WsClientBuilder::default()
            .max_request_size(sigil_ledger_api::rpc::MAX_REQUEST_BYTES)
            .max_response_size(sigil_ledger_api::rpc::MAX_REQUEST_BYTES * 2)
            .build(url)
            .await
            .map_err(|e| ClientError::Connect {
                url: url.to_owned(),
                reason: e.to_string(),
            })?;
        let chain_id = rpc.chain_id().await?;
        Ok(Self { rpc, chain_id })
    }

    /// The raw typed RPC (every method of [`LedgerApiClient`]).
    pub fn rpc(&self) -> &WsClient {
        &self.rpc
    }

    /// The chain id transactions are signed for.
    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }

    /// Signs `call` with `key` at its next nonce and submits it; with `wait`, returns once a
    /// block included it (or the ledger rejected it).
    pub async fn submit(
        &self,
        key: &AccountKeypair,
        call: Call,
        wait: bool,
    ) -> Result<SubmitResult, ClientError> {
        let nonce = self.rpc.next_nonce(key.account_id()).await?;
        let tx = sigil_ledger_api::tx::sign(key, &self.chain_id, nonce, call);
        Ok(self.rpc.submit(tx, wait).await?)
    }

    /// New block headers.
    pub async fn heads(&self) -> Result<Subscription<BlockHeader>, ClientError> {
        Ok(self.rpc.subscribe_heads().await?)
    }

    /// Events passing `filter`.
    pub async fn events(
        &self,
        filter: EventFilter,
    ) -> Result<Subscription<EventNotification>, ClientError> {
        Ok(self.rpc.subscribe_events(Some(filter)).await?)
    }
}
