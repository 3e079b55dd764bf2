//! Mempool gossip: a transaction admitted by one replica's RPC reaches the others' pools, so
//! whichever replica leads next can include it.

use commonware_p2p::{Receiver, Recipients, Sender};
use tokio::sync::mpsc;

use crate::producer::Ledger;
use crate::types::SignedTransaction;

/// Sends what this replica's pool admits to the others, and admits what they send.
pub async fn run<S, R>(
    ledger: Ledger,
    mut outgoing: mpsc::UnboundedReceiver<SignedTransaction>,
    (mut sender, mut receiver): (S, R),
) where
    S: Sender,
    R: Receiver<PublicKey = S::PublicKey>,
{
    loop {
        tokio::select! {
            stx = outgoing.recv() => {
                let Some(stx) = stx else { return };
                sender.send(Recipients::All, crate::tx::encode(&stx), false);
            }
            message = receiver.recv() => {
                let Ok((peer, bytes)) = message else { return };
                admit(&ledger, &peer, bytes.as_ref());
            }
        }
    }
}

fn admit(ledger: &Ledger, peer: &impl std::fmt::Display, bytes: &[u8]) {
    let Ok(stx) = crate::tx::decode::<SignedTransaction>(bytes) else {
        tracing::debug!(%peer, "gossiped transaction does not decode");
        metrics::counter!("ledger_gossip_received_total", "outcome" => "undecodable").increment(1);
        return;
    };
    let admitted = ledger.pool.admit_gossiped(&ledger.read(), stx);
    let outcome = match &admitted {
        Ok(()) => "admitted",
        // Often only a race: the transaction was included, or arrived twice.
        Err(error) => {
            tracing::trace!(%peer, %error, "gossiped transaction refused");
            "refused"
        }
    };
    metrics::counter!("ledger_gossip_received_total", "outcome" => outcome).increment(1);
}
