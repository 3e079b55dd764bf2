//! Sigil's encrypted on-disk store for node secrets and key shares.
//!
//! # Format
//!
//! A keystore is one [redb](https://docs.rs/redb) file with two tables:
//!
//! * `meta` (`&str -> &[u8]`, plaintext): `format` = `b"sigil-keystore"`, `version` (u32 LE,
//!   currently [`FORMAT_VERSION`]), `key_source` (1 = password, 2 = key file), `salt` (32 random
//!   bytes), `kdf_params` (Argon2id m KiB, t, p as three u32 LE) and `verifier` (32 bytes).
//! * `entries` (`[u8; 32] -> &[u8]`): the key is `HMAC-SHA256(name_key, name)`; the value is
//!   `nonce (24) || XChaCha20-Poly1305(value_key, nonce, aad, len(name) u32 LE || name || value)`
//!   with a fresh random nonce per write and `aad = "sigil-keystore/entry/v1" || name hash`.
//!
//! The 32-byte master key is `Argon2id(password, salt, params)` or the raw key-file bytes.
//! `value_key`, `name_key` and `verify_key` are derived from it by HKDF-SHA256 (salt = the stored
//! salt, distinct `info` labels). `verifier = HMAC-SHA256(verify_key, all other metadata)`, so a
//! wrong password or key file is reported as [`KeystoreError::WrongPassword`] at open, before any
//! entry is touched, and edited metadata fails the same check.
//!
//! # Threat model
//!
//! The attacker can read, copy and modify the file (a stolen disk or backup) but does not know the
//! password or key file and cannot read this process's memory. Values and entry names are
//! confidential (names such as `share/<verifying key>` would reveal which keys a node holds; only
//! an opaque hash of each name is visible, plus the number of entries and their approximate sizes).
//! Any modification of a value, or swapping values between names, is detected as
//! [`KeystoreError::Corrupted`] on read. Not covered: rolling the whole file back to an older copy,
//! deleting entries (a missing entry reads as absent), a weak password, or a compromised host.
//! Keys held in memory are wiped on drop, values are returned as [`SecretBytes`], and no `Debug`
//! output or error message contains secret material.
//!
//! # Robustness
//!
//! Every [`Keystore::put`], [`Keystore::put_many`] and [`Keystore::delete`] is one durable redb
//! write transaction. The file is opened with redb's integrity check enabled, so a damaged file is
//! reported as an error rather than trusted (without it, redb may panic on corrupted pages).

mod error;

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use sha2::Sha256;
use sigil_crypto::secret::random_array;
use zeroize::Zeroizing;

pub use error::KeystoreError;
pub use sigil_crypto::SecretBytes;

/// The on-disk format version written by this build.
pub const FORMAT_VERSION: u32 = 1;

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const ENTRIES: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("entries");

const META_FORMAT: &str = "format";
const META_VERSION: &str = "version";
const META_KEY_SOURCE: &str = "key_source";
const META_SALT: &str = "salt";
const META_KDF_PARAMS: &str = "kdf_params";
const META_VERIFIER: &str = "verifier";
const FORMAT_TAG: &[u8] = b"sigil-keystore";

const LABEL_VALUE_KEY: &[u8] = b"sigil-keystore/v1/value-key";
const LABEL_NAME_KEY: &[u8] = b"sigil-keystore/v1/name-key";
const LABEL_VERIFY_KEY: &[u8] = b"sigil-keystore/v1/verify-key";
const LABEL_VERIFIER: &[u8] = b"sigil-keystore/verifier/v1";
const LABEL_ENTRY_AAD: &[u8] = b"sigil-keystore/entry/v1";

/// The first bytes of every redb file.
const REDB_MAGIC: [u8; 9] = [b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];
const SALT_LEN: usize = 32;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const KEY_FILE_HEX_LEN: usize = 64;
/// redb page cache bound; the store is small.
const CACHE_BYTES: usize = 16 * 1024 * 1024;

/// Where the keystore's master key comes from.
///
/// A password is passed as [`SecretBytes`] (any bytes, typically UTF-8; must not be empty) so it
/// is wiped when dropped and never shown by `Debug`.
#[derive(Clone, Debug)]
pub enum KeySource {
    /// A password, stretched with Argon2id and the keystore's stored salt.
    Password(SecretBytes),
    /// A key file holding the 32-byte master key, as 32 raw bytes or 64 hex characters with an
    /// optional trailing newline (see [`generate_key_file`]).
    KeyFile(PathBuf),
}

