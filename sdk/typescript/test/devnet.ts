/**
 * Starts a real `sigil devnet` for the tests and the example (Node only): the binary from
 * `SIGIL_BIN` (default `target/debug/sigil` of the repository), the committed 2-of-4 fixture
 * shares (no DKG), a fresh data directory; and reads what it prints.
 */

import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The SDK's directory (this file runs from dist/test/). */
export const SDK_DIR = resolve(fileURLToPath(new URL("../..", import.meta.url)));
/** The repository's root. */
export const REPO_DIR = resolve(SDK_DIR, "../..");

/** One validator as the devnet lists it. */
export interface DevnetNode {
  name: string;
  role: "signer" | "relayer";
  account: string;
  /** `host:port`. */
  endpoint: string;
  /** `http://host:port`. */
  url: string;
  log: string;
}

/** What a running devnet printed. */
export interface DevnetInfo {
  /** The ledger's websocket URL (`ws://host:port`). */
  ledgerWs: string;
  /** The same port over HTTP. */
  ledgerHttp: string;
  networkKey: string;
  nodes: DevnetNode[];
}

/**
 * Parses `sigil devnet`'s summary. Lines it does not know (e.g. `replica …` lines) are
 * skipped; node rows are `NAME ROLE 0xACCOUNT HOST:PORT LOG`.
 */
export function parseDevnetOutput(text: string): Partial<DevnetInfo> & { ready: boolean } {
  const info: Partial<DevnetInfo> & { ready: boolean } = { ready: false, nodes: [] };
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    let m: RegExpExecArray | null;
    if ((m = /^ledger\s+((?:ws|http)s?:\/\/\S+)$/.exec(line))) {
      const url = m[1]!;
      info.ledgerWs = url.replace(/^http/, "ws");
      info.ledgerHttp = url.replace(/^ws/, "http");
    } else if ((m = /^network key\s+(0x[0-9a-fA-F]{66})$/.exec(line))) {
      info.networkKey = m[1]!.toLowerCase();
    } else if ((m = /^(\S+)\s+(signer|relayer)\s+(0x[0-9a-fA-F]{64})\s+(\S+:\d+)\s+(\S+)$/.exec(line))) {
      info.nodes!.push({
        name: m[1]!,
        role: m[2] as "signer" | "relayer",
        account: m[3]!.toLowerCase(),
        endpoint: m[4]!,
        url: `http://${m[4]}`,
        log: m[5]!,
      });
    } else if (/^Press Ctrl-C/.test(line)) {
      info.ready = true;
    }
  }
  return info;
}

/** The `sigil` binary to run. */
export function sigilBinary(): string {
  const bin = process.env.SIGIL_BIN ? resolve(process.env.SIGIL_BIN) : join(REPO_DIR, "target/debug/sigil");
  if (!existsSync(bin)) {
    throw new Error(`no sigil binary at ${bin}: build it with \`cargo build -p sigil\` or set SIGIL_BIN`);
  }
  return bin;
}

/** A running devnet; {@link stop} it. */
export class Devnet {
  private constructor(
    readonly info: DevnetInfo,
    private readonly child: ChildProcess,
    readonly dir: string,
  ) {}

  /** Starts `sigil devnet` (2-of-4 fixture shares, 5 validators: eve relays) and waits for its summary. */
  static async start(options: { timeoutMs?: number } = {}): Promise<Devnet> {
    const dir = mkdtempSync(join(tmpdir(), "sigil-sdk-devnet-"));
    const child = spawn(
      sigilBinary(),
      ["devnet", "--signers", "4", "--threshold", "2", "--dev-key-shares", "crates/mpc/fixtures/2-of-4", "--dir", dir],
      { cwd: REPO_DIR, stdio: ["ignore", "pipe", "pipe"] },
    );
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const timeoutMs = options.timeoutMs ?? 180_000;
    const info = await new Promise<DevnetInfo>((resolvePromise, reject) => {
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        reject(new Error(`sigil devnet was not ready within ${timeoutMs} ms:\n${stderr.slice(-2000)}`));
      }, timeoutMs);
      const check = () => {
        const parsed = parseDevnetOutput(stdout);
        if (parsed.ready && parsed.ledgerWs && parsed.networkKey && parsed.nodes!.length > 0) {
          clearTimeout(timer);
          resolvePromise(parsed as DevnetInfo);
        }
      };
      child.stdout!.on("data", check);
      child.on("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`sigil devnet exited (${code}) before it was ready:\n${stderr.slice(-2000)}`));
      });
    });
    return new Devnet(info, child, dir);
  }

  /** The validators of `role`. */
  nodes(role: "signer" | "relayer"): DevnetNode[] {
    return this.info.nodes.filter((n) => n.role === role);
  }

  /** The end of a node's (or the ledger's) log, for a failure message. */
  logTail(name: string, lines = 30): string {
    try {
      return readFileSync(join(this.dir, `${name}.log`), "utf8").split("\n").slice(-lines).join("\n");
    } catch {
      return "";
    }
  }

  /** Stops the devnet (SIGTERM, then SIGKILL after 30 s) and deletes its directory. */
  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise<void>((r) => this.child.once("exit", () => r()));
      this.child.kill("SIGTERM");
      const timer = setTimeout(() => this.child.kill("SIGKILL"), 30_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
