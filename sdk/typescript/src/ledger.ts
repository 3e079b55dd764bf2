/**
 * {@link LedgerClient}: typed reads and subscriptions of a ledger (PROTOCOL.md §4.3), signed
 * transactions with their nonce and wait, and the user's flows on top: transfer, store a
 * program, register a key (with its access list), and ask the network for signatures through
 * a relayer, verified before they are returned (§7).
 * @module
 */

import { keccak_256 } from "@noble/hashes/sha3.js";
import {
  type Address,
  type Hex as ViemHex,
  type TransactionSerializableEIP1559,
  type TransactionSerializedEIP1559,
  numberToHex,
  serializeTransaction,
} from "viem";

import { type Account, accountId, sameAccount } from "./account.js";
import { type Hex, toBytes, toHex, utf8 } from "./bytes.js";
import { headerHash } from "./committee.js";
import { type EnvelopeJson, type SignedPlaintext, sealPlaintext, signPlaintext } from "./envelope.js";
import { BadResponseError, ConnectionError, SigilError, TimeoutError, UsageError } from "./errors.js";
import {
  type KeyAddress,
  type KeyScheme,
  deriveVerifyingKey,
  ethAddress,
  formatPath,
  keyAddress,
  keyScheme,
  parsePath,
  registrationPath,
  splitSignature,
} from "./keys.js";
import { type NodeClientOptions, NodeClient, type RelayResponse, type ResponseCheck, verifyRelayResponse } from "./node.js";
import type {
  AccountRecord,
  Block,
  BlockHeader,
  LedgerEvent,
  OffenceRecord,
  ParametersRecord,
  ProgramRecord,
  ProgramSummary,
  Registration,
  SignerSet,
  SubmitResult,
  ValidatorRecord,
} from "./records.js";
import { findEvent, withBigInts } from "./records.js";
import { type RpcOptions, type RpcTransport, type Subscription, connectRpc } from "./rpc.js";
import { type HashingAlgorithm, checkHashingForKey, encodeSignatureRequest, requestDigest } from "./request.js";
import { type BytesLike, type Call, type ProgramInstance, type U64, programId, signTransaction } from "./tx.js";

/** Options of {@link LedgerClient.connect}. */
export interface LedgerClientOptions extends RpcOptions, NodeClientOptions {}

/** An event with the block that emitted it (`ledger_newEvent`). */
export interface EventNotification {
  block: bigint;
  event: LedgerEvent;
}

/** A program to store (PROTOCOL.md §4.1 `store_program`). */
export interface ProgramContents {
  /** The WebAssembly component. */
  bytecode: BytesLike;
  /** JSON schema of its configuration (default empty). */
  configSchema?: BytesLike;
  /** JSON schema of its auxiliary data (default empty). */
  auxSchema?: BytesLike;
  /** Oracle keys it reads (default none). */
  oracleKeys?: string[];
  /** Host interface version (default 1). */
  version?: number;
}

/** Options of {@link LedgerClient.register}. */
export interface RegisterOptions {
  /** The key's programs (1 to 5). */
  programs: ProgramInstance[];
  /** Whether anyone may request signatures (default false: the owner and whom it authorises). */
  public?: boolean;
  /**
   * The key's signature scheme (default `ecdsa-secp256k1`): `ed25519` and `bip340` keys are
   * children of those schemes' network keys, which the network makes after the jump start.
   */
  scheme?: KeyScheme;
}

/** A registered key. */
export interface RegisteredKey {
  /**
   * The key's 33-byte identifier, tagged by scheme: `0x02`/`0x03` compressed secp256k1
   * (ECDSA), `0xed ‖ 32` Ed25519, `0x54 ‖ 32` BIP-340 x-only (PROTOCOL.md §1).
   */
  verifyingKey: Hex;
  /** Its signature scheme. */
  scheme: KeyScheme;
  /** Its derivation path from its scheme's network key, `"m/…"`. */
  derivationPath: string;
  /** Its address: Ethereum (ECDSA), Solana (Ed25519) or Taproot mainnet (BIP-340). */
  address: KeyAddress;
  /** Its Ethereum address (ECDSA keys only). */
  ethAddress?: Address;
  /** The block that registered it. */
  block: bigint;
}

