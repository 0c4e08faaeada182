// `keyway doctor`: checks, one line each with what to fix, that keyway can work for the clients on
// this machine: its CA files, the running proxy and admin API, keyway's own answer through the proxy,
// and then curl, Node, Python (requests) and git, whichever are installed, each run in a clean
// environment holding exactly the variables of `keyway env`.
//
// The test request. A client trusting keyway's CA can only be shown on a host keyway intercepts.
// doctor must not write a grant (it changes nothing) and cannot use a server of its own on loopback
// (the egress guard refuses loopback destinations), so the proxy answers one name itself:
// `CONNECT keyway.internal:443` is always intercepted (after the usual agent check, whatever the
// grants, proxy.unmatched or egress rules, and never resolved or dialled), with a leaf from keyway's
// CA, and inside it `GET /healthz` answers 200 {"ok":true,"service":"keyway",...}; any other path
// answers 404. `.internal` is reserved for private use, so the name never reaches a real host, and a
// client that bypasses the proxy fails to resolve it instead of passing by accident.
//
// `--url https://HOST/PATH` tests against a host a grant covers instead (this sends one request per
// client to it, with the grant's credential). doctor then first checks that keyway intercepts HOST
// with its CA, and after each client that keyway's audit log shows the request, so a client that
// went around the proxy cannot pass.

import { spawn } from 'node:child_process';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { constants as fsConstants } from 'node:fs';
import { access, readFile, stat } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { delimiter, join } from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { tailAudit } from '../../audit/index.ts';
import { formatListen, parseDuration, parseListen, type Config, type ListenAddress } from '../../config/index.ts';
import { keywayPaths } from '../../paths.ts';
import { parse, type Args } from '../args.ts';
import { agentKeyFor } from '../client-env.ts';
import type { Command } from '../command.ts';
import { configFor } from '../context.ts';
import { printJson, usageError, type CommandIO } from '../io.ts';
import { proxyAddress } from '../proxy-url.ts';
import { variablesFor } from './env.ts';
import { SELF_CHECK_HOST, SELF_CHECK_PATH } from '../../proxy/self-check.ts';

export type CheckStatus = 'ok' | 'fail' | 'skip';

export interface CheckResult {
  check: string;
  status: CheckStatus;
  detail: string;
  /** What to do about a failure. */
  fix?: string;
}

interface Target {
  url: URL;
  host: string;
  port: number;
  /** true: keyway.internal, answered by keyway itself; false: a host a grant covers (--url). */
  selfCheck: boolean;
}

interface Context {
  config: Config;
  io: CommandIO;
  args: Args;
  timeoutMs: number;
  agent: { id: string; key: string } | undefined;
  proxy: ListenAddress;
  target: Target;
  results: CheckResult[];
}

const MAX_OUTPUT = 64 * 1024;

