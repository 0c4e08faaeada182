// One target's export: read the chain after its cursor, send a batch, move the cursor, again. A
// receiver that is down holds the cursor where it is: the batch is tried again with backoff (0.5 s
// doubling to 30 s, for as long as it takes), the lines wait in the audit log itself (nothing is held
// in memory past one batch), and `behind` counts them. The proxy never waits for any of this.

import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { ExportTargetConfig } from '../config/schema/audit-export.ts';
import { acquireFileLock, type ReleaseFileLock } from '../files/file-lock.ts';
import { cursorPath, readCursor, writeCursor, type Cursor } from './cursor.ts';
import { encodeLine, wireOf } from './encode.ts';
import { ChainFollower, headSeq } from './follower.ts';
import type { HeaderValues } from './headers.ts';
import { failureText, resendFrom, transportFor, type Transport } from './transports.ts';

export interface ExportStatus {
  format: string;
  to: string;
  /** The seq of the last line the receiver was given. */
  sent_seq: number;
  /** Lines in the log past it. */
  behind: number;
  /** Lines delivered since start. */
  sent: number;
  /** Failed sends since start (each retried). */
  failures: number;
  /** Lines the log no longer held when their turn came (pruned by rotation while the receiver was down). */
  missed: number;
  /** Why the last send failed, until one succeeds (a code: ECONNREFUSED, HTTP 503). */
  error: string | null;
  /** When a batch was last delivered (ISO 8601), or null: none since start. */
  last_success: string | null;
  /** The last failure, kept after a success (a code, never the URL), and when. */
  last_error: string | null;
  last_error_at: string | null;
  /** When the failures going on now began (the first of them), or null while sends succeed. */
  failing_since: string | null;
}

export interface ExportLog {
  warn(fields: Record<string, unknown>, message: string): void;
  info(fields: Record<string, unknown>, message: string): void;
}

export interface ExporterOptions {
  target: ExportTargetConfig;
  /** Its place in audit.export: the app log names the target by it and its host, never the URL (a path or query may carry a tenant). */
  index: number;
  /** The CA file's PEM, read once at start (target.ca). */
  caPem: string | undefined;
  /** An https:// target's headers (headers.ts), read at each send. */
  headers?: HeaderValues | undefined;
  auditPath: string;
  dataDir: string;
  version: string;
  log: ExportLog;
  /** Lines per batch (default 200). */
  batch?: number;
  /** How often to look for new lines when caught up (default 200 ms). */
  pollMs?: number;
}

const MAX_BACKOFF_MS = 30_000;
const STOP_FLUSH_MS = 3_000;
/** A sender that stopped refreshing its lock this long ago (killed) is presumed gone. */
const LOCK_STALE_MS = 10_000;
const LOCK_RETRY_MS = 5_000;

export class TargetExporter {
  readonly #o: ExporterOptions;
  readonly #follower: ChainFollower;
  readonly #transport: Transport;
  readonly #cursorFile: string;
  #cursor: Cursor = { seq: 0, hash: '0'.repeat(64) };
  #status: ExportStatus;
  #stop = new AbortController();
  #running: Promise<void> | null = null;
  #release: ReleaseFileLock | null = null;
  /** How the app log names this target. */
  readonly #named: { target: string; host: string };

