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

/**
 * The ledger's events by variant index: name and fields in order, each with its type as
 * PROTOCOL.md §4.4 writes it (`vk`, `[account]`, `replica?`, …). JSON carries the names
 * (`{"network_key_created": {"network_key": "0xed…"}}`); postcard the index and the fields.
 */
export const EVENT_LAYOUT = [
  ["transferred", [["from", "account"], ["to", "account"], ["amount", "u64"]]],
  ["validator_joined", [["info", "validator"]]],
  ["validator_changed", [["info", "validator"]]],
  ["validator_left", [["account", "account"]]],
  ["jump_start_started", [["signers", "[account]"], ["threshold", "u16"]]],
  ["jump_start_confirmed", [["signer", "account"]]],
  ["jump_start_done", [["network_key", "vk"]]],
  ["program_stored", [["program", "program_id"], ["deployer", "account"]]],
  ["program_removed", [["program", "program_id"]]],
  ["registered", [["owner", "account"], ["verifying_key", "vk"], ["derivation_path", "path"]]],
  ["programs_changed", [["verifying_key", "vk"]]],
  ["owner_changed", [["verifying_key", "vk"], ["new_owner", "account"]]],
  ["offence_report_received", [["reporter", "account"], ["offender", "account"], ["kind", "fault"]]],
  ["offence_reported", [["offence", "offence"]]],
  ["slashed", [["account", "account"], ["amount", "u64"], ["stake", "u64"]]],
  ["reshare_started", [["new_signers", "[account]"], ["new_threshold", "u16"]]],
  ["reshare_confirmed", [["signer", "account"]]],
  ["signer_set_changed", [["signers", "[account]"], ["threshold", "u16"]]],
  ["parameters_changed", [["parameters", "parameters"]]],
  ["access_changed", [["verifying_key", "vk"], ["public", "bool"], ["authorised", "[account]"]]],
  ["unregistered", [["verifying_key", "vk"], ["owner", "account"], ["refund", "u64"]]],
  ["call_failed", [["sender", "account"], ["nonce", "u64"], ["code", "string"], ["message", "string"]]],
  ["replica_changed", [["account", "account"], ["replica", "replica?"]]],
  ["consensus_set_changed", [["epoch", "u64"], ["replicas", "[replica]"]]],
  ["accusation_withdrawn", [["session", "session_id"], ["reporter", "account"], ["offender", "account"]]],
  ["network_key_created", [["network_key", "vk"]]],
] as const satisfies ReadonlyArray<readonly [string, ReadonlyArray<readonly [string, string]>]>;

/** The name of a ledger event (its JSON tag). */
export type EventName = (typeof EVENT_LAYOUT)[number][0];

/**
 * `network_key_created`: every signer confirmed the same network key of a scheme other than
 * ECDSA (its tag says which: `0xed` Ed25519, `0x54` BIP-340); keys of that scheme can now be
 * registered (PROTOCOL.md §7.7).
 */
export interface NetworkKeyCreatedEvent {
  network_key: Hex;
}

/** A block. */
export interface Block {
  header: BlockHeader;
  transactions: unknown[];
  events: LedgerEvent[];
}

/** A signer-set change in progress (PROTOCOL.md §4.4 "Records", §8.4). */
export interface PendingReshare {
  started: bigint;
  old_signers: Hex[];
  new_signers: Hex[];
  new_threshold: number;
  /** New signers that confirmed the unchanged ECDSA network key. */
  confirmations: Hex[];
  /**
   * The Ed25519 and BIP-340 network keys that follow this reshare, tagged: the signer set's
   * `scheme_keys` when the threshold stays, empty when it changes (the new set then makes fresh
   * ones). A ledger older than these keys leaves it out.
   */
  scheme_keys: Hex[];
  /** New signers' confirmations of `scheme_keys`: `[signer, key]`. */
  scheme_confirmations: Array<[Hex, Hex]>;
}

/** A pending reshare's fields in order (PROTOCOL.md §4.4; postcard writes them so). */
export const PENDING_RESHARE_FIELDS: ReadonlyArray<keyof PendingReshare> = [
  "started",
  "old_signers",
  "new_signers",
  "new_threshold",
  "confirmations",
  "scheme_keys",
  "scheme_confirmations",
];

/** The signer set and the network keys (PROTOCOL.md §4.4 "Records"). */
export interface SignerSet {
  signers: Hex[];
  threshold: number;
  /** The ECDSA (`ecdsa-secp256k1`) network key, once the jump start is done. */
  network_key: Hex | null;
  jump_start: "ready" | "done" | { in_progress: { block: bigint; confirmations: Array<[Hex, Hex]> } };
  pending_reshare: PendingReshare | null;
  excluded: Array<{ account: Hex; until: bigint }>;
  disputes: Array<{ accuser: Hex; accused: Hex; until: bigint }>;
  /**
   * The network keys of the other schemes made so far, tagged (`0xed…` Ed25519, then `0x54…`
   * BIP-340; PROTOCOL.md §7.7). A ledger older than these schemes leaves it out.
   */
  scheme_keys: Hex[];
  /** The signers' confirmations of other schemes' keys not yet complete: `[signer, key]`. */
  scheme_confirmations: Array<[Hex, Hex]>;
}

/** The signer set's fields in order (PROTOCOL.md §4.4; postcard writes them so). */
export const SIGNER_SET_FIELDS: ReadonlyArray<keyof SignerSet> = [
  "signers",
  "threshold",
  "network_key",
  "jump_start",
  "pending_reshare",
  "excluded",
  "disputes",
  "scheme_keys",
  "scheme_confirmations",
];

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
