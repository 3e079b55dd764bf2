//! Every transaction: its success case and its rejection cases, asserting the state afterwards.

use std::collections::{BTreeSet, HashMap};

use sigil_crypto::{AccountKeypair, NodeSeed, derive_user_key};
use sigil_ledger::node::{component_header_check, dev_genesis};
use sigil_ledger::state::{ApplyContext, ReportedSession, State, TxError};
use sigil_ledger::tx;
use sigil_ledger::types::*;
use sigil_primitives::{
    AccountId, BlockNumber, DerivationPath, Endpoint, KeyScheme, ProgramId, ProgramInstance,
    ProgramList, SessionId, VerifyingKey, X25519PublicKey,
};

/// The transaction fee of the dev genesis.
const FEE: Balance = 1_000;

struct Harness {
    state: State,
    height: u64,
    /// Whether the last transaction went into the block (a failed call does, fee paid).
    last_included: bool,
    keys: HashMap<&'static str, AccountKeypair>,
}

fn key(name: &str) -> AccountKeypair {
    NodeSeed::dev(name).account_keypair()
}

fn network_key(seed: u8) -> VerifyingKey {
    let sk = k256::ecdsa::SigningKey::from_slice(&[seed; 32]).expect("scalar");
    VerifyingKey::from_k256(&(*sk.verifying_key()).into())
}

fn component(payload: &[u8]) -> Vec<u8> {
    [b"\0asm\x0d\x00\x01\x00".as_slice(), payload].concat()
}

fn endpoint(port: u16) -> Endpoint {
    Endpoint::new(format!("127.0.0.1:{port}")).expect("endpoint")
}

fn x25519(b: u8) -> X25519PublicKey {
    X25519PublicKey::from_bytes([b; 32]).expect("key")
}

impl Harness {
    /// The dev genesis, with `ferdie` (a user who is no validator) funded and `pauper` not.
    fn new() -> Self {
        let names = ["alice", "bob", "charlie", "dave", "eve", "ferdie", "pauper"];
        let mut genesis = dev_genesis();
        genesis
            .balances
            .push((key("ferdie").account_id(), 100_000_000));
        Self {
            state: State::genesis(&genesis).expect("genesis"),
            height: 0,
            last_included: false,
            keys: names.into_iter().map(|n| (n, key(n))).collect(),
        }
    }

    fn id(&self, who: &str) -> AccountId {
        self.keys[who].account_id()
    }

    fn apply_signed(&mut self, stx: &SignedTransaction) -> Result<Vec<Event>, TxError> {
        self.height += 1;
        let validate = |b: &[u8]| component_header_check(b);
        let ctx = ApplyContext {
            height: BlockNumber(self.height),
            validate_program: &validate,
            verify_evidence: Some(&stand_in_verifier),
            verify_consensus: None,
        };
        let applied = self.state.apply(stx, &ctx);
        self.last_included = applied.is_ok();
        let applied = applied?;
        match applied.failure {
            Some(failure) => {
                let failed = Event::CallFailed {
                    sender: stx.tx.sender,
                    nonce: stx.tx.nonce,
                    code: failure.code().into(),
                    message: failure.to_string(),
                };
                assert_eq!(applied.events, vec![failed], "a failed call's one event");
                Err(failure)
            }
            None => Ok(applied.events),
        }
    }

    fn sign(&self, who: &str, call: Call) -> SignedTransaction {
        let nonce = self.state.nonce(&self.id(who));
        tx::sign(&self.keys[who], &self.state.globals.chain_id, nonce, call)
    }

    fn apply(&mut self, who: &str, call: Call) -> Result<Vec<Event>, TxError> {
        let stx = self.sign(who, call);
        self.apply_signed(&stx)
    }

    /// Applies a call that must fail, and checks it changed nothing but, when it went into
    /// the block, the sender's fee and nonce.
    fn reject(&mut self, who: &str, call: Call) -> TxError {
        let mut expected = self.state.clone();
        let sender = self.id(who);
        let fee = expected.fee(&sender, &call);
        let err = self.apply(who, call).expect_err("must be rejected");
        if self.last_included {
            let account = expected.accounts.get(&sender).cloned().unwrap_or_default();
            expected.accounts.insert(
                sender,
                Account {
                    balance: account.balance - fee,
                    nonce: account.nonce + 1,
                    ..account
                },
            );
        }
        assert_eq!(
            self.state.digest(),
            expected.digest(),
            "a failed transaction changed more than the fee and nonce: {err}"
        );
        err
    }

    fn balance(&self, who: &str) -> Balance {
        self.state
            .accounts
            .get(&self.id(who))
            .map(|a| a.balance)
            .unwrap_or(0)
    }

    fn validate(&mut self, who: &str, port: u16) {
        self.apply(
            who,
            Call::Validate {
                x25519: x25519(port as u8),
                endpoint: endpoint(port),
                stake: 5_000,
            },
        )
        .expect("validate");
    }

    /// Three validators, jump-started and confirmed with `network_key(7)`.
    fn ready(&mut self) -> VerifyingKey {
        for (i, who) in ["bob", "charlie", "dave"].into_iter().enumerate() {
            self.validate(who, 3001 + i as u16);
        }
        self.apply("alice", Call::JumpStart).expect("jump start");
        let key = network_key(7);
        for who in ["bob", "charlie", "dave"] {
            self.apply(who, Call::ConfirmJumpStart { verifying_key: key })
                .expect("confirm");
        }
        key
    }

    fn store(&mut self, who: &str, payload: &[u8]) -> ProgramId {
        let events = self
            .apply(
                who,
                Call::StoreProgram {
                    bytecode: component(payload),
                    config_schema: vec![],
                    aux_schema: vec![],
                    oracle_keys: vec![],
                    version: 1,
                },
            )
            .expect("store program");
        match &events[0] {
            Event::ProgramStored { program, .. } => *program,
            other => panic!("unexpected event {other:?}"),
        }
    }
}

impl Harness {
    /// Registers a key for `who` with `ids` attached; returns owner, key and path.
    fn register(
        &mut self,
        who: &str,
        ids: &[ProgramId],
    ) -> (AccountId, VerifyingKey, DerivationPath) {
        let events = self
            .apply(
                who,
                Call::Register {
                    programs: programs(ids),
                    public: false,
                    scheme: KeyScheme::EcdsaSecp256k1,
                },
            )
            .expect("register");
        match &events[0] {
            Event::Registered {
                owner,
                verifying_key,
                derivation_path,
            } => (*owner, *verifying_key, derivation_path.clone()),
            other => panic!("unexpected event {other:?}"),
        }
    }
}

fn programs(ids: &[ProgramId]) -> ProgramList {
    ProgramList::new(
        ids.iter()
            .map(|p| ProgramInstance {
                program: *p,
                config: b"{}".to_vec(),
            })
            .collect(),
    )
    .expect("1..=5 programs")
}

#[test]
fn transfer() {
    let mut h = Harness::new();
    let (a, b) = (h.balance("alice"), h.balance("bob"));
    let events = h
        .apply(
            "alice",
            Call::Transfer {
                to: h.id("bob"),
                amount: 10,
            },
        )
        .expect("transfer");
    assert_eq!(
        events,
        vec![Event::Transferred {
            from: h.id("alice"),
            to: h.id("bob"),
            amount: 10
        }]
    );
    assert_eq!(
        (h.balance("alice"), h.balance("bob")),
        (a - 10 - FEE, b + 10)
    );
    assert_eq!(h.state.nonce(&h.id("alice")), 1);

    let to = h.id("bob");
    assert!(matches!(
        h.reject("pauper", Call::Transfer { to, amount: 1 }),
        TxError::InsufficientBalance { .. }
    ));
}

#[test]
fn bad_signature_and_bad_nonce() {
    let mut h = Harness::new();
    let to = h.id("bob");
    let mut stx = h.sign("alice", Call::Transfer { to, amount: 1 });
    stx.tx.call = Call::Transfer { to, amount: 1_000 };
    let before = h.state.digest();
    assert_eq!(h.apply_signed(&stx), Err(TxError::BadSignature));

    // Signed for another chain.
    let other = tx::sign(
        &h.keys["alice"],
        "other-chain",
        0,
        Call::Transfer { to, amount: 1 },
    );
    assert_eq!(h.apply_signed(&other), Err(TxError::BadSignature));

    let future = tx::sign(
        &h.keys["alice"],
        &h.state.globals.chain_id,
        5,
        Call::Transfer { to, amount: 1 },
    );
    assert_eq!(
        h.apply_signed(&future),
        Err(TxError::BadNonce {
            expected: 0,
            got: 5
        })
    );
    assert_eq!(h.state.digest(), before);

    // Replaying an included transaction fails on its nonce.
    let ok = h.sign("alice", Call::Transfer { to, amount: 1 });
    h.apply_signed(&ok).expect("first time");
    assert_eq!(
        h.apply_signed(&ok),
        Err(TxError::BadNonce {
            expected: 1,
            got: 0
        })
    );
}

#[test]
fn validate_change_and_leave() {
    let mut h = Harness::new();
    let before = h.balance("bob");
    h.validate("bob", 3001);
    let info = h
        .state
        .validators
        .get(&h.id("bob"))
        .expect("validator")
        .clone();
    assert_eq!(
        (info.stake, info.endpoint.as_str()),
        (5_000, "127.0.0.1:3001")
    );
    assert_eq!(h.balance("bob"), before - 5_000 - FEE);

    let call = Call::Validate {
        x25519: x25519(1),
        endpoint: endpoint(1),
        stake: 5_000,
    };
    assert!(matches!(h.reject("bob", call), TxError::AlreadyExists(_)));
    let call = Call::Validate {
        x25519: x25519(1),
        endpoint: endpoint(1),
        stake: 10,
    };
    assert!(matches!(h.reject("charlie", call), TxError::Invalid(_)));
    let call = Call::Validate {
        x25519: x25519(1),
        endpoint: endpoint(1),
        stake: 5_000,
    };
    assert!(matches!(
        h.reject("pauper", call),
        TxError::InsufficientBalance { .. }
    ));

    h.apply(
        "bob",
        Call::ChangeEndpoint {
            endpoint: endpoint(4000),
        },
    )
    .expect("change endpoint");
    h.apply("bob", Call::ChangeKeys { x25519: x25519(42) })
        .expect("change keys");
    let info = h.state.validators.get(&h.id("bob")).expect("validator");
    assert_eq!(
        (info.endpoint.as_str(), info.x25519),
        ("127.0.0.1:4000", x25519(42))
    );
    assert!(matches!(
        h.reject(
            "charlie",
            Call::ChangeEndpoint {
                endpoint: endpoint(1)
            }
        ),
        TxError::NotFound(_)
    ));
    assert!(matches!(
        h.reject("charlie", Call::ChangeKeys { x25519: x25519(1) }),
        TxError::NotFound(_)
    ));

    h.apply("bob", Call::Leave).expect("leave");
    assert!(!h.state.validators.contains(&h.id("bob")));
    let fees = FEE * h.state.nonce(&h.id("bob"));
    assert_eq!(h.balance("bob"), before - fees, "the stake is back");
    assert!(matches!(h.reject("bob", Call::Leave), TxError::NotFound(_)));
}

