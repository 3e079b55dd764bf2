//! `sigil program check|hash|deploy`.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, Subcommand};
use sigil_client::rpc::LedgerApiClient as _;
use sigil_client::types::{Call, Event};
use sigil_crypto::ProgramContents;
use sigil_primitives::ProgramId;
use sigil_programs::{HostConfig, INTERFACE_VERSION, ProgramHost};

use crate::common::{AccountOpt, LedgerOpt};
use sigil::progress::Step;

/// Program subcommands.
#[derive(Subcommand)]
pub enum ProgramCommand {
    /// Validate a program as `store_program` would; print its id and whether it has a custom hash.
    ///
    /// A valid program is a WebAssembly component that exports `evaluate` (and maybe
    /// `custom-hash`) with the `sigil:program` types, imports nothing, and instantiates within
    /// the host's limits; with its schemas and oracle keys it fits the default
    /// `max_program_size` (1,000,000 bytes), and its schemas are JSON.
    Check {
        /// The program's WebAssembly component (`programs/dist/<name>.wasm`).
        file: PathBuf,
        #[command(flatten)]
        contents: ContentsArgs,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print a program's id, as the ledger computes it.
    ///
    /// The id hashes the bytecode, both schemas, the oracle keys and the interface version;
    /// the file is not validated.
    Hash {
        /// The program's WebAssembly component.
        file: PathBuf,
        #[command(flatten)]
        contents: ContentsArgs,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Store a program on the ledger (`store_program`) and print its id.
    ///
    /// Storing a program that is already on the ledger is not an error: its id is printed.
    Deploy {
        /// The program's WebAssembly component.
        file: PathBuf,
        #[command(flatten)]
        contents: ContentsArgs,
        #[command(flatten)]
        ledger: LedgerOpt,
        #[command(flatten)]
        account: AccountOpt,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Remove a program you deployed that no key uses (`remove_program`); its deposit comes
    /// back.
    Remove {
        /// The program's id (0x-hex).
        id: sigil_primitives::ProgramId,
        #[command(flatten)]
        ledger: LedgerOpt,
        #[command(flatten)]
        account: AccountOpt,
    },
}

/// The parts of a program besides its bytecode; all are part of its id.
#[derive(Args)]
pub struct ContentsArgs {
    /// JSON schema of the program's configuration.
    #[arg(long, value_name = "FILE")]
    config_schema: Option<PathBuf>,
    /// JSON schema of the program's auxiliary data.
    #[arg(long, value_name = "FILE")]
    aux_schema: Option<PathBuf>,
    /// A ledger oracle key the program reads (repeatable), e.g. `block-number`.
    #[arg(long = "oracle-key", value_name = "KEY")]
    oracle_keys: Vec<String>,
}

/// Runs a program subcommand.
pub fn run(cmd: ProgramCommand) -> anyhow::Result<()> {
    match cmd {
        ProgramCommand::Check {
            file,
            contents,
            json,
        } => {
            let bytecode = read(&file)?;
            let max_size = sigil_client::types::Parameters::default().max_program_size;
            check_contents(&bytecode, &contents, max_size)
                .with_context(|| format!("{} is not a valid program", file.display()))?;
            let host = ProgramHost::new(HostConfig::default())?;
            let info = host.validate(&bytecode).map_err(|e| {
                // One line, whatever the compiler's message looked like.
                anyhow::anyhow!(e.to_string().replace('\n', " "))
                    .context(format!("{} is not a valid program", file.display()))
            })?;
            let id = program_id(&bytecode, &contents)?;
            if json {
                let out = serde_json::json!({
                    "valid": true,
                    "id": id.to_string(),
                    "custom_hash": info.exports_custom_hash,
                    "size": bytecode.len(),
                });
                println!("{out}");
            } else {
                println!("valid program: {}", file.display());
                println!("id:          {id}");
                println!(
                    "custom hash: {}",
                    if info.exports_custom_hash {
                        "yes"
                    } else {
                        "no"
                    }
                );
                println!("size:        {} bytes", bytecode.len());
            }
        }
        ProgramCommand::Hash {
            file,
            contents,
            json,
        } => {
            let bytecode = read(&file)?;
            let id = program_id(&bytecode, &contents)?;
            if json {
                println!("{}", serde_json::json!({ "id": id.to_string() }));
            } else {
                println!("{id}");
            }
        }
        ProgramCommand::Deploy {
            file,
            contents,
            ledger,
            account,
            json,
        } => {
            let account = account.keypair()?;
            crate::block_on(deploy(&file, &contents, &ledger, &account, json))?;
        }
        ProgramCommand::Remove {
            id,
            ledger,
            account,
        } => {
            let account = account.keypair()?;
            crate::block_on(remove(id, &ledger, &account))?;
        }
    }
    Ok(())
}

/// `sigil program remove`.
async fn remove(
    id: sigil_primitives::ProgramId,
    ledger: &LedgerOpt,
    account: &sigil_crypto::AccountKeypair,
) -> anyhow::Result<()> {
    let client = ledger.connect().await?;
    let deposit = client
        .rpc()
        .program(id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("program {id} is not stored"))?
        .deposit;
    client
        .submit(account, Call::RemoveProgram { program: id }, true)
        .await
        .context("remove_program was refused")?;
    println!("removed program {id}; deposit returned: {deposit}");
    Ok(())
}

/// `sigil program deploy`.
async fn deploy(
    file: &Path,
    contents: &ContentsArgs,
    ledger: &LedgerOpt,
    account: &sigil_crypto::AccountKeypair,
    json: bool,
) -> anyhow::Result<()> {
    let bytecode = read(file)?;
    let config_schema = read_optional(contents.config_schema.as_deref())?;
    let aux_schema = read_optional(contents.aux_schema.as_deref())?;
    let id = program_id(&bytecode, contents)?;
    let client = ledger.connect().await?;
    let (block, stored) = if client.rpc().program(id).await?.is_some() {
        eprintln!("program {id} is already stored");
        (None, false)
    } else {
        let step = Step::start(format!(
            "storing {} ({} bytes)",
            file.display(),
            bytecode.len()
        ));
        let result = client
            .submit(
                account,
                Call::StoreProgram {
                    bytecode,
                    config_schema,
                    aux_schema,
                    oracle_keys: contents.oracle_keys.clone(),
                    version: INTERFACE_VERSION,
                },
                true,
            )
            .await
            .with_context(|| format!("cannot store {}", file.display()))?;
        let stored_id = result.events.iter().find_map(|e| match e {
            Event::ProgramStored { program, .. } => Some(*program),
            _ => None,
        });
        anyhow::ensure!(
            stored_id == Some(id),
            "the ledger stored {stored_id:?}, not the expected program {id}"
        );
        step.finish(&format!(
            "included in block #{}",
            result.included.unwrap_or_default()
        ));
        (result.included, true)
    };
    if json {
        let out = serde_json::json!({ "id": id.to_string(), "stored": stored, "block": block });
        println!("{out}");
    } else {
        println!("program id: {id}");
    }
    Ok(())
}

fn read_optional(path: Option<&Path>) -> anyhow::Result<Vec<u8>> {
    path.map_or_else(|| Ok(Vec::new()), read)
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// The id under the current interface version.
/// What the ledger checks before compiling (size against `max_size`, JSON schemas): the
/// same function, so a program that passes here is not refused there for these.
fn check_contents(bytecode: &[u8], contents: &ContentsArgs, max_size: u32) -> anyhow::Result<()> {
    let config_schema = read_optional(contents.config_schema.as_deref())?;
    let aux_schema = read_optional(contents.aux_schema.as_deref())?;
    let contents = ProgramContents {
        bytecode,
        config_schema: &config_schema,
        aux_schema: &aux_schema,
        oracle_keys: &contents.oracle_keys,
        version: INTERFACE_VERSION,
    };
    sigil_client::programs::check_contents(&contents, max_size).map_err(anyhow::Error::msg)
}

fn program_id(bytecode: &[u8], contents: &ContentsArgs) -> anyhow::Result<ProgramId> {
    let config_schema = match &contents.config_schema {
        Some(path) => read(path)?,
        None => Vec::new(),
    };
    let aux_schema = match &contents.aux_schema {
        Some(path) => read(path)?,
        None => Vec::new(),
    };
    Ok(ProgramContents {
        bytecode,
        config_schema: &config_schema,
        aux_schema: &aux_schema,
        oracle_keys: &contents.oracle_keys,
        version: INTERFACE_VERSION,
    }
    .id())
}