/** A registered ECDSA key, which has an Ethereum address. */
export interface RegisteredEcdsaKey extends RegisteredKey {
  scheme: "ecdsa-secp256k1";
  ethAddress: Address;
}

/** Options of a signing request. */
export interface SignOptions {
  /**
   * How the message is hashed (default `keccak256`). `none` signs the message itself and only
   * suits Ed25519 keys (others are refused here, `bad_message_for_hash`, as the node would).
   */
  hashing?: HashingAlgorithm;
  /** One auxiliary data item per program of the key (default: an empty item for each). */
  auxData?: BytesLike[];
  /** The relayer: a URL (`http://host:port`) or ledger endpoint; default a random relayer. */
  relayer?: string;
  /** The request's block (default: the head). */
  block?: U64;
  /** The envelope's timestamp in ms (default now; tests use it to provoke `expired`). */
  timestampMs?: U64;
  /** Check that the committee is the one §6 selects (default true). */
  checkCommittee?: boolean;
}

/** An ECDSA key's signature the network made and this client verified. */
export interface EcdsaSignature extends RelayResponse {
  scheme: "ecdsa-secp256k1";
  /** `r`, `s` and the y-parity of the 65-byte signature. */
  r: ViemHex;
  s: ViemHex;
  yParity: 0 | 1;
}

/**
 * An Ed25519 or BIP-340 key's signature the network made and this client verified: its
 * `signature` is 64 bytes, `R ‖ S` (RFC 8032) or `x(R) ‖ s` (BIP-340).
 */
export interface SchnorrSignature extends RelayResponse {
  scheme: "ed25519" | "bip340";
}

/**
 * A signature the network made and this client verified; `scheme` (the key's) says which
 * kind: check `signature.scheme === "ecdsa-secp256k1"` before reading `r`, `s`, `yParity`.
 */
export type Signature = EcdsaSignature | SchnorrSignature;

/** A request built and sealed, not yet sent (see {@link LedgerClient.prepareSign}). */
export interface PreparedRequest {
  /** The relayer it is sealed to. */
  relayer: NodeClient;
  /** The relayer's ledger record. */
  relayerRecord: ValidatorRecord;
  /** The envelope to post. */
  envelope: EnvelopeJson;
  /** The signed plaintext inside it. */
  plaintext: SignedPlaintext;
  /** What the answer must satisfy. */
  check: ResponseCheck;
}

/** A signed EIP-1559 transaction. */
export interface SignedEthTransaction {
  /** The raw signed transaction (EIP-2718), ready for `eth_sendRawTransaction`. */
  raw: TransactionSerializedEIP1559;
  /** Its transaction hash. */
  hash: ViemHex;
  /** The sender: the key's Ethereum address. */
  from: Address;
  /** The network's verified answer. */
  signature: EcdsaSignature;
}

/** A connection to a ledger node, with the user's operations. */
export class LedgerClient {
  private chainIdCache: string | undefined;

  private constructor(
    /** The JSON-RPC transport (for methods this client does not wrap). */
    readonly rpc: RpcTransport,
    private readonly options: LedgerClientOptions,
  ) {}

  /**
   * Connects to a ledger's JSON-RPC: `ws://host:port` (subscriptions work; on Node 20 pass
   * `options.webSocket`, e.g. the `ws` package's `WebSocket`) or `http://host:port`.
   */
  static async connect(url: string, options: LedgerClientOptions = {}): Promise<LedgerClient> {
    const client = new LedgerClient(await connectRpc(url, options), options);
    await client.chainId();
    return client;
  }

  /** Closes the connection. */
  close(): void {
    this.rpc.close();
  }

  private async call<T>(method: string, ...params: unknown[]): Promise<T> {
    return withBigInts<T>(await this.rpc.call(method, params));
  }

  // ---- reads (§4.3) ----

  /** The chain id transactions are signed for. */
  async chainId(): Promise<string> {
    this.chainIdCache ??= (await this.rpc.call("ledger_chainId", [])) as string;
    return this.chainIdCache;
  }

