//! The guest-side SDK a Sigil program author depends on (compiled to wasm32).
//!
//! A Sigil *program* decides whether a signing request for a key may be signed. Every relayer
//! and every signer runs it, as a WebAssembly component, on every request for the keys it is
//! attached to. This crate is all an author needs:
//!
//! ```no_run
//! use sigil_program::{OracleData, Request, Result, ensure, parse_config};
//!
//! #[derive(serde::Deserialize)]
//! struct Config {
//!     max_length: usize,
//! }
//!
//! fn evaluate(request: &Request, config: &[u8], _oracle: &OracleData) -> Result {
//!     let config: Config = parse_config(config)?;
//!     ensure!(
//!         request.message.len() <= config.max_length,
//!         "message is {} bytes, more than {}",
//!         request.message.len(),
//!         config.max_length
//!     );
//!     Ok(())
//! }
//!
//! sigil_program::export_program!(evaluate);
//! ```
//!
//! with `crate-type = ["cdylib"]` in its `Cargo.toml`, built for `wasm32-unknown-unknown` and
//! turned into a component (the repository's `programs/README.md` says how).
//!
//! # Design
//!
//! - The interface is the WIT package `sigil:program` ([`WIT`]), shared with the host crate
//!   `sigil-programs`. Its two worlds are `program` (exports `evaluate`) and `program-with-hash`
//!   (also exports `custom-hash`). [`export_program!`] picks the world, generates the canonical
//!   ABI glue (with `wit-bindgen`) and adapts it to plain Rust types: [`Request`], [`OracleData`]
//!   and [`Error`].
//! - A program sees only its arguments: the message, the auxiliary data the user attached for
//!   it, the configuration stored with the key and the ledger's oracle data at the request's
//!   block. It has no clock, no randomness, no I/O; the host links nothing. Its fuel and memory
//!   are metered, so it should do the cheap checks first.
//! - Configuration and auxiliary data are opaque bytes to the host; by convention they are JSON,
//!   which [`parse_config`] and [`parse_aux`] decode into the author's own `serde` types with the
//!   right error variant. [`HexBytes`] reads `0x`-hex strings in such JSON.
//! - Because evaluation is a plain function, an author unit-tests it natively with `cargo test`.
//! - A panic becomes a trap: the request is refused, but with a less useful message than an
//!   [`Error`]. Prefer returning errors.

extern crate self as sigil_program;

mod hex;

pub use hex::{HexBytes, HexError, decode_hex};
pub use serde;
pub use serde_json;

/// The WIT definition of the program interface (package `sigil:program`).
pub const WIT: &str = include_str!("../../programs/wit/program.wit");

/// What a program is shown of a signing request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// The message to be signed, exactly as the user sent it.
    pub message: Vec<u8>,
    /// The auxiliary data the user attached for this program; empty if none.
    pub aux_data: Vec<u8>,
}

/// Ledger values at the request's block, as (key, value) pairs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OracleData {
    entries: Vec<(String, Vec<u8>)>,
}

impl OracleData {
    /// Key of the block number: 8 bytes, big-endian.
    pub const BLOCK_NUMBER: &'static str = "block-number";
    /// Key of the block time: Unix seconds, 8 bytes, big-endian.
    pub const TIMESTAMP: &'static str = "timestamp";
    /// Key of the signature scheme of the request's key, as text: `ecdsa-secp256k1`,
    /// `ed25519` or `bip340`.
    pub const KEY_SCHEME: &'static str = "key-scheme";

    /// Wraps (key, value) pairs.
    pub fn new(entries: Vec<(String, Vec<u8>)>) -> Self {
        Self { entries }
    }

    /// The value of `key`, if the ledger provided it.
    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_slice())
    }

    /// The value of `key` read as a big-endian `u64`, if present and 8 bytes long.
    pub fn get_u64(&self, key: &str) -> Option<u64> {
        self.get(key)
            .and_then(|v| <[u8; 8]>::try_from(v).ok())
            .map(u64::from_be_bytes)
    }

    /// The request's block number.
    pub fn block_number(&self) -> Option<u64> {
        self.get_u64(Self::BLOCK_NUMBER)
    }

    /// The request's block time in Unix seconds.
    pub fn timestamp(&self) -> Option<u64> {
        self.get_u64(Self::TIMESTAMP)
    }

    /// The scheme of the request's key (`ecdsa-secp256k1`, `ed25519`, `bip340`).
    pub fn key_scheme(&self) -> Option<&str> {
        self.get(Self::KEY_SCHEME)
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// All entries, in the order the host gave them.
    pub fn entries(&self) -> &[(String, Vec<u8>)] {
        &self.entries
    }
}

