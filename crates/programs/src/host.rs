//! The engine, the compile cache and one metered evaluation per call.

use std::sync::{Arc, Mutex, PoisonError};

use sigil_primitives::{MAX_MESSAGE_SIZE, ProgramId, ProgramInstance};
use wasmtime::component::{
    Component, ComponentExportIndex, ComponentType, InstancePre, Lift, Linker, Lower,
};
use wasmtime::{Config, Engine, ResourceLimiter, Store, Trap, WasmBacktrace};

use crate::cache::LruCache;
use crate::error::{ProgramError, truncate_message};

/// Default cap on a program's linear memory: 64 MiB.
pub const DEFAULT_MEMORY_LIMIT_BYTES: usize = 64 << 20;
/// Default number of compiled programs kept in memory.
pub const DEFAULT_CACHE_CAPACITY: usize = 256;
/// Fuel a program may burn while it is instantiated at validation time.
pub const VALIDATION_FUEL: u64 = 10_000_000;

/// Most table elements a program may have; tables hold function references, and real programs
/// need a few hundred.
const TABLE_ELEMENTS_LIMIT: usize = 100_000;
/// Most core instances in one program; a componentized Rust program has two or three.
const INSTANCES_LIMIT: usize = 32;
/// Most tables in one program.
const TABLES_LIMIT: usize = 8;
/// One linear memory per program, so the memory cap is the program's whole memory.
const MEMORIES_LIMIT: usize = 1;

/// The `evaluate` export.
const EVALUATE: &str = "evaluate";
/// The optional `custom-hash` export.
const CUSTOM_HASH: &str = "custom-hash";

/// How [`ProgramHost::evaluate_all`] splits fuel between the programs of one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FuelPolicy {
    /// Each program gets the whole budget: one program's cost never starves another.
    #[default]
    PerProgram,
    /// All programs draw on one budget, each getting what the previous ones left (the
    /// Entropy-style path, kept for benchmark baselines).
    Shared,
}

impl FuelPolicy {
    /// Its name, as [`FromStr`](std::str::FromStr) reads it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PerProgram => "per-program",
            Self::Shared => "shared",
        }
    }
}

impl std::str::FromStr for FuelPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Self::PerProgram, Self::Shared]
            .into_iter()
            .find(|policy| policy.as_str() == s)
            .ok_or_else(|| format!("unknown fuel policy `{s}`: use per-program or shared"))
    }
}

/// Limits applied to every evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostConfig {
    /// Largest linear memory a program may grow to, in bytes.
    pub memory_limit_bytes: usize,
    /// How many compiled programs to keep; the least recently used is dropped first. 0 compiles
    /// a program on every evaluation.
    pub cache_capacity: usize,
    /// How a request's programs share the fuel budget.
    pub fuel_policy: FuelPolicy,
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            memory_limit_bytes: DEFAULT_MEMORY_LIMIT_BYTES,
            cache_capacity: DEFAULT_CACHE_CAPACITY,
            fuel_policy: FuelPolicy::PerProgram,
        }
    }
}

/// What validation learned about a program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgramInfo {
    /// Whether the program exports `custom-hash`, so keys may use it as their hashing algorithm.
    pub exports_custom_hash: bool,
}

/// What a program is shown of a signing request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    /// The message to be signed.
    pub message: &'a [u8],
    /// The auxiliary data the user attached for this program (empty if none).
    pub aux_data: &'a [u8],
}

/// One ledger value handed to programs, such as ([`oracle::BLOCK_NUMBER`], 8 bytes big-endian).
pub type OracleEntry = (String, Vec<u8>);

/// Keys of the oracle data the ledger provides.
pub mod oracle {
    /// The request's block number, 8 bytes big-endian.
    pub const BLOCK_NUMBER: &str = "block-number";
    /// The request's block time, Unix seconds, 8 bytes big-endian.
    pub const TIMESTAMP: &str = "timestamp";
    /// The signature scheme of the request's key, as text: `ecdsa-secp256k1`, `ed25519` or
    /// `bip340`.
    pub const KEY_SCHEME: &str = "key-scheme";
}

/// The result of an evaluation that passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvalOutcome {
    /// Fuel the program burned, instantiation included.
    pub fuel_used: u64,
}

