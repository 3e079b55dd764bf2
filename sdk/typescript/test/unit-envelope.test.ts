/** The HPKE envelope against RFC 9180 and the example of PROTOCOL.md §3.6. */

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";

import { x25519 } from "@noble/curves/ed25519.js";

import {
  Account,
  type EnvelopeJson,
  decodePlaintext,
  envelopeSuite,
  envelopeToBytes,
  fromHex,
  open,
  seal,
  sealPlaintext,
  signPlaintext,
  toHex,
  x25519KeyPair,
} from "../src/index.js";
import { REPO_DIR } from "./devnet.js";
import { PROTOCOL, fencedAfter } from "./doc.js";

const EXAMPLE = {
  recipientSecret: new Uint8Array(32).fill(0x42),
  ikmE: new Uint8Array(32).fill(0x07),
  requestId: new Uint8Array(32).fill(0x09),
  timestampMs: 1_700_000_000_000n,
  payload: new TextEncoder().encode("hi"),
};

describe("envelope (PROTOCOL.md §3)", () => {
  it("uses the RFC 9180 suite of §3.2 (A.2.1 vector: X25519, HKDF-SHA256, ChaCha20-Poly1305, base)", async () => {
    const vector = JSON.parse(readFileSync(join(REPO_DIR, "crates/crypto/tests/fixtures/rfc9180_a2_1_base.json"), "utf8"));
    const suite = envelopeSuite();
    assert.equal(suite.kem.id, vector.kem_id);
    assert.equal(suite.kdf.id, vector.kdf_id);
    assert.equal(suite.aead.id, vector.aead_id);
    const recipient = await suite.kem.deriveKeyPair(fromHex(vector.ikmR));
    const sender = await suite.createSenderContext({
      recipientPublicKey: recipient.publicKey,
      info: fromHex(vector.info),
      ekm: fromHex(vector.ikmE),
    });
    assert.equal(toHex(new Uint8Array(sender.enc)), `0x${vector.enc}`);
    const first = vector.encryptions[0];
    const ct = await sender.seal(fromHex(first.pt), fromHex(first.aad));
    assert.equal(toHex(new Uint8Array(ct)), `0x${first.ct}`);
    const receiver = await suite.createRecipientContext({ recipientKey: recipient, enc: fromHex(vector.enc), info: fromHex(vector.info) });
    assert.equal(toHex(new Uint8Array(await receiver.open(fromHex(first.ct), fromHex(first.aad)))), `0x${first.pt}`);
  });

  it("reproduces the example of §3.6 byte for byte", async () => {
    const alice = Account.dev("alice");
    const recipient = x25519.getPublicKey(EXAMPLE.recipientSecret);
    assert.ok(PROTOCOL.includes(`public \`${toHex(recipient)}\``));
    const plaintext = signPlaintext(alice, { recipient, requestId: EXAMPLE.requestId, timestampMs: EXAMPLE.timestampMs, payload: EXAMPLE.payload });
    const documented = fencedAfter("signed plaintext (§3.1, 176 bytes) is").replace(/\s+/g, "");
    assert.equal(toHex(plaintext.bytes), `0x${documented}`);
    const envelope = await sealPlaintext(plaintext.bytes, recipient, EXAMPLE.ikmE);
    const expected = JSON.parse(fencedAfter("DeriveKeyPair(ikmE = 32 × 0x07)")) as EnvelopeJson;
    assert.deepEqual(envelope, expected);
    const opened = await open(expected, EXAMPLE.recipientSecret, { expectedSender: alice.id });
    assert.deepEqual(opened.payload, EXAMPLE.payload);
    assert.equal(opened.timestampMs, EXAMPLE.timestampMs);
  });

  it("lays out the signed plaintext as §3.1, with and without a reply key", () => {
    const alice = Account.dev("alice");
    const { publicKey } = x25519KeyPair();
    const reply = x25519KeyPair().publicKey;
    for (const replyKey of [undefined, reply]) {
      const payload = new Uint8Array(300).fill(7);
      const p = signPlaintext(alice, { recipient: publicKey, payload, timestampMs: 258n, ...(replyKey ? { replyKey } : {}) });
      const r = replyKey ? 138 : 106;
      assert.equal(p.bytes.length, r + 4 + 300 + 64);
      assert.equal(p.bytes[0], 1);
      assert.deepEqual(p.bytes.subarray(1, 33), alice.publicKey);
      assert.deepEqual(p.bytes.subarray(33, 65), publicKey);
      assert.deepEqual(p.bytes.subarray(65, 73), Uint8Array.of(0, 0, 0, 0, 0, 0, 1, 2));
      assert.deepEqual(p.bytes.subarray(73, 105), p.requestId);
      assert.equal(p.bytes[105], replyKey ? 1 : 0);
      if (replyKey) assert.deepEqual(p.bytes.subarray(106, 138), replyKey);
      assert.deepEqual(p.bytes.subarray(r, r + 4), Uint8Array.of(0, 0, 1, 44));
      const decoded = decodePlaintext(p.bytes);
      assert.equal(decoded.replyKey, replyKey ? toHex(replyKey) : undefined);
    }
  });

  it("refuses what §3.4 refuses, each with its code", async () => {
    const alice = Account.dev("alice");
    const node = x25519KeyPair();
    const other = x25519KeyPair();
    const { envelope } = await seal(alice, { recipient: node.publicKey, payload: Uint8Array.of(1) });
    assert.equal(envelopeToBytes(envelope).length, 1 + 32 + 32 + (106 + 4 + 1 + 64) + 16);
    const rejects = (e: EnvelopeJson, code: string, key = node.secretKey, options = {}) =>
      assert.rejects(open(e, key, options), (err: { code?: string }) => err.code === code);
    await rejects({ ...envelope, version: 2 }, "unsupported_version");
    await rejects(envelope, "wrong_recipient", other.secretKey);
    const flipped = toHex(fromHex(envelope.ciphertext).map((b, i) => (i === 5 ? b ^ 1 : b)));
    await rejects({ ...envelope, ciphertext: flipped }, "decryption_failed");
    await rejects(envelope, "unexpected_sender", node.secretKey, { expectedSender: Account.dev("bob").id });
    const forged = signPlaintext(alice, { recipient: node.publicKey, payload: Uint8Array.of(1) }).bytes;
    forged[forged.length - 1]! ^= 1;
    await rejects(await sealPlaintext(forged, node.publicKey), "bad_signature");
    await rejects(await sealPlaintext(Uint8Array.of(1, 2, 3), node.publicKey), "malformed_envelope");
    const resealed = signPlaintext(alice, { recipient: other.publicKey, payload: Uint8Array.of(1) }).bytes;
    await rejects(await sealPlaintext(resealed, node.publicKey), "recipient_mismatch");
    const old = (await seal(alice, { recipient: node.publicKey, payload: Uint8Array.of(1), timestampMs: Date.now() - 200_000 })).envelope;
    await rejects(old, "expired", node.secretKey, { maxAgeMs: 120_000 });
    const future = (await seal(alice, { recipient: node.publicKey, payload: Uint8Array.of(1), timestampMs: Date.now() + 60_000 })).envelope;
    await rejects(future, "from_the_future");
  });
});
