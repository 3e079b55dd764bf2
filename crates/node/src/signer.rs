//! The signer path (`POST /v1/sign`): a committee member checks the forwarded request from
//! ledger state alone, runs the threshold signing session with the rest of the committee and
//! attests the signature.

use std::sync::Arc;
use std::time::Instant;

use sigil_crypto::request::attest;
use sigil_crypto::{Envelope, OpenPolicy, derive_schnorr_child, verify_user_signature};
use sigil_ledger_api::types::{Call, FaultKind, SessionTicket};
use sigil_mpc::{MpcError, SessionFailure, TransportChannel};
use sigil_primitives::request::{Attestation, SignerResponse};
use sigil_primitives::{AccountId, ErrorCode, Signature};

use crate::checks::{self, Checked, Session};
use crate::error::ApiError;
use crate::node::{HeldKey, Inner};
use crate::relay::MAX_ENVELOPE_AGE_MS;

impl Inner {
    /// Runs the signer path for a relayer's envelope.
    pub(crate) async fn sign(
        self: &Arc<Self>,
        envelope: Envelope,
    ) -> Result<SignerResponse, ApiError> {
        let received = Instant::now();
        let (checked, session, key) = self.admit_signing(envelope).await?;
        // Envelope, ledger reads, programs, committee: what precedes the engine.
        metrics::histogram!("sigil_node_sign_checks_seconds")
            .record(received.elapsed().as_secs_f64());
        let started = Instant::now();
        let vk = checked.request.verifying_key;
        let signed = match self.run_session(&checked, &session, key).await {
            Ok(signed) => signed,
            Err(error) => {
                self.release_rate(&checked);
                metrics::counter!("sigil_node_signatures_total", "outcome" => "failed")
                    .increment(1);
                tracing::warn!(%vk, error = %error, "signing session failed");
                return Err(error);
            }
        };
        // The engine checked this already; the signature must never leave unverified.
        let signature = signed.signature;
        verify_user_signature(&vk, checked.signed_bytes(), &signature).map_err(|e| {
            ApiError::internal(format!("the produced signature does not verify: {e}"))
        })?;
        metrics::counter!("sigil_node_signatures_total", "outcome" => "ok", "scheme" => vk.scheme().name())
            .increment(1);
        metrics::histogram!("sigil_node_signing_seconds", "scheme" => vk.scheme().name())
            .record(started.elapsed().as_secs_f64());
        if let Some(stats) = &signed.stats {
            record_rounds(stats);
            #[cfg(feature = "fault-injection")]
            self.frame_after(&session.ticket, stats);
        }
        tracing::info!(
            %vk,
            attempt = session.ticket.attempt,
            seconds = started.elapsed().as_secs_f64(),
            "signed"
        );
        let attestation = attest(
            &self.keys.account,
            &checked.digest,
            &vk,
            &checked.message_hash,
            &signature,
        );
        Ok(SignerResponse {
            signature,
            attestation: Attestation {
                signer: self.me(),
                attestation,
            },
        })
    }

    /// Every check of §7.3 for a committee member, in order: the caller and this node's role,
    /// replay, the forwarded request and the user's signature, the common checks, the
    /// session's ticket and committee, the session replay and the rate limit.
    async fn admit_signing(
        &self,
        envelope: Envelope,
    ) -> Result<(Checked, Session, SigningKey), ApiError> {
        let outer = sigil_crypto::open(
            &envelope,
            &self.keys.x25519,
            &OpenPolicy::fresh_within(MAX_ENVELOPE_AGE_MS),
        )?;
        let view = self.view();
        let me = self.me();
        let key = self.held_key();
        let held = key
            .as_ref()
            .map(|k| (k.share.verifying_key(), k.share.holders()));
        let relayer = checks::admit_caller(&view, &me, &outer.sender, held)?.clone();
        let key = key.ok_or_else(|| ApiError::not_ready("no key share"))?;
        self.first_sighting(
            *outer.request_id.as_bytes(),
            "this forwarded request was already received",
        )?;
        let (forwarded, user) = checks::open_forwarded(
            &outer.payload,
            &relayer,
            sigil_crypto::envelope::now_ms(),
            MAX_ENVELOPE_AGE_MS * 2,
        )?;
        // A retry names the block the relayer checked at attempt 0; its age is bounded by the
        // user's envelope timestamp (above) instead of the block window.
        let window = if forwarded.attempt == 0 {
            self.config.request_window
        } else {
            u64::MAX
        };
        let checked = self.check_request(&user, &view, window).await?;
        let signer_set = self
            .signer_set_for(&forwarded.excluded, checked.request.block, &view)
            .await?;
        let session = checks::check_session(
            &checked,
            &forwarded,
            &outer.sender,
            self.ledger().chain_id(),
            &signer_set,
            &me,
        )?;
        let started = self
            .sessions
            .start(&session.id, sigil_crypto::envelope::now_ms())
            .map_err(|e| ApiError::internal(format!("cannot record the session: {e:#}")))?;
        if !started {
            return Err(ApiError::new(
                ErrorCode::Replayed,
                "this node already started this session",
            ));
        }
        let key = self.signing_key(&checked, &session, key, &view)?;
        let key = match key {
            SigningKey::Frost(frost) => SigningKey::Frost(FrostKey {
                prepared: forwarded.prepared,
                relayer: outer.sender,
                ..frost
            }),
            ecdsa => ecdsa,
        };
        self.reserve_rate(&checked, &self.view())?;
        Ok((checked, session, key))
    }