#[test]
fn jump_start_and_confirmations() {
    let mut h = Harness::new();
    for (i, who) in ["bob", "charlie"].into_iter().enumerate() {
        h.validate(who, 3001 + i as u16);
    }
    assert!(
        matches!(h.reject("alice", Call::JumpStart), TxError::WrongState(_)),
        "too few validators"
    );
    h.validate("dave", 3003);
    h.validate("eve", 3004);
    assert!(matches!(
        h.reject("bob", Call::JumpStart),
        TxError::Unauthorised(_)
    ));
    let key = network_key(7);
    assert!(matches!(
        h.reject("bob", Call::ConfirmJumpStart { verifying_key: key }),
        TxError::WrongState(_)
    ));

    let events = h.apply("alice", Call::JumpStart).expect("jump start");
    let chosen = vec![h.id("bob"), h.id("charlie"), h.id("dave")];
    assert_eq!(
        events,
        vec![Event::JumpStartStarted {
            signers: chosen.clone(),
            threshold: 2
        }]
    );
    assert_eq!(h.state.globals.signer_set.signers, chosen);
    assert!(
        matches!(h.reject("alice", Call::JumpStart), TxError::WrongState(_)),
        "jump start twice"
    );

    assert!(matches!(
        h.reject("eve", Call::ConfirmJumpStart { verifying_key: key }),
        TxError::Unauthorised(_)
    ));
    h.apply("bob", Call::ConfirmJumpStart { verifying_key: key })
        .expect("confirm");
    assert!(matches!(
        h.reject("bob", Call::ConfirmJumpStart { verifying_key: key }),
        TxError::AlreadyExists(_)
    ));
    let other = network_key(8);
    assert!(matches!(
        h.reject(
            "charlie",
            Call::ConfirmJumpStart {
                verifying_key: other
            }
        ),
        TxError::Invalid(_)
    ));
    h.apply("charlie", Call::ConfirmJumpStart { verifying_key: key })
        .expect("confirm");
    assert_eq!(h.state.globals.signer_set.network_key, None);
    let events = h
        .apply("dave", Call::ConfirmJumpStart { verifying_key: key })
        .expect("confirm");
    assert_eq!(
        events.last(),
        Some(&Event::JumpStartDone { network_key: key })
    );
    assert_eq!(h.state.globals.signer_set.network_key, Some(key));
    assert_eq!(h.state.globals.signer_set.jump_start, JumpStartStatus::Done);
    assert!(matches!(
        h.reject("alice", Call::JumpStart),
        TxError::WrongState(_)
    ));

    // A signer leaves through a reshare to a replacement, which cannot leave meanwhile.
    let events = h
        .apply("bob", Call::Leave)
        .expect("a signer leaves by a reshare");
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::ReshareStarted { new_signers, .. } if new_signers.contains(&h.id("eve"))))
    );
    assert!(matches!(
        h.reject("eve", Call::Leave),
        TxError::WrongState(_)
    ));
}

#[test]
fn each_scheme_gets_its_own_network_key_and_registers_children_of_it() {
    let mut h = Harness::new();
    let ecdsa = h.ready();
    let p = h.store("ferdie", b"policy");
    // An Ed25519 key (an account id is one) and a BIP-340 x-only key.
    let ed25519 = VerifyingKey::tagged(KeyScheme::Ed25519, h.id("eve").as_bytes()).expect("key");
    let x_only: [u8; 32] = network_key(8).as_bytes()[1..].try_into().expect("32");
    let bip340 = VerifyingKey::tagged(KeyScheme::Bip340, &x_only).expect("key");
    let register = |scheme| Call::Register {
        programs: programs(&[p]),
        public: false,
        scheme,
    };
    assert!(matches!(
        h.reject("ferdie", register(KeyScheme::Ed25519)),
        TxError::WrongState(_)
    ));
    h.apply(
        "bob",
        Call::ConfirmJumpStart {
            verifying_key: ed25519,
        },
    )
    .expect("confirm");
    assert!(matches!(
        h.reject(
            "bob",
            Call::ConfirmJumpStart {
                verifying_key: ed25519
            }
        ),
        TxError::AlreadyExists(_)
    ));
    let other = VerifyingKey::tagged(KeyScheme::Ed25519, h.id("ferdie").as_bytes()).expect("key");
    assert!(matches!(
        h.reject(
            "charlie",
            Call::ConfirmJumpStart {
                verifying_key: other
            }
        ),
        TxError::Invalid(_)
    ));
    assert!(matches!(
        h.reject(
            "eve",
            Call::ConfirmJumpStart {
                verifying_key: ed25519
            }
        ),
        TxError::Unauthorised(_)
    ));
    h.apply(
        "charlie",
        Call::ConfirmJumpStart {
            verifying_key: ed25519,
        },
    )
    .expect("confirm");
    // Another scheme's confirmations count apart.
    h.apply(
        "dave",
        Call::ConfirmJumpStart {
            verifying_key: bip340,
        },
    )
    .expect("confirm");
    assert_eq!(h.state.globals.signer_set.scheme_keys, vec![]);
    let events = h
        .apply(
            "dave",
            Call::ConfirmJumpStart {
                verifying_key: ed25519,
            },
        )
        .expect("confirm");
    assert_eq!(
        events.last(),
        Some(&Event::NetworkKeyCreated {
            network_key: ed25519
        })
    );
    let set = &h.state.globals.signer_set;
    assert_eq!(set.network_key_of(KeyScheme::Ed25519), Some(ed25519));
    assert_eq!(set.network_key_of(KeyScheme::EcdsaSecp256k1), Some(ecdsa));
    assert_eq!(set.network_key_of(KeyScheme::Bip340), None);
    assert!(matches!(
        h.reject(
            "bob",
            Call::ConfirmJumpStart {
                verifying_key: ed25519
            }
        ),
        TxError::AlreadyExists(_)
    ));
    let events = h
        .apply("ferdie", register(KeyScheme::Ed25519))
        .expect("register");
    let Some(Event::Registered {
        verifying_key,
        derivation_path,
        ..
    }) = events.first()
    else {
        panic!("no registration event: {events:?}");
    };
    let child = sigil_crypto::derive_schnorr_child(&ed25519, derivation_path).expect("derives");
    assert_eq!(*verifying_key, child.key);
    assert_eq!(verifying_key.scheme(), KeyScheme::Ed25519);
    assert!(h.state.registrations.contains(verifying_key));
    assert!(matches!(
        h.reject("ferdie", register(KeyScheme::Bip340)),
        TxError::WrongState(_)
    ));
    for who in ["bob", "charlie"] {
        h.apply(
            who,
            Call::ConfirmJumpStart {
                verifying_key: bip340,
            },
        )
        .expect("confirm");
    }
    assert_eq!(
        h.state.globals.signer_set.scheme_keys,
        vec![ed25519, bip340]
    );
    let events = h
        .apply("ferdie", register(KeyScheme::Bip340))
        .expect("register");
    assert!(matches!(
        events.first(),
        Some(Event::Registered { verifying_key, .. }) if verifying_key.scheme() == KeyScheme::Bip340
    ));
}

#[test]
fn programs_store_and_remove() {
    let mut h = Harness::new();
    let id = h.store("bob", b"one");
    let record = h.state.programs.get(&id).expect("stored");
    assert_eq!((record.deployer, record.ref_count), (h.id("bob"), 0));
    let expected = sigil_crypto::ProgramContents {
        bytecode: &component(b"one"),
        config_schema: b"",
        aux_schema: b"",
        oracle_keys: &[],
        version: 1,
    }
    .id();
    assert_eq!(id, expected, "id is the hash of the contents");

    let store = |bytecode: Vec<u8>, schema: &[u8]| Call::StoreProgram {
        bytecode,
        config_schema: schema.to_vec(),
        aux_schema: vec![],
        oracle_keys: vec![],
        version: 1,
    };
    assert!(matches!(
        h.reject("bob", store(component(b"one"), b"")),
        TxError::AlreadyExists(_)
    ));
    assert!(
        matches!(
            h.reject("bob", store(component(&vec![0; 1_000_000]), b"")),
            TxError::Invalid(_)
        ),
        "oversized"
    );
    assert!(
        matches!(
            h.reject("bob", store(b"\0asm\x01\x00\x00\x00".to_vec(), b"")),
            TxError::Invalid(_)
        ),
        "core module"
    );
    assert!(matches!(
        h.reject("bob", store(b"garbage".to_vec(), b"")),
        TxError::Invalid(_)
    ));
    assert!(matches!(
        h.reject("bob", store(component(b"two"), b"{not json")),
        TxError::Invalid(_)
    ));

    assert!(matches!(
        h.reject("charlie", Call::RemoveProgram { program: id }),
        TxError::Unauthorised(_)
    ));
    let unknown = ProgramId::from_bytes([3; 32]).expect("id");
    assert!(matches!(
        h.reject("bob", Call::RemoveProgram { program: unknown }),
        TxError::NotFound(_)
    ));
    h.apply("bob", Call::RemoveProgram { program: id })
        .expect("remove");
    assert!(!h.state.programs.contains(&id));
}

#[test]
fn register_before_and_after_jump_start() {
    let mut h = Harness::new();
    let p = h.store("alice", b"policy");
    assert!(matches!(
        h.reject(
            "ferdie",
            Call::Register {
                programs: programs(&[p]),
                public: false,
                scheme: KeyScheme::EcdsaSecp256k1,
            }
        ),
        TxError::WrongState(_)
    ));
    let network = h.ready();

    let unknown = ProgramId::from_bytes([3; 32]).expect("id");
    assert!(matches!(
        h.reject(
            "ferdie",
            Call::Register {
                programs: programs(&[p, unknown]),
                public: false,
                scheme: KeyScheme::EcdsaSecp256k1,
            }
        ),
        TxError::NotFound(_)
    ));

    let (owner, verifying_key, derivation_path) = h.register("ferdie", &[p]);
    assert_eq!(owner, h.id("ferdie"));
    assert_eq!(derivation_path.indices().len(), 8);
    assert_eq!(
        verifying_key,
        derive_user_key(&network, &derivation_path).expect("derives")
    );
    let reg = h.state.registrations.get(&verifying_key).expect("stored");
    assert_eq!(reg.derivation_path, derivation_path);
    assert_eq!(h.state.programs.get(&p).expect("program").ref_count, 1);

    // A second registration by the same owner gets a different key.
    let (_, second, _) = h.register("ferdie", &[p]);
    assert_ne!(second, verifying_key);
    assert_eq!(h.state.programs.get(&p).expect("program").ref_count, 2);

    // Program in use cannot be removed.
    assert!(matches!(
        h.reject("alice", Call::RemoveProgram { program: p }),
        TxError::WrongState(_)
    ));

    // More than five programs cannot even be encoded.
    let six = serde_json::json!({"register": {"programs": vec![serde_json::json!({"program": p, "config": "0x"}); 6]}});
    assert!(serde_json::from_value::<Call>(six).is_err());
}

