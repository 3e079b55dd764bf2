//! The request core without sockets or a ledger: one test per refusal, in the order of
//! `docs/PROTOCOL.md` §7.3, with real programs, real envelopes and real tickets.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};

use sigil_client::types::{
    Dispute, Exclusion, JumpStartStatus, Parameters, ProgramRecord, Registration, SignerSet,
    ValidatorRecord, ValidatorStatus,
};
use sigil_crypto::request::{request_digest, sign_session_id};
use sigil_crypto::{AccountKeypair, NodeSeed, ProgramContents, SealParams, seal_signed};
use sigil_primitives::request::{ForwardedRequest, SignatureRequest};
use sigil_primitives::{
    AccountId, BlockNumber, DerivationPath, Endpoint, ErrorCode, HashingAlgorithm, ProgramId,
    ProgramInstance, ProgramList, RequestId, VerifyingKey,
};
use sigil_programs::{HostConfig, INTERFACE_VERSION, ProgramHost};

use super::*;
use crate::view::View;

const CHAIN: &str = "sigil-test";
const HEAD: u64 = 100;
const WINDOW: u64 = 20;
const NOW_MS: u64 = 1_800_000_000_000;
/// A 10-byte limit for the `message-size` program.
const SIZE_CONFIG: &[u8] = br#"{"max_length":10}"#;
const SIGNERS: [&str; 3] = ["alice", "bob", "charlie"];

fn key(name: &str) -> AccountKeypair {
    NodeSeed::dev(name).account_keypair()
}

fn account(name: &str) -> AccountId {
    key(name).account_id()
}

fn host() -> &'static ProgramHost {
    static HOST: OnceLock<ProgramHost> = OnceLock::new();
    HOST.get_or_init(|| ProgramHost::new(HostConfig::default()).expect("program host"))
}

/// A committed example program from `programs/dist`, as the ledger stores it.
fn program(name: &str) -> (ProgramId, Arc<ProgramRecord>) {
    let path = format!(
        "{}/../../programs/dist/{name}.wasm",
        env!("CARGO_MANIFEST_DIR")
    );
    let bytecode = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let id = ProgramContents {
        bytecode: &bytecode,
        config_schema: b"",
        aux_schema: b"",
        oracle_keys: &[],
        version: INTERFACE_VERSION,
    }
    .id();
    let record = ProgramRecord {
        bytecode,
        config_schema: Vec::new(),
        aux_schema: Vec::new(),
        oracle_keys: Vec::new(),
        deployer: account("alice"),
        ref_count: 1,
        version: INTERFACE_VERSION,
        deposit: 0,
    };
    (id, Arc::new(record))
}

/// The secp256k1 generator: a valid verifying key.
fn user_key() -> VerifyingKey {
    "0x0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
        .parse()
        .expect("generator")
}

fn registration(programs: &[(ProgramId, &[u8])]) -> Registration {
    let instances = programs
        .iter()
        .map(|(program, config)| ProgramInstance {
            program: *program,
            config: config.to_vec(),
        })
        .collect();
    Registration {
        owner: account("dave"),
        programs: ProgramList::new(instances).expect("program list"),
        derivation_path: DerivationPath::new(vec![1, 2, 3]).expect("path"),
        registered: BlockNumber(1),
        public: false,
        authorised: vec![],
        deposit: 0,
    }
}

/// A snapshot at head 100 holding the request's block 95 and a key with the `message-size`
/// program limited to 10 bytes.
fn snapshot() -> Snapshot {
    let (id, record) = program("message-size");
    Snapshot {
        head: HEAD,
        params: Parameters::default(),
        block: Some(BlockFacts {
            hash: [7; 32],
            timestamp_ms: NOW_MS,
        }),
        registration: Some(registration(&[(id, SIZE_CONFIG)])),
        programs: vec![record],
    }
}

fn request(message: &[u8]) -> SignatureRequest {
    SignatureRequest {
        verifying_key: user_key(),
        block: 95,
        hashing: HashingAlgorithm::Keccak256,
        aux_data: vec![Vec::new()],
        message: message.to_vec(),
    }
}