  /** The newest block header. */
  head(): Promise<BlockHeader> {
    return this.call("ledger_head");
  }

  /** The block at `height`, or null. */
  block(height: U64): Promise<Block | null> {
    return this.call("ledger_block", BigInt(height));
  }

  /** The height of the block that holds a transaction, or null. */
  txBlock(hash: string): Promise<bigint | null> {
    return this.rpc.call("ledger_txBlock", [hash]).then((h) => (h === null ? null : BigInt(h as number)));
  }

  /** An account's balance, nonce and deposits. */
  account(id: BytesLike | Account): Promise<AccountRecord> {
    return this.call("ledger_account", accountId(id as BytesLike));
  }

  /** An account's spendable balance. */
  async balance(id: BytesLike | Account): Promise<bigint> {
    return (await this.account(id)).balance;
  }

  /** The nonce of the account's next transaction, counting pending ones. */
  async nextNonce(id: BytesLike | Account): Promise<bigint> {
    return BigInt((await this.rpc.call("ledger_nextNonce", [accountId(id as BytesLike)])) as number);
  }

  /** Every validator. */
  validators(): Promise<ValidatorRecord[]> {
    return this.call("ledger_validators");
  }

  /** One validator, or null. */
  validator(id: BytesLike): Promise<ValidatorRecord | null> {
    return this.call("ledger_validator", accountId(id));
  }

  /**
   * The signer set and the network keys. `scheme_keys` and `scheme_confirmations` (of the set
   * and of its `pending_reshare`) are empty lists when the ledger predates them.
   */
  async signerSet(): Promise<SignerSet> {
    const set = await this.call<SignerSet>("ledger_signerSet");
    const reshare = set.pending_reshare;
    return {
      ...set,
      pending_reshare:
        reshare === null || reshare === undefined
          ? null
          : { ...reshare, scheme_keys: reshare.scheme_keys ?? [], scheme_confirmations: reshare.scheme_confirmations ?? [] },
      scheme_keys: set.scheme_keys ?? [],
      scheme_confirmations: set.scheme_confirmations ?? [],
    };
  }

  /**
   * The network key of `scheme` (default ECDSA): `network_key`, or the one of `scheme_keys`
   * with that scheme's tag; null while the network has none.
   */
  async networkKey(scheme: KeyScheme = "ecdsa-secp256k1"): Promise<Hex | null> {
    return networkKeyOf(await this.signerSet(), scheme);
  }

  /** A stored program, or null. */
  program(id: BytesLike): Promise<ProgramRecord | null> {
    return this.call("ledger_program", toHex(toBytes(id, 32, "program id")));
  }

  /** Every stored program. */
  programs(): Promise<ProgramSummary[]> {
    return this.call("ledger_programs");
  }

  /** A key's registration, or null. */
  registration(verifyingKey: BytesLike): Promise<Registration | null> {
    return this.call("ledger_registration", toHex(toBytes(verifyingKey, 33, "verifying key")));
  }

  /** The registrations of `owner` (every registration with null), as `[key, registration]`. */
  registrations(owner: BytesLike | null = null): Promise<Array<[Hex, Registration]>> {
    return this.call("ledger_registrations", owner === null ? null : accountId(owner));
  }

  /** The ledger's parameters. */
  parameters(): Promise<ParametersRecord> {
    return this.call("ledger_parameters");
  }

  /** The governance account. */
  governance(): Promise<Hex> {
    return this.call("ledger_governance");
  }

  /** Every offence record. */
  offences(): Promise<OffenceRecord[]> {
    return this.call("ledger_offences");
  }

  /** The offence records of up to 16 sessions. */
  sessionOffences(sessions: BytesLike[]): Promise<OffenceRecord[]> {
    return this.call("ledger_sessionOffences", sessions.map((s) => toHex(toBytes(s, 32, "session id"))));
  }

  /** The state digest after the head. */
  stateDigest(): Promise<Hex> {
    return this.call("ledger_stateDigest");
  }

  /** The oracle data of a block (what programs read), or null. */
  oracle(height: U64): Promise<{ block_number: bigint; timestamp_ms: bigint } | null> {
    return this.call("ledger_oracle", BigInt(height));
  }