export const doctor: Command = {
  name: 'doctor',
  summary: 'check the CA, the running proxy, and that curl, node, python and git go through it and trust it',
  usage: `keyway doctor [--agent ID] [--proxy HOST:PORT] [--admin URL] [--url URL] [--timeout D] [--json]

Prints one line per check, ok or FAIL with what to fix (skip when a client is not installed or an
earlier check failed), and exits 0 only if nothing failed:
  - certs/ca.pem parses and is a current CA; certs/ca-key.pem is its key, mode 0600; certs/bundle.pem
    holds the CA
  - the proxy answers on proxy.listen (or --proxy); the admin /healthz answers (or --admin), when
    admin.enabled
  - keyway answers through the proxy with a certificate from its CA: a CONNECT to ${SELF_CHECK_HOST}:443,
    which keyway answers itself (GET ${SELF_CHECK_PATH}), so nothing leaves the machine
  - curl, node (this one), python3 with requests, and git, each run in a clean environment (PATH, HOME
    and exactly the variables of \`keyway env\`; git without your ~/.gitconfig) reach that test request
    and trust keyway's CA

--agent ID     go through the proxy as this agent (key from KEYWAY_AGENT_KEY or the config)
--proxy H:P    the proxy to check, when it was started with --listen
--admin URL    the admin API, when it was started with --admin-listen (e.g. http://127.0.0.1:8788)
--url URL      test against https://HOST/PATH, a host a grant covers, instead of ${SELF_CHECK_HOST}: one
               request per client is sent there, with the grant's credential; each must show up in
               keyway's audit log
--timeout D    per client (default 15s)`,
  async run(argv, io) {
    const args = parse(argv, {
      agent: { type: 'string' },
      proxy: { type: 'string' },
      admin: { type: 'string' },
      url: { type: 'string' },
      timeout: { type: 'string' },
    });
    const config = configFor(args, io);
    const timeoutMs = parseDuration(args.string('timeout') ?? '15s');
    if (timeoutMs === undefined || timeoutMs <= 0) throw usageError('--timeout: expected a duration such as 15s');
    const agentId = args.string('agent');
    const ctx: Context = {
      config,
      io,
      args,
      timeoutMs,
      agent: agentId === undefined ? undefined : { id: agentId, key: agentKeyFor(config, agentId, io.env) },
      proxy: proxyFromArgs(args.string('proxy'), config),
      target: targetFromArgs(args.string('url')),
      results: [],
    };
    const results = await runChecks(ctx);
    const ok = results.every((r) => r.status !== 'fail');
    if (args.json) printJson(io, { ok, checks: results });
    else for (const r of results) io.out(formatResult(r));
    if (!ok && !args.json) io.err(`keyway doctor: ${results.filter((r) => r.status === 'fail').length} check(s) failed`);
    return ok ? 0 : 1;
  },
};

function formatResult(r: CheckResult): string {
  const mark = r.status === 'ok' ? 'ok  ' : r.status === 'fail' ? 'FAIL' : 'skip';
  return `${mark}  ${r.check}: ${r.detail}${r.fix === undefined ? '' : ` -> ${r.fix}`}`;
}

function proxyFromArgs(text: string | undefined, config: Config): ListenAddress {
  const raw = text ?? proxyAddress(config);
  // Accept HOST:PORT or a proxy URL (its credentials, if any, are ignored: --agent gives them).
  let authority = raw;
  if (/^[a-z]+:\/\//i.test(raw)) {
    try {
      const url = new URL(raw);
      authority = `${url.hostname}:${url.port || '80'}`;
    } catch {
      throw usageError(`--proxy: expected HOST:PORT or http://HOST:PORT, got "${raw}"`);
    }
  }
  const parsed = parseListen(authority);
  if (!parsed || parsed.port === 0) throw usageError(`the proxy address "${raw}" has no usable port: pass --proxy HOST:PORT`);
  return parsed;
}

function targetFromArgs(text: string | undefined): Target {
  if (text === undefined) {
    const url = new URL(`https://${SELF_CHECK_HOST}${SELF_CHECK_PATH}`);
    return { url, host: SELF_CHECK_HOST, port: 443, selfCheck: true };
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw usageError(`--url: expected https://HOST/PATH, got "${text}"`);
  }
  if (url.protocol !== 'https:') throw usageError('--url: expected an https:// URL (doctor checks that clients trust keyway\'s CA)');
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return { url, host, port: url.port === '' ? 443 : Number(url.port), selfCheck: false };
}

