import { appendFile } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import type { ChainHead } from '../head.ts';
import type { CheckpointKey } from './key.ts';
import { signCheckpoint, type Checkpoint } from './record.ts';

// Writes checkpoints (record.ts) of the chain this process writes: when a file is rotated (its last
// line, so a range that rotation later prunes stays provable), on a timer while new lines come, and
// at stop. Each is one append (O_APPEND) to the checkpoint file, which rotation never prunes: a few
// hundred bytes per interval. A failed append is logged and retried with the next one; it never
// holds up a line of the log itself.

/** Default audit.checkpoint_interval. */
export const CHECKPOINT_INTERVAL_MS = 5 * 60_000;

/** `logs/audit.jsonl` -> `logs/audit.checkpoints.jsonl`. */
export function checkpointsPathFor(auditPath: string): string {
  const ext = extname(auditPath);
  const stem = basename(auditPath, ext);
  return join(dirname(auditPath), `${stem}.checkpoints${ext || '.jsonl'}`);
}

export interface CheckpointSignerOptions {
  /** Where a checkpoint goes: a line appended to the checkpoint file, or a row (audit.sink postgres). */
  store: (checkpoint: Checkpoint, line: string) => Promise<void>;
  key: CheckpointKey;
  intervalMs: number;
  replica?: string | undefined;
  onError?: ((err: Error) => void) | undefined;
  now?: () => Date;
}

export class CheckpointSigner {
  readonly #o: CheckpointSignerOptions;
  #latest: ChainHead | undefined;
  #signed = 0;
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> = Promise.resolve();

  constructor(options: CheckpointSignerOptions) {
    this.#o = options;
    if (options.intervalMs > 0) {
      this.#timer = setInterval(() => this.#signLatest(), options.intervalMs);
      this.#timer.unref();
    }
  }

  /** The chain head after a batch this process appended. */
  seen(head: ChainHead): void {
    if (this.#latest === undefined || head.seq > this.#latest.seq) this.#latest = head;
  }

  /** A file was rotated; `head` is its last line: signed now (resolves once written, or failed and reported). */
  rotated(head: ChainHead): Promise<void> {
    this.seen(head);
    this.#sign(head);
    return this.#writing;
  }

  /** The latest head, if not signed yet; resolves once every checkpoint asked for is written (or failed). */
  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#signLatest();
    await this.#writing;
  }

  /** Checkpoints written so far (for tests and /metrics). */
  get signed(): number {
    return this.#signed;
  }

  #signLatest(): void {
    if (this.#latest !== undefined) this.#sign(this.#latest);
  }

  #lastSignedSeq = 0;

  #sign(head: ChainHead): void {
    if (head.seq <= this.#lastSignedSeq || head.seq === 0) return;
    this.#lastSignedSeq = head.seq;
    const checkpoint = signCheckpoint(head, this.#o.key, (this.#o.now?.() ?? new Date()).toISOString(), this.#o.replica);
    const line = JSON.stringify(checkpoint);
    this.#writing = this.#writing.then(() =>
      this.#o.store(checkpoint, line).then(
        () => {
          this.#signed++;
        },
        (err: Error) => {
          // Not signed after all: the next timer (or the stop) tries this head again.
          if (this.#lastSignedSeq === head.seq) this.#lastSignedSeq = head.seq - 1;
          this.#o.onError?.(err);
        },
      ),
    );
  }
}

/** The file form of CheckpointSignerOptions.store: one line appended (O_APPEND, mode 0600). */
export function appendToFile(path: string): CheckpointSignerOptions['store'] {
  return (_checkpoint, line) => appendFile(path, `${line}\n`, { mode: 0o600 });
}