  /** The relayers: validators outside the signer set (PROTOCOL.md §7). */
  async relayers(): Promise<ValidatorRecord[]> {
    const [validators, set] = await Promise.all([this.validators(), this.signerSet()]);
    const signers = new Set(set.signers.map((s) => s.toLowerCase()));
    return validators.filter((v) => !signers.has(v.account.toLowerCase()));
  }

  // ---- subscriptions (websocket) ----

  /** New block headers (`ledger_subscribeHeads`, notifications `ledger_newHead`). */
  async subscribeHeads(): Promise<Subscription<BlockHeader>> {
    const sub = await this.rpc.subscribe("ledger_subscribeHeads", [], "ledger_newHead", "ledger_unsubscribeHeads");
    return sub.map((header) => withBigInts<BlockHeader>(header));
  }

  /** Events concerning `accounts` and named in `names` (empty: all). */
  async subscribeEvents(filter: { accounts?: BytesLike[]; names?: string[] } = {}): Promise<Subscription<EventNotification>> {
    const params = { accounts: (filter.accounts ?? []).map((a) => accountId(a)), names: filter.names ?? [] };
    const sub = await this.rpc.subscribe("ledger_subscribeEvents", [params], "ledger_newEvent", "ledger_unsubscribeEvents");
    return sub.map((n) => withBigInts<EventNotification>(n));
  }

  // ---- transactions (§4.1) ----

  /**
   * Signs `call` as `account` at its next nonce and submits it. With `wait` (the default) it
   * returns once a block included it, with the events it emitted; a refused transaction, or
   * one whose call failed in its block (fee paid, `included` set), throws a `LedgerError`.
   */
  async submit(account: Account, call: Call, options: { wait?: boolean; nonce?: U64 } = {}): Promise<SubmitResult> {
    const nonce = options.nonce ?? (await this.nextNonce(account));
    const signed = signTransaction(account, await this.chainId(), nonce, call);
    return this.call("ledger_submit", signed.json, options.wait ?? true);
  }

  /** Transfers `amount` from `account` to `to` and waits for the block. */
  transfer(account: Account, to: BytesLike | Account, amount: U64): Promise<SubmitResult> {
    return this.submit(account, { transfer: { to: accountId(to as BytesLike), amount: BigInt(amount) } });
  }

  /**
   * Stores a program (unless the ledger has it already) and returns its id, computed locally
   * (PROTOCOL.md §4.1) and checked against the ledger's `program_stored` event.
   */
  async storeProgram(account: Account, contents: ProgramContents): Promise<{ programId: Hex; stored: boolean }> {
    const id = programId(contents);
    if (await this.program(id)) return { programId: id, stored: false };
    const result = await this.submit(account, {
      store_program: {
        bytecode: contents.bytecode,
        config_schema: contents.configSchema ?? "0x",
        aux_schema: contents.auxSchema ?? "0x",
        oracle_keys: contents.oracleKeys ?? [],
        version: contents.version ?? 1,
      },
    });
    const stored = findEvent<{ program: Hex }>(result.events, "program_stored");
    if (!stored || stored.program.toLowerCase() !== id) {
      throw new BadResponseError(`the ledger stored ${stored?.program ?? "nothing"}, not program ${id}`);
    }
    return { programId: id, stored: true };
  }

