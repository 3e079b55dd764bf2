/**
 * The SDK against a real `sigil devnet` (2-of-4 fixture shares; eve relays): ledger reads and
 * subscriptions, funding, programs, registration and access, signatures verified with
 * @noble/curves and an EIP-1559 transaction whose sender viem recovers, Ed25519 and BIP-340
 * keys (hashing `none` for Ed25519), and every refusal code a client can provoke, asserted on
 * the typed error.
 */

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import { ed25519 } from "@noble/curves/ed25519.js";
import { schnorr, secp256k1 } from "@noble/curves/secp256k1.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { keccak_256 } from "@noble/hashes/sha3.js";
import { recoverTransactionAddress } from "viem";
import { WebSocket } from "ws";

import {
  Account,
  LedgerClient,
  LedgerError,
  NodeClient,
  NodeError,
  type PreparedRequest,
  UsageError,
  type WebSocketConstructor,
  encodeSignatureRequest,
  fromHex,
  headerHash,
  keyBytes,
  keyScheme,
  randomBytes,
  sealPlaintext,
  signPlaintext,
  signTransaction,
  toHex,
  utf8,
} from "../src/index.js";
import { Devnet, REPO_DIR } from "./devnet.js";

const webSocket = WebSocket as unknown as WebSocketConstructor;
const program = (name: string) => readFileSync(join(REPO_DIR, "programs/dist", `${name}.wasm`));
const config = (value: unknown) => toHex(utf8(JSON.stringify(value)));
/** The address the eth-allowlist key may pay. */
const ALLOWED = "0x000000000000000000000000000000000000dEaD";

/** Asserts that `promise` rejects with a NodeError of `code` (and `status`). */
async function refused(promise: Promise<unknown>, code: string, status?: number): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof NodeError, `expected a NodeError ${code}, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    if (status !== undefined) assert.equal(error.status, status);
    assert.ok(error.known, `${code} is listed in PROTOCOL.md §7.6`);
    return true;
  });
}

/** Asserts that `promise` rejects with a LedgerError of `code`. */
async function ledgerRefused(promise: Promise<unknown>, code: string): Promise<LedgerError> {
  let caught: LedgerError | undefined;
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof LedgerError, `expected a LedgerError ${code}, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    caught = error;
    return true;
  });
  return caught!;
}

