/**
 * A node's HTTP API (PROTOCOL.md §7): relay a sealed request, read a kept result, read the
 * node's info; and the checks a client makes of a relayer's answer (§7.4).
 * @module
 */

import { verifyEd25519 } from "./account.js";
import { type Hex, equalBytes, fromHex, toBytes, toHex } from "./bytes.js";
import { selectCommittee } from "./committee.js";
import type { EnvelopeJson } from "./envelope.js";
import { BadResponseError, ConnectionError, NODE_ERROR_STATUS, NodeError, TimeoutError, isNodeErrorCode } from "./errors.js";
import { parseJson, stringifyJson } from "./json.js";
import { verifyUserSignature } from "./keys.js";
import { withBigInts } from "./records.js";
import { type HashingAlgorithm, attestationPayload, messageHash, signedBytes } from "./request.js";

/** A committee member's attestation of the signature (§7.4). */
export interface Attestation {
  signer: Hex;
  attestation: Hex;
}

/** One attempt of a relayed request (§7.3). */
export interface AttemptReport {
  attempt: number;
  committee: Hex[];
  excluded: Hex[];
  error?: { code: string; message: string };
}

/** An offence recorded during a request's attempts (§7.3). */
export interface OffenceSummary {
  attempt: number;
  offender: Hex;
  kind: string;
  reporters: Hex[];
  recorded?: bigint;
  slashed: bigint;
}

/** A relayer's answer (§7.3). */
export interface RelayResponse {
  request_id: Hex;
  /** The key that signed (33 bytes, tagged by scheme). */
  verifying_key: Hex;
  /** The 32-byte prehash that was signed; for hashing `none`, the SHA-256 of the message. */
  message_hash: Hex;
  /** 65 bytes `r ‖ s ‖ v` for an ECDSA key; 64 for Ed25519 (`R ‖ S`) and BIP-340 (`x(R) ‖ s`). */
  signature: Hex;
  block: bigint;
  attempt: number;
  committee: Hex[];
  relayer: Hex;
  attestations: Attestation[];
  attempts?: AttemptReport[];
  offences?: OffenceSummary[];
}

/** `GET /v1/signature/{id}` (§7.5). */
export interface SignatureStatus {
  request_id: Hex;
  status: "pending" | "done" | "failed";
  result?: RelayResponse;
  error?: { code: string; message: string };
  attempts?: AttemptReport[];
  offences?: OffenceSummary[];
}

/** `GET /v1/info` (§7.5). */
export interface NodeInfo {
  account: Hex;
  x25519: Hex;
  endpoint: string;
  version: string;
  ready: boolean;
  validator: boolean;
  signer: boolean;
  head: number;
  network_key: Hex | null;
  [field: string]: unknown;
}

/** Options of a {@link NodeClient}. */
export interface NodeClientOptions {
  /** The `fetch` implementation (default: `globalThis.fetch`). */
  fetch?: typeof fetch;
  /** How long a relay may take, in milliseconds (default 300 s: retries take a while). */
  timeoutMs?: number;
}

/** An HTTP client for one node. */
export class NodeClient {
  /** `http://host:port`, no trailing slash. */
  readonly baseUrl: string;
  private readonly fetch: typeof fetch;
  private readonly timeoutMs: number;

