//! The JSON-RPC server (HTTP and websocket on one port) of the API in `sigil_ledger_api::rpc`.

use std::net::SocketAddr;
use std::time::Duration;

use jsonrpsee::core::{RpcResult, SubscriptionResult, async_trait};
use jsonrpsee::server::{
    BatchRequestConfig, Methods, PendingSubscriptionSink, PingConfig, Server, ServerConfig,
    ServerHandle, SubscriptionMessage, serve_with_graceful_shutdown, stop_channel,
};
use jsonrpsee::types::ErrorObjectOwned;
use sigil_ledger_api::rpc::*;
use sigil_primitives::throttle::{AddressCaps, RateLimitedLog};
use sigil_primitives::{AccountId, ProgramId, SessionId, VerifyingKey};
use tokio::sync::broadcast::error::RecvError;

use crate::chain::ChainError;
use crate::producer::{Ledger, NewBlock, SubmitError};
use crate::state::TxError;
use crate::types::*;

fn err(code: i32, message: impl Into<String>, data: Option<serde_json::Value>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(code, message.into(), data)
}

fn storage_err(e: ChainError) -> ErrorObjectOwned {
    err(CODE_STORAGE, e.to_string(), None)
}

/// Error 1000: `data` is `{code, message}` for a refused transaction, and adds `included`
/// (the block's height) when the transaction went in but its call failed.
fn rejected(e: &TxError, included: Option<u64>) -> ErrorObjectOwned {
    let mut data = serde_json::json!({"code": e.code(), "message": e.to_string()});
    let message = match included {
        Some(height) => {
            data["included"] = height.into();
            format!("call failed in block {height} (fee paid): {e}")
        }
        None => format!("transaction rejected: {e}"),
    };
    err(CODE_REJECTED, message, Some(data))
}

fn submit_err(e: SubmitError) -> ErrorObjectOwned {
    match e {
        SubmitError::Rejected(e) => rejected(&e, None),
        SubmitError::PoolFull => err(CODE_POOL_FULL, e.to_string(), None),
        SubmitError::Duplicate => err(CODE_DUPLICATE, e.to_string(), None),
        SubmitError::ShuttingDown => err(CODE_SHUTTING_DOWN, e.to_string(), None),
    }
}

struct RpcImpl {
    ledger: Ledger,
}

impl RpcImpl {
    /// The offence records `keep` accepts, in the order they were reported.
    fn offences_where(&self, keep: impl Fn(&OffenceRecord) -> bool) -> Vec<OffenceRecord> {
        let ledger = self.ledger.read();
        let offences = ledger.state().offences.iter();
        offences
            .filter(|(_, o)| keep(o))
            .map(|(_, o)| o.clone())
            .collect()
    }
}

#[async_trait]
impl LedgerApiServer for RpcImpl {
    fn chain_id(&self) -> RpcResult<String> {
        Ok(self.ledger.read().chain_id().to_owned())
    }

    async fn submit(&self, tx: SignedTransaction, wait: bool) -> RpcResult<SubmitResult> {
        let hash = format!("0x{}", hex::encode(crate::tx::hash(&tx)));
        // What the pool would refuse is refused before its program is compiled.
        let precheck = self.ledger.pool.precheck(&self.ledger.read(), &tx);
        precheck.map_err(submit_err)?;
        self.check_program(&tx).await?;
        let receiver = {
            let chain = self.ledger.read();
            self.ledger.pool.submit(&chain, tx).map_err(submit_err)?
        };
        if !wait {
            return Ok(SubmitResult {
                hash,
                included: None,
                events: vec![],
            });
        }
        let outcome = receiver
            .await
            .map_err(|_| err(CODE_SHUTTING_DOWN, "ledger is shutting down", None))?;
        let included = match outcome.included {
            true => self
                .ledger
                .read()
                .tx_block(&outcome.hash)
                .map_err(storage_err)?,
            false => None,
        };
        let events = outcome.result.map_err(|e| rejected(&e, included))?;
        Ok(SubmitResult {
            hash,
            included,
            events,
        })
    }

