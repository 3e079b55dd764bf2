//! Programs: `store_program` and `remove_program`.

use sigil_crypto::ProgramContents;
use sigil_primitives::{AccountId, ProgramId};

use super::{ProgramValidator, State, TxError};
use crate::types::{Event, ProgramRecord};

impl State {
    /// `store_program`: checks size, schemas and bytecode, then stores the program under its id.
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
        validate_program(contents.bytecode)
            .map_err(|e| TxError::Invalid(format!("invalid program: {e}")))?;
        self.programs.insert(
            id,
            ProgramRecord {
                bytecode: contents.bytecode.to_vec(),
                config_schema: contents.config_schema.to_vec(),
                aux_schema: contents.aux_schema.to_vec(),
                oracle_keys: contents.oracle_keys.to_vec(),
                deployer: sender,
                ref_count: 0,
                version: contents.version,
            },
        );
        Ok(vec![Event::ProgramStored {
            program: id,
            deployer: sender,
        }])
    }

    /// `remove_program`: the deployer removes a program no registration uses.
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
        self.programs.remove(program);
        Ok(vec![Event::ProgramRemoved { program: *program }])
    }
}
