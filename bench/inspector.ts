// A minimal Chrome DevTools Protocol client for a child started with --inspect=127.0.0.1:0: the bench
// drives the child's own V8 profiler and heap profiler from outside, so a profile can be started and
// stopped around each scenario without any code in keyway for it (`npm run bench -- --profile`).
// Node's global WebSocket (undici's) speaks to the inspector; nothing here is part of keyway.

type Pending = { resolve(value: unknown): void; reject(err: Error): void };
type Listener = (params: Record<string, unknown>) => void;

export class InspectorClient {
  readonly #socket: WebSocket;
  readonly #pending = new Map<number, Pending>();
  readonly #listeners = new Map<string, Listener>();
  #next = 1;

  private constructor(socket: WebSocket) {
    this.#socket = socket;
    socket.addEventListener('message', (event) => this.#onMessage(String(event.data)));
    socket.addEventListener('close', () => {
      for (const p of this.#pending.values()) p.reject(new Error('inspector connection closed'));
      this.#pending.clear();
    });
  }

  /** Connects to a ws:// URL as printed by node ("Debugger listening on ws://..."). */
  static async connect(url: string): Promise<InspectorClient> {
    const socket = new WebSocket(url);
    await new Promise<void>((resolve, reject) => {
      socket.addEventListener('open', () => resolve(), { once: true });
      socket.addEventListener('error', () => reject(new Error(`cannot connect to the inspector at ${url}`)), { once: true });
    });
    return new InspectorClient(socket);
  }

  send<T = Record<string, unknown>>(method: string, params: Record<string, unknown> = {}): Promise<T> {
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.#socket.send(JSON.stringify({ id, method, params }));
    });
  }

  /** One listener per event name (the bench needs only HeapProfiler.addHeapSnapshotChunk). */
  on(event: string, listener: Listener | undefined): void {
    if (listener) this.#listeners.set(event, listener);
    else this.#listeners.delete(event);
  }

  /** Evaluates an expression in the child and returns its value (returnByValue: JSON-able results only). */
  async evaluate<T>(expression: string): Promise<T> {
    const answer = await this.send<{ result: { value?: unknown }; exceptionDetails?: { text: string; exception?: { description?: string } } }>(
      'Runtime.evaluate',
      { expression, returnByValue: true, awaitPromise: true },
    );
    if (answer.exceptionDetails) throw new Error(`inspector evaluate: ${answer.exceptionDetails.exception?.description ?? answer.exceptionDetails.text}`);
    return answer.result.value as T;
  }

  close(): void {
    this.#socket.close();
  }

  #onMessage(text: string): void {
    const message = JSON.parse(text) as { id?: number; method?: string; params?: Record<string, unknown>; result?: unknown; error?: { message: string } };
    if (message.id !== undefined) {
      const pending = this.#pending.get(message.id);
      this.#pending.delete(message.id);
      if (message.error) pending?.reject(new Error(`inspector: ${message.error.message}`));
      else pending?.resolve(message.result);
    } else if (message.method) this.#listeners.get(message.method)?.(message.params ?? {});
  }
}

/** The inspector URLs a child printed on stderr, newest last ("Debugger listening on ws://..."). */
export function inspectorUrls(output: string): string[] {
  return [...output.matchAll(/Debugger listening on (ws:\/\/\S+)/g)].map((m) => m[1] as string);
}

/**
 * The inspector of process `pid` among the URLs a child printed: keyway re-executes itself (same pid,
 * a new inspector) and may start helper processes that inherit --inspect, so each URL is asked its pid.
 */
export async function inspectorOf(pid: number, urls: readonly string[]): Promise<InspectorClient> {
  for (const url of [...urls].reverse()) {
    let client: InspectorClient | undefined;
    try {
      client = await InspectorClient.connect(url);
      if ((await client.evaluate<number>('process.pid')) === pid) return client;
      client.close();
    } catch {
      client?.close();
    }
  }
  throw new Error(`no inspector of pid ${pid} among ${urls.length} printed`);
}
