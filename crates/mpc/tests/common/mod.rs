//! Shared helpers: the committed production fixtures and a way to run every party at once.

#![allow(dead_code)]

pub mod net;

use std::{collections::BTreeSet, future::Future, path::PathBuf, time::Duration};

use sigil_crypto::NodeSeed;
use sigil_mpc::{AuxData, Engine, KeyShare, MemoryChannel, SessionConfig, SignRequest};
use sigil_primitives::{AccountId, DerivationPath, VerifyingKey};

/// The fixture validators, as in the ledger's dev genesis.
pub const NAMES: [&str; 5] = ["alice", "bob", "charlie", "dave", "eve"];

pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// One fixture validator: its engine, 3-of-5 share and aux data.
#[derive(Clone)]
pub struct Validator {
    pub name: &'static str,
    pub engine: Engine,
    pub share: KeyShare,
    pub aux: AuxData,
}

impl Validator {
    pub fn account(&self) -> AccountId {
        self.engine.account()
    }

    /// This validator's part of a signing request.
    pub fn sign_request<'a>(
        &'a self,
        committee: &'a BTreeSet<AccountId>,
        path: &'a DerivationPath,
        prehash: &'a [u8; 32],
    ) -> SignRequest<'a> {
        SignRequest {
            share: &self.share,
            aux: &self.aux,
            committee,
            path,
            prehash,
        }
    }
}

pub fn engine(name: &str, round_timeout: Duration) -> Engine {
    Engine::new(
        NodeSeed::dev(name).account_keypair(),
        SessionConfig::with_round_timeout(round_timeout),
    )
}

/// Loads the committed fixtures.
pub fn validators() -> Vec<Validator> {
    NAMES
        .iter()
        .map(|name| {
            let share = std::fs::read(fixtures_dir().join(format!("{name}.share"))).unwrap();
            let aux = std::fs::read(fixtures_dir().join(format!("{name}.aux"))).unwrap();
            Validator {
                name,
                engine: engine(name, Duration::from_secs(120)),
                share: KeyShare::from_bytes(&share).unwrap(),
                aux: AuxData::from_bytes(&aux).unwrap(),
            }
        })
        .collect()
}

/// The network key recorded next to the fixtures.
pub fn recorded_network_key() -> VerifyingKey {
    let text = std::fs::read_to_string(fixtures_dir().join("network-key.txt")).unwrap();
    let hex = text
        .lines()
        .find_map(|line| line.strip_prefix("verifying_key="))
        .unwrap();
    serde_json::from_value(serde_json::Value::String(hex.to_string())).unwrap()
}

pub fn accounts<'a>(validators: impl IntoIterator<Item = &'a Validator>) -> BTreeSet<AccountId> {
    validators.into_iter().map(Validator::account).collect()
}

/// Runs `f` for each party concurrently over an in-memory network; results in input order.
pub async fn run_all<T, F, Fut>(parties: &[AccountId], f: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(usize, MemoryChannel) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    let mut channels = MemoryChannel::network(parties);
    let tasks: Vec<_> = parties
        .iter()
        .enumerate()
        .map(|(i, id)| tokio::spawn(f(i, channels.remove(id).unwrap())))
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    results
}
