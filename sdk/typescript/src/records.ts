/**
 * What the ledger's reads return (PROTOCOL.md §4.4 "Records"), as TypeScript types. Byte
 * strings are `0x`-hex; every `u64` (balances, block numbers, deposits) is a `bigint`.
 * @module
 */

import type { Hex } from "./bytes.js";
import { toBigInt } from "./json.js";
import type { FaultKind } from "./tx.js";

/** An account's funds and nonce. */
export interface AccountRecord {
  /** Spendable balance. */
  balance: bigint;
  /** Included transactions (the next transaction's nonce, without pending ones). */
  nonce: bigint;
  /** Deposits held for what the account stores. */
  reserved: bigint;
}

/** A validator's ledger record. */
export interface ValidatorRecord {
  account: Hex;
  x25519: Hex;
  /** `host:port` of its HTTP API. */
  endpoint: string;
  stake: bigint;
  status: "active" | "leaving";
  joined: bigint;
}

/** A block header. */
export interface BlockHeader {
  height: bigint;
  parent_hash: Hex;
  timestamp_ms: bigint;
  body_hash: Hex;
  state_digest: Hex;
}

/** A ledger event (PROTOCOL.md §4.4 "Events"): `{name: {fields}}`. */
export type LedgerEvent = Record<string, Record<string, unknown>>;

/** A block. */
export interface Block {
  header: BlockHeader;
  transactions: unknown[];
  events: LedgerEvent[];
}

/** The signer set and the network key. */
export interface SignerSet {
  signers: Hex[];
  threshold: number;
  network_key: Hex | null;
  jump_start: "ready" | "done" | { in_progress: { block: bigint; confirmations: Array<[Hex, Hex]> } };
  pending_reshare: {
    started: bigint;
    old_signers: Hex[];
    new_signers: Hex[];
    new_threshold: number;
    confirmations: Hex[];
  } | null;
  excluded: Array<{ account: Hex; until: bigint }>;
  disputes: Array<{ accuser: Hex; accused: Hex; until: bigint }>;
}

/** A program instance as the ledger returns it. */
export interface ProgramInstanceRecord {
  program: Hex;
  config: Hex;
}

/** A key's registration. */
export interface Registration {
  owner: Hex;
  programs: ProgramInstanceRecord[];
  /** `"m/…"`. */
  derivation_path: string;
  registered: bigint;
  public: boolean;
  authorised: Hex[];
  deposit: bigint;
}

/** A stored program. */
export interface ProgramRecord {
  bytecode: Hex;
  config_schema: Hex;
  aux_schema: Hex;
  oracle_keys: string[];
  deployer: Hex;
  ref_count: bigint;
  version: number;
  deposit: bigint;
}

/** A program in `ledger_programs`. */
export interface ProgramSummary {
  id: Hex;
  deployer: Hex;
  ref_count: bigint;
  size: bigint;
}

/** An offence record (PROTOCOL.md §8.3). */
export interface OffenceRecord {
  session: Hex;
  reporters: Hex[];
  offender: Hex;
  kind: FaultKind;
  proven: boolean;
  committee_size: number;
  evidence_hash: Hex;
  reported: bigint;
  recorded: bigint | null;
  slashed: bigint;
}

/** What `ledger_submit` answers. */
export interface SubmitResult {
  /** The transaction hash. */
  hash: Hex;
  /** The block that included it (with `wait`), else null. */
  included: bigint | null;
  /** The events its call emitted (with `wait`). */
  events: LedgerEvent[];
}

/** The ledger's parameters, as `ledger_parameters` returns them. */
export interface ParametersRecord {
  request_limit: number;
  requester_limit: number;
  fuel_per_program: bigint;
  max_program_size: number;
  max_message_size: number;
  signer_count: number;
  threshold: number;
  offence_window: bigint;
  min_stake: bigint;
  slash_misbehaviour_permille: number;
  max_offences: number;
  report_window: bigint;
  accusation_window: bigint;
  max_evidence_size: number;
  transaction_fee: bigint;
  program_byte_deposit: bigint;
  registration_deposit: bigint;
}

/** The `u64` fields of the records above, by name. */
const U64_FIELDS = new Set([
  "balance",
  "nonce",
  "reserved",
  "stake",
  "joined",
  "height",
  "timestamp_ms",
  "registered",
  "deposit",
  "ref_count",
  "size",
  "amount",
  "refund",
  "slashed",
  "until",
  "started",
  "block",
  "included",
  "recorded",
  "reported",
  "block_number",
  "fuel_per_program",
  "offence_window",
  "min_stake",
  "report_window",
  "accusation_window",
  "transaction_fee",
  "program_byte_deposit",
  "registration_deposit",
]);

/** Turns every `u64` field (by name, at any depth) into a `bigint`; other values unchanged. */
export function withBigInts<T>(value: unknown): T {
  return convert(value, undefined) as T;
}

function convert(value: unknown, key: string | undefined): unknown {
  if (Array.isArray(value)) return value.map((item) => convert(item, key));
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, convert(v, k)]));
  }
  if (key !== undefined && U64_FIELDS.has(key) && (typeof value === "number" || typeof value === "string")) {
    return toBigInt(value, key);
  }
  return value;
}

/** An event's name (its JSON tag). */
export function eventName(event: LedgerEvent | string): string {
  return typeof event === "string" ? event : Object.keys(event)[0]!;
}

/** The fields of the first event named `name`, if any. */
export function findEvent<T = Record<string, unknown>>(events: ReadonlyArray<LedgerEvent>, name: string): T | undefined {
  for (const event of events) {
    if (typeof event === "object" && event !== null && name in event) return event[name] as T;
  }
  return undefined;
}
