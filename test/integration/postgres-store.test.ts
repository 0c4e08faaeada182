// store.backend: postgres (issue 11, first part): two keyway replicas, each with its own home, on
// one throwaway PostgreSQL. A grant added through one replica's CLI is injected by the other within
// a second; revoked through the other, it is refused by the first; the database holds only
// ciphertext; a wrong master key is refused as for the file store; the schema migrates once when
// several replicas start at the same moment.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hostname } from 'node:os';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CANARY } from '../helpers/fixtures.ts';
import { makeHome, runCli, startProxy, type TestProxy } from '../helpers/keyway.ts';
import { startPostgres, type TestPostgres } from '../helpers/postgres.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { slack } from '../helpers/load.ts';

const STORE_CONFIG = { store: { backend: 'postgres', url: 'env:KEYWAY_TEST_DATABASE_URL' } };

describe('store on PostgreSQL, shared by replicas', () => {
  let db: TestPostgres;
  let upstream: TestUpstream;
  let a: TestProxy;
  let b: TestProxy;
  const masterKey = randomBytes(32).toString('base64');
  const env = () => ({ KEYWAY_TEST_DATABASE_URL: db.url, KEYWAY_MASTER_KEY: masterKey });

  beforeAll(async () => {
    db = await startPostgres();
    upstream = await startUpstream();
    // Both at once: the migration's advisory lock makes one apply it and the other wait.
    [a, b] = await Promise.all([
      startProxy({ config: { ...STORE_CONFIG, audit: { replica: 'replica-a' } }, env: env() }),
      startProxy({ config: STORE_CONFIG, env: env() }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await upstream?.close();
    await db?.destroy();
  });

  /** One GET through `proxy`; `authorization` is what the upstream received, if the request reached it. */
  async function getThrough(proxy: TestProxy): Promise<{ status: number; authorization: string | undefined; body: string }> {
    const dispatcher = new ProxyAgent({ uri: proxy.url, requestTls: { ca: [readFileSync(proxy.caPath, 'utf8')] } });
    try {
      const seenBefore = upstream.seen.length;
      const res = await request(`https://api.example.test:${upstream.port}/echo`, { dispatcher, signal: AbortSignal.timeout(slack(10_000)) });
      const body = await res.body.text();
      // What the upstream received (the echo it sends back is redacted by keyway's leak guard).
      const seen = upstream.seen.length > seenBefore ? upstream.seen[upstream.seen.length - 1] : undefined;
      return { status: res.statusCode, authorization: seen?.headers.authorization, body };
    } catch (err) {
      // No grant covers the host (yet): keyway tunnels it blind, and this client, trusting keyway's
      // CA only, refuses the upstream's own certificate.
      return { status: 0, authorization: undefined, body: (err as Error).message };
    } finally {
      await dispatcher.close();
    }
  }

  /** Milliseconds until `check` holds, polling every 20 ms, or Infinity after 5 s (stretched by the load). */
  async function msUntil(check: () => Promise<boolean>): Promise<number> {
    const started = Date.now();
    const limit = slack(5_000);
    while (Date.now() - started < limit) {
      if (await check()) return Date.now() - started;
      await new Promise((r) => setTimeout(r, 20));
    }
    return Number.POSITIVE_INFINITY;
  }

  it('migrated the schema exactly once', async () => {
    const { rows } = await db.query('SELECT version FROM keyway_schema ORDER BY version');
    expect(rows.map((r) => r.version)).toEqual([1, 2, 3, 4]);
  });

  it('a grant added through one replica is injected by the other within a second', async () => {
    const added = await a.cli(['grants', 'add', 'shared', '--type', 'bearer', '--domains', 'api.example.test', '--secret-stdin'], CANARY);
    expect(added.code, added.stderr).toBe(0);
    const ms = await msUntil(async () => (await getThrough(b)).authorization === `Bearer ${CANARY}`);
    expect(ms).toBeLessThan(slack(1_000, 5_000)); // a second on an idle machine; stretched by the measured load
    expect((await getThrough(a)).authorization).toBe(`Bearer ${CANARY}`);
  });

  it('revoked through the other replica, it is refused by the first within a second', async () => {
    const revoked = await b.cli(['revoke', 'shared']);
    expect(revoked.code, revoked.stderr).toBe(0);
    const ms = await msUntil(async () => (await getThrough(a)).status === 401);
    expect(ms).toBeLessThan(slack(1_000, 5_000));
    expect((await getThrough(a)).body).toContain('grant_needs_reconnect');
  });

  it('the database holds ciphertext only: no secret, no grant field in clear', async () => {
    const { rows } = await db.query('SELECT id, nonce, ciphertext, tag, version FROM keyway_records');
    const dump = JSON.stringify(rows);
    expect(rows.length).toBeGreaterThan(1);
    expect(dump).not.toContain(CANARY);
    expect(dump).not.toContain(Buffer.from(CANARY).toString('base64').slice(0, 16));
    expect(dump).not.toContain('api.example.test');
    expect(dump).not.toContain('bearer');
    // Every write bumped the version of what it changed (compare-and-set).
    expect(rows.find((r) => r.id === 'grant:shared')?.version).toBeDefined();
  });

  it('database down: cached grants keep serving, /readyz says the store, a write fails clearly; back up: recovery without a restart', async () => {
    const added = await a.cli(['grants', 'add', 'steady', '--type', 'bearer', '--domains', 'other.example.test', '--secret-stdin'], `${CANARY}-steady`);
    expect(added.code, added.stderr).toBe(0);
    const readyz = async (proxy: TestProxy) => {
      const res = await fetch(`http://127.0.0.1:${proxy.running.adminAddress?.port}/readyz`);
      return { status: res.status, body: (await res.json()) as { reason?: string } };
    };
    // Once no grant covers the host, keyway tunnels it blind, and this client (trusting keyway's CA
    // only) refuses the upstream's own certificate: status 0, nothing injected.
    const through = async (proxy: TestProxy) => {
      const dispatcher = new ProxyAgent({ uri: proxy.url, requestTls: { ca: [readFileSync(proxy.caPath, 'utf8')] } });
      try {
        const seenBefore = upstream.seen.length;
        const res = await request(`https://other.example.test:${upstream.port}/echo`, { dispatcher, signal: AbortSignal.timeout(slack(10_000)) });
        await res.body.text();
        return { status: res.statusCode, authorization: upstream.seen.slice(seenBefore).at(-1)?.headers.authorization };
      } catch {
        return { status: 0, authorization: undefined };
      } finally {
        await dispatcher.close();
      }
    };
    expect(await msUntil(async () => (await through(b)).authorization === `Bearer ${CANARY}-steady`)).toBeLessThan(1_000);

    await db.stop();
    try {
      // The request path reads memory only.
      for (const proxy of [a, b]) expect(await through(proxy)).toEqual({ status: 200, authorization: `Bearer ${CANARY}-steady` });
      expect(await msUntil(async () => (await readyz(a)).status === 503)).toBeLessThan(3_000);
      expect((await readyz(a)).body.reason).toMatch(/^store: the store's database cannot be used \(store_unavailable\)/);
      const write = await a.cli(['grants', 'add', 'during', '--type', 'bearer', '--domains', 'tunnel.example.test']);
      expect(write.code).not.toBe(0);
      expect(write.stderr).toContain('cannot be used');
      expect(write.stderr).not.toContain('keyway-test-db-password');
      expect(write.stderr.trim().split('\n')).toHaveLength(1);
    } finally {
      await db.start();
    }
    const recovered = await msUntil(async () => (await readyz(a)).status === 200 && (await readyz(b)).status === 200);
    expect(recovered).toBeLessThan(3_000);
    // Changes flow again, to the other replica, within a second.
    const after = await a.cli(['grants', 'rm', 'steady']);
    expect(after.code, after.stderr).toBe(0);
    expect(await msUntil(async () => (await through(b)).authorization === undefined)).toBeLessThan(1_000);
  });

  it("each replica's audit lines carry its replica id: audit.replica, or the host name by default; the chain verifies", async () => {
    const linesA = a.auditLines();
    const linesB = b.auditLines();
    expect(linesA.length).toBeGreaterThan(0);
    expect(linesB.length).toBeGreaterThan(0);
    expect(new Set(linesA.map((l) => l['replica']))).toEqual(new Set(['replica-a']));
    expect(new Set(linesB.map((l) => l['replica']))).toEqual(new Set([hostname()]));
    const verified = await a.cli(['audit', 'verify']);
    expect(verified.code, verified.stderr + verified.stdout).toBe(0);
  });

  it('keyway fetch works on a PostgreSQL-store home: through a running replica, and with none running for the home', async () => {
    const added = await a.cli(['grants', 'add', 'fetched', '--type', 'bearer', '--domains', 'plain.example.test', '--secret-stdin'], `${CANARY}-fetched`);
    expect(added.code, added.stderr).toBe(0);
    const url = `https://plain.example.test:${upstream.port}/echo`;
    const seen = () => upstream.seen.at(-1)?.headers.authorization;

    // The replica's home: a proxy runs there, its store is the database (no data/store.json).
    const running = await a.cli(['fetch', url]);
    expect(running.code, running.stderr).toBe(0);
    expect(seen()).toBe(`Bearer ${CANARY}-fetched`);
    expect(JSON.parse(running.stdout).headers.authorization).toBe('Bearer [redacted by keyway]');

    // A home of its own on the same database, set up with init, with no proxy running: fetch starts
    // one in its process for the one request.
    const home = makeHome();
    mkdirSync(join(home, 'config'));
    writeFileSync(join(home, 'config', 'keyway.yaml'), readFileSync(join(a.home, 'config', 'keyway.yaml')));
    const homeEnv = { KEYWAY_HOME: home, HOME: home, ...a.env, ...env() };
    expect((await runCli(['init'], homeEnv)).code).toBe(0);
    const before = upstream.seen.length;
    const own = await runCli(['fetch', url, '--json'], homeEnv);
    expect(own.code, own.stderr).toBe(0);
    expect(JSON.parse(own.stdout)).toMatchObject({ status: 200 });
    expect(upstream.seen.length).toBe(before + 1);
    expect(seen()).toBe(`Bearer ${CANARY}-fetched`);
    for (const r of [running, own]) expect(r.stdout + r.stderr).not.toContain(CANARY);
    // Four CLI runs (a fetch starts its own keyway): past 30 s on a busy 2-core machine.
  });

  it('a replica with another master key is refused with store_wrong_key, and the database is untouched', async () => {
    // The other replicas keep writing (last-use times), so what must not move is the key check.
    const check = "SELECT nonce, ciphertext, tag, version FROM keyway_records WHERE id = '__check__'";
    const before = await db.query(check);
    await expect(
      startProxy({ config: STORE_CONFIG, env: { KEYWAY_TEST_DATABASE_URL: db.url, KEYWAY_MASTER_KEY: randomBytes(32).toString('base64') } }),
    ).rejects.toMatchObject({ code: 'store_wrong_key' });
    const after = await db.query(check);
    expect(before.rows).toHaveLength(1);
    expect(after.rows).toEqual(before.rows);
  });

  it('a database that cannot be reached stops the start with store_unavailable, naming it without its password', async () => {
    const wrong = db.url.replace(`:${db.port}/`, ':1/');
    const failure = await startProxy({ config: STORE_CONFIG, env: { KEYWAY_TEST_DATABASE_URL: wrong, KEYWAY_MASTER_KEY: masterKey } }).catch(
      (err: unknown) => err,
    );
    expect(failure).toMatchObject({ code: 'store_unavailable' });
    const message = (failure as Error).message;
    expect(message).toContain('127.0.0.1:1/keyway');
    expect(message).not.toContain('keyway-test-db-password');
  });
});
