//! The node's secrets in its keystore: the node seed (account and x25519 keys), the key share
//! and its aux data.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use sigil_crypto::{NodeSeed, SecretBytes};
use sigil_keystore::{KdfParams, KeySource, Keystore};
use sigil_mpc::frost::{FrostShare, Scheme};
use sigil_mpc::{AuxData, KeyShare};

/// Keystore entry of the node seed.
const SEED: &str = "node-seed";
/// Keystore entry of the key share.
const SHARE: &str = "key-share";
/// Keystore entry of the aux data that goes with the share.
const AUX: &str = "aux-data";
/// Entries of a share received in a reshare, kept until the ledger switches to the new set.
const NEXT_SHARE: &str = "next-key-share";
const NEXT_AUX: &str = "next-aux-data";

/// Keystore entry of a FROST scheme's share.
fn frost_entry(scheme: Scheme) -> String {
    format!("frost-share-{}", scheme.key_scheme())
}

/// Keystore entry of a FROST share received in a rotation, kept until the ledger switches.
fn next_frost_entry(scheme: Scheme) -> String {
    format!("next-frost-share-{}", scheme.key_scheme())
}

/// How the keystore is unlocked.
#[derive(Debug, Clone)]
pub enum KeySourceArg {
    /// A file holding the password.
    PasswordFile(PathBuf),
    /// A file holding the raw key.
    KeyFile(PathBuf),
}

impl KeySourceArg {
    fn resolve(&self) -> anyhow::Result<KeySource> {
        Ok(match self {
            KeySourceArg::PasswordFile(path) => {
                let mut file = std::fs::File::open(path)
                    .with_context(|| format!("cannot read the password file {}", path.display()))?;
                sigil_keystore::check_private(&file, path).map_err(anyhow::Error::msg)?;
                let mut text = Vec::new();
                std::io::Read::read_to_end(&mut file, &mut text)
                    .with_context(|| format!("cannot read the password file {}", path.display()))?;
                let trimmed = text
                    .strip_suffix(b"\n")
                    .map(|t| t.strip_suffix(b"\r").unwrap_or(t))
                    .unwrap_or(&text);
                if trimmed.is_empty() {
                    anyhow::bail!("the password file {} is empty", path.display());
                }
                KeySource::Password(SecretBytes::from(trimmed))
            }
            KeySourceArg::KeyFile(path) => KeySource::KeyFile(path.clone()),
        })
    }
}

/// The opened keystore and the secrets read from it.
pub struct Identity {
    keystore: Keystore,
    /// The node seed.
    pub seed: NodeSeed,
}

impl Identity {
    /// The keypair of this validator's replica's consensus key, derived from the node seed
    /// (PROTOCOL §9.1).
    pub fn consensus_keypair(&self) -> sigil_crypto::AccountKeypair {
        sigil_crypto::AccountKeypair::from_secret(*self.seed.consensus_seed())
    }

    /// Opens (or creates) `DIR/keystore.redb` and loads the node seed, creating it the first
    /// time. With `dev_name`, the seed is that development identity's, and an existing keystore
    /// must hold the same one.
    pub fn open(
        data_dir: &Path,
        source: &KeySourceArg,
        dev_name: Option<&str>,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
        let path = data_dir.join("keystore.redb");
        let keystore = Keystore::open_or_create(&path, &source.resolve()?, KdfParams::default())
            .with_context(|| format!("cannot open the keystore {}", path.display()))?;
        let wanted = dev_name.map(NodeSeed::dev);
        let seed = match keystore.get(SEED)? {
            Some(stored) => {
                let bytes: [u8; 32] = stored
                    .expose()
                    .try_into()
                    .map_err(|_| anyhow::anyhow!("the keystore's node seed is corrupt"))?;
                let seed = NodeSeed::from_bytes(bytes);
                if let Some(wanted) = &wanted
                    && wanted.expose() != seed.expose()
                {
                    anyhow::bail!(
                        "the keystore in {} holds another identity than --dev {}",
                        data_dir.display(),
                        dev_name.unwrap_or_default()
                    );
                }
                seed
            }
            None => {
                let seed = wanted.unwrap_or_else(NodeSeed::generate);
                keystore.put(SEED, seed.expose())?;
                seed
            }
        };
        Ok(Self { keystore, seed })
    }

    /// The stored key share and aux data, if any.
    pub fn key_share(&self) -> anyhow::Result<Option<(KeyShare, AuxData)>> {
        self.read_pair(SHARE, AUX)
    }

    /// Stores a key share and its aux data in one transaction.
    pub fn store_key_share(&self, share: &KeyShare, aux: &AuxData) -> anyhow::Result<()> {
        self.write_pair(SHARE, AUX, share, aux)
    }

    /// The share received in a reshare that the ledger has not switched to yet, if any.
    pub fn next_key_share(&self) -> anyhow::Result<Option<(KeyShare, AuxData)>> {
        self.read_pair(NEXT_SHARE, NEXT_AUX)
    }