  /**
   * Registers a new key of `scheme` (default `ecdsa-secp256k1`; or `ed25519`, `bip340`) with
   * `programs` (1 to 5) for `account`, `public` or not (default: only the owner and the
   * accounts it authorises may use it). The key is derived locally from the scheme's network
   * key and the registration's path (PROTOCOL.md §2, §4.1) and must equal the one the ledger
   * reports; the result is its tagged 33-byte identifier. A scheme whose network key the
   * network has not made yet is refused by the ledger (`wrong_state`).
   */
  register(account: Account, options: RegisterOptions & { scheme?: "ecdsa-secp256k1" }): Promise<RegisteredEcdsaKey>;
  /** Registers a key of any scheme (see above); its `address` is the scheme's chain's. */
  register(account: Account, options: RegisterOptions): Promise<RegisteredKey>;
  async register(account: Account, options: RegisterOptions): Promise<RegisteredKey> {
    const scheme = options.scheme ?? "ecdsa-secp256k1";
    const nonce = await this.nextNonce(account);
    const result = await this.submit(
      account,
      {
        register: {
          programs: options.programs,
          public: options.public ?? false,
          ...(options.scheme !== undefined ? { scheme: options.scheme } : {}),
        },
      },
      { nonce },
    );
    const event = findEvent<{ owner: Hex; verifying_key: Hex; derivation_path: string }>(result.events, "registered");
    if (!event) throw new BadResponseError("the ledger reported no registered event");
    const path = registrationPath(await this.chainId(), account.publicKey, nonce);
    if (formatPath(path) !== event.derivation_path) {
      throw new BadResponseError(`the ledger registered path ${event.derivation_path}, not ${formatPath(path)}`);
    }
    const verifyingKey = await this.deriveKey(path, scheme);
    if (verifyingKey !== event.verifying_key.toLowerCase()) {
      throw new BadResponseError(`the ledger registered ${event.verifying_key}, but the path gives ${verifyingKey}`);
    }
    return {
      verifyingKey,
      scheme,
      derivationPath: event.derivation_path,
      ...addresses(verifyingKey),
      block: result.included ?? 0n,
    };
  }

  /**
   * The key of `scheme` (default ECDSA) at `path` below that scheme's network key
   * (PROTOCOL.md §2), computed locally.
   */
  async deriveKey(path: readonly number[] | string, scheme: KeyScheme = "ecdsa-secp256k1"): Promise<Hex> {
    const networkKey = await this.networkKey(scheme);
    if (!networkKey) {
      const why = scheme === "ecdsa-secp256k1" ? "not jump-started" : "its key generation has not completed";
      throw new UsageError(`the network has no ${scheme} key yet (${why})`, "not_ready");
    }
    return deriveVerifyingKey(networkKey, typeof path === "string" ? parsePath(path) : path);
  }

  /**
   * A registered key, derived locally from its registration and its scheme's network key:
   * its identifier, scheme and address (Ethereum address too for ECDSA keys).
   */
  async keyOf(verifyingKey: BytesLike): Promise<{
    verifyingKey: Hex;
    scheme: KeyScheme;
    address: KeyAddress;
    ethAddress?: Address;
    registration: Registration;
  }> {
    const registration = await this.registration(verifyingKey);
    if (!registration) throw new SigilError("unregistered_key", `key ${toHex(toBytes(verifyingKey))} is not registered`);
    const scheme = keyScheme(verifyingKey);
    const derived = await this.deriveKey(registration.derivation_path, scheme);
    if (derived !== toHex(toBytes(verifyingKey, 33))) {
      throw new BadResponseError(`the registration's path gives ${derived}`);
    }
    return { verifyingKey: derived, scheme, ...addresses(derived), registration };
  }

  /** Lets `who` request signatures with the key (owner only). */
  authorise(owner: Account, verifyingKey: BytesLike, who: BytesLike | Account): Promise<SubmitResult> {
    return this.submit(owner, { authorise: { verifying_key: verifyingKey, account: accountId(who as BytesLike) } });
  }

  /** Withdraws {@link authorise} (owner only). */
  deauthorise(owner: Account, verifyingKey: BytesLike, who: BytesLike | Account): Promise<SubmitResult> {
    return this.submit(owner, { deauthorise: { verifying_key: verifyingKey, account: accountId(who as BytesLike) } });
  }

  /** Opens the key to everyone (programs the only gate) or closes it again (owner only). */
  setPublic(owner: Account, verifyingKey: BytesLike, isPublic: boolean): Promise<SubmitResult> {
    return this.submit(owner, { set_public: { verifying_key: verifyingKey, public: isPublic } });
  }

  /** Unregisters the key (owner only); its deposit returns. */
  unregister(owner: Account, verifyingKey: BytesLike): Promise<SubmitResult> {
    return this.submit(owner, { unregister: { verifying_key: verifyingKey } });
  }

