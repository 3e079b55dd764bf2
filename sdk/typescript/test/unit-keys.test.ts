/** Accounts, user keys, hashing and the devnet output parser, with no network. */

import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { secp256k1 } from "@noble/curves/secp256k1.js";
import { HDKey } from "@scure/bip32";

import {
  Account,
  LedgerError,
  NodeError,
  attestationPayload,
  deriveVerifyingKey,
  encodeSignatureRequest,
  ethAddress,
  formatPath,
  headerHash,
  messageHash,
  networkChainCode,
  parseJson,
  parsePath,
  registrationPath,
  selectCommittee,
  stringifyJson,
  toHex,
  verifyEcdsa,
} from "../src/index.js";
import { parseDevnetOutput } from "./devnet.js";
import { PROTOCOL } from "./doc.js";

describe("accounts (PROTOCOL.md §2)", () => {
  it("derives the documented account from the abandon…about phrase and the dev accounts", () => {
    const phrase = `${"abandon ".repeat(11)}about`;
    const documented = /gives account `(0x[0-9a-f]{64})`/.exec(PROTOCOL)![1];
    assert.equal(Account.fromPhrase(phrase).id, documented);
    assert.equal(Account.fromPhrase(`  ${phrase.toUpperCase()} `).id, documented);
    assert.ok(PROTOCOL.includes(`\`alice\` is account \`${Account.dev("alice").id}\``));
    assert.throws(() => Account.fromPhrase("abandon abandon"), (e: { code?: string }) => e.code === "invalid_phrase");
    const { account, phrase: fresh } = Account.generate();
    assert.equal(Account.fromPhrase(fresh).id, account.id);
    assert.equal(JSON.stringify({ account }), `{"account":"${account.id}"}`);
  });
});

describe("user keys (PROTOCOL.md §2, §4.1)", () => {
  const secret = secp256k1.utils.randomSecretKey();
  const networkKey = toHex(secp256k1.getPublicKey(secret, true));

  it("derives like BIP-32 CKDpub, matching the private derivation", () => {
    const path = [5, 0x7fffffff, 0, 123456];
    const privateRoot = new HDKey({ privateKey: secret, chainCode: networkChainCode(networkKey) });
    const child = privateRoot.derive(formatPath(path));
    assert.equal(deriveVerifyingKey(networkKey, path), toHex(child.publicKey!));
    assert.equal(deriveVerifyingKey(networkKey, formatPath(path)), toHex(child.publicKey!));
    assert.throws(() => parsePath("m/1'/2"));
    assert.throws(() => parsePath("m/2147483648"));
  });

  it("computes the registration path of §4.1", async () => {
    const { sha256 } = await import("@noble/hashes/sha2.js");
    const owner = Account.dev("bob");
    const path = registrationPath("sigil-dev", owner.id, 7);
    const te = new TextEncoder();
    const digest = sha256(new Uint8Array([...te.encode("sigil/v1/registration-path"), ...te.encode("sigil-dev"), ...owner.publicKey, 0, 0, 0, 0, 0, 0, 0, 7]));
    assert.equal(path.length, 8);
    assert.equal(path[0], ((digest[0]! << 24) | (digest[1]! << 16) | (digest[2]! << 8) | digest[3]!) & 0x7fffffff);
    assert.ok(path.every((i) => i < 0x80000000));
  });

  it("gives the Ethereum address of a known key", () => {
    // The secp256k1 generator's address, as Ethereum tooling computes it for secret key 1.
    assert.equal(ethAddress("0x0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"), "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf");
  });

  it("verifies r ‖ s ‖ v: low s, the y-parity that recovers the key", () => {
    const hash = messageHash("keccak256", new TextEncoder().encode("hello"))!;
    const sig = secp256k1.Signature.fromBytes(secp256k1.sign(hash, secret, { prehash: false }), "compact");
    const recovery = [0, 1].find((v) => toHex(sig.addRecoveryBit(v).recoverPublicKey(hash).toBytes(true)) === networkKey)!;
    const rsv = new Uint8Array([...sig.toBytes("compact"), recovery]);
    assert.ok(verifyEcdsa(networkKey, hash, rsv));
    const wrongV = rsv.slice();
    wrongV[64] = 1 - recovery;
    assert.ok(!verifyEcdsa(networkKey, hash, wrongV));
    const n = secp256k1.Point.CURVE().n;
    const highS = new Uint8Array([...sig.toBytes("compact").subarray(0, 32), ...secp256k1.Point.Fn.toBytes(n - sig.s), 1 - recovery]);
    assert.ok(!verifyEcdsa(networkKey, hash, highS));
  });
});

