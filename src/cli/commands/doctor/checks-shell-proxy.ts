// Whether this shell's proxy variables point at this keyway's proxy. doctor runs its clients with
// the variables of `keyway env`, so they pass whatever the shell holds; but a program started from
// this shell reads the shell's own HTTPS_PROXY, and one pointed at keyway's admin port, a port where
// nothing listens, or some other program does not go through keyway. That is a WARN naming the
// right URL, never a failure: a shell with no proxy variable is fine (`keyway run` sets them).
//
// Admitted as "points at this keyway": an http:// URL whose port is the proxy's and whose host is
// the proxy's host, or a loopback name (localhost, 127.0.0.0/8, ::1) when the proxy listens on
// loopback, or, when it listens on every address (0.0.0.0, ::), a name or address of this machine.
// Everything else is named, with what answers there; credentials in a value are not shown.
import { once } from 'node:events';
import { lookup } from 'node:dns/promises';
import { connect, isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { formatListen, type ListenAddress, parseListen } from '../../../config/index.ts';
import { keywayPaths } from '../../../paths.ts';
import { findRunningProxy } from '../../../running-proxy.ts';
import { adminAddress } from '../../proxy-url.ts';
import type { CheckResult, Context } from './context.ts';

/** The variables clients read for a proxy, in the order curl prefers them. */
const VARIABLES = ['https_proxy', 'HTTPS_PROXY', 'http_proxy', 'HTTP_PROXY', 'all_proxy', 'ALL_PROXY'] as const;
const CHECK = "this shell's proxy variables";
const PROBE_MS = 1000;

export async function checkShellProxy(ctx: Context): Promise<CheckResult> {
  const right = `http://${formatListen(ctx.proxy)}`;
  const set = VARIABLES.filter((name) => (ctx.io.env[name] ?? '').trim() !== '');
  if (set.length === 0) {
    return { check: CHECK, status: 'skip', detail: 'none is set: programs reach keyway through `keyway run`, or after eval "$(keyway env)"' };
  }
  const admin = adminListen(ctx);
  const everyAddress = listensOnEveryAddress(ctx);
  const problems: string[] = [];
  for (const name of set) {
    const problem = await problemWith(name, ctx.io.env[name]!.trim(), ctx.proxy, everyAddress, admin);
    if (problem !== undefined) problems.push(problem);
  }
  if (problems.length === 0) return { check: CHECK, status: 'ok', detail: `${set.join(', ')} point at keyway's proxy (${right})` };
  return {
    check: CHECK,
    status: 'warn',
    detail: `${problems.join('; ')}: programs started from this shell do not go through keyway`,
    fix: `point them at ${right} (eval "$(keyway env${ctx.agent ? ` --agent ${ctx.agent.id}` : ''})" sets each one), or unset them and use \`keyway run\``,
  };
}

/** What is wrong with one variable's value, or undefined when it points at the proxy. */
async function problemWith(
  name: string,
  value: string,
  proxy: ListenAddress,
  everyAddress: boolean,
  admin: ListenAddress | undefined,
): Promise<string | undefined> {
  let url: URL;
  try {
    // curl and Python take a bare HOST:PORT as http://.
    url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `http://${value}`);
  } catch {
    return `${name} is not a URL`;
  }
  const shown = `${name}=${url.protocol}//${url.host}${url.username || url.password ? ' (credentials not shown)' : ''}`;
  if (url.protocol !== 'http:') return `${shown}: keyway's proxy speaks plain http://`;
  if (url.port === '') return `${shown} names no port (keyway's proxy listens on ${proxy.port})`;
  const target = parseListen(`${url.hostname}:${url.port}`);
  if (!target) return `${name} is not a URL`;
  if (samePlace(target, proxy)) return undefined;
  if (everyAddress && target.port === proxy.port && (await isThisMachine(target.host))) return undefined;
  if (admin !== undefined && samePlace(target, admin)) return `${shown} is keyway's admin API, not its proxy`;
  return `${shown}: ${await whatAnswers(target)}`;
}

/** The admin listener doctor knows of (--admin, or where the running keyway says it is). */
function adminListen(ctx: Context): ListenAddress | undefined {
  const given = ctx.args.string('admin');
  if (given !== undefined) {
    try {
      const url = new URL(given);
      return parseListen(`${url.hostname}:${url.port || '80'}`) ?? undefined;
    } catch {
      return undefined; // checkAdmin names a bad --admin
    }
  }
  if (!ctx.config.admin.enabled) return undefined;
  const known = adminAddress(ctx.config);
  return known === undefined ? undefined : (parseListen(known) ?? undefined);
}

/** Whether the proxy doctor checks listens on 0.0.0.0 or :: (as it says it was started; --proxy names one address). */
function listensOnEveryAddress(ctx: Context): boolean {
  if (ctx.args.string('proxy') !== undefined) return false;
  const listen = findRunningProxy(keywayPaths(ctx.config).runningProxy)?.proxy ?? ctx.config.proxy.listen;
  return listen.port === ctx.proxy.port && (listen.host === '0.0.0.0' || listen.host === '::');
}

/** A name or address that is one of this machine's own (its interfaces', loopback included). */
async function isThisMachine(host: string): Promise<boolean> {
  const bare = host.replace(/^\[|\]$/g, '');
  const own = new Set(
    Object.values(networkInterfaces())
      .flat()
      .map((i) => i?.address),
  );
  let addresses: string[];
  try {
    addresses = isIP(bare) !== 0 ? [bare] : (await withTimeout(lookup(bare, { all: true }), PROBE_MS)).map((a) => a.address);
  } catch {
    return false; // a name that does not resolve is no address of this machine
  }
  return addresses.length > 0 && addresses.every((a) => own.has(a) || isLoopback(a));
}

function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('timed out')), ms);
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

function samePlace(a: ListenAddress, b: ListenAddress): boolean {
  if (a.port !== b.port) return false;
  const host = (h: string) => h.toLowerCase().replace(/^\[|\]$/g, '');
  return host(a.host) === host(b.host) || (isLoopback(host(a.host)) && isLoopback(host(b.host)));
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

async function whatAnswers(target: ListenAddress): Promise<string> {
  const socket = connect(target.port, target.host);
  const timer = setTimeout(() => socket.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })), PROBE_MS);
  try {
    await once(socket, 'connect');
    return "something answers there, but not this keyway's proxy";
  } catch (err) {
    return `nothing answers there (${(err as NodeJS.ErrnoException).code ?? 'error'})`;
  } finally {
    clearTimeout(timer);
    socket.destroy();
  }
}
