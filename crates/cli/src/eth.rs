//! EIP-1559 Ethereum transactions for `sigil sign --eth-tx` and `sigil demo`, built with `alloy`.
//!
//! Sigil signs the transaction's *signing payload* (`0x02 ‖ rlp([chain_id, nonce, …])`, the bytes
//! the `eth-allowlist` program reads) hashed with keccak-256; the 65-byte `r ‖ s ‖ v` answer
//! (`v` the y-parity, 0 or 1) then completes the transaction into its raw EIP-2718 encoding.

use std::str::FromStr as _;

use alloy_consensus::{SignableTransaction as _, Signed, TxEip1559};
use alloy_eips::eip2718::Encodable2718 as _;
use alloy_primitives::{Address, B256, Bytes, Signature, TxKind, U256};
use anyhow::{Context as _, anyhow, bail};
use serde::Deserialize;
use sigil_primitives::VerifyingKey;

/// An EIP-1559 transaction as written in a `--eth-tx` JSON file.
///
/// Amounts and counters are JSON numbers or strings (decimal or `0x`-hex); `to` is an address
/// (absent or `null` for a contract creation); `input` is `0x`-hex calldata (default empty).
///
/// ```json
/// {"chain_id": 1, "nonce": 0, "max_priority_fee_per_gas": "1000000000",
///  "max_fee_per_gas": "30000000000", "gas_limit": 21000,
///  "to": "0x000000000000000000000000000000000000dEaD", "value": "10000000000000000", "input": "0x"}
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Eip1559Json {
    /// EIP-155 chain id.
    pub chain_id: Quantity,
    /// The sender's nonce.
    pub nonce: Quantity,
    /// Tip per gas, wei.
    pub max_priority_fee_per_gas: Quantity,
    /// Fee cap per gas, wei.
    pub max_fee_per_gas: Quantity,
    /// Gas limit.
    pub gas_limit: Quantity,
    /// Recipient; `None` creates a contract.
    #[serde(default)]
    pub to: Option<String>,
    /// Value, wei.
    #[serde(default)]
    pub value: Option<Quantity>,
    /// Calldata, `0x`-hex.
    #[serde(default)]
    pub input: Option<String>,
}

/// A number in JSON: a number, or a decimal or `0x`-hex string (for values above 2^53).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Quantity {
    /// A JSON number.
    Number(u64),
    /// A decimal or `0x`-hex string.
    Text(String),
}

impl Quantity {
    fn to_u256(&self, field: &str) -> anyhow::Result<U256> {
        match self {
            Quantity::Number(n) => Ok(U256::from(*n)),
            Quantity::Text(text) => U256::from_str(text.trim())
                .map_err(|e| anyhow!("{field}: {text:?} is not a number: {e}")),
        }
    }

    fn to_u64(&self, field: &str) -> anyhow::Result<u64> {
        u64::try_from(self.to_u256(field)?).map_err(|_| anyhow!("{field} does not fit in 64 bits"))
    }

    fn to_u128(&self, field: &str) -> anyhow::Result<u128> {
        u128::try_from(self.to_u256(field)?)
            .map_err(|_| anyhow!("{field} does not fit in 128 bits"))
    }
}

impl Eip1559Json {
    /// Builds the transaction.
    pub fn to_tx(&self) -> anyhow::Result<TxEip1559> {
        let to = match &self.to {
            Some(text) => TxKind::Call(
                Address::from_str(text.trim()).map_err(|e| anyhow!("to: {text:?}: {e}"))?,
            ),
            None => TxKind::Create,
        };
        let input = match &self.input {
            Some(text) => Bytes::from_str(text.trim()).map_err(|e| anyhow!("input: {e}"))?,
            None => Bytes::new(),
        };
        Ok(TxEip1559 {
            chain_id: self.chain_id.to_u64("chain_id")?,
            nonce: self.nonce.to_u64("nonce")?,
            gas_limit: self.gas_limit.to_u64("gas_limit")?,
            max_fee_per_gas: self.max_fee_per_gas.to_u128("max_fee_per_gas")?,
            max_priority_fee_per_gas: self
                .max_priority_fee_per_gas
                .to_u128("max_priority_fee_per_gas")?,
            to,
            value: match &self.value {
                Some(v) => v.to_u256("value")?,
                None => U256::ZERO,
            },
            access_list: Default::default(),
            input,
        })
    }
}

/// Reads and builds the transaction of a `--eth-tx` JSON file.
pub fn read_eip1559_json(path: &std::path::Path) -> anyhow::Result<TxEip1559> {
    let text = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let json: Eip1559Json = serde_json::from_slice(&text)
        .with_context(|| format!("{} is not an EIP-1559 transaction", path.display()))?;
    json.to_tx()
        .with_context(|| format!("{} is not an EIP-1559 transaction", path.display()))
}

/// A plain value transfer, as the demo sends.
pub fn transfer(chain_id: u64, nonce: u64, to: Address, value: U256) -> TxEip1559 {
    TxEip1559 {
        chain_id,
        nonce,
        gas_limit: 21_000,
        max_fee_per_gas: 30_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: TxKind::Call(to),
        value,
        access_list: Default::default(),
        input: Bytes::new(),
    }
}

/// The bytes to sign: `0x02 ‖ rlp(fields)`; the network hashes them with keccak-256.
pub fn signing_payload(tx: &TxEip1559) -> Vec<u8> {
    tx.encoded_for_signing()
}

/// The Ethereum address of a Sigil verifying key.
pub fn address(key: &VerifyingKey) -> Address {
    Address::from(*sigil_crypto::eth_address(key).as_bytes())
}

/// A transaction completed with Sigil's signature.
#[derive(Debug, Clone)]
pub struct SignedTx {
    /// Raw EIP-2718 bytes (`0x02 ‖ rlp(fields ‖ y_parity, r, s)`), ready for `eth_sendRawTransaction`.
    pub raw: Vec<u8>,
    /// The transaction hash.
    pub hash: B256,
    /// The sender recovered from the signed transaction.
    pub sender: Address,
}

/// Completes `tx` with a 65-byte `r ‖ s ‖ v` signature and checks that the sender it recovers to
/// is `expected` (the key's address).
pub fn complete(
    tx: TxEip1559,
    signature: &sigil_primitives::Signature,
    expected: Address,
) -> anyhow::Result<SignedTx> {
    let bytes = signature
        .ecdsa()
        .ok_or_else(|| anyhow!("an Ethereum transaction needs an ECDSA signature"))?
        .as_bytes();
    let r = U256::from_be_slice(&bytes[..32]);
    let s = U256::from_be_slice(&bytes[32..64]);
    let y_parity = match bytes[64] {
        0 => false,
        1 => true,
        v => bail!("recovery id {v} is not a y-parity (0 or 1)"),
    };
    let signed: Signed<TxEip1559> = tx.into_signed(Signature::new(r, s, y_parity));
    let sender = signed
        .recover_signer()
        .map_err(|e| anyhow!("cannot recover the transaction's sender: {e}"))?;
    if sender != expected {
        bail!("the signed transaction's sender is {sender}, not the key's address {expected}");
    }
    Ok(SignedTx {
        raw: signed.encoded_2718(),
        hash: *signed.hash(),
        sender,
    })
}