  // ---- signing (§7) ----

  /** The relayer to use: `options.relayer` (checked against the ledger) or a random one. */
  private async pickRelayer(relayer?: string): Promise<{ node: NodeClient; record: ValidatorRecord }> {
    if (relayer !== undefined) {
      const node = new NodeClient(relayer, this.options);
      const info = await node.info();
      const record = await this.validator(info.account);
      if (!record || record.x25519.toLowerCase() !== info.x25519.toLowerCase()) {
        throw new UsageError(`${node.baseUrl} is not a validator on this ledger (or its x25519 key differs)`);
      }
      return { node, record };
    }
    const relayers = await this.relayers();
    if (relayers.length === 0) throw new UsageError("no relayer: every validator is a signer", "no_relayer");
    const record = relayers[Math.floor(Math.random() * relayers.length)]!;
    return { node: new NodeClient(record.endpoint, this.options), record };
  }

  /**
   * Builds, signs and seals a request without sending it: for sending it yourself (see
   * {@link sendPrepared}), or for tests that alter it.
   */
  async prepareSign(
    account: Account,
    verifyingKey: BytesLike,
    message: Uint8Array,
    options: SignOptions = {},
  ): Promise<PreparedRequest> {
    const vk = toHex(toBytes(verifyingKey, 33, "verifying key"));
    const bytes = message;
    const hashing = options.hashing ?? "keccak256";
    checkHashingForKey(hashing, vk);
    const [{ node, record }, head, set] = await Promise.all([
      this.pickRelayer(options.relayer),
      options.block === undefined ? this.head() : Promise.resolve(undefined),
      this.signerSet(),
    ]);
    const block = BigInt(options.block ?? head!.height);
    let auxData = options.auxData;
    if (auxData === undefined) {
      const registration = await this.registration(vk);
      auxData = registration ? registration.programs.map(() => new Uint8Array()) : [];
    }
    const payload = encodeSignatureRequest({ verifyingKey: vk, block, hashing, auxData, message: bytes });
    const plaintext = signPlaintext(account, {
      recipient: record.x25519,
      payload,
      ...(options.timestampMs !== undefined ? { timestampMs: options.timestampMs } : {}),
    });
    const envelope = await sealPlaintext(plaintext.bytes, record.x25519);
    const check: ResponseCheck = {
      requestId: plaintext.requestId,
      digest: requestDigest(plaintext.bytes),
      verifyingKey: vk,
      hashing,
      message: bytes,
      block,
    };
    if (options.checkCommittee ?? true) {
      const blockRecord = await this.block(block);
      if (blockRecord) {
        check.committee = { signers: set.signers, threshold: set.threshold, blockHash: headerHash(blockRecord.header) };
      }
    }
    return { relayer: node, relayerRecord: record, envelope, plaintext, check };
  }

  /**
   * Posts a prepared request and verifies the answer. If the connection fails while the
   * relayer works, the result is read back with `GET /v1/signature/{id}` instead.
   */
  async sendPrepared(prepared: PreparedRequest): Promise<Signature> {
    let response: RelayResponse;
    try {
      response = await prepared.relayer.relay(prepared.envelope);
    } catch (error) {
      if (!(error instanceof ConnectionError || error instanceof TimeoutError) || error.code === "bad_answer") throw error;
      response = await prepared.relayer.waitForSignature(prepared.plaintext.requestId);
    }
    return this.verified(prepared, response);
  }

  /**
   * Verifies a relayer's answer to `prepared` (the signature under the key's scheme) and adds
   * the scheme, and for ECDSA the signature's parts.
   */
  verified(prepared: PreparedRequest, response: RelayResponse): Signature {
    verifyRelayResponse(prepared.check, response);
    if (!sameAccount(response.relayer, prepared.relayerRecord.account)) {
      throw new BadResponseError("the answer names another relayer");
    }
    const scheme = keyScheme(response.verifying_key);
    if (scheme !== "ecdsa-secp256k1") return { ...response, scheme };
    const { r, s, yParity } = splitSignature(response.signature);
    return { ...response, scheme, r: numberToHex(r, { size: 32 }), s: numberToHex(s, { size: 32 }), yParity };
  }

