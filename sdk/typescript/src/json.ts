/**
 * JSON with 64-bit integers. Sigil's JSON writes `u64` values (balances, block numbers) as
 * numbers, which may exceed 2^53; these helpers read such integers without losing precision
 * and write `bigint`s as plain JSON numbers.
 * @module
 */

/**
 * Parses JSON; integers too large for a double (above 2^53 − 1) come back as decimal strings,
 * which {@link toBigInt} reads exactly. Everything else is as `JSON.parse` gives it.
 */
export function parseJson(text: string): unknown {
  return JSON.parse(quoteBigIntegers(text));
}

/** Quotes every integer literal outside strings with more than 15 digits. */
function quoteBigIntegers(text: string): string {
  let out = "";
  let last = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
      continue;
    }
    if (c === 0x22) {
      inString = true;
      continue;
    }
    const isDigit = c >= 0x30 && c <= 0x39;
    if (!isDigit && c !== 0x2d) continue;
    let j = i + 1;
    while (j < text.length && /[0-9.eE+-]/.test(text[j]!)) j++;
    const literal = text.slice(i, j);
    if (/^-?\d{16,}$/.test(literal) && !Number.isSafeInteger(Number(literal))) {
      out += text.slice(last, i) + `"${literal}"`;
      last = j;
    }
    i = j - 1;
  }
  return out + text.slice(last);
}

/** Serialises to JSON; `bigint`s become JSON numbers, `Uint8Array`s are not expected. */
export function stringifyJson(value: unknown): string {
  const marker = "\u0000bigint:";
  const text = JSON.stringify(value, (_key, v: unknown) =>
    typeof v === "bigint" ? `${marker}${v.toString()}` : v,
  );
  return text.replace(/"\\u0000bigint:(-?\d+)"/g, "$1");
}

/** A JSON integer (number or decimal string) as a `bigint`. */
export function toBigInt(value: unknown, what = "integer"): bigint {
  if (typeof value === "bigint") return value;
  if (typeof value === "number" && Number.isInteger(value)) return BigInt(value);
  if (typeof value === "string" && /^-?\d+$/.test(value)) return BigInt(value);
  throw new TypeError(`${what}: ${JSON.stringify(value)} is not an integer`);
}
