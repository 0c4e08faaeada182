// The audit writer under faults, one behaviour per test (the hostile suite measures them together):
// it recovers with no traffic, keeps the lines it could not write, sees a replaced file before the
// next request is injected, refuses before the room for lines runs out (RLIMIT_FSIZE near the log's
// end), and survives a file-size limit (SIGXFSZ) without leaving a torn line.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditWriter, readAudit, verifyAudit } from '../../src/audit/index.ts';
import { injectEvent } from '../helpers/audit-events.ts';
import { exchangePaths, fileBackInPlace, folderInPlaceOf } from '../helpers/exchange.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { runProcess, startProxy, type TestProxy } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { slack } from '../helpers/load.ts';

const event = injectEvent;

function writerOptions() {
  const dir = mkdtempSync(join(tmpdir(), 'keyway-audit-faults-'));
  return { path: join(dir, 'logs', 'audit.jsonl'), headPath: join(dir, 'data', 'audit-head.json'), headKey: randomBytes(32) };
}

async function until(check: () => boolean, limitMs: number): Promise<number> {
  const started = performance.now();
  while (!check()) {
    if (performance.now() - started > limitMs) return Number.POSITIVE_INFINITY;
    await new Promise((r) => setTimeout(r, 5));
  }
  return performance.now() - started;
}

async function ids(path: string): Promise<string[]> {
  const out: string[] = [];
  for await (const line of readAudit(path)) out.push(line.id);
  return out;
}

describe('audit writer faults', () => {
  it('recovers by itself, with no further writes, within 1 s of the fault clearing', async () => {
    const opts = writerOptions();
    const writer = await AuditWriter.open(opts);
    await writer.write(event(1));
    folderInPlaceOf(opts.path);
    await until(() => !writer.healthy, 1_000);
    await expect(writer.write(event(2))).rejects.toMatchObject({ code: 'audit_unavailable' });
    expect(writer.healthy).toBe(false);
    fileBackInPlace(opts.path);
    expect(await until(() => writer.healthy, 2_000)).toBeLessThan(1_000);
    await writer.close();
    // The line that failed was kept and written once the file was back.
    expect(writer.keptLines).toBe(0);
    expect(await ids(opts.path)).toEqual(['req-1', 'req-2']);
    expect((await verifyAudit(opts)).ok).toBe(true);
  });

  it('keeps probing until the fault clears, even when a probe falls in the pause after a failed batch (25 rounds)', async () => {
    const opts = writerOptions();
    const writer = await AuditWriter.open(opts);
    const recoveries: number[] = [];
    for (let round = 0; round < 25; round++) {
      await writer.write(event(round * 100));
      // Synchronous steps: the writer, in this process, cannot run between them.
      folderInPlaceOf(opts.path);
      // Refusals keep the drain loop busy while the fault holds. The first probe is due 100 ms after
      // the fault was seen; the traffic ends at a different moment around it each round, so in some
      // rounds that probe fires in the loop's pause after its last failed batch.
      const started = performance.now();
      const trafficMs = 70 + round * 2;
      for (let i = 1; i <= 200 && performance.now() - started < trafficMs; i++) {
        void writer.write(event(round * 1000 + i)).catch(() => undefined);
        await new Promise((r) => setTimeout(r, 2));
      }
      await new Promise((r) => setTimeout(r, 40));
      fileBackInPlace(opts.path);
      recoveries.push(await until(() => writer.healthy, 2_000));
    }
    await writer.close();
    expect(Math.max(...recoveries)).toBeLessThan(1_000);
    expect((await verifyAudit(opts)).problems).toEqual([]);
  });

  it('sees its folder replaced by a file with no write (its look every 100 ms), and recovers when it is back', async () => {
    const opts = writerOptions();
    const writer = await AuditWriter.open(opts);
    await writer.write(event(1));
    const logs = join(opts.path, '..');
    // In one step each way (test/helpers/exchange.ts): the writer would make the folder again in between.
    writeFileSync(`${logs}.aside`, '');
    exchangePaths(logs, `${logs}.aside`);
    // Seen from the watch alone: nothing was written since the fault.
    expect(await until(() => !writer.healthy, 1_000)).toBeLessThan(1_000);
    exchangePaths(`${logs}.aside`, logs);
    unlinkSync(`${logs}.aside`);
    expect(await until(() => writer.healthy, 2_000)).toBeLessThan(1_000);
    await writer.write(event(2));
    await writer.close();
    expect(await ids(opts.path)).toEqual(['req-1', 'req-2']);
  });
});

describe('a write-ahead line whose batch failed (issue 60)', () => {
  it('is never written later: its request was refused, so no line may say its credential was sent', async () => {
    const opts = writerOptions();
    const writer = await AuditWriter.open(opts);
    await writer.write(event(1));
    folderInPlaceOf(opts.path);
    // The request's write-ahead line fails: the stage refuses it (503 audit_unavailable), nothing is sent.
    await expect(writer.write({ ...event(2), status: null, phase: 'sent' })).rejects.toMatchObject({ code: 'audit_unavailable' });
    // Its outcome, the refusal, is kept like any line and written once the log is back.
    void writer.write({ ...event(2), decision: 'error', code: 'audit_unavailable', status: 503 }).catch(() => undefined);
    fileBackInPlace(opts.path);
    expect(await until(() => writer.healthy, 2_000)).toBeLessThan(2_000);
    await writer.write(event(3));
    await writer.close();
    // The file as it is (readers fold a request's two lines into one).
    const lines = readFileSync(opts.path, 'utf8')
      .trim()
      .split('\n')
      .map((text) => JSON.parse(text) as { id: string; phase?: string; code: string | null })
      .map((line) => [line.id, line.phase, line.code]);
    expect(lines).toEqual([
      ['req-1', undefined, null],
      ['req-2', undefined, 'audit_unavailable'],
      ['req-3', undefined, null],
    ]);
    expect((await verifyAudit(opts)).ok).toBe(true);
  });
});