/// Why a program refused a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The request breaks the program's rule; say which, for the user.
    Denied(String),
    /// The configuration stored with the key could not be understood.
    InvalidConfig(String),
    /// The auxiliary data could not be understood.
    InvalidAuxData(String),
}

impl Error {
    /// A denial with `reason`.
    pub fn denied(reason: impl Into<String>) -> Self {
        Self::Denied(reason.into())
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Denied(text) => write!(f, "denied: {text}"),
            Self::InvalidConfig(text) => write!(f, "invalid config: {text}"),
            Self::InvalidAuxData(text) => write!(f, "invalid aux data: {text}"),
        }
    }
}

impl std::error::Error for Error {}

/// `Ok(())` allows the request; the default `T` makes `-> Result` the whole signature.
pub type Result<T = (), E = Error> = std::result::Result<T, E>;

/// The signature of a program's evaluation function.
pub type EvaluateFn = fn(&Request, &[u8], &OracleData) -> Result;

/// The signature of a program's custom hash: the 32-byte prehash to sign for `data`.
pub type CustomHashFn = fn(&[u8]) -> [u8; 32];

/// Decodes JSON configuration into `T`; failures are [`Error::InvalidConfig`].
pub fn parse_config<T: serde::de::DeserializeOwned>(config: &[u8]) -> Result<T> {
    serde_json::from_slice(config).map_err(|e| Error::InvalidConfig(e.to_string()))
}

/// Decodes JSON auxiliary data into `T`; failures are [`Error::InvalidAuxData`].
pub fn parse_aux<T: serde::de::DeserializeOwned>(aux_data: &[u8]) -> Result<T> {
    serde_json::from_slice(aux_data).map_err(|e| Error::InvalidAuxData(e.to_string()))
}

/// Returns `Err(Error::Denied(format!(...)))` from the enclosing function.
#[macro_export]
macro_rules! deny {
    ($($arg:tt)+) => {
        return ::core::result::Result::Err($crate::Error::Denied(::std::format!($($arg)+)))
    };
}

/// Denies the request with the formatted text unless `cond` holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            $crate::deny!($($arg)+);
        }
    };
}

/// Exports a program: `export_program!(evaluate)` or
/// `export_program!(evaluate, custom_hash = my_hash)`, naming functions of type [`EvaluateFn`]
/// and [`CustomHashFn`]. Use it once, in the program's `cdylib` crate.
#[macro_export]
macro_rules! export_program {
    ($evaluate:path $(,)?) => {
        const _: () = {
            struct SigilProgram;

            impl $crate::__private::program::Guest for SigilProgram {
                fn evaluate(
                    request: $crate::__private::program::Request,
                    config: ::std::vec::Vec<u8>,
                    oracle_data: $crate::__private::program::OracleData,
                ) -> ::core::result::Result<(), $crate::__private::program::Error> {
                    $crate::__private::evaluate_program($evaluate, request, config, oracle_data)
                }
            }

            $crate::__private::program::__export_sigil_program!(
                SigilProgram with_types_in $crate::__private::program
            );
        };
    };
    ($evaluate:path, custom_hash = $hash:path $(,)?) => {
        const _: () = {
            struct SigilProgram;

            impl $crate::__private::with_hash::Guest for SigilProgram {
                fn evaluate(
                    request: $crate::__private::with_hash::Request,
                    config: ::std::vec::Vec<u8>,
                    oracle_data: $crate::__private::with_hash::OracleData,
                ) -> ::core::result::Result<(), $crate::__private::with_hash::Error> {
                    $crate::__private::evaluate_program_with_hash(
                        $evaluate,
                        request,
                        config,
                        oracle_data,
                    )
                }

                fn custom_hash(data: ::std::vec::Vec<u8>) -> ::std::vec::Vec<u8> {
                    let hash: $crate::CustomHashFn = $hash;
                    hash(&data).to_vec()
                }
            }

            $crate::__private::with_hash::__export_sigil_program_with_hash!(
                SigilProgram with_types_in $crate::__private::with_hash
            );
        };
    };
}