  /** A client for `url` (`http://host:port`) or an `endpoint` (`host:port`) as the ledger lists it. */
  constructor(url: string, options: NodeClientOptions = {}) {
    this.baseUrl = (/^https?:\/\//i.test(url) ? url : `http://${url}`).replace(/\/+$/, "");
    this.fetch = (options.fetch ?? globalThis.fetch).bind(globalThis);
    this.timeoutMs = options.timeoutMs ?? 300_000;
  }

  /** `POST /v1/relay` with an envelope; the relayer's answer, not yet verified. */
  async relay(envelope: EnvelopeJson): Promise<RelayResponse> {
    return withBigInts(await this.request("POST", "/v1/relay", stringifyJson(envelope)));
  }

  /** POSTs any body to a route (for tests of malformed requests). */
  async post(path: string, body: string, contentType = "application/json"): Promise<unknown> {
    return this.request("POST", path, body, contentType);
  }

  /** GETs any route (for tests and tools). */
  async get(path: string): Promise<unknown> {
    return this.request("GET", path);
  }

  /** `GET /v1/signature/{id}`: a kept result, unverified. */
  async signatureStatus(requestId: Uint8Array | string): Promise<SignatureStatus> {
    const id = typeof requestId === "string" ? requestId : toHex(requestId);
    return withBigInts(await this.request("GET", `/v1/signature/${id}`));
  }

  /** `GET /v1/info`. */
  async info(): Promise<NodeInfo> {
    return (await this.request("GET", "/v1/info")) as NodeInfo;
  }

  /** `GET /v1/hashes`: the hashing algorithms this node knows. */
  async hashes(): Promise<{ built_in: string[]; custom: string[] }> {
    return (await this.request("GET", "/v1/hashes")) as { built_in: string[]; custom: string[] };
  }

  private async request(method: string, path: string, body?: string, contentType = "application/json"): Promise<unknown> {
    const url = `${this.baseUrl}${path}`;
    let status: number;
    let text: string;
    try {
      const init: RequestInit = { method, signal: AbortSignal.timeout(this.timeoutMs) };
      if (body !== undefined) {
        init.body = body;
        init.headers = { "content-type": contentType };
      }
      const response = await this.fetch(url, init);
      status = response.status;
      text = await response.text();
    } catch (error) {
      if ((error as Error)?.name === "TimeoutError") {
        throw new TimeoutError(`${method} ${url}: no answer within ${this.timeoutMs} ms`);
      }
      throw new ConnectionError(url, `cannot reach the node: ${String((error as Error)?.cause ?? error)}`, { cause: error });
    }
    let parsed: unknown;
    try {
      parsed = parseJson(text);
    } catch {
      throw new ConnectionError(url, `unexpected answer (HTTP ${status}): ${text.slice(0, 200)}`, { code: "bad_answer" });
    }
    if (status >= 200 && status < 300) return parsed;
    const error = (parsed as { error?: { code?: unknown; message?: unknown } })?.error;
    if (error && typeof error.code === "string") {
      throw new NodeError(status, error.code, String(error.message ?? ""), url);
    }
    throw new ConnectionError(url, `unexpected answer (HTTP ${status}): ${text.slice(0, 200)}`, { code: "bad_answer" });
  }

  /**
   * Polls `GET /v1/signature/{id}` until the request is `done` or `failed` (then throws its
   * error as a {@link NodeError}), every `intervalMs` up to `timeoutMs`.
   */
  async waitForSignature(
    requestId: Uint8Array | string,
    options: { intervalMs?: number; timeoutMs?: number } = {},
  ): Promise<RelayResponse> {
    const deadline = Date.now() + (options.timeoutMs ?? 300_000);
    for (;;) {
      let status: SignatureStatus | undefined;
      try {
        status = await this.signatureStatus(requestId);
      } catch (error) {
        // The relayer may not have recorded the request yet.
        if (!(error instanceof NodeError && error.code === "unknown_request")) throw error;
      }
      if (status?.status === "done" && status.result) return status.result;
      if (status?.status === "failed") {
        const code = status.error?.code ?? "internal";
        throw new NodeError(statusOf(code), code, status.error?.message ?? "", `${this.baseUrl}/v1/signature`);
      }
      if (Date.now() > deadline) throw new TimeoutError(`request ${String(requestId)} is still pending`);
      await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 500));
    }
  }
}

function statusOf(code: string): number {
  return isNodeErrorCode(code) ? NODE_ERROR_STATUS[code] : 502;
}

