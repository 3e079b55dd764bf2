//! Replicas in Commonware's deterministic runtime over its simulated network: reproducible
//! from the seed, with crashes and partitions.

use std::sync::Arc;
use std::time::Duration;

use commonware_cryptography::{Signer as _, ed25519};
use commonware_p2p::simulated::{self, Link, Network, Oracle};
use commonware_runtime::{
    Clock as _, Quota, Runner as _, Spawner as _, Supervisor as _, deterministic,
};
use commonware_utils::ordered::Set;
use commonware_utils::{NZU32, NZUsize, Probability};

use super::block::ConsensusBlock;
use super::engine::{CHANNELS, Channels, EngineConfig};
use crate::chain::Chain;
use crate::producer::Ledger;
use crate::types::{Call, SignedTransaction};

const REPLICAS: usize = 4;
const QUOTA: Quota = Quota::per_second(NZU32!(10_000));

fn link() -> Link {
    Link {
        latency: Duration::from_millis(10),
        jitter: Duration::from_millis(3),
        success_rate: Probability::new(1, 1).expect("probability"),
    }
}

/// The genesis replicas, then a validator that joins later.
const NAMES: [&str; REPLICAS + 1] = ["alice", "bob", "charlie", "dave", "eve"];

/// Blocks per epoch in these tests: short, so that every test crosses epochs.
const EPOCH_LENGTH: u64 = 20;

/// The consensus keys of the dev identities in [`NAMES`].
fn keys() -> Vec<ed25519::PrivateKey> {
    NAMES
        .iter()
        .map(|n| super::network::consensus_key(&sigil_crypto::NodeSeed::dev(n).consensus_seed()))
        .collect()
}

/// The dev genesis naming the four replicas (addresses unused on the simulated network).
fn genesis() -> crate::types::Genesis {
    let mut genesis = crate::node::dev_genesis_with_replicas(
        NAMES[..REPLICAS].iter().map(|n| (*n, "127.0.0.1:7000")),
    );
    genesis.epoch_length = EPOCH_LENGTH;
    genesis
}

/// A replica's ledger, with the directory that holds it and why it stopped, if it did.
struct Replica {
    ledger: Ledger,
    stopped: Arc<std::sync::Mutex<Option<String>>>,
    _dir: tempfile::TempDir,
}

impl Replica {
    fn head(&self) -> (u64, Vec<u8>) {
        let chain = self.ledger.read();
        (chain.head().height.0, chain.head().state_digest.clone())
    }

    fn digest_at(&self, height: u64) -> Vec<u8> {
        let chain = self.ledger.read();
        chain
            .header(height)
            .expect("reads")
            .expect("stored")
            .state_digest
    }
}

fn open_ledger(check: Arc<crate::state::ProgramValidator>) -> (Ledger, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = Chain::open(dir.path(), Some(&genesis()), check, None).expect("chain");
    (Ledger::new(chain), dir)
}

async fn start_replica(
    context: &deterministic::Context,
    oracle: &Oracle<ed25519::PublicKey, deterministic::Context>,
    keys: &[ed25519::PrivateKey],
    index: usize,
) -> Replica {
    let check = Arc::new(|b: &[u8]| crate::node::component_header_check(b));
    start_replica_with(context, oracle, keys, index, check).await
}

