import { randomUUID } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { hostname } from 'node:os';
import type { AuditEvent } from '../audit/index.ts';
import type { Config } from '../config/index.ts';
import type { StoredListing } from '../credentials/stored-listing.ts';
import { checkEvent } from '../audit/record.ts';
import type { RequestTally } from '../observability/counting-audit.ts';
import type { RateLimiter } from '../policy/rate-limits.ts';
import type { FromWorker } from './workers/messages.ts';
import { answerRates } from './workers/shared-rates.ts';

// The contain door: a Unix socket beside a running keyway's record (data/running/PID.sock, mode
// 0600 in keyway's data folder), through which `keyway run --contain` makes the keyway it starts
// for its command one agent with this one, not a second:
// - `secrets`: the values of the config's env: secrets (and the master key) this keyway was started
//   with, so the shell the agent runs from needs none of them;
// - `join`: then a line per request on a scope with a rate, answered from this keyway's buckets (as
//   workers ask their primary: app/workers/shared-rates.ts), and a line per refusal, written in full
//   or counted by this keyway's refusal budget (app/workers/shared-refusals.ts): a contained agent
//   has one rate bucket and one refusal budget however many runs it makes (quotas are the store's
//   already, shared by every process); and, once a second, a tally of the requests the run's keyway
//   served, so this keyway's overview and `keyway status` count the contained agent's traffic too;
// - `start`: the audit line of a run that may reach host Unix sockets (--allow-socket);
// - `client`: for `keyway run` and `keyway env` (cli/door-view.ts), this keyway's config, if it came
//   from the very file text the asker read (its hash), and the store's grants and agents (no
//   secret): the asker then neither validates the config nor opens the store itself.
// The contained command's own connections never pass here: the run's keyway serves them directly
// (a relay through this socket cost 19% on s1's latency and 15% of s2's throughput).
// Only keyway's own user can connect (the file's mode and its folder's); such a process can read
// this keyway's environment in /proc anyway, so nothing it learns here is new to it.

export type DoorHeader =
  | { v: 1; kind: 'secrets'; names: string[] }
  | { v: 1; kind: 'join' }
  | { v: 1; kind: 'start'; agent: string | null; sockets: string[] }
  | ClientQuestion;

/** The answer to a `client` question: nothing when this keyway's config is not from that text (the asker loads its own). */
export type ClientAnswer = { match: false } | { match: true; version: string; config: Config; stored: StoredListing };

/** Which config the asker would load: the home, the file (null: none, defaults) and its text's hash (config/source.ts). */
export interface ClientQuestion {
  v: 1;
  kind: 'client';
  home: string;
  path: string | null;
  sha256: string | null;
}

/** A line longer than this is refused: a header is a few names, a rates question a few scopes. */
export const MAX_DOOR_LINE = 16 * 1024;

export function encodeDoorLine(value: unknown): Buffer {
  return Buffer.from(`${JSON.stringify(value)}\n`);
}

/** The header, checked field by field, or undefined. */
export function parseDoorHeader(line: string): DoorHeader | undefined {
  const h = parseObject(line);
  if (h === undefined || h['v'] !== 1) return undefined;
  const strings = (v: unknown) => Array.isArray(v) && v.length <= 256 && v.every((s) => typeof s === 'string' && s.length > 0 && s.length <= 4096);
  if (h['kind'] === 'secrets' && strings(h['names'])) return { v: 1, kind: 'secrets', names: h['names'] as string[] };
  if (h['kind'] === 'join') return { v: 1, kind: 'join' };
  const pathOk = (v: unknown) => v === null || (typeof v === 'string' && v.length > 0 && v.length <= 4096);
  if (
    h['kind'] === 'client' &&
    pathOk(h['home']) &&
    h['home'] !== null &&
    pathOk(h['path']) &&
    (h['sha256'] === null || (typeof h['sha256'] === 'string' && /^[0-9a-f]{64}$/.test(h['sha256'])))
  )
    return { v: 1, kind: 'client', home: h['home'] as string, path: h['path'] as string | null, sha256: h['sha256'] as string | null };
  const agentOk = h['agent'] === null || (typeof h['agent'] === 'string' && h['agent'].length > 0 && h['agent'].length <= 200);
  if (h['kind'] === 'start' && agentOk && strings(h['sockets']))
    return { v: 1, kind: 'start', agent: h['agent'] as string | null, sockets: h['sockets'] as string[] };
  return undefined;
}

