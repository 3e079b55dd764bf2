//! Program instances attached to a registered key.

use serde::{Deserialize, Serialize};

use crate::{MAX_PROGRAMS_PER_KEY, PrimitiveError, ProgramId};

/// One program attached to a key, with the configuration bytes it is evaluated with.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgramInstance {
    /// The stored program to run.
    pub program: ProgramId,
    /// Configuration passed to the program on every evaluation (often JSON); hex in JSON.
    #[serde(with = "crate::bytes::hex_vec")]
    pub config: Vec<u8>,
}

/// The programs attached to a key: between 1 and [`MAX_PROGRAMS_PER_KEY`] of them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "Vec<ProgramInstance>", into = "Vec<ProgramInstance>")]
pub struct ProgramList(Vec<ProgramInstance>);

impl ProgramList {
    /// Validates the count.
    pub fn new(programs: Vec<ProgramInstance>) -> Result<Self, PrimitiveError> {
        if programs.is_empty() || programs.len() > MAX_PROGRAMS_PER_KEY {
            return Err(PrimitiveError::InvalidCount {
                what: "program list",
                min: 1,
                max: MAX_PROGRAMS_PER_KEY,
                actual: programs.len(),
            });
        }
        Ok(Self(programs))
    }

    /// The instances, in evaluation order.
    pub fn as_slice(&self) -> &[ProgramInstance] {
        &self.0
    }
}

impl TryFrom<Vec<ProgramInstance>> for ProgramList {
    type Error = PrimitiveError;
    fn try_from(v: Vec<ProgramInstance>) -> Result<Self, Self::Error> {
        Self::new(v)
    }
}

impl From<ProgramList> for Vec<ProgramInstance> {
    fn from(l: ProgramList) -> Self {
        l.0
    }
}