describe('a request after the audit file is replaced', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let dispatcher: ProxyAgent;

  beforeAll(async () => {
    upstream = await startUpstream();
    proxy = await startProxy({ grants: [{ id: 'github', type: 'bearer', domains: ['api.example.test'], secret: CANARY }] });
    dispatcher = new ProxyAgent({ uri: proxy.url, requestTls: { ca: [readFileSync(proxy.caPath, 'utf8')] } });
  });
  afterAll(async () => {
    await dispatcher?.close();
    await proxy?.stop();
    await upstream?.close();
  });

  const get = async () => {
    const res = await request(`https://api.example.test:${upstream.port}/echo`, { dispatcher, signal: AbortSignal.timeout(slack(5_000)) });
    await res.body.text();
    return res.statusCode;
  };

  it('is refused with 503 and nothing reaches the upstream; the next after the fault clears goes through', async () => {
    expect(await get()).toBe(200);
    await new Promise((r) => setTimeout(r, 50));
    const before = upstream.seen.length;
    folderInPlaceOf(proxy.auditPath);
    await new Promise((r) => setTimeout(r, 20));
    expect(await get()).toBe(503);
    expect(upstream.seen.length).toBe(before);
    fileBackInPlace(proxy.auditPath);
    await new Promise((r) => setTimeout(r, 300)); // the writer's probe runs every 100 ms
    expect(await get()).toBe(200);
  });

  it('says so in the app log once, not once per refused request, and once when the log is back (issue 60)', async () => {
    expect(await get()).toBe(200);
    const logged = proxy.logs.length;
    folderInPlaceOf(proxy.auditPath);
    await new Promise((r) => setTimeout(r, 20));
    for (let i = 0; i < 12; i++) expect(await get()).toBe(503);
    fileBackInPlace(proxy.auditPath);
    await new Promise((r) => setTimeout(r, 300));
    expect(await get()).toBe(200);
    const said = proxy.logs
      .slice(logged)
      .join('')
      .split('\n')
      .filter((line) => /audit (line|write)s?\b/.test(line))
      .map((line) => JSON.parse(line) as { level: number; msg: string; lines?: number });
    // One error when writes start failing (before: one per failed line, 8 for these 12 refusals);
    // the failed writes are counted, and the count said when the log is back.
    expect(said.filter((l) => l.level >= 40)).toHaveLength(1);
    expect(said.filter((l) => l.level >= 40)[0]!.msg).toMatch(/^audit lines cannot be written; requests that would inject are refused/);
    const back = said.filter((l) => l.level === 30 && /written again/.test(l.msg));
    expect(back).toHaveLength(1);
    expect(back[0]!.lines).toBeGreaterThanOrEqual(1);
  });
});

describe('a file-size limit (RLIMIT_FSIZE, as a full disk)', () => {
  it('turns unhealthy before any append fails when the room left drops under the reserve, still writes what it promised, and recovers', async () => {
    const opts = writerOptions();
    const script = fileURLToPath(new URL('../helpers/audit-room-child.ts', import.meta.url));
    const res = await runProcess(process.execPath, [script], {
      PATH: process.env['PATH'] ?? '',
      AUDIT_PATH: opts.path,
      HEAD_PATH: opts.headPath,
      HEAD_KEY: opts.headKey.toString('base64'),
    });
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    const seen = JSON.parse(res.stdout) as Record<string, unknown>;
    expect(seen).toMatchObject({
      reservedBefore: true,
      inFlight: true,
      healthyDuring: false,
      reservedDuring: false,
      failures: [],
      healthyAfterWrites: false,
      healthyAfter: true,
      reservedAfter: true,
      dropped: 0,
    });
    // Seen from the writer's own refresh (every 100 ms), with no append failing.
    expect(seen['waitedMs']).toBeLessThan(1_000);
    expect(await ids(opts.path)).toEqual(['req-1', 'req-2', 'req-3', 'req-4']);
    expect((await verifyAudit(opts)).ok).toBe(true);
  });

  it('fails the write with EFBIG instead of killing the process, cuts the partial line, and verifies after', async () => {
    const opts = writerOptions();
    const script = fileURLToPath(new URL('../helpers/audit-fsize-child.ts', import.meta.url));
    const res = await runProcess(process.execPath, [script], {
      PATH: process.env['PATH'] ?? '',
      AUDIT_PATH: opts.path,
      HEAD_PATH: opts.headPath,
      HEAD_KEY: opts.headKey.toString('base64'),
    });
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(JSON.parse(res.stdout)).toMatchObject({ failed: 'audit_unavailable', healthyDuring: false, healthyAfter: true });
    expect(await ids(opts.path)).toEqual(['req-1', 'req-2', 'req-3']);
    const result = await verifyAudit(opts);
    expect(result.problems).toEqual([]);
    expect(result.ok).toBe(true);
  });
});
