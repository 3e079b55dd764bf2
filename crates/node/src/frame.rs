//! The attacker's side of blame (feature `fault-injection`): a node told `frame:<victim>`
//! signs honestly, keeps what the victim sends it, and after every session shared with the
//! victim files false reports against it with whatever it holds: the victim's real signed
//! messages as evidence of each offence kind, its broadcasts paired across parts, rounds and
//! sessions, a bare accusation, the same report again, and a report on a session the victim
//! was not in. The ledger must refuse every one but the bare accusation, which only disputes.

use std::sync::Arc;

use sigil_ledger_api::types::{Call, FaultKind, SessionTicket};
use sigil_mpc::{InjectedFault, SessionStats, forgeries};

use crate::node::Inner;

/// What a framer keeps between sessions.
#[derive(Default)]
pub(crate) struct FrameMemory {
    /// The victim's messages of the last shared session.
    earlier: Vec<Vec<u8>>,
    /// The ticket of the last session the victim was not in.
    without_victim: Option<SessionTicket>,
}

/// One false report: which attack, the ticket, the kind, the evidence.
type Report = (&'static str, SessionTicket, FaultKind, Vec<u8>);

impl Inner {
    /// After a session this node signed in (`ticket`, `stats`): when it is told to frame a
    /// member of it, files the false reports, one after another, in the background.
    pub(crate) fn frame_after(self: &Arc<Self>, ticket: &SessionTicket, stats: &SessionStats) {
        let victim = match &*self.fault.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(InjectedFault::Frame(victim)) => *victim,
            _ => return,
        };
        let mut memory = self.frame_memory.lock().unwrap_or_else(|e| e.into_inner());
        if !ticket.committee.contains(&victim) {
            memory.without_victim = Some(ticket.clone());
            return;
        }
        let heard: Vec<Vec<u8>> = stats
            .heard
            .iter()
            .filter(|(from, _)| *from == victim)
            .map(|(_, bytes)| bytes.clone())
            .collect();
        let earlier = std::mem::replace(&mut memory.earlier, heard.clone());
        let mut reports: Vec<Report> = forgeries(&heard, &earlier)
            .into_iter()
            .map(|f| (f.variant, ticket.clone(), f.kind, f.evidence))
            .collect();
        reports.push((
            "replayed-report",
            ticket.clone(),
            FaultKind::Unresponsive,
            vec![],
        ));
        if let Some(other) = memory.without_victim.clone() {
            let kind = FaultKind::Unresponsive;
            reports.push(("session-without-the-victim", other, kind, vec![]));
        }
        drop(memory);
        let inner = self.clone();
        tokio::spawn(async move { inner.file_false_reports(victim, reports).await });
    }

    async fn file_false_reports(&self, victim: sigil_primitives::AccountId, reports: Vec<Report>) {
        for (variant, ticket, kind, evidence) in reports {
            let call = Call::ReportOffence {
                ticket,
                offender: victim,
                kind,
                evidence,
            };
            let outcome = match self.submit(call).await {
                Ok(()) => "accepted",
                Err(error) => {
                    tracing::info!(%victim, variant, kind = kind.as_str(), %error, "false report refused");
                    "refused"
                }
            };
            tracing::warn!(%victim, variant, kind = kind.as_str(), outcome, "false report filed");
            metrics::counter!("sigil_node_frame_reports_total", "variant" => variant, "outcome" => outcome)
                .increment(1);
        }
    }
}