function parseObject(line: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(line);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** A refusal's audit line handed over (decision deny, a valid event), or undefined. */
export function parseRefusal(line: string): Extract<FromWorker, { t: 'refusal' }> | undefined {
  const m = parseObject(line);
  const event = m?.['event'] as AuditEvent | undefined;
  if (m?.['t'] !== 'refusal' || typeof event !== 'object' || event === null || Array.isArray(event)) return undefined;
  if (event.decision !== 'deny' || checkEvent(event) !== null) return undefined;
  return { t: 'refusal', event };
}

/** Most entries in one tally line: a second of traffic has a few kinds of request (decision, code). */
const MAX_TALLY_ENTRIES = 64;
const TALLY_DECISIONS = new Set(['inject', 'tunnel', 'deny', 'error']);

/** A tally of requests the run's keyway served (contain/door-client.ts), each entry checked, or undefined. */
export function parseTally(line: string): RequestTally[] | undefined {
  const m = parseObject(line);
  const counts = m?.['counts'];
  if (m?.['t'] !== 'tally' || !Array.isArray(counts) || counts.length > MAX_TALLY_ENTRIES) return undefined;
  const out: RequestTally[] = [];
  for (const entry of counts as unknown[]) {
    const e = entry as Record<string, unknown>;
    if (typeof e !== 'object' || e === null) return undefined;
    const { minuteMs, decision, code, refreshed, n } = e;
    if (!Number.isSafeInteger(minuteMs) || (minuteMs as number) % 60_000 !== 0) return undefined;
    if (typeof decision !== 'string' || !TALLY_DECISIONS.has(decision) || typeof refreshed !== 'boolean') return undefined;
    // Codes are keyway's own: a short snake_case name, never text a run made up.
    if (code !== null && (typeof code !== 'string' || !/^[a-z][a-z0-9_]{0,63}$/.test(code))) return undefined;
    if (!Number.isSafeInteger(n) || (n as number) < 1 || (n as number) > 1_000_000) return undefined;
    out.push({ minuteMs: minuteMs as number, decision: decision as RequestTally['decision'], code: code as string | null, refreshed, n: n as number });
  }
  return out;
}

/** One rates question, checked (what RemoteRates sends), or undefined. */
export function parseRatesQuestion(line: string): Extract<FromWorker, { t: 'rates' }> | undefined {
  const m = parseObject(line);
  if (m === undefined || m['t'] !== 'rates' || !Number.isInteger(m['id']) || typeof m['nowMs'] !== 'number' || !Array.isArray(m['scopes'])) return undefined;
  const scopeOk = (s: unknown) => {
    const r = s as Record<string, unknown>;
    const rate = r?.['rate'] as Record<string, unknown> | undefined;
    return (
      typeof r === 'object' &&
      r !== null &&
      typeof r['kind'] === 'string' &&
      typeof r['name'] === 'string' &&
      typeof r['key'] === 'string' &&
      typeof rate === 'object' &&
      rate !== null &&
      Number.isFinite(rate['count']) &&
      Number.isFinite(rate['perMs']) &&
      Number.isFinite(rate['burst'])
    );
  };
  if (m['scopes'].length > 16 || !m['scopes'].every(scopeOk)) return undefined;
  return m as unknown as Extract<FromWorker, { t: 'rates' }>;
}

export interface DoorParts {
  /** The values of these variables, where this keyway was given them and may hand them on (contain/door-client.ts asks). */
  secrets(names: readonly string[]): Record<string, string>;
  /** This keyway's rate buckets. */
  rates: RateLimiter;
  /** Writes a contained run's start line. */
  audit(event: AuditEvent): Promise<void>;
  /** A refusal of the run's keyway, into this keyway's refusal budget. */
  refusal(event: AuditEvent): void;
  /** Requests the run's keyway served, counted here too (the overview, `keyway status`). */
  tally(counts: readonly RequestTally[]): void;
  /** How long a connection may take to say what it wants. */
  firstByteMs(): number;
  /** The answer to a `client` question (cli/door-view.ts reads it). */
  client(question: ClientQuestion): Promise<ClientAnswer>;
}

export function containDoorServer(parts: DoorParts): Server {
  return createServer((socket) => enter(parts, socket));
}

function enter(parts: DoorParts, socket: Socket): void {
  socket.on('error', () => socket.destroy());
  socket.setTimeout(parts.firstByteMs(), () => socket.destroy());
  let pending = '';
  let header: DoorHeader | undefined;
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    pending += chunk;
    if (pending.length > MAX_DOOR_LINE && !pending.includes('\n')) return void socket.destroy();
    for (let at = pending.indexOf('\n'); at !== -1; at = pending.indexOf('\n')) {
      const line = pending.slice(0, at);
      pending = pending.slice(at + 1);
      if (header === undefined) {
        header = parseDoorHeader(line);
        if (header === undefined) return void socket.destroy();
        socket.setTimeout(0);
        if (header.kind === 'secrets') return void socket.end(encodeDoorLine(parts.secrets(header.names)));
        if (header.kind === 'client') {
          return void parts.client(header).then(
            (answer) => socket.end(encodeDoorLine(answer)),
            () => socket.destroy(),
          );
        }
        if (header.kind === 'start') {
          const { agent, sockets } = header;
          return void parts.audit(containStartEvent(agent ?? undefined, sockets)).then(
            () => socket.end('ok\n'),
            () => socket.destroy(),
          );
        }
        continue;
      }
      const refusal = parseRefusal(line);
      if (refusal !== undefined) {
        parts.refusal(refusal.event);
        continue;
      }
      const tally = parseTally(line);
      if (tally !== undefined) {
        parts.tally(tally);
        continue;
      }
      const question = parseRatesQuestion(line);
      if (question === undefined) return void socket.destroy();
      socket.write(encodeDoorLine(answerRates(parts.rates, question)));
    }
  });
}

/** The audit line of a contained run that may reach host Unix sockets (--allow-socket). */
export function containStartEvent(agent: string | undefined, sockets: readonly string[]): AuditEvent {
  return {
    ts: new Date().toISOString(),
    id: randomUUID(),
    agent: agent ?? null,
    grant: null,
    decision: 'admin',
    code: null,
    method: null,
    host: hostname(),
    port: 0,
    path: null,
    status: null,
    duration_ms: 0,
    refreshed: false,
    client: 'cli',
    via: 'contain',
    action: 'contain_start',
    message: `host Unix sockets reachable: ${sockets.join(', ')}`,
  };
}
