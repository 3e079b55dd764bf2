//! The relayer path (`POST /v1/relay`): check the user's request, pick the committee, forward
//! the request to every member and return the signature with their attestations.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use sigil_client::rpc::LedgerApiClient as _;
use sigil_client::{ClientError, NodeClient};
use sigil_crypto::request::{sign_session_id, verify_attestation};
use sigil_crypto::{Envelope, OpenPolicy, SealParams, verify_user_signature};
use sigil_primitives::request::{
    AttemptReport, Attestation, ForwardedRequest, NamedCommitment, OffenceSummary, RelayResponse,
    SignerResponse,
};
use sigil_primitives::{AccountId, BlockNumber, ErrorCode, RequestId, SessionId, Signature};

use crate::checks::{self, Checked, committee_for};
use crate::error::ApiError;
use crate::node::Inner;
use crate::view::View;

/// Oldest envelope timestamp accepted, in ms; the replay cache covers twice that.
pub(crate) const MAX_ENVELOPE_AGE_MS: u64 = 120_000;

impl Inner {
    /// Records `id` in the replay cache; `409 replayed` with `what` if it was seen within twice
    /// the envelope age limit.
    pub(crate) fn first_sighting(&self, id: [u8; 32], what: &str) -> Result<(), ApiError> {
        let window = std::time::Duration::from_millis(MAX_ENVELOPE_AGE_MS * 2);
        if self.requests.limits.replay().insert(id, window) {
            Ok(())
        } else {
            Err(ApiError::new(ErrorCode::Replayed, what))
        }
    }
}

impl Inner {
    /// Runs the relayer path. Returns the request id once known, so the outcome can be kept.
    pub(crate) async fn relay(
        self: &Arc<Self>,
        envelope: Envelope,
    ) -> (Option<RequestId>, Result<RelayResponse, ApiError>) {
        let view = self.view();
        if let Err(error) = checks::admit_relayer(&view, &self.me()) {
            return (None, Err(error));
        }
        let user = match sigil_crypto::open(
            &envelope,
            &self.keys.x25519,
            &OpenPolicy::fresh_within(MAX_ENVELOPE_AGE_MS),
        ) {
            Ok(user) => user,
            Err(error) => return (None, Err(error.into())),
        };
        let request_id = user.request_id;
        // A replay is not recorded as this request's outcome: the first one's result stays.
        if let Err(error) = self.first_sighting(
            *request_id.as_bytes(),
            &format!("request {request_id} was already received"),
        ) {
            return (None, Err(error));
        }
        self.requests
            .results()
            .pending(request_id, self.config.result_ttl);
        let result = async {
            let checked = self
                .check_request(&user, &view, self.config.request_window)
                .await?;
            // The relayer counts too, so one relayer's users meet the limit exactly even
            // though each signer only sees the requests of its committees.
            self.reserve_rate(&checked, &view)?;
            let forwarded = self
                .forward(&view, &checked, &user.signed_plaintext, request_id)
                .await;
            if forwarded.is_err() {
                self.release_rate(&checked);
            }
            forwarded
        }
        .await;
        (Some(request_id), result)
    }

    /// Picks a committee and collects a verified signature from every member; when an attempt
    /// fails, waits for the ledger to record the offences and tries a new committee, up to
    /// the configured number of attempts.
    async fn forward(
        self: &Arc<Self>,
        view: &Arc<View>,
        checked: &Checked,
        user_plaintext: &[u8],
        request_id: RequestId,
    ) -> Result<RelayResponse, ApiError> {
        let mut view = view.clone();
        let mut attempts: Vec<AttemptReport> = Vec::new();
        let mut sessions: Vec<(u32, SessionId)> = Vec::new();
        let mut last_error = None;
        let mut failed: BTreeSet<AccountId> = BTreeSet::new();
        // One-round signing is tried first only: a failed attempt retries on the accountable
        // two-round path.
        let mut fast = sigil_mpc::frost::Scheme::of(checked.request.verifying_key.scheme());
        for attempt in 0..self.config.max_attempts {
            let excluded = checks::left_out(&view.signer_set, view.head, &failed);
            let committee = match committee_for(&view.signer_set, checked, attempt, &excluded) {
                Ok(committee) => committee,
                Err(error) => {
                    last_error = Some(error);
                    break;
                }
            };
            sessions.push((attempt, sign_session_id(&checked.digest, attempt)));
            let mut report = AttemptReport {
                attempt,
                committee: committee.iter().copied().collect(),
                excluded: excluded.into_iter().collect(),
                error: None,
            };
            let prepared = fast
                .take()
                .and_then(|scheme| self.take_prepared(scheme, &committee, &view))
                .unwrap_or_default();
            let forwarded = self.forwarded(checked, user_plaintext, &report, prepared);
            let outcome = self
                .ask_committee(&view, checked, &committee, &forwarded)
                .await;
            match outcome {
                Ok((signature, attestations)) => {
                    attempts.push(report);
                    let offences = self.offences_of(&sessions).await;
                    return Ok(RelayResponse {
                        request_id,
                        verifying_key: checked.request.verifying_key,
                        message_hash: checked.message_hash,
                        signature,
                        block: checked.request.block,
                        attempt,
                        committee: committee.into_iter().collect(),
                        relayer: self.me(),
                        attestations,
                        attempts,
                        offences,
                    });
                }
                Err(error) => {
                    report.error = Some(error.detail());
                    self.requests
                        .results()
                        .attempted(&request_id, report.clone());
                    attempts.push(report);
                    metrics::counter!("sigil_node_attempts_failed_total").increment(1);
                    tracing::warn!(%request_id, attempt, code = %error.code, message = %error.message, "signing attempt failed");
                    // A refusal every member agrees on would not change with another committee.
                    let retry = error.code.is_server_side();
                    last_error = Some(error);
                    if !retry || attempt + 1 >= self.config.max_attempts {
                        break;
                    }
                    view = self.await_offences(&committee, &view).await;
                    failed.extend(committee);
                }
            }
        }
        let offences = self.offences_of(&sessions).await;
        self.requests.results().offences(&request_id, offences);
        Err(last_error.unwrap_or_else(|| ApiError::internal("no signing attempt was made")))
    }