/// The common checks of a request by the key's owner.
fn check(request: SignatureRequest, snapshot: &Snapshot) -> Result<Checked, ApiError> {
    check_by(&account("dave"), request, snapshot)
}

fn check_by(
    requester: &AccountId,
    request: SignatureRequest,
    snapshot: &Snapshot,
) -> Result<Checked, ApiError> {
    validate(request, requester, [9; 32], snapshot, WINDOW, host())
}

fn refused<T: std::fmt::Debug>(result: Result<T, ApiError>) -> ErrorCode {
    result.expect_err("refused").code
}

#[test]
fn a_valid_request_passes_with_its_hash_and_block() {
    let checked = check(request(b"hello"), &snapshot()).expect("passes");
    assert_eq!(checked.message_hash, sigil_crypto::keccak256(b"hello"));
    assert_eq!(checked.block_hash, [7; 32]);
    assert_eq!(checked.digest, [9; 32]);
    assert_eq!(checked.registration, snapshot().registration.unwrap());
}

#[test]
fn an_undecodable_payload_is_malformed_request() {
    let mut bytes = request(b"hi").encode();
    bytes.push(0);
    assert_eq!(refused(decode_request(&bytes)), ErrorCode::MalformedRequest);
    assert_eq!(refused(decode_request(&[])), ErrorCode::MalformedRequest);
    assert_eq!(
        decode_request(&request(b"hi").encode()).unwrap(),
        request(b"hi")
    );
}

#[test]
fn a_message_over_the_ledger_limit_is_message_too_large() {
    let mut snapshot = snapshot();
    snapshot.params.max_message_size = 4;
    assert_eq!(
        refused(check(request(b"12345"), &snapshot)),
        ErrorCode::MessageTooLarge
    );
    assert!(check(request(b"1234"), &snapshot).is_ok());
}

#[test]
fn a_block_ahead_of_the_head_is_unknown_block() {
    let mut ahead = request(b"hi");
    ahead.block = HEAD + 1;
    assert_eq!(refused(check(ahead, &snapshot())), ErrorCode::UnknownBlock);
}

#[test]
fn a_block_the_ledger_lacks_is_unknown_block() {
    let mut snapshot = snapshot();
    snapshot.block = None;
    assert_eq!(
        refused(check(request(b"hi"), &snapshot)),
        ErrorCode::UnknownBlock
    );
}

#[test]
fn a_block_older_than_the_window_is_stale_block() {
    let mut old = request(b"hi");
    old.block = HEAD - WINDOW - 1;
    assert_eq!(refused(check(old, &snapshot())), ErrorCode::StaleBlock);
    assert!(check_block(HEAD - WINDOW, HEAD, WINDOW).is_ok());
    assert!(
        check_block(0, HEAD, u64::MAX).is_ok(),
        "retries skip the window"
    );
}

#[test]
fn a_key_without_registration_is_unregistered_key() {
    let mut snapshot = snapshot();
    snapshot.registration = None;
    assert_eq!(
        refused(check(request(b"hi"), &snapshot)),
        ErrorCode::UnregisteredKey
    );
}

#[test]
fn aux_data_for_another_number_of_programs_is_aux_data_mismatch() {
    let mut two = request(b"hi");
    two.aux_data = vec![Vec::new(), Vec::new()];
    assert_eq!(refused(check(two, &snapshot())), ErrorCode::AuxDataMismatch);
}

#[test]
fn a_custom_hash_naming_no_program_is_bad_hash_index() {
    let mut custom = request(b"hi");
    custom.hashing = HashingAlgorithm::Custom(1);
    assert_eq!(refused(check(custom, &snapshot())), ErrorCode::BadHashIndex);
}

#[test]
fn a_snapshot_missing_a_program_is_internal() {
    let mut snapshot = snapshot();
    snapshot.programs.clear();
    assert_eq!(
        refused(check(request(b"hi"), &snapshot)),
        ErrorCode::Internal
    );
}

#[test]
fn a_program_refusal_is_program_denied() {
    let error = check(request(b"eleven bytes"), &snapshot()).expect_err("denied");
    assert_eq!(error.code, ErrorCode::ProgramDenied);
    assert_eq!(error.status(), axum::http::StatusCode::FORBIDDEN);
}

