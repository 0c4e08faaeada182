import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProxyAgent, request } from 'undici';
import { stringify } from 'yaml';
import { CLIENT_ID, CLIENT_SECRET, startAuthServer, type AuthServer } from '../helpers/auth-server.ts';
import { SRC_CLI, startChildProxy, type ChildProxy, writeChildHome } from '../helpers/child-proxy.ts';
import { TLS_FIXTURES } from '../helpers/fixtures.ts';
import { cleanEnv, runCli, TEST_HOSTS } from '../helpers/keyway.ts';
import { openConnect } from '../helpers/raw-http.ts';
import { curl } from '../helpers/clients.ts';
import { freePort } from '../helpers/ports.ts';
import { createServer as createHttpsServer } from 'node:https';
import { slack } from '../helpers/load.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

// proxy.workers: `keyway start` as a user runs it, with two worker processes serving one port
// (SO_REUSEPORT). What must be one across workers is shown to be one: a rate counted once, one
// token refresh, one reload (audited once) that every worker takes, /metrics and `keyway status`
// summing them; a worker killed mid-request fails that request at once and is replaced; stop and a
// dead primary take every worker down.

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, ms: number): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

interface WorkerRow {
  index: number;
  pid: number;
  restarts: number;
  connections: number | null;
  requests: number | null;
}

const API_TOKEN = `canary-api-${randomBytes(8).toString('hex')}`;
const BOT_KEY = `bot-${randomBytes(12).toString('hex')}`;

