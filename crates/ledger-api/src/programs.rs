//! The checks of a program's contents that need no compiler: what `store_program` refuses
//! before it compiles anything, and what `sigil program check` runs too, so the two agree.

use sigil_crypto::ProgramContents;

use crate::types::Call;

/// The program a `store_program` call stores; `None` for any other call.
pub fn stored_contents(call: &Call) -> Option<ProgramContents<'_>> {
    match call {
        Call::StoreProgram {
            bytecode,
            config_schema,
            aux_schema,
            oracle_keys,
            version,
        } => Some(ProgramContents {
            bytecode,
            config_schema,
            aux_schema,
            oracle_keys,
            version: *version,
        }),
        _ => None,
    }
}

/// The size the ledger counts against `max_program_size`: bytecode, both schemas and the
/// oracle keys together.
pub fn contents_size(contents: &ProgramContents<'_>) -> usize {
    contents.bytecode.len()
        + contents.config_schema.len()
        + contents.aux_schema.len()
        + contents.oracle_keys.iter().map(String::len).sum::<usize>()
}

/// Refuses contents over `max_size` bytes (see [`contents_size`]) or with a schema that is not
/// JSON; the reason is one line.
pub fn check_contents(contents: &ProgramContents<'_>, max_size: u32) -> Result<(), String> {
    let size = contents_size(contents);
    if size > max_size as usize {
        return Err(format!(
            "program of {size} bytes exceeds the {max_size}-byte limit"
        ));
    }
    for (name, schema) in [
        ("config", contents.config_schema),
        ("aux", contents.aux_schema),
    ] {
        if !schema.is_empty() && serde_json::from_slice::<serde_json::Value>(schema).is_err() {
            return Err(format!("the {name} schema is not JSON"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contents<'a>(bytecode: &'a [u8], schema: &'a [u8]) -> ProgramContents<'a> {
        ProgramContents {
            bytecode,
            config_schema: schema,
            aux_schema: b"",
            oracle_keys: &[],
            version: 1,
        }
    }

    #[test]
    fn size_counts_every_part_and_schemas_must_be_json() {
        let big = vec![0u8; 1_000_001];
        let refused = check_contents(&contents(&big, b""), 1_000_000).unwrap_err();
        assert_eq!(
            refused,
            "program of 1000001 bytes exceeds the 1000000-byte limit"
        );
        assert!(check_contents(&contents(&big[..999_998], b"{}"), 1_000_000).is_ok());
        assert!(check_contents(&contents(&big[..999_999], b"{}"), 1_000_000).is_err());
        let bad = check_contents(&contents(b"x", b"{"), 1_000_000).unwrap_err();
        assert_eq!(bad, "the config schema is not JSON");
    }
}
