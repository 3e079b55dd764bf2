//! `sigil node`: command-line options and the process entry point.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;

use crate::identity::KeySourceArg;
use crate::node::{Node, NodeConfig};

/// Options of `sigil node`.
#[derive(Debug, clap::Args)]
pub struct NodeArgs {
    /// Where the node keeps its keystore (created if missing).
    #[arg(long)]
    pub data_dir: PathBuf,
    /// The ledger's JSON-RPC websocket URL.
    #[arg(long, default_value = "ws://127.0.0.1:9944")]
    pub ledger: String,
    /// Address the HTTP API (and the validator transport at /v1/ws) listens on.
    #[arg(long, default_value = "127.0.0.1:3001")]
    pub listen: SocketAddr,
    /// The `host:port` other parties reach this node at, published on the ledger
    /// (default: the listen address).
    #[arg(long)]
    pub endpoint: Option<String>,
    /// File holding the keystore password.
    #[arg(long, conflicts_with = "key_file")]
    pub password_file: Option<PathBuf>,
    /// File holding the keystore's raw 32-byte key (hex), e.g. from a secrets manager.
    #[arg(long)]
    pub key_file: Option<PathBuf>,
    /// Use the well-known development identity NAME (alice, bob, ...): local networks only.
    #[arg(long, value_name = "NAME")]
    pub dev: Option<String>,
    /// Take this node's key share from pre-generated fixtures (`NAME.share`, `NAME.aux`)
    /// instead of running the DKG at jump start; needs --dev. Not secure: tests only.
    #[arg(long, value_name = "DIR", requires = "dev")]
    pub dev_key_shares: Option<PathBuf>,
    /// Stake to lock when joining as a validator.
    #[arg(long, default_value_t = 10_000)]
    pub stake: u64,
    /// How many blocks old a request's block may be.
    #[arg(long, default_value_t = 20)]
    pub request_window: u64,
    /// How long results stay retrievable at GET /v1/signature/{id}, e.g. `10m`.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    pub result_ttl: Duration,
    /// Longest a threshold-protocol round may take before the silent parties are blamed.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub round_timeout: Duration,
    /// Signing attempts per request when this node relays (each with a new committee).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub max_attempts: u32,
    /// How long the relayer waits for the ledger to record a failed attempt's offences before
    /// trying the next committee anyway.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub offence_wait: Duration,
    /// Validator connections: `persistent` keeps one per peer across sessions; `per-session`
    /// closes it when no session needs it, so each new session handshakes again (the
    /// Entropy-style path, for benchmark baselines).
    #[arg(long, default_value = "persistent", value_parser = ["persistent", "per-session"])]
    pub connections: String,
    /// How a request's programs share the fuel budget: `per-program` (each gets all of it) or
    /// `shared` (the Entropy-style path, for benchmark baselines).
    #[arg(long, default_value = "per-program")]
    pub program_fuel: sigil_programs::FuelPolicy,
    /// As a relayer: commitments made ahead to keep per signer and per scheme (Ed25519,
    /// BIP-340), so their requests sign in one round; 0 signs every request in two rounds.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(0..=128))]
    pub nonce_pool: u16,
    /// How many compiled programs to keep; 0 compiles a program on every evaluation.
    #[arg(long, default_value_t = sigil_programs::DEFAULT_CACHE_CAPACITY)]
    pub program_cache: usize,
    /// Longest a client may take to send a request's headers; also how long a kept-alive
    /// connection may sit idle.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub http_header_timeout: Duration,
    /// Longest a client may take to send a request's body.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub http_body_timeout: Duration,
    /// HTTP connections open at once, in total (more are closed at once).
    #[arg(long, default_value_t = 1024)]
    pub http_max_connections: usize,
    /// HTTP connections open at once from one IP address.
    #[arg(long, default_value_t = 256)]
    pub http_max_connections_per_address: usize,
    /// Validator-transport handshakes (`/v1/ws`) in flight at once, in total (more get
    /// `503 busy`).
    #[arg(long, default_value_t = 64)]
    pub ws_max_handshakes: usize,
    /// Validator-transport handshakes in flight at once from one IP address.
    #[arg(long, default_value_t = 8)]
    pub ws_max_handshakes_per_address: usize,
    /// Write the seed of this validator's consensus key (derived from its node seed) to FILE,
    /// created readable by its owner only, print the public key, and exit: give FILE to
    /// `sigil ledger --replica-key-file`, and the node names that replica on the ledger.
    #[arg(long, value_name = "FILE")]
    pub write_replica_key: Option<PathBuf>,
    /// Read a ledger replica that is not this validator's own (one run with another consensus
    /// key). Without it, a node on a replicated chain refuses to start on another's replica,
    /// since that replica alone decides what the node believes.
    #[arg(long)]
    pub trust_remote_ledger: bool,
    /// Misbehave in signing sessions: silent, drop-to:ACCOUNT, corrupt, bad-proof,
    /// equivocate or frame:ACCOUNT. Test builds with the `fault-injection` feature only.
    #[cfg(feature = "fault-injection")]
    #[arg(long)]
    pub inject_fault: Option<sigil_mpc::InjectedFault>,
}