/** What a client knows to check a relayer's answer. */
export interface ResponseCheck {
  /** The request id it sent. */
  requestId: Uint8Array | string;
  /** The request digest (§7.4) of the plaintext it sent. */
  digest: Uint8Array;
  /** The key it asked to sign with (its tag says the scheme the signature is checked under). */
  verifyingKey: Uint8Array | string;
  /** The hashing algorithm and message, to recompute a built-in hash. */
  hashing: HashingAlgorithm;
  message: Uint8Array;
  /** The block the request named. */
  block: bigint;
  /**
   * The signer set to check the committee against, with the hash of the request's block: the
   * committee must be the §6 selection from them (leaving out the signers its attempt
   * excluded). Omit to skip the committee check.
   */
  committee?: { signers: ReadonlyArray<string>; threshold: number; blockHash: Uint8Array | string };
}

/**
 * Checks a relayer's answer (§7.4): for this request, key and block; the hash is the
 * message's (built-in algorithms; SHA-256 for `none`); the signature verifies against the key
 * under its scheme (ECDSA: 65 bytes, low `s`, `v` the y-parity, over the prehash; Ed25519:
 * RFC 8032 over the message for `none`, else over the prehash; BIP-340: over the prehash under
 * the x-only key); one valid attestation per committee member, over the signature's bytes
 * whatever their length; and, when given, that the committee is the one §6 selects. Throws
 * {@link BadResponseError} naming the first failure.
 */
export function verifyRelayResponse(check: ResponseCheck, response: RelayResponse): void {
  const bad = (what: string): never => {
    throw new BadResponseError(what);
  };
  const same = (a: string, b: Uint8Array | string) => {
    try {
      return equalBytes(fromHex(a), toBytes(b));
    } catch {
      return false;
    }
  };
  if (!same(response.request_id, check.requestId)) bad("it is for another request id");
  if (!same(response.verifying_key, check.verifyingKey)) bad("it is for another key");
  if (BigInt(response.block) !== check.block) bad(`it names block ${response.block}, not ${check.block}`);
  const expected = messageHash(check.hashing, check.message);
  if (expected && !same(response.message_hash, expected)) bad("the signed hash is not the hash of the message");
  let signed: Uint8Array;
  try {
    signed = signedBytes(check.hashing, check.message, response.message_hash);
  } catch {
    return bad("the message hash is not 32 bytes");
  }
  if (!verifyUserSignature(response.verifying_key, signed, response.signature)) {
    bad("the signature does not verify against the key");
  }
  const committee = response.committee.map((m) => m.toLowerCase());
  if (new Set(committee).size !== committee.length) bad("the committee lists a member twice");
  if (response.attestations.length !== committee.length) bad("not every committee member attested the signature");
  const attested = new Set<string>();
  let payload: Uint8Array;
  try {
    payload = attestationPayload(check.digest, response.verifying_key, response.message_hash, response.signature);
  } catch {
    return bad("the key, hash or signature is malformed");
  }
  for (const { signer, attestation } of response.attestations) {
    const who = signer.toLowerCase();
    if (!committee.includes(who) || attested.has(who)) bad(`an attestation by ${signer}, not a committee member`);
    if (!verifyEd25519(signer, payload, attestation)) bad(`the attestation of ${signer} does not verify`);
    attested.add(who);
  }
  if (check.committee) {
    const { signers, threshold, blockHash } = check.committee;
    if (committee.length !== threshold) bad(`a committee of ${committee.length}, not the threshold ${threshold}`);
    const attempt = response.attempts?.find((a) => a.attempt === response.attempt);
    const selected = selectCommittee({
      signers,
      threshold,
      leftOut: attempt?.excluded ?? [],
      blockHash,
      requestDigest: check.digest,
      attempt: response.attempt,
    });
    const sorted = [...committee].sort();
    if (!selected || selected.join() !== sorted.join()) bad("the committee is not the one the ledger selects");
  }
}
