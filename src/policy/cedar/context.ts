import { isIP } from 'node:net';
import type { PolicyContext, PolicyQuery } from './contract.ts';

// A query written as Cedar's request: entities and a context as the schema (schema.ts) types them.
// Extension values (datetime, ipaddr, decimal) are written explicitly, so nothing depends on the
// engine guessing a string's type.

type CedarValue = string | number | boolean | CedarValue[] | { [key: string]: CedarValue };

const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
/** Cedar's decimal: four digits after the point, within a 64-bit integer of them. */
const DECIMAL_LIMIT = 922_337_203_685_477;

/** The context record; throws (the caller refuses) for a value the schema cannot hold. */
export function cedarContext(context: PolicyContext): Record<string, CedarValue> {
  const time = context.time;
  if (Number.isNaN(time.getTime())) throw new Error('the clock gave no time');
  const out: Record<string, CedarValue> = {
    method: context.method.toUpperCase(),
    host: context.host.toLowerCase(),
    port: context.port,
    path: context.path,
    path_lower: context.path.normalize('NFKC').toLowerCase(),
    query_keys: [...new Set(context.queryKeys)].sort(),
    time: {
      // To the minute: what a policy reads of the clock, and what lets judge.ts remember an answer
      // for the rest of the minute (an hours rule is written in minutes anyway).
      utc: extension('datetime', toTheMinute(time)),
      hour: time.getUTCHours(),
      minute: time.getUTCMinutes(),
      weekday: WEEKDAYS[time.getUTCDay()]!,
    },
  };
  // A client with no IP address (a Unix socket, keyway run --contain's door): no source_ip, so a
  // policy that reads it without `has` fails (a permit does not match, a forbid refuses).
  const source = socketAddress(context.sourceIp);
  if (isIP(source) !== 0) out['source_ip'] = extension('ip', source);
  if (context.bodySize !== undefined) out['body_size'] = context.bodySize;
  if (context.mcpTool !== undefined) out['mcp_tool'] = context.mcpTool;
  if (context.model !== undefined) out['model'] = context.model;
  const spend = context.spendTodayUsd;
  if (spend !== undefined && Number.isFinite(spend) && Math.abs(spend) < DECIMAL_LIMIT) out['spend_today_usd'] = extension('decimal', spend.toFixed(4));
  if (context.signals !== undefined) out['signal'] = [...new Set(context.signals)].sort();
  return out;
}

/** The principal and its parents, each an Agent in the one before it (nearest parent last). */
export function cedarEntities(query: Pick<PolicyQuery, 'agent' | 'parents' | 'grant'>): Array<{
  uid: { type: string; id: string };
  attrs: Record<string, never>;
  parents: Array<{ type: string; id: string }>;
}> {
  const chain = [...query.parents, query.agent];
  const agents = chain.map((id, i) => ({ uid: { type: 'Agent', id }, attrs: {}, parents: i === 0 ? [] : [{ type: 'Agent', id: chain[i - 1]! }] }));
  return [...agents, { uid: { type: 'Grant', id: query.grant }, attrs: {}, parents: [] }];
}

/** `2026-11-29T09:41:00Z`: the time with its seconds dropped. */
function toTheMinute(time: Date): string {
  return `${time.toISOString().slice(0, 16)}:00Z`;
}

function extension(fn: string, arg: string): { __extn: { fn: string; arg: string } } {
  return { __extn: { fn, arg } };
}

/** An IPv4 address as a v4-mapped IPv6 socket shows it (::ffff:127.0.0.1) is the IPv4 address; a zone (%eth0) is dropped. */
function socketAddress(address: string): string {
  const bare = address.replace(/%.*$/, '');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare);
  return mapped ? mapped[1]! : bare;
}
