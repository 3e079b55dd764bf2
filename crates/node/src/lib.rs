//! The Sigil TSS node: the validator server users and other validators talk to.
//!
//! A node loads (or creates) its secrets in an encrypted keystore, joins the ledger as a
//! validator with one `validate` transaction, follows the ledger's new heads and acts on what
//! concerns it: it runs the network DKG when the jump start chose it and confirms the key.
//! Its HTTP API (axum) serves users (`POST /v1/relay`, `GET /v1/signature/{id}`), other
//! validators (`POST /v1/sign`, the transport at `GET /v1/ws`) and operators (`/v1/info`,
//! `/v1/hashes`, `/healthz`, `/metrics`). Every wire format is in `docs/PROTOCOL.md` §7.
//!
//! A relayer (a validator outside the signer set) checks a user's request, runs the key's
//! programs, computes the committee and forwards the request to each member; each member
//! checks everything again from the ledger, then runs the threshold signing session with the
//! rest of the committee over the Noise transport and attests the signature.

mod api;
mod args;
mod checks;
mod error;
#[cfg(feature = "fault-injection")]
mod frame;
mod http;
mod identity;
mod jump_start;
mod node;
mod nonce_pool;
mod nonces;
mod relay;
mod rotation;
mod scheme_keys;
mod session_log;
mod signer;
mod state;
mod view;

pub use args::{NodeArgs, run};
pub use error::ApiError;
pub use http::HttpLimits;
pub use identity::{Identity, KeySourceArg};
pub use node::{Node, NodeConfig};