    /// The encoded request forwarded to the committee of `attempt`, with its signed ticket.
    fn forwarded(
        &self,
        checked: &Checked,
        user_plaintext: &[u8],
        attempt: &AttemptReport,
        prepared: Vec<NamedCommitment>,
    ) -> Vec<u8> {
        let ticket = sigil_ledger_api::tx::sign_ticket(
            &self.keys.account,
            self.ledger().chain_id(),
            sign_session_id(&checked.digest, attempt.attempt),
            BlockNumber(checked.request.block),
            attempt.attempt,
            attempt.committee.clone(),
        );
        ForwardedRequest {
            attempt: attempt.attempt,
            committee: attempt.committee.clone(),
            excluded: attempt.excluded.clone(),
            ticket: ticket.signature,
            user_plaintext: user_plaintext.to_vec(),
            prepared,
        }
        .encode()
    }

    /// Asks every member of `committee` and checks their answers: one signature and every
    /// member's attestation.
    async fn ask_committee(
        &self,
        view: &View,
        checked: &Checked,
        committee: &BTreeSet<AccountId>,
        forwarded: &[u8],
    ) -> Result<(Signature, Vec<Attestation>), ApiError> {
        let calls = committee
            .iter()
            .map(|member| async move { (*member, self.ask_member(view, member, forwarded).await) });
        let answers = join_all(calls).await;
        let mut attestations = Vec::new();
        let mut signature = None;
        let mut failures: Vec<(AccountId, ApiError)> = Vec::new();
        for (member, answer) in answers {
            let answer = answer.and_then(|response| {
                self.verify_member_answer(checked, &member, &response)
                    .map(|()| response)
            });
            match answer {
                Ok(response) => {
                    signature.get_or_insert(response.signature);
                    attestations.push(response.attestation);
                }
                Err(error) => failures.push((member, error)),
            }
        }
        if !failures.is_empty() {
            return Err(summarise(failures));
        }
        let signature =
            signature.ok_or_else(|| ApiError::internal("the committee returned no signature"))?;
        Ok((signature, attestations))
    }

    /// Waits until the ledger holds a new offence or dispute among the members of the failed
    /// committee (the block recording a member's report), or the offence wait runs out;
    /// returns the view to retry with. After the first news it waits for the rest while
    /// reports keep landing ([`REPORTS_SETTLE`]), unless a proof already excluded someone:
    /// the members' reports land in different blocks, and a retry on the first of them alone
    /// (an offender's accusation racing the proof against it) could pick the offender again.
    async fn await_offences(&self, committee: &BTreeSet<AccountId>, before: &View) -> Arc<View> {
        let deadline = tokio::time::Instant::now() + self.config.offence_wait;
        let mut known = blame_among(before, committee);
        let mut views = self.view.subscribe();
        let mut settle = deadline;
        let mut latest = None;
        loop {
            let news = |view: &Arc<View>| !blame_among(view, committee).is_subset(&known);
            let waited = tokio::time::timeout_at(settle.min(deadline), views.wait_for(news)).await;
            let view = match waited {
                Ok(Ok(view)) => view.clone(),
                _ => return latest.unwrap_or_else(|| self.view()),
            };
            let blame = blame_among(&view, committee);
            if blame.iter().any(|(a, b)| a == b) {
                return view;
            }
            known.extend(blame);
            settle = tokio::time::Instant::now() + REPORTS_SETTLE;
            latest = Some(view);
        }
    }

