//! `echo-hash` (test program): its `custom-hash` returns its input unchanged, so the host's
//! rule that a custom hash is exactly 32 bytes can be tested with inputs of 31 and 33 bytes.
//!
//! Written with `wit-bindgen` directly rather than the SDK (whose custom-hash signature only
//! allows 32 bytes); it also shows what the SDK's `export_program!` does underneath.

// The generated glue takes the flattened canonical-ABI arguments, eight of them.
#[allow(clippy::too_many_arguments)]
mod bindings {
    wit_bindgen::generate!({
        path: "../../crates/programs/wit",
        world: "program-with-hash",
    });
}

use bindings::{Error, Guest, OracleData, Request};

struct EchoHash;

impl Guest for EchoHash {
    fn evaluate(
        _request: Request,
        _config: Vec<u8>,
        _oracle_data: OracleData,
    ) -> Result<(), Error> {
        Ok(())
    }

    fn custom_hash(data: Vec<u8>) -> Vec<u8> {
        data
    }
}

bindings::export!(EchoHash with_types_in bindings);
