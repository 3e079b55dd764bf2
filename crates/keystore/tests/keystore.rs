//! Black-box tests of the keystore: round trips, restarts, wrong keys, corruption and tampering,
//! and what the raw file and `Debug` output reveal.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use sigil_keystore::{
    KdfParams, KeySource, Keystore, KeystoreError, SecretBytes, generate_key_file,
};

const FAST: KdfParams = KdfParams::INSECURE_FAST;

/// The raw tables, as documented in the crate docs, for tampering.
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const ENTRIES: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("entries");

fn pw(s: &str) -> KeySource {
    KeySource::Password(SecretBytes::new(s.as_bytes().to_vec()))
}

fn store_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("keystore.redb")
}

fn get(ks: &Keystore, name: &str) -> Option<Vec<u8>> {
    ks.get(name).unwrap().map(|s| s.expose().to_vec())
}

/// Runs `f` on the raw redb tables of a closed keystore.
fn with_raw_tables(
    path: &Path,
    f: impl FnOnce(&mut redb::Table<&str, &[u8]>, &mut redb::Table<[u8; 32], &[u8]>),
) {
    let db = redb::Database::open(path).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut meta = txn.open_table(META).unwrap();
        let mut entries = txn.open_table(ENTRIES).unwrap();
        f(&mut meta, &mut entries);
    }
    txn.commit().unwrap();
}

fn raw_entries(path: &Path) -> Vec<([u8; 32], Vec<u8>)> {
    let db = redb::Database::open(path).unwrap();
    let txn = db.begin_read().unwrap();
    let table = txn.open_table(ENTRIES).unwrap();
    table
        .iter()
        .unwrap()
        .map(|r| {
            let (k, v) = r.unwrap();
            (k.value(), v.value().to_vec())
        })
        .collect()
}

#[test]
fn round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let ks = Keystore::create(&store_path(&dir), &pw("correct horse"), FAST).unwrap();
    assert!(ks.is_empty().unwrap());
    assert_eq!(ks.get("a").unwrap(), None);
    assert!(!ks.contains("a").unwrap());

    ks.put("a", b"alpha").unwrap();
    ks.put("b", b"").unwrap();
    assert_eq!(get(&ks, "a").as_deref(), Some(&b"alpha"[..]));
    assert_eq!(get(&ks, "b").as_deref(), Some(&b""[..]));
    assert!(ks.contains("a").unwrap());
    assert_eq!(ks.names().unwrap(), ["a", "b"]);
    assert_eq!(ks.len().unwrap(), 2);

    // Overwrite.
    ks.put("a", b"alpha-2").unwrap();
    assert_eq!(get(&ks, "a").as_deref(), Some(&b"alpha-2"[..]));
    assert_eq!(ks.len().unwrap(), 2);

    // Delete.
    assert!(ks.delete("a").unwrap());
    assert!(!ks.delete("a").unwrap());
    assert_eq!(ks.get("a").unwrap(), None);
    assert!(!ks.contains("a").unwrap());
    assert_eq!(ks.names().unwrap(), ["b"]);

    // Batch write; a repeated name keeps the last value.
    ks.put_many(&[("x", b"1"), ("y", b"2"), ("x", b"3")])
        .unwrap();
    assert_eq!(get(&ks, "x").as_deref(), Some(&b"3"[..]));
    assert_eq!(get(&ks, "y").as_deref(), Some(&b"2"[..]));
    assert_eq!(ks.names().unwrap(), ["b", "x", "y"]);
}