#[test]
fn only_the_owner_changes_who_may_use_a_key() {
    let mut h = Harness::new();
    let p1 = h.store("alice", b"p1");
    h.ready();
    let (_, vk, _) = h.register("ferdie", &[p1]);
    let (eve, dave, ferdie) = (h.id("eve"), h.id("dave"), h.id("ferdie"));
    let registration = |h: &Harness| h.state.registrations.get(&vk).expect("reg").clone();
    assert!(!registration(&h).public && registration(&h).authorised.is_empty());
    assert!(registration(&h).admits(&ferdie) && !registration(&h).admits(&eve));

    let authorise = |account| Call::Authorise {
        verifying_key: vk,
        account,
    };
    assert!(matches!(
        h.reject("eve", authorise(eve)),
        TxError::Unauthorised(_)
    ));
    assert!(matches!(
        h.reject("ferdie", authorise(ferdie)),
        TxError::Invalid(_)
    ));
    let events = h.apply("ferdie", authorise(eve)).expect("authorise eve");
    let mut both = vec![eve, dave];
    both.sort();
    h.apply("ferdie", authorise(dave)).expect("authorise dave");
    assert!(matches!(
        h.reject("ferdie", authorise(eve)),
        TxError::AlreadyExists(_)
    ));
    assert_eq!(
        events,
        vec![Event::AccessChanged {
            verifying_key: vk,
            public: false,
            authorised: vec![eve],
        }]
    );
    assert_eq!(registration(&h).authorised, both, "kept ascending");
    assert!(registration(&h).admits(&eve) && registration(&h).is_insider(&eve));

    let deauthorise = Call::Deauthorise {
        verifying_key: vk,
        account: eve,
    };
    h.apply("ferdie", deauthorise.clone()).expect("deauthorise");
    assert!(matches!(
        h.reject("ferdie", deauthorise),
        TxError::NotFound(_)
    ));
    assert!(!registration(&h).admits(&eve));

    let public = |public| Call::SetPublic {
        verifying_key: vk,
        public,
    };
    assert!(matches!(
        h.reject("dave", public(true)),
        TxError::Unauthorised(_)
    ));
    h.apply("ferdie", public(true)).expect("public");
    assert!(registration(&h).admits(&eve) && !registration(&h).is_insider(&eve));
    h.apply("ferdie", public(false)).expect("closed again");
    assert!(!registration(&h).admits(&eve));

    // A new owner starts with nobody authorised.
    h.apply(
        "ferdie",
        Call::ChangeOwner {
            verifying_key: vk,
            new_owner: eve,
        },
    )
    .expect("change owner");
    assert!(registration(&h).authorised.is_empty());
    assert!(!registration(&h).admits(&dave) && registration(&h).admits(&eve));
}

#[test]
fn a_key_may_be_registered_public() {
    let mut h = Harness::new();
    let p1 = h.store("alice", b"p1");
    h.ready();
    let call = Call::Register {
        programs: programs(&[p1]),
        public: true,
        scheme: KeyScheme::EcdsaSecp256k1,
    };
    let events = h.apply("ferdie", call).expect("register");
    let Some(Event::Registered { verifying_key, .. }) = events.first() else {
        panic!("{events:?}")
    };
    let registration = h.state.registrations.get(verifying_key).expect("reg");
    assert!(registration.public && registration.admits(&h.id("eve")));
}

#[test]
fn change_programs_and_owner() {
    let mut h = Harness::new();
    let p1 = h.store("alice", b"p1");
    let p2 = h.store("alice", b"p2");
    h.ready();
    let (_, vk, _) = h.register("ferdie", &[p1]);

    let change = |ids: &[ProgramId]| Call::ChangePrograms {
        verifying_key: vk,
        programs: programs(ids),
    };
    assert!(matches!(
        h.reject("eve", change(&[p2])),
        TxError::Unauthorised(_)
    ));
    assert!(matches!(
        h.reject(
            "ferdie",
            change(&[ProgramId::from_bytes([9; 32]).expect("id")])
        ),
        TxError::NotFound(_)
    ));
    h.apply("ferdie", change(&[p2, p2]))
        .expect("change programs");
    assert_eq!(h.state.programs.get(&p1).expect("p1").ref_count, 0);
    assert_eq!(h.state.programs.get(&p2).expect("p2").ref_count, 2);
    h.apply("alice", Call::RemoveProgram { program: p1 })
        .expect("p1 is free now");

    let unknown_key = network_key(9);
    let eve = h.id("eve");
    assert!(matches!(
        h.reject(
            "ferdie",
            Call::ChangeOwner {
                verifying_key: unknown_key,
                new_owner: eve
            }
        ),
        TxError::NotFound(_)
    ));
    assert!(matches!(
        h.reject(
            "eve",
            Call::ChangeOwner {
                verifying_key: vk,
                new_owner: eve
            }
        ),
        TxError::Unauthorised(_)
    ));
    h.apply(
        "ferdie",
        Call::ChangeOwner {
            verifying_key: vk,
            new_owner: eve,
        },
    )
    .expect("change owner");
    assert_eq!(h.state.registrations.get(&vk).expect("reg").owner, eve);
    assert!(matches!(
        h.reject("ferdie", change(&[p2])),
        TxError::Unauthorised(_)
    ));
    h.apply("eve", change(&[p2]))
        .expect("new owner changes programs");
}

impl Harness {
    /// A relayer's (eve's) ticket for a session of `committee` at the current height.
    fn ticket(&self, by: &str, session: u8, committee: &[&str]) -> SessionTicket {
        let mut members: Vec<AccountId> = committee.iter().map(|n| self.id(n)).collect();
        members.sort();
        tx::sign_ticket(
            &self.keys[by],
            &self.state.globals.chain_id,
            SessionId::new([session; 32]),
            BlockNumber(self.height),
            0,
            members,
        )
    }

    fn stake(&self, who: &str) -> Balance {
        self.state
            .validators
            .get(&self.id(who))
            .expect("validator")
            .stake
    }
}

/// Evidence the stand-in verifier accepts against `offender` (the engine's own evidence and
/// its checks are tested in sigil-mpc).
fn proof_against(offender: AccountId) -> Vec<u8> {
    [b"proof:".as_slice(), offender.as_bytes()].concat()
}

/// Accepts [`proof_against`] the offender, of equivocation only (the engine's verifier also
/// accepts FROST's failed proofs; its checks are tested in sigil-mpc).
fn stand_in_verifier(
    of: ReportedSession,
    session: &[u8; 32],
    offender: &AccountId,
    kind: FaultKind,
    evidence: &[u8],
) -> Result<(), String> {
    let proves = match of {
        ReportedSession::Signing => {
            kind == FaultKind::Equivocation && evidence == proof_against(*offender)
        }
        ReportedSession::KeyGeneration => {
            kind == FaultKind::FailedProof && evidence == keygen_proof_against(session, *offender)
        }
    };
    if proves {
        Ok(())
    } else {
        Err("not a proof".into())
    }
}

/// What the stand-in verifier takes for proof that `offender` spoiled key generation `session`.
fn keygen_proof_against(session: &[u8; 32], offender: AccountId) -> Vec<u8> {
    let mut proof = b"keygen".to_vec();
    proof.extend(session);
    proof.extend(offender.as_bytes());
    proof
}

fn proven(ticket: SessionTicket, offender: AccountId) -> Call {
    Call::ReportOffence {
        ticket,
        offender,
        kind: FaultKind::Equivocation,
        evidence: proof_against(offender),
    }
}

fn report(ticket: SessionTicket, offender: AccountId, kind: FaultKind) -> Call {
    Call::ReportOffence {
        ticket,
        offender,
        kind,
        evidence: vec![],
    }
}

#[test]
fn false_offence_reports_are_refused() {
    let mut h = Harness::new();
    h.ready();
    h.validate("eve", 3010);
    let (bob, charlie, dave) = (h.id("bob"), h.id("charlie"), h.id("dave"));
    let pair = h.ticket("eve", 1, &["bob", "charlie"]);
    assert!(
        matches!(
            h.reject("eve", report(pair.clone(), bob, FaultKind::Unresponsive)),
            TxError::Unauthorised(_)
        ),
        "reporter not a signer"
    );
    assert!(
        matches!(
            h.reject("bob", report(pair.clone(), bob, FaultKind::Unresponsive)),
            TxError::Invalid(_)
        ),
        "self report"
    );
    assert!(
        matches!(
            h.reject("bob", report(pair.clone(), dave, FaultKind::Unresponsive)),
            TxError::Invalid(_)
        ),
        "the accused was not in the committee"
    );
    assert!(
        matches!(
            h.reject(
                "dave",
                report(pair.clone(), charlie, FaultKind::Unresponsive)
            ),
            TxError::Unauthorised(_)
        ),
        "the reporter was not in the committee"
    );
    let own = h.ticket("bob", 1, &["bob", "charlie"]);
    assert!(
        matches!(
            h.reject("bob", report(own, charlie, FaultKind::Unresponsive)),
            TxError::Invalid(_)
        ),
        "a ticket must come from a relayer"
    );
    let mut tampered = pair.clone();
    tampered.attempt = 1;
    assert!(
        matches!(
            h.reject("bob", report(tampered, charlie, FaultKind::Unresponsive)),
            TxError::Invalid(_)
        ),
        "the ticket's signature covers the attempt"
    );
    let mut future = pair.clone();
    future.block = BlockNumber(h.height + 10);
    assert!(matches!(
        h.reject("bob", report(future, charlie, FaultKind::Unresponsive)),
        TxError::Invalid(_)
    ));
    let bogus = Call::ReportOffence {
        ticket: pair.clone(),
        offender: charlie,
        kind: FaultKind::FailedProof,
        evidence: b"not evidence".to_vec(),
    };
    assert!(
        matches!(h.reject("bob", bogus), TxError::Invalid(_)),
        "evidence the ledger cannot verify proves nothing"
    );
    let with_evidence = Call::ReportOffence {
        ticket: pair.clone(),
        offender: charlie,
        kind: FaultKind::Unresponsive,
        evidence: vec![1],
    };
    assert!(matches!(
        h.reject("bob", with_evidence),
        TxError::Invalid(_)
    ));
    let proof_of_another_kind = Call::ReportOffence {
        ticket: pair.clone(),
        offender: charlie,
        kind: FaultKind::FailedProof,
        evidence: proof_against(charlie),
    };
    assert!(matches!(
        h.reject("bob", proof_of_another_kind),
        TxError::Invalid(_)
    ));
    let max = h.state.globals.parameters.max_evidence_size as usize;
    let oversized = Call::ReportOffence {
        ticket: pair,
        offender: charlie,
        kind: FaultKind::Equivocation,
        evidence: vec![0; max + 1],
    };
    let TxError::Invalid(why) = h.reject("bob", oversized) else {
        panic!("oversized evidence")
    };
    assert!(why.contains("max_evidence_size"), "{why}");
    assert_eq!(h.state.offences.len(), 0);
}

