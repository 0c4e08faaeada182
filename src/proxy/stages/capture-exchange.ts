import type { Grant } from '../../credentials/grant.ts';
import type { CaptureBook } from '../../capture/store/records.ts';
import type { CapturedToken } from '../../capture/core/captured.ts';
import { type CaptureEndpoint, type CaptureSettings, isCaptureHost, watchedEndpoint } from '../../capture/core/settings.ts';
import type { AuditEvent } from '../../audit/record.ts';

// Its own file, not stage capture's: the staged request names it (StagedRequest.login), and stage
// capture names the staged request.

/** What a capture grant's request carries through the stages, and its answer's stage reads. */
export class CaptureExchange {
  readonly grant: Grant & { readonly logins: CaptureSettings };
  readonly agent: string;
  /** The watched token endpoint the request goes to, if it goes to one. */
  readonly endpoint: CaptureEndpoint | undefined;
  /** A host of the grant's token endpoints: every answer there is read for tokens. */
  readonly captureHost: boolean;
  /** The real values put on the request (the leak guard looks for them in the answer). */
  readonly values: string[] = [];
  /** A refresh through a placeholder refresh token: its key and record, under a lock until the answer is captured. */
  refreshing: { key: string; record: CapturedToken } | undefined;
  /** Host and path, for messages (never the query). */
  readonly where: string;
  /** Where the request goes: host, port and path without its query (what a resolve position matches). */
  readonly target: { readonly host: string; readonly port: number; readonly path: string };
  readonly book: Pick<CaptureBook, 'save'>;
  readonly #event: AuditEvent;
  #release: (() => Promise<void>) | undefined;
  #closed = false;

  /**
   * A request another grant serves on this capture grant's host (X-Keyway-Grant chose it, or it
   * covers the host too): its answer is only checked, so a token answer there is refused, never captured.
   */
  readonly checkOnly: boolean;

  constructor(
    grant: Grant & { readonly logins: CaptureSettings },
    agent: string,
    target: { host: string; port: number; path: string },
    event: AuditEvent,
    book: Pick<CaptureBook, 'save'>,
    checkOnly = false,
  ) {
    const { host, port, path } = target;
    this.grant = grant;
    const q = path.indexOf('?');
    this.target = { host, port, path: q === -1 ? path : path.slice(0, q) };
    this.where = `${host}${this.target.path}`;
    this.book = book;
    this.agent = agent;
    this.checkOnly = checkOnly;
    this.captureHost = isCaptureHost(grant.logins, host, port);
    this.endpoint = this.captureHost && !checkOnly ? watchedEndpoint(grant.logins, host, port, path) : undefined;
    this.#event = event;
  }

  /** The audit line's `captured`. */
  captured(fields: string[]): void {
    if (fields.length > 0) this.#event.captured = fields;
  }

  /** Keeps the refresh lock until the answer is captured; once the exchange has ended, gives it back at once. */
  holdLock(release: () => Promise<void>): void {
    if (this.#closed) return void release().catch(() => undefined);
    this.#release = release;
  }

  /** Gives the refresh lock back, if held (the answer captured, or a local answer given). */
  release(): void {
    const release = this.#release;
    this.#release = undefined;
    void release?.().catch(() => undefined);
  }

  /** The exchange has ended, whatever happened: the lock back now, and any acquired later at once. */
  close(): void {
    this.#closed = true;
    this.release();
  }
}
