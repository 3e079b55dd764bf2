/** Reading docs/PROTOCOL.md, so the unit tests check the SDK against the spec's own text. */

import { readFileSync } from "node:fs";
import { join } from "node:path";

import { REPO_DIR } from "./devnet.js";

/** The text of docs/PROTOCOL.md. */
export const PROTOCOL = readFileSync(join(REPO_DIR, "docs/PROTOCOL.md"), "utf8");

/** The contents of the first fenced block after `marker`. */
export function fencedAfter(marker: string): string {
  const rest = PROTOCOL.split(marker)[1];
  if (rest === undefined) throw new Error(`PROTOCOL.md has no ${JSON.stringify(marker)}`);
  const block = rest.split("```")[1];
  if (block === undefined) throw new Error(`no fenced block after ${JSON.stringify(marker)}`);
  return block.split("\n").slice(1).join("\n");
}

/** The rows of the table after `heading`: each row's cells, trimmed. */
export function tableAfter(heading: string): string[][] {
  const rest = PROTOCOL.split(heading)[1];
  if (rest === undefined) throw new Error(`PROTOCOL.md has no ${JSON.stringify(heading)}`);
  const lines = rest.split("\n\n")[1]!.split("\n");
  return lines.slice(2).map((row) => row.split("|").slice(1, -1).map((c) => c.trim()));
}