/// A replica whose program check is `check`: another build's rules, if it differs.
async fn start_replica_with(
    context: &deterministic::Context,
    oracle: &Oracle<ed25519::PublicKey, deterministic::Context>,
    keys: &[ed25519::PrivateKey],
    index: usize,
    check: Arc<crate::state::ProgramValidator>,
) -> Replica {
    let (ledger, dir) = open_ledger(check);
    let key = keys[index].clone();
    let control = oracle.control(key.public_key());
    let mut registered = Vec::new();
    for channel in CHANNELS {
        registered.push(control.register(channel, QUOTA).await.expect("registers"));
    }
    let registered: [_; 6] = registered.try_into().expect("six channels");
    let channels = Channels::from_ordered(registered);
    let genesis = {
        let chain = ledger.read();
        let digest = chain
            .head()
            .state_digest
            .as_slice()
            .try_into()
            .expect("32 bytes");
        ConsensusBlock::genesis(&chain.genesis().expect("genesis"), digest)
    };
    let config = EngineConfig {
        key,
        namespace: EngineConfig::namespace_for(crate::node::DEV_CHAIN_ID),
        genesis,
        block_time: Duration::from_millis(100),
        leader_timeout: Duration::from_secs(1),
        partition: format!("replica-{index}"),
        reporter: sigil_crypto::AccountKeypair::consensus_reporter(
            &sigil_crypto::NodeSeed::dev(NAMES[index]).consensus_seed(),
        ),
    };
    let source = super::engine::start(
        context.child("replica").with_attribute("index", index),
        ledger.clone(),
        config,
        channels,
        oracle.socket_manager(),
        control,
    )
    .await;
    let runner = ledger.clone();
    let stopped = Arc::new(std::sync::Mutex::new(None));
    let outcome = stopped.clone();
    context
        .child("ledger")
        .with_attribute("index", index)
        .spawn(move |_| async move {
            let result = runner.run(source).await;
            *outcome.lock().expect("lock") = Some(match result {
                Ok(()) => "stopped".to_owned(),
                Err(e) => e.to_string(),
            });
        });
    Replica {
        ledger,
        stopped,
        _dir: dir,
    }
}

async fn network(
    context: &deterministic::Context,
    keys: &[ed25519::PrivateKey],
) -> Oracle<ed25519::PublicKey, deterministic::Context> {
    let (network, oracle) = Network::new_with_peers(
        context.child("network"),
        simulated::Config {
            max_size: 16 << 20,
            max_peers_per_set: NZUsize!(2 * REPLICAS),
            disconnect_on_block: true,
            tracked_peer_sets: NZUsize!(1),
        },
        keys.iter().map(|k| k.public_key()),
    )
    .await;
    network.start();
    oracle
}

async fn link_all(
    oracle: &Oracle<ed25519::PublicKey, deterministic::Context>,
    keys: &[ed25519::PrivateKey],
    among: &[usize],
) {
    for &a in among {
        for &b in among {
            if a != b {
                let _ = oracle
                    .add_link(keys[a].public_key(), keys[b].public_key(), link())
                    .await;
            }
        }
    }
}

/// The simulated network with the links among `linked`, and honest replicas `0..started`.
async fn start_network(
    context: &deterministic::Context,
    linked: &[usize],
    started: usize,
) -> (
    Vec<ed25519::PrivateKey>,
    Oracle<ed25519::PublicKey, deterministic::Context>,
    Vec<Replica>,
) {
    let keys = keys();
    let oracle = network(context, &keys).await;
    link_all(&oracle, &keys, linked).await;
    let mut replicas = Vec::new();
    for i in 0..started {
        replicas.push(start_replica(context, &oracle, &keys, i).await);
    }
    (keys, oracle, replicas)
}

fn transfer(name: &str, nonce: u64) -> SignedTransaction {
    let key = sigil_crypto::NodeSeed::dev(name).account_keypair();
    let to = crate::node::dev_account("eve");
    crate::tx::sign(
        &key,
        crate::node::DEV_CHAIN_ID,
        nonce,
        Call::Transfer {
            to,
            amount: 1 + nonce,
        },
    )
}

/// Waits until every replica in `among` has executed `height`.
async fn until_height(context: &deterministic::Context, replicas: &[&Replica], height: u64) {
    while replicas.iter().any(|r| r.head().0 < height) {
        context.sleep(Duration::from_millis(50)).await;
    }
}

fn assert_agree(replicas: &[&Replica], height: u64) {
    let digests: Vec<Vec<u8>> = replicas.iter().map(|r| r.digest_at(height)).collect();
    assert!(
        digests.windows(2).all(|w| w[0] == w[1]),
        "replicas disagree at {height}: {digests:?}"
    );
    let headers: Vec<_> = replicas
        .iter()
        .map(|r| r.ledger.read().header(height).expect("reads"))
        .collect();
    assert!(
        headers.windows(2).all(|w| w[0] == w[1]),
        "headers differ at {height}"
    );
}