#[test]
fn reopen_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    {
        let ks = Keystore::create(
            &path,
            &pw("pw"),
            KdfParams {
                m_kib: 2048,
                t: 2,
                p: 1,
            },
        )
        .unwrap();
        ks.put("share/1", b"one").unwrap();
        ks.put_many(&[("share/2", b"two"), ("node/identity", &[0u8; 32])])
            .unwrap();
        ks.delete("share/1").unwrap();
    }
    // The parameters are stored with the keystore.
    with_raw_tables(&path, |meta, _| {
        let params = meta.get("kdf_params").unwrap().unwrap().value().to_vec();
        assert_eq!(params, [0, 8, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0]);
    });
    let ks = Keystore::open(&path, &pw("pw")).unwrap();
    assert_eq!(ks.names().unwrap(), ["node/identity", "share/2"]);
    assert_eq!(get(&ks, "share/2").as_deref(), Some(&b"two"[..]));
    assert_eq!(get(&ks, "node/identity").as_deref(), Some(&[0u8; 32][..]));
    assert_eq!(ks.get("share/1").unwrap(), None);
    drop(ks);

    // open_or_create opens the existing store rather than replacing it.
    let ks = Keystore::open_or_create(&path, &pw("pw"), FAST).unwrap();
    assert_eq!(ks.len().unwrap(), 2);
}

#[test]
fn open_or_create_creates() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    Keystore::open_or_create(&path, &pw("pw"), FAST)
        .unwrap()
        .put("k", b"v")
        .unwrap();
    let ks = Keystore::open_or_create(&path, &pw("pw"), FAST).unwrap();
    assert_eq!(get(&ks, "k").as_deref(), Some(&b"v"[..]));
}

#[test]
fn key_file_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let key_path = dir.path().join("node.key");
    generate_key_file(&key_path).unwrap();
    let source = KeySource::KeyFile(key_path.clone());
    {
        let ks = Keystore::create(&path, &source, KdfParams::default()).unwrap();
        ks.put("secret", b"s3cr3t").unwrap();
    }
    let ks = Keystore::open(&path, &source).unwrap();
    assert_eq!(get(&ks, "secret").as_deref(), Some(&b"s3cr3t"[..]));
    drop(ks);

    // The same key as 32 raw bytes opens it too.
    let text = std::fs::read_to_string(&key_path).unwrap();
    let raw_path = dir.path().join("node.raw");
    std::fs::write(&raw_path, hex::decode(text.trim_end()).unwrap()).unwrap();
    // A key file others may read is refused, with the fix in the message.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |m| std::fs::Permissions::from_mode(m);
        std::fs::set_permissions(&raw_path, mode(0o644)).unwrap();
        let refused = Keystore::open(&path, &KeySource::KeyFile(raw_path.clone())).unwrap_err();
        assert!(refused.to_string().contains("chmod 600"), "{refused}");
        std::fs::set_permissions(&raw_path, mode(0o600)).unwrap();
    }
    let ks = Keystore::open(&path, &KeySource::KeyFile(raw_path)).unwrap();
    assert_eq!(get(&ks, "secret").as_deref(), Some(&b"s3cr3t"[..]));
}

#[test]
fn wrong_password_and_wrong_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    drop(Keystore::create(&path, &pw("right"), FAST).unwrap());
    let err = Keystore::open(&path, &pw("wrong-password-123")).unwrap_err();
    assert!(matches!(err, KeystoreError::WrongPassword), "{err:?}");
    assert!(!err.to_string().contains("wrong-password-123"));
    assert!(!format!("{err:?}").contains("wrong-password-123"));

    // A key file on a password store is a kind mismatch.
    let key_a = dir.path().join("a.key");
    generate_key_file(&key_a).unwrap();
    let err = Keystore::open(&path, &KeySource::KeyFile(key_a.clone())).unwrap_err();
    assert!(
        matches!(err, KeystoreError::KeySourceMismatch { .. }),
        "{err:?}"
    );

    // A different key file on a key-file store.
    let kpath = dir.path().join("k.redb");
    drop(Keystore::create(&kpath, &KeySource::KeyFile(key_a), FAST).unwrap());
    let key_b = dir.path().join("b.key");
    generate_key_file(&key_b).unwrap();
    let err = Keystore::open(&kpath, &KeySource::KeyFile(key_b)).unwrap_err();
    assert!(matches!(err, KeystoreError::WrongPassword), "{err:?}");

    // A missing or malformed key file.
    let err = Keystore::open(&kpath, &KeySource::KeyFile(dir.path().join("nope"))).unwrap_err();
    assert!(matches!(err, KeystoreError::KeyFile(_)), "{err:?}");

    // The right password still works afterwards.
    Keystore::open(&path, &pw("right")).unwrap();
}

