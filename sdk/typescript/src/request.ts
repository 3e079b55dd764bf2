/**
 * Signature requests (PROTOCOL.md §1 hashing algorithms, §7.1 the request payload, §7.4
 * derived values), and what each key scheme signs of a request.
 * @module
 */

import { blake2b } from "@noble/hashes/blake2.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { keccak_256, sha3_256 } from "@noble/hashes/sha3.js";

import { concat, toBytes, u32be, u64be, utf8 } from "./bytes.js";
import { UsageError } from "./errors.js";
import { keyScheme } from "./keys.js";

/**
 * A hashing algorithm (PROTOCOL.md §1): how the message becomes the 32-byte prehash that is
 * signed. `none` signs the message itself (Ed25519 keys only; its "message hash" in answers and
 * attestations is the SHA-256 of the message).
 */
export type HashingAlgorithm =
  | "keccak256"
  | "sha256"
  | "sha3-256"
  | "blake2b-256"
  | "identity"
  | "none"
  | `custom:${0 | 1 | 2 | 3 | 4}`;

/** The most programs a key may have (and so auxiliary data items a request carries). */
export const MAX_PROGRAMS_PER_KEY = 5;
/** The largest message a request may carry (1 MiB). */
export const MAX_MESSAGE_SIZE = 1_048_576;

/** The request's hashing byte (§7.1): 0…5 built in (5 `none`), `0x80 | N` for `custom:N`. */
export function hashingCode(algorithm: HashingAlgorithm): number {
  switch (algorithm) {
    case "keccak256":
      return 0;
    case "sha256":
      return 1;
    case "sha3-256":
      return 2;
    case "blake2b-256":
      return 3;
    case "identity":
      return 4;
    case "none":
      return 5;
    default: {
      const match = /^custom:(\d)$/.exec(algorithm);
      const index = match ? Number(match[1]) : NaN;
      if (!(index < MAX_PROGRAMS_PER_KEY)) throw new UsageError(`unknown hashing algorithm ${algorithm}`);
      return 0x80 | index;
    }
  }
}

/**
 * The 32-byte "message hash" of `message` under a built-in algorithm, as answers and
 * attestations carry it; `undefined` for `custom:N` (a program computes it). `identity` needs
 * exactly 32 bytes; for `none` it is the SHA-256 of the message (which is signed as it is:
 * see {@link signedBytes}).
 */
export function messageHash(algorithm: HashingAlgorithm, message: Uint8Array): Uint8Array | undefined {
  switch (algorithm) {
    case "keccak256":
      return keccak_256(message);
    case "sha256":
    case "none":
      return sha256(message);
    case "sha3-256":
      return sha3_256(message);
    case "blake2b-256":
      return blake2b(message, { dkLen: 32 });
    case "identity":
      if (message.length !== 32) throw new UsageError("identity hashing needs a 32-byte message", "bad_message_for_hash");
      return message;
    default:
      hashingCode(algorithm);
      return undefined;
  }
}

/**
 * Checks that `hashing` suits the key's scheme, as a node does before anything else of the
 * message (PROTOCOL.md §7.3, common check 8): `none` signs the message itself, which only
 * Ed25519 keys do. Throws a {@link UsageError} with the node's code, `bad_message_for_hash`.
 */
export function checkHashingForKey(hashing: HashingAlgorithm, verifyingKey: Uint8Array | string): void {
  const scheme = keyScheme(verifyingKey);
  if (hashing === "none" && scheme !== "ed25519") {
    throw new UsageError(
      `hashing none signs the message itself, which only ed25519 keys do; a ${scheme} key signs a 32-byte hash (use identity for a ready hash)`,
      "bad_message_for_hash",
    );
  }
}

/**
 * The bytes a key signs for a request (PROTOCOL.md §7.4): the message itself for hashing
 * `none`, otherwise the 32-byte message hash.
 */
export function signedBytes(hashing: HashingAlgorithm, message: Uint8Array, messageHash: Uint8Array | string): Uint8Array {
  return hashing === "none" ? message : toBytes(messageHash, 32, "message hash");
}

/** What a user asks a relayer to sign (the payload of PROTOCOL.md §7.1). */
export interface SignatureRequest {
  /** The registered key (33 bytes, any scheme's tag). */
  verifyingKey: Uint8Array | string;
  /** A recent block number (the head, usually). */
  block: bigint | number;
  /** How the message is hashed. */
  hashing: HashingAlgorithm;
  /** One auxiliary data item per program of the key, in program order. */
  auxData: Array<Uint8Array | string>;
  /** The message (at most 1 MiB). */
  message: Uint8Array;
}

/**
 * The request payload (§7.1): `0x01 ‖ vk(33) ‖ block u64 BE ‖ hashing(1) ‖ A(1) ‖
 * (len u32 BE ‖ aux)* ‖ len u32 BE ‖ message`.
 */
export function encodeSignatureRequest(request: SignatureRequest): Uint8Array {
  if (request.auxData.length > 255) throw new UsageError("too many auxiliary data items");
  const aux = request.auxData.map((item) => {
    const bytes = toBytes(item, undefined, "auxiliary data");
    return concat(u32be(bytes.length), bytes);
  });
  return concat(
    Uint8Array.of(1),
    toBytes(request.verifyingKey, 33, "verifying key"),
    u64be(request.block),
    Uint8Array.of(hashingCode(request.hashing), request.auxData.length),
    ...aux,
    u32be(request.message.length),
    request.message,
  );
}

/** The request digest: `SHA-256("sigil/v1/request-digest" ‖ user's signed plaintext)` (§7.4). */
export function requestDigest(signedPlaintext: Uint8Array): Uint8Array {
  return sha256(concat(utf8("sigil/v1/request-digest"), signedPlaintext));
}

/** The signing session id of attempt `attempt` (§7.4). */
export function signSessionId(digest: Uint8Array, attempt: number): Uint8Array {
  return sha256(concat(utf8("sigil/v1/sign-session"), digest, u32be(attempt)));
}

/**
 * What a committee member's attestation signs (§7.4): `"sigil/v1/attestation" ‖ digest(32) ‖
 * verifying key(33) ‖ message hash(32) ‖ signature` (65 bytes for an ECDSA key, 64 for
 * Ed25519 and BIP-340; its bytes as they are, no length).
 */
export function attestationPayload(
  digest: Uint8Array,
  verifyingKey: Uint8Array | string,
  hash: Uint8Array | string,
  signature: Uint8Array | string,
): Uint8Array {
  return concat(
    utf8("sigil/v1/attestation"),
    toBytes(digest, 32, "request digest"),
    toBytes(verifyingKey, 33, "verifying key"),
    toBytes(hash, 32, "message hash"),
    userSignatureBytes(signature),
  );
}

/** A user-key signature's bytes (PROTOCOL.md §1): 65 (ECDSA) or 64 (Ed25519, BIP-340). */
function userSignatureBytes(signature: Uint8Array | string): Uint8Array {
  const bytes = toBytes(signature, undefined, "signature");
  if (bytes.length !== 64 && bytes.length !== 65) {
    throw new UsageError(`signature: expected 64 or 65 bytes, got ${bytes.length}`);
  }
  return bytes;
}
