/**
 * Signs and verifies against a running `sigil devnet`:
 *
 *   sigil devnet --signers 4 --dev-key-shares crates/mpc/fixtures/2-of-4     # terminal 1
 *   npm run example -- --ledger ws://127.0.0.1:PORT [--relayer http://127.0.0.1:PORT]
 *
 * A fresh user is funded by the dev faucet, stores the `message-size` program, registers a key,
 * has the network sign a message (verified here with @noble/curves) and an EIP-1559
 * transaction (whose sender viem recovers), and prints what it got.
 */

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";

import { secp256k1 } from "@noble/curves/secp256k1.js";
import { keccak_256 } from "@noble/hashes/sha3.js";
import { recoverTransactionAddress } from "viem";
import { WebSocket } from "ws";

import { Account, LedgerClient, type WebSocketConstructor, fromHex, toHex, utf8 } from "../src/index.js";
import { REPO_DIR } from "../test/devnet.js";

const { values } = parseArgs({
  options: {
    ledger: { type: "string" },
    relayer: { type: "string" },
    phrase: { type: "string" },
  },
});
if (!values.ledger) {
  console.error("usage: npm run example -- --ledger ws://HOST:PORT [--relayer http://HOST:PORT] [--phrase '…']");
  process.exit(2);
}

const ledger = await LedgerClient.connect(values.ledger, { webSocket: WebSocket as unknown as WebSocketConstructor });
const relayer = values.relayer ? { relayer: values.relayer } : {};
const user = values.phrase ? Account.fromPhrase(values.phrase) : Account.generate().account;
console.log(`user        ${user.id}`);

// Fund the user from the dev faucet (dev ledgers only).
if ((await ledger.balance(user)) < 10_000_000n) await ledger.transfer(Account.dev("faucet"), user, 10_000_000n);
console.log(`balance     ${await ledger.balance(user)}`);

// A program and a key.
const bytecode = readFileSync(join(REPO_DIR, "programs/dist/message-size.wasm"));
const { programId } = await ledger.storeProgram(user, { bytecode });
const key = await ledger.register(user, { programs: [{ program: programId, config: toHex(utf8('{"max_length": 1024}')) }] });
console.log(`key         ${key.verifyingKey} (${key.derivationPath})`);
console.log(`eth address ${key.ethAddress}`);

// A message, verified again here with @noble/curves.
const message = "hello from the TypeScript SDK";
const signed = await ledger.signMessage(user, key.verifyingKey, message, relayer);
const ok = secp256k1.verify(fromHex(signed.signature).subarray(0, 64), keccak_256(utf8(message)), fromHex(key.verifyingKey), {
  prehash: false,
});
console.log(`signature   ${signed.signature} (committee ${signed.committee.length}, verified: ${ok})`);

// An EIP-1559 transaction; viem recovers its sender.
const tx = await ledger.signEip1559(
  user,
  key.verifyingKey,
  { chainId: 1, nonce: 0, maxPriorityFeePerGas: 1_000_000_000n, maxFeePerGas: 30_000_000_000n, gas: 21_000n, to: "0x000000000000000000000000000000000000dEaD", value: 1n },
  relayer,
);
const sender = await recoverTransactionAddress({ serializedTransaction: tx.raw });
console.log(`eth tx      ${tx.hash} from ${sender} (matches the key: ${sender === key.ethAddress})`);
ledger.close();
if (!ok || sender !== key.ethAddress) process.exit(1);
