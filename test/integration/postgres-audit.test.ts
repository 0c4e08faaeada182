// audit.sink: postgres (issue 11, last part): two keyway replicas on one throwaway PostgreSQL write
// their audit lines to the table keyway_audit, one hash chain each, and `keyway audit verify/query/
// tail` read the table. Tampering behind keyway's back (a line edited, a middle row removed, the
// tail cut and the head row rewritten without the key) is found by verify with one line per
// problem; the database stopped mid-traffic refuses injection (503 audit_unavailable) and loses no
// line when it returns; a second keyway with the same replica id is refused; the canary secret is
// nowhere in the table or any output.
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { SRC_CLI, startChildProxy } from '../helpers/child-proxy.ts';
import { CANARY, TLS_FIXTURES } from '../helpers/fixtures.ts';
import { cleanEnv, cliCommand, makeHome, startProxy, TEST_HOSTS, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { adminClient } from '../helpers/admin-api.ts';
import { openEventStream } from '../helpers/event-stream.ts';
import { startPgCutter } from '../helpers/pg-cutter.ts';
import { headMac } from '../../src/audit/head.ts';
import { sealLine } from '../../src/audit/record.ts';
import { TableAuditWriter } from '../../src/audit/index.ts';
import { tableHasLine } from '../../src/audit/read/find-ids.ts';
import { OWED_LINE_PREFIX, type OwedLineRecord } from '../../src/credentials/store/change-rider.ts';
import { PostgresStore } from '../../src/credentials/store/index.ts';
import { thisHolder } from '../../src/files/lock-holder.ts';
import { deriveAuditHeadKey } from '../../src/open-home.ts';
import { startPostgres, type TestPostgres } from '../helpers/postgres.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { slack } from '../helpers/load.ts';

const SECRET = `${CANARY}-audit-table`;
// The CLI's writes (the grant the suite starts with) go to a chain of their own (cli/audit-change.ts).
const CLI_CHAIN = `cli@${hostname()}`;

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
    // The grant reaches replica b through the database within about a second.
    for (const proxy of [a, b]) await until(async () => (await get(proxy).catch(() => ({ status: 0 }))).status === 200);
  });

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
  async function get(proxy: Pick<TestProxy, 'url' | 'caPath'>, path = '/echo'): Promise<{ status: number; code?: string }> {
    const dispatcher = new ProxyAgent({ uri: proxy.url, requestTls: { ca: [readFileSync(proxy.caPath, 'utf8')] } });
    try {
      const res = await request(`https://api.example.test:${upstream.port}${path}`, { dispatcher, signal: AbortSignal.timeout(slack(10_000)) });
      const body = await res.body.text();
      outputs.push(body);
      return res.statusCode === 200 ? { status: 200 } : { status: res.statusCode, code: String(res.headers['x-keyway-error']) };
    } finally {
      await dispatcher.close();
    }
  }

  interface AuditRow {
    replica: string;
    seq: number;
    event_id: string;
    ts: Date;
    line: string;
  }

  async function rowsOf(replica: string): Promise<AuditRow[]> {
    const { rows } = await db.query('SELECT replica, seq::int AS seq, event_id, ts, line FROM keyway_audit WHERE replica = $1 ORDER BY seq', [replica]);
    return rows as AuditRow[];
  }

  /** The chain is 1, 2, 3, … with no gap and no line twice. */
  function expectWhole(rows: AuditRow[]): void {
    expect(rows.map((r) => r.seq)).toEqual(rows.map((_, i) => i + 1));
    expect(new Set(rows.map((r) => r.event_id)).size).toBe(rows.length);
  }

  async function verifyLines(): Promise<{ code: number; lines: string[] }> {
    const result = await cli(a, ['audit', 'verify']);
    return { code: result.code, lines: result.stdout.trim().split('\n') };
  }

  /** Resolves once `check` holds (polling every 20 ms), or fails after `ms`. */
  async function until(check: () => Promise<boolean>, ms = 5_000): Promise<void> {
    const deadline = Date.now() + slack(ms); // a wait on an event: patient on a busy machine
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
    // Wait for the five injections of each replica: a replica's chain may hold other lines too (its
    // start), so a plain row count can be reached while injection lines are still in a batch.
    const injections = async (replica: string) => (await rowsOf(replica)).filter((r) => JSON.parse(r.line).decision === 'inject').length;
    await until(async () => (await injections('ra')) >= 5 && (await injections('rb')) >= 5);
    for (const replica of ['ra', 'rb']) {
      const rows = await rowsOf(replica);
      // One chain each: seq 1, 2, 3, … with no gap, every line stamped with its replica.
      expectWhole(rows);
      expect(rows.every((r) => JSON.parse(r.line).replica === replica)).toBe(true);
    }
    expect(a.auditLines()).toEqual([]);
    const verified = await cli(a, ['audit', 'verify']);
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);
    expect(verified.stdout).toContain(`lines in 3 chain(s) (${[CLI_CHAIN, 'ra', 'rb'].sort().join(', ')})`);
    const heads = await db.query('SELECT replica, seq::int AS seq FROM keyway_audit_head ORDER BY replica');
    expect(heads.rows.map((r) => r.replica)).toEqual([CLI_CHAIN, 'ra', 'rb'].sort());
    // The grant the suite began with was added by the CLI: its line is in the CLI's chain, with its actor.
    const cliRows = await rowsOf(CLI_CHAIN);
    expectWhole(cliRows);
    expect(cliRows.map((r) => JSON.parse(r.line))).toContainEqual(
      expect.objectContaining({ decision: 'admin', action: 'grants.create', grant: 'api', client: 'cli', actor: expect.stringContaining('@') }),
    );
  });

  it("a line's event id is found in the table, whichever chain holds it (how an owed key line killed before its note went is found)", async () => {
    const [row] = (await rowsOf(CLI_CHAIN)).map((r) => JSON.parse(r.line) as { id: string });
    expect(await tableHasLine({ url: db.url }, [randomUUID(), row!.id])).toBe(true);
    expect(await tableHasLine({ url: db.url }, [randomUUID()])).toBe(false);
  });

  it('audit query filters and orders by time; tail shows the last lines and follows new ones', async () => {
    const all = await cli(a, ['audit', 'query', '--json']);
    expect(all.code, all.stderr).toBe(0);
    const lines = all.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { ts: string; replica: string; decision: string; path: string | null });
    expect(new Set(lines.map((l) => l.replica))).toEqual(new Set([CLI_CHAIN, 'ra', 'rb']));
    expect(lines.map((l) => l.ts)).toEqual(lines.map((l) => l.ts).toSorted());
    // No line has a query string. Only a blind tunnel's line has no path: a replica polled before it
    // read the new grant tunnels the CONNECT (proxy.unmatched: tunnel) and cannot see inside it.
    expect(lines.some((l) => l.path?.includes('?'))).toBe(false);
    // A CLI change has no path either: it is not a request.
    expect(lines.filter((l) => l.path === null && l.decision !== 'tunnel' && l.replica !== CLI_CHAIN)).toEqual([]);
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

    // tail --follow: a line committed by either replica after it started is printed, and nothing older.
    const spawnedAt = Date.now();
    const follower = spawn(...cliCommand(['audit', 'tail', '-n', '0', '--follow', '--json']), {
      env: { PATH: process.env['PATH'] ?? '', HOME: a.home, KEYWAY_HOME: a.home, ...a.env, ...env() },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let followed = '';
    follower.stdout.on('data', (c: Buffer) => (followed += c.toString()));
    try {
      // The follower places itself once node has started: a request every 300 ms until one shows.
      await until(async () => {
        expect(await get(b, '/echo')).toEqual({ status: 200 });
        await new Promise((r) => setTimeout(r, 300));
        return followed.includes('"path":"/echo"');
      }, 20_000);
      const seen = followed
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { replica: string; path: string; ts: string });
      expect(seen.length).toBeGreaterThanOrEqual(1);
      for (const line of seen) {
        expect(line).toMatchObject({ replica: 'rb', path: '/echo' });
        expect(Date.parse(line.ts)).toBeGreaterThanOrEqual(spawnedAt);
      }
    } finally {
      follower.kill('SIGINT');
      outputs.push(followed);
    }
    // Nine CLI processes, each a node start: ~10 s idle, past 30 s on a busy 2-core machine.
  });

  it("the admin API pages every replica's lines newest first and streams them live, resuming after Last-Event-ID", async () => {
    const admin = adminClient(a);
    const call = async (path: string, headers?: Record<string, string>) => {
      const res = await admin.call('GET', path, undefined, headers);
      outputs.push(res.text);
      return res;
    };
    type Line = { id: string; ts: string; replica: string; decision: string };
    // Every page of 3, newest first: each line once, in the table's order, both replicas.
    const { rows } = await db.query('SELECT line FROM keyway_audit ORDER BY ts DESC, replica DESC, seq DESC');
    const paged: Line[] = [];
    let cursor: string | null = null;
    for (let i = 0; i < 100; i++) {
      const res = await call(`/api/audit?limit=3${cursor === null ? '' : `&cursor=${cursor}`}`);
      expect(res.status, res.text).toBe(200);
      const body = res.body as { lines: Line[]; next: string | null };
      paged.push(...body.lines);
      cursor = body.next;
      if (cursor === null) break;
    }
    // Pages read newest first leave write-ahead lines (phase: sent) out: one entry per request.
    const outcomes = rows.map((r) => JSON.parse(r.line as string) as { id: string; phase?: string }).filter((l) => l.phase !== 'sent');
    expect(paged.map((l) => l.id)).toEqual(outcomes.map((l) => l.id));
    expect(new Set(paged.map((l) => l.replica))).toEqual(new Set([CLI_CHAIN, 'ra', 'rb']));
    const asc = (await call('/api/audit?order=asc&limit=2&decision=inject')).body as { lines: Line[]; next: string };
    expect(asc.lines.map((l) => l.decision)).toEqual(['inject', 'inject']);
    expect((await call(`/api/audit?order=desc&cursor=${asc.next}`)).status).toBe(400);
    expect((await call(`/api/audit?cursor=${Buffer.from('desc.x|1|ra').toString('base64url')}`)).status).toBe(400);

    // Live: a line replica b writes reaches a stream on replica a's admin API.
    const stream = await openEventStream(`${admin.base}/api/audit/stream?decision=inject`, { authorization: `Bearer ${admin.token}` });
    try {
      expect(stream.status).toBe(200);
      expect(await get(b, '/echo')).toEqual({ status: 200 });
      const event = await stream.next((e) => e.event === 'audit', 3_000);
      const line = JSON.parse(event.data) as Line;
      expect(line).toMatchObject({ replica: 'rb', decision: 'inject' });
      // Missed while away: one line from each replica, replayed after the last id seen.
      stream.close();
      expect(await get(a, '/echo')).toEqual({ status: 200 });
      expect(await get(b, '/echo')).toEqual({ status: 200 });
      await until(async () => (await db.query('SELECT 1 FROM keyway_audit WHERE ts > $1', [line.ts])).rows.length >= 2);
      const resumed = await openEventStream(`${admin.base}/api/audit/stream?decision=inject`, {
        authorization: `Bearer ${admin.token}`,
        'last-event-id': event.id ?? '',
      });
      try {
        await resumed.next((e) => e.event === 'audit', 3_000);
        await resumed.next((e) => e.event === 'audit', 3_000, 1);
        await new Promise((r) => setTimeout(r, 300));
        const replayed = resumed.events.map((e) => JSON.parse(e.data) as Line);
        expect(replayed.map((l) => l.replica).sort()).toEqual(['ra', 'rb']);
        outputs.push(...resumed.events.map((e) => e.data));
      } finally {
        resumed.close();
      }
      const bad = await openEventStream(`${admin.base}/api/audit/stream`, { authorization: `Bearer ${admin.token}`, 'last-event-id': '12' });
      expect(bad.status).toBe(400);
      bad.close();
    } finally {
      stream.close();
    }
  });

  it("tampering behind keyway's back is found by verify, one line per problem, and the chain is whole again once undone", async () => {
    const rows = await rowsOf('ra');
    expect(rows.length).toBeGreaterThanOrEqual(5);
    // An outcome line (a write-ahead line has no status to edit).
    const mid = rows.find((r, i) => i >= 2 && r.line.includes('"status":200')) as AuditRow;
    const last = rows.at(-1) as AuditRow;
    const beforeLast = rows.at(-2) as AuditRow;
    const put = (r: AuditRow) =>
      db.query('INSERT INTO keyway_audit (replica, seq, event_id, ts, line) VALUES ($1, $2, $3, $4, $5)', [r.replica, r.seq, r.event_id, r.ts, r.line]);

    // A line edited (its status changed).
    await db.query('UPDATE keyway_audit SET line = replace(line, $1, $2) WHERE replica = $3 AND seq = $4', ['"status":200', '"status":201', 'ra', mid.seq]);
    expect(await verifyLines()).toEqual({ code: 1, lines: [`replica ra: seq ${mid.seq}: edited: its content does not match its hash`] });
    await db.query('UPDATE keyway_audit SET line = $1 WHERE replica = $2 AND seq = $3', [mid.line, 'ra', mid.seq]);

    // A middle row removed.
    await db.query('DELETE FROM keyway_audit WHERE replica = $1 AND seq = $2', ['ra', mid.seq]);
    expect(await verifyLines()).toEqual({
      code: 1,
      lines: [`replica ra: seq ${mid.seq + 1}: seq jumps from ${mid.seq - 1} to ${mid.seq + 1}: 1 line(s) removed or reordered before it`],
    });
    await put(mid);

    // The tail cut: the head row still names it.
    await db.query('DELETE FROM keyway_audit WHERE replica = $1 AND seq = $2', ['ra', last.seq]);
    expect(await verifyLines()).toEqual({
      code: 1,
      lines: [
        `replica ra: seq ${beforeLast.seq}: tail removed: the head row records seq ${last.seq} but the chain ends at seq ${beforeLast.seq} (1 line(s) missing)`,
      ],
    });
    // … and the head row rewritten to match, by someone without the head key.
    const head = (await db.query('SELECT mac FROM keyway_audit_head WHERE replica = $1', ['ra'])).rows[0] as { mac: string };
    await db.query('UPDATE keyway_audit_head SET seq = $1, hash = $2 WHERE replica = $3', [beforeLast.seq, JSON.parse(beforeLast.line).hash, 'ra']);
    expect(await verifyLines()).toEqual({
      code: 1,
      lines: ['replica ra: head: head row tampered: its MAC does not match (or the head key is not the one that wrote it)'],
    });
    // A row past the head: the head (here MAC'd with the real key, as if it were stale) must name the
    // last row, since a writer puts its rows and its head in one statement.
    await put(last);
    const headKey = deriveAuditHeadKey(Buffer.from(masterKey, 'base64'));
    const stale = { seq: beforeLast.seq, hash: JSON.parse(beforeLast.line).hash as string };
    await db.query('UPDATE keyway_audit_head SET mac = $1 WHERE replica = $2', [headMac(headKey, stale), 'ra']);
    expect(await verifyLines()).toEqual({
      code: 1,
      lines: [
        `replica ra: seq ${last.seq}: rows after the head: the head row records seq ${beforeLast.seq} but the chain runs to seq ${last.seq} (added without the head key)`,
      ],
    });
    await db.query('UPDATE keyway_audit_head SET seq = $1, hash = $2, mac = $3 WHERE replica = $4', [last.seq, JSON.parse(last.line).hash, head.mac, 'ra']);
    const whole = await verifyLines();
    expect(whole.code, whole.lines.join('\n')).toBe(0);
    expectWhole(await rowsOf('ra'));
    // Six runs of `audit verify`, each a node start: past 30 s on a busy 2-core machine, and a test
    // cut off mid-way would leave the rows tampered for the tests after it.
  });

  it('the database stopped mid-traffic: injection is refused 503 audit_unavailable; back up, every line lands once, no gap', async () => {
    const since = Date.now();
    const logged = a.logs.length;
    const results: Array<{ status: number; code?: string }> = [];
    let stopped = false;
    let recoveredAt = 0;
    const traffic = (async () => {
      // Bounded: at most 1500 requests or 30 s.
      for (let i = 0; i < 1500 && !stopped && Date.now() - since < 30_000; i++) {
        results.push(await get(a, '/echo').catch(() => ({ status: -1 })));
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    await until(async () => results.length >= 5);
    await db.stop();
    try {
      await until(async () => results.some((r) => r.status === 503), 10_000);
      expect(results.find((r) => r.status === 503)).toEqual({ status: 503, code: 'audit_unavailable' });
      // What the agent is told speaks of the database, never of disk space (there is no disk here).
      const told = outputs
        .map((body) => {
          try {
            return (JSON.parse(body) as { error?: { code?: string; message?: string; hint?: string } }).error;
          } catch {
            return undefined;
          }
        })
        .find((error) => error?.code === 'audit_unavailable');
      expect(told?.message).toContain('the audit table cannot be written (its database is unreachable or refused the write)');
      expect(told?.hint).toContain('check the audit database (audit.sink: postgres)');
      expect(`${told?.message} ${told?.hint}`).not.toMatch(/disk|file-size|permissions of the audit path/);
      const ready = await fetch(`http://127.0.0.1:${a.running.adminAddress?.port}/readyz`);
      expect(ready.status).toBe(503);
      expect(((await ready.json()) as { checks: { audit: string } }).checks.audit).toMatch(/^the audit log cannot be written .*database unreachable/);
    } finally {
      await db.start();
    }
    const restarted = Date.now();
    await until(async () => results.at(-1)?.status === 200 && results.filter((r) => r.status === 200).length > 0, 10_000);
    recoveredAt = Date.now() - restarted;
    const seen = results.length;
    await until(async () => results.length >= seen + 5, 5_000);
    stopped = true;
    await traffic;
    // Every request has its one line: the 200s as inject, the refusals as error audit_unavailable.
    await until(
      async () => (await rowsOf('ra')).filter((r) => Date.parse(JSON.parse(r.line).ts) >= since && !r.line.includes('"phase":"sent"')).length >= results.length,
      5_000,
    );
    const rows = await rowsOf('ra');
    expectWhole(rows);
    // One outcome line per request (a request sent also has its write-ahead line, phase: sent).
    const lines = rows
      .map((r) => JSON.parse(r.line) as { id: string; ts: string; decision: string; code: string | null; phase?: string })
      .filter((l) => Date.parse(l.ts) >= since && l.phase !== 'sent');
    expect(lines.filter((l) => l.decision === 'inject')).toHaveLength(results.filter((r) => r.status === 200).length);
    expect(lines.filter((l) => l.code === 'audit_unavailable')).toHaveLength(results.filter((r) => r.status === 503).length);
    expect(results.every((r) => r.status === 200 || (r.status === 503 && r.code === 'audit_unavailable'))).toBe(true);
    // A refused request has no write-ahead line: nothing was sent (issue 60: its failed `sent` line
    // was kept and written once the table was back, a record of a credential sent that never was).
    const refusedIds = new Set(lines.filter((l) => l.code === 'audit_unavailable').map((l) => l.id));
    const sentIds = rows.map((r) => JSON.parse(r.line) as { id: string; phase?: string }).filter((l) => l.phase === 'sent');
    expect(sentIds.filter((l) => refusedIds.has(l.id))).toEqual([]);
    // The outage is said in the app log once, then counted per 10 s, and once when it ends: not a line per refused request.
    const said = a.logs
      .slice(logged)
      .join('')
      .split('\n')
      .filter((line) => /audit (line|write)s?\b/.test(line))
      .map((line) => JSON.parse(line) as { level: number; msg: string });
    const outageMs = Date.now() - since;
    expect(said.filter((l) => l.level >= 40).length).toBeLessThanOrEqual(2 + Math.ceil(outageMs / 10_000));
    expect(said.filter((l) => /written again/.test(l.msg)).length).toBeGreaterThanOrEqual(1);
    expect(recoveredAt).toBeLessThan(slack(5_000, 20_000)); // 5 s idle, stretched by the measured load
    const refused = results.filter((r) => r.status === 503).length;
    console.log(`audit table outage: ${refused} request(s) refused 503; injecting again within ${recoveredAt} ms of the database accepting connections again`);
    const whole = await verifyLines();
    expect(whole.code, whole.lines.join('\n')).toBe(0);
  });

  it('a commit whose answer was lost is not written twice: the retry finds its lines by event id', async () => {
    const cutter = await startPgCutter(db.port);
    const c = await startProxy({ config: config('rc'), env: { ...env(), KEYWAY_TEST_DATABASE_URL: cutter.urlFor(db.url) } });
    try {
      expect(await get(c)).toEqual({ status: 200 });
      // The request's write-ahead line and its outcome.
      await until(async () => (await rowsOf('rc')).length === 2);
      cutter.arm('INSERT INTO keyway_audit_head');
      // The cut lands on the next commit: the write-ahead line's, so keyway does not know whether
      // the line is in and refuses the request (nothing sent), or the outcome's, after it was sent.
      expect([200, 503]).toContain((await get(c)).status);
      await cutter.cut();
      // The line went in; keyway was told nothing. It must neither write it again nor stay stuck.
      await until(async () => (await get(c)).status === 200, 10_000);
      await until(async () => (await rowsOf('rc')).length >= 3);
      const rows = await rowsOf('rc');
      expectWhole(rows);
    } finally {
      await c.stop();
      await cutter.close();
    }
    const whole = await verifyLines();
    expect(whole.code, whole.lines.join('\n')).toBe(0);
  });

  it('kill -9 of a writer, then a restart: the chain goes on where it ended', async () => {
    const home = makeHome();
    mkdirSync(join(home, 'config'), { recursive: true });
    writeFileSync(
      join(home, 'config', 'keyway.yaml'),
      stringify({
        proxy: { upstream_ca: [TLS_FIXTURES.caPath], allow_networks: ['127.0.0.0/8'], hosts: Object.fromEntries(TEST_HOSTS.map((h) => [h, '127.0.0.1'])) },
        ...config('rk'),
      }),
    );
    const childEnv = cleanEnv({ ...env(), HOME: home });
    const through = (port: number) => ({ url: `http://127.0.0.1:${port}`, caPath: join(home, 'certs', 'ca.pem') });
    const first = await startChildProxy({ cli: SRC_CLI, home, env: childEnv });
    for (let i = 0; i < 3; i++) expect(await get(through(first.port))).toEqual({ status: 200 });
    await until(async () => (await rowsOf('rk')).length >= 3);
    first.child.kill('SIGKILL');
    await new Promise((r) => first.child.once('exit', r));
    outputs.push(first.stdout(), first.stderr());
    const second = await startChildProxy({ cli: SRC_CLI, home, env: childEnv });
    try {
      for (let i = 0; i < 3; i++) expect(await get(through(second.port))).toEqual({ status: 200 });
      await until(async () => (await rowsOf('rk')).length >= 6);
    } finally {
      expect(await second.stop()).toBe(0);
      outputs.push(second.stdout(), second.stderr());
    }
    expectWhole(await rowsOf('rk'));
    const whole = await verifyLines();
    expect(whole.code, whole.lines.join('\n')).toBe(0);
  });

  it('a second keyway with the same replica id is refused at start, naming the reason', async () => {
    const started = startProxy({ config: config('ra'), env: env() });
    await expect(started).rejects.toMatchObject({ code: 'audit_invalid' });
    await expect(started).rejects.toThrow(/another keyway is writing the audit chain of replica "ra"/);
  });

  it('a row forged past the head while its keyway was stopped is not adopted by the restart: verify names it', async () => {
    const first = await startProxy({ config: config('rf'), env: env() });
    expect(await get(first)).toEqual({ status: 200 });
    await until(async () => (await rowsOf('rf')).length >= 1);
    await first.stop();
    const last = (await rowsOf('rf')).at(-1) as AuditRow;
    // Chained correctly after the last row (no key is needed for that): only the head row's MAC tells it apart.
    const { seq: _seq, prev: _prev, hash, ...body } = JSON.parse(last.line) as Record<string, unknown>;
    const forgedId = randomUUID();
    const forged = sealLine(JSON.stringify({ ...body, id: forgedId, path: '/forged' }), last.seq + 1, hash as string);
    await db.query('INSERT INTO keyway_audit (replica, seq, event_id, ts, line) VALUES ($1, $2, $3, now(), $4)', [
      'rf',
      last.seq + 1,
      forgedId,
      forged.line.trim(),
    ]);
    const second = await startProxy({ home: first.home, config: config('rf'), env: env() });
    try {
      expect(await get(second)).toEqual({ status: 200 });
      await until(async () => (await rowsOf('rf')).length >= last.seq + 2);
    } finally {
      await second.stop();
    }
    expect(await verifyLines()).toEqual({
      code: 1,
      lines: [`replica rf: seq ${last.seq + 2}: prev does not match the hash of seq ${last.seq + 1}: a line before it was edited or replaced`],
    });
    await db.query(`DELETE FROM keyway_audit WHERE replica = 'rf'`);
    await db.query(`DELETE FROM keyway_audit_head WHERE replica = 'rf'`);
  });

  it('batches: 2000 parallel writes go in as a few statements, in the order they were made, one chain', async () => {
    const batches: number[] = [];
    const writer = await TableAuditWriter.open({
      url: db.url,
      replica: 'rw',
      headKey: deriveAuditHeadKey(Buffer.from(masterKey, 'base64')),
      onBatch: (seconds, ok) => {
        expect(ok).toBe(true);
        batches.push(seconds);
      },
    });
    const started = performance.now();
    try {
      await Promise.all(
        Array.from({ length: 2000 }, (_, i) =>
          writer.write({
            ts: new Date().toISOString(),
            id: randomUUID(),
            agent: 'agent-w',
            grant: null,
            decision: 'tunnel',
            code: null,
            method: null,
            host: 'api.example.test',
            port: 443,
            path: `/n/${i}`,
            status: null,
            duration_ms: 1,
            refreshed: false,
            client: '127.0.0.1',
          }),
        ),
      );
    } finally {
      await writer.close();
    }
    const ms = performance.now() - started;
    const rows = await rowsOf('rw');
    expectWhole(rows);
    expect(rows.map((r) => JSON.parse(r.line).path)).toEqual(Array.from({ length: 2000 }, (_, i) => `/n/${i}`));
    expect(batches.length).toBeLessThan(20);
    console.log(`audit table: 2000 parallel lines in ${batches.length} statement(s), ${ms.toFixed(0)} ms in all`);
    const whole = await verifyLines();
    expect(whole.code, whole.lines.join('\n')).toBe(0);
  });

  it('an owed change line already in the table (its writer killed before removing the record) is found by its event id, not written again; one not there is written once', async () => {
    const setSecretLines = async () =>
      (await rowsOf(CLI_CHAIN))
        .map((r) => JSON.parse(r.line) as { id: string; ts: string; action: string; message?: string })
        .filter((l) => l.action === 'grants.set_secret');
    const set = await cli(a, ['secrets', 'set', 'api', '--stdin'], SECRET);
    expect(set.code, set.stderr).toBe(0);
    const [written] = await setSecretLines();
    expect(written).toBeDefined();
    // The record as a `secrets set` killed between its line and the record's removal leaves it (inside
    // the database's transactions, where the file kill hook cannot reach): naming the line's id, its process gone.
    const owe = async (ids: string[]) => {
      const store = await PostgresStore.open(db.url, Buffer.from(masterKey, 'base64'));
      try {
        const record: OwedLineRecord = {
          line: { action: 'grants.set_secret', client: 'cli', actor: 'alice', agent: null, grant: 'api', changed: 'secret', host: hostname(), port: 0 },
          owner: { holder: { ...thisHolder(), boot: 'another-boot' }, at: written!.ts },
          ids,
        };
        await store.update((d) => d.set(`${OWED_LINE_PREFIX}${randomUUID()}`, record));
      } finally {
        await store.end();
      }
    };
    const owedLeft = async () => {
      const store = await PostgresStore.open(db.url, Buffer.from(masterKey, 'base64'));
      try {
        return store.entries(OWED_LINE_PREFIX);
      } finally {
        await store.end();
      }
    };
    await owe([written!.id]);
    const probe = await cli(a, ['grants', 'add', 'owed-probe', '--type', 'bearer', '--domains', 'other.example.test']);
    expect(probe.code, probe.stderr).toBe(0);
    expect(await setSecretLines()).toHaveLength(1);
    expect(await owedLeft()).toEqual([]);

    // Named by an id no line carries (killed before its line): written by the next command, once.
    await owe([randomUUID()]);
    const removed = await cli(a, ['grants', 'rm', 'owed-probe']);
    expect(removed.code, removed.stderr).toBe(0);
    const lines = await setSecretLines();
    expect(lines).toHaveLength(2);
    expect(lines[1]!.message).toMatch(/written at the next open/);
    expect(await owedLeft()).toEqual([]);
    const whole = await verifyLines();
    expect(whole.code, whole.lines.join('\n')).toBe(0);
  });
});