async function runChecks(ctx: Context): Promise<CheckResult[]> {
  const paths = keywayPaths(ctx.config);
  const caPath = join(paths.certsDir, 'ca.pem');
  const keyPath = join(paths.certsDir, 'ca-key.pem');
  const bundlePath = join(paths.certsDir, 'bundle.pem');
  const add = (r: CheckResult) => {
    ctx.results.push(r);
    return r;
  };

  const ca = await checkCaCert(caPath, keyPath);
  add(ca.result);
  add(await checkCaKey(keyPath, ca.cert));
  add(await checkBundle(bundlePath, ca.cert));
  const proxyOk = add(await checkProxy(ctx)).status === 'ok';
  add(await checkAdmin(ctx));

  const throughName = ctx.target.selfCheck ? `keyway answers through the proxy (${SELF_CHECK_HOST})` : `keyway intercepts ${ctx.target.host}`;
  let blocked: string | undefined;
  if (ca.cert === undefined) blocked = 'needs a working certs/ca.pem';
  else if (!proxyOk) blocked = 'needs the proxy to answer';
  if (blocked !== undefined || ca.pem === undefined) {
    add({ check: throughName, status: 'skip', detail: blocked ?? 'needs certs/ca.pem' });
  } else {
    blocked = add(await checkThroughProxy(ctx, ca.pem, throughName)).status === 'ok' ? undefined : 'keyway\'s own check through the proxy failed';
  }

  let env: Record<string, string> | undefined;
  if (blocked === undefined) {
    try {
      const vars = await variablesFor(ctx.args, quietIO(ctx.io), formatListen(ctx.proxy));
      env = { PATH: ctx.io.env['PATH'] ?? '/usr/bin:/bin', HOME: ctx.io.env['HOME'] ?? '/tmp', ...vars.proxy, ...vars.placeholders };
    } catch (err) {
      blocked = `the variables of keyway env cannot be made: ${(err as Error).message}`;
    }
  }
  const seenAuditIds = new Set<string>();
  for (const client of CLIENTS) {
    if (blocked !== undefined || env === undefined) {
      add({ check: client.name, status: 'skip', detail: `not run: ${blocked ?? 'no environment'}` });
      continue;
    }
    add(await checkClient(ctx, client, env, seenAuditIds));
  }
  return ctx.results;
}

/** variablesFor reports store problems on stderr; doctor's own lines say what matters. */
function quietIO(io: CommandIO): CommandIO {
  return { ...io, err: () => undefined };
}

// ---- CA files -------------------------------------------------------------------------------------

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

async function checkCaCert(caPath: string, keyPath: string): Promise<{ result: CheckResult; cert?: X509Certificate; pem?: string }> {
  const check = 'CA certificate';
  let pem: string | undefined;
  try {
    pem = await readIfExists(caPath);
  } catch (err) {
    return { result: { check, status: 'fail', detail: `${caPath} cannot be read (${errCode(err)})`, fix: 'give the user running keyway read access to certs/' } };
  }
  if (pem === undefined) {
    const keyExists = (await readIfExists(keyPath).catch(() => 'unreadable')) !== undefined;
    return {
      result: {
        check,
        status: 'fail',
        detail: `${caPath} is missing`,
        fix: keyExists
          ? 'restore certs/ca.pem from a backup; or delete certs/ca-key.pem too and run `keyway init` for a new CA (every client must then trust the new one)'
          : 'run `keyway init` (or start keyway once) to make the CA',
      },
    };
  }
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch {
    return { result: { check, status: 'fail', detail: `${caPath} is not a PEM certificate`, fix: 'restore certs/ca.pem from a backup' } };
  }
  if (!cert.ca) return { result: { check, status: 'fail', detail: `${caPath} is not a CA certificate`, fix: 'restore certs/ca.pem from a backup' } };
  const until = new Date(cert.validTo);
  if (until.getTime() <= Date.now()) {
    return { result: { check, status: 'fail', detail: `${caPath} expired on ${until.toISOString().slice(0, 10)}`, fix: 'make a new CA: move certs/ aside, run `keyway init`, and trust the new CA in your clients' }, cert, pem };
  }
  return { result: { check, status: 'ok', detail: `${caPath}, valid until ${until.toISOString().slice(0, 10)}, SHA-256 ${cert.fingerprint256}` }, cert, pem };
}

