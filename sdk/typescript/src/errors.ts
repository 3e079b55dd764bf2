/**
 * Typed errors. Every failure the SDK reports is a {@link SigilError} with a stable `code`:
 * a node's code (PROTOCOL.md §7.6) in {@link NodeError}, a ledger's JSON-RPC error
 * (PROTOCOL.md §4.3) in {@link LedgerError}, an answer that fails verification in
 * {@link BadResponseError}, a transport failure in {@link ConnectionError}.
 * @module
 */

/** Every code a node answers with (PROTOCOL.md §7.6), with its HTTP status. */
export const NODE_ERROR_STATUS = {
  unsupported_version: 400,
  wrong_recipient: 400,
  decryption_failed: 400,
  malformed_envelope: 400,
  bad_signature: 401,
  recipient_mismatch: 400,
  unexpected_sender: 400,
  expired: 400,
  from_the_future: 400,
  payload_too_large: 413,
  unsupported_media_type: 415,
  bad_request: 400,
  malformed_request: 400,
  message_too_large: 413,
  unknown_block: 400,
  stale_block: 400,
  unregistered_key: 404,
  not_authorised: 403,
  aux_data_mismatch: 400,
  bad_hash_index: 400,
  bad_message_for_hash: 400,
  program_denied: 403,
  program_out_of_fuel: 403,
  program_trap: 403,
  program_invalid_aux_data: 403,
  program_invalid_config: 403,
  program_memory_limit: 403,
  program_invalid_bytecode: 403,
  program_forbidden_import: 403,
  program_missing_export: 403,
  program_bad_export_type: 403,
  program_instantiation: 403,
  program_bad_custom_hash: 403,
  not_a_relayer: 403,
  not_a_validator: 403,
  not_a_signer: 403,
  not_in_committee: 403,
  wrong_committee: 403,
  bad_ticket: 400,
  replayed: 409,
  rate_limited: 429,
  unknown_request: 404,
  bad_request_id: 400,
  not_a_websocket: 400,
  not_found: 404,
  method_not_allowed: 405,
  bad_json: 400,
  bad_fault: 400,
  not_ready: 503,
  no_committee: 503,
  ledger_unavailable: 502,
  signer_unreachable: 502,
  bad_signer_answer: 502,
  signing_failed: 502,
  nonce_refused: 502,
  metrics_unavailable: 503,
  internal: 500,
  busy: 503,
} as const;

/** A code a node answers with (PROTOCOL.md §7.6). */
export type NodeErrorCode = keyof typeof NODE_ERROR_STATUS;

/** Whether `code` is one of the node codes this SDK knows. */
export function isNodeErrorCode(code: string): code is NodeErrorCode {
  return Object.prototype.hasOwnProperty.call(NODE_ERROR_STATUS, code);
}

/** The `data.code` of a ledger's error 1000 (PROTOCOL.md §4.3). */
export type TransactionErrorCode =
  | "bad_nonce"
  | "bad_signature"
  | "unauthorised"
  | "insufficient_balance"
  | "not_found"
  | "already_exists"
  | "wrong_state"
  | "invalid";

/** JSON-RPC error codes of the ledger (PROTOCOL.md §4.3) and the SDK's names for them. */
export const LEDGER_RPC_CODES = {
  [-32700]: "parse_error",
  [-32600]: "invalid_request",
  [-32601]: "method_not_found",
  [-32602]: "invalid_params",
  [-32603]: "internal_error",
  1000: "transaction_rejected",
  1001: "pool_full",
  1002: "duplicate",
  1003: "storage_failure",
  1004: "shutting_down",
  1005: "needs_websocket",
} as const satisfies Record<number, string>;

/** The SDK's name of a ledger JSON-RPC error code other than 1000. */
export type LedgerRpcErrorName = (typeof LEDGER_RPC_CODES)[keyof typeof LEDGER_RPC_CODES];

/** The base of every error the SDK throws. `code` is stable: match on it, not on the text. */
export class SigilError extends Error {
  /** A stable, snake_case code. */
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "SigilError";
    this.code = code;
  }
}

