import { randomUUID } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { hostname } from 'node:os';
import type { AuditEvent } from '../../audit/index.ts';
import type { ProxyWiring } from '../connect.ts';
import { readPrefix } from './prefix.ts';
import { type RedirectedPort, serveRedirectedConnection } from './listener.ts';

// The contain door: a Unix socket beside a running keyway's record (data/running/PID.sock, mode
// 0600 in keyway's data folder) through which `keyway run --contain` hands that keyway the
// connections of its contained command, instead of starting a keyway of its own. Why: the running
// keyway already holds the grants' secrets (the agent's shell need not), and a contained agent is
// then one agent with one rate bucket, quota and refusal budget, however many runs it makes.
//
// Each connection starts with one line of JSON, the header, then carries the contained command's
// bytes untouched. `connection`: serve it as a redirected connection of `agent` on `port` (as
// keyway run --contain's own listeners would). `start`: write the audit line of a run that may
// reach host Unix sockets, answer `ok`, close. Only keyway's own user can connect (the file's
// mode and its folder's): whoever can, can read the master key anyway.

export type DoorHeader =
  | { v: 1; kind: 'connection'; agent: string | null; port: number | null; served: number[] }
  | { v: 1; kind: 'start'; agent: string | null; sockets: string[] };

/** A header longer than this is refused: it is a few names and numbers. */
export const MAX_DOOR_HEADER = 4096;

export function encodeDoorHeader(header: DoorHeader): Buffer {
  return Buffer.from(`${JSON.stringify(header)}\n`);
}

/** The header, checked field by field, or undefined. */
export function parseDoorHeader(line: string): DoorHeader | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const h = value as Record<string, unknown>;
  const agentOk = h['agent'] === null || (typeof h['agent'] === 'string' && h['agent'].length > 0 && h['agent'].length <= 200);
  const isPort = (p: unknown) => Number.isInteger(p) && (p as number) >= 1 && (p as number) <= 65_535;
  if (h['v'] !== 1 || !agentOk) return undefined;
  if (h['kind'] === 'connection' && (h['port'] === null || isPort(h['port'])) && Array.isArray(h['served']) && h['served'].every(isPort)) {
    return { v: 1, kind: 'connection', agent: h['agent'] as string | null, port: h['port'] as number | null, served: h['served'] as number[] };
  }
  if (h['kind'] === 'start' && Array.isArray(h['sockets']) && h['sockets'].every((s) => typeof s === 'string')) {
    return { v: 1, kind: 'start', agent: h['agent'] as string | null, sockets: h['sockets'] as string[] };
  }
  return undefined;
}

/** The door's listener (not yet listening). `onStart` writes a run's start line. */
export function containDoorServer(wiring: ProxyWiring, onStart: (agent: string | undefined, sockets: readonly string[]) => Promise<void>): Server {
  const server = createServer({ pauseOnConnect: true }, (socket) => void enter(wiring, socket, onStart));
  wiring.connections.attachRaw(server);
  return server;
}

async function enter(wiring: ProxyWiring, socket: Socket, onStart: (agent: string | undefined, sockets: readonly string[]) => Promise<void>): Promise<void> {
  socket.on('error', () => socket.destroy());
  socket.resume();
  const newline = (b: Buffer) => {
    const at = b.indexOf(0x0a);
    return at === -1 ? undefined : at;
  };
  const { bytes, found } = await readPrefix(socket, MAX_DOOR_HEADER, wiring.runtime.config.proxy.timeouts.first_byte, newline);
  const header = found === undefined ? undefined : parseDoorHeader(bytes.subarray(0, found).toString('utf8'));
  if (socket.destroyed || found === undefined || header === undefined) return void socket.destroy();
  if (header.kind === 'start') {
    await onStart(header.agent ?? undefined, header.sockets).then(
      () => socket.end('ok\n'),
      () => socket.destroy(),
    );
    return;
  }
  const rest = bytes.subarray(found + 1);
  if (rest.length > 0) socket.unshift(rest);
  const ports: RedirectedPort = { port: header.port ?? undefined, served: header.served };
  return serveRedirectedConnection(wiring, { agent: header.agent ?? undefined, via: 'contain' }, socket, ports);
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
