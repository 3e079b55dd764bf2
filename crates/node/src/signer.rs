//! The signer path (`POST /v1/sign`): a committee member checks the forwarded request from
//! ledger state alone, runs the threshold signing session with the rest of the committee and
//! attests the signature.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use axum::http::StatusCode;
use sigil_crypto::request::{attest, sign_session_id};
use sigil_crypto::{Envelope, OpenPolicy, verify_ecdsa, verify_signed_plaintext};
use sigil_primitives::AccountId;
use sigil_primitives::request::{Attestation, ForwardedRequest, SignerResponse};
use sigil_transport::SessionId;

use sigil_client::rpc::LedgerApiClient as _;
use sigil_ledger::types::{Call, OffenceKind, SessionTicket, SignerSet};
use sigil_mpc::{FaultKind, MpcError, SessionFailure};
use sigil_primitives::BlockNumber;

use sigil_mpc::TransportChannel;
use crate::checks::Checked;
use crate::error::ApiError;
use crate::node::Inner;
use crate::relay::{MAX_ENVELOPE_AGE_MS, committee_for};
use crate::view::View;

impl Inner {
    /// Runs the signer path for a relayer's envelope.
    pub(crate) async fn sign(
        self: &Arc<Self>,
        envelope: Envelope,
    ) -> Result<SignerResponse, ApiError> {
        let received = Instant::now();
        let outer = sigil_crypto::open(
            &envelope,
            &self.x25519,
            &OpenPolicy::fresh_within(MAX_ENVELOPE_AGE_MS),
        )?;
        let view = self.view();
        let relayer = view.validators.get(&outer.sender).cloned().ok_or_else(|| {
            ApiError::forbidden(
                "not_a_validator",
                format!(
                    "{} is not a validator; only validators may call /v1/sign",
                    outer.sender
                ),
            )
        })?;
        let me = self.me();
        if !view.is_signer(&me) {
            return Err(ApiError::forbidden(
                "not_a_signer",
                "this node is not a signer",
            ));
        }
        let key = self
            .held_key()
            .filter(|k| {
                view.signer_set.network_key == Some(k.share.verifying_key())
                    && k.share.holders()
                        == &view
                            .signer_set
                            .signers
                            .iter()
                            .copied()
                            .collect::<BTreeSet<_>>()
            })
            .ok_or_else(|| {
                ApiError::not_ready("this signer holds no share of the current network key")
            })?;
        self.first_sighting(
            *outer.request_id.as_bytes(),
            "this forwarded request was already received",
        )?;
        let forwarded = ForwardedRequest::decode(&outer.payload)
            .map_err(|e| ApiError::bad_request("malformed_request", e.to_string()))?;
        let user = verify_signed_plaintext(forwarded.user_plaintext)?;
        if user.signed_for != relayer.x25519 {
            return Err(ApiError::forbidden(
                "recipient_mismatch",
                "the user's request was signed for another node than the relayer that forwarded it",
            ));
        }
        let age = sigil_crypto::envelope::now_ms().saturating_sub(user.timestamp_ms);
        if age > MAX_ENVELOPE_AGE_MS * 2 {
            return Err(ApiError::bad_request(
                "expired",
                format!("the user's request is {age} ms old"),
            ));
        }
        // A retry names the block the relayer checked at attempt 0; its age is bounded by the
        // user's envelope timestamp (above) instead of the block window.
        let window = if forwarded.attempt == 0 {
            self.config.request_window
        } else {
            u64::MAX
        };
        let checked = self.check_request(&user, &view, window).await?;
        let session_id = sign_session_id(&checked.digest, forwarded.attempt);
        let ticket = SessionTicket {
            session: session_id,
            block: BlockNumber(checked.request.block),
            attempt: forwarded.attempt,
            committee: forwarded.committee.clone(),
            relayer: outer.sender,
            signature: forwarded.ticket,
        };
        if !sigil_ledger::tx::verify_ticket(self.ledger().chain_id(), &ticket) {
            return Err(ApiError::bad_request(
                "bad_ticket",
                "the relayer's session ticket does not verify",
            ));
        }
        let excluded = self
            .check_exclusions(&forwarded.excluded, &checked, view)
            .await?;
        let view = self.view();
        let committee = committee_for(&view, &checked, forwarded.attempt, &excluded)?;
        let named: BTreeSet<AccountId> = forwarded.committee.iter().copied().collect();
        if named != committee || named.len() != forwarded.committee.len() {
            return Err(ApiError::forbidden(
                "wrong_committee",
                "the named committee is not the one the ledger state selects for this request",
            ));
        }
        if !committee.contains(&me) {
            return Err(ApiError::forbidden(
                "not_in_committee",
                "this signer is not in the request's committee",
            ));
        }
        self.first_sighting(
            session_id,
            "this request was already signed or is being signed",
        )?;
        let vk = checked.request.verifying_key;
        let block = checked.request.block;
        self.reserve_rate(&checked, &view)?;

        let started = Instant::now();
        // Envelope, ledger reads, programs, committee: what precedes the engine.
        metrics::histogram!("sigil_node_sign_checks_seconds")
            .record(started.duration_since(received).as_secs_f64());
        let signed = async {
            let members: Vec<AccountId> = committee.iter().copied().collect();
            let session = self
                .transport
                .open_session(SessionId(session_id), &members)
                .map_err(|e| ApiError::internal(format!("cannot open the signing session: {e}")))?;
            let mut channel = TransportChannel(session);
            self.signing_engine()
                .sign(
                    &session_id,
                    &sigil_mpc::SignRequest {
                        share: &key.share,
                        aux: &key.aux,
                        committee: &committee,
                        path: &checked.registration.derivation_path,
                        prehash: &checked.message_hash,
                    },
                    &mut channel,
                )
                .await
                .map_err(|error| {
                    if let MpcError::Failed(failure) = &error {
                        self.report_faults(&ticket, failure);
                    }
                    ApiError::new(StatusCode::BAD_GATEWAY, "signing_failed", error.to_string())
                })
        }
        .await;
        let signed = match signed {
            Ok(signed) => signed,
            Err(error) => {
                self.release_rate(vk, block);
                metrics::counter!("sigil_node_signatures_total", "outcome" => "failed")
                    .increment(1);
                tracing::warn!(%vk, error = %error, "signing session failed");
                return Err(error);
            }
        };
        // The engine checked this already; the signature must never leave unverified.
        verify_ecdsa(&vk, &checked.message_hash, &signed.signature).map_err(|e| {
            ApiError::internal(format!("the produced signature does not verify: {e}"))
        })?;
        metrics::counter!("sigil_node_signatures_total", "outcome" => "ok").increment(1);
        metrics::histogram!("sigil_node_signing_seconds").record(started.elapsed().as_secs_f64());
        record_rounds(&signed.stats);
        tracing::info!(
            %vk,
            attempt = forwarded.attempt,
            seconds = started.elapsed().as_secs_f64(),
            "signed"
        );
        let attestation = attest(
            &self.account,
            &checked.digest,
            &vk,
            &checked.message_hash,
            &signed.signature,
        );
        Ok(SignerResponse {
            signature: signed.signature,
            attestation: Attestation {
                signer: me,
                attestation,
            },
        })
    }

