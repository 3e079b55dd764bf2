/**
 * The TypeScript SDK of Sigil, a programmable threshold-signing network.
 *
 * ```ts
 * import { Account, LedgerClient } from "@sigil/sdk";
 * const user = Account.fromPhrase(phrase);
 * const ledger = await LedgerClient.connect("http://127.0.0.1:9944");
 * const programs = [{ program: programId, config: "0x" }];
 * const key = await ledger.register(user, { programs });
 * const sig = await ledger.signMessage(user, key.verifyingKey, "hello"); // verified
 * const sol = await ledger.register(user, { programs, scheme: "ed25519" }); // or "bip340"
 * const raw = await ledger.sign(user, sol.verifyingKey, message, { hashing: "none" });
 * ```
 *
 * Every wire format follows `docs/PROTOCOL.md` of the Sigil repository.
 * @module
 */

export * from "./account.js";
export * from "./bytes.js";
export * from "./committee.js";
export * from "./envelope.js";
export * from "./errors.js";
export * from "./json.js";
export * from "./keys.js";
export * from "./ledger.js";
export * from "./node.js";
export * from "./postcard.js";
export * from "./records.js";
export * from "./request.js";
export * from "./rpc.js";
export * from "./tx.js";