#[test]
fn an_accusation_is_a_dispute_that_slashes_nobody() {
    let mut h = Harness::new();
    h.ready();
    h.validate("eve", 3010);
    let (bob, charlie) = (h.id("bob"), h.id("charlie"));
    let window = h.state.globals.parameters.offence_window;

    // A committee of two: one member's word against the other's.
    let pair = h.ticket("eve", 1, &["bob", "charlie"]);
    let events = h
        .apply(
            "bob",
            report(pair.clone(), charlie, FaultKind::Unresponsive),
        )
        .expect("report");
    let at = h.height;
    let Some(Event::OffenceReported { offence }) = events.get(1) else {
        panic!("recorded: {events:?}")
    };
    assert_eq!(
        (offence.offender, offence.kind, offence.reporters.clone()),
        (charlie, FaultKind::Unresponsive, vec![bob])
    );
    assert_eq!(offence.recorded, Some(BlockNumber(at)));
    assert!(!offence.proven);
    assert_eq!(offence.slashed, 0);
    assert_eq!(h.stake("charlie"), 5_000);
    assert!(!events.iter().any(|e| matches!(e, Event::Slashed { .. })));
    let set = &h.state.globals.signer_set;
    assert!(set.excluded_at(at).is_empty(), "nobody is excluded");
    // The pair is kept apart for the window: the accuser sits out, since nothing tells the two
    // apart and a report must not push a peer out.
    assert_eq!(set.sidelined_at(at), BTreeSet::from([bob]));
    assert_eq!(set.excludable_at(at), BTreeSet::from([bob, charlie]));
    assert!(set.sidelined_at(at + window).is_empty());
    assert!(matches!(
        h.reject(
            "bob",
            report(pair.clone(), charlie, FaultKind::Unresponsive)
        ),
        TxError::AlreadyExists(_)
    ));
    // The accused may accuse back: a second dispute of the same pair.
    h.apply("charlie", report(pair, bob, FaultKind::InvalidMessage))
        .expect("counter-accusation");
    assert_eq!(h.stake("bob"), 5_000);
    assert_eq!(h.state.globals.signer_set.sidelined_at(h.height).len(), 1);
    assert!(h.state.globals.signer_set.pending_reshare.is_none());
}

#[test]
fn one_accuser_never_slashes_or_rotates_out_however_often_it_accuses() {
    let mut h = Harness::new();
    h.ready();
    h.validate("eve", 3010);
    let (bob, charlie) = (h.id("bob"), h.id("charlie"));
    for session in 1..=20 {
        let ticket = h.ticket("eve", session, &["bob", "charlie"]);
        for kind in [
            FaultKind::Unresponsive,
            FaultKind::InvalidMessage,
            FaultKind::FailedProof,
            FaultKind::Equivocation,
        ] {
            let call = report(ticket.clone(), charlie, kind);
            // One report per session and accused, whatever the kind.
            let _ = h.apply("bob", call);
        }
    }
    assert_eq!(h.state.offences.len(), 20);
    assert_eq!(h.stake("charlie"), 5_000);
    let set = &h.state.globals.signer_set;
    assert!(set.pending_reshare.is_none());
    assert!(set.signers.contains(&charlie));
    assert_eq!(set.sidelined_at(h.height), BTreeSet::from([bob]));
}

#[test]
fn threshold_distinct_accusers_rotate_a_signer_out_without_a_slash() {
    let mut h = Harness::new();
    h.ready();
    h.validate("eve", 3010);
    let (bob, charlie, dave, eve) = (h.id("bob"), h.id("charlie"), h.id("dave"), h.id("eve"));
    // A committee of three where two members accuse the third.
    let trio = h.ticket("eve", 2, &["bob", "charlie", "dave"]);
    let events = h
        .apply("bob", report(trio.clone(), dave, FaultKind::Unresponsive))
        .expect("first report");
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::ReshareStarted { .. }))
    );
    let events = h
        .apply("charlie", report(trio, dave, FaultKind::FailedProof))
        .expect("second report");
    assert!(events.iter().any(|e| matches!(
        e,
        Event::OffenceReportReceived { reporter, .. } if *reporter == charlie
    )));
    let record = h.state.offences.get(&0).expect("record");
    assert_eq!(record.reporters, vec![bob, charlie]);
    assert_eq!(h.stake("dave"), 5_000, "accusations never slash");
    let set = &h.state.globals.signer_set;
    assert_eq!(set.sidelined_at(h.height), BTreeSet::from([dave]));
    let pending = set.pending_reshare.clone().expect("dave is rotated out");
    assert!(!pending.new_signers.contains(&dave));
    assert!(pending.new_signers.contains(&eve));
}

#[test]
fn repeated_proven_offences_rotate_the_offender_out() {
    let mut h = Harness::new();
    let key = h.ready();
    h.validate("eve", 3010);
    let mut params = h.state.globals.parameters.clone();
    params.max_offences = 2;
    h.apply("alice", Call::SetParameters { parameters: params })
        .expect("parameters");
    let window = h.state.globals.parameters.offence_window;
    let (bob, charlie, dave, eve) = (h.id("bob"), h.id("charlie"), h.id("dave"), h.id("eve"));
    let first = h.ticket("eve", 1, &["bob", "charlie"]);
    let events = h
        .apply("bob", proven(first, charlie))
        .expect("first offence");
    let at = h.height;
    let Some(Event::OffenceReported { offence }) = events.get(1) else {
        panic!("recorded: {events:?}")
    };
    assert!(offence.proven);
    // 10% of 5,000.
    assert_eq!(offence.slashed, 500);
    assert!(events.contains(&Event::Slashed {
        account: charlie,
        amount: 500,
        stake: 4_500
    }));
    let set = &h.state.globals.signer_set;
    assert!(set.excluded_at(at).contains(&charlie));
    assert!(set.excluded_at(at + window - 1).contains(&charlie));
    assert!(!set.excluded_at(at + window).contains(&charlie));
    assert!(set.pending_reshare.is_none());
    // A proven offender's accusations about that session count for nothing.
    let again = h.ticket("eve", 1, &["bob", "charlie"]);
    assert!(matches!(
        h.reject("charlie", report(again, bob, FaultKind::Unresponsive)),
        TxError::WrongState(_)
    ));
    let second = h.ticket("eve", 2, &["charlie", "dave"]);
    let events = h
        .apply("dave", proven(second, charlie))
        .expect("second offence");
    let expected_new = {
        // Order: the staying signers in ledger order, then the replacement.
        let mut v: Vec<AccountId> = h
            .state
            .globals
            .signer_set
            .signers
            .iter()
            .copied()
            .filter(|s| *s != charlie)
            .collect();
        v.push(eve);
        v
    };
    assert!(events.contains(&Event::ReshareStarted {
        new_signers: expected_new.clone(),
        new_threshold: 2
    }));
    for who in ["bob", "dave", "eve"] {
        h.apply(who, Call::ConfirmReshare { verifying_key: key })
            .expect("confirm");
    }
    let mut signers = h.state.globals.signer_set.signers.clone();
    signers.sort();
    let mut new_signers = vec![bob, dave, eve];
    new_signers.sort();
    assert_eq!(signers, new_signers);
    assert_eq!(h.state.globals.signer_set.network_key, Some(key));
    assert!(h.state.validators.contains(&charlie), "still a validator");
}

#[test]
fn an_accusation_proven_later_slashes_once() {
    let mut h = Harness::new();
    h.ready();
    h.validate("eve", 3010);
    let (bob, charlie, dave) = (h.id("bob"), h.id("charlie"), h.id("dave"));
    let trio = h.ticket("eve", 3, &["bob", "charlie", "dave"]);
    h.apply("bob", report(trio.clone(), dave, FaultKind::Equivocation))
        .expect("accusation");
    assert_eq!(h.stake("dave"), 5_000);
    h.apply("charlie", proven(trio, dave)).expect("proof");
    let record = h.state.offences.get(&0).expect("record");
    assert_eq!(
        (record.proven, record.slashed, record.reporters.clone()),
        (true, 500, vec![bob, charlie])
    );
    assert_eq!(h.stake("dave"), 4_500);
}

#[test]
fn an_offender_proven_later_loses_the_accusations_it_raced_in_first() {
    let mut h = Harness::new();
    h.ready();
    h.validate("eve", 3010);
    let (bob, charlie, dave) = (h.id("bob"), h.id("charlie"), h.id("dave"));
    let trio = h.ticket("eve", 3, &["bob", "charlie", "dave"]);
    // dave equivocates, and its accusations of the honest two land before the proof.
    h.apply(
        "dave",
        report(trio.clone(), charlie, FaultKind::Unresponsive),
    )
    .expect("dave's accusation of charlie");
    h.apply("dave", report(trio.clone(), bob, FaultKind::InvalidMessage))
        .expect("dave's accusation of bob");
    h.apply(
        "bob",
        report(trio.clone(), charlie, FaultKind::Unresponsive),
    )
    .expect("bob's own accusation of charlie");
    assert_eq!(h.state.offences.len(), 2);
    let events = h
        .apply("charlie", proven(trio.clone(), dave))
        .expect("proof");
    let withdrawn: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::AccusationWithdrawn {
                session,
                reporter,
                offender,
            } => Some((*session, *reporter, *offender)),
            _ => None,
        })
        .collect();
    assert_eq!(
        withdrawn,
        [(trio.session, dave, charlie), (trio.session, dave, bob)]
    );
    // The record of bob's own accusation stays with bob alone; the one only dave made is gone.
    let records: Vec<_> = h
        .state
        .offences
        .iter()
        .map(|(_, o)| (o.offender, o.reporters.clone(), o.proven))
        .collect();
    assert_eq!(
        records,
        [(charlie, vec![bob], false), (dave, vec![charlie], true)]
    );
    let disputes: Vec<_> = h
        .state
        .globals
        .signer_set
        .disputes_at(h.height)
        .map(|d| (d.accuser, d.accused))
        .collect();
    assert_eq!(disputes, [(bob, charlie)]);
    assert!(matches!(
        h.reject("dave", report(trio, charlie, FaultKind::Unresponsive)),
        TxError::WrongState(_)
    ));
}

