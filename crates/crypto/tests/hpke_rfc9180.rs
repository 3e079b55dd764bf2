//! The RFC 9180 test vector of the envelope's HPKE suite (A.2.1: base mode,
//! DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305) reproduces exactly.

use hpke::rand_core::{Infallible, TryCryptoRng, TryRng};
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use serde::Deserialize;
use sigil_crypto::X25519StaticKey;
use sigil_crypto::envelope::suite::{Aead, Kdf, Kem};

#[derive(Deserialize)]
struct Vector {
    mode: u8,
    kem_id: u16,
    kdf_id: u16,
    aead_id: u16,
    info: String,
    #[serde(rename = "ikmR")]
    ikm_r: String,
    #[serde(rename = "ikmE")]
    ikm_e: String,
    #[serde(rename = "skRm")]
    sk_rm: String,
    #[serde(rename = "pkRm")]
    pk_rm: String,
    #[serde(rename = "pkEm")]
    pk_em: String,
    enc: String,
    encryptions: Vec<Encryption>,
    exports: Vec<Export>,
}

#[derive(Deserialize)]
struct Encryption {
    seq: usize,
    aad: String,
    pt: String,
    ct: String,
}

#[derive(Deserialize)]
struct Export {
    exporter_context: String,
    #[serde(rename = "L")]
    len: usize,
    exported_value: String,
}

/// Hands HPKE the vector's ephemeral key material instead of fresh randomness.
struct FixedIkm(Vec<u8>);

impl TryRng for FixedIkm {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        unreachable!("HPKE only asks for bytes")
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        unreachable!("HPKE only asks for bytes")
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        assert!(dst.len() <= self.0.len(), "vector ikm too short");
        let rest = self.0.split_off(dst.len());
        dst.copy_from_slice(&self.0);
        self.0 = rest;
        Ok(())
    }
}
impl TryCryptoRng for FixedIkm {}

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).expect("fixture hex")
}

fn vector() -> Vector {
    serde_json::from_str(include_str!("fixtures/rfc9180_a2_1_base.json")).expect("fixture parses")
}

#[test]
fn suite_ids_match_the_vector() {
    let v = vector();
    assert_eq!(
        (v.mode, v.kem_id, v.kdf_id, v.aead_id),
        (0, 0x0020, 0x0001, 0x0003)
    );
    assert_eq!(Kem::KEM_ID, v.kem_id);
}

#[test]
fn recipient_key_derivation_matches() {
    let v = vector();
    let (sk, pk) = Kem::derive_keypair(&unhex(&v.ikm_r));
    // HPKE's X25519 private keys are stored clamped (RFC 9180 §7.1.2); the vector's is not.
    let mut clamped = unhex(&v.sk_rm);
    clamped[0] &= 248;
    clamped[31] &= 127;
    clamped[31] |= 64;
    assert_eq!(sk.to_bytes().to_vec(), clamped);
    assert_eq!(pk.to_bytes().to_vec(), unhex(&v.pk_rm));
    // Sigil's own x25519 key type agrees with HPKE on the public key.
    let ours = X25519StaticKey::from_secret(unhex(&v.sk_rm).try_into().expect("32 bytes"));
    assert_eq!(ours.public_key().as_bytes().to_vec(), unhex(&v.pk_rm));
}

#[test]
fn encryptions_and_exports_reproduce() {
    let v = vector();
    let info = unhex(&v.info);
    let pk_r = <Kem as hpke::Kem>::PublicKey::from_bytes(&unhex(&v.pk_rm)).expect("pkR");
    let (enc, mut sender) = hpke::setup_sender_with_rng::<Aead, Kdf, Kem>(
        &OpModeS::Base,
        &pk_r,
        &info,
        &mut FixedIkm(unhex(&v.ikm_e)),
    )
    .expect("setup sender");
    assert_eq!(enc.to_bytes().to_vec(), unhex(&v.enc));
    assert_eq!(unhex(&v.enc), unhex(&v.pk_em));

    let sk_r = <Kem as hpke::Kem>::PrivateKey::from_bytes(&unhex(&v.sk_rm)).expect("skR");
    let mut receiver = hpke::setup_receiver::<Aead, Kdf, Kem>(&OpModeR::Base, &sk_r, &enc, &info)
        .expect("setup receiver");

    let last = v
        .encryptions
        .iter()
        .map(|e| e.seq)
        .max()
        .expect("encryptions");
    let pt = unhex(&v.encryptions[0].pt);
    let mut checked = 0;
    for seq in 0..=last {
        let aad = format!("Count-{seq}").into_bytes();
        let ct = sender.seal(&pt, &aad).expect("seal");
        assert_eq!(
            receiver.open(&ct, &aad).expect("open"),
            pt,
            "round trip at sequence {seq}"
        );
        if let Some(e) = v.encryptions.iter().find(|e| e.seq == seq) {
            assert_eq!(unhex(&e.aad), aad, "aad at sequence {seq}");
            assert_eq!(unhex(&e.pt), pt);
            assert_eq!(hex::encode(&ct), e.ct, "ciphertext at sequence {seq}");
            checked += 1;
        }
    }
    assert_eq!(checked, v.encryptions.len());

    for x in &v.exports {
        let mut out = vec![0u8; x.len];
        sender
            .export(&unhex(&x.exporter_context), &mut out)
            .expect("export");
        assert_eq!(hex::encode(&out), x.exported_value);
        let mut out_r = vec![0u8; x.len];
        receiver
            .export(&unhex(&x.exporter_context), &mut out_r)
            .expect("export");
        assert_eq!(out_r, out);
    }
}
