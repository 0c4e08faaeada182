// One Server-Sent Events answer (text/event-stream): the head, `retry:`, heartbeat comments, and
// events. A reader that stops reading is cut off once its unsent backlog passes a bound, rather
// than keyway holding an ever larger buffer for it.

import type { ServerResponse } from 'node:http';

export interface EventStreamOptions {
  /** A comment line this often keeps proxies and browsers from timing the stream out. */
  heartbeatMs: number;
  /** What the client is told to wait before reconnecting (`retry:`). */
  retryMs: number;
  /** Unsent bytes beyond which the reader counts as stalled and the stream is cut. */
  maxBacklogBytes: number;
}

export const EVENT_STREAM_DEFAULTS: EventStreamOptions = { heartbeatMs: 15_000, retryMs: 3_000, maxBacklogBytes: 1024 * 1024 };

export class EventStream {
  readonly #res: ServerResponse;
  readonly #options: EventStreamOptions;
  readonly #heartbeat: NodeJS.Timeout;
  #ended = false;
  /** Why the stream ended: the client left, keyway closed it, or the reader stalled. */
  endedBy: 'client' | 'server' | 'stalled' | null = null;
  readonly closed: Promise<void>;

  constructor(res: ServerResponse, options: EventStreamOptions = EVENT_STREAM_DEFAULTS) {
    this.#res = res;
    this.#options = options;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      // Tells a buffering reverse proxy (nginx) to pass events on at once.
      'x-accel-buffering': 'no',
    });
    // The client may have left already (while the stream was being set up): then it is over at once.
    const gone = res.closed || res.destroyed;
    this.closed = gone ? Promise.resolve() : new Promise((resolve) => res.once('close', () => resolve()));
    this.#heartbeat = setInterval(() => this.#write(': heartbeat\n\n'), options.heartbeatMs);
    this.#heartbeat.unref();
    res.once('close', () => this.#finish('client'));
    if (gone) this.#finish('client');
    this.#write(`retry: ${options.retryMs}\n: keyway audit stream\n\n`);
  }

  get ended(): boolean {
    return this.#ended;
  }

  /** One event. `data` is one line of JSON (no newline inside), so it needs one `data:` field. */
  send(event: string, id: string, data: string): void {
    this.#write(`event: ${event}\nid: ${id}\ndata: ${data}\n\n`);
  }

  /** End the answer normally (keyway is closing). */
  end(): void {
    if (this.#ended) return;
    this.#finish('server');
    this.#res.end();
  }

  #write(text: string): void {
    if (this.#ended) return;
    this.#res.write(text);
    if (this.#res.writableLength > this.#options.maxBacklogBytes) {
      this.#finish('stalled');
      this.#res.destroy();
    }
  }

  #finish(by: 'client' | 'server' | 'stalled'): void {
    if (this.#ended) return;
    this.#ended = true;
    this.endedBy = by;
    clearInterval(this.#heartbeat);
  }
}
