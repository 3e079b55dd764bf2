//! Every primitive decodes strictly: wrong lengths, bad hex and bad points are errors.

use proptest::prelude::*;
use sigil_primitives::*;

/// The ed25519 base point's encoding: a valid, non-weak account id.
const ACCOUNT: &str = "0x5866666666666666666666666666666666666666666666666666666666666666";
/// The secp256k1 generator, compressed.
const GENERATOR: &str = "0x0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";

#[test]
fn account_id_json_and_text() {
    let id: AccountId = ACCOUNT.parse().expect("valid");
    assert_eq!(id.to_string(), ACCOUNT);
    let json = serde_json::to_string(&id).expect("json");
    assert_eq!(json, format!("\"{ACCOUNT}\""));
    assert_eq!(
        serde_json::from_str::<AccountId>(&json).expect("parses"),
        id
    );
    // Bare hex and upper case are accepted on input.
    assert_eq!(
        ACCOUNT[2..]
            .to_uppercase()
            .parse::<AccountId>()
            .expect("valid"),
        id
    );
}

#[test]
fn account_id_rejections() {
    assert!(matches!(
        "0x12".parse::<AccountId>(),
        Err(PrimitiveError::InvalidLength {
            expected: 32,
            actual: 1,
            ..
        })
    ));
    assert!(matches!(
        "0xzz".parse::<AccountId>(),
        Err(PrimitiveError::InvalidHex { .. })
    ));
    assert!(matches!(
        format!("{ACCOUNT}00").parse::<AccountId>(),
        Err(PrimitiveError::InvalidLength { .. })
    ));
    // The identity point is small-order (weak); y = 2 is not on the curve.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    assert!(matches!(
        AccountId::from_bytes(identity),
        Err(PrimitiveError::InvalidPoint { .. })
    ));
    let mut off_curve = [0u8; 32];
    off_curve[0] = 2;
    assert!(matches!(
        AccountId::from_bytes(off_curve),
        Err(PrimitiveError::InvalidPoint { .. })
    ));
    assert!(serde_json::from_str::<AccountId>("\"0x01\"").is_err());
    assert!(serde_json::from_str::<AccountId>("42").is_err());
}

#[test]
fn verifying_key_validation() {
    let g: VerifyingKey = GENERATOR.parse().expect("generator");
    assert_eq!(g.to_string(), GENERATOR);
    assert_eq!(VerifyingKey::from_k256(&g.to_k256()), g);
    let mut bytes = g.to_bytes();
    bytes[0] = 0x04;
    assert!(matches!(
        VerifyingKey::from_bytes(bytes),
        Err(PrimitiveError::UnknownScheme(_))
    ));
    assert_eq!(g.scheme(), KeyScheme::EcdsaSecp256k1);
    // The same x as a BIP-340 x-only key, and an Ed25519 key (the base point's encoding).
    let x_only: [u8; 32] = g.as_bytes()[1..].try_into().expect("32");
    let taproot = VerifyingKey::tagged(KeyScheme::Bip340, &x_only).expect("x-only key");
    assert_eq!(
        (taproot.scheme(), taproot.key_bytes()),
        (KeyScheme::Bip340, &x_only[..])
    );
    assert!(taproot.to_string().starts_with("0x54"));
    let mut base = [0x66u8; 32];
    base[0] = 0x58;
    let ed = VerifyingKey::tagged(KeyScheme::Ed25519, &base).expect("ed25519 key");
    assert_eq!(ed.scheme(), KeyScheme::Ed25519);
    assert_eq!(
        ed.to_string().parse::<VerifyingKey>().expect("round trip"),
        ed
    );
    assert!(ed.secp256k1_point().is_none());
    assert!(VerifyingKey::tagged(KeyScheme::EcdsaSecp256k1, &base).is_err());
    // x = 5 has no point on secp256k1 (5^3 + 7 = 132 is not a square mod p).
    let mut no_point = [0u8; 33];
    no_point[0] = 0x02;
    no_point[32] = 5;
    for tag in [0x02, 0x54] {
        no_point[0] = tag;
        assert!(matches!(
            VerifyingKey::from_bytes(no_point),
            Err(PrimitiveError::InvalidPoint { .. })
        ));
    }
    assert!(VerifyingKey::from_slice(&[2; 32]).is_err());
    assert!(serde_json::from_str::<VerifyingKey>(&format!("\"{}\"", &GENERATOR[..60])).is_err());
}

#[test]
fn x25519_and_ids() {
    assert!(X25519PublicKey::from_bytes([0; 32]).is_err());
    assert!(X25519PublicKey::from_bytes([9; 32]).is_ok());
    let rid = RequestId::from_bytes([0xab; 32]).expect("any");
    assert_eq!(
        serde_json::from_str::<RequestId>(&serde_json::to_string(&rid).expect("json"))
            .expect("parses"),
        rid
    );
    assert!(EcdsaSignature::from_bytes([0; 65]).is_ok());
    let mut v2 = [0u8; 65];
    v2[64] = 2;
    assert!(EcdsaSignature::from_bytes(v2).is_err());
    assert_eq!(serde_json::to_string(&BlockNumber(7)).expect("json"), "7");
}