    /// The share that signs for the request's key: the ECDSA share, or this node's FROST share
    /// of the key's scheme with the derivation tweak, which must be of the ledger's network key
    /// and held by every committee member.
    fn signing_key(
        &self,
        checked: &Checked,
        session: &Session,
        ecdsa: Arc<HeldKey>,
        view: &crate::view::View,
    ) -> Result<SigningKey, ApiError> {
        let scheme = checked.request.verifying_key.scheme();
        let Some(frost_scheme) = sigil_mpc::frost::Scheme::of(scheme) else {
            return Ok(SigningKey::Ecdsa(ecdsa));
        };
        let network_key = view.signer_set.network_key_of(scheme).ok_or_else(|| {
            ApiError::not_ready(format!("the ledger holds no {scheme} network key yet"))
        })?;
        let share = self
            .frost_share(frost_scheme)
            .filter(|share| share.network_key().ok() == Some(network_key))
            .ok_or_else(|| {
                ApiError::not_ready(format!(
                    "this signer holds no share of the {scheme} network key"
                ))
            })?;
        if !session
            .committee
            .iter()
            .all(|m| share.parties().contains(m))
        {
            return Err(ApiError::not_ready(format!(
                "the committee holds signers without a share of the {scheme} network key"
            )));
        }
        let tweak = derive_schnorr_child(&network_key, &checked.registration.derivation_path)
            .map_err(|e| ApiError::internal(format!("cannot derive the user key: {e}")))?
            .tweak;
        Ok(SigningKey::Frost(FrostKey {
            share,
            tweak,
            prepared: vec![],
            relayer: self.me(),
        }))
    }

    /// Runs the threshold signing session with the committee; a failed session's faults are
    /// reported to the ledger.
    async fn run_session(
        self: &Arc<Self>,
        checked: &Checked,
        session: &Session,
        key: SigningKey,
    ) -> Result<Produced, ApiError> {
        let members: Vec<AccountId> = session.committee.iter().copied().collect();
        let transport_session = self
            .transport
            .open_session(session.id, &members)
            .map_err(|e| ApiError::internal(format!("cannot open the signing session: {e}")))?;
        let mut channel = TransportChannel(transport_session);
        let outcome = match &key {
            SigningKey::Ecdsa(key) => self
                .signing_engine()
                .sign(
                    session.id.as_bytes(),
                    &sigil_mpc::SignRequest {
                        share: &key.share,
                        aux: &key.aux,
                        committee: &session.committee,
                        path: &checked.registration.derivation_path,
                        prehash: &checked.message_hash,
                    },
                    &mut channel,
                )
                .await
                .map(|signed| Produced {
                    signature: Signature::Ecdsa(signed.signature),
                    stats: Some(signed.stats),
                }),
            SigningKey::Frost(key) => if self.corrupts_shares() {
                let mut corrupting = sigil_mpc::frost::CorruptShares {
                    channel: &mut channel,
                    signer: self.keys.account.clone(),
                };
                self.sign_frost(checked, session, key, &mut corrupting)
                    .await?
            } else {
                self.sign_frost(checked, session, key, &mut channel).await?
            }
            .and_then(|bytes| {
                Signature::from_slice(&bytes)
                    .map_err(|e| MpcError::Local(format!("FROST gave a bad signature: {e}")))
            })
            .map(|signature| Produced {
                signature,
                stats: None,
            }),
        };
        outcome.map_err(|error| {
            if let MpcError::Failed(failure) = &error {
                self.report_faults(&session.ticket, failure);
            }
            ApiError::new(ErrorCode::SigningFailed, error.to_string())
        })
    }