describe("against sigil devnet", { timeout: 600_000 }, () => {
  let devnet: Devnet;
  let ledger: LedgerClient;
  let relayer: NodeClient;
  const faucet = Account.dev("faucet");
  const user = Account.generate().account;
  const stranger = Account.generate().account;
  let sizeKey: string; // a key whose program allows messages of at most 64 bytes
  let ethKey: { verifyingKey: string; ethAddress: string }; // a key with eth-allowlist

  before(async () => {
    devnet = await Devnet.start();
    ledger = await LedgerClient.connect(devnet.info.ledgerWs, { webSocket });
    relayer = new NodeClient(devnet.nodes("relayer")[0]!.url);
  });

  after(async () => {
    ledger?.close();
    await devnet?.stop();
  });

  it("reads the ledger over HTTP and websocket, and follows ledger_newHead", async () => {
    const http = await LedgerClient.connect(devnet.info.ledgerHttp);
    assert.equal(await http.chainId(), await ledger.chainId());
    const set = await ledger.signerSet();
    assert.equal(set.network_key, devnet.info.networkKey);
    assert.equal(set.threshold, 2);
    assert.equal(set.signers.length, 4);
    assert.deepEqual((await ledger.relayers()).map((r) => r.account), devnet.nodes("relayer").map((n) => n.account));
    const heads = await ledger.subscribeHeads();
    const first = await heads.next(10_000);
    const second = await heads.next(10_000);
    await heads.close();
    assert.equal(second.height, first.height + 1n);
    assert.equal(second.parent_hash, headerHash(first), "the SDK hashes headers as the ledger does (§4.2)");
    await ledgerRefused(http.subscribeHeads(), "needs_websocket");
    await ledgerRefused(http.rpc.call("ledger_block", [1, 2]), "invalid_params");
    http.close();
  });

  it("funds a user from the faucet: the fee, the balance and the ledger's own transaction hash", async () => {
    const params = await ledger.parameters();
    const before = await ledger.balance(faucet);
    const nonce = await ledger.nextNonce(faucet);
    const signed = signTransaction(faucet, await ledger.chainId(), nonce, { transfer: { to: user.id, amount: 50_000_000n } });
    const result = (await ledger.rpc.call("ledger_submit", [signed.json, true])) as { hash: string; included: number };
    assert.equal(result.hash, signed.hash, "the transaction hash is SHA-256 of our postcard bytes");
    assert.equal(await ledger.txBlock(signed.hash), BigInt(result.included));
    assert.equal(await ledger.balance(faucet), before - 50_000_000n - params.transaction_fee);
    const events = await ledger.subscribeEvents({ accounts: [stranger.id], names: ["transferred"] });
    await ledger.transfer(faucet, stranger, 5_000_000n);
    const note = await events.next(10_000);
    await events.close();
    assert.equal((note.event.transferred as { to: string }).to, stranger.id);
    assert.deepEqual(await ledger.account(user), { balance: 50_000_000n, nonce: 0n, reserved: 0n });
  });

  it("refuses transactions with the ledger's codes", async () => {
    const broke = Account.generate().account;
    await ledgerRefused(ledger.transfer(broke, user, 1), "insufficient_balance");
    await ledgerRefused(ledger.submit(user, { transfer: { to: stranger.id, amount: 1 } }, { nonce: 99 }), "bad_nonce");
  });

  it("stores programs and registers keys whose verifying key and address it derives itself", async () => {
    const size = await ledger.storeProgram(user, { bytecode: program("message-size") });
    assert.ok(size.stored);
    assert.deepEqual(await ledger.storeProgram(user, { bytecode: program("message-size") }), { programId: size.programId, stored: false });
    const key = await ledger.register(user, { programs: [{ program: size.programId, config: config({ max_length: 64 }) }] });
    sizeKey = key.verifyingKey;
    const read = await ledger.keyOf(sizeKey);
    assert.equal(read.ethAddress, key.ethAddress);
    assert.equal(read.registration.owner, user.id);
    assert.equal(read.registration.public, false);
    const allowlist = await ledger.storeProgram(user, { bytecode: program("eth-allowlist") });
    ethKey = await ledger.register(user, {
      programs: [{ program: allowlist.programId, config: config({ allow: [ALLOWED], max_value: "1000000000000000000", chain_id: 1 }) }],
    });
    const account = await ledger.account(user);
    assert.ok(account.reserved >= 2_000_000n, "each key holds the registration deposit");
  });

  it("signs a message; @noble/curves verifies the signature against the key", async () => {
    const message = utf8("hello from TypeScript");
    const signed = await ledger.sign(user, sizeKey, message);
    const hash = keccak_256(message);
    assert.equal(signed.message_hash, toHex(hash));
    const compact = fromHex(signed.signature).subarray(0, 64);
    assert.ok(secp256k1.verify(compact, hash, fromHex(sizeKey), { prehash: false }));
    assert.equal(signed.committee.length, 2);
    const status = await relayer.signatureStatus(signed.request_id);
    assert.equal(status.status, "done");
    assert.equal(status.result?.signature, signed.signature);
    const polled = await ledger.waitForSignature(relayer, signed.request_id);
    assert.equal(polled.signature, signed.signature);
  });

  it("signs a 32-byte hash as it is", async () => {
    const hash = randomBytes(32);
    const signed = await ledger.signHash(user, sizeKey, hash, { relayer: devnet.nodes("relayer")[0]!.url });
    assert.equal(signed.message_hash, toHex(hash));
    assert.ok(secp256k1.verify(fromHex(signed.signature).subarray(0, 64), hash, fromHex(sizeKey), { prehash: false }));
  });

  it("signs an EIP-1559 transaction whose sender viem recovers as the derived address", async () => {
    const tx = {
      chainId: 1,
      nonce: 0,
      maxPriorityFeePerGas: 1_000_000_000n,
      maxFeePerGas: 30_000_000_000n,
      gas: 21_000n,
      to: ALLOWED,
      value: 10_000_000_000_000_000n,
    } as const;
    const signed = await ledger.signEip1559(user, ethKey.verifyingKey, tx);
    assert.equal(signed.from, ethKey.ethAddress);
    assert.equal(await recoverTransactionAddress({ serializedTransaction: signed.raw }), ethKey.ethAddress);
    await refused(ledger.signEip1559(user, ethKey.verifyingKey, { ...tx, to: "0x000000000000000000000000000000000000bEEF" }), "program_denied", 403);
  });

  it("registers Ed25519 and BIP-340 keys from the schemes' network keys and signs with them", async () => {
    const set = await ledger.signerSet();
    assert.deepEqual(set.scheme_keys.map((key) => keyScheme(key)), ["ed25519", "bip340"], "the devnet waits for every scheme's key");
    assert.deepEqual(set.scheme_confirmations, []);
    const { programId } = await ledger.storeProgram(user, { bytecode: program("message-size") });
    const programs = [{ program: programId, config: config({ max_length: 64 }) }];
    const message = utf8("a message for another chain");

    // Ed25519: the tagged key, its Solana address; `none` signs the message itself.
    const ed = await ledger.register(user, { programs, scheme: "ed25519" });
    assert.equal(ed.scheme, "ed25519");
    assert.match(ed.verifyingKey, /^0xed[0-9a-f]{64}$/);
    assert.equal(ed.address.chain, "solana");
    assert.equal(ed.ethAddress, undefined);
    const read = await ledger.keyOf(ed.verifyingKey);
    assert.deepEqual([read.scheme, read.address], ["ed25519", ed.address]);
    const whole = await ledger.sign(user, ed.verifyingKey, message, { hashing: "none" });
    assert.equal(whole.scheme, "ed25519");
    assert.equal(fromHex(whole.signature).length, 64);
    assert.equal(whole.message_hash, toHex(sha256(message)), "the message hash of none is its SHA-256");
    assert.ok(ed25519.verify(fromHex(whole.signature), message, keyBytes(ed.verifyingKey)));
    const hashed = await ledger.sign(user, ed.verifyingKey, message, { hashing: "sha256" });
    assert.ok(ed25519.verify(fromHex(hashed.signature), sha256(message), keyBytes(ed.verifyingKey)));

    // BIP-340: the Taproot output key and address; signs the 32-byte prehash.
    const bip = await ledger.register(user, { programs, scheme: "bip340" });
    assert.match(bip.verifyingKey, /^0x54[0-9a-f]{64}$/);
    assert.equal(bip.address.chain, "taproot");
    assert.match(bip.address.text, /^bc1p/);
    const signed = await ledger.sign(user, bip.verifyingKey, message);
    assert.equal(signed.scheme, "bip340");
    assert.ok(schnorr.verify(fromHex(signed.signature), keccak_256(message), keyBytes(bip.verifyingKey)));

    // `none` is for Ed25519 keys only: the SDK refuses it as the node does.
    await assert.rejects(
      ledger.sign(user, bip.verifyingKey, message, { hashing: "none" }),
      (e: unknown) => e instanceof UsageError && e.code === "bad_message_for_hash",
    );
    const info = await relayer.info();
    const payload = encodeSignatureRequest({
      verifyingKey: bip.verifyingKey,
      block: (await ledger.head()).height,
      hashing: "none",
      auxData: [new Uint8Array()],
      message,
    });
    const plaintext = signPlaintext(user, { recipient: info.x25519, payload });
    await refused(relayer.relay(await sealPlaintext(plaintext.bytes, info.x25519)), "bad_message_for_hash", 400);
    await assert.rejects(
      ledger.signEip1559(user, ed.verifyingKey, { chainId: 1, nonce: 0, gas: 21_000n, maxFeePerGas: 1n, maxPriorityFeePerGas: 1n, to: ALLOWED }),
      UsageError,
    );
  });

  it("lets only the owner and authorised accounts sign until the key is public", async () => {
    await refused(ledger.signMessage(stranger, sizeKey, "let me"), "not_authorised", 403);
    await ledgerRefused(ledger.authorise(stranger, sizeKey, stranger), "unauthorised");
    await ledger.authorise(user, sizeKey, stranger);
    assert.deepEqual((await ledger.registration(sizeKey))?.authorised, [stranger.id]);
    await ledger.signMessage(stranger, sizeKey, "authorised");
    await ledger.deauthorise(user, sizeKey, stranger);
    await refused(ledger.signMessage(stranger, sizeKey, "again"), "not_authorised");
    await ledger.setPublic(user, sizeKey, true);
    await ledger.signMessage(stranger, sizeKey, "public now");
    await ledger.setPublic(user, sizeKey, false);
  });

  it("passes on each refusal of a request with its code", async () => {
    const relayerUrl = devnet.nodes("relayer")[0]!.url;
    const prepare = (options = {}, message: Uint8Array = utf8("x")) =>
      ledger.prepareSign(user, sizeKey, message, { relayer: relayerUrl, ...options });
    const send = (p: PreparedRequest) => ledger.sendPrepared(p);
    const head = (await ledger.head()).height;

    await refused(ledger.sign(user, sizeKey, new Uint8Array(65)), "program_denied", 403);
    await refused(send(await prepare({ timestampMs: Date.now() - 200_000 })), "expired", 400);
    await refused(send(await prepare({ timestampMs: Date.now() + 120_000 })), "from_the_future", 400);
    await refused(send(await prepare({ block: head + 1000n })), "unknown_block", 400);
    await refused(send(await prepare({ block: head > 25n ? head - 25n : 0n })), "stale_block", 400);
    await refused(ledger.sign(user, toHex(secp256k1.getPublicKey(secp256k1.utils.randomSecretKey(), true)), utf8("x"), { auxData: [] }), "unregistered_key", 404);
    await refused(send(await prepare({ auxData: [] })), "aux_data_mismatch", 400);
    await refused(send(await prepare({ hashing: "custom:3" })), "bad_hash_index", 400);
    await refused(send(await prepare({ hashing: "identity" }, utf8("not 32 bytes"))), "bad_message_for_hash", 400);
    await refused(send(await prepare({}, new Uint8Array(1_048_577))), "message_too_large", 413);
    const signer = devnet.nodes("signer")[0]!;
    await refused(ledger.signMessage(user, sizeKey, "x", { relayer: signer.url }), "not_a_relayer", 403);

    // The same envelope twice.
    const once = await prepare();
    await send(once);
    await refused(send(once), "replayed", 409);

    // Envelopes altered on the way.
    const base = await prepare();
    const to = (envelope: object) => relayer.post("/v1/relay", JSON.stringify(envelope));
    await refused(to({ ...base.envelope, version: 2 }), "unsupported_version", 400);
    await refused(to({ ...base.envelope, recipient: toHex(randomBytes(32)) }), "wrong_recipient", 400);
    const ct = fromHex(base.envelope.ciphertext);
    ct[3]! ^= 1;
    await refused(to({ ...base.envelope, ciphertext: toHex(ct) }), "decryption_failed", 400);
    const x25519 = base.relayerRecord.x25519;
    await refused(to(await sealPlaintext(randomBytes(50), x25519)), "malformed_envelope", 400);
    const forged = base.plaintext.bytes.slice();
    forged[forged.length - 1]! ^= 1;
    await refused(to(await sealPlaintext(forged, x25519)), "bad_signature", 401);
    const elsewhere = signPlaintext(user, { recipient: randomBytes(32), payload: utf8("x") });
    await refused(to(await sealPlaintext(elsewhere.bytes, x25519)), "recipient_mismatch", 400);
    const garbage = signPlaintext(user, { recipient: x25519, payload: utf8("not a request") });
    await refused(to(await sealPlaintext(garbage.bytes, x25519)), "malformed_request", 400);
    await refused(to({ ...base.envelope, extra: 1 }), "malformed_envelope", 400);
    await refused(relayer.post("/v1/relay", JSON.stringify(base.envelope), "text/plain"), "unsupported_media_type", 415);

    // Routes and methods.
    await refused(relayer.get("/v1/relay"), "method_not_allowed", 405);
    await refused(relayer.get("/v1/nowhere"), "not_found", 404);
    await refused(relayer.get("/v1/ws"), "not_a_websocket", 400);

    // Reading results.
    await refused(relayer.signatureStatus(toHex(randomBytes(32))), "unknown_request", 404);
    await refused(relayer.signatureStatus("0x1234"), "bad_request_id", 400);
  });

  it("rate-limits a key per block (request_limit)", async () => {
    const limit = (await ledger.parameters()).request_limit;
    const block = (await ledger.head()).height;
    const requests = await Promise.all(
      Array.from({ length: limit + 2 }, (_, i) => ledger.prepareSign(user, sizeKey, utf8(`burst ${i}`), { block, checkCommittee: false })),
    );
    const outcomes = await Promise.allSettled(requests.map((p) => ledger.sendPrepared(p)));
    const limited = outcomes.filter((o) => o.status === "rejected" && o.reason instanceof NodeError && o.reason.code === "rate_limited");
    const signed = outcomes.filter((o) => o.status === "fulfilled");
    assert.ok(limited.length >= 2, `expected at least 2 rate_limited, got ${outcomes.map((o) => (o.status === "fulfilled" ? "signed" : String(o.reason))).join(", ")}`);
    assert.equal(limited.length + signed.length, outcomes.length);
    assert.ok(signed.length <= limit);
  });
});
