//! `device-key`: allows a request only if its auxiliary data carries a valid signature over
//! the message by one of the device keys in the configuration (a second factor: the user's
//! phone or hardware key co-signs what the account asks the network to sign).
//!
//! Configuration:
//! `{"devices": [{"scheme": "ed25519", "key": "0x<32 bytes>"},
//!               {"scheme": "secp256k1", "key": "0x<33-byte compressed or 65-byte SEC1 key>"}]}`
//!
//! Auxiliary data: `{"signature": "0x<64 bytes>"}`.
//!
//! - ed25519: the RFC 8032 signature of the message (strict verification).
//! - secp256k1: ECDSA over SHA-256(message), `r ‖ s` (a 65th recovery byte is ignored; a high
//!   `s` is accepted, as both halves of the curve verify the same message).

use k256::ecdsa::signature::Verifier as _;
use sigil_program::{Error, HexBytes, OracleData, Request, Result, parse_aux, parse_config};

/// The program's configuration.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// The keys whose signature allows a request.
    devices: Vec<Device>,
}

/// One device key.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Device {
    scheme: Scheme,
    key: HexBytes,
}

/// The signature schemes devices use.
#[derive(serde::Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum Scheme {
    Ed25519,
    Secp256k1,
}

/// The auxiliary data.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Aux {
    signature: HexBytes,
}

/// A device key, decoded.
enum DeviceKey {
    Ed25519(ed25519_dalek::VerifyingKey),
    Secp256k1(k256::ecdsa::VerifyingKey),
}

impl DeviceKey {
    fn parse(device: &Device, index: usize) -> Result<Self> {
        let bad = |what: &str| Error::InvalidConfig(format!("device {index}: {what}"));
        match device.scheme {
            Scheme::Ed25519 => {
                let bytes: [u8; 32] = device
                    .key
                    .as_slice()
                    .try_into()
                    .map_err(|_| bad("an ed25519 key is 32 bytes"))?;
                ed25519_dalek::VerifyingKey::from_bytes(&bytes)
                    .map(Self::Ed25519)
                    .map_err(|_| bad("not a valid ed25519 key"))
            }
            Scheme::Secp256k1 => k256::ecdsa::VerifyingKey::from_sec1_bytes(device.key.as_slice())
                .map(Self::Secp256k1)
                .map_err(|_| bad("not a valid SEC1 secp256k1 key")),
        }
    }

    fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            Self::Ed25519(key) => ed25519_dalek::Signature::from_slice(signature)
                .is_ok_and(|sig| key.verify_strict(message, &sig).is_ok()),
            Self::Secp256k1(key) => {
                let rs = signature.get(..64).filter(|_| signature.len() <= 65);
                rs.and_then(|rs| k256::ecdsa::Signature::from_slice(rs).ok())
                    .is_some_and(|sig| {
                        let sig = sig.normalize_s().unwrap_or(sig);
                        key.verify(message, &sig).is_ok()
                    })
            }
        }
    }
}

/// Allows the request if `signature` in the aux data is a device's signature of the message.
pub fn evaluate(request: &Request, config: &[u8], _oracle: &OracleData) -> Result {
    let config: Config = parse_config(config)?;
    if config.devices.is_empty() {
        return Err(Error::InvalidConfig("no device keys configured".into()));
    }
    let keys = config
        .devices
        .iter()
        .enumerate()
        .map(|(i, device)| DeviceKey::parse(device, i))
        .collect::<Result<Vec<_>>>()?;
    let aux: Aux = parse_aux(&request.aux_data)?;
    if keys
        .iter()
        .any(|key| key.verifies(&request.message, aux.signature.as_slice()))
    {
        Ok(())
    } else {
        Err(Error::denied(
            "the signature is not a valid signature of the message by any device key",
        ))
    }
}

sigil_program::export_program!(evaluate);

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::Signer as _;
    use k256::ecdsa::signature::Signer as _;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn ed_key() -> ed25519_dalek::SigningKey {
        ed25519_dalek::SigningKey::from_bytes(&[7; 32])
    }

    fn k_key() -> k256::ecdsa::SigningKey {
        k256::ecdsa::SigningKey::from_slice(&[9; 32]).expect("scalar")
    }

    fn config() -> String {
        let ed = hex(ed_key().verifying_key().as_bytes());
        let k = hex(k_key().verifying_key().to_encoded_point(true).as_bytes());
        format!(
            r#"{{"devices":[{{"scheme":"ed25519","key":"0x{ed}"}},{{"scheme":"secp256k1","key":"0x{k}"}}]}}"#
        )
    }

    fn run(message: &[u8], signature: &[u8]) -> Result {
        let request = Request {
            message: message.to_vec(),
            aux_data: format!(r#"{{"signature":"0x{}"}}"#, hex(signature)).into_bytes(),
        };
        evaluate(&request, config().as_bytes(), &OracleData::default())
    }

    #[test]
    fn ed25519_signature_allows() {
        let sig = ed_key().sign(b"pay bob");
        assert_eq!(run(b"pay bob", &sig.to_bytes()), Ok(()));
        assert!(matches!(
            run(b"pay eve", &sig.to_bytes()),
            Err(Error::Denied(_))
        ));
    }

    #[test]
    fn secp256k1_signature_allows() {
        let sig: k256::ecdsa::Signature = k_key().sign(b"pay bob");
        assert_eq!(run(b"pay bob", &sig.to_bytes()), Ok(()));
        assert!(matches!(
            run(b"pay eve", &sig.to_bytes()),
            Err(Error::Denied(_))
        ));
    }

    #[test]
    fn other_keys_are_denied() {
        let other = ed25519_dalek::SigningKey::from_bytes(&[8; 32]);
        let sig = other.sign(b"pay bob");
        assert!(matches!(
            run(b"pay bob", &sig.to_bytes()),
            Err(Error::Denied(_))
        ));
    }

    #[test]
    fn bad_inputs_are_typed() {
        let request = Request {
            message: b"m".to_vec(),
            aux_data: b"{}".to_vec(),
        };
        let oracle = OracleData::default();
        assert!(matches!(
            evaluate(&request, config().as_bytes(), &oracle),
            Err(Error::InvalidAuxData(_))
        ));
        assert!(matches!(
            evaluate(&request, br#"{"devices":[]}"#, &oracle),
            Err(Error::InvalidConfig(_))
        ));
        assert!(matches!(
            evaluate(
                &request,
                br#"{"devices":[{"scheme":"ed25519","key":"0x00"}]}"#,
                &oracle
            ),
            Err(Error::InvalidConfig(_))
        ));
    }
}