    /// The offences the ledger holds for a request's sessions.
    async fn offences_of(&self, sessions: &[(u32, SessionId)]) -> Vec<OffenceSummary> {
        let ids = sessions.iter().map(|(_, session)| *session).collect();
        let records = match self.ledger().rpc().session_offences(ids).await {
            Ok(records) => records,
            Err(error) => {
                tracing::warn!(%error, "cannot read offences from the ledger");
                return vec![];
            }
        };
        records
            .into_iter()
            .filter_map(|record| {
                let (attempt, _) = sessions
                    .iter()
                    .find(|(_, session)| record.session == *session)?;
                Some(OffenceSummary {
                    attempt: *attempt,
                    offender: record.offender,
                    kind: record.kind,
                    reporters: record.reporters,
                    recorded: record.recorded.map(|b| b.0),
                    slashed: record.slashed,
                })
            })
            .collect()
    }

    /// Seals the forwarded request to `member` and posts it to its `/v1/sign`.
    async fn ask_member(
        &self,
        view: &View,
        member: &AccountId,
        forwarded: &[u8],
    ) -> Result<SignerResponse, ApiError> {
        let info = view.validators.get(member).ok_or_else(|| {
            ApiError::internal(format!("committee member {member} is not a validator"))
        })?;
        let request_id = RequestId::from_slice(&sigil_crypto::secret::random_array::<32>())
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let envelope = sigil_crypto::seal(
            &self.keys.account,
            &SealParams {
                recipient: info.x25519,
                request_id,
                timestamp_ms: sigil_crypto::envelope::now_ms(),
                reply_to: None,
                payload: forwarded,
            },
        )
        .map_err(|e| ApiError::internal(e.to_string()))?;
        let answer = NodeClient::with_http(self.http.clone(), info.endpoint.as_str())
            .sign(&envelope)
            .await;
        answer.map_err(|error| member_error(member, error))
    }

    /// A member's answer must carry a signature that verifies and its own valid attestation.
    fn verify_member_answer(
        &self,
        checked: &Checked,
        member: &AccountId,
        response: &SignerResponse,
    ) -> Result<(), ApiError> {
        let bad = |what: &str| {
            ApiError::new(
                ErrorCode::BadSignerAnswer,
                format!("signer {member}: {what}"),
            )
        };
        if response.attestation.signer != *member {
            return Err(bad("the attestation names another signer"));
        }
        verify_user_signature(
            &checked.request.verifying_key,
            checked.signed_bytes(),
            &response.signature,
        )
        .map_err(|_| bad("the signature does not verify against the user's key"))?;
        verify_attestation(
            member,
            &response.attestation.attestation,
            &checked.digest,
            &checked.request.verifying_key,
            &checked.message_hash,
            &response.signature,
        )
        .map_err(|_| bad("the attestation does not verify"))
    }
}

/// What a member's failed answer means for the relayer: its own refusal passes through; a
/// code this build does not know, an answer that is not an error body or a broken
/// connection are the member's fault.
fn member_error(member: &AccountId, error: ClientError) -> ApiError {
    match error {
        ClientError::Node { code, message, .. } if code != ErrorCode::Unknown => {
            ApiError::new(code, format!("signer {member}: {message}"))
        }
        ClientError::NodeUnreachable { reason, .. } => ApiError::new(
            ErrorCode::SignerUnreachable,
            format!("cannot reach signer {member}: {reason}"),
        ),
        other => ApiError::new(
            ErrorCode::BadSignerAnswer,
            format!("signer {member}: {other}"),
        ),
    }
}

/// How long a relayer waits after a failed attempt's last new report for more of them.
const REPORTS_SETTLE: Duration = Duration::from_millis(1500);

/// One error for the user from the members' failures: a refusal they all agree on passes
/// through; anything else is `signing_failed` naming each member's error.
fn summarise(failures: Vec<(AccountId, ApiError)>) -> ApiError {
    let first = &failures[0].1;
    if !first.code.is_server_side() && failures.iter().all(|(_, e)| e.code == first.code) {
        return first.clone();
    }
    let detail = failures
        .iter()
        .map(|(member, e)| format!("{member}: {}: {}", e.code, e.message))
        .collect::<Vec<_>>()
        .join("; ");
    ApiError::new(ErrorCode::SigningFailed, detail)
}

/// The live exclusions and disputes that involve members of `committee`, as (accuser or
/// offender, accused or offender) pairs.
fn blame_among(view: &View, committee: &BTreeSet<AccountId>) -> BTreeSet<(AccountId, AccountId)> {
    let set = &view.signer_set;
    let excluded = set.excluded_at(view.head).into_iter().map(|a| (a, a));
    let disputes = set.disputes_at(view.head).map(|d| (d.accuser, d.accused));
    excluded
        .chain(disputes)
        .filter(|(a, b)| committee.contains(a) || committee.contains(b))
        .collect()
}
