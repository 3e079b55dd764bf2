/**
 * Ledger transactions (PROTOCOL.md §4.1, §4.4): calls in their JSON form, their postcard
 * encoding, signing and hashing.
 *
 * A {@link Call} is written the way `ledger_submit` takes it in JSON (externally tagged:
 * `{"transfer": {"to": "0x…", "amount": 5n}}`, or the bare string `"leave"`), with byte strings
 * as `0x`-hex and `u64` values as `bigint` (numbers are accepted too). The postcard encoding
 * is driven by {@link CALL_LAYOUT}, the table of PROTOCOL.md §4.4.
 * @module
 */

import { sha256 } from "@noble/hashes/sha2.js";

import type { Account } from "./account.js";
import { type Hex, concat, toBytes, toHex, u32be, utf8 } from "./bytes.js";
import { UsageError } from "./errors.js";
import { type KeyScheme, isKeyScheme } from "./keys.js";
import { PostcardWriter } from "./postcard.js";

/** A `u64` as the SDK takes it: a `bigint`, or a safe integer `number`. */
export type U64 = bigint | number;
/** Bytes as the SDK takes them: `Uint8Array` or hex (`0x` optional). */
export type BytesLike = Uint8Array | string;

/** A program instance attached to a key: a program id and its configuration bytes. */
export interface ProgramInstance {
  /** The program id (32 bytes). */
  program: BytesLike;
  /** Configuration bytes (JSON the program's schema accepts, usually), default empty. */
  config?: BytesLike;
}

/** A relayer's session ticket (PROTOCOL.md §8.2), as carried by `report_offence`. */
export interface SessionTicket {
  session: BytesLike;
  block: U64;
  attempt: number;
  committee: BytesLike[];
  relayer: BytesLike;
  signature: BytesLike;
}

/** The ledger's parameters (PROTOCOL.md §4.4), as `set_parameters` carries them. */
export interface Parameters {
  request_limit: number;
  requester_limit: number;
  fuel_per_program: U64;
  max_program_size: number;
  max_message_size: number;
  signer_count: number;
  threshold: number;
  offence_window: U64;
  min_stake: U64;
  slash_misbehaviour_permille: number;
  max_offences: number;
  report_window: U64;
  accusation_window: U64;
  max_evidence_size: number;
  transaction_fee: U64;
  program_byte_deposit: U64;
  registration_deposit: U64;
}

/** The kind of a signing fault (PROTOCOL.md §4.4 `fault`). */
export type FaultKind = "unresponsive" | "invalid_message" | "failed_proof" | "equivocation" | "conflicting_votes";

/** Every call of the ledger, in its JSON form (PROTOCOL.md §4.4). */
export type Call =
  | { transfer: { to: BytesLike; amount: U64 } }
  | { validate: { x25519: BytesLike; endpoint: string; stake: U64 } }
  | { change_endpoint: { endpoint: string } }
  | { change_keys: { x25519: BytesLike } }
  | "leave"
  | "jump_start"
  | { confirm_jump_start: { verifying_key: BytesLike } }
  | {
      store_program: {
        bytecode: BytesLike;
        config_schema: BytesLike;
        aux_schema: BytesLike;
        oracle_keys: string[];
        version: number;
      };
    }
  | { remove_program: { program: BytesLike } }
  | { register: { programs: ProgramInstance[]; public?: boolean; scheme?: KeyScheme } }
  | { change_programs: { verifying_key: BytesLike; programs: ProgramInstance[] } }
  | { change_owner: { verifying_key: BytesLike; new_owner: BytesLike } }
  | { report_offence: { ticket: SessionTicket; offender: BytesLike; kind: FaultKind; evidence: BytesLike } }
  | { confirm_reshare: { verifying_key: BytesLike } }
  | { set_parameters: { parameters: Parameters } }
  | { authorise: { verifying_key: BytesLike; account: BytesLike } }
  | { deauthorise: { verifying_key: BytesLike; account: BytesLike } }
  | { set_public: { verifying_key: BytesLike; public: boolean } }
  | { unregister: { verifying_key: BytesLike } }
  | { report_consensus_fault: { evidence: BytesLike } }
  | { change_replica: { consensus_key: BytesLike; address: string; proof: BytesLike } }
  | { report_keygen_fault: { scheme: KeyScheme; offender: BytesLike; evidence: BytesLike } };

