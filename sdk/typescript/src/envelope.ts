/**
 * The envelope (PROTOCOL.md §3): a signed plaintext (§3.1) HPKE-sealed to the recipient's
 * x25519 key (§3.2), sent as JSON (§3.3). RFC 9180 comes from the `@hpke/*` packages: base
 * mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305.
 * @module
 */

import { Chacha20Poly1305 } from "@hpke/chacha20poly1305";
import { CipherSuite, HkdfSha256 } from "@hpke/core";
import { DhkemX25519HkdfSha256 } from "@hpke/dhkem-x25519";

import { x25519 } from "@noble/curves/ed25519.js";

import { type Account, verifyEd25519 } from "./account.js";
import { type Hex, concat, equalBytes, fromHex, randomBytes, toBytes, toHex, u32be, u64be, utf8 } from "./bytes.js";
import { SigilError, UsageError } from "./errors.js";

/** The envelope format version. */
export const ENVELOPE_VERSION = 1;
/** The largest payload an envelope carries (PROTOCOL.md §3.1). */
export const MAX_ENVELOPE_PAYLOAD = 1_114_112;
/** The domain the sender's signature covers before the plaintext. */
const SIGNATURE_DOMAIN = utf8("sigil/v1/envelope-signature");
/** HPKE `info` before the recipient's key. */
const HPKE_INFO_PREFIX = utf8("sigil/v1/envelope");

/** The JSON wire form of an envelope (PROTOCOL.md §3.3). */
export interface EnvelopeJson {
  version: number;
  recipient: Hex;
  enc: Hex;
  ciphertext: Hex;
}

/** What goes into a signed plaintext (§3.1). */
export interface PlaintextParams {
  /** The recipient's x25519 public key (32 bytes). */
  recipient: Uint8Array | string;
  /** A random 32-byte request id (default: fresh). */
  requestId?: Uint8Array | string;
  /** Milliseconds since the Unix epoch (default: now). */
  timestampMs?: bigint | number;
  /** A reply key (x25519 public key) for requests that expect a sealed reply (§3.5). */
  replyKey?: Uint8Array | string;
  /** The payload (at most {@link MAX_ENVELOPE_PAYLOAD} bytes). */
  payload: Uint8Array;
}

/** A signed plaintext with its parts. */
export interface SignedPlaintext {
  /** The whole §3.1 plaintext, signature included. */
  bytes: Uint8Array;
  /** The request id in it. */
  requestId: Uint8Array;
  /** Its timestamp. */
  timestampMs: bigint;
}

/** The cipher suite of §3.2. */
export function envelopeSuite(): CipherSuite {
  return new CipherSuite({
    kem: new DhkemX25519HkdfSha256(),
    kdf: new HkdfSha256(),
    aead: new Chacha20Poly1305(),
  });
}

/**
 * Builds and signs the §3.1 plaintext: `0x01 ‖ sender(32) ‖ recipient(32) ‖ timestamp u64 BE
 * ‖ request id(32) ‖ reply flag ‖ reply key? ‖ L u32 BE ‖ payload ‖ ed25519 signature(64)`.
 */
export function signPlaintext(sender: Account, params: PlaintextParams): SignedPlaintext {
  if (params.payload.length > MAX_ENVELOPE_PAYLOAD) {
    throw new UsageError(`payload of ${params.payload.length} bytes is over ${MAX_ENVELOPE_PAYLOAD}`, "payload_too_large");
  }
  const requestId = params.requestId === undefined ? randomBytes(32) : toBytes(params.requestId, 32, "request id");
  const timestampMs = BigInt(params.timestampMs ?? Date.now());
  const reply =
    params.replyKey === undefined ? Uint8Array.of(0) : concat(Uint8Array.of(1), toBytes(params.replyKey, 32, "reply key"));
  const unsigned = concat(
    Uint8Array.of(ENVELOPE_VERSION),
    sender.publicKey,
    toBytes(params.recipient, 32, "recipient"),
    u64be(timestampMs),
    requestId,
    reply,
    u32be(params.payload.length),
    params.payload,
  );
  const signature = sender.sign(concat(SIGNATURE_DOMAIN, unsigned));
  return { bytes: concat(unsigned, signature), requestId, timestampMs };
}

/** HPKE-seals `plaintext` to `recipient` (§3.2). `ephemeralSeed` fixes the ephemeral key (tests only). */
export async function sealPlaintext(
  plaintext: Uint8Array,
  recipient: Uint8Array | string,
  ephemeralSeed?: Uint8Array,
): Promise<EnvelopeJson> {
  const recipientKey = toBytes(recipient, 32, "recipient");
  const suite = envelopeSuite();
  const recipientPublicKey = await suite.kem.deserializePublicKey(recipientKey);
  const sender = await suite.createSenderContext({
    recipientPublicKey,
    info: concat(HPKE_INFO_PREFIX, recipientKey),
    ...(ephemeralSeed ? { ekm: ephemeralSeed } : {}),
  });
  const ciphertext = new Uint8Array(await sender.seal(plaintext));
  return {
    version: ENVELOPE_VERSION,
    recipient: toHex(recipientKey),
    enc: toHex(new Uint8Array(sender.enc)),
    ciphertext: toHex(ciphertext),
  };
}

/** A sealed envelope and the plaintext inside it. */
export interface SealedEnvelope {
  envelope: EnvelopeJson;
  plaintext: SignedPlaintext;
}

