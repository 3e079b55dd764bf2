/**
 * Block header hashes (PROTOCOL.md §4.2) and committee selection (§6), so a client can check
 * that the committee that signed is the one the ledger's data selects.
 * @module
 */

import { sha256 } from "@noble/hashes/sha2.js";

import { type Hex, compareBytes, concat, fromHex, toBytes, toHex, u32be, utf8 } from "./bytes.js";
import { PostcardWriter } from "./postcard.js";
import type { BlockHeader } from "./records.js";

/** postcard(header): height, parent hash, timestamp, body hash, state digest (§4.2). */
export function encodeHeader(header: BlockHeader): Uint8Array {
  return new PostcardWriter()
    .varint(header.height)
    .bytes(fromHex(header.parent_hash))
    .varint(header.timestamp_ms)
    .bytes(fromHex(header.body_hash))
    .bytes(fromHex(header.state_digest))
    .finish();
}

/** A block's hash: `SHA-256("sigil/v1/header" ‖ postcard(header))`. */
export function headerHash(header: BlockHeader): Hex {
  return toHex(sha256(concat(utf8("sigil/v1/header"), encodeHeader(header))));
}

/**
 * The committee of a request (§6 steps 1–3): the `threshold` signers, left-out ones dropped,
 * with the lowest `SHA-256("sigil/v1/committee" ‖ block hash ‖ request digest ‖ attempt u32 BE
 * ‖ signer)`, in ascending account order; `undefined` if fewer than `threshold` remain.
 */
export function selectCommittee(params: {
  signers: ReadonlyArray<string>;
  threshold: number;
  leftOut?: ReadonlyArray<string>;
  blockHash: Uint8Array | string;
  requestDigest: Uint8Array;
  attempt: number;
}): Hex[] | undefined {
  const leftOut = new Set((params.leftOut ?? []).map((a) => toHex(toBytes(a, 32))));
  const eligible = params.signers.map((s) => toBytes(s, 32)).filter((s) => !leftOut.has(toHex(s)));
  if (eligible.length < params.threshold) return undefined;
  const prefix = concat(
    utf8("sigil/v1/committee"),
    toBytes(params.blockHash, 32, "block hash"),
    toBytes(params.requestDigest, 32, "request digest"),
    u32be(params.attempt),
  );
  const scored = eligible.map((signer) => ({ signer, score: sha256(concat(prefix, signer)) }));
  scored.sort((a, b) => compareBytes(a.score, b.score) || compareBytes(a.signer, b.signer));
  return scored
    .slice(0, params.threshold)
    .map((s) => s.signer)
    .sort(compareBytes)
    .map(toHex);
}