/// Runs a node until Ctrl-C or SIGTERM.
pub fn run(args: NodeArgs) -> anyhow::Result<()> {
    let key_source = match (&args.password_file, &args.key_file) {
        (Some(p), None) => KeySourceArg::PasswordFile(p.clone()),
        (None, Some(k)) => KeySourceArg::KeyFile(k.clone()),
        _ => anyhow::bail!("choose how the keystore is unlocked: --password-file or --key-file"),
    };
    if let Some(path) = &args.write_replica_key {
        return write_replica_key(&args, &key_source, path);
    }
    let endpoint = args
        .endpoint
        .clone()
        .unwrap_or_else(|| args.listen.to_string());
    let endpoint = sigil_primitives::Endpoint::new(endpoint).context("invalid --endpoint")?;
    let config = NodeConfig {
        data_dir: args.data_dir,
        ledger_url: args.ledger,
        listen: args.listen,
        endpoint,
        key_source,
        dev_name: args.dev,
        dev_key_shares: args.dev_key_shares,
        stake: args.stake,
        request_window: args.request_window,
        result_ttl: args.result_ttl,
        round_timeout: args.round_timeout,
        max_attempts: args.max_attempts,
        offence_wait: args.offence_wait,
        persistent_connections: args.connections == "persistent",
        fuel_policy: args.program_fuel,
        program_cache: args.program_cache,
        nonce_pool: usize::from(args.nonce_pool),
        http: crate::http::HttpLimits {
            header_read_timeout: args.http_header_timeout,
            body_read_timeout: args.http_body_timeout,
            max_connections: args.http_max_connections,
            max_connections_per_address: args.http_max_connections_per_address,
            max_handshakes: args.ws_max_handshakes,
            max_handshakes_per_address: args.ws_max_handshakes_per_address,
        },
        trust_remote_ledger: args.trust_remote_ledger,
        #[cfg(feature = "fault-injection")]
        fault: args.inject_fault,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let node = Node::start(config).await?;
        tracing::info!(
            account = %node.account(),
            http = %node.local_addr(),
            "node running; Ctrl-C to stop"
        );
        shutdown_signal().await;
        tracing::info!("stopping");
        node.shutdown().await;
        Ok(())
    })
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async {
                match term.as_mut() {
                    Some(t) => { t.recv().await; }
                    None => std::future::pending::<()>().await,
                }
            } => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// `--write-replica-key`: the consensus seed of the node's identity, for its replica.
fn write_replica_key(
    args: &NodeArgs,
    key_source: &KeySourceArg,
    path: &std::path::Path,
) -> anyhow::Result<()> {
    let identity =
        crate::identity::Identity::open(&args.data_dir, key_source, args.dev.as_deref())?;
    let seed = identity.seed.consensus_seed();
    let hex = zeroize::Zeroizing::new(hex::encode(seed.as_slice()));
    sigil_keystore::write_secret_file(path, hex.as_bytes()).with_context(|| {
        format!(
            "cannot write the replica key to {} (it must not exist)",
            path.display()
        )
    })?;
    let public = identity.consensus_keypair().account_id();
    println!("{}", hex::encode(public.as_bytes()));
    Ok(())
}