describe("requests (PROTOCOL.md §1, §7.1, §7.4)", () => {
  it("hashes with each built-in algorithm", () => {
    const m = new TextEncoder().encode("abc");
    assert.equal(toHex(messageHash("sha256", m)!), "0xba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert.equal(toHex(messageHash("keccak256", m)!), "0x4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45");
    assert.equal(toHex(messageHash("sha3-256", m)!), "0x3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532");
    assert.equal(toHex(messageHash("blake2b-256", m)!), "0xbddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319");
    assert.equal(messageHash("custom:2", m), undefined);
    assert.throws(() => messageHash("identity", m), (e: { code?: string }) => e.code === "bad_message_for_hash");
  });

  it("encodes the §7.1 payload", () => {
    const vk = "0x0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";
    const bytes = encodeSignatureRequest({ verifyingKey: vk, block: 258, hashing: "custom:3", auxData: ["0xaa", new Uint8Array()], message: Uint8Array.of(1, 2) });
    assert.deepEqual(bytes.subarray(0, 34), new Uint8Array([1, ...secp256k1.Point.fromHex(vk.slice(2)).toBytes(true)]));
    assert.equal(bytes.length, 1 + 33 + 8 + 1 + 1 + (4 + 1) + 4 + (4 + 2));
    assert.deepEqual(bytes.subarray(34, 44), Uint8Array.of(0, 0, 0, 0, 0, 0, 1, 2, 0x83, 2));
    assert.deepEqual(bytes.subarray(44), Uint8Array.of(0, 0, 0, 1, 0xaa, 0, 0, 0, 0, 0, 0, 0, 2, 1, 2));
    assert.equal(attestationPayload(new Uint8Array(32), vk, new Uint8Array(32), new Uint8Array(65)).length, 20 + 32 + 33 + 32 + 65);
  });

  it("selects a committee deterministically, as a sorted set", () => {
    const signers = ["alice", "bob", "charlie", "dave"].map((n) => Account.dev(n).id);
    const params = { signers, threshold: 2, blockHash: new Uint8Array(32), requestDigest: new Uint8Array(32).fill(1), attempt: 0 };
    const committee = selectCommittee(params)!;
    assert.equal(committee.length, 2);
    assert.deepEqual(committee, [...committee].sort());
    assert.deepEqual(selectCommittee({ ...params, signers: [...signers].reverse() }), committee);
    assert.ok(!selectCommittee({ ...params, leftOut: committee })!.some((s) => committee.includes(s)));
    assert.equal(selectCommittee({ ...params, leftOut: signers.slice(1) }), undefined);
    const header = { height: 1n, parent_hash: toHex(new Uint8Array(32)), timestamp_ms: 2n, body_hash: toHex(new Uint8Array(32)), state_digest: toHex(new Uint8Array(32)) };
    assert.match(headerHash(header), /^0x[0-9a-f]{64}$/);
  });
});

describe("errors and JSON", () => {
  it("reads a ledger error 1000's reason code and block", () => {
    const e = new LedgerError(1000, "call failed in block 12 (fee paid): not the owner", { code: "unauthorised", message: "not the owner", included: 12 });
    assert.equal(e.code, "unauthorised");
    assert.equal(e.included, 12n);
    assert.equal(new LedgerError(-32602, "invalid params").code, "invalid_params");
    const n = new NodeError(403, "not_authorised", "no", "http://x");
    assert.ok(n.known && !n.retryable);
    assert.ok(!new NodeError(500, "brand_new", "", "x").known);
  });

  it("keeps u64 values exact", () => {
    const parsed = parseJson('{"a": 18446744073709551615, "b": 5, "c": "12345678901234567890", "d": [9007199254740993]}') as Record<string, unknown>;
    assert.equal(parsed.a, "18446744073709551615");
    assert.equal(parsed.b, 5);
    assert.equal(parsed.c, "12345678901234567890");
    assert.deepEqual(parsed.d, ["9007199254740993"]);
    assert.equal(stringifyJson({ x: 18446744073709551615n, y: "0x1" }), '{"x":18446744073709551615,"y":"0x1"}');
  });

  it("parses sigil devnet's summary, skipping lines it does not know", () => {
    const out = [
      "devnet ready in 2.5s",
      "ledger       ws://127.0.0.1:45905",
      "data         /tmp/x",
      "network key  0x0289265ceb52942ae6bb03a87eb08208b7a67512ad1344fd319a781c1bf55e8f18",
      "threshold    2 of 4 signers",
      "replica alice http://127.0.0.1:1234 pid 42",
      "",
      "  NAME      ROLE     ACCOUNT   ENDPOINT         LOG",
      `  alice     signer   ${Account.dev("alice").id}  127.0.0.1:44887  /tmp/x/alice.log`,
      `  eve       relayer  ${Account.dev("eve").id}  127.0.0.1:40811  /tmp/x/eve.log`,
      "",
      "Press Ctrl-C to stop.",
    ].join("\n");
    const info = parseDevnetOutput(out);
    assert.ok(info.ready);
    assert.equal(info.ledgerWs, "ws://127.0.0.1:45905");
    assert.equal(info.ledgerHttp, "http://127.0.0.1:45905");
    assert.equal(info.nodes!.length, 2);
    assert.equal(info.nodes![1]!.role, "relayer");
    assert.equal(info.nodes![1]!.url, "http://127.0.0.1:40811");
  });
});