#[test]
fn three_of_four_replicas_order_transactions_while_one_is_down() {
    let runner = deterministic::Runner::timed(Duration::from_secs(120));
    runner.start(|context| async move {
        let (_keys, _oracle, replicas) = start_network(&context, &[0, 1, 2], 3).await;
        // Submitted to different replicas: gossip brings each to whoever leads.
        let mut waiters = Vec::new();
        for nonce in 0..3 {
            for (i, name) in ["alice", "bob", "charlie"].iter().enumerate() {
                let stx = transfer(name, nonce);
                let ledger = &replicas[i].ledger;
                waiters.push(ledger.pool.submit(&ledger.read(), stx).expect("admitted"));
            }
        }
        for waiter in waiters {
            let outcome = waiter.await.expect("included");
            assert!(outcome.included && outcome.result.is_ok(), "{outcome:?}");
        }
        let all: Vec<&Replica> = replicas.iter().collect();
        let height = replicas[0].head().0 + 2;
        until_height(&context, &all, height).await;
        assert_agree(&all, height);
        let eve = crate::node::dev_account("eve");
        let balances: Vec<u64> = all
            .iter()
            .map(|r| r.ledger.read().state().balance(&eve))
            .collect();
        assert!(balances.windows(2).all(|w| w[0] == w[1]), "{balances:?}");
        let bob_nonce = all[2]
            .ledger
            .read()
            .state()
            .nonce(&crate::node::dev_account("bob"));
        assert_eq!(bob_nonce, 3, "each transaction included once");
    });
}

#[test]
fn a_partitioned_replica_catches_up_once_healed() {
    let runner = deterministic::Runner::timed(Duration::from_secs(300));
    runner.start(|context| async move {
        let (keys, oracle, replicas) = start_network(&context, &[0, 1, 2, 3], REPLICAS).await;
        let all: Vec<&Replica> = replicas.iter().collect();
        until_height(&context, &all, 3).await;
        // Cut replica 3 off; the other three keep finalizing.
        for i in 0..3 {
            for (a, b) in [(i, 3), (3, i)] {
                oracle
                    .remove_link(keys[a].public_key(), keys[b].public_key())
                    .await
                    .expect("unlinks");
            }
        }
        let cut = replicas[3].head().0;
        let ledger = &replicas[0].ledger;
        let waiter = ledger
            .pool
            .submit(&ledger.read(), transfer("alice", 0))
            .expect("admitted");
        assert!(waiter.await.expect("included").included);
        let majority = &all[..3];
        until_height(&context, majority, cut + 20).await;
        assert!(
            replicas[3].head().0 <= cut + 1,
            "the cut-off replica cannot finalize alone"
        );
        link_all(&oracle, &keys, &[0, 1, 2, 3]).await;
        let target = replicas[0].head().0 + 5;
        until_height(&context, &all, target).await;
        eprintln!("partition: cut at {cut}, healed and agreed at {target}");
        assert_agree(&all, target);
        assert_agree(&all, cut + 10);
    });
}