describe('proxy.workers', () => {
  let upstream: TestUpstream;
  let auth: AuthServer;
  const children: ChildProxy[] = [];

  beforeAll(async () => {
    upstream = await startUpstream();
    auth = await startAuthServer();
  });
  afterAll(async () => {
    for (const c of children) if (c.child.exitCode === null && c.child.signalCode === null) await c.stop();
    for (const c of children) expect(c.stdout() + c.stderr(), "a secret in keyway's output").not.toContain(API_TOKEN);
    await upstream?.close();
    await auth?.close();
  });

  function configFor(extra: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      grants: {
        api: { type: 'bearer', domains: ['api.example.test'], secret: 'env:API_TOKEN' },
        ...(extra['grants'] as object | undefined),
      },
      agents: {
        bot: { key: 'env:BOT_KEY', limits: { rate: '6/min', burst: 6 } },
        free: { key: 'env:BOT_KEY' },
        daily: { key: 'env:BOT_KEY', limits: { quota: { requests: '5/day' } } },
        careful: { key: 'env:BOT_KEY', rules: [{ grant: 'api', paths: ['/echo'], approve: 'human', approval: { wait: '60s' } }] },
      },
      providers: { testauth: { client_id: CLIENT_ID, client_secret: 'env:TEST_CLIENT_SECRET', authorize_url: auth.authUrl, token_url: auth.tokenUrl } },
      ...Object.fromEntries(Object.entries(extra).filter(([k]) => k !== 'grants')),
    };
  }

  function writeConfig(home: string, config: Record<string, unknown>, workers: number, proxyExtra: Record<string, unknown> = {}): void {
    const proxy = {
      upstream_ca: [TLS_FIXTURES.caPath],
      allow_networks: ['127.0.0.0/8'],
      hosts: Object.fromEntries(TEST_HOSTS.map((h) => [h, '127.0.0.1'])),
      workers,
      ...proxyExtra,
    };
    writeFileSync(join(home, 'config', 'keyway.yaml'), stringify({ proxy, ...config }));
  }

  async function startWorkers(
    prepare?: (home: string, env: Record<string, string>) => Promise<void>,
    proxyExtra: Record<string, unknown> = {},
  ): Promise<{ home: string; env: Record<string, string>; child: ChildProxy; ca: string }> {
    const home = writeChildHome({});
    writeConfig(home, configFor(), 2, proxyExtra);
    const env = cleanEnv({ KEYWAY_MASTER_KEY: randomBytes(32).toString('base64'), API_TOKEN, BOT_KEY, TEST_CLIENT_SECRET: CLIENT_SECRET });
    await prepare?.(home, env);
    const child = await startChildProxy({ cli: SRC_CLI, home, env });
    children.push(child);
    return { home, env, child, ca: readFileSync(join(home, 'certs', 'ca.pem'), 'utf8') };
  }

  /** One request on a connection of its own (a new CONNECT), so that the kernel picks a worker for each. */
  async function fresh(port: number, ca: string, path: string, agent = 'free', host = 'api.example.test'): Promise<{ status: number; body: string }> {
    // keyway's CA for intercepted hosts, the upstream's for a host tunnelled blind.
    const dispatcher = new ProxyAgent({ uri: `http://${agent}:${BOT_KEY}@127.0.0.1:${port}`, requestTls: { ca: [ca, TLS_FIXTURES.ca] } });
    try {
      const res = await request(`https://${host}:${upstream.port}${path}`, { dispatcher, headersTimeout: 30_000, bodyTimeout: 30_000 });
      return { status: res.statusCode, body: await res.body.text() };
    } finally {
      await dispatcher.close().catch(() => undefined);
    }
  }

  async function status(home: string, env: Record<string, string>): Promise<{ pid: number; requests: number; workers: WorkerRow[] }> {
    const out = await runCli(['status', '--json', '--home', home], env);
    expect(out.code, out.stderr).toBe(0);
    return JSON.parse(out.stdout) as { pid: number; requests: number; workers: WorkerRow[] };
  }

  it('serves one port from two processes: both take connections, status and /metrics sum them, one rate for all', async () => {
    const { home, env, child, ca } = await startWorkers();
    const before = await status(home, env);
    expect(before.workers.map((w) => w.index)).toEqual([1, 2]);
    expect(new Set(before.workers.map((w) => w.pid)).size).toBe(2);
    expect(before.workers.every((w) => w.pid !== before.pid && alive(w.pid))).toBe(true);

    // 24 connections of their own: the kernel spreads them (all on one worker: 2^-23).
    const results = await Promise.all(Array.from({ length: 24 }, (_, i) => fresh(child.port, ca, `/echo?n=${i}`)));
    expect(results.map((r) => r.status)).toEqual(Array(24).fill(200));
    const seen = upstream.seen.filter((r) => r.url.startsWith('/echo?n='));
    expect(seen).toHaveLength(24);
    for (const r of seen) expect(r.headers.authorization).toBe(`Bearer ${API_TOKEN}`);
    const after = await status(home, env);
    expect(after.requests).toBe(24);
    expect(after.workers.every((w) => (w.requests ?? 0) > 0)).toBe(true);

    // /metrics on the one admin listener: the workers' counts added up.
    const proxyFile = JSON.parse(readFileSync(join(home, 'data', 'proxy.json'), 'utf8')) as { admin: { port: number } };
    const token = readFileSync(join(home, 'data', 'admin.token'), 'utf8').trim();
    const metrics = await (await fetch(`http://127.0.0.1:${proxyFile.admin.port}/metrics`, { headers: { authorization: `Bearer ${token}` } })).text();
    const injected = /^keyway_requests_total\{decision="inject",code="none"\} (\d+)$/m.exec(metrics);
    expect(Number(injected?.[1])).toBe(24);
    // keyway's own histograms (plain numbers in each process) add up across the workers too, one series.
    expect(metrics.match(/^keyway_upstream_response_seconds_count \d+$/gm)).toEqual(['keyway_upstream_response_seconds_count 24']);
    expect(metrics).toMatch(/^keyway_upstream_response_seconds_bucket\{le="\+Inf"\} 24$/m);

    // A hostile agent asks each worker for the primary's admin listener (loopback is an allowed
    // network here): every worker refuses it as keyway's own, though only the primary listens there.
    const auth = `Proxy-Authorization: Basic ${Buffer.from(`free:${BOT_KEY}`).toString('base64')}\r\n`;
    const tries = await Promise.all(
      Array.from({ length: 12 }, async () => {
        const { socket, status, head } = await openConnect(child.port, `127.0.0.1:${proxyFile.admin.port}`, auth);
        socket.destroy();
        return { status, head };
      }),
    );
    for (const t of tries) {
      expect(t.status).toBe(403);
      expect(t.head.toLowerCase()).toContain('x-keyway-error: host_not_allowed');
    }

    // bot's rate is 6 a minute with a burst of 6, counted once for the whole keyway: of 16 requests on
    // 16 connections (spread over both workers) exactly 6 pass. Counted per worker, up to 12 would.
    const limited = await Promise.all(Array.from({ length: 16 }, (_, i) => fresh(child.port, ca, `/echo?r=${i}`, 'bot')));
    const codes = limited.map((r) => r.status).sort();
    expect(codes.filter((c) => c === 200)).toHaveLength(6);
    expect(codes.filter((c) => c === 429)).toHaveLength(10);
    const refused = limited.find((r) => r.status === 429)!;
    expect(JSON.parse(refused.body).error.code).toBe('rate_limited');
    const spread = await status(home, env);
    expect(spread.workers.every((w) => (w.requests ?? 0) > (after.workers.find((a) => a.index === w.index)?.requests ?? 0))).toBe(true);

    // A day's quota is counted in the store, once for all workers: 5 of 12.
    const daily = await Promise.all(Array.from({ length: 12 }, (_, i) => fresh(child.port, ca, `/echo?d=${i}`, 'daily')));
    expect(daily.filter((r) => r.status === 200)).toHaveLength(5);
    expect(daily.filter((r) => r.status === 429 && JSON.parse(r.body).error.code === 'quota_exhausted')).toHaveLength(7);

    const text = await runCli(['status', '--home', home], env);
    expect(text.stdout).toMatch(/workers {3}2 \(proxy\.workers\)/);
    for (const w of spread.workers) expect(text.stdout).toContain(`#${w.index}  pid ${w.pid}`);
  });

  it('requests held for a person in any worker are answered in one place, the admin API of the primary', async () => {
    const { home, env, child, ca } = await startWorkers();
    const proxyFile = JSON.parse(readFileSync(join(home, 'data', 'proxy.json'), 'utf8')) as { admin: { port: number } };
    const token = readFileSync(join(home, 'data', 'admin.token'), 'utf8').trim();
    const api = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`http://127.0.0.1:${proxyFile.admin.port}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return { status: res.status, body: (await res.json()) as unknown };
    };
    // Fourteen requests on connections of their own, so both workers hold some. An agent may have 10
    // waiting (approvals.max_pending_per_agent), counted in the store for all workers: 4 are refused.
    const held = Array.from({ length: 14 }, (_, i) => fresh(child.port, ca, `/echo?h=${i}`, 'careful'));
    const pending = await until(
      'ten approvals pending',
      async () => {
        const list = (await api('GET', '/api/approvals')).body as { approvals: Array<{ id: string; state: string }> };
        const waiting = list.approvals.filter((a) => a.state === 'pending');
        return waiting.length === 10 ? waiting : undefined;
      },
      slack(15_000, 45_000),
    );
    for (const a of pending) expect((await api('POST', `/api/approvals/${a.id}/approve`, {})).status).toBe(200);
    const results = await Promise.all(held);
    expect(results.filter((r) => r.status === 200)).toHaveLength(10);
    expect(results.filter((r) => r.status === 429 && JSON.parse(r.body).error.code === 'rate_limited')).toHaveLength(4);
    expect(upstream.seen.filter((r) => r.url.startsWith('/echo?h='))).toHaveLength(10);
    // Both workers held some (all fourteen on one worker: 2^-13).
    const spread = await status(home, env);
    expect(
      spread.workers.every((w) => (w.requests ?? 0) > 0),
      'both workers held requests',
    ).toBe(true);
  });

  it('one token refresh across workers, for 30 requests on an expired OAuth grant', async () => {
    const stale = `stale-${randomBytes(6).toString('hex')}`;
    const { home, env, child, ca } = await startWorkers(async (home, env) => {
      const tokens = await auth.obtainTokens();
      const add = await runCli(
        ['grants', 'add', 'oauthy', '--type', 'oauth2', '--domains', 'other.example.test', '--provider', 'testauth', '--home', home],
        env,
      );
      expect(add.code, add.stderr).toBe(0);
      const material = { refreshToken: tokens.refresh_token, accessToken: stale, expiresAt: Date.now() - 1000 };
      const set = await runCli(['secrets', 'set', 'oauthy', '--stdin', '--home', home], env, JSON.stringify(material));
      expect(set.code, set.stderr).toBe(0);
    });
    // Held long enough that requests on both workers arrive while the first refresh is in flight.
    auth.mode = 'slow';
    auth.slowMs = 800;
    const calls = auth.tokenCalls['refresh_token'] ?? 0;
    try {
      const results = await Promise.all(Array.from({ length: 30 }, (_, i) => fresh(child.port, ca, `/echo?o=${i}`, 'free', 'other.example.test')));
      expect(results.map((r) => r.status)).toEqual(Array(30).fill(200));
      const sent = new Set(upstream.seen.filter((r) => r.url.startsWith('/echo?o=')).map((r) => r.headers.authorization));
      expect(sent.size).toBe(1);
      expect([...sent][0]).toMatch(/^Bearer ./);
      expect([...sent][0]).not.toBe(`Bearer ${stale}`);
      expect((auth.tokenCalls['refresh_token'] ?? 0) - calls).toBe(1);
      const spread = await status(home, env);
      expect(spread.workers.every((w) => (w.requests ?? 0) > 0)).toBe(true);
    } finally {
      auth.mode = 'normal';
    }
  });

  it('proxy.transparent: every worker takes redirected connections on the same ports', async () => {
    // An upstream on 443 of an address of this test's own, where proxy.hosts sends the name (a
    // redirected TLS connection goes to port 443 of the name its SNI gives).
    const address = `127.${100 + (process.pid % 100)}.38.2`;
    const api = createHttpsServer({ cert: TLS_FIXTURES.cert, key: TLS_FIXTURES.key }, (req, res) => {
      res.writeHead(req.headers.authorization === `Bearer ${API_TOKEN}` ? 200 : 401).end('api');
    });
    api.listen(443, address);
    await once(api, 'listening');
    try {
      const [tlsPort, httpPort] = [await freePort(), await freePort()];
      const { home, env, ca } = await startWorkers(undefined, {
        hosts: { 'api.example.test': address },
        transparent: { listen: `127.0.0.1:${tlsPort}`, http_listen: `127.0.0.1:${httpPort}`, agent: 'free' },
      });
      const caFile = join(home, 'certs', 'ca.pem');
      expect(readFileSync(caFile, 'utf8')).toBe(ca);
      // curl with no proxy, its connection to api.example.test:443 sent to the transparent port (what a redirect does).
      const results = await Promise.all(
        Array.from({ length: 16 }, () =>
          curl(
            [
              '-sS',
              '--noproxy',
              '*',
              '--cacert',
              caFile,
              '--connect-to',
              `api.example.test:443:127.0.0.1:${tlsPort}`,
              '-w',
              '%{http_code}',
              'https://api.example.test/t',
            ],
            cleanEnv({}),
          ),
        ),
      );
      for (const r of results) expect(r.stdout, r.stderr).toBe('api200');
      const spread = await status(home, env);
      expect(spread.workers.every((w) => (w.requests ?? 0) > 0)).toBe(true);
    } finally {
      api.close();
    }
  });

  it('the audit refusal budget is counted once for all workers: identical refusals past it become one summary', async () => {
    // A budget of 3 identical refusals per interval (one long interval here), for the whole keyway.
    const { home, env, child } = await startWorkers(async (h) => {
      writeConfig(h, configFor({ audit: { refusal_budget: 3, refusal_interval: '10m' } }), 2);
    });
    const adminPort = (JSON.parse(readFileSync(join(home, 'data', 'proxy.json'), 'utf8')) as { admin: { port: number } }).admin.port;
    const auth = `Proxy-Authorization: Basic ${Buffer.from(`free:${BOT_KEY}`).toString('base64')}\r\n`;
    // 24 identical refusals (the admin port, keyway's own), each on a connection of its own, so both
    // workers see several (all on one worker: 2^-23; three or fewer on either: about 3 in 10,000).
    const statuses: number[] = [];
    for (let i = 0; i < 24; i++) {
      const { socket, status } = await openConnect(child.port, `127.0.0.1:${adminPort}`, auth);
      socket.destroy();
      statuses.push(status);
    }
    expect(statuses).toEqual(Array(24).fill(403));
    const spread = await status(home, env);
    expect(spread.workers.every((w) => (w.requests ?? 0) > 3)).toBe(true);
    // Stopping writes the summary of the interval still open.
    await child.stop();
    const refusals = readFileSync(join(home, 'logs', 'audit.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { agent?: string; code?: string; port?: number; repeated?: number })
      .filter((l) => l.agent === 'free' && l.code === 'host_not_allowed' && l.port === adminPort);
    // Per worker, each would write 3 in full (6) and a summary of its own.
    expect(refusals.filter((l) => l.repeated === undefined)).toHaveLength(3);
    expect(refusals.filter((l) => l.repeated !== undefined).map((l) => l.repeated)).toEqual([21]);
    const verify = await runCli(['audit', 'verify', '--home', home], env);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
  });

  it('a reload reaches every worker and is audited once', async () => {
    const { home, env, child, ca } = await startWorkers();
    await fresh(child.port, ca, '/echo?before', 'free', 'plain.example.test');
    expect(upstream.seen.find((r) => r.url === '/echo?before')?.headers['x-api-key']).toBeUndefined();
    writeConfig(
      home,
      configFor({
        grants: { other: { type: 'api_key', domains: ['plain.example.test'], secret: 'env:API_TOKEN', inject: { header: 'X-Api-Key', format: '{secret}' } } },
      }),
      2,
    );
    const reload = await runCli(['reload', '--home', home], env);
    expect(reload.code, reload.stderr).toBe(0);
    const results = await Promise.all(Array.from({ length: 16 }, (_, i) => fresh(child.port, ca, `/echo?l=${i}`, 'free', 'plain.example.test')));
    expect(results.map((r) => r.status)).toEqual(Array(16).fill(200));
    const seen = upstream.seen.filter((r) => r.url.startsWith('/echo?l='));
    expect(seen).toHaveLength(16);
    for (const r of seen) expect(r.headers['x-api-key']).toBe(API_TOKEN);
    const spread = await status(home, env);
    expect(spread.workers.every((w) => (w.requests ?? 0) > 0)).toBe(true);
    const lines = readFileSync(join(home, 'logs', 'audit.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { action?: string });
    expect(lines.filter((l) => l.action === 'reload')).toHaveLength(1);
    const verify = await runCli(['audit', 'verify', '--home', home], env);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
  });

  it("every worker runs the primary's config, never the file: a replacement started after an edit serves what the others do until a reload; /readyz counts the workers", async () => {
    const { home, env, child, ca } = await startWorkers();
    const adminPort = (JSON.parse(readFileSync(join(home, 'data', 'proxy.json'), 'utf8')) as { admin: { port: number } }).admin.port;
    const readyz = async () => (await fetch(`http://127.0.0.1:${adminPort}/readyz`)).json() as Promise<{ ready: boolean; checks: Record<string, string> }>;
    expect(await readyz()).toMatchObject({ ready: true, checks: { workers: 'ok' } });
    // The file now names a grant for plain.example.test; nobody has said reload.
    writeConfig(
      home,
      configFor({
        grants: { other: { type: 'api_key', domains: ['plain.example.test'], secret: 'env:API_TOKEN', inject: { header: 'X-Api-Key', format: '{secret}' } } },
      }),
      2,
    );
    const [first] = (await status(home, env)).workers;
    process.kill(first!.pid, 'SIGKILL');
    await until(
      'a new worker in place 1',
      async () => {
        const row = (await status(home, env)).workers.find((w) => w.index === 1);
        return row && row.pid !== first!.pid && row.requests !== null ? row : undefined;
      },
      slack(15_000, 45_000),
    );
    // Both workers serve the config the primary loaded: no credential for plain.example.test,
    // whichever worker the kernel picks (one that read the file would inject it).
    const before = await Promise.all(Array.from({ length: 16 }, (_, i) => fresh(child.port, ca, `/echo?edited=${i}`, 'free', 'plain.example.test')));
    expect(before.map((r) => r.status)).toEqual(Array(16).fill(200));
    const unreloaded = upstream.seen.filter((r) => r.url.startsWith('/echo?edited='));
    expect(unreloaded).toHaveLength(16);
    for (const r of unreloaded) expect(r.headers['x-api-key']).toBeUndefined();
    const spread = await status(home, env);
    expect(spread.workers.every((w) => (w.requests ?? 0) > 0)).toBe(true);
    // The reload brings the edit to both.
    const reload = await runCli(['reload', '--home', home], env);
    expect(reload.code, reload.stderr).toBe(0);
    await Promise.all(Array.from({ length: 16 }, (_, i) => fresh(child.port, ca, `/echo?reloaded=${i}`, 'free', 'plain.example.test')));
    const reloaded = upstream.seen.filter((r) => r.url.startsWith('/echo?reloaded='));
    expect(reloaded).toHaveLength(16);
    for (const r of reloaded) expect(r.headers['x-api-key']).toBe(API_TOKEN);
    expect(await readyz()).toMatchObject({ ready: true, checks: { workers: 'ok' } });
  });

  it('a worker killed mid-request: that request fails at once, a new worker takes its place, the rest serve on', async () => {
    const { home, env, child, ca } = await startWorkers();
    const started = Date.now();
    const held = fresh(child.port, ca, '/slow?ms=60000').then(
      (r) => ({ ok: true as const, status: r.status }),
      (err: Error) => ({ ok: false as const, message: err.message }),
    );
    const holder = await until(
      'the held request on a worker',
      async () => (await status(home, env)).workers.find((w) => (w.connections ?? 0) > 0),
      slack(10_000, 30_000),
    );
    process.kill(holder.pid, 'SIGKILL');
    const outcome = await held;
    expect(outcome.ok).toBe(false);
    expect(Date.now() - started).toBeLessThan(slack(20_000, 50_000));
    const replaced = await until(
      'a new worker in its place',
      async () => {
        const row = (await status(home, env)).workers.find((w) => w.index === holder.index);
        return row && row.pid !== holder.pid && row.restarts === 1 && row.requests !== null ? row : undefined;
      },
      slack(15_000, 45_000),
    );
    expect(alive(replaced.pid)).toBe(true);
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => fresh(child.port, ca, `/echo?k=${i}`)));
    expect(results.map((r) => r.status)).toEqual(Array(12).fill(200));
    expect(child.stdout()).toContain('a worker process died');
  });

  it('stop lets requests in flight finish, then every worker exits; a second start on a taken port is refused', async () => {
    const { home, env, child, ca } = await startWorkers();
    const { workers } = await status(home, env);
    const other = writeChildHome({});
    writeConfig(other, configFor(), 2);
    const second = await runCli(['start', '--home', other, '--listen', `127.0.0.1:${child.port}`, '--admin-listen', '127.0.0.1:0'], env);
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(/the port is in use/);

    const held = fresh(child.port, ca, '/slow?ms=1500');
    await sleep(300);
    child.child.kill('SIGTERM');
    expect((await held).status).toBe(200);
    const [code] = (await once(child.child, 'exit')) as [number | null];
    expect(code).toBe(0);
    for (const w of workers) expect(alive(w.pid)).toBe(false);
  });

  it('a primary that dies takes its workers with it', async () => {
    const { home, env, child } = await startWorkers();
    const { workers } = await status(home, env);
    child.child.kill('SIGKILL');
    await until('every worker gone', () => (workers.some((w) => alive(w.pid)) ? undefined : true), slack(15_000, 45_000));
  });
});
