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

use crate::channel::TransportChannel;
use crate::error::ApiError;
use crate::node::Inner;
use crate::relay::{MAX_ENVELOPE_AGE_MS, committee_for};

impl Inner {
    /// Runs the signer path for a relayer's envelope.
    pub(crate) async fn sign(
        self: &Arc<Self>,
        envelope: Envelope,
    ) -> Result<SignerResponse, ApiError> {
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
            .filter(|k| view.signer_set.network_key == Some(k.share.verifying_key()))
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
        let checked = self.check_request(&user, &view).await?;
        let committee = committee_for(&view, &checked, forwarded.attempt)?;
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
        let session_id = sign_session_id(&checked.digest, forwarded.attempt);
        self.first_sighting(
            session_id,
            "this request was already signed or is being signed",
        )?;
        let vk = checked.request.verifying_key;
        let block = checked.request.block;
        self.reserve_rate(&checked, &view)?;

        let started = Instant::now();
        let signed = async {
            let members: Vec<AccountId> = committee.iter().copied().collect();
            let session = self
                .transport
                .open_session(SessionId(session_id), &members)
                .map_err(|e| ApiError::internal(format!("cannot open the signing session: {e}")))?;
            let mut channel = TransportChannel(session);
            self.engine
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
                .map_err(|e| {
                    ApiError::new(StatusCode::BAD_GATEWAY, "signing_failed", e.to_string())
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
}