/** The name of a call (its JSON tag). */
export type CallName = Call extends infer C ? (C extends string ? C : keyof C & string) : never;

/** A field's wire type in the layouts of PROTOCOL.md §4.4. */
export type FieldType =
  | "account"
  | "x25519"
  | "vk"
  | "program_id"
  | "session_id"
  | "sig"
  | "key32"
  | "bytes"
  | "u16"
  | "u32"
  | "u64"
  | "bool"
  | "string"
  | "scheme"
  | "endpoint"
  | "strings"
  | "accounts"
  | "programs"
  | "ticket"
  | "fault"
  | "parameters";

/** Byte lengths of the fixed-size byte strings (PROTOCOL.md §1). */
const FIXED_LENGTH: Partial<Record<FieldType, number>> = {
  account: 32,
  x25519: 32,
  vk: 33,
  program_id: 32,
  session_id: 32,
  sig: 64,
  key32: 32,
};

/** The calls by variant index: name and fields in order (PROTOCOL.md §4.4, "Calls"). */
export const CALL_LAYOUT: ReadonlyArray<readonly [CallName, ReadonlyArray<readonly [string, FieldType]>]> = [
  ["transfer", [["to", "account"], ["amount", "u64"]]],
  ["validate", [["x25519", "x25519"], ["endpoint", "endpoint"], ["stake", "u64"]]],
  ["change_endpoint", [["endpoint", "endpoint"]]],
  ["change_keys", [["x25519", "x25519"]]],
  ["leave", []],
  ["jump_start", []],
  ["confirm_jump_start", [["verifying_key", "vk"]]],
  [
    "store_program",
    [
      ["bytecode", "bytes"],
      ["config_schema", "bytes"],
      ["aux_schema", "bytes"],
      ["oracle_keys", "strings"],
      ["version", "u32"],
    ],
  ],
  ["remove_program", [["program", "program_id"]]],
  ["register", [["programs", "programs"], ["public", "bool"], ["scheme", "scheme"]]],
  ["change_programs", [["verifying_key", "vk"], ["programs", "programs"]]],
  ["change_owner", [["verifying_key", "vk"], ["new_owner", "account"]]],
  ["report_offence", [["ticket", "ticket"], ["offender", "account"], ["kind", "fault"], ["evidence", "bytes"]]],
  ["confirm_reshare", [["verifying_key", "vk"]]],
  ["set_parameters", [["parameters", "parameters"]]],
  ["authorise", [["verifying_key", "vk"], ["account", "account"]]],
  ["deauthorise", [["verifying_key", "vk"], ["account", "account"]]],
  ["set_public", [["verifying_key", "vk"], ["public", "bool"]]],
  ["unregister", [["verifying_key", "vk"]]],
  ["report_consensus_fault", [["evidence", "bytes"]]],
  ["change_replica", [["consensus_key", "key32"], ["address", "string"], ["proof", "sig"]]],
  ["report_keygen_fault", [["scheme", "scheme"], ["offender", "account"], ["evidence", "bytes"]]],
];

/** Fault kinds by enum index (PROTOCOL.md §4.4 `fault`). */
export const FAULT_KINDS: readonly FaultKind[] = [
  "unresponsive",
  "invalid_message",
  "failed_proof",
  "equivocation",
  "conflicting_votes",
];

const TICKET_LAYOUT: ReadonlyArray<readonly [string, FieldType]> = [
  ["session", "session_id"],
  ["block", "u64"],
  ["attempt", "u32"],
  ["committee", "accounts"],
  ["relayer", "account"],
  ["signature", "sig"],
];

