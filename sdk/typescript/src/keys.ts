/**
 * Users' signing keys (PROTOCOL.md §1, §2 "User keys", §4.1, §7.4): the key schemes and their
 * tagged 33-byte identifiers, the child of a scheme's network key at a registration's path
 * (BIP-32 for ECDSA, an additive tweak for Ed25519, BIP-32 then the BIP-341 tweak for
 * BIP-340), each key's address (Ethereum, Solana, Taproot), and signature checks per scheme.
 * @module
 */

import { ed25519 } from "@noble/curves/ed25519.js";
import { schnorr, secp256k1 } from "@noble/curves/secp256k1.js";
import { bytesToNumberBE, bytesToNumberLE } from "@noble/curves/utils.js";
import { sha256, sha512 } from "@noble/hashes/sha2.js";
import { keccak_256 } from "@noble/hashes/sha3.js";
import { base58, bech32m } from "@scure/base";
import { HDKey } from "@scure/bip32";
import { type Address, getAddress } from "viem";

import { verifyEd25519 } from "./account.js";
import { type Hex, concat, equalBytes, toBytes, toHex, u32be, u64be, utf8 } from "./bytes.js";
import { UsageError } from "./errors.js";

/** A derivation path: non-hardened BIP-32 indices (each < 2^31), depth ≤ 255. */
export type DerivationPath = readonly number[];

const HARDENED = 0x80000000;

/**
 * A key's signature scheme (PROTOCOL.md §1 "key scheme"): threshold ECDSA over secp256k1
 * (Ethereum), Ed25519 (RFC 8032; Solana), or BIP-340 Schnorr with the BIP-341 key-path tweak
 * (Bitcoin Taproot).
 */
export type KeyScheme = "ecdsa-secp256k1" | "ed25519" | "bip340";

/** Every scheme, in the order the ledger lists network keys (ECDSA, then `scheme_keys`). */
export const KEY_SCHEMES: readonly KeyScheme[] = ["ecdsa-secp256k1", "ed25519", "bip340"];

/** First byte of an Ed25519 key's identifier: `0xed ‖ the 32-byte RFC 8032 key`. */
export const ED25519_KEY_TAG = 0xed;
/** First byte of a BIP-340 key's identifier: `0x54 ‖ the 32-byte x-only key` ("T", Taproot). */
export const BIP340_KEY_TAG = 0x54;

/** Whether `name` is a key scheme's name. */
export function isKeyScheme(name: unknown): name is KeyScheme {
  return typeof name === "string" && (KEY_SCHEMES as readonly string[]).includes(name);
}

/**
 * The scheme of a 33-byte verifying key, from its first byte (PROTOCOL.md §1): `0x02`/`0x03`
 * ECDSA, `0xed` Ed25519, `0x54` BIP-340. Another tag is a {@link UsageError}; the point itself
 * is not checked here (see {@link isVerifyingKey}).
 */
export function keyScheme(verifyingKey: Uint8Array | string): KeyScheme {
  const tag = toBytes(verifyingKey, 33, "verifying key")[0]!;
  switch (tag) {
    case 0x02:
    case 0x03:
      return "ecdsa-secp256k1";
    case ED25519_KEY_TAG:
      return "ed25519";
    case BIP340_KEY_TAG:
      return "bip340";
    default:
      throw new UsageError(`verifying key: unknown key tag 0x${tag.toString(16).padStart(2, "0")}`);
  }
}

/**
 * The key in its scheme's own encoding: the 33 compressed bytes for ECDSA, the 32-byte RFC 8032
 * key for Ed25519, the 32-byte x-only key for BIP-340.
 */
export function keyBytes(verifyingKey: Uint8Array | string): Uint8Array {
  const bytes = toBytes(verifyingKey, 33, "verifying key");
  return keyScheme(bytes) === "ecdsa-secp256k1" ? bytes : bytes.subarray(1);
}

/**
 * The 33-byte identifier of a 32-byte Ed25519 or BIP-340 (x-only) key: its scheme's tag, then
 * the key.
 */
export function taggedKey(scheme: "ed25519" | "bip340", key: Uint8Array | string): Hex {
  const tag = scheme === "ed25519" ? ED25519_KEY_TAG : BIP340_KEY_TAG;
  return toHex(concat(Uint8Array.of(tag), toBytes(key, 32, `${scheme} key`)));
}

/**
 * Whether `verifyingKey` is a valid identifier (PROTOCOL.md §1): 33 bytes, a known tag, and
 * the point on its curve (for `0x54`, x must have a point).
 */
export function isVerifyingKey(verifyingKey: Uint8Array | string): boolean {
  try {
    const bytes = toBytes(verifyingKey, 33);
    switch (keyScheme(bytes)) {
      case "ecdsa-secp256k1":
        secp256k1.Point.fromBytes(bytes);
        return true;
      case "ed25519":
        ed25519.Point.fromBytes(bytes.subarray(1));
        return true;
      case "bip340":
        schnorr.utils.lift_x(bytesToNumberBE(bytes.subarray(1)));
        return true;
    }
  } catch {
    return false;
  }
}

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

