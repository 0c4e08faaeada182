// Where a running `keyway start` really listens, for the commands that point clients at it.
//
// `keyway start --listen …` or a port of 0 in the config make the address differ from the config, so
// `keyway env`, `run`, `agents add` and `doctor` would print or check the wrong one. The proxy writes
// data/proxy.json once it listens and removes it when it stops; a file left by a process that is gone
// (a crash, SIGKILL) is ignored. Nothing secret is in it.
import { readFileSync, rmSync } from 'node:fs';
import { formatListen, type ListenAddress } from './config/index.ts';
import { KeywayError } from './errors/index.ts';
import { replaceFile } from './files/atomic-write.ts';
import { http } from './net/node-http.ts';

export interface RunningProxy {
  pid: number;
  proxy: ListenAddress;
  admin: ListenAddress | null;
  /** When the process began starting (ISO 8601): `keyway status` counts uptime from it. */
  started_at: string;
}

export async function announceRunningProxy(file: string, running: Omit<RunningProxy, 'pid'>): Promise<void> {
  const record: RunningProxy = { pid: process.pid, ...running };
  await replaceFile(file, `${JSON.stringify(record, null, 2)}\n`, 0o644);
}

/** Removes the file if it is still this process's (a newer proxy on the same home may have replaced it). */
export function withdrawRunningProxy(file: string): void {
  if (readRunningProxy(file)?.pid === process.pid) rmSync(file, { force: true });
}

/** The proxy that announced itself in `file`, if its process is still alive. */
export function findRunningProxy(file: string): RunningProxy | undefined {
  const running = readRunningProxy(file);
  return running && isAlive(running.pid) ? running : undefined;
}

/** What data/proxy.json says: a live proxy, one whose process is gone (a crash, SIGKILL), or none. */
export type RunningProxyState = { state: 'running'; proxy: RunningProxy } | { state: 'stale'; pid: number } | { state: 'none' };

export function runningProxyState(file: string): RunningProxyState {
  const running = readRunningProxy(file);
  if (!running) return { state: 'none' };
  return isAlive(running.pid) ? { state: 'running', proxy: running } : { state: 'stale', pid: running.pid };
}

/**
 * Removes a proxy.json whose process is gone. Read again just before removing, so a proxy that
 * started meanwhile (and replaced the file) keeps its announcement.
 */
export function clearStaleRunningProxy(file: string, pid: number): boolean {
  const now = readRunningProxy(file);
  if (now?.pid !== pid || isAlive(pid)) return false;
  rmSync(file, { force: true });
  return true;
}

function readRunningProxy(file: string): RunningProxy | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return undefined; // none, or unreadable: the config's address is the fallback
  }
  const r = parsed as Partial<RunningProxy>;
  const isAddress = (a: unknown): a is ListenAddress =>
    typeof a === 'object' && a !== null && typeof (a as ListenAddress).host === 'string' && Number.isInteger((a as ListenAddress).port);
  if (!Number.isInteger(r.pid) || !isAddress(r.proxy) || !(r.admin === null || isAddress(r.admin))) return undefined;
  return r as RunningProxy;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // alive, but another user's
  }
}

/**
 * One line for a listener that could not start: which port, why, and who holds it when that is a
 * keyway: the one data/proxy.json names (the usual cause: keyway is already running for this home),
 * or else one that answers on the port like keyway (started with another home).
 */
export async function listenFailure(err: unknown, key: string, address: ListenAddress, file: string): Promise<KeywayError> {
  const code = (err as NodeJS.ErrnoException).code;
  const where = `${formatListen(address)} (${key})`;
  const why =
    code === 'EADDRINUSE'
      ? 'the port is in use'
      : code === 'EACCES'
        ? 'permission denied'
        : code === 'EADDRNOTAVAIL'
          ? 'no such local address'
          : (err as Error).message;
  const running = findRunningProxy(file);
  const onThatPort = running && [running.proxy, running.admin].some((a) => a !== null && a.port === address.port);
  let holder = '';
  if (onThatPort) {
    holder = ` by keyway pid ${running.pid} (proxy ${formatListen(running.proxy)}${running.admin ? `, admin ${formatListen(running.admin)}` : ''})`;
  } else if (code === 'EADDRINUSE') {
    if (await answersLikeKeyway(address)) holder = ' by another keyway, started with another home (`keyway status --home DIR` finds it)';
    // Two keyways with different homes still both default to the admin port 8788: the flag that
    // moves this listener, not the other one, is what gets the second one started.
    holder += `; ${otherPortHint(key)}`;
  }
  return new KeywayError('listen_failed', `cannot listen on ${where}: ${why}${holder}`, { cause: err });
}

function otherPortHint(key: string): string {
  const flag = key === 'admin.listen' ? '--admin-listen' : '--listen';
  return `start with ${flag} HOST:PORT to use another port (127.0.0.1:0 takes a free one), or set ${key} in the config`;
}

const PROBE_TIMEOUT_MS = 1_000;

/**
 * Whether what holds the port is a keyway: its proxy answers a plain request with X-Keyway-Error,
 * its admin API an unauthenticated one with admin_auth_required. One request, a second at most.
 */
function answersLikeKeyway(address: ListenAddress): Promise<boolean> {
  const host = address.host === '0.0.0.0' ? '127.0.0.1' : address.host === '::' ? '::1' : address.host;
  return new Promise((resolve) => {
    const req = http.request({ host, port: address.port, path: '/api/keyway-probe', method: 'GET', agent: false, timeout: PROBE_TIMEOUT_MS }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.length < 16 && chunks.push(c));
      res.on('end', () => resolve(res.headers['x-keyway-error'] !== undefined || Buffer.concat(chunks).includes('"admin_auth_required"')));
      res.on('error', () => resolve(false));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}