/** The parameters' fields in order, with their types (PROTOCOL.md §4.4). */
export const PARAMETERS_LAYOUT: ReadonlyArray<readonly [keyof Parameters, FieldType]> = [
  ["request_limit", "u32"],
  ["requester_limit", "u32"],
  ["fuel_per_program", "u64"],
  ["max_program_size", "u32"],
  ["max_message_size", "u32"],
  ["signer_count", "u16"],
  ["threshold", "u16"],
  ["offence_window", "u64"],
  ["min_stake", "u64"],
  ["slash_misbehaviour_permille", "u32"],
  ["max_offences", "u32"],
  ["report_window", "u64"],
  ["accusation_window", "u64"],
  ["max_evidence_size", "u32"],
  ["transaction_fee", "u64"],
  ["program_byte_deposit", "u64"],
  ["registration_deposit", "u64"],
];

const UINT_MAX: Partial<Record<FieldType, bigint>> = {
  u16: 0xffffn,
  u32: 0xffffffffn,
  u64: 0xffffffffffffffffn,
};

function integer(value: unknown, type: FieldType, field: string): bigint {
  if (typeof value !== "bigint" && !(typeof value === "number" && Number.isSafeInteger(value))) {
    throw new UsageError(`${field}: expected an integer, got ${String(value)}`);
  }
  const n = BigInt(value);
  if (n < 0n || n > UINT_MAX[type]!) throw new UsageError(`${field}: ${n} does not fit a ${type}`);
  return n;
}

/** Writes one field of type `type` (postcard), checking it. */
function writeField(w: PostcardWriter, type: FieldType, value: unknown, field: string): void {
  const fixed = FIXED_LENGTH[type];
  if (fixed !== undefined) {
    w.bytes(toBytes(value as BytesLike, fixed, field));
    return;
  }
  switch (type) {
    case "bytes":
      w.bytes(toBytes((value ?? "0x") as BytesLike, undefined, field));
      return;
    case "u16":
    case "u32":
    case "u64":
      w.varint(integer(value, type, field));
      return;
    case "bool":
      if (typeof value !== "boolean") throw new UsageError(`${field}: expected a boolean`);
      w.bool(value);
      return;
    case "string":
    case "endpoint":
      if (typeof value !== "string") throw new UsageError(`${field}: expected a string`);
      w.string(value);
      return;
    case "scheme":
      w.string(schemeName(value, field));
      return;
    case "strings":
      w.seq(value as string[], (w, s) => writeField(w, "string", s, field));
      return;
    case "accounts":
      w.seq(value as BytesLike[], (w, a) => writeField(w, "account", a, field));
      return;
    case "programs": {
      const list = value as ProgramInstance[];
      if (!Array.isArray(list) || list.length < 1 || list.length > 5) {
        throw new UsageError(`${field}: a key takes 1 to 5 programs`);
      }
      w.seq(list, (w, p) => {
        writeField(w, "program_id", p.program, `${field}.program`);
        writeField(w, "bytes", p.config ?? "0x", `${field}.config`);
      });
      return;
    }
    case "ticket":
      writeStruct(w, TICKET_LAYOUT, value, field);
      return;
    case "fault": {
      const index = FAULT_KINDS.indexOf(value as FaultKind);
      if (index < 0) throw new UsageError(`${field}: ${String(value)} is not a fault kind`);
      w.variant(index);
      return;
    }
    case "parameters":
      writeStruct(w, PARAMETERS_LAYOUT, value, field);
      return;
    default:
      throw new UsageError(`${field}: unknown field type ${type}`);
  }
}

function writeStruct(
  w: PostcardWriter,
  layout: ReadonlyArray<readonly [string, FieldType]>,
  value: unknown,
  what: string,
): void {
  if (typeof value !== "object" || value === null) throw new UsageError(`${what}: expected an object`);
  const record = value as Record<string, unknown>;
  for (const [name, type] of layout) writeField(w, type, record[name], `${what}.${name}`);
}

