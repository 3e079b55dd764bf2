/**
 * Users' signing keys (PROTOCOL.md §2 "User keys", §4.1, §7.4): the BIP-32 child of the
 * network key at a registration's path, its Ethereum address, and ECDSA checks.
 * @module
 */

import { secp256k1 } from "@noble/curves/secp256k1.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { keccak_256 } from "@noble/hashes/sha3.js";
import { HDKey } from "@scure/bip32";
import { type Address, getAddress } from "viem";

import { type Hex, concat, equalBytes, toBytes, toHex, u64be, utf8 } from "./bytes.js";
import { UsageError } from "./errors.js";

/** A derivation path: non-hardened BIP-32 indices (each < 2^31), depth ≤ 255. */
export type DerivationPath = readonly number[];

const HARDENED = 0x80000000;

/** Parses `"m/44/60/0/0/7"` (no hardened steps). */
export function parsePath(path: string): number[] {
  const parts = path.trim().split("/");
  if (parts[0] !== "m") throw new UsageError(`derivation path ${path}: must start with m`);
  const indices = parts.slice(1).map((part) => {
    if (!/^\d+$/.test(part)) throw new UsageError(`derivation path ${path}: ${part} is not a non-hardened index`);
    const n = Number(part);
    if (n >= HARDENED) throw new UsageError(`derivation path ${path}: ${part} is hardened`);
    return n;
  });
  if (indices.length > 255) throw new UsageError(`derivation path ${path}: deeper than 255`);
  return indices;
}

/** Formats a path as `"m/1/2/…"`. */
export function formatPath(path: DerivationPath): string {
  return ["m", ...path.map(String)].join("/");
}

/** The network key's chain code: `SHA-256("chain-code-derivation" ‖ K)` (PROTOCOL.md §2). */
export function networkChainCode(networkKey: Uint8Array | string): Uint8Array {
  return sha256(concat(utf8("chain-code-derivation"), toBytes(networkKey, 33, "network key")));
}

/**
 * A user's verifying key: BIP-32 `CKDpub` of the network key (with its chain code) along
 * `path` (PROTOCOL.md §2). Returns the 33-byte compressed key as `0x`-hex.
 */
export function deriveVerifyingKey(networkKey: Uint8Array | string, path: DerivationPath | string): Hex {
  const indices = typeof path === "string" ? parsePath(path) : path;
  const publicKey = toBytes(networkKey, 33, "network key");
  let node = new HDKey({ publicKey, chainCode: networkChainCode(publicKey) });
  for (const index of indices) {
    if (!Number.isInteger(index) || index < 0 || index >= HARDENED) {
      throw new UsageError(`derivation index ${index} is not a non-hardened u32`);
    }
    node = node.deriveChild(index);
  }
  return toHex(node.publicKey!);
}

/** The Ethereum address of a verifying key (EIP-55 checksummed). */
export function ethAddress(verifyingKey: Uint8Array | string): Address {
  const point = secp256k1.Point.fromBytes(toBytes(verifyingKey, 33, "verifying key"));
  const uncompressed = point.toBytes(false);
  return getAddress(toHex(keccak_256(uncompressed.subarray(1)).subarray(12)));
}

/**
 * The derivation path of a registration (PROTOCOL.md §4.1): the eight big-endian u32 words of
 * `SHA-256("sigil/v1/registration-path" ‖ chain_id ‖ owner ‖ nonce u64 BE)`, top bits cleared.
 * `chainId` goes in with no length before it.
 */
export function registrationPath(chainId: string, owner: Uint8Array | string, nonce: bigint | number): number[] {
  const digest = sha256(
    concat(utf8("sigil/v1/registration-path"), utf8(chainId), toBytes(owner, 32, "owner"), u64be(nonce)),
  );
  const view = new DataView(digest.buffer, digest.byteOffset, digest.byteLength);
  return Array.from({ length: 8 }, (_, i) => view.getUint32(4 * i, false) & 0x7fffffff);
}

/** Half the secp256k1 group order: a valid Sigil (and Ethereum) signature has `s` at most this. */
const HALF_ORDER = secp256k1.Point.CURVE().n >> 1n;

/** The parts of a 65-byte `r ‖ s ‖ v` signature. */
export interface EcdsaParts {
  r: bigint;
  s: bigint;
  /** The y-parity of `R`: 0 or 1. */
  yParity: 0 | 1;
}

/** Splits a 65-byte `r ‖ s ‖ v` signature (PROTOCOL.md §1), refusing `v` ∉ {0, 1}. */
export function splitSignature(signature: Uint8Array | string): EcdsaParts {
  const bytes = toBytes(signature, 65, "ECDSA signature");
  const v = bytes[64]!;
  if (v !== 0 && v !== 1) throw new UsageError(`ECDSA signature: v is ${v}, not 0 or 1`);
  const big = (b: Uint8Array) => BigInt(toHex(b));
  return { r: big(bytes.subarray(0, 32)), s: big(bytes.subarray(32, 64)), yParity: v };
}

/**
 * Whether `signature` (`r ‖ s ‖ v`) over the 32-byte `hash` is by `verifyingKey`: `s` low,
 * the signature valid, and `v` the y-parity that recovers that key (PROTOCOL.md §7.4).
 */
export function verifyEcdsa(
  verifyingKey: Uint8Array | string,
  hash: Uint8Array | string,
  signature: Uint8Array | string,
): boolean {
  try {
    const key = toBytes(verifyingKey, 33, "verifying key");
    const digest = toBytes(hash, 32, "hash");
    const { s, yParity } = splitSignature(signature);
    if (s === 0n || s > HALF_ORDER) return false;
    const compact = toBytes(signature, 65).subarray(0, 64);
    if (!secp256k1.verify(compact, digest, key, { prehash: false, lowS: true })) return false;
    const recovered = secp256k1.Signature.fromBytes(compact, "compact")
      .addRecoveryBit(yParity)
      .recoverPublicKey(digest)
      .toBytes(true);
    return equalBytes(recovered, key);
  } catch {
    return false;
  }
}
