import type { Grant } from '../../credentials/grants.ts';
import { type CaptureBook, type CapturedToken, loginUsageKey } from '../../credentials/capture/records.ts';
import { findPlaceholders, mayHoldPlaceholder } from '../../credentials/capture/placeholder.ts';
import { type CaptureEndpoint, type CaptureSettings, isCaptureHost, watchedEndpoint } from '../../credentials/capture/settings.ts';
import { ProxyError } from '../../errors/index.ts';
import type { AuditEvent } from '../../audit/record.ts';
import type { HeadStage, StagedRequest } from './request.ts';

// login_capture on the request (credentials/capture/): a capture grant's request gets the real
// value of each placeholder it carries, in any header (Authorization's Basic pair decoded first) and
// in its query; its body's are resolved by the body stage capture-body. A placeholder that is not
// this grant's and this agent's is refused, never resolved.

/** What a capture grant's request carries through the stages, and its answer's stage reads. */
export class CaptureExchange {
  readonly grant: Grant & { readonly capture: CaptureSettings };
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
  readonly book: Pick<CaptureBook, 'save'>;
  readonly #event: AuditEvent;
  #release: (() => Promise<void>) | undefined;

  /**
   * A request another grant serves on this capture grant's host (X-Keyway-Grant chose it, or it
   * covers the host too): its answer is only checked, so a token answer there is refused, never captured.
   */
  readonly checkOnly: boolean;

  constructor(
    grant: Grant & { readonly capture: CaptureSettings },
    agent: string,
    target: { host: string; port: number; path: string },
    event: AuditEvent,
    book: Pick<CaptureBook, 'save'>,
    checkOnly = false,
  ) {
    const { host, port, path } = target;
    this.grant = grant;
    this.where = `${host}${path}`;
    this.book = book;
    this.agent = agent;
    this.checkOnly = checkOnly;
    this.captureHost = isCaptureHost(grant.capture, host, port);
    this.endpoint = this.captureHost && !checkOnly ? watchedEndpoint(grant.capture, host, port, path) : undefined;
    this.#event = event;
  }

  /** The audit line's `captured`. */
  captured(fields: string[]): void {
    if (fields.length > 0) this.#event.captured = fields;
  }

  holdLock(release: () => Promise<void>): void {
    this.#release = release;
  }

  /** Gives the refresh lock back (once; the exchange calls it at close whatever happened). */
  release(): void {
    const release = this.#release;
    this.#release = undefined;
    void release?.();
  }
}

/** The record a placeholder key stands for on this request, or the refusal. */
export function resolvePlaceholder(request: StagedRequest, capture: CaptureExchange | undefined, key: string): CapturedToken {
  const record = request.conn.issuing.captures.find(key);
  const where = `${request.conn.target.host}`;
  if (record === undefined) {
    throw new ProxyError(
      'placeholder_refused',
      `the request carries a captured token's placeholder keyway does not hold (dropped by grants rm or an agent's removal, or never issued)`,
      {
        hint: 'log in again through keyway for a new one',
      },
    );
  }
  if (capture === undefined || record.grant !== capture.grant.id) {
    throw new ProxyError('placeholder_refused', `a placeholder of grant "${record.grant}" was sent to ${where}, which that grant does not cover`, {
      grant: record.grant,
      hint: `placeholders resolve only on requests to grant "${record.grant}"'s domains`,
    });
  }
  if (record.agent !== capture.agent) {
    throw new ProxyError('placeholder_refused', `a placeholder captured for another agent was sent by agent "${capture.agent}"`, {
      grant: record.grant,
      hint: 'each agent logs in for its own tokens',
    });
  }
  return record;
}

/** Every placeholder in `text` replaced by its real value (pushed to `used`). */
export function resolveText(request: StagedRequest, capture: CaptureExchange | undefined, text: string, encode: (value: string) => string = (v) => v): string {
  if (!mayHoldPlaceholder(text)) return text;
  let out = text;
  for (const key of new Set(findPlaceholders(text))) {
    const record = resolvePlaceholder(request, capture, key);
    const real = encode(record.value);
    // With its prefix where it was written with it (`gho_kwcap_…`): the real value has its own.
    out = out
      .split(record.prefix + key)
      .join(real)
      .split(key)
      .join(real);
    if (capture !== undefined) {
      capture.values.push(record.value);
      request.conn.issuing.grantUsed(loginUsageKey(record.grant, record.agent, record.login));
    }
  }
  return out;
}

/** An Authorization header: Basic's pair decoded, a placeholder in it resolved, encoded again; any other scheme as text. */
function resolveAuthorization(request: StagedRequest, capture: CaptureExchange, value: string): string {
  const basic = /^basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(value);
  if (basic === null) return resolveText(request, capture, value);
  const pair = Buffer.from(basic[1]!, 'base64').toString('utf8');
  const resolved = resolveText(request, capture, pair);
  return resolved === pair ? value : `Basic ${Buffer.from(resolved, 'utf8').toString('base64')}`;
}

/**
 * Stage "capture": on a capture grant's request, its placeholders resolved in the head and query;
 * on a capture host, the answer is asked for unencoded (stage capture-answer reads it whole).
 */
export const capture: HeadStage = {
  name: 'capture',
  injected: true,
  run(request) {
    const grant = request.grant!;
    if (grant.capture === undefined) return;
    const { host, port } = request.conn.target;
    const exchange = new CaptureExchange(
      grant as Grant & { capture: CaptureSettings },
      request.conn.agent.id,
      { host, port, path: request.path },
      request.draft.event,
      request.conn.issuing.captures,
    );
    request.capture = exchange;
    const outgoing = request.outgoing!;
    for (const [name, value] of Object.entries(outgoing.headers)) {
      if (name === 'authorization' && typeof value === 'string') outgoing.headers[name] = resolveAuthorization(request, exchange, value);
      else if (typeof value === 'string') outgoing.headers[name] = resolveText(request, exchange, value);
      else outgoing.headers[name] = value.map((v) => resolveText(request, exchange, v));
    }
    outgoing.path = resolveText(request, exchange, outgoing.path);
    if (exchange.captureHost) outgoing.headers['accept-encoding'] = 'identity';
    request.issued = { credential: { kind: 'captured', values: exchange.values }, refreshed: false };
    if (exchange.values.length > 0) request.draft.event.secret_source = 'capture';
  },
};
