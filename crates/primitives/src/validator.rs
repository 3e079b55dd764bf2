//! Validator records and endpoints.

use serde::{Deserialize, Serialize};

use crate::{AccountId, PrimitiveError, X25519PublicKey};

/// Longest endpoint text accepted: a 253-byte DNS name, a colon and a 5-digit port.
const MAX_ENDPOINT_LEN: usize = 253 + 1 + 5;

/// Where a validator's TSS node listens, as `host:port` (IPv6 hosts in brackets).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Endpoint(String);

impl Endpoint {
    /// Parses and validates `host:port`.
    pub fn new(text: impl Into<String>) -> Result<Self, PrimitiveError> {
        let text = text.into();
        let bad = || PrimitiveError::InvalidEndpoint(text.chars().take(64).collect());
        if text.len() > MAX_ENDPOINT_LEN {
            return Err(bad());
        }
        let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
        let port_ok = !port.is_empty()
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u16>().is_ok_and(|p| p != 0);
        let host_ok = if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'))
        {
            inner.parse::<std::net::Ipv6Addr>().is_ok()
        } else {
            !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        };
        if !port_ok || !host_ok {
            return Err(bad());
        }
        Ok(Self(text))
    }

    /// The `host:port` text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Endpoint {
    type Err = PrimitiveError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl TryFrom<String> for Endpoint {
    type Error = PrimitiveError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

impl From<Endpoint> for String {
    fn from(e: Endpoint) -> String {
        e.0
    }
}

/// What the ledger publishes about a validator so others can reach and authenticate it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidatorInfo {
    /// The validator's account (ed25519 public key).
    pub account: AccountId,
    /// The validator's x25519 static key, for envelopes and Noise.
    pub x25519: X25519PublicKey,
    /// Where its TSS node listens.
    pub endpoint: Endpoint,
}