#[test]
fn a_replica_signing_conflicting_votes_is_recorded_as_a_proven_offence() {
    use commonware_consensus::simplex::mocks::conflicter::{Config, Conflicter};
    use commonware_cryptography::sha256::Sha256;
    let runner = deterministic::Runner::timed(Duration::from_secs(120));
    runner.start(|context| async move {
        let (keys, oracle, replicas) = start_network(&context, &[0, 1, 2, 3], 3).await;
        // dave answers every notarize and finalize with two conflicting votes.
        let control = oracle.control(keys[3].public_key());
        let votes = control
            .register(CHANNELS[0], QUOTA)
            .await
            .expect("registers");
        let participants = Set::from_iter_dedup(keys[..REPLICAS].iter().map(|k| k.public_key()));
        let namespace = EngineConfig::namespace_for(crate::node::DEV_CHAIN_ID);
        let scheme = super::Scheme::signer(&namespace, participants, keys[3].clone())
            .expect("a participant");
        // Votes travel on per-epoch subchannels; dave conflicts in epoch 0.
        let (mux, mut subchannels) =
            commonware_p2p::utils::mux::Muxer::new(context.child("mux"), votes.0, votes.1);
        mux.start();
        let votes = subchannels.register(0).await.expect("epoch 0");
        Conflicter::<_, _, Sha256>::new(context.child("conflicter"), Config { scheme })
            .start(votes);
        let dave = crate::node::dev_account("dave");
        let honest: Vec<&Replica> = replicas.iter().collect();
        let offences_of = |r: &Replica| -> Vec<crate::types::OffenceRecord> {
            let chain = r.ledger.read();
            let offences = &chain.state().offences;
            offences
                .iter()
                .filter(|(_, o)| o.offender == dave)
                .map(|(_, o)| o.clone())
                .collect()
        };
        let recorded = loop {
            if let Some(offence) = offences_of(honest[0]).into_iter().next() {
                break offence;
            }
            context.sleep(Duration::from_millis(100)).await;
        };
        assert!(recorded.proven);
        assert_eq!(recorded.kind, crate::types::FaultKind::ConflictingVotes);
        let height = recorded.recorded.expect("recorded").0 + 3;
        until_height(&context, &honest, height).await;
        assert_agree(&honest, height);
        // From the next epoch on, dave's replica is out of the set, and the others go on.
        let next = (height / EPOCH_LENGTH + 1) * EPOCH_LENGTH;
        until_height(&context, &honest, next + 3).await;
        assert_agree(&honest, next + 3);
        let chain = honest[0].ledger.read();
        let set = chain
            .state()
            .consensus_set(next / EPOCH_LENGTH)
            .expect("fixed");
        assert_eq!(set.len(), 3);
        assert!(set.iter().all(|r| r.account != dave));
        drop(chain);
        eprintln!(
            "dave's conflicting votes proven at #{}; {} records by then",
            height - 3,
            offences_of(honest[1]).len()
        );
    });
}

#[test]
fn a_replica_whose_state_diverges_stops_instead_of_serving_it() {
    let runner = deterministic::Runner::timed(Duration::from_secs(120));
    runner.start(|context| async move {
        let (keys, oracle, mut replicas) = start_network(&context, &[0, 1, 2, 3], 3).await;
        // dave runs other rules: it refuses every program the others store.
        let refuse = Arc::new(|_: &[u8]| Err::<(), String>("refused by this build".into()));
        replicas.push(start_replica_with(&context, &oracle, &keys, 3, refuse).await);
        let all: Vec<&Replica> = replicas.iter().collect();
        until_height(&context, &all, 2).await;
        let alice = sigil_crypto::NodeSeed::dev("alice").account_keypair();
        let call = Call::StoreProgram {
            bytecode: b"\0asm\x0d\x00\x01\x00".to_vec(),
            config_schema: vec![],
            aux_schema: vec![],
            oracle_keys: vec![],
            version: 1,
        };
        let ledger = &replicas[0].ledger;
        let nonce = ledger.pool.next_nonce(&ledger.read(), &alice.account_id());
        let stx = crate::tx::sign(&alice, crate::node::DEV_CHAIN_ID, nonce, call);
        let waiter = ledger.pool.submit(&ledger.read(), stx).expect("admitted");
        let outcome = waiter.await.expect("included");
        assert!(outcome.result.is_ok(), "the others store it: {outcome:?}");
        let stored_at = replicas[0].head().0;
        loop {
            if let Some(reason) = replicas[3].stopped.lock().expect("lock").clone() {
                assert!(reason.contains("diverged"), "{reason}");
                eprintln!("dave stopped: {reason}");
                break;
            }
            context.sleep(Duration::from_millis(50)).await;
        }
        let honest = &all[..3];
        until_height(&context, honest, stored_at + 5).await;
        assert_agree(honest, stored_at + 5);
        assert!(
            honest
                .iter()
                .all(|r| r.stopped.lock().expect("lock").is_none())
        );
        assert!(
            replicas[3].head().0 <= stored_at + 1,
            "dave served nothing past it"
        );
    });
}