#[test]
fn create_and_open_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let err = Keystore::open(&path, &pw("pw")).unwrap_err();
    assert!(matches!(err, KeystoreError::NotFound(_)), "{err:?}");

    let ks = Keystore::create(&path, &pw("pw"), FAST).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // The file is locked while open.
    let err = Keystore::open(&path, &pw("pw")).unwrap_err();
    assert!(matches!(err, KeystoreError::AlreadyOpen(_)), "{err:?}");
    drop(ks);

    let err = Keystore::create(&path, &pw("pw"), FAST).unwrap_err();
    assert!(matches!(err, KeystoreError::AlreadyExists(_)), "{err:?}");
    Keystore::open(&path, &pw("pw")).unwrap();

    // Bad inputs are rejected before a file is created.
    let other = dir.path().join("other.redb");
    let err = Keystore::create(&other, &pw(""), FAST).unwrap_err();
    assert!(matches!(err, KeystoreError::InvalidInput(_)), "{err:?}");
    let err = Keystore::create(
        &other,
        &pw("pw"),
        KdfParams {
            m_kib: 1,
            t: 1,
            p: 1,
        },
    )
    .unwrap_err();
    assert!(matches!(err, KeystoreError::InvalidInput(_)), "{err:?}");
    assert!(!other.exists());
}

#[test]
fn tampered_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    drop(Keystore::create(&path, &pw("pw"), FAST).unwrap());

    // Changed parameters fail the verifier.
    with_raw_tables(&path, |meta, _| {
        meta.insert("kdf_params", &[0u8, 8, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0][..])
            .unwrap();
    });
    let err = Keystore::open(&path, &pw("pw")).unwrap_err();
    assert!(matches!(err, KeystoreError::WrongPassword), "{err:?}");

    // Absurd parameters are rejected without running Argon2.
    with_raw_tables(&path, |meta, _| {
        meta.insert("kdf_params", &[0xffu8; 12][..]).unwrap();
    });
    let err = Keystore::open(&path, &pw("pw")).unwrap_err();
    assert!(matches!(err, KeystoreError::Corrupted(_)), "{err:?}");

    with_raw_tables(&path, |meta, _| {
        meta.insert("version", &2u32.to_le_bytes()[..]).unwrap();
    });
    let err = Keystore::open(&path, &pw("pw")).unwrap_err();
    assert!(
        matches!(err, KeystoreError::UnsupportedVersion(2)),
        "{err:?}"
    );

    with_raw_tables(&path, |meta, _| {
        meta.insert("version", &1u32.to_le_bytes()[..]).unwrap();
        meta.remove("verifier").unwrap();
    });
    let err = Keystore::open(&path, &pw("pw")).unwrap_err();
    assert!(matches!(err, KeystoreError::Corrupted(_)), "{err:?}");

    // A redb file that is not a keystore.
    let plain = dir.path().join("plain.redb");
    drop(redb::Database::create(&plain).unwrap());
    let err = Keystore::open(&plain, &pw("pw")).unwrap_err();
    assert!(matches!(err, KeystoreError::Corrupted(_)), "{err:?}");
}

#[test]
fn garbage_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut seed = 0x1234_5678_9abc_def0u64;
    let mut garbage = vec![0u8; 64 * 1024];
    for b in garbage.iter_mut() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        *b = seed as u8;
    }
    for (name, bytes) in [
        ("random", garbage.clone()),
        ("empty", Vec::new()),
        ("short", b"redb".to_vec()),
        // Right magic number, garbage after it.
        (
            "magic",
            [
                &[b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A][..],
                &garbage,
            ]
            .concat(),
        ),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, &bytes).unwrap();
        let err = Keystore::open(&path, &pw("pw")).unwrap_err();
        assert!(
            matches!(err, KeystoreError::Corrupted(_) | KeystoreError::Storage(_)),
            "{name}: {err:?}"
        );
        let err = Keystore::open_or_create(&path, &pw("pw"), FAST).unwrap_err();
        assert!(
            matches!(err, KeystoreError::Corrupted(_) | KeystoreError::Storage(_)),
            "{name}: {err:?}"
        );
    }
}