/// One program of a key, as [`ProgramHost::evaluate_all`] runs it.
#[derive(Debug, Clone, Copy)]
pub struct ProgramCall<'a> {
    /// The program's id (the cache key).
    pub id: ProgramId,
    /// The program's component; only compiled when `id` is not cached.
    pub bytecode: &'a [u8],
    /// The configuration stored with the key for this program.
    pub config: &'a [u8],
    /// The request's auxiliary data for this program.
    pub aux_data: &'a [u8],
}

impl<'a> ProgramCall<'a> {
    /// The call for one of a key's program instances, given the program's stored bytecode and
    /// the request's auxiliary data for it.
    pub fn new(instance: &'a ProgramInstance, bytecode: &'a [u8], aux_data: &'a [u8]) -> Self {
        Self {
            id: instance.program,
            bytecode,
            config: &instance.config,
            aux_data,
        }
    }
}

/// Which of a key's programs stopped a request, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("program #{index} ({program}): {error}")]
pub struct ProgramFailure {
    /// Its position in the key's program list.
    pub index: usize,
    /// Its id.
    pub program: ProgramId,
    /// What went wrong.
    pub error: ProgramError,
}

/// The engine could not be created (an unsupported host CPU or a bad build).
#[derive(Debug, thiserror::Error)]
#[error("cannot create the WebAssembly engine: {0}")]
pub struct HostError(String);

/// Runs programs: validates, compiles (once per program id), meters and evaluates them.
///
/// Share one host between threads (`Arc<ProgramHost>`); every evaluation has its own store.
/// Calls are synchronous and CPU-bound (up to the fuel budget), so async callers should run
/// them on a blocking thread.
pub struct ProgramHost {
    engine: Engine,
    linker: Linker<StoreState>,
    config: HostConfig,
    cache: Mutex<LruCache<Compiled>>,
}

impl std::fmt::Debug for ProgramHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProgramHost")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A compiled program, ready to instantiate.
struct Compiled {
    pre: InstancePre<StoreState>,
    evaluate: ComponentExportIndex,
    custom_hash: Option<ComponentExportIndex>,
}

/// Per-evaluation state: the memory limiter and whether the program ran into it.
struct StoreState {
    limiter: Limiter,
}

struct Limiter {
    memory_limit_bytes: usize,
    memory_limit_hit: bool,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Refusing makes `memory.grow` return -1; recording it lets us name the failure that
        // usually follows (an allocation-failure abort) as what it is.
        if desired > self.memory_limit_bytes {
            self.memory_limit_hit = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= TABLE_ELEMENTS_LIMIT)
    }

    fn instances(&self) -> usize {
        INSTANCES_LIMIT
    }

    fn tables(&self) -> usize {
        TABLES_LIMIT
    }

    fn memories(&self) -> usize {
        MEMORIES_LIMIT
    }
}

/// `record request` of the WIT world, borrowed so the message is copied only into the guest.
#[derive(ComponentType, Lower)]
#[component(record)]
struct WitRequest<'a> {
    #[component(name = "message")]
    message: &'a [u8],
    #[component(name = "aux-data")]
    aux_data: &'a [u8],
}

/// `variant error` of the WIT world.
#[derive(ComponentType, Lift)]
#[component(variant)]
enum WitError {
    #[component(name = "denied")]
    Denied(String),
    #[component(name = "invalid-config")]
    InvalidConfig(String),
    #[component(name = "invalid-aux-data")]
    InvalidAuxData(String),
}

type EvaluateParams<'a> = (WitRequest<'a>, &'a [u8], &'a [OracleEntry]);
type EvaluateResults = (Result<(), WitError>,);
type HashParams<'a> = (&'a [u8],);
type HashResults = (Vec<u8>,);

impl ProgramHost {
    /// Creates a host with its own engine and an empty cache.
    pub fn new(config: HostConfig) -> Result<Self, HostError> {
        let mut wasm = Config::new();
        wasm.wasm_component_model(true);
        wasm.consume_fuel(true);
        // Every node must reach the same verdict: no NaN bit patterns that depend on the CPU,
        // no relaxed-SIMD results that do either.
        wasm.cranelift_nan_canonicalization(true);
        wasm.relaxed_simd_deterministic(true);
        let engine = Engine::new(&wasm).map_err(|e| HostError(format!("{e:#}")))?;
        // Nothing is ever defined in the linker: programs get no ambient capabilities.
        let linker = Linker::new(&engine);
        let cache = Mutex::new(LruCache::new(config.cache_capacity));
        Ok(Self {
            engine,
            linker,
            config,
            cache,
        })
    }

