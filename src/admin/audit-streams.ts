// The live audit streams of one admin server (GET /api/audit/stream): how many may be open, what
// each is sent, and their end when the server closes. Lines come from one shared AuditFeed, which
// reads the log file, so a stream shows what every keyway process sharing the home writes.

import { AuditFeed, compileFilter, readAudit, type AuditFilter, type AuditLine } from '../audit/index.ts';
import { EventStream, EVENT_STREAM_DEFAULTS, type EventStreamOptions } from './event-stream.ts';
import { AdminError } from './router.ts';
import type { ServerResponse } from 'node:http';

export interface AuditStreamLimits extends EventStreamOptions {
  /** Open streams at most; one more is answered 429. */
  maxStreams: number;
  /** Lines replayed at most after a reconnect with Last-Event-ID; past that the client pages GET /api/audit. */
  maxReplay: number;
}

export const AUDIT_STREAM_LIMITS: AuditStreamLimits = { ...EVENT_STREAM_DEFAULTS, maxStreams: 8, maxReplay: 1000 };

export class AuditStreams {
  readonly #auditPath: string;
  readonly #feed: AuditFeed;
  readonly #limits: AuditStreamLimits;
  readonly #open = new Set<EventStream>();
  /** Streams admitted but not open yet (waiting for the feed to be placed). */
  #starting = 0;
  #closed = false;

  constructor(auditPath: string, closing: AbortSignal, limits: AuditStreamLimits = AUDIT_STREAM_LIMITS) {
    this.#auditPath = auditPath;
    this.#feed = new AuditFeed(auditPath);
    this.#limits = limits;
    closing.addEventListener('abort', () => void this.close(), { once: true });
  }

  get open(): number {
    return this.#open.size;
  }

  /**
   * Answers with an event stream of the lines matching `filter`, from now on (or, with `lastId`, from
   * just after that seq, up to maxReplay lines). Resolves when the stream has ended.
   */
  async serve(res: ServerResponse, filter: AuditFilter, lastId: number | undefined): Promise<void> {
    if (this.#closed) throw new AdminError(503, 'shutting_down', 'keyway is stopping; no new audit streams');
    if (this.#open.size + this.#starting >= this.#limits.maxStreams) {
      throw new AdminError(429, 'too_many_streams', `${this.#limits.maxStreams} audit streams are open already; close one or page GET /api/audit`);
    }
    // The slot is taken before the first await, so concurrent requests cannot pass the cap together.
    this.#starting++;
    const match = compileFilter(filter);
    // Subscribed (and placed at the log's end) before the head is sent and before the replay is
    // read: a line written once the client sees the stream open is never missed; seq ordering
    // drops what the replay already sent.
    let stream: EventStream | null = null;
    let sentUpTo = lastId ?? 0;
    let held: AuditLine[] | null = [];
    const send = (line: AuditLine) => {
      if (line.seq <= sentUpTo || stream === null) return;
      sentUpTo = line.seq;
      stream.send('audit', String(line.seq), JSON.stringify(line));
    };
    const subscription = this.#feed.subscribe((line) => {
      if (!match(line)) return;
      if (held !== null) held.push(line);
      else send(line);
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

  async #replay(after: number, filter: AuditFilter, send: (line: AuditLine) => void, stream: EventStream): Promise<void> {
    let count = 0;
    for await (const line of readAudit(this.#auditPath, filter, { after })) {
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
