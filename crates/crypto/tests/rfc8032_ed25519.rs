//! RFC 8032 §7.1 test vectors 1–3 through Sigil's account-key API.

use sigil_crypto::{AccountKeypair, KeyError, verify_signature};
use sigil_primitives::{AccountId, Ed25519Signature};

struct Case {
    secret: &'static str,
    public: &'static str,
    message: &'static str,
    signature: &'static str,
}

const CASES: [Case; 3] = [
    Case {
        secret: "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        public: "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        message: "",
        signature: "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    },
    Case {
        secret: "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        public: "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        message: "72",
        signature: "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    },
    Case {
        secret: "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        public: "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        message: "af82",
        signature: "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    },
];

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).expect("vector hex")
}

#[test]
fn vectors_reproduce_and_verify() {
    for (i, case) in CASES.iter().enumerate() {
        let key = AccountKeypair::from_secret(unhex(case.secret).try_into().expect("32 bytes"));
        let account = key.account_id();
        assert_eq!(
            account.as_bytes().to_vec(),
            unhex(case.public),
            "public key of test {}",
            i + 1
        );
        let message = unhex(case.message);
        let signature = key.sign(&message);
        assert_eq!(
            hex::encode(signature.as_bytes()),
            case.signature,
            "signature of test {}",
            i + 1
        );
        verify_signature(&account, &message, &signature).expect("vector signature verifies");
    }
}

#[test]
fn altered_vectors_fail() {
    let case = &CASES[2];
    let account = AccountId::from_slice(&unhex(case.public)).expect("valid key");
    let mut sig = unhex(case.signature);
    sig[0] ^= 1;
    let sig = Ed25519Signature::from_slice(&sig).expect("64 bytes");
    assert_eq!(
        verify_signature(&account, &unhex(case.message), &sig),
        Err(KeyError::BadSignature(account))
    );
    let good = Ed25519Signature::from_slice(&unhex(case.signature)).expect("64 bytes");
    assert!(verify_signature(&account, b"other message", &good).is_err());
}
