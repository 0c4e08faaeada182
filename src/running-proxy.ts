// Where a running `keyway start` really listens, for the commands that point clients at it.
//
// `keyway start --listen …` or a port of 0 in the config make the address differ from the config, so
// `keyway env`, `run`, `agents add` and `doctor` would print or check the wrong one. Every keyway of
// a home writes data/running/PID.json once it listens and removes its own when it stops, so several
// on one home (a second `keyway start` on other ports, a `keyway run --contain`) are each known to
// `status`, `stop` and `reload`; one left by a process that is gone (a crash, SIGKILL) is pruned.
// data/proxy.json names the one clients are pointed at: the first `keyway start` of the home writes
// it (a later one leaves a live one's alone), and only that process removes it. Nothing secret is in them.
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
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
  /** `start`: a proxy clients may be pointed at; `contain`: the one serving a `keyway run --contain` command (stops with it). Absent: start. */
  role?: 'start' | 'contain';
  /** The contain door's Unix socket (data/running/PID.sock): keyway run --contain hands this keyway its command's connections. */
  door?: string;
}

/** The folder of every running keyway's record, beside `file` (data/proxy.json). */
function registryOf(file: string): string {
  return join(dirname(file), 'running');
}

export async function announceRunningProxy(file: string, running: Omit<RunningProxy, 'pid'>): Promise<void> {
  const record: RunningProxy = { pid: process.pid, ...running };
  const text = `${JSON.stringify(record, null, 2)}\n`;
  mkdirSync(registryOf(file), { recursive: true });
  await replaceFile(join(registryOf(file), `${process.pid}.json`), text, 0o644);
  if (record.role === 'contain') return;
  // A live keyway that clients already follow keeps data/proxy.json: this one is listed beside it.
  const current = readRunningProxy(file);
  if (current === undefined || current.pid === process.pid || !isAlive(current.pid)) await replaceFile(file, text, 0o644);
}

/** Removes this process's record, and data/proxy.json if it is still this process's. */
export function withdrawRunningProxy(file: string): void {
  rmSync(join(registryOf(file), `${process.pid}.json`), { force: true });
  if (readRunningProxy(file)?.pid === process.pid) rmSync(file, { force: true });
}

/**
 * The proxy clients are pointed at: the one data/proxy.json names if its process is alive, else the
 * longest-running `keyway start` of the home (the first one stopped, a later one still serves).
 */
export function findRunningProxy(file: string): RunningProxy | undefined {
  const running = readRunningProxy(file);
  if (running && isAlive(running.pid)) return running;
  return listRunningProxies(file).running.find((r) => r.role !== 'contain');
}

/** A record whose process is gone, removed: its pid, and which file said it (data/proxy.json or data/running/PID.json). */
export interface GoneProxy {
  pid: number;
  file: string;
}

/**
 * Every keyway running for the home, longest-running first: the records in data/running and
 * data/proxy.json. Records whose process is gone are removed, and returned as `gone`.
 */
export function listRunningProxies(file: string): { running: RunningProxy[]; gone: GoneProxy[] } {
  const byPid = new Map<number, RunningProxy>();
  const gone: GoneProxy[] = [];
  const announced = runningProxyState(file);
  if (announced.state === 'running') byPid.set(announced.proxy.pid, announced.proxy);
  else if (announced.state === 'stale' && clearStaleRunningProxy(file, announced.pid)) gone.push({ pid: announced.pid, file: 'data/proxy.json' });
  let names: string[] = [];
  try {
    names = readdirSync(registryOf(file)).filter((name) => /^[0-9]+\.json$/.test(name));
  } catch {
    // no folder yet: no keyway of this version has run here
  }
  for (const name of names) {
    const path = join(registryOf(file), name);
    const record = readRunningProxy(path);
    if (record && isAlive(record.pid)) {
      if (!byPid.has(record.pid)) byPid.set(record.pid, record);
      continue;
    }
    rmSync(path, { force: true });
    const pid = record?.pid ?? Number(name.slice(0, -'.json'.length));
    if (!gone.some((g) => g.pid === pid)) gone.push({ pid, file: `data/running/${name}` });
  }
  const running = [...byPid.values()].sort((a, b) => String(a.started_at).localeCompare(String(b.started_at)) || a.pid - b.pid);
  return { running, gone };
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
  if (r.role !== undefined && r.role !== 'start' && r.role !== 'contain') return undefined;
  if (r.door !== undefined && typeof r.door !== 'string') return undefined;
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