#[test]
fn a_signer_leaves_through_a_reshare() {
    let mut h = Harness::new();
    let key = h.ready();
    h.validate("eve", 3010);
    let balance = h.balance("bob");
    let events = h.apply("bob", Call::Leave).expect("leave");
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::ReshareStarted { .. }))
    );
    assert!(matches!(
        h.reject("bob", Call::Leave),
        TxError::AlreadyExists(_)
    ));
    assert!(h.state.globals.signer_set.signers.contains(&h.id("bob")));
    for who in ["charlie", "dave", "eve"] {
        h.apply(who, Call::ConfirmReshare { verifying_key: key })
            .expect("confirm");
    }
    assert!(!h.state.globals.signer_set.signers.contains(&h.id("bob")));
    assert!(!h.state.validators.contains(&h.id("bob")), "bob left");
    assert_eq!(
        h.balance("bob"),
        balance + 5_000 - 2 * FEE,
        "stake returned, the fees of the leave and of the refused second leave paid"
    );
}

#[test]
fn slash_parameters_are_checked() {
    let mut h = Harness::new();
    let mut params = h.state.globals.parameters.clone();
    params.slash_misbehaviour_permille = 1001;
    assert!(matches!(
        h.reject("alice", Call::SetParameters { parameters: params }),
        TxError::Invalid(_)
    ));
}

#[test]
fn reshare_confirmations() {
    let mut h = Harness::new();
    let key = h.ready();
    assert!(matches!(
        h.reject("bob", Call::ConfirmReshare { verifying_key: key }),
        TxError::WrongState(_)
    ));
    // Signer rotation starts reshares (a later issue); the confirmation logic is checked here.
    h.validate("eve", 3010);
    let (bob, charlie, eve) = (h.id("bob"), h.id("charlie"), h.id("eve"));
    h.state.globals.signer_set.pending_reshare = Some(PendingReshare {
        started: BlockNumber(h.height),
        old_signers: h.state.globals.signer_set.signers.clone(),
        new_signers: vec![bob, charlie, eve],
        new_threshold: 2,
        confirmations: vec![],
        scheme_keys: vec![],
        scheme_confirmations: vec![],
    });
    assert!(matches!(
        h.reject("dave", Call::ConfirmReshare { verifying_key: key }),
        TxError::Unauthorised(_)
    ));
    assert!(matches!(
        h.reject(
            "eve",
            Call::ConfirmReshare {
                verifying_key: network_key(1)
            }
        ),
        TxError::Invalid(_)
    ));
    h.apply("bob", Call::ConfirmReshare { verifying_key: key })
        .expect("confirm");
    assert!(matches!(
        h.reject("bob", Call::ConfirmReshare { verifying_key: key }),
        TxError::AlreadyExists(_)
    ));
    h.apply("charlie", Call::ConfirmReshare { verifying_key: key })
        .expect("confirm");
    let events = h
        .apply("eve", Call::ConfirmReshare { verifying_key: key })
        .expect("confirm");
    assert_eq!(
        events.last(),
        Some(&Event::SignerSetChanged {
            signers: vec![bob, charlie, eve],
            threshold: 2
        })
    );
    assert_eq!(h.state.globals.signer_set.signers, vec![bob, charlie, eve]);
    assert_eq!(
        h.state.globals.signer_set.network_key,
        Some(key),
        "the network key never changes"
    );
    h.apply("dave", Call::Leave)
        .expect("rotated-out signer may leave");
    assert!(!h.state.validators.contains(&h.id("dave")));
}

#[test]
fn set_parameters() {
    let mut h = Harness::new();
    let mut params = h.state.globals.parameters.clone();
    params.request_limit = 3;
    assert!(matches!(
        h.reject(
            "bob",
            Call::SetParameters {
                parameters: params.clone()
            }
        ),
        TxError::Unauthorised(_)
    ));
    let mut bad = params.clone();
    bad.threshold = 9;
    assert!(matches!(
        h.reject("alice", Call::SetParameters { parameters: bad }),
        TxError::Invalid(_)
    ));
    h.apply(
        "alice",
        Call::SetParameters {
            parameters: params.clone(),
        },
    )
    .expect("set");
    assert_eq!(h.state.globals.parameters, params);
}

impl Harness {
    /// Like `reject`, and checks that the rejected call marked no record as changed, so a
    /// handler that mutated before failing cannot hide behind an unchanged digest.
    fn reject_untouched(&mut self, who: &str, call: Call) -> TxError {
        self.take_changes();
        let next_offence = self.state.globals.next_offence;
        let err = self.reject(who, call);
        let sender_charged = usize::from(self.last_included);
        assert_eq!(
            self.take_changes(),
            sender_charged,
            "a rejected transaction marked records changed: {err}"
        );
        assert_eq!(self.state.globals.next_offence, next_offence);
        err
    }

    /// Forgets the tracked changes so far; returns how many records had changed.
    fn take_changes(&mut self) -> usize {
        let s = &mut self.state;
        s.accounts.take_changes().len()
            + s.validators.take_changes().len()
            + s.programs.take_changes().len()
            + s.registrations.take_changes().len()
            + s.offences.take_changes().len()
    }
}

#[test]
fn a_signer_nobody_can_replace_cannot_leave() {
    let mut h = Harness::new();
    for (i, who) in ["bob", "charlie", "dave"].into_iter().enumerate() {
        h.validate(who, 3001 + i as u16);
    }
    h.apply("alice", Call::JumpStart).expect("jump start");
    assert!(
        matches!(
            h.reject_untouched("bob", Call::Leave),
            TxError::WrongState(_)
        ),
        "no reshare during a jump start"
    );
    let key = network_key(7);
    for who in ["bob", "charlie", "dave"] {
        h.apply(who, Call::ConfirmJumpStart { verifying_key: key })
            .expect("confirm");
    }
    // With threshold 3, the two other signers alone cannot hold the key.
    let mut params = h.state.globals.parameters.clone();
    params.threshold = 3;
    h.apply("alice", Call::SetParameters { parameters: params })
        .expect("set threshold");
    for who in ["bob", "charlie", "dave"] {
        h.apply(who, Call::ConfirmReshare { verifying_key: key })
            .expect("confirm reshare");
    }
    assert_eq!(h.state.globals.signer_set.threshold, 3);
    assert!(matches!(
        h.reject_untouched("bob", Call::Leave),
        TxError::WrongState(_)
    ));
    let bob = h.state.validators.get(&h.id("bob")).expect("validator");
    assert_eq!(bob.status, ValidatorStatus::Active);
    assert!(h.state.globals.signer_set.pending_reshare.is_none());
}

#[test]
fn rejected_validator_and_reshare_calls_touch_nothing() {
    let mut h = Harness::new();
    assert!(matches!(
        h.reject_untouched(
            "pauper",
            Call::Validate {
                x25519: x25519(9),
                endpoint: endpoint(3009),
                stake: 5_000,
            }
        ),
        TxError::InsufficientBalance { .. }
    ));
    let key = h.ready();
    h.validate("eve", 3010);
    h.apply("bob", Call::Leave).expect("leave starts a reshare");
    assert!(matches!(
        h.reject_untouched("bob", Call::Leave),
        TxError::AlreadyExists(_)
    ));
    h.apply("charlie", Call::ConfirmReshare { verifying_key: key })
        .expect("confirm");
    assert!(matches!(
        h.reject_untouched(
            "eve",
            Call::ConfirmReshare {
                verifying_key: network_key(1)
            }
        ),
        TxError::Invalid(_)
    ));
    assert!(matches!(
        h.reject_untouched("charlie", Call::ConfirmReshare { verifying_key: key }),
        TxError::AlreadyExists(_)
    ));
    let pending = h.state.globals.signer_set.pending_reshare.as_ref();
    assert_eq!(
        pending.map(|r| r.confirmations.clone()),
        Some(vec![h.id("charlie")])
    );
}

#[test]
fn rejected_registration_calls_keep_reference_counts() {
    let mut h = Harness::new();
    let p1 = h.store("alice", b"p1");
    h.ready();
    let missing = ProgramId::from_bytes([9; 32]).expect("id");
    assert!(matches!(
        h.reject_untouched(
            "ferdie",
            Call::Register {
                programs: programs(&[p1, missing]),
                public: false,
                scheme: KeyScheme::EcdsaSecp256k1,
            }
        ),
        TxError::NotFound(_)
    ));
    let (_, vk, _) = h.register("ferdie", &[p1]);
    assert!(matches!(
        h.reject_untouched(
            "ferdie",
            Call::ChangePrograms {
                verifying_key: vk,
                programs: programs(&[missing]),
            }
        ),
        TxError::NotFound(_)
    ));
    assert_eq!(h.state.programs.get(&p1).expect("stored").ref_count, 1);
}

#[test]
fn rejected_offence_reports_record_nothing() {
    let mut h = Harness::new();
    h.ready();
    h.validate("eve", 3010);
    let dave = h.id("dave");
    let trio = h.ticket("eve", 1, &["bob", "charlie", "dave"]);
    h.apply("bob", report(trio.clone(), dave, FaultKind::Unresponsive))
        .expect("first report");
    assert_eq!(h.state.globals.next_offence, 1);
    assert!(matches!(
        h.reject_untouched("bob", report(trio.clone(), dave, FaultKind::Unresponsive)),
        TxError::AlreadyExists(_)
    ));
    // Evidence the verifier refuses proves nothing and changes nothing.
    let proof = Call::ReportOffence {
        ticket: trio,
        offender: dave,
        kind: FaultKind::Equivocation,
        evidence: b"two broadcasts".to_vec(),
    };
    assert!(matches!(
        h.reject_untouched("charlie", proof),
        TxError::Invalid(_)
    ));
    let record = h.state.offences.get(&0).expect("record");
    assert_eq!(
        (record.reporters.clone(), record.proven, record.slashed),
        (vec![h.id("bob")], false, 0)
    );
}

fn account(h: &Harness, who: &str) -> Account {
    h.state
        .accounts
        .get(&h.id(who))
        .cloned()
        .unwrap_or_default()
}