async function checkCaKey(keyPath: string, cert: X509Certificate | undefined): Promise<CheckResult> {
  const check = 'CA private key';
  let pem: string | undefined;
  try {
    pem = await readIfExists(keyPath);
  } catch (err) {
    return { check, status: 'fail', detail: `${keyPath} cannot be read (${errCode(err)})`, fix: 'run doctor as the user that runs keyway' };
  }
  if (pem === undefined) {
    const fix = cert === undefined ? 'run `keyway init` (or start keyway once) to make the CA' : 'restore it from a backup, or make a new CA (move certs/ aside and run `keyway init`)';
    return { check, status: 'fail', detail: `${keyPath} is missing`, fix };
  }
  const mode = (await stat(keyPath)).mode & 0o777;
  if (process.platform !== 'win32' && (mode & 0o077) !== 0) {
    return { check, status: 'fail', detail: `${keyPath} has mode ${mode.toString(8).padStart(4, '0')}: others may read the key that signs every certificate keyway makes`, fix: `chmod 600 ${keyPath}` };
  }
  try {
    const key = createPrivateKey(pem);
    if (cert !== undefined && !cert.checkPrivateKey(key)) {
      return { check, status: 'fail', detail: `${keyPath} is not the key of certs/ca.pem`, fix: 'restore the matching pair of certs/ca.pem and certs/ca-key.pem' };
    }
  } catch {
    return { check, status: 'fail', detail: `${keyPath} is not a PEM private key`, fix: 'restore it from a backup' };
  }
  return { check, status: 'ok', detail: `${keyPath}, mode 0${mode.toString(8)}${cert === undefined ? '' : ', matches the certificate'}` };
}

function pemBodies(text: string): Set<string> {
  const bodies = new Set<string>();
  for (const m of text.matchAll(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g)) bodies.add((m[1] ?? '').replace(/\s+/g, ''));
  return bodies;
}

async function checkBundle(bundlePath: string, cert: X509Certificate | undefined): Promise<CheckResult> {
  const check = 'CA bundle';
  let text: string | undefined;
  try {
    text = await readIfExists(bundlePath);
  } catch (err) {
    return { check, status: 'fail', detail: `${bundlePath} cannot be read (${errCode(err)})`, fix: 'give your clients read access to certs/bundle.pem' };
  }
  if (text === undefined) return { check, status: 'fail', detail: `${bundlePath} is missing`, fix: 'start keyway (or run `keyway init`): it writes the bundle' };
  const bodies = pemBodies(text);
  if (cert === undefined) return { check, status: 'skip', detail: `${bundlePath} holds ${bodies.size} certificates; not compared: no CA certificate` };
  if (!bodies.has(cert.raw.toString('base64'))) {
    return { check, status: 'fail', detail: `${bundlePath} does not hold keyway's CA: clients using it will refuse every intercepted host`, fix: 'delete certs/bundle.pem and start keyway (or run `keyway init`) to write it again' };
  }
  return { check, status: 'ok', detail: `${bundlePath}, ${bodies.size} certificates including keyway's CA` };
}

// ---- proxy and admin --------------------------------------------------------------------------------

async function checkProxy(ctx: Context): Promise<CheckResult> {
  const where = formatListen(ctx.proxy);
  const check = 'proxy';
  try {
    const socket = netConnect(ctx.proxy.port, ctx.proxy.host);
    const timer = setTimeout(() => socket.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })), 3000);
    try {
      await once(socket, 'connect');
    } finally {
      clearTimeout(timer);
      socket.destroy();
    }
  } catch (err) {
    return { check, status: 'fail', detail: `nothing answers at ${where} (${errCode(err)})`, fix: `start keyway (\`keyway start\`), or pass --proxy HOST:PORT if it listens elsewhere` };
  }
  return { check, status: 'ok', detail: `answers at ${where}` };
}

async function checkAdmin(ctx: Context): Promise<CheckResult> {
  const check = 'admin API';
  const given = ctx.args.string('admin');
  if (given === undefined && !ctx.config.admin.enabled) return { check, status: 'skip', detail: 'admin.enabled is false' };
  let base: URL;
  try {
    base = new URL(given ?? `http://${adminAddress(ctx.config)}`);
  } catch {
    throw usageError(`--admin: expected http://HOST:PORT, got "${given}"`);
  }
  if (given === undefined && ctx.config.admin.listen.port === 0) {
    return { check, status: 'skip', detail: 'admin.listen has port 0 (chosen at start): pass --admin http://HOST:PORT to check it' };
  }
  const url = new URL('/healthz', base);
  try {
    const { status, body } = await getJson(url, 3000);
    const audit = typeof body === 'object' && body !== null ? (body as Record<string, unknown>)['audit'] : undefined;
    if (status === 200) return { check, status: 'ok', detail: `${url.href} answers 200` };
    if (status === 503 && audit === 'unavailable') {
      return { check, status: 'fail', detail: `${url.href} answers 503: the audit log cannot be written, so keyway forwards nothing`, fix: 'check that logs/ is writable and the disk is not full' };
    }
    return { check, status: 'fail', detail: `${url.href} answers ${status}`, fix: 'is another program listening on the admin port?' };
  } catch (err) {
    return { check, status: 'fail', detail: `nothing answers at ${url.href} (${errCode(err)})`, fix: 'start keyway, or pass --admin http://HOST:PORT if it listens elsewhere' };
  }
}

