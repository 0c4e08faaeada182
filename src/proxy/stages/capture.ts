import type { Grant } from '../../credentials/grant.ts';
import { type CapturedToken, loginUsageKey } from '../../capture/core/captured.ts';
import { findPlaceholders } from '../../capture/core/placeholder.ts';
import { authorizationPlacement, formPlacement, headerPlacement, pathPlacement, type Placed, type Placement } from '../../capture/core/positions.ts';
import { type CaptureSettings, ownedBy, resolvesAt } from '../../capture/core/settings.ts';
import { ProxyError } from '../../errors/index.ts';
import type { HeadStage, StagedRequest } from './request.ts';
import { CaptureExchange } from './capture-exchange.ts';

// Login capture on the request (capture/): a capture grant's request gets the real
// value of each placeholder it carries, in any header (Authorization's Basic pair decoded first) and
// in its query; its body's are resolved by the body stage capture-body. A placeholder that is not
// this grant's and this agent's is refused, never resolved.

/** How long a placeholder keyway does not hold yet is waited for: another process may have just captured it (the store reloads within 250 ms). */
const MISS_WAIT_MS = 600;

/** A placeholder's record: from memory, or, missing there, once the store has had time to reload (another keyway on the store captured it). */
function recordOf(request: StagedRequest, key: string): CapturedToken | undefined | Promise<CapturedToken | undefined> {
  const book = request.conn.issuing.captures;
  const found = book.find(key);
  if (found !== undefined) return found;
  return (async () => {
    const deadline = Date.now() + MISS_WAIT_MS;
    while (Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      const later = book.find(key);
      if (later !== undefined) return later;
    }
    return undefined;
  })();
}

/** Throws the refusal for a placeholder outside a credential position, when keyway holds it (an unknown one is text like any other). */
export function refuseMisplaced(request: StagedRequest, placement: Placement, text: string): void {
  if (placement.kind !== 'misplaced') return;
  const book = request.conn.issuing.captures;
  if (!findPlaceholders(decodedForSearch(text)).some((key) => book.find(key) !== undefined)) return;
  throw new ProxyError('placeholder_refused', `a captured token's placeholder in ${placement.where}: placeholders resolve only where a credential goes`, {
    hint: 'send it in the Authorization header (or a token field), never in content the upstream keeps',
  });
}

function decodedForSearch(text: string): string {
  try {
    return text.includes('%') ? decodeURIComponent(text) : text;
  } catch {
    return text;
  }
}

/**
 * The real values of the placements' placeholders, each checked as this grant's and this agent's,
 * and a refresh token only at a watched endpoint. Sync when every record is in memory.
 */
export function realValues(
  request: StagedRequest,
  capture: CaptureExchange,
  placed: readonly Placed[],
): Map<string, CapturedToken> | Promise<Map<string, CapturedToken>> {
  const records = new Map<string, CapturedToken>();
  const pending: Array<Promise<void>> = [];
  for (const place of placed) {
    const { key } = place;
    const got = recordOf(request, key);
    const take = (record: CapturedToken | undefined) => {
      const checked = checkRecord(request, capture, record);
      if (!resolvesHere(capture, checked.field, place)) {
        if (checked.field === 'refresh_token') {
          throw new ProxyError(
            'placeholder_refused',
            `a refresh token's placeholder resolves only in a refresh at grant "${capture.grant.id}"'s token endpoints, not in ${describePlace(place)} to ${capture.where}`,
            {
              grant: capture.grant.id,
              hint: `refresh at one of grants.${capture.grant.id}.capture.endpoints, with the placeholder as the refresh_token field`,
            },
          );
        }
        throw new ProxyError(
          'placeholder_refused',
          `a placeholder of the captured ${checked.field} in ${describePlace(place)} to ${capture.where}, where grant "${capture.grant.id}" does not resolve it`,
          {
            grant: capture.grant.id,
            hint: `placeholders resolve only where grants.${capture.grant.id}.capture.resolve says (by default: Authorization on the grant's domains)`,
          },
        );
      }
      records.set(key, checked);
    };
    if (got instanceof Promise) pending.push(got.then(take));
    else take(got);
  }
  return pending.length === 0 ? records : Promise.all(pending).then(() => records);
}

/**
 * Whether a captured token resolves where it was put. The refresh token only in a refresh at a
 * watched endpoint (the body's refresh_token, or token for a revocation listed as an endpoint);
 * any other at the grant's resolve positions.
 */
function resolvesHere(capture: CaptureExchange, field: string, place: Placed): boolean {
  if (field === 'refresh_token') return capture.endpoint !== undefined && place.in === 'body' && (place.field === 'refresh_token' || place.field === 'token');
  return resolvesAt(capture.grant.logins, field, { in: place.in, name: place.field }, capture.target);
}