/** A path's indices, checked: non-hardened u32s, at most 255 of them. */
function checkedPath(path: DerivationPath | string): readonly number[] {
  const indices = typeof path === "string" ? parsePath(path) : path;
  if (indices.length > 255) throw new UsageError(`derivation path deeper than 255`);
  for (const index of indices) {
    if (!Number.isInteger(index) || index < 0 || index >= HARDENED) {
      throw new UsageError(`derivation index ${index} is not a non-hardened u32`);
    }
  }
  return indices;
}

/**
 * A network key's chain code: `SHA-256("chain-code-derivation" ‖ K)`, `K` the 33-byte key with
 * its tag (PROTOCOL.md §2; ECDSA and BIP-340 keys).
 */
export function networkChainCode(networkKey: Uint8Array | string): Uint8Array {
  return sha256(concat(utf8("chain-code-derivation"), toBytes(networkKey, 33, "network key")));
}

/**
 * A user's verifying key: the child of a scheme's network key along `path` (PROTOCOL.md §2,
 * "User keys"); the network key's tag picks the scheme, and the result has the same tag.
 * - ECDSA (`0x02`/`0x03`): BIP-32 `CKDpub` of `(K, chain code)`;
 * - Ed25519 (`0xed`): `A + t·B`, see {@link deriveEd25519Key};
 * - BIP-340 (`0x54`): the BIP-341 output key of the BIP-32 child, see {@link deriveBip340Key}.
 *
 * Returns the 33-byte identifier as `0x`-hex.
 */
export function deriveVerifyingKey(networkKey: Uint8Array | string, path: DerivationPath | string): Hex {
  const key = toBytes(networkKey, 33, "network key");
  switch (keyScheme(key)) {
    case "ed25519":
      return deriveEd25519Key(key, path);
    case "bip340":
      return deriveBip340Key(key, path);
    case "ecdsa-secp256k1":
      return toHex(ckdPub(key, networkChainCode(key), checkedPath(path)));
  }
}

/** BIP-32 `CKDpub` of a compressed secp256k1 key and chain code along `indices`. */
function ckdPub(publicKey: Uint8Array, chainCode: Uint8Array, indices: readonly number[]): Uint8Array {
  let node = new HDKey({ publicKey, chainCode });
  for (const index of indices) node = node.deriveChild(index);
  return node.publicKey!;
}

/** Domain separator of the Ed25519 derivation tweak. */
const ED25519_DERIVE_DOMAIN = utf8("sigil/v1/derive/ed25519");

/**
 * The Ed25519 user key (PROTOCOL.md §2): with `A` the network key's 32 bytes,
 * `t = SHA-512("sigil/v1/derive/ed25519" ‖ A ‖ depth (1 byte) ‖ index₁ u32 BE ‖ …)` read
 * little-endian and reduced mod ℓ; the key is `A + t·B`, returned as `0xed ‖ its encoding`.
 */
export function deriveEd25519Key(networkKey: Uint8Array | string, path: DerivationPath | string): Hex {
  const key = toBytes(networkKey, 33, "network key");
  if (keyScheme(key) !== "ed25519") throw new UsageError("not an Ed25519 network key (tag 0xed)");
  const indices = checkedPath(path);
  const a = key.subarray(1);
  const { Point } = ed25519;
  const parent = Point.fromBytes(a);
  const digest = sha512(concat(ED25519_DERIVE_DOMAIN, a, Uint8Array.of(indices.length), ...indices.map(u32be)));
  const tweak = Point.Fn.create(bytesToNumberLE(digest));
  const child = tweak === 0n ? parent : parent.add(Point.BASE.multiply(tweak));
  return taggedKey("ed25519", child.toBytes());
}

/**
 * The BIP-340 user key (PROTOCOL.md §2): `P` is BIP-32 `CKDpub` of the even-y point with the
 * network key's x-coordinate, with the chain code of the tagged network key, along `path`; the
 * user key is `0x54 ‖ x(Q)`, `Q` the BIP-341 output key of `P` with no script path
 * ({@link taprootOutputKey}).
 */
export function deriveBip340Key(networkKey: Uint8Array | string, path: DerivationPath | string): Hex {
  const key = toBytes(networkKey, 33, "network key");
  if (keyScheme(key) !== "bip340") throw new UsageError("not a BIP-340 network key (tag 0x54)");
  const internal = ckdPub(concat(Uint8Array.of(0x02), key.subarray(1)), networkChainCode(key), checkedPath(path));
  return taggedKey("bip340", taprootOutputKey(internal.subarray(1)));
}

/**
 * The x-only BIP-341 output key of an internal key with no script path (as BIP-86):
 * `Q = lift_x(x(P)) + int(hash_TapTweak(x(P)))·G`. Takes the 32-byte x-only key (or a
 * 33-byte compressed key, whose parity is ignored); returns `x(Q)`.
 */