/// Builds a small valid keystore and returns its bytes.
fn sample_store(dir: &tempfile::TempDir) -> (PathBuf, Vec<u8>) {
    let path = dir.path().join("sample.redb");
    {
        let ks = Keystore::create(&path, &pw("pw"), FAST).unwrap();
        for i in 0..20u8 {
            ks.put(&format!("share/{i}"), &[i; 100]).unwrap();
        }
        ks.delete("share/3").unwrap();
    }
    let bytes = std::fs::read(&path).unwrap();
    (path, bytes)
}

/// Opens a damaged keystore and reads everything. Damage may land in unused space, so success is
/// allowed, but every value read must be the original; errors are fine; panics fail the test.
fn exercise_damaged(path: &Path) -> bool {
    let ks = match Keystore::open(path, &pw("pw")) {
        Ok(ks) => ks,
        Err(_) => return false,
    };
    let mut intact = true;
    for i in 0..20u8 {
        match ks.get(&format!("share/{i}")) {
            Ok(Some(v)) => assert_eq!(v.expose(), &[i; 100][..]),
            Ok(None) => assert_eq!(i, 3),
            Err(_) => intact = false,
        }
    }
    intact &= ks.names().is_ok();
    intact
}

#[test]
fn flipped_bytes_are_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let (path, original) = sample_store(&dir);
    let mut detected = 0;
    // Every byte of the file header and region headers, then a stride through the rest.
    let offsets: Vec<usize> = (0..512).chain((512..original.len()).step_by(509)).collect();
    for &offset in &offsets {
        let mut bytes = original.clone();
        bytes[offset] ^= 0x5a;
        std::fs::write(&path, &bytes).unwrap();
        if !exercise_damaged(&path) {
            detected += 1;
        }
    }
    assert!(detected > 0);

    // A flip in the middle of the file.
    let mut bytes = original.clone();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 64] {
        *b = !*b;
    }
    std::fs::write(&path, &bytes).unwrap();
    exercise_damaged(&path);
}

#[test]
fn truncated_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (path, original) = sample_store(&dir);
    for len in [
        0,
        8,
        9,
        100,
        511,
        4096,
        original.len() / 2,
        original.len() - 1,
    ] {
        std::fs::write(&path, &original[..len]).unwrap();
        assert!(
            !exercise_damaged(&path),
            "truncated to {len} of {}",
            original.len()
        );
    }
}

#[test]
fn tampered_values_are_corrupted() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    {
        let ks = Keystore::create(&path, &pw("pw"), FAST).unwrap();
        ks.put("a", b"value-a").unwrap();
        ks.put("b", b"value-b").unwrap();
        ks.put("c", b"value-c").unwrap();
    }
    let raw = raw_entries(&path);
    assert_eq!(raw.len(), 3);

    // Swap the stored values of the first two rows.
    let (k0, v0) = raw[0].clone();
    let (k1, v1) = raw[1].clone();
    with_raw_tables(&path, |_, entries| {
        entries.insert(&k0, v1.as_slice()).unwrap();
        entries.insert(&k1, v0.as_slice()).unwrap();
    });
    let ks = Keystore::open(&path, &pw("pw")).unwrap();
    let results: Vec<_> = ["a", "b", "c"].iter().map(|n| ks.get(n)).collect();
    let corrupted = results
        .iter()
        .filter(|r| matches!(r, Err(KeystoreError::Corrupted(_))))
        .count();
    assert_eq!(corrupted, 2, "{results:?}");
    assert!(matches!(ks.names(), Err(KeystoreError::Corrupted(_))));
    drop(ks);

    // Restore, then flip one ciphertext byte of the third row.
    let (k2, v2) = raw[2].clone();
    with_raw_tables(&path, |_, entries| {
        entries.insert(&k0, v0.as_slice()).unwrap();
        entries.insert(&k1, v1.as_slice()).unwrap();
        let mut bad = v2.clone();
        bad[30] ^= 1; // Past the 24-byte nonce: a ciphertext byte.
        entries.insert(&k2, bad.as_slice()).unwrap();
    });
    let ks = Keystore::open(&path, &pw("pw")).unwrap();
    let results: Vec<_> = ["a", "b", "c"].iter().map(|n| ks.get(n)).collect();
    let ok = results.iter().filter(|r| matches!(r, Ok(Some(_)))).count();
    let corrupted = results
        .iter()
        .filter(|r| matches!(r, Err(KeystoreError::Corrupted(_))))
        .count();
    assert_eq!((ok, corrupted), (2, 1), "{results:?}");
    drop(ks);

    // Truncated and empty stored values.
    with_raw_tables(&path, |_, entries| {
        entries.insert(&k2, &v2[..10]).unwrap();
        entries.insert(&k0, &[][..]).unwrap();
    });
    let ks = Keystore::open(&path, &pw("pw")).unwrap();
    let corrupted = ["a", "b", "c"]
        .iter()
        .filter(|n| matches!(ks.get(n), Err(KeystoreError::Corrupted(_))))
        .count();
    assert_eq!(corrupted, 2);
}

