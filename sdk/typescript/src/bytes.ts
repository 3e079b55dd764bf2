/**
 * Byte helpers: `0x`-hex (PROTOCOL.md §1), concatenation and big-endian integers.
 * @module
 */

import { bytesToHex as nobleBytesToHex, hexToBytes as nobleHexToBytes } from "@noble/hashes/utils.js";

/** A `0x`-prefixed lowercase hex string, as every byte string is written in Sigil's JSON. */
export type Hex = `0x${string}`;

/** Bytes as `0x`-prefixed lowercase hex. */
export function toHex(bytes: Uint8Array): Hex {
  return `0x${nobleBytesToHex(bytes)}`;
}

/**
 * Parses hex with or without `0x` (upper or lower case). With `length`, the result must have
 * exactly that many bytes.
 */
export function fromHex(hex: string, length?: number, what = "hex value"): Uint8Array {
  if (typeof hex !== "string") throw new TypeError(`${what}: expected a hex string`);
  const digits = hex.startsWith("0x") || hex.startsWith("0X") ? hex.slice(2) : hex;
  if (digits.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(digits)) {
    throw new TypeError(`${what}: ${JSON.stringify(hex.slice(0, 80))} is not hex`);
  }
  const bytes = nobleHexToBytes(digits.toLowerCase());
  if (length !== undefined && bytes.length !== length) {
    throw new TypeError(`${what}: expected ${length} bytes, got ${bytes.length}`);
  }
  return bytes;
}

/** Accepts bytes or hex and returns bytes (checking the length when given). */
export function toBytes(value: Uint8Array | string, length?: number, what = "value"): Uint8Array {
  if (value instanceof Uint8Array) {
    if (length !== undefined && value.length !== length) {
      throw new TypeError(`${what}: expected ${length} bytes, got ${value.length}`);
    }
    return value;
  }
  return fromHex(value, length, what);
}

/** The concatenation of `parts`. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** UTF-8 bytes of `text`. */
export function utf8(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

/** `n` as 4 bytes big-endian (`n` < 2^32). */
export function u32be(n: number): Uint8Array {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`${n} is not a u32`);
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n, false);
  return out;
}

/** `n` as 8 bytes big-endian (`n` < 2^64). */
export function u64be(n: bigint | number): Uint8Array {
  const value = BigInt(n);
  if (value < 0n || value >= 1n << 64n) throw new RangeError(`${n} is not a u64`);
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, value, false);
  return out;
}

/** Whether two byte strings are equal. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/** Compares byte strings as unsigned big-endian numbers of equal length (bytewise). */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (a[i] !== b[i]) return a[i]! - b[i]!;
  }
  return a.length - b.length;
}

/** `n` random bytes from the platform's CSPRNG (Web Crypto, in browsers and Node alike). */
export function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  globalThis.crypto.getRandomValues(out);
  return out;
}
