//! The WebAssembly host that validates, caches, meters and evaluates Sigil programs.
//!
//! A *program* is a WebAssembly component that every relayer and every signer runs on each
//! signing request for a key; the request is signed only if every program attached to the key
//! passes. The interface is the WIT package `sigil:program` in `wit/program.wit` (exported as
//! [`WIT`]): a program exports
//!
//! - `evaluate(request: {message, aux-data}, config, oracle-data) -> result<_, error>`, and
//!   optionally
//! - `custom-hash(data) -> list<u8>`, which must return exactly 32 bytes.
//!
//! # Design
//!
//! - **No ambient I/O.** The linker is empty: no WASI, no clock, no randomness, no host calls. A
//!   component that imports anything is rejected. The arguments are the only inputs, so every
//!   node that evaluates the same request at the same block reaches the same verdict. NaNs are
//!   canonicalised and relaxed SIMD is deterministic for the same reason.
//! - **Metering.** Each evaluation gets its own [`Store`](wasmtime::Store) with its own fuel
//!   budget (the ledger parameter); budgets are per program, not shared between the programs
//!   of a key ([`ProgramHost::evaluate_all`]; [`FuelPolicy::Shared`] exists for benchmark
//!   baselines). A program's linear memory is capped
//!   ([`HostConfig::memory_limit_bytes`], 64 MiB by default) and it may have one memory, few
//!   tables and few instances. Running out of either is its own error
//!   ([`ProgramError::OutOfFuel`], [`ProgramError::MemoryLimit`]), not a generic trap.
//! - **Compile once.** Compiling a component with Cranelift takes milliseconds to seconds;
//!   compiled programs are cached by [`ProgramId`](sigil_primitives::ProgramId) (a bounded LRU),
//!   so the common case is one instantiation, one call.
//! - **Validate early.** [`ProgramHost::validate`] is what `store_program` runs: the bytes must
//!   be a component, import nothing, export `evaluate` (and perhaps `custom-hash`) with the
//!   interface's types and instantiate within the limits. A broken program never reaches the
//!   ledger.
//! - **Typed errors.** [`ProgramError`] tells invalid bytecode, a missing export, out of fuel,
//!   the memory cap, a trap (with its message), a denial (with the program's own text) and a
//!   bad custom-hash output apart, each with a stable [`code`](ProgramError::code).
//!
//! Programs are written against the guest SDK, the `sigil-program` crate; examples live in the
//! repository's `programs/` directory, whose built components are what this crate's tests run.
//!
//! ```no_run
//! use sigil_programs::{HostConfig, ProgramHost, Request};
//! # fn run(id: sigil_primitives::ProgramId, wasm: &[u8]) -> Result<(), Box<dyn std::error::Error>> {
//! let host = ProgramHost::new(HostConfig::default())?;
//! let info = host.validate(wasm)?;
//! let request = Request { message: b"hello", aux_data: b"" };
//! let outcome = host.evaluate(id, wasm, &request, br#"{"max_length":64}"#, &[], 10_000_000)?;
//! println!("custom hash: {}, fuel used: {}", info.exports_custom_hash, outcome.fuel_used);
//! # Ok(()) }
//! ```

mod cache;
mod error;
mod host;

pub use cache::LruCache;
pub use error::{MAX_PROGRAM_MESSAGE_LEN, ProgramError};
pub use host::{
    DEFAULT_CACHE_CAPACITY, DEFAULT_MEMORY_LIMIT_BYTES, EvalOutcome, FuelPolicy, HostConfig,
    HostError, OracleEntry, ProgramCall, ProgramFailure, ProgramHost, ProgramInfo, Request,
    VALIDATION_FUEL, oracle,
};

/// The version of the program interface in [`WIT`]; part of every program id
/// (`sigil_crypto::ProgramContents::version`).
pub const INTERFACE_VERSION: u32 = 1;

/// The WIT definition of the program interface (package `sigil:program`).
pub const WIT: &str = include_str!("../wit/program.wit");