#[test]
fn a_failed_call_pays_the_fee_uses_the_nonce_and_goes_into_the_block() {
    let mut h = Harness::new();
    let before = account(&h, "ferdie");
    let missing = ProgramId::from_bytes([9; 32]).expect("id");
    let stx = h.sign("ferdie", Call::RemoveProgram { program: missing });
    assert!(matches!(h.apply_signed(&stx), Err(TxError::NotFound(_))));
    assert!(h.last_included, "a failed call is included");
    let after = account(&h, "ferdie");
    assert_eq!(
        (after.balance, after.nonce),
        (before.balance - FEE, before.nonce + 1)
    );
    // The same transaction again is now a bad nonce: it cannot be replayed for free.
    assert!(matches!(
        h.apply_signed(&stx),
        Err(TxError::BadNonce { .. })
    ));
    assert!(!h.last_included);
    assert_eq!(account(&h, "ferdie"), after);
}

#[test]
fn a_sender_that_cannot_pay_the_fee_is_refused_whole() {
    let mut h = Harness::new();
    let to = h.id("pauper");
    let fee_less_one = FEE - 1;
    h.apply(
        "alice",
        Call::Transfer {
            to,
            amount: fee_less_one,
        },
    )
    .expect("fund");
    let err = h.reject(
        "pauper",
        Call::Transfer {
            to: h.id("alice"),
            amount: 1,
        },
    );
    assert_eq!(
        err,
        TxError::InsufficientBalance {
            need: FEE,
            have: fee_less_one
        }
    );
    assert!(!h.last_included);
    // The fee comes first: a transfer of the whole balance leaves nothing for it.
    h.apply("alice", Call::Transfer { to, amount: 1 })
        .expect("fund");
    let err = h.reject(
        "pauper",
        Call::Transfer {
            to: h.id("alice"),
            amount: FEE,
        },
    );
    assert!(matches!(err, TxError::InsufficientBalance { .. }));
    assert!(h.last_included, "the fee was paid, the transfer failed");
    assert_eq!(account(&h, "pauper").balance, 0);
}

#[test]
fn signer_duties_are_free_for_validators_only() {
    let mut h = Harness::new();
    for (i, who) in ["bob", "charlie", "dave"].into_iter().enumerate() {
        h.validate(who, 3001 + i as u16);
    }
    h.apply("alice", Call::JumpStart).expect("jump start");
    let confirm = Call::ConfirmJumpStart {
        verifying_key: network_key(7),
    };
    let bob = account(&h, "bob");
    h.apply("bob", confirm.clone()).expect("confirm");
    let after = account(&h, "bob");
    assert_eq!((after.balance, after.nonce), (bob.balance, bob.nonce + 1));
    // A validator's failed duty stays out of the block, free.
    assert!(matches!(
        h.reject("bob", confirm.clone()),
        TxError::AlreadyExists(_) | TxError::WrongState(_)
    ));
    assert!(!h.last_included);
    // Anyone else pays for it, and its failure is included.
    let ferdie = account(&h, "ferdie");
    assert!(matches!(
        h.reject("ferdie", confirm),
        TxError::Unauthorised(_) | TxError::NotFound(_)
    ));
    assert!(h.last_included);
    assert_eq!(account(&h, "ferdie").balance, ferdie.balance - FEE);
}

#[test]
fn a_program_holds_a_deposit_per_byte_until_removed() {
    let mut h = Harness::new();
    let before = account(&h, "ferdie");
    let p = h.store("ferdie", b"twelve bytes");
    let deposit = 10 * (8 + 12);
    let stored = account(&h, "ferdie");
    assert_eq!(
        (stored.balance, stored.reserved),
        (before.balance - FEE - deposit, deposit)
    );
    assert_eq!(h.state.programs.get(&p).expect("stored").deposit, deposit);
    h.apply("ferdie", Call::RemoveProgram { program: p })
        .expect("remove");
    let removed = account(&h, "ferdie");
    assert_eq!(
        (removed.balance, removed.reserved),
        (before.balance - 2 * FEE, 0)
    );
    assert_eq!(
        h.state.unwritten_programs.get(&p),
        Some(&None),
        "the removal reaches storage"
    );
}

#[test]
fn a_program_whose_deposit_the_sender_cannot_pay_is_not_stored() {
    let mut h = Harness::new();
    let to = h.id("pauper");
    h.apply(
        "alice",
        Call::Transfer {
            to,
            amount: FEE + 100,
        },
    )
    .expect("fund");
    let err = h.reject(
        "pauper",
        Call::StoreProgram {
            bytecode: component(b"twelve bytes"),
            config_schema: vec![],
            aux_schema: vec![],
            oracle_keys: vec![],
            version: 1,
        },
    );
    assert_eq!(
        err,
        TxError::InsufficientBalance {
            need: 200,
            have: 100
        }
    );
    assert!(h.state.programs.is_empty() && h.state.unwritten_programs.is_empty());
}

#[test]
fn a_registration_holds_a_deposit_that_follows_the_key_and_comes_back_on_unregister() {
    let mut h = Harness::new();
    let p = h.store("alice", b"policy");
    h.ready();
    let deposit = Parameters::default().registration_deposit;
    let before = account(&h, "ferdie");
    let (_, vk, _) = h.register("ferdie", &[p]);
    let registered = account(&h, "ferdie");
    assert_eq!(
        (registered.balance, registered.reserved),
        (before.balance - FEE - deposit, deposit)
    );
    assert_eq!(
        h.state.registrations.get(&vk).expect("stored").deposit,
        deposit
    );

    let eve = account(&h, "eve");
    let unregister = Call::Unregister { verifying_key: vk };
    assert!(matches!(
        h.reject("eve", unregister.clone()),
        TxError::Unauthorised(_)
    ));
    let new_owner = h.id("eve");
    h.apply(
        "ferdie",
        Call::ChangeOwner {
            verifying_key: vk,
            new_owner,
        },
    )
    .expect("hand over");
    assert_eq!(account(&h, "ferdie").reserved, 0);
    assert_eq!(account(&h, "eve").reserved, deposit);

    let events = h.apply("eve", unregister.clone()).expect("unregister");
    assert_eq!(
        events,
        vec![Event::Unregistered {
            verifying_key: vk,
            owner: new_owner,
            refund: deposit
        }]
    );
    let refunded = account(&h, "eve");
    assert_eq!(
        (refunded.balance, refunded.reserved),
        (eve.balance - 2 * FEE + deposit, 0)
    );
    assert!(h.state.registrations.get(&vk).is_none());
    assert_eq!(h.state.programs.get(&p).expect("program").ref_count, 0);
    assert!(matches!(h.reject("eve", unregister), TxError::NotFound(_)));
}

#[test]
fn the_cost_the_pool_counts_is_fee_plus_what_the_call_spends() {
    let h = Harness::new();
    let alice = h.id("alice");
    let transfer = Call::Transfer {
        to: h.id("bob"),
        amount: 7,
    };
    assert_eq!(h.state.cost(&alice, &transfer), FEE + 7);
    let register = Call::Register {
        programs: programs(&[ProgramId::from_bytes([1; 32]).expect("id")]),
        public: false,
        scheme: KeyScheme::EcdsaSecp256k1,
    };
    assert_eq!(
        h.state.cost(&alice, &register),
        FEE + Parameters::default().registration_deposit
    );
    let store = Call::StoreProgram {
        bytecode: vec![0; 100],
        config_schema: b"{}".to_vec(),
        aux_schema: vec![],
        oracle_keys: vec!["k".into()],
        version: 1,
    };
    assert_eq!(h.state.cost(&alice, &store), FEE + 10 * 103);
}

#[test]
fn validators_name_replicas_and_each_epochs_last_block_fixes_the_next_set() {
    use sigil_ledger::replica::network::{change_replica_call, consensus_public_key};
    let mut h = Harness::new();
    let seed = NodeSeed::dev("bob").consensus_seed();
    // The proof's key (dalek) is the consensus key Commonware derives from the same seed.
    let dalek = AccountKeypair::from_secret(*seed).account_id();
    assert_eq!(dalek.as_bytes(), &consensus_public_key(&seed));
    let chain = h.state.globals.chain_id.clone();
    let (bob, charlie) = (h.id("bob"), h.id("charlie"));
    let name =
        |account: &AccountId, address: &str| change_replica_call(&seed, &chain, account, address);
    let refused = h.reject("bob", name(&bob, "127.0.0.1:7001"));
    assert!(matches!(refused, TxError::Unauthorised(_)), "{refused}");
    h.validate("bob", 3001);
    let refused = h.reject("bob", name(&charlie, "127.0.0.1:7001"));
    assert!(
        matches!(refused, TxError::Invalid(_)),
        "a proof for another account: {refused}"
    );
    let refused = h.reject("bob", name(&bob, "nowhere"));
    assert!(matches!(refused, TxError::Invalid(_)), "{refused}");
    let events = h.apply("bob", name(&bob, "127.0.0.1:7001")).expect("named");
    assert!(matches!(
        &events[..],
        [Event::ReplicaChanged {
            replica: Some(_),
            ..
        }]
    ));
    h.validate("charlie", 3002);
    let refused = h.reject("charlie", name(&charlie, "127.0.0.1:7002"));
    assert!(
        matches!(refused, TxError::AlreadyExists(_)),
        "bob's key: {refused}"
    );

    let length = h.state.globals.epoch_length;
    assert_eq!(h.state.consensus_set(1), None);
    assert!(h.state.end_block(BlockNumber(length - 2)).is_empty());
    assert_eq!(
        h.state.consensus_set(1),
        None,
        "only the epoch's last block fixes it"
    );
    let events = h.state.end_block(BlockNumber(length - 1));
    let [Event::ConsensusSetChanged { epoch: 1, replicas }] = &events[..] else {
        panic!("{events:?}");
    };
    assert_eq!(
        replicas.iter().map(|r| r.account).collect::<Vec<_>>(),
        [bob]
    );
    assert_eq!(h.state.consensus_set(1), Some(&replicas[..]));

    // bob leaves: his replica is no longer named, and with none named the set stays.
    let events = h.apply("bob", Call::Leave).expect("leaves");
    assert!(events.contains(&Event::ReplicaChanged {
        account: bob,
        replica: None
    }));
    assert!(h.state.next_consensus_set().is_empty());
    assert!(h.state.end_block(BlockNumber(2 * length - 1)).is_empty());
    assert_eq!(h.state.consensus_set(2), h.state.consensus_set(1));
}

// FROST network keys across reshares.

impl Harness {
    /// The pending reshare.
    fn pending(&self) -> PendingReshare {
        self.state
            .globals
            .signer_set
            .pending_reshare
            .clone()
            .expect("a reshare")
    }

    /// An Ed25519 and a BIP-340 network key (not yet confirmed).
    fn frost_keys(&self) -> (VerifyingKey, VerifyingKey) {
        let ed25519 =
            VerifyingKey::tagged(KeyScheme::Ed25519, self.id("eve").as_bytes()).expect("key");
        let x_only: [u8; 32] = network_key(8).as_bytes()[1..].try_into().expect("32");
        let bip340 = VerifyingKey::tagged(KeyScheme::Bip340, &x_only).expect("key");
        (ed25519, bip340)
    }

