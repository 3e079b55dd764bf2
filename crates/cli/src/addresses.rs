//! The on-chain address of a user key, by scheme: Ethereum for ECDSA, Solana for Ed25519,
//! Bitcoin Taproot (P2TR) for BIP-340.

use anyhow::anyhow;
use sigil_primitives::{KeyScheme, VerifyingKey};

/// A key's address with the name of the chain it is for.
pub struct Address {
    /// What kind of address it is ("ethereum", "solana", "taproot").
    pub chain: &'static str,
    /// The address as that chain writes it.
    pub text: String,
}

/// The address of `key` on the chain its scheme is usually for.
pub fn address(key: &VerifyingKey) -> anyhow::Result<Address> {
    Ok(match key.scheme() {
        KeyScheme::EcdsaSecp256k1 => Address {
            chain: "ethereum",
            text: crate::eth::address(key).to_checksum(None),
        },
        KeyScheme::Ed25519 => Address {
            chain: "solana",
            text: bs58::encode(key.key_bytes()).into_string(),
        },
        KeyScheme::Bip340 => Address {
            chain: "taproot",
            text: taproot_address(key.key_bytes())?,
        },
    })
}

/// The mainnet P2TR address (BIP-350 bech32m, witness version 1) of an x-only output key.
fn taproot_address(output_key: &[u8]) -> anyhow::Result<String> {
    bech32::segwit::encode(bech32::hrp::BC, bech32::segwit::VERSION_1, output_key)
        .map_err(|e| anyhow!("cannot encode a taproot address: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taproot_addresses_match_bip86() {
        // BIP-86's first receiving address of its test mnemonic: output key and address.
        let key: [u8; 32] =
            hex::decode("a60869f0dbcf1dc659c9cecbaf8050135ea9e8cdc487053f1dc6880949dc684c")
                .expect("hex")
                .try_into()
                .expect("32 bytes");
        let key = VerifyingKey::tagged(KeyScheme::Bip340, &key).expect("x-only key");
        let address = address(&key).expect("address");
        assert_eq!(address.chain, "taproot");
        assert_eq!(
            address.text,
            "bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr"
        );
    }

    #[test]
    fn solana_addresses_are_base58_keys() {
        let key = VerifyingKey::tagged(KeyScheme::Ed25519, &[0x66; 32]);
        // Not every 32 bytes is a point; the base point's encoding is.
        let mut base = [0x66u8; 32];
        base[0] = 0x58;
        let key = key
            .or_else(|_| VerifyingKey::tagged(KeyScheme::Ed25519, &base))
            .expect("key");
        let text = address(&key).expect("address").text;
        assert_eq!(
            bs58::decode(&text).into_vec().expect("base58"),
            key.key_bytes()
        );
    }
}
