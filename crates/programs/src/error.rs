//! What can go wrong when a program is validated or run.

/// Longest program-supplied text kept in an error, in bytes; the rest is cut.
pub const MAX_PROGRAM_MESSAGE_LEN: usize = 1024;

/// Why a program was rejected at validation, or why it did not pass a request.
///
/// Every variant other than [`ProgramError::Denied`], [`ProgramError::InvalidConfig`] and
/// [`ProgramError::InvalidAuxData`] is the program's fault or the host's limits, never a verdict
/// on the request; all of them mean the request is not signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProgramError {
    /// The bytes are not a WebAssembly component this host can compile.
    #[error("invalid program bytecode: {0}")]
    InvalidBytecode(String),
    /// The component imports something; programs get no host functions at all.
    #[error("program imports `{0}`, but programs may import nothing (no WASI, no host functions)")]
    ForbiddenImport(String),
    /// A required export (`evaluate`, or `custom-hash` when asked for a custom hash) is absent.
    #[error("program does not export `{0}`")]
    MissingExport(String),
    /// An export has a different type than the `sigil:program` interface declares.
    #[error("program export `{name}` has the wrong type: {reason}")]
    BadExportType {
        /// The export's name.
        name: String,
        /// How it differs.
        reason: String,
    },
    /// The program used up its fuel budget before finishing.
    #[error("program ran out of fuel")]
    OutOfFuel,
    /// The program tried to grow its memory past the host's cap.
    #[error("program exceeded the memory limit of {limit_bytes} bytes")]
    MemoryLimit {
        /// The cap it hit.
        limit_bytes: usize,
    },
    /// The program trapped (a panic, `unreachable`, an out-of-bounds access, a stack overflow).
    #[error("program trapped: {0}")]
    Trap(String),
    /// The component could not be instantiated within the host's limits.
    #[error("program could not be instantiated: {0}")]
    Instantiation(String),
    /// The program refused the request; the text is the program's own.
    #[error("request denied by program: {0}")]
    Denied(String),
    /// The program could not understand the configuration attached to the key.
    #[error("program rejected its configuration: {0}")]
    InvalidConfig(String),
    /// The program could not understand the auxiliary data of the request.
    #[error("program rejected the auxiliary data: {0}")]
    InvalidAuxData(String),
    /// The message is larger than any request may carry.
    #[error("message of {len} bytes is over the {max} byte limit", max = sigil_primitives::MAX_MESSAGE_SIZE)]
    MessageTooLarge {
        /// Its length.
        len: usize,
    },
    /// `custom-hash` returned something other than 32 bytes.
    #[error("program's custom-hash returned {len} bytes; it must return exactly 32")]
    BadCustomHashOutput {
        /// The length it returned.
        len: usize,
    },
}

impl ProgramError {
    /// The stable API code (`{"error":{"code":...}}`) this failure is answered with.
    pub fn code(&self) -> sigil_primitives::ErrorCode {
        use sigil_primitives::ErrorCode;
        match self {
            Self::InvalidBytecode(_) => ErrorCode::ProgramInvalidBytecode,
            Self::ForbiddenImport(_) => ErrorCode::ProgramForbiddenImport,
            Self::MissingExport(_) => ErrorCode::ProgramMissingExport,
            Self::BadExportType { .. } => ErrorCode::ProgramBadExportType,
            Self::OutOfFuel => ErrorCode::ProgramOutOfFuel,
            Self::MemoryLimit { .. } => ErrorCode::ProgramMemoryLimit,
            Self::Trap(_) => ErrorCode::ProgramTrap,
            Self::Instantiation(_) => ErrorCode::ProgramInstantiation,
            Self::Denied(_) => ErrorCode::ProgramDenied,
            Self::InvalidConfig(_) => ErrorCode::ProgramInvalidConfig,
            Self::InvalidAuxData(_) => ErrorCode::ProgramInvalidAuxData,
            Self::MessageTooLarge { .. } => ErrorCode::MessageTooLarge,
            Self::BadCustomHashOutput { .. } => ErrorCode::ProgramBadCustomHash,
        }
    }
}

/// Cuts program-supplied text to [`MAX_PROGRAM_MESSAGE_LEN`] bytes on a character boundary, so a
/// program cannot make nodes log or return megabytes.
pub(crate) fn truncate_message(mut text: String) -> String {
    if text.len() > MAX_PROGRAM_MESSAGE_LEN {
        let mut end = MAX_PROGRAM_MESSAGE_LEN;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_on_char_boundary() {
        let short = "no".to_string();
        assert_eq!(truncate_message(short.clone()), short);
        let long = "é".repeat(MAX_PROGRAM_MESSAGE_LEN);
        let cut = truncate_message(long);
        assert!(cut.len() <= MAX_PROGRAM_MESSAGE_LEN + '…'.len_utf8());
        assert!(cut.ends_with('…'));
    }
}