    /// Every signer in `who` confirms `key` with `call`.
    fn confirm_each(
        &mut self,
        who: &[&str],
        call: impl Fn(VerifyingKey) -> Call,
        key: VerifyingKey,
    ) {
        for w in who {
            self.apply(w, call(key)).expect("confirm");
        }
    }

    /// `who` registers a key of `scheme` with program `p` attached; returns the key.
    fn register_scheme(&mut self, who: &str, p: ProgramId, scheme: KeyScheme) -> VerifyingKey {
        let events = self.apply(who, register_call(p, scheme)).expect("register");
        match events.first() {
            Some(Event::Registered { verifying_key, .. }) => *verifying_key,
            other => panic!("unexpected event {other:?}"),
        }
    }
}

fn register_call(p: ProgramId, scheme: KeyScheme) -> Call {
    Call::Register {
        programs: programs(&[p]),
        public: false,
        scheme,
    }
}

fn jump(verifying_key: VerifyingKey) -> Call {
    Call::ConfirmJumpStart { verifying_key }
}

fn reshare(verifying_key: VerifyingKey) -> Call {
    Call::ConfirmReshare { verifying_key }
}

fn message(err: &TxError) -> String {
    match err {
        TxError::Invalid(m)
        | TxError::WrongState(m)
        | TxError::AlreadyExists(m)
        | TxError::Unauthorised(m) => m.clone(),
        other => panic!("unexpected error {other:?}"),
    }
}

fn signer_set_changed(events: &[Event]) -> bool {
    events
        .iter()
        .any(|e| matches!(e, Event::SignerSetChanged { .. }))
}

#[test]
fn a_reshare_waits_for_every_new_signers_confirmation_of_every_scheme_key() {
    let mut h = Harness::new();
    let ecdsa = h.ready();
    let (ed25519, bip340) = h.frost_keys();
    let old = ["bob", "charlie", "dave"];
    h.confirm_each(&old, jump, ed25519);
    h.confirm_each(&old, jump, bip340);
    assert_eq!(
        h.state.globals.signer_set.scheme_keys,
        vec![ed25519, bip340]
    );
    h.validate("eve", 3010);
    h.apply("bob", Call::Leave).expect("leave starts a reshare");
    let pending = h.pending();
    assert_eq!(pending.new_threshold, 2);
    assert_eq!(
        pending.scheme_keys,
        vec![ed25519, bip340],
        "the FROST keys follow a reshare at the same threshold"
    );
    assert_eq!(pending.scheme_confirmations, vec![]);

    // A different key of a scheme, an old signer, a repeated confirmation: refused.
    let other = VerifyingKey::tagged(KeyScheme::Ed25519, h.id("ferdie").as_bytes()).expect("key");
    let err = h.reject_untouched("charlie", reshare(other));
    assert!(matches!(err, TxError::Invalid(_)), "{err}");
    assert_eq!(
        message(&err),
        "mismatched confirmation: the ed25519 network key must not change"
    );
    assert!(matches!(
        h.reject_untouched("bob", reshare(ed25519)),
        TxError::Unauthorised(_)
    ));
    h.apply("charlie", reshare(ed25519)).expect("confirm");
    let err = h.reject_untouched("charlie", reshare(ed25519));
    assert!(matches!(err, TxError::AlreadyExists(_)), "{err}");
    assert_eq!(
        message(&err),
        format!("ed25519 confirmation from {}", h.id("charlie"))
    );
    // A confirmation of the other scheme is not a duplicate.
    let events = h.apply("charlie", reshare(bip340)).expect("confirm");
    assert_eq!(
        events,
        vec![Event::ReshareConfirmed {
            signer: h.id("charlie")
        }]
    );
    h.apply("charlie", reshare(ecdsa)).expect("confirm");
    let pending = h
        .state
        .globals
        .signer_set
        .pending_reshare
        .as_ref()
        .expect("reshare");
    assert_eq!(
        pending.scheme_confirmations,
        vec![(h.id("charlie"), ed25519), (h.id("charlie"), bip340)]
    );
    assert_eq!(pending.confirmations, vec![h.id("charlie")]);

    // Every ECDSA confirmation in, and all but one scheme confirmation: still pending.
    for who in ["dave", "eve"] {
        h.apply(who, reshare(ecdsa)).expect("confirm");
    }
    h.confirm_each(&["dave", "eve"], reshare, bip340);
    let events = h.apply("dave", reshare(ed25519)).expect("confirm");
    assert!(!signer_set_changed(&events));
    assert!(h.state.globals.signer_set.pending_reshare.is_some());
    assert!(h.state.globals.signer_set.signers.contains(&h.id("bob")));
    // The last scheme-key confirmation completes it.
    let events = h.apply("eve", reshare(ed25519)).expect("confirm");
    let new = vec![h.id("charlie"), h.id("dave"), h.id("eve")];
    assert!(events.contains(&Event::SignerSetChanged {
        signers: new.clone(),
        threshold: 2
    }));
    assert!(events.contains(&Event::ValidatorLeft {
        account: h.id("bob")
    }));
    let set = &h.state.globals.signer_set;
    assert!(set.pending_reshare.is_none());
    assert_eq!(set.signers, new);
    assert_eq!(set.network_key, Some(ecdsa));
    assert_eq!(
        set.scheme_keys,
        vec![ed25519, bip340],
        "the FROST keys stay"
    );

    // Next reshare: the ECDSA confirmation comes last and completes it.
    h.validate("ferdie", 3011);
    h.apply("charlie", Call::Leave)
        .expect("leave starts a reshare");
    let next = ["dave", "eve", "ferdie"];
    h.confirm_each(&next, reshare, ed25519);
    h.confirm_each(&next, reshare, bip340);
    for who in ["dave", "eve"] {
        h.apply(who, reshare(ecdsa)).expect("confirm");
    }
    assert!(h.state.globals.signer_set.pending_reshare.is_some());
    let events = h.apply("ferdie", reshare(ecdsa)).expect("confirm");
    assert!(signer_set_changed(&events));
    let set = &h.state.globals.signer_set;
    assert_eq!(set.signers, vec![h.id("dave"), h.id("eve"), h.id("ferdie")]);
    assert_eq!(set.scheme_keys, vec![ed25519, bip340]);
    assert!(set.pending_reshare.is_none());
}

#[test]
fn a_threshold_change_is_refused_while_an_ed25519_key_is_registered() {
    let mut h = Harness::new();
    h.ready();
    let (ed25519, _) = h.frost_keys();
    h.confirm_each(&["bob", "charlie", "dave"], jump, ed25519);
    let p = h.store("ferdie", b"policy");
    // ECDSA keys alone never stand in the way; they sort before the FROST keys.
    h.register_scheme("ferdie", p, KeyScheme::EcdsaSecp256k1);
    let child = h.register_scheme("ferdie", p, KeyScheme::Ed25519);
    h.register_scheme("eve", p, KeyScheme::EcdsaSecp256k1);
    assert_eq!(child.scheme(), KeyScheme::Ed25519);
    let before = h.state.globals.parameters.clone();
    let mut params = before.clone();
    params.threshold = 3;
    let err = h.reject_untouched(
        "alice",
        Call::SetParameters {
            parameters: params.clone(),
        },
    );
    assert!(matches!(err, TxError::Invalid(_)), "{err}");
    assert_eq!(
        message(&err),
        "the threshold cannot change while ed25519 or bip340 keys are registered: FROST keeps its threshold when the signer set changes"
    );
    assert_eq!(h.state.globals.parameters, before);
    assert!(h.state.globals.signer_set.pending_reshare.is_none());
    // Other parameters still change.
    let mut same_threshold = before.clone();
    same_threshold.request_limit = 3;
    h.apply(
        "alice",
        Call::SetParameters {
            parameters: same_threshold.clone(),
        },
    )
    .expect("set");
    assert_eq!(h.state.globals.parameters, same_threshold);

    // Should the parameters disagree anyway, a rotation keeps the FROST keys' threshold.
    h.state.globals.parameters.threshold = 3;
    h.validate("eve", 3010);
    h.apply("bob", Call::Leave).expect("leave starts a reshare");
    let pending = h.pending();
    assert_eq!(pending.new_threshold, 2);
    assert_eq!(pending.scheme_keys, vec![ed25519]);
}

#[test]
fn without_frost_registrations_a_threshold_change_remakes_the_frost_network_keys() {
    let mut h = Harness::new();
    let ecdsa = h.ready();
    let (ed25519, bip340) = h.frost_keys();
    let signers = ["bob", "charlie", "dave"];
    h.confirm_each(&signers, jump, ed25519);
    h.confirm_each(&signers, jump, bip340);
    let p = h.store("ferdie", b"policy");
    h.register_scheme("ferdie", p, KeyScheme::EcdsaSecp256k1);
    let mut params = h.state.globals.parameters.clone();
    params.threshold = 3;
    let events = h
        .apply(
            "alice",
            Call::SetParameters {
                parameters: params.clone(),
            },
        )
        .expect("no FROST key registered: the threshold may change");
    assert!(events.iter().any(|e| matches!(
        e,
        Event::ReshareStarted {
            new_threshold: 3,
            ..
        }
    )));
    let pending = h.pending();
    assert_eq!(pending.new_threshold, 3);
    assert_eq!(
        pending.scheme_keys,
        vec![],
        "no FROST key follows a new threshold"
    );

    // Meanwhile no FROST key registers (ECDSA keys do), and no FROST key is confirmed.
    for scheme in [KeyScheme::Ed25519, KeyScheme::Bip340] {
        let err = h.reject_untouched("ferdie", register_call(p, scheme));
        assert!(matches!(err, TxError::WrongState(_)), "{err}");
        assert_eq!(
            message(&err),
            format!(
                "the {scheme} network key is being remade for a new threshold; register after the reshare"
            )
        );
    }
    h.apply("ferdie", register_call(p, KeyScheme::EcdsaSecp256k1))
        .expect("ECDSA keys follow any threshold");
    let err = h.reject_untouched("bob", reshare(ed25519));
    assert!(matches!(err, TxError::Invalid(_)), "{err}");
    assert_eq!(
        message(&err),
        "no ed25519 network key follows this reshare; the new signer set makes one after it"
    );

    // The ECDSA confirmations alone complete it, and the FROST keys are gone.
    h.confirm_each(&["bob", "charlie"], reshare, ecdsa);
    let events = h.apply("dave", reshare(ecdsa)).expect("confirm");
    assert_eq!(
        events.last(),
        Some(&Event::SignerSetChanged {
            signers: vec![h.id("bob"), h.id("charlie"), h.id("dave")],
            threshold: 3
        })
    );
    let set = &h.state.globals.signer_set;
    assert_eq!(set.threshold, 3);
    assert_eq!(set.network_key, Some(ecdsa));
    assert_eq!(set.scheme_keys, vec![]);
    assert_eq!(set.network_key_of(KeyScheme::Ed25519), None);
    assert!(matches!(
        h.reject("ferdie", register_call(p, KeyScheme::Ed25519)),
        TxError::WrongState(_)
    ));

    // The new set makes a fresh key through the jump-start path; keys register under it.
    let fresh = VerifyingKey::tagged(KeyScheme::Ed25519, h.id("dave").as_bytes()).expect("key");
    h.confirm_each(&["bob", "charlie"], jump, fresh);
    let events = h.apply("dave", jump(fresh)).expect("confirm");
    assert_eq!(
        events.last(),
        Some(&Event::NetworkKeyCreated { network_key: fresh })
    );
    assert_eq!(h.state.globals.signer_set.scheme_keys, vec![fresh]);
    let child = h.register_scheme("ferdie", p, KeyScheme::Ed25519);
    assert_eq!(child.scheme(), KeyScheme::Ed25519);
}