#[test]
fn a_bad_program_config_is_program_invalid_config() {
    let mut snapshot = snapshot();
    let (id, _) = program("message-size");
    snapshot.registration = Some(registration(&[(id, b"{}")]));
    assert_eq!(
        refused(check(request(b"hi"), &snapshot)),
        ErrorCode::ProgramInvalidConfig
    );
}

#[test]
fn a_program_that_traps_is_program_trap() {
    let (id, record) = program("trap");
    let mut snapshot = snapshot();
    snapshot.registration = Some(registration(&[(id, b"")]));
    snapshot.programs = vec![record];
    assert_eq!(
        refused(check(request(b"hi"), &snapshot)),
        ErrorCode::ProgramTrap
    );
}

#[test]
fn a_program_that_never_ends_is_program_out_of_fuel() {
    let (id, record) = program("infinite-loop");
    let mut snapshot = snapshot();
    snapshot.params.fuel_per_program = 100_000;
    snapshot.registration = Some(registration(&[(id, b"")]));
    snapshot.programs = vec![record];
    assert_eq!(
        refused(check(request(b"hi"), &snapshot)),
        ErrorCode::ProgramOutOfFuel
    );
}

#[test]
fn identity_hashing_of_a_message_not_32_bytes_is_bad_message_for_hash() {
    let mut identity = request(b"hi");
    identity.hashing = HashingAlgorithm::Identity;
    assert_eq!(
        refused(check(identity, &snapshot())),
        ErrorCode::BadMessageForHash
    );
}

/// A view at head 100: the dev signers, a relayer (eve) and dave, who is neither.
fn view() -> View {
    let validators: BTreeMap<AccountId, ValidatorRecord> = SIGNERS
        .iter()
        .chain(&["dave", "eve"])
        .map(|name| {
            let seed = NodeSeed::dev(name);
            let record = ValidatorRecord {
                account: seed.account_keypair().account_id(),
                x25519: seed.x25519_key().public_key(),
                endpoint: Endpoint::new("127.0.0.1:1").expect("endpoint"),
                stake: 1,
                status: ValidatorStatus::Active,
                joined: BlockNumber(0),
            };
            (record.account, record)
        })
        .collect();
    View {
        head: HEAD,
        synced: true,
        head_timestamp_ms: NOW_MS,
        blocks: BTreeMap::new(),
        validators,
        signer_set: signer_set(),
        params: Parameters::default(),
    }
}

fn signer_set() -> SignerSet {
    SignerSet {
        signers: SIGNERS.iter().map(|n| account(n)).collect(),
        threshold: 2,
        network_key: Some(user_key()),
        scheme_keys: vec![],
        scheme_confirmations: vec![],
        jump_start: JumpStartStatus::Done,
        pending_reshare: None,
        excluded: Vec::new(),
        disputes: Vec::new(),
    }
}

fn holders() -> BTreeSet<AccountId> {
    SIGNERS.iter().map(|n| account(n)).collect()
}

#[test]
fn a_signer_asked_to_relay_is_not_a_relayer() {
    assert_eq!(
        refused(admit_relayer(&view(), &account("alice"))),
        ErrorCode::NotARelayer
    );
    assert!(admit_relayer(&view(), &account("eve")).is_ok());
}

#[test]
fn a_relayer_not_yet_a_validator_is_not_ready() {
    assert_eq!(
        refused(admit_relayer(&view(), &account("ferdie"))),
        ErrorCode::NotReady
    );
}

#[test]
fn a_caller_that_is_no_validator_is_not_a_validator() {
    let holders = holders();
    let held = Some((user_key(), &holders));
    let view = view();
    let refusal = admit_caller(&view, &account("alice"), &account("ferdie"), held);
    assert_eq!(refused(refusal), ErrorCode::NotAValidator);
    let admitted = admit_caller(&view, &account("alice"), &account("eve"), held);
    assert_eq!(admitted.expect("admitted").account, account("eve"));
}