#[test]
fn names_and_values_are_not_visible_in_the_raw_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let name = "share/0x02abcdef0123456789abcdef0123456789abcdef0123456789abcdef01234567";
    let value: Vec<u8> = b"TOP-SECRET-KEY-SHARE-"
        .iter()
        .copied()
        .cycle()
        .take(300)
        .collect();
    {
        let ks = Keystore::create(&path, &pw("pw"), FAST).unwrap();
        ks.put(name, &value).unwrap();
        ks.put_many(&[("share/other", &value)]).unwrap();
        // Overwrite and delete too, so freed pages are also checked.
        ks.put(name, &value).unwrap();
        ks.delete("share/other").unwrap();
        assert_eq!(ks.names().unwrap(), [name]);
    }
    let raw = std::fs::read(&path).unwrap();
    let contains = |needle: &[u8]| raw.windows(needle.len()).any(|w| w == needle);
    assert!(!contains(name.as_bytes()));
    assert!(!contains(b"02abcdef0123456789"));
    assert!(!contains(b"share/"));
    assert!(!contains(b"TOP-SECRET"));
    assert!(!contains(&value[..16]));
    assert!(!contains(b"pw\0"));
}

#[test]
fn debug_output_hides_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let source = pw("hunter2-password");
    let ks = Keystore::create(&path, &source, FAST).unwrap();
    ks.put("k", b"very-secret-value").unwrap();
    let value = ks.get("k").unwrap().unwrap();
    for shown in [
        format!("{ks:?}"),
        format!("{ks:#?}"),
        format!("{value:?}"),
        format!("{source:?}"),
        format!("{:?}", ks.get("k").unwrap()),
    ] {
        assert!(!shown.contains("very-secret-value"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            !shown.contains("value_key") && !shown.contains("name_key"),
            "{shown}"
        );
    }
    assert!(format!("{ks:?}").contains("Keystore"));
}

#[test]
fn keystore_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Keystore>();
}

fn entries_strategy() -> impl Strategy<Value = BTreeMap<String, Vec<u8>>> {
    prop::collection::btree_map(
        "[a-z0-9/._-]{0,40}|\\PC{0,16}",
        prop::collection::vec(any::<u8>(), 0..=4096),
        0..=64,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn random_entries_survive_reopen(entries in entries_strategy(), batch in any::<bool>()) {
        let dir = tempfile::tempdir().unwrap();
        let path = store_path(&dir);
        {
            let ks = Keystore::create(&path, &pw("prop"), FAST).unwrap();
            if batch {
                let refs: Vec<(&str, &[u8])> =
                    entries.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect();
                ks.put_many(&refs).unwrap();
            } else {
                for (k, v) in &entries {
                    ks.put(k, v).unwrap();
                }
            }
        }
        let ks = Keystore::open(&path, &pw("prop")).unwrap();
        let names: Vec<String> = entries.keys().cloned().collect();
        prop_assert_eq!(ks.names().unwrap(), names);
        for (k, v) in &entries {
            let got = ks.get(k).unwrap();
            prop_assert_eq!(got.as_ref().map(SecretBytes::expose), Some(v.as_slice()));
        }
        prop_assert_eq!(ks.get("\u{0}not-a-name").unwrap(), None);
    }
}
