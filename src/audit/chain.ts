// Checks a hash chain fed one line at a time. It holds only the chain's state, never the lines, so it
// works on logs of any size and can be fed several files in order (rotated logs continue the chain:
// pass the previous file's end as `start`, or keep feeding the same checker).

import type { ChainHead } from './head.ts';
import { notCanonical } from './canonical.ts';
import { type AuditLine, GENESIS_HASH, parseLine, resealLine } from './record.ts';

export interface AuditProblem {
  /** 1-based line number in the file; 0 for problems with the head file itself. */
  line: number;
  reason: string;
  /** Set when several files are verified together. */
  file?: string;
}

// Write-ahead lines waiting for their outcome are held (their request's facts only), bounded: only
// requests in flight at once, or cut off by a crash, are ever waiting.
const MAX_OPEN_REQUESTS = 100_000;

interface SentRequest {
  readonly seq: number;
  readonly facts: string;
}

/** What a request's write-ahead line commits to, which its outcome line must repeat. */
function requestFacts(rec: AuditLine): string {
  return JSON.stringify([rec.agent, rec.grant, rec.method, rec.host, rec.port, rec.path]);
}

// A forged line with a very high seq makes every later line look out of order; the report stays
// readable and bounded instead of listing each one.
const MAX_PROBLEMS = 1000;

export class ChainChecker {
  /** The highest-seq line accepted so far: what the next line must link to. */
  #last: ChainHead;
  readonly #watch: ChainHead | undefined;
  #watchFound = false;
  readonly #pin: number | undefined;
  #pinned: string | undefined;
  #problems: AuditProblem[] = [];
  #unlisted = 0;
  /** Write-ahead lines (`phase: "sent"`) whose outcome line has not come yet, by request id. */
  readonly #sent = new Map<string, SentRequest>();

  /**
   * `watch`: a head whose seq and hash should appear on the chain (the head file's). `pin`: a seq
   * whose hash, as this walk found it, is wanted afterwards (`pinned`).
   */
  constructor(opts: { start?: ChainHead; watch?: ChainHead; pin?: number | undefined } = {}) {
    this.#last = opts.start ?? { seq: 0, hash: GENESIS_HASH };
    this.#watch = opts.watch;
    this.#pin = opts.pin;
  }

  feed(text: string, line: number, file?: string): void {
    const rec = parseLine(text);
    if (rec === null) {
      this.#report(line, text.trim() === '' ? 'empty line' : 'unparseable line (not a chained audit record)', file);
      return;
    }
    const reasons: string[] = [];
    // An edited line differs from its canonical form too (its hash does); one reason says enough.
    const written = resealLine(rec);
    if (written.hash !== rec.hash) reasons.push('edited: its content does not match its hash');
    else {
      const form = notCanonical(text, rec, written.line);
      if (form !== null) reasons.push(form);
    }
    const last = this.#last;
    if (rec.seq <= last.seq) {
      reasons.push(`seq ${rec.seq} after seq ${last.seq}: line inserted, duplicated or reordered`);
    } else if (rec.seq > last.seq + 1) {
      const missing = rec.seq - last.seq - 1;
      reasons.push(`seq jumps from ${last.seq} to ${rec.seq}: ${missing} line(s) removed or reordered before it`);
    } else if (rec.prev !== last.hash) {
      reasons.push(`prev does not match the hash of seq ${last.seq}: a line before it was edited or replaced`);
    }
    // Only a higher seq moves the chain on. A line that goes back is reported and skipped, so a
    // swapped pair is reported as exactly those two lines and an inserted copy as just itself.
    if (rec.seq > last.seq) this.#last = { seq: rec.seq, hash: rec.hash };
    if (rec.seq === this.#pin && reasons.length === 0) this.#pinned = rec.hash;
    if (this.#watch !== undefined && rec.seq === this.#watch.seq && rec.hash === this.#watch.hash) {
      this.#watchFound = true;
    }
    const pair = this.#pairProblem(rec);
    if (pair !== null) reasons.push(pair);
    if (reasons.length > 0) this.#report(line, reasons.join('; '), file);
  }

  /**
   * An injected request's two lines (proxy/stages/audit-write-ahead.ts): the write-ahead line before
   * the credential left, then its outcome with the same id, which must name the same request (agent,
   * grant, method, host, port, path). A second `sent` line for one id is a problem too.
   */
  #pairProblem(rec: AuditLine): string | null {
    if (rec.phase === 'sent') {
      if (this.#sent.has(rec.id)) return `a second write-ahead line for request ${rec.id}`;
      if (this.#sent.size < MAX_OPEN_REQUESTS) this.#sent.set(rec.id, { seq: rec.seq, facts: requestFacts(rec) });
      return null;
    }
    const sent = this.#sent.get(rec.id);
    if (sent === undefined) return null;
    this.#sent.delete(rec.id);
    return sent.facts === requestFacts(rec)
      ? null
      : `the outcome of the request sent at seq ${sent.seq} names another request (agent, grant, method, host, port or path differ)`;
  }

  /** Requests whose write-ahead line has no outcome line: in flight at the end of the walk, or keyway was stopped while serving them. */
  get unanswered(): number {
    return this.#sent.size;
  }

  /** Where the chain ends: the next file (after rotation) continues from here. */
  get last(): ChainHead {
    return this.#last;
  }

  get watchFound(): boolean {
    return this.#watchFound;
  }

  /** The hash of the `pin` line as walked, if it was on the chain. */
  get pinned(): string | undefined {
    return this.#pinned;
  }

  /** A problem found outside the lines (the head file); never dropped by the listing cap. */
  report(line: number, reason: string, file?: string): void {
    this.#problems.push(file === undefined ? { line, reason } : { line, reason, file });
  }

  get problems(): AuditProblem[] {
    if (this.#unlisted === 0) return [...this.#problems];
    return [...this.#problems, { line: 0, reason: `${this.#unlisted} more problem(s) not listed` }];
  }

  #report(line: number, reason: string, file: string | undefined): void {
    if (this.#problems.length >= MAX_PROBLEMS) {
      this.#unlisted++;
      return;
    }
    this.report(line, reason, file);
  }
}