#[test]
fn a_node_outside_the_signer_set_is_not_a_signer() {
    let holders = holders();
    let view = view();
    let refusal = admit_caller(
        &view,
        &account("dave"),
        &account("eve"),
        Some((user_key(), &holders)),
    );
    assert_eq!(refused(refusal), ErrorCode::NotASigner);
}

#[test]
fn a_signer_without_a_current_share_is_not_ready() {
    let view = view();
    let (me, eve) = (account("alice"), account("eve"));
    let no_share = admit_caller(&view, &me, &eve, None);
    assert_eq!(refused(no_share), ErrorCode::NotReady);
    let mut old_holders = holders();
    old_holders.insert(account("dave"));
    let old_set = admit_caller(&view, &me, &eve, Some((user_key(), &old_holders)));
    assert_eq!(refused(old_set), ErrorCode::NotReady);
    let other_key: VerifyingKey =
        "0x02c6047f9441ed7d6d3045406e95c07cd85c778e4b8cef3ca7abac09b95c709ee5"
            .parse()
            .expect("2G");
    let holders = holders();
    let other = admit_caller(&view, &me, &eve, Some((other_key, &holders)));
    assert_eq!(refused(other), ErrorCode::NotReady);
}

/// The user's signed plaintext for `request`, sealed to `recipient` at `timestamp_ms`.
fn user_plaintext(recipient: &str, timestamp_ms: u64, request: &SignatureRequest) -> Vec<u8> {
    let payload = request.encode();
    let params = SealParams {
        recipient: NodeSeed::dev(recipient).x25519_key().public_key(),
        request_id: RequestId::from_bytes([3; 32]).expect("id"),
        timestamp_ms,
        reply_to: None,
        payload: &payload,
    };
    seal_signed(&key("dave"), &params).expect("sealed").1
}

/// What eve forwards for attempt 0 of `request` to the committee `select` gives.
fn forwarded(plaintext: Vec<u8>, attempt: u32, excluded: Vec<AccountId>) -> ForwardedRequest {
    let checked = checked_for(&plaintext);
    let excluded_set: BTreeSet<AccountId> = excluded.iter().copied().collect();
    let committee: Vec<AccountId> = committee_for(&signer_set(), &checked, attempt, &excluded_set)
        .expect("committee")
        .into_iter()
        .collect();
    let session = sign_session_id(&checked.digest, attempt);
    let ticket = sigil_ledger_api::tx::sign_ticket(
        &key("eve"),
        CHAIN,
        session,
        BlockNumber(95),
        attempt,
        committee.clone(),
    );
    ForwardedRequest {
        attempt,
        committee,
        excluded,
        ticket: ticket.signature,
        user_plaintext: plaintext,
        prepared: vec![],
    }
}

fn checked_for(plaintext: &[u8]) -> Checked {
    let user = sigil_crypto::verify_signed_plaintext(plaintext.to_vec()).expect("signed");
    let request = decode_request(&user.payload).expect("decodes");
    validate(
        request,
        &user.sender,
        request_digest(plaintext),
        &snapshot(),
        WINDOW,
        host(),
    )
    .expect("valid")
}

fn eve() -> ValidatorRecord {
    view().validators[&account("eve")].clone()
}

#[test]
fn an_undecodable_forwarded_request_is_malformed_request() {
    let refusal = open_forwarded(b"\x01garbage", &eve(), NOW_MS, 240_000);
    assert_eq!(refused(refusal), ErrorCode::MalformedRequest);
}

#[test]
fn a_user_request_signed_for_another_node_is_recipient_mismatch() {
    let plaintext = user_plaintext("dave", NOW_MS, &request(b"hi"));
    let payload = forwarded(plaintext, 0, vec![]).encode();
    let refusal = open_forwarded(&payload, &eve(), NOW_MS, 240_000);
    assert_eq!(refused(refusal), ErrorCode::RecipientMismatch);
}

#[test]
fn a_tampered_user_request_fails_its_signature() {
    let mut plaintext = user_plaintext("eve", NOW_MS, &request(b"hi"));
    let last = plaintext.len() - 70;
    plaintext[last] ^= 1;
    let payload = ForwardedRequest {
        attempt: 0,
        committee: vec![],
        excluded: vec![],
        ticket: forwarded(user_plaintext("eve", NOW_MS, &request(b"hi")), 0, vec![]).ticket,
        user_plaintext: plaintext,
        prepared: vec![],
    }
    .encode();
    let refusal = open_forwarded(&payload, &eve(), NOW_MS, 240_000);
    assert_eq!(refused(refusal), ErrorCode::BadSignature);
}

