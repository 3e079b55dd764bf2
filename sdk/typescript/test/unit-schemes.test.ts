/**
 * Key schemes (PROTOCOL.md §1, §2 "User keys", §4.4, §7.1, §7.3, §7.4): tagged keys, the
 * Ed25519 and BIP-340 derivations against the spec's examples, addresses, hashing `none`,
 * per-scheme signature checks of a relayer's answer, and the `register` call's `scheme` against
 * the bytes the Rust types produce.
 */

import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { ed25519 } from "@noble/curves/ed25519.js";
import { schnorr, secp256k1 } from "@noble/curves/secp256k1.js";
import { bytesToNumberBE } from "@noble/curves/utils.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { keccak_256 } from "@noble/hashes/sha3.js";
import { base58 } from "@scure/base";
import { HDKey } from "@scure/bip32";

import {
  Account,
  BadResponseError,
  CALL_LAYOUT,
  type Hex,
  EVENT_LAYOUT,
  KEY_SCHEMES,
  PENDING_RESHARE_FIELDS,
  PostcardReader,
  type RelayResponse,
  type ResponseCheck,
  SIGNER_SET_FIELDS,
  type SignerSet,
  attestationPayload,
  callJson,
  checkHashingForKey,
  deriveBip340Key,
  deriveEd25519Key,
  deriveVerifyingKey,
  encodeSignatureRequest,
  encodeTransaction,
  ethAddress,
  fromHex,
  hashingCode,
  isKeyScheme,
  isVerifyingKey,
  keyAddress,
  keyBytes,
  keyScheme,
  messageHash,
  networkChainCode,
  networkKeyOf,
  parseJson,
  randomBytes,
  signedBytes,
  solanaAddress,
  taggedKey,
  taprootAddress,
  taprootOutputKey,
  toHex,
  utf8,
  verifyEcdsa,
  verifyRelayResponse,
  verifyUserSignature,
  withBigInts,
} from "../src/index.js";
import { PROTOCOL, fencedAfter, tableAfter } from "./doc.js";

/** The examples of PROTOCOL.md §2 "User keys" (network key, path, user key). */
const EXAMPLES: ReadonlyArray<readonly [string, string, string]> = [
  [
    "0xedc8f4cfd7ec9c81e16c77144a4d1ce0dca0339661df313cceb9203113468fb608",
    "m/1/2",
    "0xedc0b6c8acb99ade98e660b7b29197d79b95bb7ec983602778451f8b9a13cb32cf",
  ],
  [
    "0xedc8f4cfd7ec9c81e16c77144a4d1ce0dca0339661df313cceb9203113468fb608",
    "m",
    "0xed5e91dcf5208c794f35b786f44d39ff96ad5900902c3f42c554479c21d4a75f24",
  ],
  [
    "0x5456b328b30c8bf5839e24058747879408bdb36241dc9c2e7c619faa12b2920967",
    "m/44/0/5",
    "0x543d616fb2c38e83b3bc654ae19d1c05ac65d59d6e186b47e2b2a3cfb74c6119d4",
  ],
  [
    "0x5456b328b30c8bf5839e24058747879408bdb36241dc9c2e7c619faa12b2920967",
    "m",
    "0x54483a336466d31e2be85892931ec6613ca19f9a6762329698b4c3e7151c01122b",
  ],
];