/**
 * A node refused or failed a request: `code` is its stable code (PROTOCOL.md §7.6), `status`
 * the HTTP status. A code the SDK does not know is kept as is (treat it as a node failure).
 */
export class NodeError extends SigilError {
  /** The HTTP status. */
  readonly status: number;
  /** The node's code: one of {@link NodeErrorCode}, or a newer code kept verbatim. */
  declare readonly code: NodeErrorCode | (string & {});
  /** The URL that answered. */
  readonly url: string;

  constructor(status: number, code: string, message: string, url: string) {
    super(code, `${code}: ${message} (HTTP ${status})`);
    this.name = "NodeError";
    this.status = status;
    this.url = url;
  }

  /** Whether the code is one PROTOCOL.md §7.6 lists. */
  get known(): boolean {
    return isNodeErrorCode(this.code);
  }

  /** Whether a retry may succeed (`5xx`: the node or its committee failed, not the request). */
  get retryable(): boolean {
    return this.status >= 500 || this.code === "rate_limited" || this.code === "busy";
  }
}

/**
 * The ledger answered a JSON-RPC call with an error. For error 1000 (a refused transaction, or
 * one whose call failed in a block) `code` is the reason's code (`bad_nonce`, `unauthorised`,
 * …) and `included` the block that holds it when the call failed there (fee paid); otherwise
 * `code` names the JSON-RPC error (`invalid_params`, `pool_full`, …).
 */
export class LedgerError extends SigilError {
  /** The JSON-RPC error code (-32700…-32600, 1000…1005). */
  readonly rpcCode: number;
  declare readonly code: TransactionErrorCode | LedgerRpcErrorName | (string & {});
  /** For a failed call: the block holding the transaction (its fee was paid). */
  readonly included: bigint | undefined;
  /** The error object's `data`, as sent. */
  readonly data: unknown;

  constructor(rpcCode: number, message: string, data?: unknown) {
    const detail = transactionDetail(data);
    const code =
      rpcCode === 1000 && detail?.code
        ? detail.code
        : ((LEDGER_RPC_CODES as Record<number, string>)[rpcCode] ?? `rpc_${rpcCode}`);
    const text = detail?.message && !message.includes(detail.message) ? `${message}: ${detail.message}` : message;
    super(code, `${text} (ledger error ${rpcCode})`);
    this.name = "LedgerError";
    this.rpcCode = rpcCode;
    this.included = detail?.included;
    this.data = data;
  }
}

function transactionDetail(
  data: unknown,
): { code?: string; message?: string; included?: bigint } | undefined {
  if (typeof data !== "object" || data === null) return undefined;
  const record = data as Record<string, unknown>;
  const out: { code?: string; message?: string; included?: bigint } = {};
  if (typeof record.code === "string") out.code = record.code;
  if (typeof record.message === "string") out.message = record.message;
  if (typeof record.included === "number" || typeof record.included === "string" || typeof record.included === "bigint") {
    out.included = BigInt(record.included);
  }
  return out;
}

/** A node's or ledger's answer did not verify (wrong signature, attestation or committee). */
export class BadResponseError extends SigilError {
  constructor(message: string) {
    super("bad_response", `the answer is not valid: ${message}`);
    this.name = "BadResponseError";
  }
}

/** A ledger or node could not be reached, or answered with something that is not Sigil's. */
export class ConnectionError extends SigilError {
  /** The URL tried. */
  readonly url: string;

  constructor(url: string, message: string, options?: { cause?: unknown; code?: string }) {
    super(options?.code ?? "unreachable", `${url}: ${message}`, options);
    this.name = "ConnectionError";
    this.url = url;
  }
}

/** A request could not be built: a bad argument (code `invalid_argument`) or another local reason. */
export class UsageError extends SigilError {
  constructor(message: string, code = "invalid_argument") {
    super(code, message);
    this.name = "UsageError";
  }
}

/** Waiting for something (a result, a subscription) took longer than allowed. */
export class TimeoutError extends SigilError {
  constructor(message: string) {
    super("timeout", message);
    this.name = "TimeoutError";
  }
}