/// Submits `call` from dev account `name` to `replica` and waits until it is final.
async fn submit(replica: &Replica, name: &str, call: Call) -> crate::chain::TxOutcome {
    let key = sigil_crypto::NodeSeed::dev(name).account_keypair();
    let ledger = &replica.ledger;
    let nonce = ledger.pool.next_nonce(&ledger.read(), &key.account_id());
    let stx = crate::tx::sign(&key, crate::node::DEV_CHAIN_ID, nonce, call);
    let waiter = ledger.pool.submit(&ledger.read(), stx).expect("admitted");
    waiter.await.expect("included")
}

/// The first epoch whose consensus set `replica`'s ledger has fixed with `name`'s replica in it.
fn epoch_with(replica: &Replica, name: &str) -> Option<u64> {
    let account = crate::node::dev_account(name);
    let chain = replica.ledger.read();
    let state = chain.state();
    (0..=state.epoch_of(chain.head().height.0) + 1).find(|&e| {
        state
            .consensus_set(e)
            .is_some_and(|set| set.iter().any(|r| r.account == account))
    })
}

#[test]
fn a_validator_joins_and_a_replica_leaves_at_an_epoch_boundary() {
    let runner = deterministic::Runner::timed(Duration::from_secs(600));
    runner.start(|context| async move {
        let (keys, oracle, mut replicas) =
            start_network(&context, &[0, 1, 2, 3, 4], REPLICAS).await;
        // eve validates and names her replica; dave's replica leaves.
        let eve = sigil_crypto::NodeSeed::dev("eve");
        let validate = Call::Validate {
            x25519: eve.x25519_key().public_key(),
            endpoint: sigil_primitives::Endpoint::new("127.0.0.1:9000").expect("endpoint"),
            stake: crate::types::Parameters::default().min_stake,
        };
        assert!(submit(&replicas[0], "eve", validate).await.result.is_ok());
        let change = super::network::change_replica_call(
            &eve.consensus_seed(),
            crate::node::DEV_CHAIN_ID,
            &crate::node::dev_account("eve"),
            "127.0.0.1:7004",
        );
        let outcome = submit(&replicas[1], "eve", change).await;
        assert!(outcome.result.is_ok(), "{outcome:?}");
        assert!(
            submit(&replicas[2], "dave", Call::Leave)
                .await
                .result
                .is_ok()
        );
        // eve's replica starts from genesis and catches up through backfill.
        replicas.push(start_replica(&context, &oracle, &keys, 4).await);
        let joined = loop {
            if let Some(epoch) = epoch_with(&replicas[0], "eve") {
                break epoch;
            }
            context.sleep(Duration::from_millis(100)).await;
        };
        let set = {
            let chain = replicas[0].ledger.read();
            chain.state().consensus_set(joined).expect("fixed").to_vec()
        };
        let names: Vec<_> = set.iter().map(|r| r.account).collect();
        assert!(
            !names.contains(&crate::node::dev_account("dave")),
            "dave left"
        );
        assert_eq!(set.len(), REPLICAS);
        let start = joined * EPOCH_LENGTH;
        let voters: Vec<&Replica> = [1, 2, 4].iter().map(|&i| &replicas[i]).collect();
        until_height(&context, &voters, start + 2).await;
        // Cut alice off: bob, charlie and eve are 3 of the 4, so blocks are final only if
        // eve votes.
        for i in [1, 2, 3, 4] {
            for (a, b) in [(0, i), (i, 0)] {
                let _ = oracle
                    .remove_link(keys[a].public_key(), keys[b].public_key())
                    .await;
            }
        }
        let cut = voters.iter().map(|r| r.head().0).max().expect("three");
        until_height(&context, &voters, cut + 10).await;
        assert_agree(&voters, cut + 10);
        assert_eq!(epoch_with(&replicas[4], "eve"), Some(joined));
        eprintln!(
            "eve joined at epoch {joined} (height {start}); bob, charlie and eve final to {}",
            cut + 10
        );
    });
}