/** The name and fields of a call in its JSON form. */
export function callParts(call: Call): { name: CallName; fields: Record<string, unknown> } {
  if (typeof call === "string") return { name: call, fields: {} };
  const keys = Object.keys(call);
  if (keys.length !== 1) throw new UsageError("a call is an object with exactly one key, its name");
  const name = keys[0] as CallName;
  return { name, fields: (call as Record<string, Record<string, unknown>>)[name] ?? {} };
}

/** A key scheme's name (PROTOCOL.md §1), checked. */
function schemeName(value: unknown, field: string): KeyScheme {
  if (!isKeyScheme(value)) {
    throw new UsageError(`${field}: ${JSON.stringify(value)} is not a key scheme (ecdsa-secp256k1, ed25519, bip340)`);
  }
  return value;
}

/**
 * The JSON defaults of a call's fields (PROTOCOL.md §4.4): `register`'s `public` is `false`
 * and its `scheme` `"ecdsa-secp256k1"` when left out.
 */
export const CALL_DEFAULTS: Readonly<Partial<Record<CallName, Readonly<Record<string, unknown>>>>> = {
  register: { public: false, scheme: "ecdsa-secp256k1" },
};

/** Writes `call` in postcard: its variant index, then its fields (left-out ones at their default). */
export function writeCall(w: PostcardWriter, call: Call): void {
  const { name, fields } = callParts(call);
  const index = CALL_LAYOUT.findIndex(([n]) => n === name);
  if (index < 0) throw new UsageError(`unknown call ${name}`);
  w.variant(index);
  const layout = CALL_LAYOUT[index]![1];
  const defaults = CALL_DEFAULTS[name] ?? {};
  const withDefaults = Object.fromEntries(layout.map(([field]) => [field, fields[field] ?? defaults[field]]));
  writeStruct(w, layout, withDefaults, name);
}

/** A transaction: who sends it, its nonce, and the call. */
export interface Transaction {
  /** The sender's account id. */
  sender: BytesLike;
  /** The sender's count of included transactions (see `ledger_nextNonce`). */
  nonce: U64;
  /** What to do. */
  call: Call;
}

/** A signed transaction in the JSON form `ledger_submit` takes. */
export interface SignedTransactionJson {
  tx: { sender: Hex; nonce: bigint; call: unknown };
  signature: Hex;
}

/** postcard(transaction): `sender ‖ nonce ‖ call` (PROTOCOL.md §4.4). */
export function encodeTransaction(tx: Transaction): Uint8Array {
  const w = new PostcardWriter();
  writeField(w, "account", tx.sender, "sender");
  writeField(w, "u64", tx.nonce, "nonce");
  writeCall(w, tx.call);
  return w.finish();
}

/** The bytes a sender signs: `"sigil/v1/transaction" ‖ len(chain_id) u32 BE ‖ chain_id ‖ postcard(tx)`. */
export function transactionSigningPayload(chainId: string, tx: Transaction): Uint8Array {
  return chainBound(utf8("sigil/v1/transaction"), chainId, encodeTransaction(tx));
}

/** `domain ‖ len(chain_id) u32 BE ‖ chain_id ‖ body`. */
export function chainBound(domain: Uint8Array, chainId: string, body: Uint8Array): Uint8Array {
  const id = utf8(chainId);
  return concat(domain, u32be(id.length), id, body);
}

/** A transaction with its sender's signature, in both forms. */
export interface SignedTransaction {
  /** The transaction. */
  tx: Transaction;
  /** The sender's ed25519 signature over {@link transactionSigningPayload}. */
  signature: Uint8Array;
  /** postcard(signed transaction): postcard(tx) ‖ 0x40 ‖ signature. */
  encoded: Uint8Array;
  /** The transaction hash: SHA-256 of {@link encoded}. */
  hash: Hex;
  /** The JSON `ledger_submit` takes. */
  json: SignedTransactionJson;
}