    fn head(&self) -> RpcResult<BlockHeader> {
        Ok(self.ledger.read().head().clone())
    }

    fn block(&self, height: u64) -> RpcResult<Option<Block>> {
        self.ledger.read().block(height).map_err(storage_err)
    }

    fn tx_block(&self, hash: String) -> RpcResult<Option<u64>> {
        let bytes: [u8; 32] = sigil_primitives::bytes::decode_hex_array("transaction hash", &hash)
            .map_err(|e| {
                err(
                    jsonrpsee::types::error::INVALID_PARAMS_CODE,
                    e.to_string(),
                    None,
                )
            })?;
        self.ledger.read().tx_block(&bytes).map_err(storage_err)
    }

    fn account(&self, account: AccountId) -> RpcResult<Account> {
        Ok(self
            .ledger
            .read()
            .state()
            .accounts
            .get(&account)
            .cloned()
            .unwrap_or_default())
    }

    fn next_nonce(&self, account: AccountId) -> RpcResult<u64> {
        let chain = self.ledger.read();
        Ok(self.ledger.pool.next_nonce(&chain, &account))
    }

    fn validator(&self, account: AccountId) -> RpcResult<Option<ValidatorRecord>> {
        Ok(self.ledger.read().state().validators.get(&account).cloned())
    }

    fn validators(&self) -> RpcResult<Vec<ValidatorRecord>> {
        Ok(self
            .ledger
            .read()
            .state()
            .validators
            .iter()
            .map(|(_, v)| v.clone())
            .collect())
    }

    fn signer_set(&self) -> RpcResult<SignerSet> {
        Ok(self.ledger.read().state().globals.signer_set.clone())
    }

    fn program(&self, id: ProgramId) -> RpcResult<Option<ProgramRecord>> {
        self.ledger.read().program(&id).map_err(storage_err)
    }

    fn programs(&self) -> RpcResult<Vec<ProgramSummary>> {
        Ok(self
            .ledger
            .read()
            .state()
            .programs
            .iter()
            .map(|(id, p)| ProgramSummary {
                id: *id,
                deployer: p.deployer,
                ref_count: p.ref_count,
                size: p.bytecode_size as usize,
            })
            .collect())
    }

    fn registration(&self, key: VerifyingKey) -> RpcResult<Option<Registration>> {
        Ok(self.ledger.read().state().registrations.get(&key).cloned())
    }

    fn registrations(
        &self,
        owner: Option<AccountId>,
    ) -> RpcResult<Vec<(VerifyingKey, Registration)>> {
        Ok(self
            .ledger
            .read()
            .state()
            .registrations
            .iter()
            .filter(|(_, r)| owner.is_none_or(|o| r.owner == o))
            .map(|(k, r)| (*k, r.clone()))
            .collect())
    }

    fn parameters(&self) -> RpcResult<Parameters> {
        Ok(self.ledger.read().state().globals.parameters.clone())
    }

    fn governance(&self) -> RpcResult<AccountId> {
        Ok(self.ledger.read().state().globals.governance)
    }

    fn offences(&self) -> RpcResult<Vec<OffenceRecord>> {
        Ok(self.offences_where(|_| true))
    }

    fn session_offences(&self, sessions: Vec<SessionId>) -> RpcResult<Vec<OffenceRecord>> {
        if sessions.len() > MAX_SESSIONS_PER_QUERY {
            return Err(err(
                jsonrpsee::types::error::INVALID_PARAMS_CODE,
                format!("at most {MAX_SESSIONS_PER_QUERY} sessions per call"),
                None,
            ));
        }
        Ok(self.offences_where(|o| sessions.contains(&o.session)))
    }

    fn oracle(&self, height: u64) -> RpcResult<Option<OracleData>> {
        let block = self.ledger.read().block(height).map_err(storage_err)?;
        Ok(block.map(|b| OracleData {
            block_number: b.header.height.0,
            timestamp_ms: b.header.timestamp_ms,
        }))
    }

