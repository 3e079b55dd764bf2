//! The engine over the validator transport: the channel adapter and a local network of
//! transports (shared by the transport tests and the benchmark).

use sigil_crypto::NodeSeed;
use sigil_primitives::{AccountId, Endpoint};
use sigil_transport::{Transport, TransportConfig, ValidatorInfo};

/// The adapter of the engine's channel to a transport session that the node uses too.
#[allow(unused_imports)] // Not every test binary that includes `common` uses it.
pub use sigil_mpc::TransportChannel;

/// Starts one transport per dev validator `names` on 127.0.0.1, all knowing each other.
pub async fn network(names: &[&str]) -> Vec<Transport> {
    let mut transports = Vec::new();
    let mut records = Vec::new();
    for name in names {
        let seed = NodeSeed::dev(name);
        let transport = Transport::new(
            seed.account_keypair(),
            seed.x25519_key(),
            TransportConfig::default(),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn({
            let transport = transport.clone();
            async move { transport.serve(listener).await }
        });
        records.push(ValidatorInfo {
            account: seed.account_keypair().account_id(),
            x25519: seed.x25519_key().public_key(),
            endpoint: Endpoint::new(format!("127.0.0.1:{port}")).unwrap(),
        });
        transports.push(transport);
    }
    for transport in &transports {
        transport.set_peers(records.clone());
    }
    transports
}

pub fn transport_of<'a>(transports: &'a [Transport], account: &AccountId) -> &'a Transport {
    transports.iter().find(|t| t.account() == *account).unwrap()
}
