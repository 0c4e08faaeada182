// What `keyway status`, `stop` and `reload` know about the keyways running for a home: their
// records (data/running, data/proxy.json: pid and addresses), each confirmed and completed by its
// admin API's /api/status (live counts). The admin answer also proves the pid is keyway's and not a
// process that reused a dead proxy's pid.
import { isIP } from 'node:net';
import { readAdminToken } from '../admin/token.ts';
import type { ListenAddress } from '../config/index.ts';
import { KeywayError } from '../errors/index.ts';
import { http } from '../net/node-http.ts';
import { runningProxyFiles } from '../paths.ts';
import { reachable } from './proxy-url.ts';
import type { WorkerStatus } from '../admin/deps.ts';
import type { ExportView } from '../audit-export/status-view.ts';
import { type GoneProxy, listRunningProxies, type RunningProxy } from '../running-proxy.ts';

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
  /** Under proxy.workers: each worker process (admin/deps.ts WorkerStatus). */
  workers?: WorkerStatus[] | undefined;
  /** audit.export's targets (audit-export/status-view.ts), where this keyway exports. */
  audit_export?: ExportView[] | undefined;
}

/** One running keyway; `live` is undefined when its admin API is off, unreachable, or its token unreadable (`why`). */
export interface FoundProxy {
  proxy: RunningProxy;
  live: LiveStatus | undefined;
  why: string | undefined;
}

export interface ProxyLookup {
  /** Longest-running first. */
  running: FoundProxy[];
  /** Records left by processes that are gone: removed. */
  gone: GoneProxy[];
}

const ADMIN_TIMEOUT_MS = 3_000;

export async function lookUpProxies(home: string, env: NodeJS.ProcessEnv = process.env): Promise<ProxyLookup> {
  const files = runningProxyFiles(home);
  const { running, gone } = listRunningProxies(files.runningProxy);
  if (running.length === 0) return { running: [], gone };
  // One token for the home, read once (it may come from KEYWAY_ADMIN_TOKEN…).
  let token: string | undefined;
  let tokenWhy: string | undefined;
  if (running.some((p) => p.admin !== null)) {
    try {
      token = await readAdminToken(files.adminToken, env);
    } catch (err) {
      // A supplied token that is refused says why; a file that cannot be read says which.
      tokenWhy = err instanceof KeywayError ? err.message : `cannot read ${files.adminToken} (${(err as NodeJS.ErrnoException).code ?? 'error'})`;
    }
  }
  return { running: await Promise.all(running.map((proxy) => confirm(proxy, token, tokenWhy))), gone };
}

async function confirm(proxy: RunningProxy, token: string | undefined, tokenWhy: string | undefined): Promise<FoundProxy> {
  if (proxy.admin === null) return { proxy, live: undefined, why: 'the admin API is disabled (admin.enabled: false)' };
  // A listener's address is always an IP: a name here was not written by keyway, and the token is
  // not sent through a DNS lookup to wherever that name points.
  if (isIP(proxy.admin.host) === 0)
    return { proxy, live: undefined, why: `its record names the admin API by a host name (${proxy.admin.host}), not an address` };
  if (token === undefined) return { proxy, live: undefined, why: tokenWhy };
  try {
    const live = await getStatus(proxy.admin, token);
    if (live.pid !== proxy.pid)
      return { proxy, live: undefined, why: `the admin API at ${reachable(proxy.admin)} is keyway pid ${live.pid}, not ${proxy.pid}` };
    return { proxy, live, why: undefined };
  } catch (err) {
    return { proxy, live: undefined, why: `the admin API at ${reachable(proxy.admin)} did not answer: ${(err as Error).message}` };
  }
}

/** " (removed data/proxy.json left by pid 12, which is gone)", or nothing. */
export function goneNote(gone: readonly GoneProxy[]): string {
  if (gone.length === 0) return '';
  return ` (removed ${gone.map((g) => `${g.file} left by pid ${g.pid}`).join(', ')}, which ${gone.length === 1 ? 'is' : 'are'} gone)`;
}

/**
 * The keyways `stop` or `reload` acts on: the one running, the one `--pid` names, or every one
 * with `all`; several running and neither given is ambiguous: a one-line refusal naming them.
 */
export function pickTargets(running: readonly FoundProxy[], pid: string | undefined, all: boolean, verb: string): FoundProxy[] | string {
  if (pid !== undefined) {
    const chosen = running.find((f) => String(f.proxy.pid) === pid);
    return chosen ? [chosen] : `no keyway of this home has pid ${pid}; running: ${running.map((f) => proxyLabel(f.proxy)).join('; ')}`;
  }
  if (all || running.length === 1) return [...running];
  return `${running.length} keyways are running for this home: ${running.map((f) => proxyLabel(f.proxy)).join('; ')}; say which with --pid PID, or --all to ${verb} every one`;
}

/** How one running keyway is named in a list: pid, role and proxy address. */
export function proxyLabel(proxy: RunningProxy): string {
  return `pid ${proxy.pid} (${proxy.role === 'contain' ? 'keyway run --contain' : 'keyway start'}, proxy ${reachable(proxy.proxy)})`;
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