function adminAddress(config: Config): string {
  const { host, port } = config.admin.listen;
  const reachable = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return formatListen({ host: reachable, port });
}

function getJson(url: URL, timeoutMs: number): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'GET', agent: false, timeout: timeoutMs }, (res) => {
      readBody(res, MAX_OUTPUT).then((text) => {
        let body: unknown;
        try {
          body = JSON.parse(text);
        } catch {
          body = undefined;
        }
        resolve({ status: res.statusCode ?? 0, body });
      }, reject);
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
    req.on('error', reject);
    req.end();
  });
}

async function readBody(res: IncomingMessage, max: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res) {
    const buf = chunk as Buffer;
    if (size < max) chunks.push(buf.subarray(0, max - size));
    size += buf.length;
  }
  return Buffer.concat(chunks).toString('utf8');
}

// ---- keyway's own check through the proxy -----------------------------------------------------------

/**
 * CONNECT to the target through the proxy, TLS trusting keyway's CA alone, then GET the path. This
 * shows that the proxy intercepts the target with a certificate from certs/ca.pem (a blind tunnel
 * to the real host, or a proxy running with another CA, fails the handshake).
 */
async function checkThroughProxy(ctx: Context, caPem: string, check: string): Promise<CheckResult> {
  const { target } = ctx;
  const authority = `${isIP(target.host) === 6 ? `[${target.host}]` : target.host}:${target.port}`;
  const sockets: Array<Socket | TLSSocket> = [];
  const timer = setTimeout(() => {
    for (const s of sockets) s.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' }));
  }, Math.min(ctx.timeoutMs, 10_000));
  try {
    // 1. CONNECT.
    const headers: Record<string, string> = { host: authority };
    if (ctx.agent) headers['proxy-authorization'] = `Basic ${Buffer.from(`${ctx.agent.id}:${ctx.agent.key}`).toString('base64')}`;
    const connectReq = httpRequest({ host: ctx.proxy.host, port: ctx.proxy.port, method: 'CONNECT', path: authority, headers, agent: false });
    connectReq.on('socket', (s) => sockets.push(s));
    connectReq.end();
    const [res, socket] = (await once(connectReq, 'connect')) as [IncomingMessage, Socket, Buffer];
    sockets.push(socket);
    if (res.statusCode !== 200) {
      const code = res.headers['x-keyway-error'];
      socket.destroy();
      if (res.statusCode === 407) {
        return { check, status: 'fail', detail: `the proxy asked for agent credentials (407)`, fix: 'run doctor with --agent ID (its key in KEYWAY_AGENT_KEY, or in the config)' };
      }
      return {
        check,
        status: 'fail',
        detail: `CONNECT ${authority} got ${res.statusCode}${typeof code === 'string' ? ` ${code}` : ''}`,
        fix: target.selfCheck
          ? `this keyway does not answer ${SELF_CHECK_HOST} itself (an older version?); pass --url https://HOST/ for a host one of your grants covers`
          : `check that a grant the agent may use covers ${target.host}`,
      };
    }
    // 2. TLS, trusting keyway's CA and nothing else.
    const tlsSocket = tlsConnect({ socket, ca: [caPem], ...(isIP(target.host) === 0 ? { servername: target.host } : {}), ALPNProtocols: ['http/1.1'] });
    sockets.push(tlsSocket);
    try {
      await once(tlsSocket, 'secureConnect');
    } catch (err) {
      return {
        check,
        status: 'fail',
        detail: `the certificate presented for ${target.host} is not one keyway's CA (certs/ca.pem) signed (${errCode(err)})`,
        fix: target.selfCheck
          ? 'the proxy at this address runs with another CA: is it another keyway home (--home), or another proxy?'
          : `keyway tunnels ${target.host} instead of intercepting it: add a grant covering it, or use the agent (--agent) that may use it`,
      };
    }
    // 3. The test request.
    const response = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = httpRequest(
        { host: target.host, port: target.port, path: `${target.url.pathname}${target.url.search}`, method: 'GET', createConnection: () => tlsSocket, headers: { host: target.url.host, connection: 'close' } },
        (r) => void readBody(r, MAX_OUTPUT).then((text) => resolve({ status: r.statusCode ?? 0, text }), reject),
      );
      req.on('error', reject);
      req.end();
    });
    if (!target.selfCheck) return { check, status: 'ok', detail: `with a certificate from keyway's CA; GET ${target.url.pathname} answered ${response.status}` };
    let body: Record<string, unknown> | undefined;
    try {
      body = JSON.parse(response.text) as Record<string, unknown>;
    } catch {
      body = undefined;
    }
    if (response.status !== 200 || body?.['ok'] !== true || body['service'] !== 'keyway') {
      return { check, status: 'fail', detail: `GET https://${SELF_CHECK_HOST}${SELF_CHECK_PATH} answered ${response.status}, not keyway's self-check`, fix: `this keyway does not answer ${SELF_CHECK_HOST} itself; pass --url https://HOST/ for a host one of your grants covers` };
    }
    const agent = typeof body['agent'] === 'string' ? `, as agent ${body['agent']}` : '';
    return { check, status: 'ok', detail: `with a certificate from keyway's CA${agent}` };
  } catch (err) {
    return { check, status: 'fail', detail: `the check through ${formatListen(ctx.proxy)} failed (${errCode(err)})`, fix: 'is the program at the proxy address keyway?' };
  } finally {
    clearTimeout(timer);
    for (const s of sockets) s.destroy();
  }
}

