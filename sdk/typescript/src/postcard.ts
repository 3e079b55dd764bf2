/**
 * A small [postcard 1.x](https://postcard.jamesmunns.com/wire-format) encoder for exactly the
 * layouts of PROTOCOL.md §4.4: unsigned varints (LEB128), byte strings and strings (varint
 * length, then the bytes), booleans (one byte), options (`0x00`, or `0x01` then the value),
 * sequences (varint count, then the items), enums (variant index as a varint, then the fields)
 * and structs and tuples (their fields in order, nothing else).
 * @module
 */

import { utf8 } from "./bytes.js";

/** The largest value a postcard `u64` varint holds. */
const U64_MAX = (1n << 64n) - 1n;

/** Appends postcard values to a growing buffer. */
export class PostcardWriter {
  private chunks: number[] = [];

  /** An unsigned integer (u8 as one raw byte is *not* this: postcard writes u8 raw). */
  varint(value: bigint | number): this {
    let n = BigInt(value);
    if (n < 0n || n > U64_MAX) throw new RangeError(`${value} does not fit a postcard u64`);
    do {
      let byte = Number(n & 0x7fn);
      n >>= 7n;
      if (n !== 0n) byte |= 0x80;
      this.chunks.push(byte);
    } while (n !== 0n);
    return this;
  }

  /** A `u8`: postcard writes it as the raw byte. */
  u8(value: number): this {
    if (!Number.isInteger(value) || value < 0 || value > 255) throw new RangeError(`${value} is not a u8`);
    this.chunks.push(value);
    return this;
  }

  /** A `bool`: `0x00` or `0x01`. */
  bool(value: boolean): this {
    this.chunks.push(value ? 1 : 0);
    return this;
  }

  /** Bytes with nothing before them (a fixed-size array, or a fragment already encoded). */
  raw(bytes: Uint8Array): this {
    for (const b of bytes) this.chunks.push(b);
    return this;
  }

  /** A byte string: varint length, then the bytes (also every fixed-size key, id and signature). */
  bytes(bytes: Uint8Array): this {
    return this.varint(bytes.length).raw(bytes);
  }

  /** A UTF-8 string: varint byte length, then the bytes. */
  string(text: string): this {
    return this.bytes(utf8(text));
  }

  /** An option: `0x00` for none, else `0x01` and the value written by `write`. */
  option<T>(value: T | null | undefined, write: (w: this, v: T) => void): this {
    if (value === null || value === undefined) {
      this.chunks.push(0);
    } else {
      this.chunks.push(1);
      write(this, value);
    }
    return this;
  }

  /** A sequence: varint count, then each item written by `write`. */
  seq<T>(items: readonly T[], write: (w: this, item: T) => void): this {
    this.varint(items.length);
    for (const item of items) write(this, item);
    return this;
  }

  /** An enum's variant index (then write its fields). */
  variant(index: number): this {
    return this.varint(index);
  }

  /** What was written. */
  finish(): Uint8Array {
    return Uint8Array.from(this.chunks);
  }
}

/** Reads postcard values (the inverse of {@link PostcardWriter}, for tests and checks). */
export class PostcardReader {
  private offset = 0;

  constructor(private readonly input: Uint8Array) {}

  /** An unsigned varint of at most 64 bits (10 bytes). */
  varint(): bigint {
    let result = 0n;
    for (let i = 0; i < 10; i++) {
      const byte = this.take(1)[0]!;
      result |= BigInt(byte & 0x7f) << BigInt(7 * i);
      if ((byte & 0x80) === 0) {
        if (result > U64_MAX) throw new RangeError("varint over 64 bits");
        return result;
      }
    }
    throw new RangeError("varint longer than 10 bytes");
  }

  /** A byte string (varint length, then the bytes). */
  bytes(): Uint8Array {
    return this.take(Number(this.varint()));
  }

  /** A UTF-8 string (varint byte length, then the bytes; invalid UTF-8 is refused). */
  string(): string {
    return new TextDecoder("utf-8", { fatal: true }).decode(this.bytes());
  }

  /** A `u8` (one raw byte) — also an option's tag (`0x00` none, `0x01` some). */
  u8(): number {
    return this.take(1)[0]!;
  }

  /** A `bool`. */
  bool(): boolean {
    const byte = this.take(1)[0];
    if (byte === 0) return false;
    if (byte === 1) return true;
    throw new RangeError(`${byte} is not a bool`);
  }

  /** `n` raw bytes. */
  take(n: number): Uint8Array {
    if (this.offset + n > this.input.length) throw new RangeError("postcard input ends early");
    const out = this.input.subarray(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }

  /** Whether every byte was read. */
  done(): boolean {
    return this.offset === this.input.length;
  }
}

/** The postcard varint encoding of one integer. */
export function varint(value: bigint | number): Uint8Array {
  return new PostcardWriter().varint(value).finish();
}
