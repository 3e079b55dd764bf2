//! Helpers shared by the end-to-end tests that run a devnet: dev accounts, the head, and
//! deploying and registering through the ledger.

#![allow(dead_code, missing_docs)] // Each test binary uses its own subset.

use std::path::PathBuf;

use sigil_client::LedgerClient;
use sigil_client::rpc::LedgerApiClient as _;
use sigil_client::types::{Call, Event, Parameters};
use sigil_crypto::{AccountKeypair, NodeSeed};
use sigil_primitives::{ProgramId, ProgramInstance, ProgramList, VerifyingKey};

/// The `sigil` binary under test.
pub const SIGIL: &str = env!("CARGO_BIN_EXE_sigil");

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

/// Registers a key for `owner` with `programs` (id and configuration) and returns it.
pub async fn register(
    ledger: &LedgerClient,
    owner: &AccountKeypair,
    programs: &[(ProgramId, &str)],
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
        .submit(owner, Call::Register { programs: list }, true)
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

/// Changes the ledger parameters as governance (alice).
pub async fn set_parameters(ledger: &LedgerClient, change: impl FnOnce(&mut Parameters)) {
    let mut parameters = ledger.rpc().parameters().await.unwrap();
    change(&mut parameters);
    ledger
        .submit(&dev("alice"), Call::SetParameters { parameters }, true)
        .await
        .unwrap();
}
