//! Helpers shared by the end-to-end tests that run a devnet: dev accounts, the head,
//! deploying and registering through the ledger, requests with a chosen committee, and fault
//! injection.

#![allow(dead_code, missing_docs)] // Each test binary uses its own subset.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use sigil_client::rpc::LedgerApiClient as _;
use sigil_client::types::{Call, Event, OffenceRecord, Parameters};
use sigil_client::{LedgerClient, NodeClient, SealedRequest, seal_request};
use sigil_crypto::{AccountKeypair, CommitteeSeed, NodeSeed, select_committee};
use sigil_primitives::request::{RelayResponse, SignatureRequest};
use sigil_primitives::{
    AccountId, HashingAlgorithm, KeyScheme, ProgramId, ProgramInstance, ProgramList, VerifyingKey,
};

/// The `sigil` binary under test.
pub const SIGIL: &str = env!("CARGO_BIN_EXE_sigil");

/// A test's scratch directory, removed when the test passes and kept (its path printed) when
/// it panics or `SIGIL_KEEP_TEST_DIRS` is set, so the devnet's logs can be read.
pub struct TestDir(Option<tempfile::TempDir>);

impl TestDir {
    /// A new scratch directory.
    pub fn new() -> Self {
        Self(Some(tempfile::tempdir().expect("a temporary directory")))
    }

    /// Its path.
    pub fn path(&self) -> &std::path::Path {
        self.0.as_ref().expect("present until dropped").path()
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let keep = std::thread::panicking() || std::env::var_os("SIGIL_KEEP_TEST_DIRS").is_some();
        if keep && let Some(dir) = self.0.take() {
            eprintln!("the test's directory is kept at {}", dir.keep().display());
        }
    }
}

/// The repository root.
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A committed example program from `programs/dist`.
pub fn program_bytes(name: &str) -> Vec<u8> {
    std::fs::read(workspace().join(format!("programs/dist/{name}.wasm"))).unwrap()
}

/// A development account (`alice` is governance and funded).
pub fn dev(name: &str) -> AccountKeypair {
    NodeSeed::dev(name).account_keypair()
}

/// The ledger's head height.
pub async fn head(ledger: &LedgerClient) -> u64 {
    ledger.rpc().head().await.unwrap().height.0
}

/// Stores the example program `name` as alice and returns its id.
pub async fn deploy(ledger: &LedgerClient, name: &str) -> ProgramId {
    let call = Call::StoreProgram {
        bytecode: program_bytes(name),
        config_schema: vec![],
        aux_schema: vec![],
        oracle_keys: vec![],
        version: 1,
    };
    let result = ledger.submit(&dev("alice"), call, true).await.unwrap();
    result
        .events
        .iter()
        .find_map(|e| match e {
            Event::ProgramStored { program, .. } => Some(*program),
            _ => None,
        })
        .expect("ProgramStored event")
}

/// Registers an ECDSA key for `owner` with `programs` (id and configuration) and returns it.
pub async fn register(
    ledger: &LedgerClient,
    owner: &AccountKeypair,
    programs: &[(ProgramId, &str)],
) -> VerifyingKey {
    register_scheme(ledger, owner, programs, KeyScheme::EcdsaSecp256k1).await
}

/// Registers a key of `scheme` for `owner` with `programs` and returns it.
pub async fn register_scheme(
    ledger: &LedgerClient,
    owner: &AccountKeypair,
    programs: &[(ProgramId, &str)],
    scheme: KeyScheme,
) -> VerifyingKey {
    let list = ProgramList::new(
        programs
            .iter()
            .map(|(program, config)| ProgramInstance {
                program: *program,
                config: config.as_bytes().to_vec(),
            })
            .collect(),
    )
    .unwrap();
    let result = ledger
        .submit(
            owner,
            Call::Register {
                programs: list,
                public: false,
                scheme,
            },
            true,
        )
        .await
        .unwrap();
    result
        .events
        .iter()
        .find_map(|e| match e {
            Event::Registered { verifying_key, .. } => Some(*verifying_key),
            _ => None,
        })
        .expect("Registered event")
}