export function taprootOutputKey(internalKey: Uint8Array | string): Uint8Array {
  const bytes = toBytes(internalKey, undefined, "internal key");
  if (bytes.length !== 32 && bytes.length !== 33) throw new UsageError("internal key: expected 32 or 33 bytes");
  const x = bytes.length === 33 ? bytes.subarray(1) : bytes;
  const { lift_x, taggedHash, pointToBytes } = schnorr.utils;
  const { Point } = secp256k1;
  const tweak = Point.Fn.create(bytesToNumberBE(taggedHash("TapTweak", x)));
  const p = lift_x(bytesToNumberBE(x));
  return pointToBytes(tweak === 0n ? p : p.add(Point.BASE.multiply(tweak)));
}

/** The Ethereum address of an ECDSA verifying key (EIP-55 checksummed). */
export function ethAddress(verifyingKey: Uint8Array | string): Address {
  const bytes = toBytes(verifyingKey, 33, "verifying key");
  if (keyScheme(bytes) !== "ecdsa-secp256k1") throw new UsageError("an Ethereum address needs an ECDSA key");
  const uncompressed = secp256k1.Point.fromBytes(bytes).toBytes(false);
  return getAddress(toHex(keccak_256(uncompressed.subarray(1)).subarray(12)));
}

/** The Solana address of an Ed25519 key: base58 of its 32 bytes (PROTOCOL.md §2). */
export function solanaAddress(verifyingKey: Uint8Array | string): string {
  const bytes = toBytes(verifyingKey, 33, "verifying key");
  if (keyScheme(bytes) !== "ed25519") throw new UsageError("a Solana address needs an Ed25519 key");
  return base58.encode(bytes.subarray(1));
}

/**
 * The P2TR address of a BIP-340 key (BIP-350 bech32m, witness version 1, the x-only output
 * key as the program): `bc1p…` on mainnet; `hrp` `"tb"` for testnet and signet, `"bcrt"` for
 * regtest.
 */
export function taprootAddress(verifyingKey: Uint8Array | string, hrp = "bc"): string {
  const bytes = toBytes(verifyingKey, 33, "verifying key");
  if (keyScheme(bytes) !== "bip340") throw new UsageError("a Taproot address needs a BIP-340 key");
  return bech32m.encode(hrp, [1, ...bech32m.toWords(bytes.subarray(1))]);
}

/** A key's address on the chain its scheme is usually for. */
export interface KeyAddress {
  /** `"ethereum"` (ECDSA), `"solana"` (Ed25519) or `"taproot"` (BIP-340, mainnet). */
  chain: "ethereum" | "solana" | "taproot";
  /** The address as that chain writes it. */
  text: string;
}

/** The address of `verifyingKey` on the chain its scheme is usually for (as `sigil` prints it). */
export function keyAddress(verifyingKey: Uint8Array | string): KeyAddress {
  switch (keyScheme(verifyingKey)) {
    case "ecdsa-secp256k1":
      return { chain: "ethereum", text: ethAddress(verifyingKey) };
    case "ed25519":
      return { chain: "solana", text: solanaAddress(verifyingKey) };
    case "bip340":
      return { chain: "taproot", text: taprootAddress(verifyingKey) };
  }
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
 * Whether `signature` (`r ‖ s ‖ v`) over the 32-byte `hash` is by the ECDSA key `verifyingKey`:
 * `s` low, the signature valid, and `v` the y-parity that recovers that key (PROTOCOL.md §7.4).
 */
export function verifyEcdsa(
  verifyingKey: Uint8Array | string,
  hash: Uint8Array | string,
  signature: Uint8Array | string,
): boolean {
  try {
    const key = toBytes(verifyingKey, 33, "verifying key");
    if (keyScheme(key) !== "ecdsa-secp256k1") return false;
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

/**
 * Whether `signature` is `verifyingKey`'s over `signed`, the bytes its scheme signs
 * (PROTOCOL.md §7.4; see {@link signedBytes}):
 * - ECDSA: 65 bytes `r ‖ s ‖ v` over the 32-byte prehash, checked as {@link verifyEcdsa};
 * - Ed25519: 64 bytes `R ‖ S`, RFC 8032 (strictly: canonical `S`, no small-order key or `R`)
 *   over the message (hashing `none`) or the 32-byte prehash;
 * - BIP-340: 64 bytes `x(R) ‖ s` over the 32-byte prehash, under the x-only key.
 *
 * A signature of the wrong length for the key's scheme is not valid.
 */
export function verifyUserSignature(
  verifyingKey: Uint8Array | string,
  signed: Uint8Array,
  signature: Uint8Array | string,
): boolean {
  try {
    const key = toBytes(verifyingKey, 33, "verifying key");
    const sig = toBytes(signature, undefined, "signature");
    switch (keyScheme(key)) {
      case "ecdsa-secp256k1":
        return sig.length === 65 && signed.length === 32 && verifyEcdsa(key, signed, sig);
      case "ed25519":
        return sig.length === 64 && verifyEd25519(key.subarray(1), signed, sig);
      case "bip340":
        return sig.length === 64 && schnorr.verify(sig, signed, key.subarray(1));
    }
  } catch {
    return false;
  }
}