    fn consensus(&self) -> RpcResult<ConsensusInfo> {
        let chain = self.ledger.read();
        let replicated = !chain.genesis().map_err(storage_err)?.replicas.is_empty();
        let head = chain.head();
        let state = chain.state();
        let epoch = state.epoch_of(head.height.0 + 1);
        let epoch_length = state.globals.epoch_length;
        Ok(ConsensusInfo {
            mode: if replicated { "replicated" } else { "solo" }.into(),
            epoch,
            replicas: state.consensus_set(epoch).unwrap_or_default().to_vec(),
            epoch_length,
            next_epoch_at: (epoch + 1) * epoch_length,
            next_replicas: state.next_consensus_set(),
            local: self.ledger.local_replica.get().cloned(),
            final_height: head.height.0,
            final_hash: format!("0x{}", hex::encode(crate::header::header_hash(head))),
        })
    }

    fn state_digest(&self) -> RpcResult<String> {
        Ok(format!(
            "0x{}",
            hex::encode(self.ledger.read().state().digest())
        ))
    }

    async fn subscribe_heads(&self, pending: PendingSubscriptionSink) -> SubscriptionResult {
        forward_blocks(&self.ledger, pending, "head", |block| {
            Ok(vec![serde_json::value::to_raw_value(&block.header)?])
        })
        .await
    }

    async fn subscribe_events(
        &self,
        pending: PendingSubscriptionSink,
        filter: Option<EventFilter>,
    ) -> SubscriptionResult {
        let filter = filter.unwrap_or_default();
        forward_blocks(&self.ledger, pending, "event", |block| {
            block
                .events
                .iter()
                .filter(|e| filter.matches(e))
                .map(|event| {
                    serde_json::value::to_raw_value(&EventNotification {
                        block: block.header.height.0,
                        event: event.clone(),
                    })
                })
                .collect()
        })
        .await
    }
}

/// Accepts a subscription and sends it what `messages` makes of each new block, until the
/// subscriber leaves or the ledger stops.
async fn forward_blocks(
    ledger: &Ledger,
    pending: PendingSubscriptionSink,
    kind: &'static str,
    messages: impl Fn(&NewBlock) -> Result<Vec<Box<serde_json::value::RawValue>>, serde_json::Error>,
) -> SubscriptionResult {
    let mut blocks = ledger.blocks.subscribe();
    let sink = pending.accept().await?;
    loop {
        match blocks.recv().await {
            Ok(block) => {
                for msg in messages(&block)? {
                    if sink.send(SubscriptionMessage::from(msg)).await.is_err() {
                        return Ok(());
                    }
                }
            }
            Err(RecvError::Lagged(n)) => tracing::warn!(skipped = n, kind, "subscriber lagging"),
            Err(RecvError::Closed) => return Ok(()),
        }
    }
}

impl RpcImpl {
    fn read_max_program_size(&self) -> u32 {
        self.ledger
            .read()
            .state()
            .globals
            .parameters
            .max_program_size
    }

    /// Compiles a stored program's bytecode at admission, on the blocking pool and outside the
    /// chain's lock (block execution then finds it checked): a program that does not check is
    /// refused before it reaches the pool, and readers never wait on a compiler.
    async fn check_program(&self, tx: &SignedTransaction) -> RpcResult<()> {
        let Some(contents) = crate::programs::stored_contents(&tx.tx.call) else {
            return Ok(());
        };
        // The checks `store_program` makes before compiling, so nothing oversized is compiled.
        let max = self.read_max_program_size();
        crate::programs::check_contents(&contents, max)
            .map_err(|e| rejected(&TxError::Invalid(e), None))?;
        let (check, bytecode) = (
            self.ledger.program_check.clone(),
            contents.bytecode.to_vec(),
        );
        let checked = tokio::task::spawn_blocking(move || check(&bytecode))
            .await
            .map_err(|e| err(CODE_STORAGE, format!("program check failed: {e}"), None))?;
        checked.map_err(|e| rejected(&TxError::Invalid(format!("invalid program: {e}")), None))
    }
}