/** Signs (§3.1) then seals (§3.2) a payload to `params.recipient`. */
export async function seal(sender: Account, params: PlaintextParams): Promise<SealedEnvelope> {
  const plaintext = signPlaintext(sender, params);
  return { envelope: await sealPlaintext(plaintext.bytes, params.recipient), plaintext };
}

/** The binary wire form: `version(1) ‖ recipient(32) ‖ enc(32) ‖ ciphertext` (§3.3). */
export function envelopeToBytes(envelope: EnvelopeJson): Uint8Array {
  return concat(
    Uint8Array.of(envelope.version),
    fromHex(envelope.recipient, 32, "recipient"),
    fromHex(envelope.enc, 32, "enc"),
    fromHex(envelope.ciphertext, undefined, "ciphertext"),
  );
}

/** A decoded §3.1 plaintext. */
export interface OpenedPlaintext {
  sender: Hex;
  recipient: Hex;
  timestampMs: bigint;
  requestId: Hex;
  replyKey: Hex | undefined;
  payload: Uint8Array;
  signature: Uint8Array;
}

/** Why an envelope did not open; `code` is the node code of the same failure (§7.6). */
export class EnvelopeError extends SigilError {
  constructor(code: string, message: string) {
    super(code, message);
    this.name = "EnvelopeError";
  }
}

/** Decodes a §3.1 plaintext exactly and checks its signature (steps 4 and 5 of §3.4). */
export function decodePlaintext(bytes: Uint8Array): OpenedPlaintext {
  const malformed = (why: string) => new EnvelopeError("malformed_envelope", `malformed plaintext: ${why}`);
  if (bytes.length < 106 + 4 + 64) throw malformed("too short");
  if (bytes[0] !== ENVELOPE_VERSION) throw malformed(`version ${bytes[0]}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const flag = bytes[105];
  if (flag !== 0 && flag !== 1) throw malformed(`reply flag ${flag}`);
  const r = flag === 1 ? 138 : 106;
  if (bytes.length < r + 4 + 64) throw malformed("too short");
  const length = view.getUint32(r, false);
  if (length > MAX_ENVELOPE_PAYLOAD || bytes.length !== r + 4 + length + 64) throw malformed("bad payload length");
  const signed = bytes.subarray(0, r + 4 + length);
  const signature = bytes.subarray(r + 4 + length);
  const sender = bytes.subarray(1, 33);
  if (!verifyEd25519(sender, concat(SIGNATURE_DOMAIN, signed), signature)) {
    throw new EnvelopeError("bad_signature", "the sender's signature does not verify");
  }
  return {
    sender: toHex(sender),
    recipient: toHex(bytes.subarray(33, 65)),
    timestampMs: view.getBigUint64(65, false),
    requestId: toHex(bytes.subarray(73, 105)),
    replyKey: flag === 1 ? toHex(bytes.subarray(106, 138)) : undefined,
    payload: bytes.slice(r + 4, r + 4 + length),
    signature: bytes.slice(r + 4 + length),
  };
}

/**
 * Opens an envelope sealed to the x25519 key pair (`secretKey`, `publicKey`): for a reply
 * sealed to a reply key (§3.5), and for tests. Checks §3.4 steps 1–5 and 7 and, when
 * given, the expected sender and the age window.
 */
export async function open(
  envelope: EnvelopeJson,
  secretKey: Uint8Array,
  options: { expectedSender?: string; maxAgeMs?: number; maxFutureMs?: number } = {},
): Promise<OpenedPlaintext> {
  if (envelope.version !== ENVELOPE_VERSION) throw new EnvelopeError("unsupported_version", `version ${envelope.version}`);
  const suite = envelopeSuite();
  const keyPair = await suite.kem.deserializePrivateKey(secretKey);
  const publicKey = x25519.getPublicKey(secretKey);
  const recipient = fromHex(envelope.recipient, 32, "recipient");
  if (!equalBytes(recipient, publicKey)) throw new EnvelopeError("wrong_recipient", "sealed to another key");
  let plaintext: Uint8Array;
  try {
    const context = await suite.createRecipientContext({
      recipientKey: keyPair,
      enc: fromHex(envelope.enc, 32, "enc"),
      info: concat(HPKE_INFO_PREFIX, publicKey),
    });
    plaintext = new Uint8Array(await context.open(fromHex(envelope.ciphertext)));
  } catch {
    throw new EnvelopeError("decryption_failed", "the envelope does not decrypt");
  }
  const opened = decodePlaintext(plaintext);
  if (options.expectedSender !== undefined && opened.sender !== toHex(toBytes(options.expectedSender, 32))) {
    throw new EnvelopeError("unexpected_sender", `signed by ${opened.sender}`);
  }
  if (!equalBytes(fromHex(opened.recipient), publicKey)) throw new EnvelopeError("recipient_mismatch", "signed for another key");
  const now = BigInt(Date.now());
  if (opened.timestampMs > now + BigInt(options.maxFutureMs ?? 30_000)) {
    throw new EnvelopeError("from_the_future", "timestamp ahead of this clock");
  }
  if (options.maxAgeMs !== undefined && opened.timestampMs + BigInt(options.maxAgeMs) < now) {
    throw new EnvelopeError("expired", "too old");
  }
  return opened;
}

/** A fresh x25519 key pair, e.g. for a reply key (§3.5). */
export function x25519KeyPair(): { secretKey: Uint8Array; publicKey: Uint8Array } {
  const secretKey = randomBytes(32);
  return { secretKey, publicKey: x25519.getPublicKey(secretKey) };
}
