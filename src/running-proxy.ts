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
 * One line for a listener that could not start: which port, why, and, when data/proxy.json names a
 * live keyway on that port, that process (the usual cause: keyway is already running).
 */
export function listenFailure(err: unknown, key: string, address: ListenAddress, file: string): KeywayError {
  const code = (err as NodeJS.ErrnoException).code;
  const where = `${formatListen(address)} (${key})`;
  const why = code === 'EADDRINUSE' ? 'the port is in use' : code === 'EACCES' ? 'permission denied' : code === 'EADDRNOTAVAIL' ? 'no such local address' : (err as Error).message;
  const running = findRunningProxy(file);
  const onThatPort = running && [running.proxy, running.admin].some((a) => a !== null && a.port === address.port);
  const holder = onThatPort
    ? ` by keyway pid ${running.pid} (proxy ${formatListen(running.proxy)}${running.admin ? `, admin ${formatListen(running.admin)}` : ''})`
    : '';
  return new KeywayError('listen_failed', `cannot listen on ${where}: ${why}${holder}`, { cause: err });
}
