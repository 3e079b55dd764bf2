/**
 * JSON-RPC 2.0 to a ledger (PROTOCOL.md §4.3) over HTTP (`fetch`) or a websocket (the
 * standard `WebSocket` API: the browser's, Node 22's, or a constructor such as the `ws`
 * package's passed in), with subscriptions over the websocket.
 * @module
 */

import { ConnectionError, LedgerError, TimeoutError, UsageError } from "./errors.js";
import { parseJson, stringifyJson } from "./json.js";

/** The part of the standard `WebSocket` API the client uses. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: any) => void) | null;
  onmessage: ((event: { data: any }) => void) | null;
  onerror: ((event: any) => void) | null;
  onclose: ((event: any) => void) | null;
}

/** A `WebSocket` constructor (`globalThis.WebSocket`, or `ws`'s `WebSocket` on Node 20). */
export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** How to talk to a ledger. */
export interface RpcOptions {
  /** The `WebSocket` implementation for `ws://` URLs (default: `globalThis.WebSocket`). */
  webSocket?: WebSocketConstructor;
  /** The `fetch` implementation for `http://` URLs (default: `globalThis.fetch`). */
  fetch?: typeof fetch;
  /** How long one call may take, in milliseconds (default 120 s; `ledger_submit` with wait takes blocks). */
  timeoutMs?: number;
}

/** A JSON-RPC transport: one call, and, on a websocket, subscriptions. */
export interface RpcTransport {
  /** The URL it talks to. */
  readonly url: string;
  /** Calls `method` with positional `params`; the result, or a thrown {@link LedgerError}. */
  call(method: string, params?: unknown[]): Promise<unknown>;
  /** Subscribes (websocket only): `method` answers with an id, then `notification`s arrive. */
  subscribe(method: string, params: unknown[], notification: string, unsubscribe: string): Promise<Subscription<unknown>>;
  /** Closes the connection. */
  close(): void;
}

interface RpcResponse {
  jsonrpc?: string;
  id?: number | string | null;
  result?: unknown;
  error?: { code: number; message: string; data?: unknown };
  method?: string;
  params?: { subscription: unknown; result: unknown };
}

function resultOf(url: string, response: RpcResponse): unknown {
  if (response.error) {
    const { code, message, data } = response.error;
    throw new LedgerError(Number(code), String(message), data);
  }
  if (!("result" in response)) throw new ConnectionError(url, "a JSON-RPC answer without result or error", { code: "bad_answer" });
  return response.result;
}

/** JSON-RPC over HTTP POST. Subscriptions need a websocket (error 1005). */
export class HttpTransport implements RpcTransport {
  private nextId = 1;
  private readonly fetch: typeof fetch;
  private readonly timeoutMs: number;

  constructor(
    readonly url: string,
    options: RpcOptions = {},
  ) {
    const f = options.fetch ?? globalThis.fetch;
    if (!f) throw new UsageError("no fetch implementation: pass options.fetch");
    this.fetch = f.bind(globalThis);
    this.timeoutMs = options.timeoutMs ?? 120_000;
  }

