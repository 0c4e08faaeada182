import { findPlaceholders, mayHoldPlaceholder } from '../../credentials/capture/placeholder.ts';
import type { ProxyTables } from '../../credentials/tables.ts';
import { resolvePlaceholder } from './capture.ts';
import type { HeadStage, StagedRequest } from './request.ts';

/**
 * Stage "placeholders": a request that no capture grant serves (another grant's, or none) carrying a
 * captured token's placeholder in its head or query is refused (placeholder_refused), audited, and
 * never resolved. Only while some grant captures: otherwise it costs a lookup of the config.
 */
export const placeholders: HeadStage = {
  name: 'placeholders',
  injected: false,
  run(request) {
    if (request.grant?.capture !== undefined || !capturing(request)) return;
    const { req } = request;
    check(request, request.target);
    for (const [name, value] of Object.entries(req.headers)) {
      if (value === undefined) continue;
      if (name === 'authorization' && typeof value === 'string') {
        const basic = /^basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(value);
        if (basic !== null) check(request, Buffer.from(basic[1]!, 'base64').toString('utf8'));
      }
      if (typeof value === 'string') check(request, value);
      else for (const v of value) check(request, v);
    }
  },
};

function check(request: StagedRequest, text: string): void {
  if (!mayHoldPlaceholder(text)) return;
  // A key keyway never issued is text like any other; one it holds is refused.
  for (const key of findPlaceholders(text)) if (request.conn.issuing.captures.find(key) !== undefined) resolvePlaceholder(request, undefined, key);
}

const capturingTables = new WeakMap<ProxyTables, boolean>();

/** Whether any grant of the tables captures logins (computed once per table build). */
function capturing(request: StagedRequest): boolean {
  const tables = request.conn.decisions.tables();
  let known = capturingTables.get(tables);
  if (known === undefined) {
    known = tables.router.list().some((g) => g.capture !== undefined);
    capturingTables.set(tables, known);
  }
  return known;
}
