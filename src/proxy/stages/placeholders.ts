import { findPlaceholders, mayHoldPlaceholder } from '../../capture/core/placeholder.ts';
import type { ProxyTables } from '../../credentials/tables.ts';
import type { Grant } from '../../credentials/grant.ts';
import { type CaptureSettings, isCaptureHost, ownedBy } from '../../capture/core/settings.ts';
import { CaptureExchange } from './capture-exchange.ts';
import { checkRecord } from './capture.ts';
import type { HeadStage, StagedRequest } from './request.ts';

/**
 * Stage "placeholders": a request that no capture grant serves (another grant's, or none) carrying a
 * captured token's placeholder in its head or query is refused (placeholder_refused), audited, and
 * never resolved; one to a capture grant's token host through another grant has its answer checked
 * (a token answer there is refused, never handed over uncaptured). Only while some grant captures:
 * otherwise it costs a lookup of the tables.
 */
export const placeholders: HeadStage = {
  name: 'placeholders',
  injected: false,
  run(request) {
    if (request.grant?.logins !== undefined) return;
    const grants = captureGrants(request);
    if (grants.length === 0) return;
    const { req } = request;
    const { host, port } = request.conn.target;
    const agent = request.conn.agent;
    const watching = grants.find(
      (g) => isCaptureHost(g.logins, host, port) && (agent.grants === undefined || agent.grants.has(g.id)) && ownedBy(g.logins, agent.id),
    );
    if (watching !== undefined) {
      request.login = new CaptureExchange(watching, agent.id, { host, port, path: request.path }, request.draft.event, request.conn.issuing.captures, true);
      if (request.outgoing !== undefined) request.outgoing.headers['accept-encoding'] = 'identity';
    }
    check(request, request.target);
    // Every header line as the agent sent it (rawHeaders: names and values in turn), a second line
    // of a header Node keeps only once in req.headers included, and its name as well as its value;
    // no array made per request.
    const raw = req.rawHeaders;
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const value = raw[i + 1]!;
      check(request, raw[i]!);
      check(request, value);
      if (raw[i]!.length === 13 && raw[i]!.toLowerCase() === 'authorization') {
        const basic = /^basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(value);
        if (basic !== null) check(request, Buffer.from(basic[1]!, 'base64').toString('utf8'));
      }
    }
  },
};

function check(request: StagedRequest, text: string): void {
  if (!mayHoldPlaceholder(text)) return;
  // A key keyway never issued is text like any other; one it holds is refused.
  for (const key of findPlaceholders(text)) {
    const record = request.conn.issuing.captures.find(key);
    if (record !== undefined) checkRecord(request, undefined, record);
  }
}

type CaptureGrant = Grant & { readonly logins: CaptureSettings };
const captureGrantsOf = new WeakMap<ProxyTables, readonly CaptureGrant[]>();

/** The tables' capture grants (found once per table build). */
function captureGrants(request: StagedRequest): readonly CaptureGrant[] {
  const tables = request.conn.decisions.tables();
  let found = captureGrantsOf.get(tables);
  if (found === undefined) {
    found = tables.router.list().filter((g): g is CaptureGrant => g.logins !== undefined);
    captureGrantsOf.set(tables, found);
  }
  return found;
}
