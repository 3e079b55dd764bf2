//! Regenerates the committed test fixtures: a t-of-n secp256k1 network key (production
//! parameters) and aux data for the first n dev validators, by running the real DKG among them
//! in one process. Takes a minute or more (safe-prime generation); prints progress.
//!
//! `cargo run --release -p sigil-mpc --example make_fixtures -- DIR [THRESHOLD [SIGNERS]]`:
//! `crates/mpc/fixtures` is 3-of-5 (alice..eve), `crates/mpc/fixtures/2-of-4` is 2-of-4
//! (alice..dave).

use std::{collections::BTreeSet, path::PathBuf, time::Instant};

use sigil_crypto::NodeSeed;
use sigil_mpc::{Engine, MemoryChannel, SessionConfig};

/// The dev validators, as in the ledger's dev genesis.
const DEV_NAMES: [&str; 6] = ["alice", "bob", "charlie", "dave", "eve", "ferdie"];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "crates/mpc/fixtures".into()),
    );
    let number = |n: usize, default: usize| -> anyhow::Result<usize> {
        std::env::args()
            .nth(n)
            .map_or(Ok(default), |a| a.parse().map_err(anyhow::Error::from))
    };
    let threshold = number(2, 3)?;
    let count = number(3, 5)?;
    if !(2..=count).contains(&threshold) || count > DEV_NAMES.len() {
        anyhow::bail!("need 2 <= threshold <= signers <= {}", DEV_NAMES.len());
    }
    let names = &DEV_NAMES[..count];
    std::fs::create_dir_all(&dir)?;
    let engines: Vec<(&str, Engine)> = names
        .iter()
        .map(|name| {
            let config = SessionConfig::with_round_timeout(std::time::Duration::from_secs(1800));
            (
                *name,
                Engine::new(NodeSeed::dev(name).account_keypair(), config),
            )
        })
        .collect();
    let signers: BTreeSet<_> = engines.iter().map(|(_, engine)| engine.account()).collect();
    let mut channels = MemoryChannel::network(&signers.iter().copied().collect::<Vec<_>>());
    let session_id = [7u8; 32];

    println!(
        "generating a {threshold}-of-{} network key with production parameters",
        names.len()
    );
    let started = Instant::now();
    let ticker = tokio::spawn(async move {
        let mut interval = tokio::time::interval(std::time::Duration::from_secs(15));
        interval.tick().await;
        loop {
            interval.tick().await;
            println!("  … still running after {:.0?}", started.elapsed());
        }
    });
    let mut tasks = Vec::new();
    for (name, engine) in engines {
        let mut channel = channels
            .remove(&engine.account())
            .expect("every party has a channel");
        let signers = signers.clone();
        tasks.push(tokio::spawn(async move {
            let result = engine
                .generate_network_key(&session_id, &signers, threshold, &mut channel)
                .await;
            (name, result)
        }));
    }
    let mut key = None;
    for task in tasks {
        let (name, result) = task.await?;
        let (share, aux, stats) = result?;
        println!("  {name}: done, {:.1?} CPU", stats.cpu);
        let vk = share.verifying_key();
        if *key.get_or_insert(vk) != vk {
            anyhow::bail!("parties disagree on the network key");
        }
        std::fs::write(dir.join(format!("{name}.share")), share.to_bytes().expose())?;
        std::fs::write(dir.join(format!("{name}.aux")), aux.to_bytes().expose())?;
    }
    ticker.abort();
    let key = key.expect("at least two parties");
    std::fs::write(
        dir.join("network-key.txt"),
        format!(
            "threshold={threshold}\nsigners={}\nverifying_key={key}\n",
            names.join(",")
        ),
    )?;
    println!(
        "wrote fixtures to {} in {:.0?}; network key {key}",
        dir.display(),
        started.elapsed()
    );
    Ok(())
}