#[test]
fn an_old_user_request_is_expired() {
    let plaintext = user_plaintext("eve", NOW_MS - 240_001, &request(b"hi"));
    let payload = forwarded(plaintext, 0, vec![]).encode();
    let refusal = open_forwarded(&payload, &eve(), NOW_MS, 240_000);
    assert_eq!(refused(refusal), ErrorCode::Expired);
    let fresh = user_plaintext("eve", NOW_MS - 1_000, &request(b"hi"));
    let payload = forwarded(fresh, 0, vec![]).encode();
    assert!(open_forwarded(&payload, &eve(), NOW_MS, 240_000).is_ok());
}

/// Checks `forwarded` as committee member `me` against `set`.
fn session_check(
    forwarded: &ForwardedRequest,
    set: &SignerSet,
    me: &str,
) -> Result<Session, ApiError> {
    let checked = checked_for(&forwarded.user_plaintext);
    check_session(
        &checked,
        forwarded,
        &account("eve"),
        CHAIN,
        set,
        &account(me),
    )
}

fn member_of(forwarded: &ForwardedRequest) -> &'static str {
    SIGNERS
        .into_iter()
        .find(|n| forwarded.committee.contains(&account(n)))
        .expect("a member")
}

#[test]
fn a_correct_session_names_its_id_ticket_and_committee() {
    let forwarded = forwarded(user_plaintext("eve", NOW_MS, &request(b"hi")), 0, vec![]);
    let session = session_check(&forwarded, &signer_set(), member_of(&forwarded)).expect("ok");
    assert_eq!(session.committee.len(), 2);
    assert_eq!(session.ticket.committee, forwarded.committee);
    assert_eq!(session.id, session.ticket.session);
}

#[test]
fn a_ticket_that_does_not_verify_is_bad_ticket() {
    let mut forwarded = forwarded(user_plaintext("eve", NOW_MS, &request(b"hi")), 0, vec![]);
    forwarded.attempt = 1;
    let refusal = session_check(&forwarded, &signer_set(), member_of(&forwarded));
    assert_eq!(refused(refusal), ErrorCode::BadTicket);
}

#[test]
fn an_exclusion_list_naming_a_signer_twice_is_malformed_request() {
    let plaintext = user_plaintext("eve", NOW_MS, &request(b"hi"));
    let bob = account("bob");
    let forwarded = forwarded(plaintext, 0, vec![bob, bob]);
    let refusal = session_check(&forwarded, &signer_set(), member_of(&forwarded));
    assert_eq!(refused(refusal), ErrorCode::MalformedRequest);
}

#[test]
fn excluding_a_signer_the_ledger_does_not_exclude_is_wrong_committee() {
    let plaintext = user_plaintext("eve", NOW_MS, &request(b"hi"));
    let forwarded = forwarded(plaintext, 0, vec![account("bob")]);
    let me = member_of(&forwarded);
    let refusal = session_check(&forwarded, &signer_set(), me);
    assert_eq!(refused(refusal), ErrorCode::WrongCommittee);
    let mut set = signer_set();
    set.excluded = vec![Exclusion {
        account: account("bob"),
        until: BlockNumber(96),
    }];
    assert!(
        session_check(&forwarded, &set, me).is_ok(),
        "excluded beyond 95"
    );
    set.excluded[0].until = BlockNumber(95);
    assert_eq!(
        refused(session_check(&forwarded, &set, me)),
        ErrorCode::WrongCommittee,
        "the exclusion ended at the request's block"
    );
}