impl KeySource {
    fn kind(&self) -> SourceKind {
        match self {
            KeySource::Password(_) => SourceKind::Password,
            KeySource::KeyFile(_) => SourceKind::KeyFile,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SourceKind {
    Password = 1,
    KeyFile = 2,
}

impl SourceKind {
    fn from_byte(b: u8) -> Option<Self> {
        match b {
            1 => Some(Self::Password),
            2 => Some(Self::KeyFile),
            _ => None,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            SourceKind::Password => "password",
            SourceKind::KeyFile => "key file",
        }
    }
}

/// Argon2id cost parameters, used only for password-protected keystores.
///
/// They are stored in the keystore at creation, so [`Keystore::open`] always uses the parameters
/// the keystore was created with. [`Default`] is the production setting (m = 64 MiB, t = 3,
/// p = 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory cost in KiB (at least 8 × `p`, at most 4 GiB).
    pub m_kib: u32,
    /// Number of passes (1..=64).
    pub t: u32,
    /// Degree of parallelism (1..=16).
    pub p: u32,
}

impl KdfParams {
    /// The production parameters: m = 64 MiB, t = 3, p = 1.
    pub const PRODUCTION: Self = Self {
        m_kib: 64 * 1024,
        t: 3,
        p: 1,
    };

    /// Cheap parameters (m = 1 MiB, t = 1, p = 1) for tests. Never use them for a real keystore.
    pub const INSECURE_FAST: Self = Self {
        m_kib: 1024,
        t: 1,
        p: 1,
    };

    const MAX_M_KIB: u32 = 4 * 1024 * 1024;
    const MAX_T: u32 = 64;
    const MAX_P: u32 = 16;

    /// Checks the bounds; the message names the offending parameter.
    fn to_argon2(self) -> Result<argon2::Params, String> {
        if !(1..=Self::MAX_P).contains(&self.p) {
            return Err(format!(
                "argon2 p must be 1..={}, got {}",
                Self::MAX_P,
                self.p
            ));
        }
        if !(1..=Self::MAX_T).contains(&self.t) {
            return Err(format!(
                "argon2 t must be 1..={}, got {}",
                Self::MAX_T,
                self.t
            ));
        }
        let min_m = 8 * self.p;
        if !(min_m..=Self::MAX_M_KIB).contains(&self.m_kib) {
            return Err(format!(
                "argon2 m must be {min_m}..={} KiB, got {}",
                Self::MAX_M_KIB,
                self.m_kib
            ));
        }
        argon2::Params::new(self.m_kib, self.t, self.p, Some(32))
            .map_err(|e| format!("invalid argon2 parameters: {e}"))
    }

    fn to_bytes(self) -> [u8; 12] {
        let mut out = [0u8; 12];
        out[0..4].copy_from_slice(&self.m_kib.to_le_bytes());
        out[4..8].copy_from_slice(&self.t.to_le_bytes());
        out[8..12].copy_from_slice(&self.p.to_le_bytes());
        out
    }

    fn from_bytes(b: &[u8]) -> Option<Self> {
        let word = |i: usize| Some(u32::from_le_bytes(b.get(i..i + 4)?.try_into().ok()?));
        if b.len() != 12 {
            return None;
        }
        Some(Self {
            m_kib: word(0)?,
            t: word(4)?,
            p: word(8)?,
        })
    }
}

impl Default for KdfParams {
    fn default() -> Self {
        Self::PRODUCTION
    }
}

/// The plaintext metadata of a keystore (everything in the `meta` table except the verifier).
struct Header {
    kind: SourceKind,
    salt: [u8; SALT_LEN],
    params: KdfParams,
}

impl Header {
    /// The bytes the verifier authenticates.
    fn transcript(&self) -> Vec<u8> {
        let mut t = Vec::with_capacity(64 + SALT_LEN);
        t.extend_from_slice(LABEL_VERIFIER);
        t.extend_from_slice(FORMAT_TAG);
        t.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        t.push(self.kind as u8);
        t.extend_from_slice(&self.salt);
        t.extend_from_slice(&self.params.to_bytes());
        t
    }
}

/// The sub-keys derived from the master key.
struct SubKeys {
    value: Zeroizing<[u8; 32]>,
    name: Zeroizing<[u8; 32]>,
    verify: Zeroizing<[u8; 32]>,
}

impl SubKeys {
    fn derive(master: &[u8; 32], salt: &[u8]) -> Self {
        let hk = Hkdf::<Sha256>::new(Some(salt), master);
        let expand = |label: &[u8]| {
            let mut k = Zeroizing::new([0u8; 32]);
            hk.expand(label, &mut k[..])
                .expect("32 bytes is a valid HKDF-SHA256 output length");
            k
        };
        Self {
            value: expand(LABEL_VALUE_KEY),
            name: expand(LABEL_NAME_KEY),
            verify: expand(LABEL_VERIFY_KEY),
        }
    }

    fn verifier(&self, header: &Header) -> [u8; 32] {
        hmac(&self.verify, &header.transcript())
    }
}

fn hmac(key: &[u8; 32], data: &[u8]) -> [u8; 32] {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Computes the 32-byte master key for `source`.
fn master_key(source: &KeySource, header: &Header) -> Result<Zeroizing<[u8; 32]>, KeystoreError> {
    match source {
        KeySource::Password(password) => {
            if password.is_empty() {
                return Err(KeystoreError::InvalidInput(
                    "password must not be empty".into(),
                ));
            }
            let params = header
                .params
                .to_argon2()
                .map_err(KeystoreError::InvalidInput)?;
            let argon =
                argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
            let mut out = Zeroizing::new([0u8; 32]);
            argon
                .hash_password_into(password.expose(), &header.salt, &mut out[..])
                .map_err(|e| KeystoreError::InvalidInput(format!("argon2 failed: {e}")))?;
            Ok(out)
        }
        KeySource::KeyFile(path) => read_key_file(path),
    }
}

/// Refuses a secret file (`file`, opened from `path`) that other users may read or write: on
/// Unix its mode must grant nothing to group or others, as `ssh` demands of private keys.
pub fn check_private(file: &File, path: &Path) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = file
            .metadata()
            .map_err(|e| format!("cannot read the mode of {}: {}", path.display(), e.kind()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(format!(
                "{} is open to other users (mode {:o}): run `chmod 600 {}`",
                path.display(),
                mode & 0o777,
                path.display()
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = (file, path);
    Ok(())
}

/// Reads a key file: 32 raw bytes, or 64 hex characters optionally followed by `\n` or `\r\n`.
fn read_key_file(path: &Path) -> Result<Zeroizing<[u8; 32]>, KeystoreError> {
    const MAX: usize = KEY_FILE_HEX_LEN + 2;
    let file = File::open(path).map_err(|e| {
        KeystoreError::KeyFile(format!("cannot open {}: {}", path.display(), e.kind()))
    })?;
    check_private(&file, path).map_err(KeystoreError::KeyFile)?;
    let mut buf = Zeroizing::new(Vec::with_capacity(MAX + 1));
    file.take(MAX as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| {
            KeystoreError::KeyFile(format!("cannot read {}: {}", path.display(), e.kind()))
        })?;
    let bad = || {
        KeystoreError::KeyFile(format!(
            "{} must hold 32 raw bytes or 64 hex characters",
            path.display()
        ))
    };
    let mut key = Zeroizing::new([0u8; 32]);
    if buf.len() == 32 {
        key.copy_from_slice(&buf);
        return Ok(key);
    }
    let mut text: &[u8] = &buf;
    if let Some(rest) = text.strip_suffix(b"\n") {
        text = rest.strip_suffix(b"\r").unwrap_or(rest);
    }
    if text.len() != KEY_FILE_HEX_LEN {
        return Err(bad());
    }
    hex::decode_to_slice(text, &mut key[..]).map_err(|_| bad())?;
    Ok(key)
}

/// Creates a new key file at `path` holding 32 random bytes as 64 hex characters and a newline.
///
/// On Unix the file is created with mode 0600. Refuses to overwrite an existing file
/// ([`KeystoreError::AlreadyExists`]).
pub fn generate_key_file(path: &Path) -> Result<(), KeystoreError> {
    let key = Zeroizing::new(random_array::<32>());
    let mut text = Zeroizing::new([0u8; KEY_FILE_HEX_LEN + 1]);
    hex::encode_to_slice(&key[..], &mut text[..KEY_FILE_HEX_LEN])
        .expect("64 hex characters encode 32 bytes");
    text[KEY_FILE_HEX_LEN] = b'\n';

    write_secret_file(path, &text[..])
}

/// Creates `path` holding `contents`, readable by its owner only (mode 0600 on Unix), and
/// syncs it. Refuses to overwrite an existing file ([`KeystoreError::AlreadyExists`]); a file
/// that could not be written completely is removed.
pub fn write_secret_file(path: &Path, contents: &[u8]) -> Result<(), KeystoreError> {
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut file = opts.open(path).map_err(|e| match e.kind() {
        ErrorKind::AlreadyExists => KeystoreError::AlreadyExists(path.to_path_buf()),
        kind => KeystoreError::KeyFile(format!("cannot create {}: {kind}", path.display())),
    })?;
    let written = file.write_all(contents).and_then(|()| file.sync_all());
    if let Err(e) = written {
        drop(file);
        let _ = std::fs::remove_file(path);
        return Err(KeystoreError::KeyFile(format!(
            "cannot write {}: {}",
            path.display(),
            e.kind()
        )));
    }
    Ok(())
}

fn builder() -> redb::Builder {
    let mut b = redb::Builder::new();
    b.set_cache_size(CACHE_BYTES)
        .set_check_integrity_on_open(true);
    b
}

fn map_db_error(path: &Path, e: redb::DatabaseError) -> KeystoreError {
    match e {
        redb::DatabaseError::DatabaseAlreadyOpen => KeystoreError::AlreadyOpen(path.to_path_buf()),
        other => redb::Error::from(other).into(),
    }
}

/// An open keystore. Cheap operations take `&self`; the type is `Send + Sync`, and concurrent
/// writers are serialized by redb.
///
/// The derived keys are wiped when the keystore is dropped; `Debug` shows only the path and the
/// key-source kind.
pub struct Keystore {
    db: Database,
    path: PathBuf,
    kind: SourceKind,
    value_key: Zeroizing<[u8; 32]>,
    name_key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for Keystore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keystore")
            .field("path", &self.path)
            .field("key_source", &self.kind.describe())
            .finish_non_exhaustive()
    }
}

impl Keystore {
    /// Creates a new keystore at `path`, protected by `source`.
    ///
    /// `params` are the Argon2id costs for a password (ignored for a key file, but stored). Fails
    /// with [`KeystoreError::AlreadyExists`] if anything exists at `path`. On Unix the file is
    /// created with mode 0600.
    pub fn create(
        path: &Path,
        source: &KeySource,
        params: KdfParams,
    ) -> Result<Self, KeystoreError> {
        params.to_argon2().map_err(KeystoreError::InvalidInput)?;
        let header = Header {
            kind: source.kind(),
            salt: random_array::<SALT_LEN>(),
            params,
        };
        // Derive the keys (and validate the key source) before touching the file system.
        let keys = SubKeys::derive(&*master_key(source, &header)?, &header.salt);
        let verifier = keys.verifier(&header);

        if std::fs::symlink_metadata(path).is_ok() {
            return Err(KeystoreError::AlreadyExists(path.to_path_buf()));
        }
        // Built aside and published whole: a crash at any moment leaves either no keystore or a
        // complete one, never a file that every later start refuses.
        let aside = aside_path(path);
        let mut opts = OpenOptions::new();
        opts.read(true).write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        drop(opts.open(&aside).map_err(|e| {
            KeystoreError::Storage(format!("cannot create {}: {}", aside.display(), e.kind()))
        })?);
        let init = || -> Result<(), KeystoreError> {
            let db = builder()
                .create(&aside)
                .map_err(|e| map_db_error(&aside, e))?;
            let txn = db.begin_write()?;
            {
                let mut meta = txn.open_table(META)?;
                meta.insert(META_FORMAT, FORMAT_TAG)?;
                meta.insert(META_VERSION, &FORMAT_VERSION.to_le_bytes()[..])?;
                meta.insert(META_KEY_SOURCE, &[header.kind as u8][..])?;
                meta.insert(META_SALT, &header.salt[..])?;
                meta.insert(META_KDF_PARAMS, &header.params.to_bytes()[..])?;
                meta.insert(META_VERIFIER, &verifier[..])?;
                txn.open_table(ENTRIES)?;
            }
            txn.commit()?;
            drop(db);
            File::open(&aside)
                .and_then(|file| file.sync_all())
                .map_err(|e| {
                    KeystoreError::Storage(format!("cannot sync {}: {e}", aside.display()))
                })
        };
        let published = init().and_then(|()| publish(&aside, path));
        // The aside copy goes whether or not it was published (a hard link remains at `path`).
        let _ = std::fs::remove_file(&aside);
        published?;
        let db = builder().open(path).map_err(|e| map_db_error(path, e))?;
        Ok(Self {
            db,
            path: path.to_path_buf(),
            kind: header.kind,
            value_key: keys.value,
            name_key: keys.name,
        })
    }

    /// Opens an existing keystore.
    ///
    /// Fails with [`KeystoreError::NotFound`] if there is no file,
    /// [`KeystoreError::WrongPassword`] if `source` does not unlock it,
    /// [`KeystoreError::KeySourceMismatch`] if it was created with the other kind of source, and
    /// [`KeystoreError::Corrupted`] or [`KeystoreError::UnsupportedVersion`] if the file is not a
    /// keystore this build can read.
    pub fn open(path: &Path, source: &KeySource) -> Result<Self, KeystoreError> {
        check_file_header(path)?;
        let db = builder().open(path).map_err(|e| match e {
            redb::DatabaseError::Storage(redb::StorageError::Io(io))
                if io.kind() == ErrorKind::NotFound =>
            {
                KeystoreError::NotFound(path.to_path_buf())
            }
            other => map_db_error(path, other),
        })?;
        let (header, stored_verifier) = read_header(&db)?;
        if header.kind != source.kind() {
            return Err(KeystoreError::KeySourceMismatch {
                stored: header.kind.describe(),
                given: source.kind().describe(),
            });
        }
        let keys = SubKeys::derive(&*master_key(source, &header)?, &header.salt);
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&keys.verify[..])
            .expect("HMAC accepts keys of any length");
        mac.update(&header.transcript());
        mac.verify_slice(&stored_verifier)
            .map_err(|_| KeystoreError::WrongPassword)?;
        Ok(Self {
            db,
            path: path.to_path_buf(),
            kind: header.kind,
            value_key: keys.value,
            name_key: keys.name,
        })
    }

    /// Opens the keystore at `path`, or creates it with `params` if nothing exists there.
    pub fn open_or_create(
        path: &Path,
        source: &KeySource,
        params: KdfParams,
    ) -> Result<Self, KeystoreError> {
        match std::fs::symlink_metadata(path) {
            Ok(_) => Self::open(path, source),
            Err(e) if e.kind() == ErrorKind::NotFound => match Self::create(path, source, params) {
                // Lost a race with another creator: open what it made.
                Err(KeystoreError::AlreadyExists(_)) => Self::open(path, source),
                other => other,
            },
            Err(e) => Err(KeystoreError::Storage(format!(
                "cannot access {}: {}",
                path.display(),
                e.kind()
            ))),
        }
    }

    /// The path of the keystore file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stores `value` under `name`, replacing any previous value, in one durable transaction.
    pub fn put(&self, name: &str, value: &[u8]) -> Result<(), KeystoreError> {
        self.put_many(&[(name, value)])
    }

    /// Stores several entries in one durable transaction: either all of them are written or none.
    /// If a name appears more than once, the last value wins.
    pub fn put_many(&self, entries: &[(&str, &[u8])]) -> Result<(), KeystoreError> {
        let sealed = entries
            .iter()
            .map(|(name, value)| {
                let hash = self.name_hash(name);
                Ok((hash, self.seal(&hash, name, value)?))
            })
            .collect::<Result<Vec<_>, KeystoreError>>()?;
        let txn = self.db.begin_write()?;
        {
            let mut table = txn.open_table(ENTRIES)?;
            for (hash, blob) in &sealed {
                table.insert(hash, blob.as_slice())?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// Returns the value stored under `name`, or `None`.
    ///
    /// Fails with [`KeystoreError::Corrupted`] if the stored value does not decrypt (it was
    /// modified, or moved from another name).
    pub fn get(&self, name: &str) -> Result<Option<SecretBytes>, KeystoreError> {
        let hash = self.name_hash(name);
        let txn = self.db.begin_read()?;
        let table = txn.open_table(ENTRIES)?;
        let Some(blob) = table.get(&hash)? else {
            return Ok(None);
        };
        let (stored_name, value) = self.unseal(&hash, blob.value())?;
        if stored_name != name {
            return Err(KeystoreError::Corrupted(
                "entry holds a different name than the one requested".into(),
            ));
        }
        Ok(Some(value))
    }

    /// Removes the entry under `name` in one durable transaction. Returns whether it existed.
    pub fn delete(&self, name: &str) -> Result<bool, KeystoreError> {
        let hash = self.name_hash(name);
        let txn = self.db.begin_write()?;
        let existed = {
            let mut table = txn.open_table(ENTRIES)?;
            table.remove(&hash)?.is_some()
        };
        txn.commit()?;
        Ok(existed)
    }

    /// Whether an entry exists under `name` (without decrypting it).
    pub fn contains(&self, name: &str) -> Result<bool, KeystoreError> {
        let hash = self.name_hash(name);
        let txn = self.db.begin_read()?;
        let table = txn.open_table(ENTRIES)?;
        Ok(table.get(&hash)?.is_some())
    }

    /// The names of all entries, sorted. Decrypts every entry, so it fails with
    /// [`KeystoreError::Corrupted`] if any entry was tampered with.
    pub fn names(&self) -> Result<Vec<String>, KeystoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(ENTRIES)?;
        let mut names = Vec::new();
        for row in table.iter()? {
            let (hash, blob) = row?;
            let (name, _value) = self.unseal(&hash.value(), blob.value())?;
            names.push(name);
        }
        names.sort();
        Ok(names)
    }

    /// Number of entries (without decrypting them).
    pub fn len(&self) -> Result<usize, KeystoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(ENTRIES)?;
        let n = table.len()?;
        usize::try_from(n).map_err(|_| KeystoreError::Corrupted("entry count overflows".into()))
    }

    /// Whether the keystore holds no entries.
    pub fn is_empty(&self) -> Result<bool, KeystoreError> {
        Ok(self.len()? == 0)
    }

    fn name_hash(&self, name: &str) -> [u8; 32] {
        hmac(&self.name_key, name.as_bytes())
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new_from_slice(&self.value_key[..])
            .expect("XChaCha20-Poly1305 takes a 32-byte key")
    }

    fn seal(&self, hash: &[u8; 32], name: &str, value: &[u8]) -> Result<Vec<u8>, KeystoreError> {
        let name_len = u32::try_from(name.len())
            .map_err(|_| KeystoreError::InvalidInput("entry name is too long".into()))?;
        let mut plaintext = Zeroizing::new(Vec::with_capacity(4 + name.len() + value.len()));
        plaintext.extend_from_slice(&name_len.to_le_bytes());
        plaintext.extend_from_slice(name.as_bytes());
        plaintext.extend_from_slice(value);
        let aad = entry_aad(hash);
        let nonce = random_array::<NONCE_LEN>();
        let ciphertext = self
            .cipher()
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: &plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| KeystoreError::InvalidInput("entry is too large to encrypt".into()))?;
        let mut out = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        Ok(out)
    }

    fn unseal(&self, hash: &[u8; 32], blob: &[u8]) -> Result<(String, SecretBytes), KeystoreError> {
        let corrupted =
            || KeystoreError::Corrupted("an entry failed to decrypt (tampered or damaged)".into());
        if blob.len() < NONCE_LEN + TAG_LEN {
            return Err(corrupted());
        }
        let (nonce, ciphertext) = blob.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| corrupted())?;
        let aad = entry_aad(hash);
        let plaintext = Zeroizing::new(
            self.cipher()
                .decrypt(
                    &XNonce::from(nonce),
                    Payload {
                        msg: ciphertext,
                        aad: &aad,
                    },
                )
                .map_err(|_| corrupted())?,
        );
        // Authenticated from here on, so a malformed layout is a bug or a key compromise; still
        // never panic on it.
        let malformed = || KeystoreError::Corrupted("an entry has a malformed layout".into());
        let len_bytes: [u8; 4] = plaintext
            .get(..4)
            .ok_or_else(malformed)?
            .try_into()
            .map_err(|_| malformed())?;
        let name_len = usize::try_from(u32::from_le_bytes(len_bytes)).map_err(|_| malformed())?;
        let name_end = 4usize.checked_add(name_len).ok_or_else(malformed)?;
        let name = plaintext.get(4..name_end).ok_or_else(malformed)?;
        let name = std::str::from_utf8(name)
            .map_err(|_| malformed())?
            .to_owned();
        let value = SecretBytes::new(plaintext[name_end..].to_vec());
        Ok((name, value))
    }
}

fn entry_aad(hash: &[u8; 32]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(LABEL_ENTRY_AAD.len() + 32);
    aad.extend_from_slice(LABEL_ENTRY_AAD);
    aad.extend_from_slice(hash);
    aad
}

/// Checks that `path` exists and starts with the redb magic number, so that files that are not
/// keystores at all are rejected before redb parses them.
fn check_file_header(path: &Path) -> Result<(), KeystoreError> {
    let file = File::open(path).map_err(|e| match e.kind() {
        ErrorKind::NotFound => KeystoreError::NotFound(path.to_path_buf()),
        kind => KeystoreError::Storage(format!("cannot open {}: {kind}", path.display())),
    })?;
    let mut magic = Vec::with_capacity(REDB_MAGIC.len());
    file.take(REDB_MAGIC.len() as u64)
        .read_to_end(&mut magic)
        .map_err(|e| {
            KeystoreError::Storage(format!("cannot read {}: {}", path.display(), e.kind()))
        })?;
    if magic != REDB_MAGIC {
        return Err(KeystoreError::Corrupted(
            "not a keystore file (bad file header)".into(),
        ));
    }
    Ok(())
}

/// Reads and validates the `meta` table. Returns the header and the stored verifier.
fn read_header(db: &Database) -> Result<(Header, [u8; 32]), KeystoreError> {
    let txn = db.begin_read()?;
    let meta = match txn.open_table(META) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => {
            return Err(KeystoreError::Corrupted(
                "not a keystore file (no metadata)".into(),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let field = |key: &str| -> Result<Vec<u8>, KeystoreError> {
        meta.get(key)?
            .map(|v| v.value().to_vec())
            .ok_or_else(|| KeystoreError::Corrupted(format!("metadata field {key} is missing")))
    };
    let bad = |key: &str| KeystoreError::Corrupted(format!("metadata field {key} is malformed"));

    if field(META_FORMAT)? != FORMAT_TAG {
        return Err(KeystoreError::Corrupted(
            "not a keystore file (wrong format tag)".into(),
        ));
    }
    let version = u32::from_le_bytes(
        field(META_VERSION)?
            .as_slice()
            .try_into()
            .map_err(|_| bad(META_VERSION))?,
    );
    if version != FORMAT_VERSION {
        return Err(KeystoreError::UnsupportedVersion(version));
    }
    let kind = match field(META_KEY_SOURCE)?.as_slice() {
        [b] => SourceKind::from_byte(*b).ok_or_else(|| bad(META_KEY_SOURCE))?,
        _ => return Err(bad(META_KEY_SOURCE)),
    };
    let salt: [u8; SALT_LEN] = field(META_SALT)?
        .as_slice()
        .try_into()
        .map_err(|_| bad(META_SALT))?;
    let params =
        KdfParams::from_bytes(&field(META_KDF_PARAMS)?).ok_or_else(|| bad(META_KDF_PARAMS))?;
    params
        .to_argon2()
        .map_err(|e| KeystoreError::Corrupted(format!("stored {e}")))?;
    let verifier: [u8; 32] = field(META_VERIFIER)?
        .as_slice()
        .try_into()
        .map_err(|_| bad(META_VERIFIER))?;
    Ok((Header { kind, salt, params }, verifier))
}

/// Where a new keystore for `path` is built before it is published: a unique name beside it.
fn aside_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "keystore".into());
    let tag: [u8; 8] = random_array();
    path.with_file_name(format!(".{name}.{}.new", hex::encode(tag)))
}

/// Makes the complete file at `aside` appear at `path`, atomically and only if nothing is
/// there: a hard link (a rename would replace an existing keystore), then the directory synced
/// so the name survives a crash.
fn publish(aside: &Path, path: &Path) -> Result<(), KeystoreError> {
    std::fs::hard_link(aside, path).map_err(|e| match e.kind() {
        ErrorKind::AlreadyExists => KeystoreError::AlreadyExists(path.to_path_buf()),
        kind => KeystoreError::Storage(format!("cannot create {}: {kind}", path.display())),
    })?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| KeystoreError::Storage(format!("cannot sync {}: {e}", dir.display())))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        p
    }

    #[test]
    fn key_file_formats() {
        let dir = tempfile::tempdir().unwrap();
        let raw = [7u8; 32];
        let hex_text = hex::encode(raw);
        for (file, bytes) in [
            ("raw", raw.to_vec()),
            ("hex", hex_text.clone().into_bytes()),
            ("hex_nl", format!("{hex_text}\n").into_bytes()),
            ("hex_crlf", format!("{hex_text}\r\n").into_bytes()),
            ("hex_upper", hex_text.to_uppercase().into_bytes()),
        ] {
            let p = write(dir.path(), file, &bytes);
            assert_eq!(*read_key_file(&p).unwrap(), raw, "{file}");
        }
        for (file, bytes) in [
            ("short", vec![1u8; 31]),
            ("long", vec![1u8; 33]),
            ("bad_hex", vec![b'z'; 64]),
            ("two_nl", format!("{hex_text}\n\n").into_bytes()),
            ("huge", vec![b'a'; 10_000]),
        ] {
            let p = write(dir.path(), file, &bytes);
            let err = read_key_file(&p).unwrap_err();
            assert!(matches!(err, KeystoreError::KeyFile(_)), "{file}: {err:?}");
        }
        let err = read_key_file(&dir.path().join("missing")).unwrap_err();
        assert!(matches!(err, KeystoreError::KeyFile(_)));
    }

    #[test]
    fn generated_key_file_is_hex_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("node.key");
        generate_key_file(&p).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(text.len(), 65);
        assert!(text.ends_with('\n'));
        read_key_file(&p).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(matches!(
            generate_key_file(&p),
            Err(KeystoreError::AlreadyExists(_))
        ));
        assert_eq!(std::fs::read_to_string(&p).unwrap(), text);
    }

    #[test]
    fn kdf_params_bounds_and_encoding() {
        assert_eq!(KdfParams::default(), KdfParams::PRODUCTION);
        KdfParams::PRODUCTION.to_argon2().unwrap();
        KdfParams::INSECURE_FAST.to_argon2().unwrap();
        for bad in [
            KdfParams {
                m_kib: 4,
                t: 1,
                p: 1,
            },
            KdfParams {
                m_kib: 1024,
                t: 0,
                p: 1,
            },
            KdfParams {
                m_kib: 1024,
                t: 1,
                p: 0,
            },
            KdfParams {
                m_kib: u32::MAX,
                t: 1,
                p: 1,
            },
            KdfParams {
                m_kib: 1024,
                t: 1000,
                p: 1,
            },
        ] {
            assert!(bad.to_argon2().is_err(), "{bad:?}");
        }
        let p = KdfParams {
            m_kib: 2048,
            t: 2,
            p: 3,
        };
        assert_eq!(KdfParams::from_bytes(&p.to_bytes()), Some(p));
        assert_eq!(KdfParams::from_bytes(&[0u8; 11]), None);
    }

    #[test]
    fn sub_keys_are_distinct_and_salted() {
        let a = SubKeys::derive(&[1u8; 32], &[0u8; 32]);
        let b = SubKeys::derive(&[1u8; 32], &[9u8; 32]);
        assert_ne!(*a.value, *a.name);
        assert_ne!(*a.value, *a.verify);
        assert_ne!(*a.name, *a.verify);
        assert_ne!(*a.value, *b.value);
    }
}
