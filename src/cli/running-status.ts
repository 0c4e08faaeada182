// What `keyway status` and `keyway stop` know about the proxy running for a home: data/proxy.json
// (pid and addresses), confirmed and completed by the admin API's /api/status (live counts). The
// admin answer also proves the pid is keyway's and not a process that reused a dead proxy's pid.
import { isIP } from 'node:net';
import { readAdminToken } from '../admin/token.ts';
import type { ListenAddress } from '../config/index.ts';
import { KeywayError } from '../errors/index.ts';
import { http } from '../net/node-http.ts';
import { runningProxyFiles } from '../paths.ts';
import { reachable } from './proxy-url.ts';
import { clearStaleRunningProxy, runningProxyState, type RunningProxy } from '../running-proxy.ts';

/** The admin API's /api/status body (see src/admin/server.ts). */
export interface LiveStatus {
  pid: number;
  started_at: string;
  uptime_s: number;
  grants: number;
  agents: number;
  requests: number;
  refused: number;
  audit: 'ok' | 'failing';
}

export type ProxyLookup =
  | { state: 'none' }
  /** data/proxy.json named a process that is gone; the file has been removed. */
  | { state: 'stale'; pid: number }
  /** `live` is undefined when the admin API is off, unreachable, or its token unreadable (`why`). */
  | { state: 'running'; proxy: RunningProxy; live: LiveStatus | undefined; why: string | undefined };

const ADMIN_TIMEOUT_MS = 3_000;

export async function lookUpProxy(home: string, env: NodeJS.ProcessEnv = process.env): Promise<ProxyLookup> {
  const files = runningProxyFiles(home);
  const found = runningProxyState(files.runningProxy);
  if (found.state === 'none') return found;
  if (found.state === 'stale') {
    clearStaleRunningProxy(files.runningProxy, found.pid);
    return found;
  }
  const { proxy } = found;
  if (proxy.admin === null) return { state: 'running', proxy, live: undefined, why: 'the admin API is disabled (admin.enabled: false)' };
  // A listener's address is always an IP: a name here was not written by keyway, and the token is
  // not sent through a DNS lookup to wherever that name points.
  if (isIP(proxy.admin.host) === 0)
    return { state: 'running', proxy, live: undefined, why: `data/proxy.json names the admin API by a host name (${proxy.admin.host}), not an address` };
  let token: string;
  try {
    token = await readAdminToken(files.adminToken, env);
  } catch (err) {
    // A supplied token (KEYWAY_ADMIN_TOKEN…) that is refused says why; a file that cannot be read says which.
    const why = err instanceof KeywayError ? err.message : `cannot read ${files.adminToken} (${(err as NodeJS.ErrnoException).code ?? 'error'})`;
    return { state: 'running', proxy, live: undefined, why };
  }
  try {
    const live = await getStatus(proxy.admin, token);
    if (live.pid !== proxy.pid)
      return { state: 'running', proxy, live: undefined, why: `the admin API at ${reachable(proxy.admin)} is keyway pid ${live.pid}, not ${proxy.pid}` };
    return { state: 'running', proxy, live, why: undefined };
  } catch (err) {
    return { state: 'running', proxy, live: undefined, why: `the admin API at ${reachable(proxy.admin)} did not answer: ${(err as Error).message}` };
  }
}

async function getStatus(admin: ListenAddress, token: string): Promise<LiveStatus> {
  const { status, body } = await callAdmin(admin, token, 'GET', '/api/status');
  if (status !== 200) throw new Error(`status ${status}`);
  return body as LiveStatus;
}

/**
 * One call to a running proxy's admin API: its status and JSON body. Rejects when it does not
 * answer in `timeoutMs` or answers with something other than JSON.
 */
export function callAdmin(
  admin: ListenAddress,
  token: string,
  method: 'GET' | 'POST',
  path: string,
  timeoutMs = ADMIN_TIMEOUT_MS,
): Promise<{ status: number; body: unknown }> {
  const address = reachable(admin);
  return new Promise((resolve, reject) => {
    // agent: false and a plain node:http request: no proxy variable the user set (keyway env) applies.
    const req = http.request(`http://${address}${path}`, { method, agent: false, timeout: timeoutMs, headers: { authorization: `Bearer ${token}` } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown });
        } catch {
          reject(new Error(`status ${res.statusCode}, not JSON`));
        }
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer in ${timeoutMs / 1000}s`)));
    req.on('error', reject);
    req.end();
  });
}

/** "3h 2m", "5m 1s", "12s": enough to read at a glance. */
export function formatUptime(seconds: number): string {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m ${s}s`;
  return `${s}s`;
}
