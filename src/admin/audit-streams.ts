// The live audit streams of one admin server (GET /api/audit/stream): how many may be open, what
// each is sent, and their end when the server closes. Lines come from one shared AuditFeed, which
// reads the log file (so a stream shows what every keyway process sharing the home writes) or, with
// audit.sink: postgres, the table (what every replica writes).

import { AdminError } from '../errors/index.ts';
import { AuditFeed, compileFilter, type AuditFilter, type AuditSource, type StreamLine } from '../audit/index.ts';
import { EventStream, EVENT_STREAM_DEFAULTS, type EventStreamOptions } from './event-stream.ts';

import type { ServerResponse } from 'node:http';

export interface AuditStreamLimits extends EventStreamOptions {
  /** Open streams at most; one more is answered 429. */
  maxStreams: number;
  /** Lines replayed at most after a reconnect with Last-Event-ID; past that the client pages GET /api/audit. */
  maxReplay: number;
}

export const AUDIT_STREAM_LIMITS: AuditStreamLimits = { ...EVENT_STREAM_DEFAULTS, maxStreams: 8, maxReplay: 1000 };

export class AuditStreams {
  readonly #source: AuditSource;
  readonly #feed: AuditFeed;
  readonly #limits: AuditStreamLimits;
  readonly #open = new Set<EventStream>();
  /** Streams admitted but not open yet (waiting for the feed to be placed). */
  #starting = 0;
  #closed = false;

  constructor(source: AuditSource, closing: AbortSignal, limits: AuditStreamLimits = AUDIT_STREAM_LIMITS) {
    this.#source = source;
    this.#feed = new AuditFeed((opts) => source.follow(opts));
    this.#limits = limits;
    closing.addEventListener('abort', () => void this.close(), { once: true });
  }

  get open(): number {
    return this.#open.size;
  }

  /**
   * Answers with an event stream of the lines matching `filter`, from now on (or, with `lastId`, from
   * just after that event, up to maxReplay lines). Resolves when the stream has ended.
   */
  async serve(res: ServerResponse, filter: AuditFilter, lastId: string | undefined): Promise<void> {
    if (this.#closed) throw new AdminError('shutting_down', 'keyway is stopping; no new audit streams');
    if (this.#open.size + this.#starting >= this.#limits.maxStreams) {
      throw new AdminError('too_many_streams', `${this.#limits.maxStreams} audit streams are open already; close one or page GET /api/audit`);
    }
    // The slot is taken before the first await, so concurrent requests cannot pass the cap together.
    this.#starting++;
    const match = compileFilter(filter);
    // Subscribed (and placed at the log's end) before the head is sent and before the replay is
    // read: a line written once the client sees the stream open is never missed; seq ordering
    // drops what the replay already sent.
    let stream: EventStream | null = null;
    // The highest seq sent per chain (the file has one; the table one per replica): a line the
    // replay already sent is not sent again by the feed.
    const sentUpTo = new Map<string, number>();
    let held: StreamLine[] | null = [];
    const send = (entry: StreamLine) => {
      if (entry.line.seq <= (sentUpTo.get(entry.chain) ?? 0) || stream === null) return;
      sentUpTo.set(entry.chain, entry.line.seq);
      stream.send('audit', entry.id, JSON.stringify(entry.line));
    };
    const subscription = this.#feed.subscribe((entry) => {
      if (!match(entry.line)) return;
      if (held !== null) held.push(entry);
      else send(entry);
    });
    try {
      await subscription.ready;
      stream = new EventStream(res, this.#limits);
      this.#open.add(stream);
      this.#starting--;
      if (this.#closed) stream.end();
      if (lastId !== undefined) await this.#replay(lastId, filter, send, stream);
      for (const line of held) send(line);
      held = null;
      await stream.closed;
    } finally {
      if (stream === null) this.#starting--;
      else this.#open.delete(stream);
      subscription.unsubscribe();
    }
  }

  async #replay(after: string, filter: AuditFilter, send: (line: StreamLine) => void, stream: EventStream): Promise<void> {
    let count = 0;
    for await (const line of this.#source.replay(after, filter)) {
      if (stream.ended || count >= this.#limits.maxReplay) return;
      send(line);
      count++;
    }
  }

  /** Ends every stream and stops the feed. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const stream of this.#open) stream.end();
    await this.#feed.close();
  }
}
