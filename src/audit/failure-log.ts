// Audit writes failing, said in the app log at a bounded rate. While the log (or the audit table)
// cannot be written, every request that would inject is refused and every refusal's own line fails
// too: a line in the app log per refused request would bury everything else. So: one error when
// writes start failing, then one line per interval with how many more failed, and one when they
// succeed again, with the total.

/** Where the lines go (pino's shape). */
export interface FailureLogger {
  error(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  info(fields: object, message: string): void;
}

/** What a writer tells of its writes (batch-queue.ts). */
export interface WriteFailures {
  /** `lines` writes were refused with `err` (a failed batch, a writer closed, no room). */
  rejected(err: Error, lines: number): void;
  /** A batch reached the store again after failures. */
  recovered(): void;
  /** The writer is closing: no more summaries. */
  close(): void;
}

export const FAILURE_SUMMARY_MS = 10_000;

export class AuditFailureLog implements WriteFailures {
  readonly #logger: FailureLogger;
  readonly #intervalMs: number;
  #failingSince: number | null = null;
  /** Failed writes since the last line said. */
  #unsaid = 0;
  #total = 0;
  #lastCode = 'error';
  #timer: NodeJS.Timeout | null = null;
  #closed = false;

  constructor(logger: FailureLogger, intervalMs = FAILURE_SUMMARY_MS) {
    this.#logger = logger;
    this.#intervalMs = intervalMs;
  }

  rejected(err: Error, lines: number): void {
    if (lines <= 0 || this.#closed) return;
    this.#total += lines;
    this.#lastCode = codeOf(err);
    if (this.#failingSince !== null) {
      this.#unsaid += lines;
      return;
    }
    this.#failingSince = Date.now();
    this.#logger.error(
      { err: { code: this.#lastCode, message: err.message }, lines },
      `audit lines cannot be written; requests that would inject are refused (503 audit_unavailable) until they can. Further failures are counted, one line per ${this.#intervalMs / 1000}s`,
    );
    this.#timer = setInterval(() => this.#summary(), this.#intervalMs);
    // A summary never keeps the process alive on its own.
    this.#timer.unref();
  }

  recovered(): void {
    if (this.#failingSince === null) return;
    const ms = Date.now() - this.#failingSince;
    this.#stop();
    this.#logger.info(
      { lines: this.#total, ms },
      `audit lines are written again after ${Math.round(ms / 100) / 10}s; ${this.#total} audit write(s) failed meanwhile (the lines kept through the fault are written first)`,
    );
    this.#total = 0;
    this.#unsaid = 0;
  }

  close(): void {
    this.#closed = true;
    if (this.#failingSince !== null) this.#summary();
    this.#stop();
  }

  #summary(): void {
    if (this.#unsaid === 0) return;
    this.#logger.warn(
      { err: { code: this.#lastCode }, lines: this.#unsaid },
      `audit lines still cannot be written: ${this.#unsaid} more write(s) failed in the last ${this.#intervalMs / 1000}s`,
    );
    this.#unsaid = 0;
  }

  #stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    this.#failingSince = null;
  }
}

function codeOf(err: Error): string {
  const cause = (err as { cause?: unknown }).cause as NodeJS.ErrnoException | undefined;
  return cause?.code ?? (err as NodeJS.ErrnoException).code ?? 'error';
}