  async call(method: string, params: unknown[] = []): Promise<unknown> {
    const body = stringifyJson({ jsonrpc: "2.0", id: this.nextId++, method, params });
    let text: string;
    try {
      const response = await this.fetch(this.url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      text = await response.text();
      if (!text && !response.ok) throw new ConnectionError(this.url, `HTTP ${response.status}`, { code: "bad_answer" });
    } catch (error) {
      if (error instanceof ConnectionError) throw error;
      throw new ConnectionError(this.url, `cannot reach the ledger: ${String(error)}`, { cause: error });
    }
    let parsed: RpcResponse;
    try {
      parsed = parseJson(text) as RpcResponse;
    } catch (error) {
      throw new ConnectionError(this.url, `the answer is not JSON: ${text.slice(0, 200)}`, { cause: error, code: "bad_answer" });
    }
    return resultOf(this.url, parsed);
  }

  async subscribe(): Promise<Subscription<unknown>> {
    throw new LedgerError(1005, "subscriptions need a websocket (ws:// URL)");
  }

  close(): void {}
}

interface Pending {
  resolve: (value: RpcResponse) => void;
  reject: (error: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

/** JSON-RPC over one websocket, with subscriptions. */
export class WebSocketTransport implements RpcTransport {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly subscriptions = new Map<string, Subscription<unknown>>();
  /** Notifications that arrived before their subscription was set up. */
  private readonly early = new Map<string, unknown[]>();
  private closed: Error | undefined;
  private readonly timeoutMs: number;

  private constructor(
    readonly url: string,
    private readonly socket: WebSocketLike,
    timeoutMs: number,
  ) {
    this.timeoutMs = timeoutMs;
    socket.onmessage = (event) => this.receive(event.data);
    socket.onclose = () => this.fail(new ConnectionError(url, "the websocket closed"));
    socket.onerror = () => this.fail(new ConnectionError(url, "websocket error"));
  }

  /** Opens a websocket to `url`. */
  static async connect(url: string, options: RpcOptions = {}): Promise<WebSocketTransport> {
    const Ctor = options.webSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!Ctor) {
      throw new UsageError("no WebSocket implementation here: pass options.webSocket (e.g. the ws package's WebSocket)");
    }
    const socket = new Ctor(url);
    await new Promise<void>((resolve, reject) => {
      socket.onopen = () => resolve();
      socket.onerror = (event) =>
        reject(new ConnectionError(url, `cannot open the websocket: ${String(event?.message ?? event?.error ?? "error")}`));
      socket.onclose = () => reject(new ConnectionError(url, "the websocket closed while opening"));
    });
    return new WebSocketTransport(url, socket, options.timeoutMs ?? 120_000);
  }

  private receive(data: unknown): void {
    const text = typeof data === "string" ? data : new TextDecoder().decode(data as ArrayBuffer);
    let message: RpcResponse;
    try {
      message = parseJson(text) as RpcResponse;
    } catch {
      return;
    }
    if (message.method && message.params) {
      const id = String(message.params.subscription);
      const subscription = this.subscriptions.get(id);
      if (subscription) subscription.push(message.params.result);
      else this.early.set(id, [...(this.early.get(id) ?? []), message.params.result]);
      return;
    }
    if (typeof message.id !== "number") return;
    const pending = this.pending.get(message.id);
    if (!pending) return;
    this.pending.delete(message.id);
    clearTimeout(pending.timer);
    pending.resolve(message);
  }

  private fail(error: Error): void {
    if (this.closed) return;
    this.closed = error;
    for (const pending of this.pending.values()) {
      clearTimeout(pending.timer);
      pending.reject(error);
    }
    this.pending.clear();
    for (const subscription of this.subscriptions.values()) subscription.end(error);
    this.subscriptions.clear();
  }

  private request(method: string, params: unknown[]): Promise<RpcResponse> {
    if (this.closed) return Promise.reject(this.closed);
    const id = this.nextId++;
    return new Promise<RpcResponse>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new TimeoutError(`${method}: no answer from ${this.url} within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.socket.send(stringifyJson({ jsonrpc: "2.0", id, method, params }));
    });
  }

  async call(method: string, params: unknown[] = []): Promise<unknown> {
    return resultOf(this.url, await this.request(method, params));
  }

  async subscribe(
    method: string,
    params: unknown[],
    _notification: string,
    unsubscribe: string,
  ): Promise<Subscription<unknown>> {
    const id = String(await this.call(method, params));
    const subscription = new Subscription<unknown>(async () => {
      this.subscriptions.delete(id);
      if (!this.closed) await this.call(unsubscribe, [id]).catch(() => undefined);
    });
    this.subscriptions.set(id, subscription);
    for (const item of this.early.get(id) ?? []) subscription.push(item);
    this.early.delete(id);
    return subscription;
  }

  close(): void {
    this.fail(new ConnectionError(this.url, "closed by the client"));
    this.socket.close();
  }
}

/**
 * A stream of notifications: iterate with `for await`, or call {@link next}; {@link close}
 * unsubscribes. Items are buffered until read.
 */
export class Subscription<T> implements AsyncIterable<T> {
  private readonly queue: T[] = [];
  private readonly waiters: Array<{ resolve: (r: IteratorResult<T>) => void; reject: (e: Error) => void }> = [];
  private ended: Error | null | undefined;

  /** @internal */
  constructor(private readonly onClose: () => Promise<void>) {}

  /** @internal */
  push(item: T): void {
    const waiter = this.waiters.shift();
    if (waiter) waiter.resolve({ value: item, done: false });
    else this.queue.push(item);
  }

  /** @internal */
  end(error: Error | null): void {
    if (this.ended !== undefined) return;
    this.ended = error;
    for (const waiter of this.waiters.splice(0)) {
      if (error) waiter.reject(error);
      else waiter.resolve({ value: undefined, done: true });
    }
  }

  /** The next item; rejects with {@link TimeoutError} after `timeoutMs`, or if the connection ends. */
  async next(timeoutMs?: number): Promise<T> {
    const result = await this.nextResult(timeoutMs);
    if (result.done) throw new ConnectionError("subscription", "the subscription ended");
    return result.value;
  }

  private nextResult(timeoutMs?: number): Promise<IteratorResult<T>> {
    if (this.queue.length > 0) return Promise.resolve({ value: this.queue.shift()!, done: false });
    if (this.ended !== undefined) {
      return this.ended ? Promise.reject(this.ended) : Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve, reject) => {
      const waiter = { resolve, reject };
      this.waiters.push(waiter);
      if (timeoutMs !== undefined) {
        setTimeout(() => {
          const index = this.waiters.indexOf(waiter);
          if (index >= 0) {
            this.waiters.splice(index, 1);
            reject(new TimeoutError(`no notification within ${timeoutMs} ms`));
          }
        }, timeoutMs);
      }
    });
  }

  /** Unsubscribes and ends iteration. */
  async close(): Promise<void> {
    this.end(null);
    await this.onClose();
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => this.nextResult(),
      return: async () => {
        await this.close();
        return { value: undefined, done: true };
      },
    };
  }

  /** A subscription whose items are `map`ped. */
  map<U>(map: (item: T) => U): Subscription<U> {
    const mapped = new Subscription<U>(() => this.close());
    void (async () => {
      try {
        for (;;) {
          const result = await this.nextResult();
          if (result.done) break;
          mapped.push(map(result.value));
        }
        mapped.end(null);
      } catch (error) {
        mapped.end(error as Error);
      }
    })();
    return mapped;
  }
}

/** A transport for `url`: a websocket for `ws://`/`wss://`, HTTP for `http://`/`https://`. */
export async function connectRpc(url: string, options: RpcOptions = {}): Promise<RpcTransport> {
  if (/^wss?:\/\//i.test(url)) return WebSocketTransport.connect(url, options);
  if (/^https?:\/\//i.test(url)) return new HttpTransport(url, options);
  throw new UsageError(`ledger URL ${url}: expected ws://, wss://, http:// or https://`);
}
