//! Programs: `store_program` and `remove_program`. The state keeps each program's entry in
//! memory; its contents go to disk with the block that stores it and are read from there.

use serde::{Deserialize, Serialize};
use sigil_crypto::ProgramContents;
use sigil_primitives::{AccountId, ProgramId};

use super::{ProgramValidator, State, TxError};
use crate::types::{Balance, Event, ProgramRecord};

/// What the state holds of a stored program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgramEntry {
    /// Who stored it (the only account that may remove it).
    pub deployer: AccountId,
    /// How many registrations use it.
    pub ref_count: u64,
    /// The program interface version.
    pub version: u32,
    /// The deposit held while it is stored.
    pub deposit: Balance,
    /// Length of its bytecode.
    pub bytecode_size: u64,
}

/// A program's contents, stored on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgramBody {
    /// The WebAssembly component.
    pub bytecode: Vec<u8>,
    /// JSON schema of its configuration.
    pub config_schema: Vec<u8>,
    /// JSON schema of its auxiliary data.
    pub aux_schema: Vec<u8>,
    /// Oracle keys it reads.
    pub oracle_keys: Vec<String>,
}

impl ProgramEntry {
    /// The full record of the program with this entry and `body`.
    pub fn record(&self, body: ProgramBody) -> ProgramRecord {
        ProgramRecord {
            bytecode: body.bytecode,
            config_schema: body.config_schema,
            aux_schema: body.aux_schema,
            oracle_keys: body.oracle_keys,
            deployer: self.deployer,
            ref_count: self.ref_count,
            version: self.version,
            deposit: self.deposit,
        }
    }
}

impl State {
    /// `store_program`: checks size, schemas and bytecode, takes the deposit, then stores the
    /// program under its id.
    pub(super) fn store_program(
        &mut self,
        sender: AccountId,
        contents: &ProgramContents<'_>,
        validate_program: &ProgramValidator,
    ) -> Result<Vec<Event>, TxError> {
        let max_size = self.globals.parameters.max_program_size;
        crate::programs::check_contents(contents, max_size).map_err(TxError::Invalid)?;
        let id = contents.id();
        if self.programs.contains(&id) {
            return Err(TxError::AlreadyExists(format!("program {id}")));
        }
        let deposit = self.globals.parameters.program_deposit(contents);
        self.require_balance(&sender, deposit)?;
        validate_program(contents.bytecode)
            .map_err(|e| TxError::Invalid(format!("invalid program: {e}")))?;
        self.reserve(sender, deposit);
        self.programs.insert(
            id,
            ProgramEntry {
                deployer: sender,
                ref_count: 0,
                version: contents.version,
                deposit,
                bytecode_size: contents.bytecode.len() as u64,
            },
        );
        let body = ProgramBody {
            bytecode: contents.bytecode.to_vec(),
            config_schema: contents.config_schema.to_vec(),
            aux_schema: contents.aux_schema.to_vec(),
            oracle_keys: contents.oracle_keys.to_vec(),
        };
        self.unwritten_programs.insert(id, Some(body));
        Ok(vec![Event::ProgramStored {
            program: id,
            deployer: sender,
        }])
    }

    /// `remove_program`: the deployer removes a program no registration uses and gets its
    /// deposit back.
    pub(super) fn remove_program(
        &mut self,
        sender: AccountId,
        program: &ProgramId,
    ) -> Result<Vec<Event>, TxError> {
        let record = self
            .programs
            .get(program)
            .ok_or_else(|| TxError::NotFound(format!("program {program}")))?;
        if record.deployer != sender {
            return Err(TxError::Unauthorised(
                "only the deployer may remove a program".into(),
            ));
        }
        if record.ref_count > 0 {
            return Err(TxError::WrongState(format!(
                "program is in use by {} registrations",
                record.ref_count
            )));
        }
        let deposit = record.deposit;
        self.programs.remove(program);
        self.unwritten_programs.insert(*program, None);
        self.release(sender, deposit);
        Ok(vec![Event::ProgramRemoved { program: *program }])
    }
}