  constructor(options: ExporterOptions) {
    this.#o = options;
    this.#follower = new ChainFollower(options.auditPath);
    this.#transport = transportFor(options.target.to, options.caPem, options.headers);
    this.#cursorFile = cursorPath(options.dataDir, options.target.format, options.target.to);
    this.#named = { target: `audit.export[${options.index}]`, host: new URL(options.target.to).host };
    this.#status = {
      format: options.target.format,
      to: options.target.to,
      sent_seq: 0,
      behind: 0,
      sent: 0,
      failures: 0,
      missed: 0,
      error: null,
      last_success: null,
      last_error: null,
      last_error_at: null,
      failing_since: null,
    };
  }

  get status(): ExportStatus {
    return { ...this.#status };
  }

  /** Starts sending: once this process holds the target's lock, from its cursor. */
  async start(): Promise<void> {
    await this.#claim();
    this.#running = this.#loop(this.#stop.signal);
  }

  /**
   * Takes the target's lock (one sender per target and home: a second keyway of the home waits, and
   * takes over when the first stops), then reads its cursor; a target new to this home starts at the
   * log's end (history is not replayed). False while another process holds it.
   */
  async #claim(): Promise<boolean> {
    if (this.#release !== null) return true;
    await mkdir(dirname(this.#cursorFile), { recursive: true, mode: 0o700 });
    try {
      this.#release = await acquireFileLock(this.#cursorFile, { staleMs: LOCK_STALE_MS, waitMs: 0, recordHolder: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ELOCKED') throw err;
      this.#status.error = 'another keyway of this home is sending to this target';
      return false;
    }
    const kept = await readCursor(this.#cursorFile);
    if (kept !== null) this.#cursor = kept;
    else {
      this.#cursor = (await headSeq(this.#o.auditPath)) ?? this.#cursor;
      await writeCursor(this.#cursorFile, this.#cursor, this.#o.target);
    }
    this.#status.sent_seq = this.#cursor.seq;
    this.#status.error = null;
    return true;
  }

  /** Stops after the batch in flight (its cursor written), then sends what is left once, without retrying. */
  async stop(): Promise<void> {
    this.#stop.abort();
    await this.#running;
    if (this.#release === null) return this.#transport.close();
    // What came since the last poll goes now, for a few seconds at most: what is left (a receiver
    // down or slow at stop) waits in the log for the next start, its cursor where the last batch left it.
    const deadline = Date.now() + STOP_FLUSH_MS;
    const flush = (async () => {
      while (Date.now() < deadline && (await this.#sendBatch())) {
        // until caught up
      }
    })()
      .catch((err: unknown) => this.#sendAgainFrom(resendFrom(err)))
      .catch(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([flush, new Promise((resolve) => (timer = setTimeout(resolve, STOP_FLUSH_MS)))]);
    clearTimeout(timer);
    this.#transport.close();
    // A batch cut off by the deadline may still write its cursor: wait for it, so stop leaves the file as it stands.
    await flush;
    await this.#release();
    this.#release = null;
  }

  async #loop(signal: AbortSignal): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      if (!(await this.#claim().catch(() => false))) {
        await sleep(LOCK_RETRY_MS, signal);
        continue;
      }
      let more = false;
      try {
        more = await this.#sendBatch();
        if (failures > 0) this.#o.log.info({ ...this.#named, sent_seq: this.#cursor.seq }, 'audit export resumed');
        failures = 0;
        this.#status.error = null;
        this.#status.failing_since = null;
      } catch (err) {
        // Caught: a cursor that cannot be written (disk full, EACCES) must not end the loop with a
        // rejection nobody handles until stop. The cursor in memory has gone back: the batches go again.
        await this.#sendAgainFrom(resendFrom(err)).catch((cursorErr: unknown) =>
          this.#o.log.warn(
            { ...this.#named, error: failureText(cursorErr) },
            'audit export could not write its cursor after going back; sending again from memory',
          ),
        );
        failures++;
        this.#status.failures++;
        const error = failureText(err);
        const at = new Date().toISOString();
        this.#status.last_error = error;
        this.#status.last_error_at = at;
        this.#status.failing_since ??= at;
        if (failures === 1 || error !== this.#status.error)
          this.#o.log.warn({ ...this.#named, error, behind: this.#status.behind }, 'audit export could not send; lines wait in the audit log and are retried');
        this.#status.error = error;
      }
      await this.#refreshBehind();
      if (more && failures === 0) continue;
      const wait = failures === 0 ? (this.#o.pollMs ?? 200) : Math.min(MAX_BACKOFF_MS, 500 * 2 ** Math.min(failures - 1, 16));
      await sleep(wait, signal);
    }
  }

  /** One batch: true when a full batch went (more may be waiting). Throws when the receiver did not take it. */
  async #sendBatch(): Promise<boolean> {
    const max = this.#o.batch ?? 200;
    let lines = await this.#follower.read(this.#cursor.seq, max);
    const first = lines[0];
    if (first !== undefined && first.seq !== this.#cursor.seq + 1) {
      // A gap: look at every file again (a rotation may have raced the read) before believing it.
      this.#follower.forget();
      lines = await this.#follower.read(this.#cursor.seq, max);
    }
    if (lines.length === 0) {
      // Idle: a stream that broke just after the last batches says so now (they go again at once).
      this.#transport.checkBroken?.();
      return false;
    }
    const wire = wireOf(this.#o.target.to);
    const before = this.#cursor;
    await this.#transport.send(
      lines.map((line) => encodeLine(line, this.#o.target.format, wire, this.#o.version)),
      before,
    );
    // Said once the batch went (a batch tried again would say it again).
    this.#checkChain(lines[0]!);
    const last = lines.at(-1)!;
    this.#cursor = { seq: last.seq, hash: last.hash };
    this.#follower.passed(last.seq);
    await writeCursor(this.#cursorFile, this.#cursor, this.#o.target);
    this.#status.sent += lines.length;
    this.#status.sent_seq = last.seq;
    this.#status.last_success = new Date().toISOString();
    this.#status.behind = Math.max(0, this.#status.behind - lines.length);
    return lines.length >= max;
  }

  /**
   * The stream broke soon after batches were written on it: the cursor goes back before the oldest of
   * them (the transport's mark, transports.ts), so every batch the receiver may have lost goes again.
   */
  async #sendAgainFrom(back: Cursor | null): Promise<void> {
    // Never forward: a mark is a cursor this sender already passed.
    if (back === null || back.seq >= this.#cursor.seq) return;
    this.#o.log.warn(
      { ...this.#named, from: back.seq + 1, to_seq: this.#cursor.seq },
      'the receiver broke the connection just after a batch: sending the batches it may have lost again (it may get some lines twice, by seq)',
    );
    this.#cursor = back;
    this.#status.sent_seq = back.seq;
    this.#follower.forget();
    await writeCursor(this.#cursorFile, this.#cursor, this.#o.target);
  }

  /** The first line after the cursor should follow it: a gap is lines pruned, a wrong prev another chain. */
  #checkChain(first: { seq: number; prev: string }): void {
    if (first.seq !== this.#cursor.seq + 1) {
      const missed = first.seq - this.#cursor.seq - 1;
      this.#status.missed += missed;
      this.#o.log.warn(
        { ...this.#named, from: this.#cursor.seq + 1, to_seq: first.seq - 1, missed },
        'audit lines were gone from the log before they could be exported',
      );
    } else if (first.prev !== this.#cursor.hash && this.#cursor.seq > 0) {
      this.#o.log.warn(
        { ...this.#named, seq: first.seq },
        'the audit line after the export cursor does not chain to the line it recorded (a replaced log?): exporting on from it',
      );
    }
  }

  async #refreshBehind(): Promise<void> {
    const head = await headSeq(this.#o.auditPath).catch(() => null);
    this.#status.behind = head === null ? 0 : Math.max(0, head.seq - this.#cursor.seq);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
