//! The keystore's error type.

use std::path::PathBuf;

/// Everything that can go wrong in the keystore.
///
/// No message ever contains secret material: not the password, not key bytes, not stored values.
#[derive(Debug, thiserror::Error)]
pub enum KeystoreError {
    /// The password or key file does not unlock this keystore (checked at open time, before any
    /// entry is read).
    #[error("wrong password or key file for this keystore")]
    WrongPassword,
    /// The keystore was created with one kind of key source and opened with the other.
    #[error("keystore is protected by a {stored}, but a {given} was supplied")]
    KeySourceMismatch {
        /// What the keystore was created with (`"password"` or `"key file"`).
        stored: &'static str,
        /// What the caller supplied.
        given: &'static str,
    },
    /// No keystore exists at this path.
    #[error("keystore not found: {}", .0.display())]
    NotFound(PathBuf),
    /// Refused to overwrite an existing file.
    #[error("file already exists: {}", .0.display())]
    AlreadyExists(PathBuf),
    /// The keystore is already open, by this process or another one.
    #[error("keystore is already open by another handle or process: {}", .0.display())]
    AlreadyOpen(PathBuf),
    /// The file is not a keystore, its metadata is damaged, or a stored value failed to decrypt
    /// (tampering or corruption).
    #[error("keystore is corrupted: {0}")]
    Corrupted(String),
    /// The storage engine (redb) or the file system failed.
    #[error("keystore storage error: {0}")]
    Storage(String),
    /// The key file could not be read, created or parsed.
    #[error("key file error: {0}")]
    KeyFile(String),
    /// The keystore was written in a format version this build does not understand.
    #[error(
        "unsupported keystore format version {0} (this build supports version {supported})",
        supported = crate::FORMAT_VERSION
    )]
    UnsupportedVersion(u32),
    /// A caller-supplied argument is invalid (Argon2 parameters out of range, empty password).
    #[error("invalid input: {0}")]
    InvalidInput(String),
}

impl From<redb::Error> for KeystoreError {
    fn from(e: redb::Error) -> Self {
        match e {
            redb::Error::Corrupted(msg) => KeystoreError::Corrupted(format!("storage: {msg}")),
            redb::Error::TableTypeMismatch { table, .. } => {
                KeystoreError::Corrupted(format!("table {table} has an unexpected type"))
            }
            redb::Error::TypeDefinitionChanged { .. } => {
                KeystoreError::Corrupted("a table has an unexpected type".into())
            }
            redb::Error::TableIsMultimap(table) => {
                KeystoreError::Corrupted(format!("table {table} has an unexpected type"))
            }
            redb::Error::UpgradeRequired(v) => KeystoreError::Corrupted(format!(
                "storage file format {v} is not supported by this build"
            )),
            other => KeystoreError::Storage(other.to_string()),
        }
    }
}

macro_rules! via_redb_error {
    ($($t:ty),* $(,)?) => {$(
        impl From<$t> for KeystoreError {
            fn from(e: $t) -> Self {
                redb::Error::from(e).into()
            }
        }
    )*};
}

via_redb_error!(
    redb::StorageError,
    redb::TableError,
    redb::TransactionError,
    redb::CommitError,
);