function describePlace(place: Placed): string {
  const name = JSON.stringify(place.field.length <= 40 ? place.field : `${place.field.slice(0, 40)}…`);
  return place.in === 'header' ? `the header ${name}` : place.in === 'query' ? `the query parameter ${name}` : `the body member ${name}`;
}

/** The record a placeholder stands for on this request, or the refusal (unknown, another grant's, another agent's). */
export function checkRecord(request: StagedRequest, capture: CaptureExchange | undefined, record: CapturedToken | undefined): CapturedToken {
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
    throw new ProxyError(
      'placeholder_refused',
      `a placeholder of grant "${record.grant}" was sent to ${request.conn.target.host}, which that grant does not cover`,
      {
        grant: record.grant,
        hint: `placeholders resolve only on requests to grant "${record.grant}"'s domains`,
      },
    );
  }
  if (record.agent !== capture.agent) {
    throw new ProxyError('placeholder_refused', `a placeholder captured for another agent was sent by agent "${capture.agent}"`, {
      grant: record.grant,
      hint: 'each agent logs in for its own tokens',
    });
  }
  return record;
}

/** Puts the real values in: the credential noted for the leak guard, and each login's use stamped. */
export function useRecords(request: StagedRequest, capture: CaptureExchange, records: ReadonlyMap<string, CapturedToken>): (key: string) => string {
  for (const record of records.values()) {
    capture.values.push(record.value);
    request.conn.issuing.grantUsed(loginUsageKey(record.grant, record.agent, record.login));
  }
  return (key) => records.get(key)!.value;
}

/**
 * Stage "capture": on a capture grant's request, the placeholders in its Authorization header and in
 * its query's credential parameters get their real values; one anywhere else in its head is
 * refused. Its body's are stage capture-body's. On a capture host the answer is asked for
 * unencoded (stage capture-answer reads it whole).
 */
export const capture: HeadStage = {
  name: 'capture',
  injected: true,
  run(request) {
    const grant = request.grant!;
    if (grant.logins === undefined) return;
    const { host, port } = request.conn.target;
    if (!ownedBy(grant.logins, request.conn.agent.id)) {
      throw new ProxyError(
        'host_not_allowed',
        `grant "${grant.id}" belongs to ${[...grant.logins.owners!].map((a) => `agent "${a}"`).join(', ')}, not agent "${request.conn.agent.id}"`,
        {
          grant: grant.id,
          hint: `name agent "${request.conn.agent.id}" in grants.${grant.id}.agents to let it log in through keyway there`,
        },
      );
    }
    const exchange = new CaptureExchange(
      grant as Grant & { logins: CaptureSettings },
      request.conn.agent.id,
      { host, port, path: request.path },
      request.draft.event,
      request.conn.issuing.captures,
    );
    request.login = exchange;
    request.issued = { credential: { kind: 'captured', values: exchange.values }, refreshed: false };
    const outgoing = request.outgoing!;
    if (exchange.captureHost) outgoing.headers['accept-encoding'] = 'identity';
    const rewrites: Array<{ placement: Extract<Placement, { kind: 'placed' }>; apply: (text: string) => void }> = [];
    for (const [name, value] of Object.entries(outgoing.headers)) {
      for (const text of typeof value === 'string' ? [value] : value) {
        const names = grant.logins.positionNames.header;
        const placement =
          name === 'authorization' && typeof value === 'string' && names.has(name) ? authorizationPlacement(text) : headerPlacement(name, text, names);
        refuseMisplaced(request, placement, text);
        if (placement.kind === 'placed') rewrites.push({ placement, apply: (out) => (outgoing.headers[name] = out) });
      }
    }
    const q = outgoing.path.indexOf('?');
    const pathPart = q === -1 ? outgoing.path : outgoing.path.slice(0, q);
    refuseMisplaced(request, pathPlacement(pathPart), pathPart);
    if (q !== -1) {
      const query = outgoing.path.slice(q + 1);
      const placement = formPlacement(query, 'the query', grant.logins.positionNames.query, 'query');
      refuseMisplaced(request, placement, query);
      if (placement.kind === 'placed') rewrites.push({ placement, apply: (out) => (outgoing.path = `${pathPart}?${out}`) });
    }
    if (rewrites.length === 0) return;
    const placed = rewrites.flatMap((r) => r.placement.placed);
    const finish = (records: Map<string, CapturedToken>) => {
      const real = useRecords(request, exchange, records);
      for (const { placement, apply } of rewrites) apply(placement.rewrite(real));
      request.draft.event.secret_source = 'capture';
    };
    const records = realValues(request, exchange, placed);
    return records instanceof Promise ? records.then(finish) : finish(records);
  },
};