/// The sum of the Prometheus samples of `metric` whose labels contain `labels` (e.g.
/// `path="prepared"`) at the node at `endpoint` (`host:port`).
pub async fn metric_sum(endpoint: &str, metric: &str, labels: &str) -> f64 {
    let text = reqwest::get(format!("http://{endpoint}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|line| line.starts_with(&format!("{metric}{{")) && line.contains(labels))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Waits until every scheme has its network key on the ledger.
pub async fn wait_scheme_keys(ledger: &LedgerClient) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let set = ledger.rpc().signer_set().await.unwrap();
        if KeyScheme::ALL
            .iter()
            .all(|s| set.network_key_of(*s).is_some())
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the scheme keys never appeared: {set:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Changes the ledger parameters as governance (alice).
pub async fn set_parameters(ledger: &LedgerClient, change: impl FnOnce(&mut Parameters)) {
    let mut parameters = ledger.rpc().parameters().await.unwrap();
    change(&mut parameters);
    ledger
        .submit(&dev("alice"), Call::SetParameters { parameters }, true)
        .await
        .unwrap();
}

pub async fn stake(ledger: &LedgerClient, account: AccountId) -> u64 {
    ledger
        .rpc()
        .validator(account)
        .await
        .unwrap()
        .unwrap()
        .stake
}

pub async fn offences(ledger: &LedgerClient) -> Vec<OffenceRecord> {
    ledger.rpc().offences().await.unwrap()
}

/// Waits until no signer is excluded or in a dispute (so no accusation counts either), so the
/// next case can put any signer in a committee.
pub async fn wait_exclusions_expire(ledger: &LedgerClient) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let set = ledger.rpc().signer_set().await.unwrap();
        if set.excludable_at(head(ledger).await).is_empty() {
            // Let every node see the head where it expired.
            tokio::time::sleep(Duration::from_secs(1)).await;
            return;
        }
        assert!(Instant::now() < deadline, "exclusions never expired");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A sealed request whose first committee contains `members`.
pub async fn request_with(
    ledger: &LedgerClient,
    user: &AccountKeypair,
    key: VerifyingKey,
    members: &[AccountId],
) -> (SignatureRequest, SealedRequest) {
    let relayer = &ledger.relayers().await.unwrap()[0];
    loop {
        let request = SignatureRequest {
            verifying_key: key,
            block: head(ledger).await,
            hashing: HashingAlgorithm::Keccak256,
            aux_data: vec![vec![]],
            message: sigil_crypto::secret::random_array::<16>().to_vec(),
        };
        let sealed = seal_request(user, relayer, &request).unwrap();
        let set = ledger.rpc().signer_set().await.unwrap();
        let block = ledger.rpc().block(request.block).await.unwrap().unwrap();
        let committee = select_committee(
            &set.signers.iter().copied().collect(),
            &set.sidelined_at(request.block),
            usize::from(set.threshold),
            &CommitteeSeed {
                block_hash: &sigil_client::header::header_hash(&block.header),
                request_digest: &sealed.digest,
                attempt: 0,
            },
        )
        .unwrap();
        if members.iter().all(|m| committee.contains(m)) {
            return (request, sealed);
        }
    }
}

pub async fn relayer(ledger: &LedgerClient) -> NodeClient {
    NodeClient::new(ledger.relayers().await.unwrap()[0].endpoint.as_str())
}

/// Posts `sealed` to the relayer and checks the signature and every attestation.
pub async fn sign_checked(
    ledger: &LedgerClient,
    request: &SignatureRequest,
    sealed: &SealedRequest,
) -> RelayResponse {
    let response = relayer(ledger)
        .await
        .relay(&sealed.envelope)
        .await
        .expect("the user still gets a signature");
    sigil_client::verify_response(sealed, request, &response).expect("a valid signature");
    response
}

pub async fn set_fault(node: &NodeClient, fault: Option<&str>) {
    let answer = reqwest::Client::new()
        .post(format!("{}/v1/admin/fault", node.base_url()))
        .json(&serde_json::json!({ "fault": fault }))
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{answer:?}");
}

/// A devnet of five validators with 300 ms blocks: alice…dave the 2-of-4 signers from the
/// fixture shares (no DKG), eve the relayer; every node gets `node_args` too. Returns it with
/// a key of bob's registered under `message-size` (at most 1,024 bytes), once the ledger has
/// the parameters `change` sets.
pub async fn fixture_devnet(
    dir: &std::path::Path,
    node_args: &[&str],
    change: impl FnOnce(&mut Parameters),
) -> (sigil::devnet::Devnet, VerifyingKey) {
    fixture_devnet_of(5, dir, node_args, change).await
}

/// The configuration of [`fixture_devnet_of`]: alice…dave the 2-of-4 signers from the fixture
/// shares, 300 ms blocks.
pub fn fixture_config(
    validators: usize,
    dir: &std::path::Path,
    node_args: &[&str],
) -> sigil::devnet::DevnetConfig {
    let mut config = sigil::devnet::DevnetConfig::new(SIGIL, dir);
    config.validators = validators;
    config.signers = 4;
    config.threshold = 2;
    config.block_time = Duration::from_millis(300);
    config.key_share_fixtures = Some(workspace().join("crates/mpc/fixtures/2-of-4"));
    config.extra_node_args = node_args.iter().map(|a| a.to_string()).collect();
    config
}

/// [`fixture_devnet`] with `validators` validators: the ones after eve relay too.
pub async fn fixture_devnet_of(
    validators: usize,
    dir: &std::path::Path,
    node_args: &[&str],
    change: impl FnOnce(&mut Parameters),
) -> (sigil::devnet::Devnet, VerifyingKey) {
    let config = fixture_config(validators, dir, node_args);
    let devnet = sigil::devnet::Devnet::start(config).await.expect("devnet");
    let ledger = devnet.client();
    set_parameters(ledger, change).await;
    let program = deploy(ledger, "message-size").await;
    let key = register(ledger, &dev("bob"), &[(program, r#"{"max_length": 1024}"#)]).await;
    (devnet, key)
}
