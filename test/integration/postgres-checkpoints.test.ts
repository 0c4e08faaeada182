// Signed checkpoints with audit.sink: postgres: each replica's chain is signed on its own, in
// keyway_audit_checkpoint, and exported one chain at a time to a bundle that verifies elsewhere with
// the public key. The attack: a database writer without the key rewrites a row (and every later
// hash), which the bundle's checkpoint catches.
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../src/audit/index.ts';
import { sealLine, serializeEvent } from '../../src/audit/record.ts';
import { rawConnect } from '../helpers/clients.ts';
import { makeHome, runCli, startProxy, type TestProxy } from '../helpers/keyway.ts';
import { startPostgres, type TestPostgres } from '../helpers/postgres.ts';

describe('audit checkpoints in PostgreSQL, per replica chain', () => {
  let db: TestPostgres;
  let a: TestProxy;
  let b: TestProxy;
  const masterKey = randomBytes(32).toString('base64');
  const env = () => ({ KEYWAY_TEST_DATABASE_URL: db.url, KEYWAY_MASTER_KEY: masterKey });
  const config = (replica: string) => ({
    store: { backend: 'postgres', url: 'env:KEYWAY_TEST_DATABASE_URL' },
    audit: { sink: 'postgres', replica, checkpoint_interval: 0 },
  });
  const since = new Date(Date.now() - 60_000).toISOString();

  beforeAll(async () => {
    db = await startPostgres();
    [a, b] = await Promise.all([startProxy({ config: config('ra'), env: env() }), startProxy({ config: config('rb'), env: env() })]);
    // A few lines in each chain: CONNECTs each keyway refuses (a malformed target).
    for (const p of [a, b]) for (let i = 0; i < 4; i++) expect((await rawConnect(p.port, `bad target ${i}`)).status).toBe(400);
    // Stop writes what is queued, then signs each chain's head.
    await Promise.all([a.stop(), b.stop()]);
  });

  afterAll(async () => {
    await db?.destroy();
  });

  const cli = (args: string[], extra: Record<string, string> = env()) => runCli(args, { KEYWAY_HOME: a.home, ...extra });

  it('each chain has its own signed checkpoint; export needs --replica with several, and the bundle verifies without the master key', async () => {
    const rows = (await db.query('SELECT replica, seq::int AS seq, line FROM keyway_audit_checkpoint ORDER BY replica, seq')).rows;
    expect(rows.map((r) => r.replica)).toEqual(['ra', 'rb']);
    expect(JSON.parse(rows[0].line)).toMatchObject({ replica: 'ra', seq: rows[0].seq });

    const ambiguous = await cli(['audit', 'export', '--since', since, '--out', join(a.home, 'x.json')]);
    expect(ambiguous.code).toBe(2);
    expect(ambiguous.stderr).toMatch(/--replica one of ra, rb/);

    const key = await cli(['audit', 'public-key']);
    writeFileSync(join(a.home, 'pub.pem'), key.stdout);
    for (const replica of ['ra', 'rb']) {
      const out = join(a.home, `${replica}.json`);
      const exported = await cli(['audit', 'export', '--since', since, '--replica', replica, '--out', out]);
      expect(exported.code, exported.stderr).toBe(0);
      const verified = await runCli(['audit', 'verify', '--bundle', out, '--public-key', join(a.home, 'pub.pem'), '--json'], { KEYWAY_HOME: makeHome() });
      expect(verified.code, verified.stdout).toBe(0);
      expect(JSON.parse(verified.stdout)).toMatchObject({ ok: true, first_seq: 1, last_seq: 4, covered_to: 4 });
    }
  });

  it('a row rewritten in the database, with every later hash recomputed, fails the exported bundle', async () => {
    const rows = (await db.query("SELECT seq::int AS seq, line FROM keyway_audit WHERE replica = 'ra' ORDER BY seq")).rows as Array<{
      seq: number;
      line: string;
    }>;
    let prev = JSON.parse(rows[0]!.line).prev as string;
    for (const row of rows) {
      const { seq, prev: _p, hash: _h, ...rest } = JSON.parse(row.line) as Record<string, unknown>;
      if (seq === 2) rest['code'] = 'self_check';
      const sealed = sealLine(serializeEvent(rest as unknown as AuditEvent), seq as number, prev);
      prev = sealed.hash;
      await db.query("UPDATE keyway_audit SET line = $1 WHERE replica = 'ra' AND seq = $2", [sealed.line.slice(0, -1), seq]);
    }
    const out = join(a.home, 'ra-tampered.json');
    const exported = await cli(['audit', 'export', '--since', since, '--replica', 'ra', '--out', out]);
    expect(exported.code, exported.stderr).toBe(0);
    const verified = await runCli(['audit', 'verify', '--bundle', out, '--public-key', join(a.home, 'pub.pem')], { KEYWAY_HOME: makeHome() });
    expect(verified.code).toBe(1);
    expect(verified.stdout).toMatch(/seq 4 is not the line keyway signed at/);
    expect(readFileSync(out, 'utf8')).toContain('self_check');
  });

  it('a row re-spelled so it hashes the same (a duplicate key before the real one) fails master-key verify and the bundle', async () => {
    const { line } = (await db.query("SELECT line FROM keyway_audit WHERE replica = 'rb' AND seq = 3")).rows[0] as { line: string };
    await db.query("UPDATE keyway_audit SET line = $1 WHERE replica = 'rb' AND seq = 3", [line.replace('{"ts":', '{"agent":"mallory","ts":')]);
    const verified = await cli(['audit', 'verify', '--json']);
    expect(verified.code, verified.stdout).toBe(1);
    expect(JSON.parse(verified.stdout).problems).toContainEqual({
      replica: 'rb',
      seq: 3,
      reason: expect.stringMatching(/seq 3 is not keyway's canonical form/),
    });
    const out = join(a.home, 'rb-respelled.json');
    expect((await cli(['audit', 'export', '--since', since, '--replica', 'rb', '--out', out])).code).toBe(0);
    const bundle = await runCli(['audit', 'verify', '--bundle', out, '--public-key', join(a.home, 'pub.pem')], { KEYWAY_HOME: makeHome() });
    expect(bundle.code).toBe(1);
    expect(bundle.stdout).toMatch(/lines: line 3: seq 3 is not keyway's canonical form/);
  });
});