/** Signs `call` as `account` with `nonce` for the chain `chainId`. */
export function signTransaction(account: Account, chainId: string, nonce: U64, call: Call): SignedTransaction {
  const tx: Transaction = { sender: account.id, nonce, call };
  const signature = account.sign(transactionSigningPayload(chainId, tx));
  const encoded = concat(encodeTransaction(tx), new PostcardWriter().bytes(signature).finish());
  return {
    tx,
    signature,
    encoded,
    hash: toHex(sha256(encoded)),
    json: { tx: { sender: account.id, nonce: BigInt(nonce), call: callJson(call) }, signature: toHex(signature) },
  };
}

/**
 * A call's JSON form with every byte string as lowercase `0x`-hex and integers as `bigint`;
 * a field with a JSON default (see {@link CALL_DEFAULTS}) that was left out stays out.
 */
export function callJson(call: Call): unknown {
  const { name, fields } = callParts(call);
  const layout = CALL_LAYOUT.find(([n]) => n === name);
  if (!layout) throw new UsageError(`unknown call ${name}`);
  if (layout[1].length === 0) return name;
  const out: Record<string, unknown> = {};
  for (const [field, type] of layout[1]) {
    const value = fields[field];
    if (value === undefined && CALL_DEFAULTS[name]?.[field] !== undefined) continue;
    out[field] = fieldJson(type, value, `${name}.${field}`);
  }
  return { [name]: out };
}

function fieldJson(type: FieldType, value: unknown, field: string): unknown {
  const fixed = FIXED_LENGTH[type];
  if (fixed !== undefined) return toHex(toBytes(value as BytesLike, fixed, field));
  switch (type) {
    case "bytes":
      return toHex(toBytes((value ?? "0x") as BytesLike, undefined, field));
    case "u16":
    case "u32":
    case "u64":
      return integer(value, type, field);
    case "accounts":
      return (value as BytesLike[]).map((a) => fieldJson("account", a, field));
    case "programs":
      return (value as ProgramInstance[]).map((p) => ({
        program: fieldJson("program_id", p.program, field),
        config: fieldJson("bytes", p.config ?? "0x", field),
      }));
    case "ticket":
      return structJson(TICKET_LAYOUT, value, field);
    case "parameters":
      return structJson(PARAMETERS_LAYOUT, value, field);
    case "scheme":
      return schemeName(value, field);
    default:
      return value;
  }
}

function structJson(layout: ReadonlyArray<readonly [string, FieldType]>, value: unknown, what: string): unknown {
  const record = value as Record<string, unknown>;
  return Object.fromEntries(layout.map(([name, type]) => [name, fieldJson(type, record[name], `${what}.${name}`)]));
}

/**
 * A program's id (PROTOCOL.md §4.1): `SHA-256("sigil/v1/program-id" ‖ len‖bytecode ‖
 * len‖config_schema ‖ len‖aux_schema ‖ count ‖ (len‖oracle key)* ‖ version)`, u32 BE each.
 */
export function programId(program: {
  bytecode: BytesLike;
  configSchema?: BytesLike;
  auxSchema?: BytesLike;
  oracleKeys?: string[];
  version?: number;
}): Hex {
  const part = (bytes: Uint8Array) => concat(u32be(bytes.length), bytes);
  const oracleKeys = program.oracleKeys ?? [];
  return toHex(
    sha256(
      concat(
        utf8("sigil/v1/program-id"),
        part(toBytes(program.bytecode)),
        part(toBytes(program.configSchema ?? "0x")),
        part(toBytes(program.auxSchema ?? "0x")),
        u32be(oracleKeys.length),
        ...oracleKeys.map((key) => part(utf8(key))),
        u32be(program.version ?? 1),
      ),
    ),
  );
}