/// Limits of the RPC server, so that one client cannot lock others out.
#[derive(Debug, Clone)]
pub struct RpcLimits {
    /// Connections open at once, in total.
    pub max_connections: usize,
    /// Connections open at once from one IP address.
    pub max_connections_per_address: usize,
    /// Calls in one batch.
    pub max_batch: u32,
    /// How long a connection may take to send its first request (an upgrade, say).
    pub first_request_timeout: Duration,
    /// A websocket that has not answered a ping for this long is closed.
    pub websocket_inactive: Duration,
}

impl Default for RpcLimits {
    fn default() -> Self {
        Self {
            max_connections: 512,
            max_connections_per_address: 64,
            max_batch: 32,
            first_request_timeout: Duration::from_secs(10),
            websocket_inactive: Duration::from_secs(40),
        }
    }
}

impl RpcLimits {
    /// The limits of the validators' listener: room for every node of a large network,
    /// however many share one address, since only validators should reach it.
    pub fn validators() -> Self {
        Self {
            max_connections: 1024,
            max_connections_per_address: 1024,
            ..Self::default()
        }
    }
}

/// Refused connections are logged at most every 10 s: anyone can open them.
static REFUSED: RateLimitedLog = RateLimitedLog::new(Duration::from_secs(10));

/// Serves the API on `addr` (HTTP and websocket on the same port), within `limits`.
pub async fn serve(
    ledger: Ledger,
    addr: SocketAddr,
    limits: RpcLimits,
) -> std::io::Result<(SocketAddr, ServerHandle)> {
    let ping = PingConfig::new()
        .ping_interval(limits.websocket_inactive / 2)
        .inactive_limit(limits.websocket_inactive);
    let config = ServerConfig::builder()
        .max_request_body_size(MAX_REQUEST_BYTES)
        .max_response_body_size(MAX_REQUEST_BYTES * 2)
        .max_connections(u32::try_from(limits.max_connections).unwrap_or(u32::MAX))
        .set_batch_request_config(BatchRequestConfig::Limit(limits.max_batch))
        .set_first_request_timeout(Some(limits.first_request_timeout))
        .enable_ws_ping(ping)
        .build();
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let builder = Server::builder().set_config(config).to_service_builder();
    let methods: Methods = RpcImpl { ledger }.into_rpc().into();
    let (stop, handle) = stop_channel();
    let caps = AddressCaps::new(limits.max_connections, limits.max_connections_per_address);
    tokio::spawn(async move {
        loop {
            let (socket, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::warn!(%error, "cannot accept an RPC connection");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = stop.clone().shutdown() => break,
            };
            let slot = match caps.take(peer.ip()) {
                Ok(slot) => slot,
                Err(full) => {
                    metrics::counter!("sigil_ledger_rpc_connections_refused_total").increment(1);
                    if let Some(count) = REFUSED.hit() {
                        tracing::warn!(count, ?full, last = %peer.ip(), "refused RPC connections over the cap");
                    }
                    continue;
                }
            };
            let service = builder.clone().build(methods.clone(), stop.clone());
            let service =
                tower::service_fn(move |request| crate::vet::call(service.clone(), request));
            let stopped = stop.clone().shutdown();
            tokio::spawn(async move {
                let _slot = slot;
                if let Err(error) = serve_with_graceful_shutdown(socket, service, stopped).await {
                    tracing::debug!(%error, %peer, "RPC connection ended");
                }
            });
        }
    });
    Ok((local, handle))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Arc;

    use super::*;

    #[test]
    fn the_parameter_table_names_every_method_the_server_registers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let genesis = crate::node::dev_genesis();
        let validate = Arc::new(|b: &[u8]| crate::node::component_header_check(b));
        let chain =
            crate::chain::Chain::open(dir.path(), Some(&genesis), validate, None).expect("chain");
        let module = RpcImpl {
            ledger: Ledger::new(chain),
        }
        .into_rpc();
        let served: BTreeSet<&str> = module.method_names().collect();
        let listed: BTreeSet<&str> = METHOD_PARAMS.iter().map(|(name, _)| *name).collect();
        assert_eq!(served, listed);
        for subscription in SUBSCRIPTION_METHODS {
            assert!(served.contains(subscription), "{subscription}");
        }
    }
}