#[test]
fn endpoints() {
    for ok in [
        "127.0.0.1:3001",
        "node-1.example.org:443",
        "[::1]:9944",
        "localhost:1",
    ] {
        assert_eq!(Endpoint::new(ok).expect(ok).as_str(), ok);
    }
    for bad in [
        "",
        "127.0.0.1",
        ":80",
        "host:",
        "host:0",
        "host:65536",
        "ho st:80",
        "host:+80",
        "[::zz]:80",
        "a/b:80",
    ] {
        assert!(
            matches!(Endpoint::new(bad), Err(PrimitiveError::InvalidEndpoint(_))),
            "{bad:?}"
        );
    }
    assert!(Endpoint::new(format!("{}:80", "a".repeat(300))).is_err());
    let info = ValidatorInfo {
        account: ACCOUNT.parse().expect("valid"),
        x25519: X25519PublicKey::from_bytes([9; 32]).expect("valid"),
        endpoint: Endpoint::new("127.0.0.1:3001").expect("valid"),
    };
    let json = serde_json::to_value(&info).expect("json");
    assert_eq!(
        serde_json::from_value::<ValidatorInfo>(json.clone()).expect("parses"),
        info
    );
    let mut bad = json.clone();
    bad["endpoint"] = "nope".into();
    assert!(serde_json::from_value::<ValidatorInfo>(bad).is_err());
    let mut bad = json;
    bad["stake"] = 1.into();
    assert!(serde_json::from_value::<ValidatorInfo>(bad).is_err());
}

#[test]
fn derivation_paths() {
    let p: DerivationPath = "m/44/60/0/0/7".parse().expect("valid");
    assert_eq!(p.indices(), &[44, 60, 0, 0, 7]);
    assert_eq!(p.to_string(), "m/44/60/0/0/7");
    assert!("m".parse::<DerivationPath>().expect("root").is_root());
    assert_eq!(
        serde_json::to_string(&p).expect("json"),
        "\"m/44/60/0/0/7\""
    );
    for bad in [
        "",
        "44/60",
        "m/",
        "m//1",
        "m/1'",
        "m/1h",
        "m/-1",
        "m/2147483648",
        "m/4294967296",
        "m/x",
        "M/1",
        "m/ 1",
    ] {
        assert!(bad.parse::<DerivationPath>().is_err(), "{bad:?}");
    }
    assert!(
        format!("m{}", "/1".repeat(256))
            .parse::<DerivationPath>()
            .is_err()
    );
    assert!(
        format!("m{}", "/1".repeat(255))
            .parse::<DerivationPath>()
            .is_ok()
    );
}

#[test]
fn hashing_algorithm_names() {
    for alg in HashingAlgorithm::BUILT_IN {
        assert_eq!(
            alg.to_string()
                .parse::<HashingAlgorithm>()
                .expect("round trip"),
            alg
        );
    }
    assert_eq!(
        "custom:4".parse::<HashingAlgorithm>(),
        Ok(HashingAlgorithm::Custom(4))
    );
    assert_eq!(
        serde_json::to_string(&HashingAlgorithm::Sha3_256).expect("json"),
        "\"sha3-256\""
    );
    for bad in [
        "md5",
        "custom:5",
        "custom:",
        "custom:-1",
        "custom:01x",
        "Keccak256",
        "custom:256",
    ] {
        assert!(bad.parse::<HashingAlgorithm>().is_err(), "{bad:?}");
    }
}

#[test]
fn program_lists() {
    let instance = ProgramInstance {
        program: ProgramId::from_bytes([1; 32]).expect("any"),
        config: b"{}".to_vec(),
    };
    let json = serde_json::to_value(&instance).expect("json");
    assert_eq!(json["config"], "0x7b7d");
    assert!(ProgramList::new(vec![]).is_err());
    assert!(ProgramList::new(vec![instance.clone(); MAX_PROGRAMS_PER_KEY]).is_ok());
    assert!(matches!(
        ProgramList::new(vec![instance.clone(); MAX_PROGRAMS_PER_KEY + 1]),
        Err(PrimitiveError::InvalidCount { actual: 6, .. })
    ));
    let six = serde_json::to_value(vec![instance; 6]).expect("json");
    assert!(serde_json::from_value::<ProgramList>(six).is_err());
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in ".{0,80}") {
        let _ = text.parse::<AccountId>();
        let _ = text.parse::<VerifyingKey>();
        let _ = text.parse::<DerivationPath>();
        let _ = text.parse::<HashingAlgorithm>();
        let _ = Endpoint::new(text.clone());
        let _ = serde_json::from_str::<ValidatorInfo>(&text);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..70)) {
        let _ = AccountId::from_slice(&bytes);
        let _ = VerifyingKey::from_slice(&bytes);
        let _ = EcdsaSignature::from_slice(&bytes);
    }

    #[test]
    fn paths_round_trip(indices in proptest::collection::vec(0u32..HARDENED_OFFSET, 0..20)) {
        let p = DerivationPath::new(indices.clone()).expect("valid");
        let parsed = p.to_string().parse::<DerivationPath>().expect("parses");
        prop_assert_eq!(parsed.indices(), &indices[..]);
    }
}