#[test]
fn frost_keys_register_only_once_the_signer_set_has_the_parameters_threshold() {
    let mut h = Harness::new();
    h.ready();
    let (ed25519, _) = h.frost_keys();
    h.confirm_each(&["bob", "charlie", "dave"], jump, ed25519);
    let p = h.store("ferdie", b"policy");
    // Four signers wanted at threshold 4, three validators: no reshare can start yet.
    let mut params = h.state.globals.parameters.clone();
    params.signer_count = 4;
    params.threshold = 4;
    h.apply("alice", Call::SetParameters { parameters: params })
        .expect("set");
    assert!(h.state.globals.signer_set.pending_reshare.is_none());
    let err = h.reject_untouched("ferdie", register_call(p, KeyScheme::Ed25519));
    assert!(matches!(err, TxError::WrongState(_)), "{err}");
    h.apply("ferdie", register_call(p, KeyScheme::EcdsaSecp256k1))
        .expect("ECDSA keys register");
}

#[test]
fn no_scheme_key_is_made_while_a_reshare_runs() {
    let mut h = Harness::new();
    let ecdsa = h.ready();
    let (ed25519, bip340) = h.frost_keys();
    h.confirm_each(&["bob", "charlie", "dave"], jump, ed25519);
    // One signer reported a BIP-340 key before the reshare: the reshare drops it.
    h.apply("dave", jump(bip340)).expect("confirm");
    h.validate("eve", 3010);
    h.apply("bob", Call::Leave).expect("leave starts a reshare");
    let pending = h.pending();
    assert_eq!(
        pending.scheme_keys,
        vec![ed25519],
        "only the keys made follow"
    );
    let err = h.reject_untouched("charlie", jump(bip340));
    assert!(matches!(err, TxError::WrongState(_)), "{err}");
    assert_eq!(
        message(&err),
        "a reshare is running; the new signer set makes this key after it"
    );
    let err = h.reject_untouched("charlie", reshare(bip340));
    assert!(matches!(err, TxError::Invalid(_)), "{err}");
    let new = ["charlie", "dave", "eve"];
    h.confirm_each(&new, reshare, ed25519);
    h.confirm_each(&new, reshare, ecdsa);
    let set = &h.state.globals.signer_set;
    assert!(set.pending_reshare.is_none());
    assert_eq!(set.scheme_keys, vec![ed25519]);
    assert_eq!(set.scheme_confirmations, vec![]);
    // After it, the new set makes the missing key.
    h.confirm_each(&["charlie", "dave"], jump, bip340);
    let events = h.apply("eve", jump(bip340)).expect("confirm");
    assert_eq!(
        events.last(),
        Some(&Event::NetworkKeyCreated {
            network_key: bip340
        })
    );
    assert_eq!(
        h.state.globals.signer_set.scheme_keys,
        vec![ed25519, bip340]
    );
}

fn keygen_fault(scheme: KeyScheme, offender: AccountId, evidence: Vec<u8>) -> Call {
    Call::ReportKeygenFault {
        scheme,
        offender,
        evidence,
    }
}

/// The id of the current signers' key generation of `scheme`.
fn keygen_session(h: &Harness, scheme: KeyScheme) -> [u8; 32] {
    let set = &h.state.globals.signer_set;
    sigil_crypto::frost_keygen_session(
        &h.state.globals.chain_id,
        scheme,
        set.threshold,
        &set.signers,
    )
}

#[test]
fn a_proven_key_generation_fault_slashes_the_offender_and_rotates_it_out() {
    let mut h = Harness::new();
    let key = h.ready();
    h.validate("eve", 3010);
    let (bob, charlie, dave, eve) = (h.id("bob"), h.id("charlie"), h.id("dave"), h.id("eve"));
    let session = keygen_session(&h, KeyScheme::Ed25519);
    let proof = keygen_proof_against(&session, charlie);
    let call = |scheme, offender, evidence| Call::ReportKeygenFault {
        scheme,
        offender,
        evidence,
    };
    for (who, wrong, expect_unauthorised) in [
        (
            "eve",
            call(KeyScheme::Ed25519, charlie, proof.clone()),
            true,
        ),
        (
            "charlie",
            call(KeyScheme::Ed25519, charlie, proof.clone()),
            false,
        ),
        ("bob", call(KeyScheme::Ed25519, eve, proof.clone()), false),
        (
            "bob",
            call(KeyScheme::EcdsaSecp256k1, charlie, proof.clone()),
            false,
        ),
        ("bob", call(KeyScheme::Ed25519, charlie, vec![]), false),
        ("bob", call(KeyScheme::Ed25519, dave, proof.clone()), false),
        // The proof of another scheme's key generation.
        (
            "bob",
            call(KeyScheme::Bip340, charlie, proof.clone()),
            false,
        ),
    ] {
        let err = h.reject(who, wrong);
        match expect_unauthorised {
            true => assert!(matches!(err, TxError::Unauthorised(_)), "{err}"),
            false => assert!(matches!(err, TxError::Invalid(_)), "{err}"),
        }
    }
    let events = h
        .apply(
            "bob",
            keygen_fault(KeyScheme::Ed25519, charlie, proof.clone()),
        )
        .expect("a proven fault");
    let Some(Event::OffenceReported { offence }) = events.get(1) else {
        panic!("recorded: {events:?}")
    };
    assert!(offence.proven);
    assert_eq!(offence.session, SessionId::new(session));
    assert_eq!(
        (offence.offender, offence.kind),
        (charlie, FaultKind::FailedProof)
    );
    assert_eq!(offence.reporters, vec![bob]);
    assert!(events.contains(&Event::Slashed {
        account: charlie,
        amount: 500,
        stake: 4_500
    }));
    assert!(
        h.state
            .globals
            .signer_set
            .excluded_at(h.height)
            .contains(&charlie)
    );
    let mut expected_new = h.state.globals.signer_set.signers.clone();
    expected_new.retain(|s| *s != charlie);
    expected_new.push(eve);
    assert!(
        events.contains(&Event::ReshareStarted {
            new_signers: expected_new,
            new_threshold: 2
        }),
        "{events:?}"
    );
    // The reshare makes the key generation moot: no more reports of it.
    assert!(matches!(
        h.reject("dave", keygen_fault(KeyScheme::Ed25519, charlie, proof)),
        TxError::WrongState(_)
    ));
    for who in ["bob", "dave", "eve"] {
        h.apply(who, Call::ConfirmReshare { verifying_key: key })
            .expect("confirm");
    }
    let signers: BTreeSet<AccountId> = h.state.globals.signer_set.signers.iter().copied().collect();
    assert_eq!(signers, BTreeSet::from([bob, dave, eve]));
    // The new set's own key generation is another session: the old proof is of no use.
    let old = keygen_proof_against(&session, dave);
    assert!(matches!(
        h.reject("bob", keygen_fault(KeyScheme::Ed25519, dave, old)),
        TxError::Invalid(_)
    ));
}

#[test]
fn a_key_generation_fault_proven_during_the_jump_start_rotates_out_when_it_ends() {
    let mut h = Harness::new();
    for (i, who) in ["bob", "charlie", "dave", "eve"].into_iter().enumerate() {
        h.validate(who, 3001 + i as u16);
    }
    let (bob, charlie) = (h.id("bob"), h.id("charlie"));
    // Before the jump start there are no signers to report or be reported.
    assert!(matches!(
        h.reject("bob", keygen_fault(KeyScheme::Bip340, charlie, vec![1])),
        TxError::Unauthorised(_)
    ));
    h.apply("alice", Call::JumpStart).expect("jump start");
    let signers = h.state.globals.signer_set.signers.clone();
    assert!(signers.contains(&bob) && signers.contains(&charlie));
    let session = keygen_session(&h, KeyScheme::Bip340);
    let proof = keygen_proof_against(&session, charlie);
    let events = h
        .apply(
            "bob",
            keygen_fault(KeyScheme::Bip340, charlie, proof.clone()),
        )
        .expect("a proven fault");
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::ReshareStarted { .. })),
        "no reshare during the jump start"
    );
    assert!(matches!(
        h.reject("dave", keygen_fault(KeyScheme::Bip340, charlie, proof)),
        TxError::AlreadyExists(_)
    ));
    let key = network_key(7);
    let mut last = vec![];
    for who in &signers {
        let name = ["bob", "charlie", "dave", "eve"]
            .into_iter()
            .find(|n| h.id(n) == *who)
            .expect("a signer");
        last = h
            .apply(name, Call::ConfirmJumpStart { verifying_key: key })
            .expect("confirm");
    }
    let Some(Event::ReshareStarted { new_signers, .. }) = last
        .iter()
        .find(|e| matches!(e, Event::ReshareStarted { .. }))
    else {
        panic!("the offender leaves once the jump start is done: {last:?}")
    };
    assert!(!new_signers.contains(&charlie));
}

#[test]
fn a_made_key_takes_no_key_generation_reports() {
    let mut h = Harness::new();
    h.ready();
    let x_only: [u8; 32] = network_key(8).as_bytes()[1..].try_into().expect("32");
    let bip340 = VerifyingKey::tagged(KeyScheme::Bip340, &x_only).expect("key");
    let session = keygen_session(&h, KeyScheme::Bip340);
    for who in ["bob", "charlie", "dave"] {
        h.apply(
            who,
            Call::ConfirmJumpStart {
                verifying_key: bip340,
            },
        )
        .expect("confirm");
    }
    let charlie = h.id("charlie");
    let proof = keygen_proof_against(&session, charlie);
    assert!(matches!(
        h.reject("bob", keygen_fault(KeyScheme::Bip340, charlie, proof)),
        TxError::WrongState(_)
    ));
}