    /// The limits this host applies.
    pub fn config(&self) -> &HostConfig {
        &self.config
    }

    /// Checks that `bytecode` is a program this host can run, as `store_program` must before a
    /// program reaches the ledger: a component, importing nothing, exporting `evaluate` (and
    /// maybe `custom-hash`) with the interface's types, and instantiable within the limits.
    ///
    /// Compiles the program, which for large programs takes a while; nothing is cached.
    pub fn validate(&self, bytecode: &[u8]) -> Result<ProgramInfo, ProgramError> {
        let compiled = self.compile(bytecode)?;
        Ok(Self::info(&compiled))
    }

    /// Like [`validate`](Self::validate), and keeps the compiled program under `id` so that
    /// later evaluations only instantiate it.
    pub fn prepare(&self, id: ProgramId, bytecode: &[u8]) -> Result<ProgramInfo, ProgramError> {
        let compiled = self.compiled(id, bytecode)?;
        Ok(Self::info(&compiled))
    }

    /// How many compiled programs are cached.
    pub fn cached_programs(&self) -> usize {
        self.lock_cache().len()
    }

    /// Whether the program `id` is compiled and cached.
    pub fn is_cached(&self, id: &ProgramId) -> bool {
        self.lock_cache().contains(id)
    }

    /// Runs the program's `evaluate` on one request with `fuel` units of fuel.
    ///
    /// `bytecode` must be the program whose id is `id` (both come from the ledger); it is only
    /// compiled when `id` is not cached. `Ok` means the program allowed the request.
    pub fn evaluate(
        &self,
        id: ProgramId,
        bytecode: &[u8],
        request: &Request<'_>,
        config: &[u8],
        oracle: &[OracleEntry],
        fuel: u64,
    ) -> Result<EvalOutcome, ProgramError> {
        if request.message.len() > MAX_MESSAGE_SIZE {
            return Err(ProgramError::MessageTooLarge {
                len: request.message.len(),
            });
        }
        let compiled = self.compiled(id, bytecode)?;
        let mut run = self.instantiate(&compiled, fuel)?;
        let func = run
            .instance
            .get_typed_func::<EvaluateParams<'_>, EvaluateResults>(
                &mut run.store,
                &compiled.evaluate,
            )
            .map_err(|e| bad_type(EVALUATE, &e))?;
        let params = (
            WitRequest {
                message: request.message,
                aux_data: request.aux_data,
            },
            config,
            oracle,
        );
        let (verdict,) = func
            .call(&mut run.store, params)
            .map_err(|e| run.classify(e, Phase::Call))?;
        let fuel_used = run.fuel_used(fuel);
        match verdict {
            Ok(()) => Ok(EvalOutcome { fuel_used }),
            Err(WitError::Denied(text)) => Err(ProgramError::Denied(truncate_message(text))),
            Err(WitError::InvalidConfig(text)) => {
                Err(ProgramError::InvalidConfig(truncate_message(text)))
            }
            Err(WitError::InvalidAuxData(text)) => {
                Err(ProgramError::InvalidAuxData(truncate_message(text)))
            }
        }
    }

    /// Runs every program of a key on one message with `fuel` units of fuel, stopping at the
    /// first that does not pass. Under [`FuelPolicy::PerProgram`] (the default) each program
    /// gets all of `fuel`; under [`FuelPolicy::Shared`] they draw on it in turn.
    pub fn evaluate_all(
        &self,
        message: &[u8],
        programs: &[ProgramCall<'_>],
        oracle: &[OracleEntry],
        fuel: u64,
    ) -> Result<Vec<EvalOutcome>, ProgramFailure> {
        let mut left = fuel;
        let mut outcomes = Vec::with_capacity(programs.len());
        for (index, program) in programs.iter().enumerate() {
            let request = Request {
                message,
                aux_data: program.aux_data,
            };
            let budget = match self.config.fuel_policy {
                FuelPolicy::PerProgram => fuel,
                FuelPolicy::Shared => left,
            };
            let outcome = self
                .evaluate(
                    program.id,
                    program.bytecode,
                    &request,
                    program.config,
                    oracle,
                    budget,
                )
                .map_err(|error| ProgramFailure {
                    index,
                    program: program.id,
                    error,
                })?;
            left = left.saturating_sub(outcome.fuel_used);
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }

    /// Runs the program's `custom-hash` on `data` with `fuel` units of fuel and checks that it
    /// returned exactly 32 bytes.
    pub fn custom_hash(
        &self,
        id: ProgramId,
        bytecode: &[u8],
        data: &[u8],
        fuel: u64,
    ) -> Result<[u8; 32], ProgramError> {
        let compiled = self.compiled(id, bytecode)?;
        let index = compiled
            .custom_hash
            .ok_or_else(|| ProgramError::MissingExport(CUSTOM_HASH.into()))?;
        let mut run = self.instantiate(&compiled, fuel)?;
        let func = run
            .instance
            .get_typed_func::<HashParams<'_>, HashResults>(&mut run.store, &index)
            .map_err(|e| bad_type(CUSTOM_HASH, &e))?;
        let (digest,) = func
            .call(&mut run.store, (data,))
            .map_err(|e| run.classify(e, Phase::Call))?;
        <[u8; 32]>::try_from(digest.as_slice())
            .map_err(|_| ProgramError::BadCustomHashOutput { len: digest.len() })
    }

    fn info(compiled: &Compiled) -> ProgramInfo {
        ProgramInfo {
            exports_custom_hash: compiled.custom_hash.is_some(),
        }
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, LruCache<Compiled>> {
        // The cache holds no invariant a panicking thread could break half-way.
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The cached program `id`, compiling and caching `bytecode` on a miss.
    fn compiled(&self, id: ProgramId, bytecode: &[u8]) -> Result<Arc<Compiled>, ProgramError> {
        if let Some(hit) = self.lock_cache().get(&id) {
            return Ok(hit);
        }
        // Compile outside the lock so one slow compilation does not stall other evaluations.
        let compiled = Arc::new(self.compile(bytecode)?);
        Ok(self.lock_cache().insert(id, compiled))
    }

    fn compile(&self, bytecode: &[u8]) -> Result<Compiled, ProgramError> {
        check_header(bytecode)?;
        let component = Component::new(&self.engine, bytecode)
            .map_err(|e| ProgramError::InvalidBytecode(format!("{e:#}")))?;
        let component_type = component.component_type();
        if let Some((name, _)) = component_type.imports(&self.engine).next() {
            return Err(ProgramError::ForbiddenImport(name.to_string()));
        }
        let evaluate = component
            .get_export_index(None, EVALUATE)
            .ok_or_else(|| ProgramError::MissingExport(EVALUATE.into()))?;
        let custom_hash = component.get_export_index(None, CUSTOM_HASH);
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| ProgramError::InvalidBytecode(format!("{e:#}")))?;
        let compiled = Compiled {
            pre,
            evaluate,
            custom_hash,
        };
        // A trial instantiation checks what only instantiation shows: export types, the
        // initial memory size against the cap, start functions that trap.
        let mut run = self.instantiate(&compiled, VALIDATION_FUEL)?;
        run.instance
            .get_typed_func::<EvaluateParams<'_>, EvaluateResults>(
                &mut run.store,
                &compiled.evaluate,
            )
            .map_err(|e| bad_type(EVALUATE, &e))?;
        if let Some(index) = &compiled.custom_hash {
            run.instance
                .get_typed_func::<HashParams<'_>, HashResults>(&mut run.store, index)
                .map_err(|e| bad_type(CUSTOM_HASH, &e))?;
        }
        Ok(compiled)
    }

    fn instantiate(&self, compiled: &Compiled, fuel: u64) -> Result<Run, ProgramError> {
        let state = StoreState {
            limiter: Limiter {
                memory_limit_bytes: self.config.memory_limit_bytes,
                memory_limit_hit: false,
            },
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limiter);
        store
            .set_fuel(fuel)
            .map_err(|e| ProgramError::Instantiation(format!("{e:#}")))?;
        match compiled.pre.instantiate(&mut store) {
            Ok(instance) => Ok(Run { store, instance }),
            Err(e) => {
                let limit_hit = store.data().limiter.memory_limit_hit;
                Err(classify(
                    e,
                    limit_hit,
                    self.config.memory_limit_bytes,
                    Phase::Instantiate,
                ))
            }
        }
    }
}

/// One store and instance, alive for one call.
struct Run {
    store: Store<StoreState>,
    instance: wasmtime::component::Instance,
}

impl Run {
    fn classify(&self, error: wasmtime::Error, phase: Phase) -> ProgramError {
        let limiter = &self.store.data().limiter;
        classify(
            error,
            limiter.memory_limit_hit,
            limiter.memory_limit_bytes,
            phase,
        )
    }

    fn fuel_used(&self, budget: u64) -> u64 {
        // Fuel is always enabled on this engine, so reading it cannot fail.
        budget.saturating_sub(self.store.get_fuel().unwrap_or(0))
    }
}

#[derive(Clone, Copy)]
enum Phase {
    Instantiate,
    Call,
}

/// Names a failure: fuel first (it is what ends a runaway program), then the memory cap (the
/// abort that follows a refused allocation is a trap, but the cause is the cap).
fn classify(
    error: wasmtime::Error,
    memory_limit_hit: bool,
    memory_limit_bytes: usize,
    phase: Phase,
) -> ProgramError {
    let trap = error.downcast_ref::<Trap>().copied();
    if trap == Some(Trap::OutOfFuel) {
        return ProgramError::OutOfFuel;
    }
    if memory_limit_hit {
        return ProgramError::MemoryLimit {
            limit_bytes: memory_limit_bytes,
        };
    }
    match (trap, phase) {
        (Some(trap), _) => ProgramError::Trap(describe_trap(trap, &error)),
        (None, Phase::Instantiate) => ProgramError::Instantiation(format!("{error:#}")),
        // Lifting or lowering failed: the guest returned bad pointers, bad UTF-8 and the like.
        (None, Phase::Call) => ProgramError::Trap(format!("{error:#}")),
    }
}

/// Most stack frames named in a trap message.
const TRAP_FRAMES: usize = 4;

/// The trap and, when the program kept its name section, the innermost functions it happened
/// in. For a Rust panic the standard library's panic machinery is skipped, so the message
/// names the program's own function that panicked.
fn describe_trap(trap: Trap, error: &wasmtime::Error) -> String {
    let frames: Vec<String> = error
        .downcast_ref::<WasmBacktrace>()
        .map(|bt| {
            bt.frames()
                .iter()
                .filter_map(|f| f.func_name())
                .map(|name| format!("{:#}", rustc_demangle::demangle(name)))
                .collect()
        })
        .unwrap_or_default();
    let panicked = frames.first().is_some_and(|f| f.ends_with("rust_panic"));
    let is_runtime = |name: &&String| {
        [
            "std::",
            "core::",
            "alloc::",
            "__rustc::",
            "<std::",
            "<core::",
            "<alloc::",
        ]
        .iter()
        .any(|prefix| name.starts_with(prefix))
    };
    let shown: Vec<&str> = frames
        .iter()
        .filter(|name| !(panicked && is_runtime(name)))
        .take(TRAP_FRAMES)
        .map(String::as_str)
        .collect();
    match (panicked, shown.is_empty()) {
        (true, true) => format!("{trap}: a Rust panic"),
        (true, false) => format!("{trap}: a Rust panic in {}", shown.join(" ← ")),
        (false, true) => trap.to_string(),
        (false, false) => format!("{trap} (in {})", shown.join(" ← ")),
    }
}

fn bad_type(name: &str, error: &wasmtime::Error) -> ProgramError {
    ProgramError::BadExportType {
        name: name.into(),
        reason: format!("{error:#}"),
    }
}

/// Tells a core module (a common mistake: the build's raw output) apart from other garbage.
fn check_header(bytecode: &[u8]) -> Result<(), ProgramError> {
    const MAGIC: &[u8; 4] = b"\0asm";
    const CORE_VERSION: [u8; 4] = [1, 0, 0, 0];
    match bytecode.get(..8) {
        Some(header) if header.starts_with(MAGIC) && header[4..] == CORE_VERSION => {
            Err(ProgramError::InvalidBytecode(
                "this is a core WebAssembly module, not a component; turn it into one with \
                 programs/tools/componentize (see programs/README.md)"
                    .into(),
            ))
        }
        Some(header) if header.starts_with(MAGIC) => Ok(()),
        _ => Err(ProgramError::InvalidBytecode(
            "not a WebAssembly binary (no \\0asm header)".into(),
        )),
    }
}