    /// The relayer's exclusions must all be offenders the ledger excludes beyond the request's
    /// block; a relayer a block ahead of this node makes it read the ledger's signer set once
    /// more (the view itself is left to the head subscription).
    async fn check_exclusions(
        &self,
        named: &[AccountId],
        checked: &Checked,
        view: View,
    ) -> Result<BTreeSet<AccountId>, ApiError> {
        let excluded: BTreeSet<AccountId> = named.iter().copied().collect();
        let allowed = |set: &SignerSet| {
            let ledger_excluded: BTreeSet<AccountId> = set
                .excluded
                .iter()
                .filter(|e| e.until.0 > checked.request.block)
                .map(|e| e.account)
                .collect();
            excluded.is_subset(&ledger_excluded)
        };
        if excluded.len() != named.len() {
            return Err(ApiError::bad_request(
                "malformed_request",
                "the excluded list repeats an account",
            ));
        }
        if allowed(&view.signer_set) {
            return Ok(excluded);
        }
        // Only the signer set can have changed what is excluded.
        let fresh = self
            .ledger()
            .rpc()
            .signer_set()
            .await
            .map_err(|e| ApiError::not_ready(format!("cannot read the ledger: {e}")))?;
        let ok = allowed(&fresh);
        if ok {
            Ok(excluded)
        } else {
            Err(ApiError::forbidden(
                "wrong_committee",
                "the relayer excluded a signer the ledger does not exclude",
            ))
        }
    }

