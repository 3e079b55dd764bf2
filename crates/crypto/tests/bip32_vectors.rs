//! The public-derivation (non-hardened) steps of BIP-32 test vectors 1 and 2 reproduce exactly
//! through `sigil_crypto::derivation::derive_public`.

use std::str::FromStr;

use sigil_crypto::derivation::derive_public;
use sigil_primitives::{DerivationPath, VerifyingKey};

/// Public key and chain code of an xpub from the BIP-32 document.
fn parse(xpub: &str) -> (VerifyingKey, [u8; 32]) {
    let xpub = bip32::XPub::from_str(xpub).expect("vector xpub parses");
    let key =
        VerifyingKey::from_slice(&bip32::PublicKey::to_bytes(xpub.public_key())).expect("point");
    (key, xpub.attrs().chain_code)
}

fn check(parent: &str, path: &str, child: &str) {
    let (parent_key, parent_chain) = parse(parent);
    let (child_key, child_chain) = parse(child);
    let path: DerivationPath = path.parse().expect("path");
    let (key, chain) = derive_public(&parent_key, &parent_chain, &path).expect("derives");
    assert_eq!(key, child_key, "key at {path} from {parent}");
    assert_eq!(chain, child_chain, "chain code at {path} from {parent}");
}

// Vector 1, seed 000102030405060708090a0b0c0d0e0f.
const V1_M_0H: &str = "xpub68Gmy5EdvgibQVfPdqkBBCHxA5htiqg55crXYuXoQRKfDBFA1WEjWgP6LHhwBZeNK1VTsfTFUHCdrfp1bgwQ9xv5ski8PX9rL2dZXvgGDnw";
const V1_M_0H_1: &str = "xpub6ASuArnXKPbfEwhqN6e3mwBcDTgzisQN1wXN9BJcM47sSikHjJf3UFHKkNAWbWMiGj7Wf5uMash7SyYq527Hqck2AxYysAA7xmALppuCkwQ";
const V1_M_0H_1_2H: &str = "xpub6D4BDPcP2GT577Vvch3R8wDkScZWzQzMMUm3PWbmWvVJrZwQY4VUNgqFJPMM3No2dFDFGTsxxpG5uJh7n7epu4trkrX7x7DogT5Uv6fcLW5";
const V1_M_0H_1_2H_2: &str = "xpub6FHa3pjLCk84BayeJxFW2SP4XRrFd1JYnxeLeU8EqN3vDfZmbqBqaGJAyiLjTAwm6ZLRQUMv1ZACTj37sR62cfN7fe5JnJ7dh8zL4fiyLHV";
const V1_M_0H_1_2H_2_1E9: &str = "xpub6H1LXWLaKsWFhvm6RVpEL9P4KfRZSW7abD2ttkWP3SSQvnyA8FSVqNTEcYFgJS2UaFcxupHiYkro49S8yGasTvXEYBVPamhGW6cFJodrTHy";

// Vector 2, seed fffcf9f6...484542.
const V2_M: &str = "xpub661MyMwAqRbcFW31YEwpkMuc5THy2PSt5bDMsktWQcFF8syAmRUapSCGu8ED9W6oDMSgv6Zz8idoc4a6mr8BDzTJY47LJhkJ8UB7WEGuduB";
const V2_M_0: &str = "xpub69H7F5d8KSRgmmdJg2KhpAK8SR3DjMwAdkxj3ZuxV27CprR9LgpeyGmXUbC6wb7ERfvrnKZjXoUmmDznezpbZb7ap6r1D3tgFxHmwMkQTPH";
const V2_M_0_H: &str = "xpub6ASAVgeehLbnwdqV6UKMHVzgqAG8Gr6riv3Fxxpj8ksbH9ebxaEyBLZ85ySDhKiLDBrQSARLq1uNRts8RuJiHjaDMBU4Zn9h8LZNnBC5y4a";
const V2_M_0_H_1: &str = "xpub6DF8uhdarytz3FWdA8TvFSvvAh8dP3283MY7p2V4SeE2wyWmG5mg5EwVvmdMVCQcoNJxGoWaU9DCWh89LojfZ537wTfunKau47EL2dhHKon";
const V2_M_0_H_1_H: &str = "xpub6ERApfZwUNrhLCkDtcHTcxd75RbzS1ed54G1LkBUHQVHQKqhMkhgbmJbZRkrgZw4koxb5JaHWkY4ALHY2grBGRjaDMzQLcgJvLJuZZvRcEL";
const V2_M_0_H_1_H_2: &str = "xpub6FnCn6nSzZAw5Tw7cgR9bi15UV96gLZhjDstkXXxvCLsUXBGXPdSnLFbdpq8p9HmGsApME5hQTZ3emM2rnY5agb9rXpVGyy3bdW6EEgAtqt";

#[test]
fn vector_1_public_steps() {
    check(V1_M_0H, "m/1", V1_M_0H_1);
    check(V1_M_0H_1_2H, "m/2", V1_M_0H_1_2H_2);
    check(V1_M_0H_1_2H_2, "m/1000000000", V1_M_0H_1_2H_2_1E9);
    // Two public steps in one path.
    check(V1_M_0H_1_2H, "m/2/1000000000", V1_M_0H_1_2H_2_1E9);
}

#[test]
fn vector_2_public_steps() {
    check(V2_M, "m/0", V2_M_0);
    check(V2_M_0_H, "m/1", V2_M_0_H_1);
    check(V2_M_0_H_1_H, "m/2", V2_M_0_H_1_H_2);
}

#[test]
fn hardened_steps_are_refused_by_the_path_type() {
    assert!("m/0'".parse::<DerivationPath>().is_err());
    assert!("m/2147483647H".parse::<DerivationPath>().is_err());
    assert!(DerivationPath::new(vec![1 << 31]).is_err());
}
