import { findPlaceholders, mayHoldPlaceholder } from '../../capture/core/placeholder.ts';
import { ProxyError } from '../../errors/index.ts';
import { connectionEnded } from '../open-exchanges.ts';
import type { HeadStage, StagedRequest } from './request.ts';

/**
 * Stage "open-exchange": the last before the request goes up. A request with a grant is kept on the
 * books (open-exchanges.ts) until its response, or its WebSocket, closes: what it opened is ended
 * when the grant stops admitting the agent, or when a captured login its head resolved is dropped
 * (revocation, the books' judge: app/proxy-runtime.ts gives it to them).
 */
export const openExchange: HeadStage = {
  name: 'open-exchange',
  injected: true,
  run(request) {
    const open = request.conn.transport.openExchanges;
    if (request.login !== undefined && request.login.values.length > 0) request.resolvedLogins = resolvedLogins(request);
    request.holdOpenIn(open);
  },
};

/**
 * The keys of the placeholders the head carried that stand for this grant's and agent's captured
 * tokens: those stage capture resolved (it refused every other one). Read off the agent's own head
 * (its headers, Basic credentials decoded, and its target), which the stages never rewrite.
 */
function resolvedLogins(request: StagedRequest): string[] {
  const login = request.login!;
  const book = request.conn.issuing.captures;
  const keys = new Set<string>();
  const look = (text: string) => {
    if (!mayHoldPlaceholder(text)) return;
    for (const key of findPlaceholders(text)) {
      const record = book.find(key);
      if (record !== undefined && record.grant === login.grant.id && record.agent === login.agent) keys.add(key);
    }
  };
  for (const [name, value] of Object.entries(request.req.headers)) {
    if (value === undefined) continue;
    for (const text of typeof value === 'string' ? [value] : value) {
      look(text);
      const basic = name === 'authorization' ? /^basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(text) : null;
      if (basic !== null) look(Buffer.from(basic[1]!, 'base64').toString('utf8'));
    }
  }
  look(request.target);
  try {
    look(decodeURIComponent(request.target));
  } catch {
    // not percent-encoded text: searched as it came
  }
  return [...keys];
}

/** Why an open exchange may no longer go on, or undefined. Reads memory only (tables, store). */
export function revocation(request: StagedRequest): ProxyError | undefined {
  const { conn, grant } = request;
  if (grant === undefined) return undefined;
  const ended = conn.endReason();
  if (ended !== undefined) return connectionEnded(ended);
  const route = conn.grants();
  if (route.kind !== 'intercept' || !route.candidates.some((g) => g.id === grant.id)) {
    return new ProxyError(
      'host_not_allowed',
      `keyway closed what was open under grant "${grant.id}": it no longer admits agent "${conn.agent.id}" on ${conn.target.host}`,
      { grant: grant.id, hint: 'the grant was removed or taken from the agent; open a new connection if it was given back' },
    );
  }
  const keys = request.resolvedLogins;
  if (keys?.some((key) => conn.issuing.captures.find(key) === undefined)) {
    return new ProxyError('placeholder_refused', `keyway closed what was open under grant "${grant.id}": the captured login it used was dropped`, {
      grant: grant.id,
      hint: 'log in again through keyway for a new one',
    });
  }
  return undefined;
}
