//! How a program's id is computed from its contents.

use sha2::Digest as _;
use sigil_primitives::ProgramId;

/// Domain separator of program ids.
const DOMAIN: &[u8] = b"sigil/v1/program-id";

/// Everything that makes a program what it is; its id is a hash of all of it.
#[derive(Debug, Clone, Copy)]
pub struct ProgramContents<'a> {
    /// The WebAssembly component.
    pub bytecode: &'a [u8],
    /// JSON schema of the configuration (may be empty).
    pub config_schema: &'a [u8],
    /// JSON schema of the auxiliary data (may be empty).
    pub aux_schema: &'a [u8],
    /// Ledger oracle keys the program reads.
    pub oracle_keys: &'a [String],
    /// The program interface version it was built against.
    pub version: u32,
}

impl ProgramContents<'_> {
    /// `SHA-256(DOMAIN ‖ len‖bytecode ‖ len‖config_schema ‖ len‖aux_schema ‖ count ‖
    /// (len‖key)* ‖ version)`, every length and count a u32 big-endian.
    pub fn id(&self) -> ProgramId {
        let mut hasher = sha2::Sha256::new();
        hasher.update(DOMAIN);
        for part in [self.bytecode, self.config_schema, self.aux_schema] {
            hasher.update(len_u32(part.len()).to_be_bytes());
            hasher.update(part);
        }
        hasher.update(len_u32(self.oracle_keys.len()).to_be_bytes());
        for key in self.oracle_keys {
            hasher.update(len_u32(key.len()).to_be_bytes());
            hasher.update(key.as_bytes());
        }
        hasher.update(self.version.to_be_bytes());
        let digest: [u8; 32] = hasher.finalize().into();
        ProgramId::from_bytes(digest)
            .unwrap_or_else(|_| unreachable!("any 32 bytes are a program id"))
    }
}

fn len_u32(len: usize) -> u32 {
    // Programs are capped far below 4 GiB by the ledger; saturate rather than wrap.
    u32::try_from(len).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contents<'a>(bytecode: &'a [u8], keys: &'a [String]) -> ProgramContents<'a> {
        ProgramContents {
            bytecode,
            config_schema: b"",
            aux_schema: b"",
            oracle_keys: keys,
            version: 1,
        }
    }

    #[test]
    fn every_part_changes_the_id() {
        let keys = vec!["block_number".to_string()];
        let base = contents(b"wasm", &keys).id();
        assert_eq!(base, contents(b"wasm", &keys).id());
        assert_ne!(base, contents(b"wasM", &keys).id());
        assert_ne!(base, contents(b"wasm", &[]).id());
        assert_ne!(
            base,
            ProgramContents {
                config_schema: b"{}",
                ..contents(b"wasm", &keys)
            }
            .id()
        );
        assert_ne!(
            base,
            ProgramContents {
                aux_schema: b"{}",
                ..contents(b"wasm", &keys)
            }
            .id()
        );
        assert_ne!(
            base,
            ProgramContents {
                version: 2,
                ..contents(b"wasm", &keys)
            }
            .id()
        );
    }

    #[test]
    fn lengths_prevent_boundary_shifts() {
        let a = ProgramContents {
            bytecode: b"ab",
            config_schema: b"c",
            ..contents(b"", &[])
        };
        let b = ProgramContents {
            bytecode: b"a",
            config_schema: b"bc",
            ..contents(b"", &[])
        };
        assert_ne!(a.id(), b.id());
    }
}
