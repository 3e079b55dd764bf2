/** The postcard encoder and transactions against PROTOCOL.md §4.1/§4.4. */

import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  Account,
  CALL_LAYOUT,
  type Call,
  PostcardReader,
  PostcardWriter,
  callJson,
  concat,
  encodeTransaction,
  fromHex,
  programId,
  signTransaction,
  stringifyJson,
  toHex,
  transactionSigningPayload,
  varint,
  verifyEd25519,
} from "../src/index.js";
import { PROTOCOL, tableAfter } from "./doc.js";

describe("postcard", () => {
  it("writes varints as LEB128 and reads them back", () => {
    const cases: Array<[bigint, string]> = [
      [0n, "00"],
      [1n, "01"],
      [127n, "7f"],
      [128n, "8001"],
      [300n, "ac02"],
      [5000n, "8827"],
      [16384n, "808001"],
      [(1n << 32n) - 1n, "ffffffff0f"],
      [(1n << 64n) - 1n, "ffffffffffffffffff01"],
    ];
    for (const [n, hex] of cases) {
      assert.equal(toHex(varint(n)), `0x${hex}`, `varint(${n})`);
      assert.equal(new PostcardReader(fromHex(hex)).varint(), n);
    }
    assert.throws(() => varint(1n << 64n), RangeError);
    assert.throws(() => varint(-1), RangeError);
  });

  it("writes byte strings, strings, bools, options and sequences", () => {
    const w = new PostcardWriter()
      .bytes(fromHex("0xaabb"))
      .string("hé")
      .bool(true)
      .option(null, () => undefined)
      .option(5, (w, v) => w.varint(v))
      .seq(["a", "b"], (w, s) => w.string(s));
    assert.equal(toHex(w.finish()), "0x02aabb0368c3a901000105020161016" + "2");
    const long = new Uint8Array(200);
    assert.deepEqual(new PostcardWriter().bytes(long).finish().subarray(0, 2), Uint8Array.of(0xc8, 0x01));
  });
});

describe("transactions (PROTOCOL.md §4.4)", () => {
  const alice = Account.dev("alice");
  const bob = Account.dev("bob");

  it("encodes the worked transfer example byte for byte", () => {
    assert.ok(PROTOCOL.includes("0x20 ‖ to(32) ‖ 0x88 0x27 (5000 as a varint)"));
    const call: Call = { transfer: { to: bob.id, amount: 5000n } };
    const expected = concat(Uint8Array.of(0x20), alice.publicKey, Uint8Array.of(0x03, 0x00, 0x20), bob.publicKey, Uint8Array.of(0x88, 0x27));
    assert.deepEqual(encodeTransaction({ sender: alice.id, nonce: 3, call }), expected);
    const signed = signTransaction(alice, "sigil-dev", 3, call);
    assert.deepEqual(signed.encoded, concat(expected, Uint8Array.of(0x40), signed.signature));
    const payload = transactionSigningPayload("sigil-dev", signed.tx);
    assert.equal(toHex(payload.subarray(0, 33)), toHex(new TextEncoder().encode("sigil/v1/transaction\x00\x00\x00\x09sigil-dev")));
    assert.ok(verifyEd25519(alice.id, payload, signed.signature));
  });

  it("writes the JSON ledger_submit takes", () => {
    const signed = signTransaction(alice, "sigil-dev", 3, { transfer: { to: bob.id, amount: 5000 } });
    const json = JSON.parse(stringifyJson(signed.json));
    assert.deepEqual(json, {
      tx: { sender: alice.id, nonce: 3, call: { transfer: { to: bob.id, amount: 5000 } } },
      signature: toHex(signed.signature),
    });
    assert.equal(callJson("leave"), "leave");
    assert.deepEqual(callJson({ register: { programs: [{ program: "0x" + "01".repeat(32) }] } }), {
      register: { programs: [{ program: "0x" + "01".repeat(32), config: "0x" }] },
    });
  });

  it("has the call table of PROTOCOL.md: index, name and fields with their types", () => {
    const rows = tableAfter("**Calls** (variant index, JSON name, fields):");
    assert.equal(rows.length, CALL_LAYOUT.length);
    // `scheme` is a string in postcard and JSON; the SDK's type also checks it names a scheme.
    const docType: Record<string, string> = { strings: "[string]", scheme: "string" };
    rows.forEach((cells, i) => {
      const [index, name, fields] = cells as [string, string, string];
      const [layoutName, layoutFields] = CALL_LAYOUT[i]!;
      assert.equal(Number(index), i);
      assert.equal(name.replace(/`/g, ""), layoutName);
      const documented = fields === "—" ? [] : fields.replace(/\s*\(JSON:[^)]*\)/, "").replace(/`/g, "").split(", ");
      assert.deepEqual(
        documented,
        layoutFields.map(([f, t]) => `${f}: ${docType[t] ?? t}`),
        `fields of ${layoutName}`,
      );
    });
  });

  it("encodes every call: register's programs, the ticket and the parameters in order", () => {
    const vk = "0x0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";
    const program = "0x" + "01".repeat(32);
    const register = encodeTransaction({
      sender: alice.id,
      nonce: 0,
      call: { register: { programs: [{ program, config: "0x7b7d" }], public: true } },
    });
    // The scheme follows `public` as a string; left out, it is ecdsa-secp256k1 (PROTOCOL.md §4.4).
    assert.equal(toHex(register.subarray(34)), `0x0901${"20" + "01".repeat(32)}027b7d010f${toHex(new TextEncoder().encode("ecdsa-secp256k1")).slice(2)}`);
    const setPublic = encodeTransaction({ sender: alice.id, nonce: 1, call: { set_public: { verifying_key: vk, public: false } } });
    assert.equal(toHex(setPublic.subarray(33)), `0x011121${vk.slice(2)}00`);
    const authorise = encodeTransaction({ sender: alice.id, nonce: 2, call: { authorise: { verifying_key: vk, account: bob.id } } });
    assert.equal(toHex(authorise.subarray(33)), `0x020f21${vk.slice(2)}20${bob.id.slice(2)}`);
    assert.throws(() => encodeTransaction({ sender: alice.id, nonce: 0, call: { register: { programs: [] } } }), /1 to 5/);
    assert.throws(() => encodeTransaction({ sender: alice.id, nonce: 0, call: { remove_program: { program: "0x01" } } }), /32 bytes/);
    assert.equal(encodeTransaction({ sender: alice.id, nonce: 0, call: "leave" }).at(-1), 4);
  });

  it("computes a program id as §4.1 says", () => {
    const id = programId({ bytecode: "0x0061736d", oracleKeys: ["block-number"] });
    const u32 = (n: number) => [0, 0, 0, n];
    const te = new TextEncoder();
    const preimage = concat(
      te.encode("sigil/v1/program-id"),
      Uint8Array.from([...u32(4), 0x00, 0x61, 0x73, 0x6d, ...u32(0), ...u32(0), ...u32(1), ...u32(12)]),
      te.encode("block-number"),
      Uint8Array.from(u32(1)),
    );
    return import("@noble/hashes/sha2.js").then(({ sha256 }) => assert.equal(id, toHex(sha256(preimage))));
  });
});