    /// Keeps a reshared key share until the ledger switches to its signer set.
    pub fn store_next_key_share(&self, share: &KeyShare, aux: &AuxData) -> anyhow::Result<()> {
        self.write_pair(NEXT_SHARE, NEXT_AUX, share, aux)
    }

    fn read_pair(&self, share: &str, aux: &str) -> anyhow::Result<Option<(KeyShare, AuxData)>> {
        let (Some(share_bytes), Some(aux_bytes)) =
            (self.keystore.get(share)?, self.keystore.get(aux)?)
        else {
            return Ok(None);
        };
        let parsed_share = KeyShare::from_bytes(share_bytes.expose())
            .with_context(|| format!("stored entry {share}"))?;
        let parsed_aux = AuxData::from_bytes(aux_bytes.expose())
            .with_context(|| format!("stored entry {aux}"))?;
        Ok(Some((parsed_share, parsed_aux)))
    }

    fn write_pair(
        &self,
        share_name: &str,
        aux_name: &str,
        share: &KeyShare,
        aux: &AuxData,
    ) -> anyhow::Result<()> {
        let share = share.to_bytes();
        let aux = aux.to_bytes();
        self.keystore
            .put_many(&[(share_name, share.expose()), (aux_name, aux.expose())])?;
        Ok(())
    }

    /// Makes the reshared share the current one (the ledger switched to its signer set).
    pub fn promote_next_key_share(&self) -> anyhow::Result<()> {
        if let Some((share, aux)) = self.next_key_share()? {
            self.store_key_share(&share, &aux)?;
        }
        self.keystore.delete(NEXT_SHARE)?;
        self.keystore.delete(NEXT_AUX)?;
        Ok(())
    }

    /// The stored FROST share of `scheme`, if any.
    pub fn frost_share(&self, scheme: Scheme) -> anyhow::Result<Option<FrostShare>> {
        self.read_frost(&frost_entry(scheme))
    }

    /// The FROST share of `scheme` received in a rotation the ledger has not switched to yet.
    pub fn next_frost_share(&self, scheme: Scheme) -> anyhow::Result<Option<FrostShare>> {
        self.read_frost(&next_frost_entry(scheme))
    }

    /// Keeps a rotated FROST share until the ledger switches to its signer set.
    pub fn store_next_frost_share(&self, share: &FrostShare) -> anyhow::Result<()> {
        self.keystore
            .put(&next_frost_entry(share.scheme()), share.to_bytes().expose())?;
        Ok(())
    }

    /// Makes the rotated FROST share of `scheme` the current one; it is written before the
    /// entry it came from is deleted, so a crash in between leaves it to promote again.
    pub fn promote_next_frost_share(&self, scheme: Scheme) -> anyhow::Result<()> {
        if let Some(share) = self.next_frost_share(scheme)? {
            self.store_frost_share(&share)?;
        }
        self.keystore.delete(&next_frost_entry(scheme))?;
        Ok(())
    }

    fn read_frost(&self, name: &str) -> anyhow::Result<Option<FrostShare>> {
        self.keystore
            .get(name)?
            .map(|bytes| {
                FrostShare::from_bytes(bytes.expose())
                    .with_context(|| format!("stored entry {name}"))
            })
            .transpose()
    }

    /// Stores (replaces) the FROST share of its scheme.
    pub fn store_frost_share(&self, share: &FrostShare) -> anyhow::Result<()> {
        self.keystore
            .put(&frost_entry(share.scheme()), share.to_bytes().expose())?;
        Ok(())
    }

    /// Stores several entries in one durable transaction.
    pub fn put_entries(&self, entries: &[(String, Vec<u8>)]) -> anyhow::Result<()> {
        let refs: Vec<(&str, &[u8])> = entries
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_slice()))
            .collect();
        self.keystore.put_many(&refs)?;
        Ok(())
    }

    /// The entry under `name`, if any.
    pub fn entry(&self, name: &str) -> anyhow::Result<Option<SecretBytes>> {
        Ok(self.keystore.get(name)?)
    }

    /// Deletes the entry under `name` in one durable transaction; whether it existed.
    pub fn delete_entry(&self, name: &str) -> anyhow::Result<bool> {
        Ok(self.keystore.delete(name)?)
    }

    /// The names of the entries that start with `prefix`.
    pub fn entry_names(&self, prefix: &str) -> anyhow::Result<Vec<String>> {
        Ok(self
            .keystore
            .names()?
            .into_iter()
            .filter(|n| n.starts_with(prefix))
            .collect())
    }

    /// Deletes every share this node holds, and the nonces made with them (it was rotated out
    /// of the signer set).
    pub fn delete_key_shares(&self) -> anyhow::Result<()> {
        for name in [SHARE, AUX, NEXT_SHARE, NEXT_AUX] {
            self.keystore.delete(name)?;
        }
        for scheme in Scheme::ALL {
            self.keystore.delete(&frost_entry(scheme))?;
            self.keystore.delete(&next_frost_entry(scheme))?;
        }
        for name in self.entry_names(crate::nonces::PREFIX)? {
            self.keystore.delete(&name)?;
        }
        Ok(())
    }
}