  /**
   * Asks the network to sign `message` with `verifyingKey` as `account`, through a relayer,
   * and verifies the answer (signature against the key, attestations, committee) before
   * returning it. A refusal throws a `NodeError` with the node's code.
   */
  async sign(
    account: Account,
    verifyingKey: BytesLike,
    message: Uint8Array,
    options: SignOptions = {},
  ): Promise<Signature> {
    return this.sendPrepared(await this.prepareSign(account, verifyingKey, message, options));
  }

  /** Signs a UTF-8 text message (hashed with `options.hashing`, default keccak256). */
  signMessage(account: Account, verifyingKey: BytesLike, text: string, options: SignOptions = {}): Promise<Signature> {
    return this.sign(account, verifyingKey, utf8(text), options);
  }

  /** Signs a 32-byte hash as it is (`identity` hashing; for an Ed25519 key, the 32 bytes as the message). */
  signHash(account: Account, verifyingKey: BytesLike, hash: BytesLike, options: SignOptions = {}): Promise<Signature> {
    return this.sign(account, verifyingKey, toBytes(hash, 32, "hash"), { ...options, hashing: "identity" });
  }

  /**
   * Signs an EIP-1559 transaction: the network signs keccak-256 of its signing payload
   * (`0x02 ‖ rlp([...])`, what programs such as `eth-allowlist` read), and the answer
   * completes it into the raw signed transaction. The key must be an ECDSA key.
   */
  async signEip1559(
    account: Account,
    verifyingKey: BytesLike,
    transaction: Omit<TransactionSerializableEIP1559, "type">,
    options: Omit<SignOptions, "hashing"> = {},
  ): Promise<SignedEthTransaction> {
    if (keyScheme(verifyingKey) !== "ecdsa-secp256k1") {
      throw new UsageError("an Ethereum transaction needs an ECDSA (ecdsa-secp256k1) key");
    }
    const unsigned = { ...transaction, type: "eip1559" as const };
    const payload = serializeTransaction(unsigned);
    const signature = await this.sign(account, verifyingKey, toBytes(payload), { ...options, hashing: "keccak256" });
    if (signature.scheme !== "ecdsa-secp256k1") throw new BadResponseError("an ECDSA key answered with another scheme");
    const raw = serializeTransaction(unsigned, {
      r: signature.r,
      s: signature.s,
      yParity: signature.yParity,
    }) as TransactionSerializedEIP1559;
    return {
      raw,
      hash: toHex(keccak_256(toBytes(raw))) as ViemHex,
      from: ethAddress(signature.verifying_key),
      signature,
    };
  }

  /**
   * Reads a request's result from a relayer (`GET /v1/signature/{id}`), waiting while it is
   * pending. Without the prepared request the answer cannot be checked against the digest:
   * pass it to verify.
   */
  async waitForSignature(
    relayer: string | NodeClient,
    requestId: BytesLike,
    prepared?: PreparedRequest,
  ): Promise<RelayResponse | Signature> {
    const node = typeof relayer === "string" ? new NodeClient(relayer, this.options) : relayer;
    const response = await node.waitForSignature(toHex(toBytes(requestId, 32, "request id")));
    return prepared ? this.verified(prepared, response) : response;
  }
}

/**
 * The network key of `scheme` in a signer set: `network_key` for ECDSA, else the key of
 * `scheme_keys` with that scheme's tag; null while the network has none.
 */
export function networkKeyOf(set: Pick<SignerSet, "network_key" | "scheme_keys">, scheme: KeyScheme): Hex | null {
  if (scheme === "ecdsa-secp256k1") return set.network_key;
  return (set.scheme_keys ?? []).find((key) => keyScheme(key) === scheme) ?? null;
}

/** A key's address, and its Ethereum address when it is an ECDSA key. */
function addresses(verifyingKey: Hex): { address: KeyAddress; ethAddress?: Address } {
  const address = keyAddress(verifyingKey);
  return address.chain === "ethereum" ? { address, ethAddress: address.text as Address } : { address };
}