// ---- clients ----------------------------------------------------------------------------------------

interface ClientSpec {
  name: string;
  /** The variable(s) through which it trusts keyway's CA, for the fix hint. */
  trustVars: string;
  /** The executable, or undefined (with why) when it is not installed. */
  find(ctx: Context, env: Record<string, string>): Promise<{ path: string } | { missing: string }>;
  args(url: string, timeoutMs: number): string[];
  /** Extra environment, beyond the keyway env variables. */
  extraEnv?: Record<string, string>;
  /** The HTTP status the client reached, or null with its error. */
  outcome(result: ProcessResult): { status: number } | { error: string };
}

interface ProcessResult {
  code: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

const NODE_SCRIPT = `
fetch(process.argv[1], { signal: AbortSignal.timeout(Number(process.argv[2])) })
  .then((r) => { console.log(r.status); return r.arrayBuffer(); })
  .catch((e) => { console.error(String(e?.cause?.code ?? e?.cause?.message ?? e?.message ?? e)); process.exit(1); });
`;

const PYTHON_SCRIPT = `
import sys
try:
    import requests
    r = requests.get(sys.argv[1], timeout=float(sys.argv[2]))
    print(r.status_code)
except Exception as e:
    print(type(e).__name__ + ': ' + str(e)[:500], file=sys.stderr)
    sys.exit(1)
`;

const statusFromStdout = (r: ProcessResult): { status: number } | { error: string } => {
  const status = /^(\d{3})\s*$/.exec(r.stdout.trim());
  if (r.code === 0 && status) return { status: Number(status[1]) };
  return { error: errorLine(r) };
};

/** The line of a client's stderr that says what went wrong (curl explains at length after it). */
function errorLine(r: ProcessResult): string {
  const lines = r.stderr.split('\n').map((l) => l.trim()).filter(Boolean);
  const marked = lines.find((l) => /^(curl: \(\d+\)|fatal:|error:)/i.test(l));
  return marked ?? lines.at(-1) ?? (r.timedOut ? 'timed out' : `exit code ${r.code}`);
}

const CLIENTS: ClientSpec[] = [
  {
    name: 'curl',
    trustVars: 'CURL_CA_BUNDLE (or SSL_CERT_FILE)',
    find: async (_ctx, env) => onPath('curl', env),
    // -q: ignore ~/.curlrc. No --fail: any HTTP answer shows that TLS worked.
    args: (url, timeoutMs) => ['-q', '-sS', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', String(Math.ceil(timeoutMs / 1000)), url],
    outcome: statusFromStdout,
  },
  {
    name: 'node',
    trustVars: 'NODE_EXTRA_CA_CERTS (and NODE_USE_ENV_PROXY=1 for the proxy, Node 24 and later)',
    find: async () => ({ path: process.execPath }),
    args: (url, timeoutMs) => ['-e', NODE_SCRIPT, url, String(timeoutMs)],
    outcome: statusFromStdout,
  },
  {
    name: 'python3 (requests)',
    trustVars: 'REQUESTS_CA_BUNDLE',
    find: async (_ctx, env) => {
      const found = await onPath('python3', env);
      if ('missing' in found) return found;
      const probe = await runProcess(found.path, ['-c', 'import requests'], { PATH: env['PATH'] ?? '', HOME: env['HOME'] ?? '' }, 10_000);
      return probe.code === 0 ? found : { missing: 'python3 is installed but not its requests module (pip install requests)' };
    },
    args: (url, timeoutMs) => ['-c', PYTHON_SCRIPT, url, String(timeoutMs / 1000)],
    outcome: statusFromStdout,
  },
  {
    name: 'git',
    trustVars: 'GIT_SSL_CAINFO',
    find: async (_ctx, env) => onPath('git', env),
    args: (url) => ['ls-remote', url],
    // No system or global config (a credential helper or http.proxy there would change the result),
    // and never a prompt.
    extraEnv: { GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null', GIT_TERMINAL_PROMPT: '0' },
    outcome: (r) => {
      if (r.code === 0) return { status: 200 };
      // These messages come only from an HTTP answer, which git reads after TLS verification passed.
      const http = /The requested URL returned error: (\d{3})/.exec(r.stderr);
      if (http) return { status: Number(http[1]) };
      if (/repository '.*' not found/.test(r.stderr)) return { status: 404 };
      if (/not valid: is this a git repository\?/.test(r.stderr)) return { status: 200 };
      return { error: errorLine(r) };
    },
  },
];

async function checkClient(ctx: Context, client: ClientSpec, env: Record<string, string>, seenAuditIds: Set<string>): Promise<CheckResult> {
  const found = await client.find(ctx, env);
  if ('missing' in found) return { check: client.name, status: 'skip', detail: found.missing };
  const url = ctx.target.url.href;
  const started = Date.now();
  const result = await runProcess(found.path, client.args(url, ctx.timeoutMs), { ...env, ...client.extraEnv }, ctx.timeoutMs + 2000);
  const outcome = client.outcome(result);
  const redact = (text: string) => redactKey(text, ctx.agent?.key);
  if ('error' in outcome) {
    return { check: client.name, status: 'fail', detail: `${found.path}: ${redact(outcome.error)}`, fix: fixFor(client, outcome.error) };
  }
  // For git the self-check path is not a repository: a 404 from keyway is the expected answer.
  const expected = ctx.target.selfCheck && client.name !== 'git' ? outcome.status === 200 : outcome.status >= 100;
  if (!expected) {
    return { check: client.name, status: 'fail', detail: `${found.path}: ${url} answered ${outcome.status}, not keyway's self-check`, fix: 'is the program at the proxy address keyway?' };
  }
  if (!ctx.target.selfCheck) {
    const seen = await auditShows(ctx, started, seenAuditIds);
    if (!seen) {
      return {
        check: client.name,
        status: 'fail',
        detail: `${found.path}: got ${outcome.status} from ${ctx.target.host}, but this home's audit log (${keywayPaths(ctx.config).audit}) shows no request for it`,
        fix: `the client went around the proxy (check HTTPS_PROXY/https_proxy and NO_PROXY for ${client.name}), or the proxy at ${formatListen(ctx.proxy)} runs on another home (--home)`,
      };
    }
  }
  return { check: client.name, status: 'ok', detail: `${found.path} reached ${url} through keyway (HTTP ${outcome.status}) and trusts its CA` };
}

function fixFor(client: ClientSpec, error: string): string {
  if (/certificate|SSL|TLS|self.signed|issuer|CERT_|verif/i.test(error)) return `${client.name} does not trust keyway's CA: ${client.trustVars} must point at keyway's CA or bundle (eval "$(keyway env)")`;
  if (/407/.test(error)) return 'the proxy wants agent credentials: run doctor with --agent ID';
  if (/ENOTFOUND|EAI_AGAIN|resolve host|getaddrinfo|Name or service not known|NameResolution/i.test(error)) {
    return `${client.name} did not use the proxy (it looked the name up itself): check HTTPS_PROXY/https_proxy${client.name === 'node' ? ' and NODE_USE_ENV_PROXY=1 (Node 24 or later)' : ''}`;
  }
  if (/ECONNREFUSED|refused|Failed to connect|Unable to connect|ProxyError/i.test(error)) return 'it could not reach the proxy: check HTTPS_PROXY against the proxy address';
  if (/timed out|timeout/i.test(error)) return 'raise --timeout, or check that the proxy is not stuck';
  return `run \`keyway run -- ${client.name} …\` by hand to see more`;
}

/** Whether keyway's audit log has a line for the target host written since `since`, not counted before. */
async function auditShows(ctx: Context, since: number, seenIds: Set<string>): Promise<boolean> {
  const path = keywayPaths(ctx.config).audit;
  // The line is written as the response ends, before the client can exit: a short wait is plenty.
  const deadline = Date.now() + 1000;
  for (let i = 0; i < 20; i++) {
    for await (const line of tailAudit(path, { lines: 200, follow: false })) {
      if (seenIds.has(line.id)) continue;
      if (line.host.toLowerCase() !== ctx.target.host.toLowerCase() || line.port !== ctx.target.port) continue;
      if (Date.parse(line.ts) < since - 1000) continue;
      seenIds.add(line.id);
      return true;
    }
    if (Date.now() >= deadline) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

// ---- processes ----------------------------------------------------------------------------------------

async function onPath(name: string, env: Record<string, string>): Promise<{ path: string } | { missing: string }> {
  for (const dir of (env['PATH'] ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    try {
      await access(candidate, fsConstants.X_OK);
      if ((await stat(candidate)).isFile()) return { path: candidate };
    } catch {
      // not here
    }
  }
  return { missing: `${name} is not installed (not on PATH)` };
}

/** Runs a program with exactly `env`, no stdin, output bounded, killed after timeoutMs. */
function runProcess(command: string, args: string[], env: Record<string, string>, timeoutMs: number): Promise<ProcessResult> {
  return new Promise((resolve) => {
    let timedOut = false;
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outBytes = 0;
    let errBytes = 0;
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (c: Buffer) => {
      if (outBytes < MAX_OUTPUT) out.push(c);
      outBytes += c.length;
    });
    child.stderr.on('data', (c: Buffer) => {
      if (errBytes < MAX_OUTPUT) err.push(c);
      errBytes += c.length;
    });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve({ code: null, stdout: '', stderr: `cannot run ${command}: ${e.code ?? e.message}`, timedOut });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), timedOut });
    });
  });
}

function redactKey(text: string, key: string | undefined): string {
  if (key === undefined || key === '') return text;
  return text.split(key).join('[redacted]').split(encodeURIComponent(key)).join('[redacted]');
}

function errCode(err: unknown): string {
  const e = err as NodeJS.ErrnoException | undefined;
  return typeof e?.code === 'string' ? e.code : (e?.message?.split('\n')[0] ?? String(err));
}