/// Glue for [`export_program!`]; not a stable API.
#[doc(hidden)]
pub mod __private {
    pub use wit_bindgen;

    /// Bindings of the `program` world.
    #[allow(missing_docs, clippy::too_many_arguments)]
    pub mod program {
        wit_bindgen::generate!({
            path: "../programs/wit",
            world: "program",
            pub_export_macro: true,
            export_macro_name: "__export_sigil_program",
            runtime_path: "::sigil_program::__private::wit_bindgen::rt",
        });
    }

    /// Bindings of the `program-with-hash` world.
    #[allow(missing_docs, clippy::too_many_arguments)]
    pub mod with_hash {
        wit_bindgen::generate!({
            path: "../programs/wit",
            world: "program-with-hash",
            pub_export_macro: true,
            export_macro_name: "__export_sigil_program_with_hash",
            runtime_path: "::sigil_program::__private::wit_bindgen::rt",
        });
    }

    use crate::{Error, EvaluateFn, OracleData, Request};

    /// Runs `evaluate` on the `program` world's arguments.
    pub fn evaluate_program(
        evaluate: EvaluateFn,
        request: program::Request,
        config: Vec<u8>,
        oracle_data: program::OracleData,
    ) -> Result<(), program::Error> {
        let request = Request {
            message: request.message,
            aux_data: request.aux_data,
        };
        evaluate(&request, &config, &OracleData::new(oracle_data)).map_err(|e| match e {
            Error::Denied(t) => program::Error::Denied(t),
            Error::InvalidConfig(t) => program::Error::InvalidConfig(t),
            Error::InvalidAuxData(t) => program::Error::InvalidAuxData(t),
        })
    }

    /// Runs `evaluate` on the `program-with-hash` world's arguments.
    pub fn evaluate_program_with_hash(
        evaluate: EvaluateFn,
        request: with_hash::Request,
        config: Vec<u8>,
        oracle_data: with_hash::OracleData,
    ) -> Result<(), with_hash::Error> {
        let request = Request {
            message: request.message,
            aux_data: request.aux_data,
        };
        evaluate(&request, &config, &OracleData::new(oracle_data)).map_err(|e| match e {
            Error::Denied(t) => with_hash::Error::Denied(t),
            Error::InvalidConfig(t) => with_hash::Error::InvalidConfig(t),
            Error::InvalidAuxData(t) => with_hash::Error::InvalidAuxData(t),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct Config {
        max: usize,
    }

    fn evaluate(request: &Request, config: &[u8], _: &OracleData) -> Result {
        let config: Config = parse_config(config)?;
        ensure!(request.message.len() <= config.max, "too long");
        Ok(())
    }

    #[test]
    fn evaluate_fn_and_helpers() {
        let request = Request {
            message: vec![0; 4],
            aux_data: vec![],
        };
        let oracle = OracleData::default();
        assert_eq!(evaluate(&request, br#"{"max":4}"#, &oracle), Ok(()));
        assert_eq!(
            evaluate(&request, br#"{"max":3}"#, &oracle),
            Err(Error::denied("too long"))
        );
        assert!(matches!(
            evaluate(&request, b"{", &oracle),
            Err(Error::InvalidConfig(_))
        ));
    }

    #[test]
    fn glue_maps_errors() {
        let request = __private::program::Request {
            message: vec![1, 2],
            aux_data: vec![],
        };
        let result =
            __private::evaluate_program(evaluate, request, br#"{"max":1}"#.to_vec(), vec![]);
        assert!(matches!(result, Err(__private::program::Error::Denied(t)) if t == "too long"));
    }

    #[test]
    fn oracle_values() {
        let oracle = OracleData::new(vec![
            (
                OracleData::BLOCK_NUMBER.into(),
                42u64.to_be_bytes().to_vec(),
            ),
            (OracleData::TIMESTAMP.into(), vec![1, 2, 3]),
        ]);
        assert_eq!(oracle.block_number(), Some(42));
        assert_eq!(oracle.timestamp(), None);
        assert_eq!(oracle.get("other"), None);
    }

    #[test]
    fn aux_errors_are_aux_errors() {
        let parsed: Result<Config> = parse_aux(b"[]");
        assert!(matches!(parsed, Err(Error::InvalidAuxData(_))));
    }
}
