/**
 * Account keys (PROTOCOL.md §2): an ed25519 key derived with HKDF-SHA256 from a 32-byte seed,
 * which comes from a BIP-39 phrase, a node seed or a dev name.
 * @module
 */

import { ed25519 } from "@noble/curves/ed25519.js";
import { hkdf } from "@noble/hashes/hkdf.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { generateMnemonic, mnemonicToSeedSync, validateMnemonic } from "@scure/bip39";
import { wordlist } from "@scure/bip39/wordlists/english.js";

import { type Hex, equalBytes, toBytes, toHex, utf8 } from "./bytes.js";
import { UsageError } from "./errors.js";

/** HKDF salt of every key derived from a seed. */
const KDF_SALT = utf8("sigil/v1/key-derivation");
/** HKDF info of the ed25519 account key. */
const ACCOUNT_INFO = utf8("sigil/v1/account/ed25519");
/** HKDF info of the x25519 static key. */
const X25519_INFO = utf8("sigil/v1/static/x25519");
/** HKDF info turning a BIP-39 seed into a Sigil seed. */
const MNEMONIC_INFO = utf8("sigil/v1/mnemonic-seed");
/** HKDF info of a dev account's seed (the dev name is the input keying material). */
const DEV_INFO = utf8("sigil/v1/dev-account");

function hkdf32(ikm: Uint8Array, info: Uint8Array): Uint8Array {
  return hkdf(sha256, ikm, KDF_SALT, info, 32);
}

/** The names of the dev accounts a dev ledger funds (PROTOCOL.md §4.1). */
export const DEV_ACCOUNTS = ["alice", "bob", "charlie", "dave", "eve", "faucet"] as const;

/**
 * A user's (or node's) account: an ed25519 key pair. Its id (the public key, `0x…`) is what
 * the ledger knows it by. The secret never leaves the object except through {@link sign}.
 */
export class Account {
  readonly #secret: Uint8Array;
  /** The account id: the 32-byte ed25519 public key. */
  readonly publicKey: Uint8Array;
  /** The account id as `0x`-hex. */
  readonly id: Hex;

  private constructor(secret: Uint8Array) {
    this.#secret = secret;
    this.publicKey = ed25519.getPublicKey(secret);
    this.id = toHex(this.publicKey);
  }

  /** The account of a 32-byte seed (a node seed, or the output of a phrase). */
  static fromSeed(seed: Uint8Array | string): Account {
    return new Account(hkdf32(toBytes(seed, 32, "seed"), ACCOUNT_INFO));
  }

  /**
   * The account of a BIP-39 phrase (English; the empty passphrase), as `sigil account new
   * --phrase-file` derives it.
   */
  static fromPhrase(phrase: string): Account {
    return Account.fromSeed(phraseSeed(phrase));
  }

  /** An account from a raw 32-byte ed25519 secret key (RFC 8032 seed). */
  static fromSecretKey(secret: Uint8Array | string): Account {
    return new Account(Uint8Array.from(toBytes(secret, 32, "secret key")));
  }

  /** A dev account everyone knows (`alice`…`eve`, `faucet`): for dev ledgers only. */
  static dev(name: string): Account {
    return Account.fromSeed(devSeed(name));
  }

  /** A new account and its 24-word phrase (keep the phrase: it is the only backup). */
  static generate(): { account: Account; phrase: string } {
    const phrase = generateMnemonic(wordlist, 256);
    return { account: Account.fromPhrase(phrase), phrase };
  }

  /** Signs `message` (ed25519, RFC 8032). */
  sign(message: Uint8Array): Uint8Array {
    return ed25519.sign(message, this.#secret);
  }

  /** A readable form that shows no secret. */
  toString(): string {
    return `Account(${this.id})`;
  }

  /** JSON shows the id only. */
  toJSON(): Hex {
    return this.id;
  }
}

/** The 32-byte Sigil seed of a BIP-39 phrase (PROTOCOL.md §2). */
export function phraseSeed(phrase: string): Uint8Array {
  const normalised = phrase.trim().split(/\s+/).join(" ").toLowerCase();
  if (!validateMnemonic(normalised, wordlist)) {
    throw new UsageError("invalid recovery phrase (unknown word, bad checksum or word count)", "invalid_phrase");
  }
  return hkdf32(mnemonicToSeedSync(normalised, ""), MNEMONIC_INFO);
}

/** The seed of the dev identity `name`: HKDF-SHA256 of the name with the dev info. */
export function devSeed(name: string): Uint8Array {
  return hkdf32(utf8(name), DEV_INFO);
}

/** The x25519 static secret key of a node seed (PROTOCOL.md §2), for tests and tools. */
export function x25519SecretFromSeed(seed: Uint8Array): Uint8Array {
  return hkdf32(toBytes(seed, 32, "seed"), X25519_INFO);
}

/**
 * Verifies an ed25519 signature strictly, as Sigil's nodes and ledger do (canonical `S`, no
 * small-order keys or `R`).
 */
export function verifyEd25519(publicKey: Uint8Array | string, message: Uint8Array, signature: Uint8Array | string): boolean {
  try {
    const key = toBytes(publicKey, 32, "public key");
    const sig = toBytes(signature, 64, "signature");
    if (ed25519.Point.fromBytes(key).isSmallOrder()) return false;
    if (ed25519.Point.fromBytes(sig.subarray(0, 32)).isSmallOrder()) return false;
    return ed25519.verify(sig, message, key, { zip215: false });
  } catch {
    return false;
  }
}

/** Whether `id` is a valid account id (a 32-byte ed25519 point of large order). */
export function isAccountId(id: Uint8Array | string): boolean {
  try {
    return !ed25519.Point.fromBytes(toBytes(id, 32)).isSmallOrder();
  } catch {
    return false;
  }
}

/** Normalises an account id (bytes or hex, any case) to lowercase `0x`-hex. */
export function accountId(id: Uint8Array | string | Account): Hex {
  if (id instanceof Account) return id.id;
  return toHex(toBytes(id, 32, "account id"));
}

/** Whether two account ids (any form) are the same. */
export function sameAccount(a: Uint8Array | string, b: Uint8Array | string): boolean {
  return equalBytes(toBytes(a, 32), toBytes(b, 32));
}