    /// Signs with a FROST share: in one round with the nonces the relayer named (this node's
    /// own deleted durably first), or in two rounds without. A refused nonce is the outer
    /// error; the session's outcome is the inner one.
    async fn sign_frost<Ch: sigil_mpc::Channel>(
        &self,
        checked: &Checked,
        session: &Session,
        key: &FrostKey,
        channel: &mut Ch,
    ) -> Result<Result<Vec<u8>, MpcError>, ApiError> {
        let target = sigil_mpc::frost::SignTarget {
            session: session.id.as_bytes(),
            message: checked.signed_bytes(),
            tweak: &key.tweak,
        };
        let me = self.me();
        let timeout = self.config.round_timeout;
        if key.prepared.is_empty() {
            metrics::counter!("sigil_node_frost_sessions_total", "path" => "interactive")
                .increment(1);
            return Ok(sigil_mpc::frost::sign(
                &key.share,
                &self.keys.account,
                &session.committee,
                target,
                channel,
                timeout,
            )
            .await);
        }
        let taken = key
            .prepared
            .iter()
            .find(|named| named.member == me)
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::NonceRefused,
                    "the relayer named no nonce of this signer",
                )
            })
            .and_then(|own| {
                self.consume_nonce(&key.relayer, key.share.scheme(), own, &self.view())
            });
        let secret = match taken {
            Ok(secret) => secret,
            Err(refusal) => {
                // The other members stop at once instead of waiting and blaming this one.
                if let Err(error) = sigil_mpc::frost::refuse(me, &session.committee, channel).await
                {
                    tracing::warn!(%error, "cannot tell the committee about a refused nonce");
                }
                return Err(refusal);
            }
        };
        #[cfg(feature = "fault-injection")]
        if *self.fault.lock().unwrap_or_else(|e| e.into_inner())
            == Some(sigil_mpc::InjectedFault::CrashAfterNonce)
        {
            tracing::error!("fault injection: exiting after deleting a nonce");
            std::process::abort();
        }
        let commitments = key
            .prepared
            .iter()
            .map(|named| (named.member, named.commitments.clone()))
            .collect();
        let prepared = sigil_mpc::frost::PreparedSigning {
            commitments: &commitments,
            own_nonce: secret.expose(),
        };
        metrics::counter!("sigil_node_frost_sessions_total", "path" => "prepared").increment(1);
        Ok(sigil_mpc::frost::sign_prepared(
            &key.share,
            &self.keys.account,
            &session.committee,
            target,
            prepared,
            channel,
            timeout,
        )
        .await)
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
            let kind = fault.kind;
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
                    // Evidence the ledger refuses (too large for max_evidence_size, say) still
                    // leaves an unproven report: of a failed proof as such, of equivocation as
                    // the invalid message it is to this member.
                    let kind = match kind {
                        FaultKind::FailedProof => kind,
                        _ => FaultKind::InvalidMessage,
                    };
                    outcome = inner.submit(call(kind, Vec::new())).await;
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
        let result = self.ledger().submit(&self.keys.account, call, true).await?;
        if result.included.is_none() {
            anyhow::bail!("the ledger did not include transaction {}", result.hash);
        }
        Ok(())
    }
}

/// The share a signing session uses.
enum SigningKey {
    /// The ECDSA network key's share (CGGMP'24 applies the BIP-32 path).
    Ecdsa(Arc<HeldKey>),
    /// A FROST network key's share.
    Frost(FrostKey),
}

/// A FROST share with what one request adds to it.
struct FrostKey {
    share: Arc<sigil_mpc::frost::FrostShare>,
    /// The user key's additive tweak.
    tweak: [u8; 32],
    /// The nonces the relayer named, for one-round signing; empty for two rounds.
    prepared: Vec<sigil_primitives::request::NamedCommitment>,
    /// The relayer that forwarded the request (whose nonces these must be).
    relayer: AccountId,
}

/// What a signing session produced.
struct Produced {
    signature: Signature,
    /// The ECDSA engine's per-round figures.
    stats: Option<sigil_mpc::SessionStats>,
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