    /// Files an offence report for every other member the failed session names (never for
    /// this node's own errors), one transaction at a time so nonces stay in order.
    fn report_faults(self: &Arc<Self>, ticket: &SessionTicket, failure: &SessionFailure) {
        if self.misbehaving() {
            // A node told to misbehave plays the offender, not a witness.
            return;
        }
        let me = self.me();
        for fault in &failure.faults {
            // Only first-hand findings: a fault heard from another member is that member's to
            // report, and relaying it would let one liar make others accuse for it.
            if fault.party == me
                || fault.reported_by.is_some()
                || !ticket.committee.contains(&fault.party)
            {
                continue;
            }
            let kind = offence_kind(fault.kind);
            let evidence = fault.evidence.clone().unwrap_or_default();
            let inner = self.clone();
            let ticket = ticket.clone();
            let offender = fault.party;
            tokio::spawn(async move {
                let call = |kind, evidence| Call::ReportOffence {
                    ticket: ticket.clone(),
                    offender,
                    kind,
                    evidence,
                };
                let mut outcome = inner.submit(call(kind, evidence.clone())).await;
                if outcome.is_err() && !evidence.is_empty() {
                    // Evidence the ledger cannot check still leaves an unproven report.
                    outcome = inner
                        .submit(call(OffenceKind::InvalidMessage, Vec::new()))
                        .await;
                }
                match outcome {
                    Ok(()) => {
                        metrics::counter!("sigil_node_offences_reported_total", "kind" => kind.as_str())
                            .increment(1);
                        tracing::warn!(%offender, kind = kind.as_str(), "offence reported");
                    }
                    Err(error) => {
                        tracing::warn!(%offender, kind = kind.as_str(), %error, "offence report refused")
                    }
                }
            });
        }
    }

    /// Submits a transaction and waits for its block; one at a time, so nonces do not collide.
    pub(crate) async fn submit(&self, call: Call) -> anyhow::Result<()> {
        let _turn = self.tx_lock.lock().await;
        let result = self.ledger().submit(&self.account, call, true).await?;
        if result.included.is_none() {
            anyhow::bail!("the ledger did not include transaction {}", result.hash);
        }
        Ok(())
    }
}

/// The ledger's name for an engine fault.
fn offence_kind(kind: FaultKind) -> OffenceKind {
    match kind {
        FaultKind::Unresponsive => OffenceKind::Unresponsive,
        FaultKind::InvalidMessage => OffenceKind::InvalidMessage,
        FaultKind::FailedProof => OffenceKind::FailedProof,
        FaultKind::Equivocation => OffenceKind::Equivocation,
    }
}

/// Per-round cost of a signing session as Prometheus histograms, so a benchmark (or an
/// operator) can see which rounds compute and which wait on the network.
fn record_rounds(stats: &sigil_mpc::SessionStats) {
    for round in &stats.rounds_profile {
        let name = round.round.clone();
        for (part, value) in [
            ("cpu", round.cpu),
            ("wait", round.waiting),
            ("wall", round.wall),
        ] {
            metrics::histogram!(
                "sigil_node_sign_round_seconds",
                "round" => name.clone(),
                "part" => part
            )
            .record(value.as_secs_f64());
        }
    }
}