#[test]
fn a_committee_selection_does_not_give_is_wrong_committee() {
    let mut forwarded = forwarded(user_plaintext("eve", NOW_MS, &request(b"hi")), 0, vec![]);
    let outsider = SIGNERS
        .into_iter()
        .map(account)
        .find(|a| !forwarded.committee.contains(a))
        .expect("an outsider");
    forwarded.committee[0] = outsider;
    forwarded.committee.sort();
    // Re-sign the ticket so only the committee is wrong.
    let session = sign_session_id(&request_digest(&forwarded.user_plaintext), 0);
    forwarded.ticket = sigil_ledger_api::tx::sign_ticket(
        &key("eve"),
        CHAIN,
        session,
        BlockNumber(95),
        0,
        forwarded.committee.clone(),
    )
    .signature;
    let refusal = session_check(&forwarded, &signer_set(), member_of(&forwarded));
    assert_eq!(refused(refusal), ErrorCode::WrongCommittee);
}

#[test]
fn a_signer_outside_the_committee_is_not_in_committee() {
    let forwarded = forwarded(user_plaintext("eve", NOW_MS, &request(b"hi")), 0, vec![]);
    let outsider = SIGNERS
        .into_iter()
        .find(|n| !forwarded.committee.contains(&account(n)))
        .expect("an outsider");
    let refusal = session_check(&forwarded, &signer_set(), outsider);
    assert_eq!(refused(refusal), ErrorCode::NotInCommittee);
}

#[test]
fn too_few_eligible_signers_is_no_committee() {
    let checked = checked_for(&user_plaintext("eve", NOW_MS, &request(b"hi")));
    let excluded: BTreeSet<AccountId> = [account("alice"), account("bob")].into();
    let refusal = committee_for(&signer_set(), &checked, 0, &excluded);
    assert_eq!(refused(refusal), ErrorCode::NoCommittee);
}

#[test]
fn each_attempt_gets_its_own_session() {
    let plaintext = user_plaintext("eve", NOW_MS, &request(b"hi"));
    let first = forwarded(plaintext.clone(), 0, vec![]);
    let second = forwarded(plaintext, 1, vec![]);
    let a = session_check(&first, &signer_set(), member_of(&first)).expect("attempt 0");
    let b = session_check(&second, &signer_set(), member_of(&second)).expect("attempt 1");
    assert_ne!(a.id, b.id);
}

#[test]
fn a_retry_leaves_out_both_sides_of_a_new_dispute_while_enough_signers_remain() {
    let dispute = |accuser: &str, accused: &str| Dispute {
        accuser: account(accuser),
        accused: account(accused),
        until: BlockNumber(50),
    };
    let mut set = signer_set();
    set.signers.push(account("dave"));
    let names =
        |names: &[&str]| -> BTreeSet<AccountId> { names.iter().map(|n| account(n)).collect() };
    assert!(left_out(&set, 10, &BTreeSet::new()).is_empty());
    set.disputes.push(dispute("alice", "bob"));
    // Committees keep the pair apart: the accuser sits out.
    assert_eq!(left_out(&set, 10, &BTreeSet::new()), names(&["alice"]));
    // The retry of the request whose committee they were in leaves out both.
    let failed = names(&["alice", "bob"]);
    assert_eq!(left_out(&set, 10, &failed), names(&["alice", "bob"]));
    // Not below the threshold: with three signers, only the accuser.
    set.signers.pop();
    assert_eq!(left_out(&set, 10, &failed), names(&["alice"]));
    // Expired, the dispute counts no more.
    assert!(left_out(&set, 50, &failed).is_empty());
}

#[test]
fn only_the_owner_and_the_accounts_it_authorised_may_use_a_key_unless_it_is_public() {
    let stranger = account("ferdie");
    let mut snapshot = snapshot();
    let refusal = check_by(&stranger, request(b"hello"), &snapshot);
    assert_eq!(refused(refusal), ErrorCode::NotAuthorised);
    assert_eq!(ErrorCode::NotAuthorised.status(), 403);
    let registration = snapshot.registration.as_mut().expect("registered");
    registration.authorised = vec![stranger];
    check_by(&stranger, request(b"hello"), &snapshot).expect("authorised");
    let registration = snapshot.registration.as_mut().expect("registered");
    registration.authorised.clear();
    registration.public = true;
    let checked = check_by(&stranger, request(b"hello"), &snapshot).expect("public");
    assert_eq!(checked.requester, stranger);
}