/** The examples as PROTOCOL.md writes them: one bullet per network key, `path` → `key` pairs. */
function documentedExamples(): Array<[string, string, string]> {
  const section = PROTOCOL.split("Examples (network key, path → user key):")[1]!.split("\n\n")[0]!;
  return section
    .split(/\n- /)
    .slice(1)
    .flatMap((bullet) => {
      const network = /`(0x[0-9a-f]{66})`/.exec(bullet)![1]!;
      return [...bullet.matchAll(/`(m[^`]*)` →\s*`(0x[0-9a-f]{66})`/g)].map((m) => [network, m[1]!, m[2]!] as [string, string, string]);
    });
}

const ECDSA_KEY = "0x0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";

describe("key schemes and tagged keys (PROTOCOL.md §1)", () => {
  it("reads the scheme from the tag and checks the point", () => {
    assert.deepEqual(KEY_SCHEMES, ["ecdsa-secp256k1", "ed25519", "bip340"]);
    for (const name of ['"ecdsa-secp256k1"', '"ed25519"', '"bip340"']) assert.ok(PROTOCOL.includes(name), name);
    assert.ok(isKeyScheme("bip340") && !isKeyScheme("schnorr"));
    assert.equal(keyScheme(ECDSA_KEY), "ecdsa-secp256k1");
    assert.equal(keyScheme(ECDSA_KEY.replace("0x02", "0x03")), "ecdsa-secp256k1");
    const [ed, , bip] = EXAMPLES.map((e) => e[0]);
    assert.equal(keyScheme(ed!), "ed25519");
    assert.equal(keyScheme(bip!), "bip340");
    assert.throws(() => keyScheme("0x04" + "11".repeat(32)), /unknown key tag 0x04/);
    for (const key of [ECDSA_KEY, ed!, bip!]) assert.ok(isVerifyingKey(key), key);
    assert.ok(!isVerifyingKey("0x05" + ECDSA_KEY.slice(4)), "unknown tag");
    assert.ok(!isVerifyingKey("0x54" + "ff".repeat(32)), "x ≥ p has no point");
    assert.ok(!isVerifyingKey(ed!.slice(0, -2)), "32 bytes");
    assert.equal(keyBytes(ECDSA_KEY).length, 33);
    assert.equal(toHex(keyBytes(ed!)), `0x${ed!.slice(4)}`);
    assert.equal(taggedKey("bip340", keyBytes(bip!)), bip);
  });
});

describe("user keys of the Ed25519 and BIP-340 network keys (PROTOCOL.md §2)", () => {
  it("reproduces the examples of PROTOCOL.md exactly", () => {
    assert.deepEqual(documentedExamples(), EXAMPLES.map((e) => [...e]));
    for (const [network, path, user] of EXAMPLES) {
      assert.equal(deriveVerifyingKey(network, path), user, `${network} ${path}`);
      const indices = path === "m" ? [] : path.slice(2).split("/").map(Number);
      assert.equal(deriveVerifyingKey(network, indices), user);
      const direct = keyScheme(network) === "ed25519" ? deriveEd25519Key(network, path) : deriveBip340Key(network, path);
      assert.equal(direct, user);
    }
    assert.throws(() => deriveEd25519Key(EXAMPLES[2]![0], "m"), /not an Ed25519/);
    assert.throws(() => deriveBip340Key(EXAMPLES[0]![0], "m"), /not a BIP-340/);
    assert.throws(() => deriveVerifyingKey(EXAMPLES[0]![0], [0x80000000]), /non-hardened/);
  });

  it("derives a BIP-340 key whose secret (BIP-32 child plus the TapTweak) signs for it", () => {
    const n = secp256k1.Point.CURVE().n;
    const secret = new Uint8Array(32).fill(9);
    const point = secp256k1.Point.BASE.multiply(bytesToNumberBE(secret)).toAffine();
    const even = point.y % 2n === 0n ? bytesToNumberBE(secret) : n - bytesToNumberBE(secret);
    const networkKey = taggedKey("bip340", schnorr.getPublicKey(secret));
    const path = "m/44/0/5";
    // The private side: BIP-32 from the even-y secret with the tagged key's chain code …
    const child = new HDKey({ privateKey: secp256k1.Point.Fn.toBytes(even), chainCode: networkChainCode(networkKey) }).derive(path);
    const internal = child.publicKey!;
    // … then BIP-341's key-path tweak: q = ±p + hash_TapTweak(x(P)).
    const p = bytesToNumberBE(child.privateKey!);
    const pEven = internal[0] === 0x02 ? p : n - p;
    const tweak = bytesToNumberBE(schnorr.utils.taggedHash("TapTweak", internal.subarray(1))) % n;
    const q = secp256k1.Point.Fn.toBytes((pEven + tweak) % n);
    const userKey = deriveVerifyingKey(networkKey, path);
    assert.equal(userKey, taggedKey("bip340", schnorr.getPublicKey(q)));
    assert.equal(toHex(taprootOutputKey(internal)), `0x${userKey.slice(4)}`);
    const prehash = sha256(utf8("spend"));
    assert.ok(verifyUserSignature(userKey, prehash, schnorr.sign(prehash, q)));
    assert.ok(!verifyUserSignature(networkKey, prehash, schnorr.sign(prehash, q)));
  });

  it("applies BIP-86's TapTweak and writes its address (BIP-350 bech32m)", () => {
    // BIP-86's first receiving key of its test mnemonic: internal key, output key, address.
    const output = taprootOutputKey("0xcc8a4bc64d897bddc5fbc2f670f7a8ba0b386779106cf1223c6fc5d7cd6fc115");
    assert.equal(toHex(output), "0xa60869f0dbcf1dc659c9cecbaf8050135ea9e8cdc487053f1dc6880949dc684c");
    const key = taggedKey("bip340", output);
    assert.equal(taprootAddress(key), "bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr");
    assert.match(taprootAddress(key, "tb"), /^tb1p/);
    assert.deepEqual(keyAddress(key), { chain: "taproot", text: "bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr" });
  });

  it("gives Solana addresses as base58 of the 32-byte key, and each scheme its own address", () => {
    // Solana's system program id is the all-zero key.
    assert.equal(solanaAddress(`0xed${"00".repeat(32)}`), "11111111111111111111111111111111");
    const user = EXAMPLES[0]![2];
    assert.deepEqual(base58.decode(solanaAddress(user)), keyBytes(user));
    assert.deepEqual(keyAddress(user), { chain: "solana", text: solanaAddress(user) });
    assert.deepEqual(keyAddress(ECDSA_KEY), { chain: "ethereum", text: "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf" });
    assert.throws(() => ethAddress(user), /ECDSA/);
    assert.throws(() => solanaAddress(ECDSA_KEY), /Ed25519/);
    assert.throws(() => taprootAddress(user), /BIP-340/);
  });
});

describe("hashing none (PROTOCOL.md §1, §7.1, §7.3)", () => {
  it("has the codes of §7.1, none among them", () => {
    assert.ok(PROTOCOL.includes('`"identity"`, `"none"`, `"custom:N"`'));
    const block = fencedAfter("### 7.1 Signature request");
    const codes = [...block.matchAll(/(\d) (keccak256|sha256|sha3-256|blake2b-256|identity|none)\b/g)];
    assert.equal(codes.length, 6);
    for (const [, code, name] of codes) assert.equal(hashingCode(name as "none"), Number(code), name);
    const payload = encodeSignatureRequest({ verifyingKey: EXAMPLES[0]![2], block: 1, hashing: "none", auxData: [], message: utf8("hi") });
    assert.equal(payload[42], 5);
    assert.equal(payload[1], 0xed);
  });

  it("takes SHA-256 of the message as the message hash, and signs the message itself", () => {
    const message = utf8("a Solana transaction message, of any length");
    assert.deepEqual(messageHash("none", message), sha256(message));
    assert.deepEqual(signedBytes("none", message, sha256(message)), message);
    assert.deepEqual(signedBytes("sha256", message, sha256(message)), sha256(message));
  });

  it("refuses none for keys that are not Ed25519, with the node's code", () => {
    checkHashingForKey("none", EXAMPLES[0]![2]);
    checkHashingForKey("keccak256", EXAMPLES[2]![2]);
    for (const key of [ECDSA_KEY, EXAMPLES[2]![2]]) {
      assert.throws(() => checkHashingForKey("none", key), (e: { code?: string }) => e.code === "bad_message_for_hash");
    }
  });
});

/** A relayer's answer to a request for `message`, signed `signature`, attested by alice and bob. */
function answer(verifyingKey: string, hashing: ResponseCheck["hashing"], message: Uint8Array, signature: Uint8Array) {
  const members = [Account.dev("alice"), Account.dev("bob")];
  const digest = randomBytes(32);
  const requestId = randomBytes(32);
  const hash = messageHash(hashing, message)!;
  const check: ResponseCheck = { requestId, digest, verifyingKey, hashing, message, block: 9n };
  const payload = attestationPayload(digest, verifyingKey, hash, signature);
  const response: RelayResponse = {
    request_id: toHex(requestId),
    verifying_key: verifyingKey as `0x${string}`,
    message_hash: toHex(hash),
    signature: toHex(signature),
    block: 9n,
    attempt: 0,
    committee: members.map((m) => m.id).sort(),
    relayer: Account.dev("eve").id,
    attestations: members.map((m) => ({ signer: m.id, attestation: toHex(m.sign(payload)) })),
  };
  return { check, response, payload };
}

const rejects = (check: ResponseCheck, response: RelayResponse, what: RegExp) =>
  assert.throws(() => verifyRelayResponse(check, response), (e: unknown) => e instanceof BadResponseError && what.test(e.message));

describe("verifying an answer per scheme (PROTOCOL.md §7.3, §7.4)", () => {
  const edSeed = new Uint8Array(32).fill(3);
  const edKey = taggedKey("ed25519", ed25519.getPublicKey(edSeed));
  const bipSecret = new Uint8Array(32).fill(5);
  const bipKey = taggedKey("bip340", schnorr.getPublicKey(bipSecret));
  const message = utf8("hello from another chain");

  it("checks Ed25519 over the message for none (64-byte signature, attested as it is)", () => {
    const signature = ed25519.sign(message, edSeed);
    const { check, response, payload } = answer(edKey, "none", message, signature);
    assert.equal(payload.length, 20 + 32 + 33 + 32 + 64);
    verifyRelayResponse(check, response);
    // Signed over the hash instead of the message: not what `none` signs.
    const overHash = answer(edKey, "none", message, ed25519.sign(sha256(message), edSeed));
    rejects(overHash.check, overHash.response, /does not verify/);
    const forged = { ...response, message_hash: toHex(sha256(utf8("other"))) };
    rejects(check, forged, /not the hash of the message/);
  });

  it("checks Ed25519 over the 32-byte prehash for other hashings", () => {
    const { check, response } = answer(edKey, "keccak256", message, ed25519.sign(keccak_256(message), edSeed));
    verifyRelayResponse(check, response);
    const overMessage = answer(edKey, "keccak256", message, ed25519.sign(message, edSeed));
    rejects(overMessage.check, overMessage.response, /does not verify/);
  });

  it("checks BIP-340 over the prehash under the x-only key", () => {
    const signature = schnorr.sign(sha256(message), bipSecret);
    const { check, response } = answer(bipKey, "sha256", message, signature);
    verifyRelayResponse(check, response);
    assert.ok(verifyUserSignature(bipKey, sha256(message), signature));
    assert.ok(!verifyUserSignature(bipKey, keccak_256(message), signature));
    const other = taggedKey("bip340", schnorr.getPublicKey(new Uint8Array(32).fill(6)));
    rejects({ ...check, verifyingKey: other }, { ...response, verifying_key: other }, /does not verify/);
  });

  it("still checks ECDSA: 65 bytes, low s, v the y-parity", () => {
    const secret = new Uint8Array(32).fill(7);
    const key = toHex(secp256k1.getPublicKey(secret, true));
    const hash = keccak_256(message);
    const sig = secp256k1.Signature.fromBytes(secp256k1.sign(hash, secret, { prehash: false }), "compact");
    const v = [0, 1].find((b) => toHex(sig.addRecoveryBit(b).recoverPublicKey(hash).toBytes(true)) === key)!;
    const rsv = Uint8Array.from([...sig.toBytes("compact"), v]);
    const { check, response } = answer(key, "keccak256", message, rsv);
    verifyRelayResponse(check, response);
    assert.ok(verifyEcdsa(key, hash, rsv));
    // The 64 bytes without v are not an ECDSA key's signature.
    const short = answer(key, "keccak256", message, rsv.subarray(0, 64));
    rejects(short.check, short.response, /does not verify/);
  });

  it("refuses a signature of the other length for the key's scheme", () => {
    const signature = ed25519.sign(message, edSeed);
    assert.ok(verifyUserSignature(edKey, message, signature));
    assert.ok(!verifyUserSignature(edKey, message, Uint8Array.from([...signature, 0])));
    assert.ok(!verifyUserSignature(bipKey, sha256(message), Uint8Array.from([...schnorr.sign(sha256(message), bipSecret), 1])));
    assert.throws(() => attestationPayload(new Uint8Array(32), edKey, new Uint8Array(32), new Uint8Array(63)), /64 or 65/);
  });
});

describe("register's scheme and the records (PROTOCOL.md §4.4)", () => {
  const alice = Account.dev("alice");
  const program = `0x${"01".repeat(32)}`;
  /**
   * postcard(transaction) of alice's `register` at nonce 7 with one program (`01`×32, config
   * `{}`), by scheme and `public`, as `postcard::to_allocvec` writes the Rust `Transaction`.
   */
  const head = "201f717485c251f1a06ae50b3413f2b73d9b284e162fd2d722e3243514731b35f7070901200101010101010101010101010101010101010101010101010101010101010101027b7d";
  const RUST_REGISTER: Record<string, string> = {
    "ecdsa-secp256k1 false": `0x${head}000f65636473612d736563703235366b31`,
    "ecdsa-secp256k1 true": `0x${head}010f65636473612d736563703235366b31`,
    "ed25519 false": `0x${head}000765643235353139`,
    "ed25519 true": `0x${head}010765643235353139`,
    "bip340 false": `0x${head}0006626970333430`,
    "bip340 true": `0x${head}0106626970333430`,
  };

  it("writes scheme after public as a string, as the Rust types do", () => {
    for (const scheme of KEY_SCHEMES) {
      for (const isPublic of [false, true]) {
        const tx = encodeTransaction({ sender: alice.id, nonce: 7, call: { register: { programs: [{ program, config: "0x7b7d" }], public: isPublic, scheme } } });
        assert.equal(toHex(tx), RUST_REGISTER[`${scheme} ${isPublic}`], `${scheme} ${isPublic}`);
        const reader = new PostcardReader(tx);
        reader.take(1 + 32 + 1);
        assert.equal(reader.varint(), 9n);
        assert.equal(reader.varint(), 1n);
        assert.deepEqual(reader.bytes(), fromHex(program));
        assert.deepEqual(reader.bytes(), fromHex("0x7b7d"));
        assert.equal(reader.bool(), isPublic);
        assert.equal(reader.string(), scheme);
        assert.ok(reader.done());
      }
    }
    // Left out, public is false and scheme ecdsa-secp256k1, in postcard; JSON leaves them out.
    const plain = encodeTransaction({ sender: alice.id, nonce: 7, call: { register: { programs: [{ program, config: "0x7b7d" }] } } });
    assert.equal(toHex(plain), RUST_REGISTER["ecdsa-secp256k1 false"]);
    assert.deepEqual(callJson({ register: { programs: [{ program }] } }), { register: { programs: [{ program, config: "0x" }] } });
    assert.deepEqual(callJson({ register: { programs: [{ program }], public: true, scheme: "bip340" } }), {
      register: { programs: [{ program, config: "0x" }], public: true, scheme: "bip340" },
    });
    const bad = { register: { programs: [{ program }], scheme: "schnorr" } } as unknown as Parameters<typeof callJson>[0];
    assert.throws(() => callJson(bad), /not a key scheme/);
    assert.throws(() => encodeTransaction({ sender: alice.id, nonce: 0, call: bad }), /not a key scheme/);
    assert.deepEqual(CALL_LAYOUT[9], ["register", [["programs", "programs"], ["public", "bool"], ["scheme", "scheme"]]]);
  });

  it("has the event table of PROTOCOL.md, network_key_created at 25", () => {
    const rows = tableAfter("**Events** (variant index, JSON name, fields)");
    assert.equal(rows.length, EVENT_LAYOUT.length);
    rows.forEach(([index, name, fields], i) => {
      const [layoutName, layoutFields] = EVENT_LAYOUT[i]!;
      assert.equal(Number(index), i);
      assert.equal(name!.replace(/`/g, ""), layoutName);
      const documented = (fields!.match(/`[^`]*`/g) ?? []).map((f) => f.slice(1, -1)).join(", ").split(", ");
      assert.deepEqual(documented, layoutFields.map(([f, t]) => `${f}: ${t}`), `fields of ${layoutName}`);
    });
    assert.equal(EVENT_LAYOUT[25]![0], "network_key_created");
    // The Rust event's JSON and postcard (variant 25 = 0x19, then the key).
    const json = '{"network_key_created":{"network_key":"0xedc8f4cfd7ec9c81e16c77144a4d1ce0dca0339661df313cceb9203113468fb608"}}';
    const event = withBigInts<Record<string, { network_key: string }>>(parseJson(json));
    assert.equal(keyScheme(event.network_key_created!.network_key), "ed25519");
    const postcard = new PostcardReader(fromHex("0x1921edc8f4cfd7ec9c81e16c77144a4d1ce0dca0339661df313cceb9203113468fb608"));
    assert.equal(Number(postcard.varint()), EVENT_LAYOUT.findIndex(([n]) => n === "network_key_created"));
    assert.equal(toHex(postcard.bytes()), event.network_key_created!.network_key);
    assert.ok(postcard.done());
  });

  it("reads the signer set's scheme keys and confirmations, last in the record", () => {
    const record = PROTOCOL.split("- signer set: `{")[1]!.split("\n- program")[0]!;
    let at = 0;
    for (const field of SIGNER_SET_FIELDS) {
      const found = record.slice(at).search(new RegExp(`(^|[{ ])${field}[:,]`));
      assert.ok(found >= 0, `${field} after the fields before it`);
      at += found + field.length;
    }
    // The Rust signer set's JSON, and its postcard read field by field.
    const ed = EXAMPLES[0]![0] as Hex;
    const bip = EXAMPLES[2]![0] as Hex;
    const json = `{"signers":["${alice.id}"],"threshold":1,"network_key":null,"jump_start":"done","pending_reshare":null,"excluded":[],"disputes":[],"scheme_keys":["${ed}"],"scheme_confirmations":[["${alice.id}","${bip}"]]}`;
    const set = withBigInts<SignerSet>(parseJson(json));
    assert.deepEqual(Object.keys(set), SIGNER_SET_FIELDS);
    assert.deepEqual(set.scheme_keys, [ed]);
    assert.deepEqual(set.scheme_confirmations, [[alice.id, bip]]);
    assert.equal(networkKeyOf(set, "ed25519"), ed);
    assert.equal(networkKeyOf(set, "bip340"), null);
    assert.equal(networkKeyOf(set, "ecdsa-secp256k1"), null);
    assert.equal(networkKeyOf({ ...set, scheme_keys: [ed, bip] }, "bip340"), bip);
    const r = new PostcardReader(
      fromHex(`0x0120${alice.id.slice(2)}0100020000000121${ed.slice(2)}0120${alice.id.slice(2)}21${bip.slice(2)}`),
    );
    assert.equal(r.varint(), 1n);
    assert.equal(toHex(r.bytes()), alice.id);
    assert.equal(r.varint(), 1n); // threshold
    assert.equal(r.u8(), 0); // network_key: none
    assert.equal(r.varint(), 2n); // jump_start: done
    assert.equal(r.u8(), 0); // pending_reshare: none
    assert.equal(r.varint(), 0n); // excluded
    assert.equal(r.varint(), 0n); // disputes
    assert.equal(r.varint(), 1n);
    assert.equal(toHex(r.bytes()), ed);
    assert.equal(r.varint(), 1n);
    assert.equal(toHex(r.bytes()), alice.id);
    assert.equal(toHex(r.bytes()), bip);
    assert.ok(r.done());
  });

  it("reads a pending reshare's scheme keys and confirmations, last in its record", () => {
    const record = PROTOCOL.split("- signer set: `{")[1]!.split("\n- program")[0]!;
    const reshare = record.split("pending_reshare:")[1]!.split("}?")[0]!;
    let at = 0;
    for (const field of PENDING_RESHARE_FIELDS) {
      const found = reshare.slice(at).search(new RegExp(`(^|[{ ])${field}[:,]`));
      assert.ok(found >= 0, `${field} after the fields before it`);
      at += found + field.length;
    }
    // The Rust record's JSON (`sigil-ledger-api`'s `resharing_set`), and its postcard.
    const ed = EXAMPLES[0]![0] as Hex;
    const a = alice.id;
    const json = `{"signers":["${a}"],"threshold":2,"network_key":null,"jump_start":"done","pending_reshare":{"started":5,"old_signers":["${a}"],"new_signers":["${a}"],"new_threshold":2,"confirmations":["${a}"],"scheme_keys":["${ed}"],"scheme_confirmations":[["${a}","${ed}"]]},"excluded":[],"disputes":[],"scheme_keys":["${ed}"],"scheme_confirmations":[]}`;
    const set = withBigInts<SignerSet>(parseJson(json));
    const pending = set.pending_reshare!;
    assert.deepEqual(Object.keys(pending), PENDING_RESHARE_FIELDS);
    assert.equal(pending.started, 5n);
    assert.deepEqual(pending.scheme_keys, [ed]);
    assert.deepEqual(pending.scheme_confirmations, [[a, ed]]);
    const id = a.slice(2);
    const r = new PostcardReader(
      fromHex(
        `0x0120${id}0200020105` + `0120${id}0120${id}020120${id}0121${ed.slice(2)}0120${id}21${ed.slice(2)}` + `00000121${ed.slice(2)}00`,
      ),
    );
    assert.equal(r.varint(), 1n);
    assert.equal(toHex(r.bytes()), a);
    assert.equal(r.varint(), 2n); // threshold
    assert.equal(r.u8(), 0); // network_key: none
    assert.equal(r.varint(), 2n); // jump_start: done
    assert.equal(r.u8(), 1); // pending_reshare: some
    assert.equal(r.varint(), 5n); // started
    for (let i = 0; i < 2; i++) {
      // old_signers, then new_signers
      assert.equal(r.varint(), 1n);
      assert.equal(toHex(r.bytes()), a);
    }
    assert.equal(r.varint(), 2n); // new_threshold
    assert.equal(r.varint(), 1n); // confirmations
    assert.equal(toHex(r.bytes()), a);
    assert.equal(r.varint(), 1n); // scheme_keys
    assert.equal(toHex(r.bytes()), ed);
    assert.equal(r.varint(), 1n); // scheme_confirmations
    assert.equal(toHex(r.bytes()), a);
    assert.equal(toHex(r.bytes()), ed);
    assert.equal(r.varint(), 0n); // excluded
    assert.equal(r.varint(), 0n); // disputes
    assert.equal(r.varint(), 1n); // the set's scheme_keys
    assert.equal(toHex(r.bytes()), ed);
    assert.equal(r.varint(), 0n); // the set's scheme_confirmations
    assert.ok(r.done());
  });
});
