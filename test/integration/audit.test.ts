import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFile, mkdir, mkdtemp, readFile, rename, rm, rmdir, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditWriter, GENESIS_HASH, readAudit, stripQuery, tailAudit, verifyAudit } from '../../src/audit/index.ts';
import { createAppLogger } from '../../src/log/logger.ts';
import type { AuditEvent, AuditLine } from '../../src/audit/index.ts';

const run = promisify(execFile);
const FIXTURE = new URL('../fixtures/audit-writer.ts', import.meta.url).pathname;

const PRODUCT_FIELDS = ['ts', 'id', 'agent', 'grant', 'decision', 'code', 'method', 'host', 'port', 'path', 'status', 'duration_ms', 'refreshed', 'client'];

let dir: string;
let opts: { path: string; headPath: string; headKey: Buffer };

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keyway-audit-'));
  opts = { path: join(dir, 'logs', 'audit.jsonl'), headPath: join(dir, 'data', 'audit.head'), headKey: randomBytes(32) };
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function event(i: number, over: Partial<AuditEvent> = {}): AuditEvent {
  return {
    ts: new Date(Date.UTC(2025, 0, 1, 0, 0, i)).toISOString(),
    id: `req-${i}`,
    agent: 'agent-a',
    grant: 'github',
    decision: 'inject',
    code: null,
    method: 'GET',
    host: 'api.github.com',
    port: 443,
    path: `/repos/${i}`,
    status: 200,
    duration_ms: 12,
    refreshed: false,
    client: '127.0.0.1',
    ...over,
  };
}

async function writeLog(n: number): Promise<void> {
  const writer = await AuditWriter.open(opts);
  for (let i = 1; i <= n; i++) await writer.write(event(i));
  await writer.close();
}

async function readRaw(): Promise<string[]> {
  return (await readFile(opts.path, 'utf8')).split('\n').filter((l) => l !== '');
}

async function writeRaw(lines: string[]): Promise<void> {
  await writeFile(opts.path, lines.map((l) => `${l}\n`).join(''));
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

describe('audit lines', () => {
  it('carry every field of the product contract audit line in order, no query string, and a valid chain', async () => {
    const writer = await AuditWriter.open(opts);
    await writer.write(event(1, { path: '/search?q=secret-canary&access_token=abc' }));
    await writer.write(event(2, { decision: 'deny', code: 'policy_denied', rule: 'no-delete' }));
    await writer.write(event(3, { decision: 'tunnel', method: null, path: null, status: null, grant: null }));
    await writer.close();

    const raw = await readFile(opts.path, 'utf8');
    expect(raw).not.toContain('secret-canary');
    const lines = raw
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as AuditLine);
    expect(lines).toHaveLength(3);
    for (const line of lines) {
      const keys = Object.keys(line);
      expect(keys.slice(0, PRODUCT_FIELDS.length)).toEqual(PRODUCT_FIELDS);
      expect(keys.slice(-3)).toEqual(['seq', 'prev', 'hash']);
    }
    expect(lines[0]?.path).toBe('/search');
    expect(lines[1]?.['rule']).toBe('no-delete');
    expect(lines.map((l) => l.seq)).toEqual([1, 2, 3]);
    expect(lines[0]?.prev).toBe(GENESIS_HASH);
    expect(lines[1]?.prev).toBe(lines[0]?.hash);
    expect(lines[2]?.prev).toBe(lines[1]?.hash);

    expect((await stat(opts.path)).mode & 0o777).toBe(0o600);
    expect((await stat(opts.headPath)).mode & 0o777).toBe(0o600);
    const head = JSON.parse(await readFile(opts.headPath, 'utf8')) as Record<string, unknown>;
    expect(head).toMatchObject({ seq: 3, hash: lines[2]?.hash });
    expect(await verifyAudit(opts)).toEqual({ ok: true, lines: 3, problems: [] });
  });

  it('stripQuery cuts at ? or #', () => {
    expect(stripQuery('/a/b?x=1#f')).toBe('/a/b');
    expect(stripQuery('/a#frag')).toBe('/a');
    expect(stripQuery('/plain')).toBe('/plain');
    expect(stripQuery(null)).toBeNull();
  });
});

describe('verifyAudit', () => {
  beforeEach(async () => {
    await writeLog(10);
  });

  it('passes a good log', async () => {
    expect(await verifyAudit(opts)).toEqual({ ok: true, lines: 10, problems: [] });
  });

  it('finds an edited line', async () => {
    const lines = await readRaw();
    lines[4] = (lines[4] ?? '').replace('"status":200', '"status":500');
    await writeRaw(lines);
    const result = await verifyAudit(opts);
    expect(result.ok).toBe(false);
    expect(result.problems).toEqual([{ line: 5, reason: expect.stringContaining('edited') }]);
  });

  it('finds a removed middle line', async () => {
    const lines = await readRaw();
    lines.splice(4, 1);
    await writeRaw(lines);
    const result = await verifyAudit(opts);
    expect(result.ok).toBe(false);
    expect(result.problems).toEqual([{ line: 5, reason: expect.stringContaining('jumps from 4 to 6') }]);
  });

  it('finds an inserted line', async () => {
    const lines = await readRaw();
    lines.splice(4, 0, lines[2] ?? '');
    await writeRaw(lines);
    const result = await verifyAudit(opts);
    expect(result.ok).toBe(false);
    expect(result.problems).toEqual([{ line: 5, reason: expect.stringContaining('seq 3 after seq 4') }]);
  });

  it('finds two swapped lines', async () => {
    const lines = await readRaw();
    const [a, b] = [lines[4] ?? '', lines[5] ?? ''];
    lines[4] = b;
    lines[5] = a;
    await writeRaw(lines);
    const result = await verifyAudit(opts);
    expect(result.ok).toBe(false);
    expect(result.problems.map((p) => p.line)).toEqual([5, 6]);
  });

  it('finds a removed tail through the head file', async () => {
    const lines = await readRaw();
    await writeRaw(lines.slice(0, -2));
    const result = await verifyAudit(opts);
    expect(result.ok).toBe(false);
    expect(result.lines).toBe(8);
    expect(result.problems).toEqual([{ line: 8, reason: expect.stringContaining('tail removed') }]);
  });

  it('finds a tampered head file', async () => {
    const head = JSON.parse(await readFile(opts.headPath, 'utf8')) as { seq: number; hash: string; mac: string };
    await writeFile(opts.headPath, JSON.stringify({ ...head, seq: 8 }));
    const result = await verifyAudit(opts);
    expect(result.ok).toBe(false);
    expect(result.problems).toEqual([{ line: 0, reason: expect.stringContaining('tampered') }]);
  });

  it('reports a missing head file and unparseable lines', async () => {
    await rm(opts.headPath);
    await appendFile(opts.path, 'not json\n');
    const result = await verifyAudit(opts);
    expect(result.problems.map((p) => p.line)).toEqual([11, 0]);
  });

  it('accepts a log that runs ahead of its head', async () => {
    const head = await readFile(opts.headPath);
    const writer = await AuditWriter.open(opts);
    await writer.write(event(11));
    await writer.close();
    await writeFile(opts.headPath, head);
    // Intact, and the line past the head is named: a removal among such lines would not show.
    expect(await verifyAudit(opts)).toEqual({ ok: true, lines: 11, problems: [], unvouched: 1 });
  });
});

describe('AuditWriter', () => {
  it('keeps one chain when two processes append to the same file', async () => {
    const key = opts.headKey.toString('hex');
    // Both children wait for the same moment, so start-up time does not run them one after the other.
    const startAt = String(Date.now() + 1000);
    const child = (agent: string) => run(process.execPath, [FIXTURE, opts.path, opts.headPath, key, '200', agent, startAt]);
    await Promise.all([child('p1'), child('p2')]);

    const lines = await collect(readAudit(opts.path));
    expect(lines).toHaveLength(400);
    for (const agent of ['p1', 'p2']) {
      const ids = lines.filter((l) => l.agent === agent).map((l) => l.id);
      expect(ids).toEqual(Array.from({ length: 200 }, (_, i) => `${agent}-${i}`));
    }
    // Intact, and vouched for to the last line: each writer seals the head at the log's end as it
    // closes (the head it published itself may be behind the other's lines).
    expect(await verifyAudit(opts)).toEqual({ ok: true, lines: 400, problems: [] });
  });

  it('keeps the order of 2000 parallel writes', async () => {
    const writer = await AuditWriter.open(opts);
    await Promise.all(Array.from({ length: 2000 }, (_, i) => writer.write(event(i))));
    await writer.close();
    const lines = await collect(readAudit(opts.path));
    expect(lines.map((l) => l.id)).toEqual(Array.from({ length: 2000 }, (_, i) => `req-${i}`));
    expect(lines.map((l) => l.seq)).toEqual(Array.from({ length: 2000 }, (_, i) => i + 1));
    expect(await verifyAudit(opts)).toEqual({ ok: true, lines: 2000, problems: [] });
  });

  it('rejects and turns unhealthy when the log cannot be written, then recovers', async () => {
    const writer = await AuditWriter.open(opts);
    await writer.write(event(1));
    expect(writer.healthy).toBe(true);

    const aside = `${opts.path}.aside`;
    await rename(opts.path, aside);
    await mkdir(opts.path); // the log path is now a directory
    await expect(writer.write(event(2))).rejects.toMatchObject({ code: 'audit_unavailable' });
    expect(writer.healthy).toBe(false);

    await rmdir(opts.path);
    await rename(aside, opts.path);
    await writer.write(event(3));
    expect(writer.healthy).toBe(true);
    await writer.close();

    const lines = await collect(readAudit(opts.path));
    // The line that failed was kept in memory and written first once the log could be written.
    expect(lines.map((l) => [l.id, l.seq])).toEqual([
      ['req-1', 1],
      ['req-2', 2],
      ['req-3', 3],
    ]);
    expect((await verifyAudit(opts)).ok).toBe(true);
  });

  it('keeps a torn last line aside, records it in its place, and continues the chain after that (issue 60)', async () => {
    await writeLog(3);
    await appendFile(opts.path, '{"ts":"2025-01-01T00:00:0'); // a crash mid-append
    const writer = await AuditWriter.open(opts);
    await writer.write(event(4));
    await writer.close();
    const result = await verifyAudit(opts);
    expect(result).toMatchObject({ ok: true, lines: 5, problems: [] });
    expect(result.crash_artifacts).toEqual([expect.objectContaining({ kind: 'recovered', line: 4, seq: 4, kept_file: 'matches' })]);
  });

  it('continues a truncated log with a visible gap instead of reusing seq numbers', async () => {
    await writeLog(5);
    await truncate(opts.path, 0);
    const writer = await AuditWriter.open(opts);
    await writer.write(event(6));
    await writer.close();
    const [line] = await collect(readAudit(opts.path));
    expect(line?.seq).toBe(6);
    const result = await verifyAudit(opts);
    expect(result.problems).toEqual([{ line: 1, reason: expect.stringContaining('jumps from 0 to 6') }]);
  });

  it('rejects writes after close', async () => {
    const writer = await AuditWriter.open(opts);
    await writer.close();
    await expect(writer.write(event(1))).rejects.toMatchObject({ code: 'audit_unavailable' });
  });
});

describe('readAudit and tailAudit', () => {
  beforeEach(async () => {
    const writer = await AuditWriter.open(opts);
    for (let i = 1; i <= 6; i++) {
      await writer.write(event(i, { agent: i % 2 === 0 ? 'even' : 'odd', decision: i === 3 ? 'deny' : 'inject' }));
    }
    await writer.close();
  });

  it('filters by field and time', async () => {
    const ids = async (f: Parameters<typeof readAudit>[1]) => (await collect(readAudit(opts.path, f))).map((l) => l.id);
    expect(await ids({ agent: 'even' })).toEqual(['req-2', 'req-4', 'req-6']);
    expect(await ids({ decision: 'deny' })).toEqual(['req-3']);
    expect(await ids({ host: 'API.GITHUB.COM', agent: 'odd' })).toEqual(['req-1', 'req-3', 'req-5']);
    const since = new Date(Date.UTC(2025, 0, 1, 0, 0, 2));
    const until = new Date(Date.UTC(2025, 0, 1, 0, 0, 4));
    expect(await ids({ since, until })).toEqual(['req-2', 'req-3']);
    expect(await collect(readAudit(join(dir, 'nope.jsonl')))).toEqual([]);
  });

  it('tails the last lines and follows appends until aborted', async () => {
    expect((await collect(tailAudit(opts.path, { lines: 2, follow: false }))).map((l) => l.id)).toEqual(['req-5', 'req-6']);

    const ac = new AbortController();
    const seen: string[] = [];
    let started: () => void = () => undefined;
    const firstLine = new Promise<void>((resolve) => (started = resolve));
    const following = (async () => {
      for await (const line of tailAudit(opts.path, { lines: 1, follow: true, signal: ac.signal, intervalMs: 20 })) {
        seen.push(line.id);
        if (seen.length === 1) started();
        if (seen.length === 3) ac.abort();
      }
    })();
    await firstLine; // the initial lines are read before anything is appended
    const writer = await AuditWriter.open(opts);
    await writer.write(event(7));
    await writer.write(event(8));
    await writer.close();
    await following;
    expect(seen).toEqual(['req-6', 'req-7', 'req-8']);
  });
});

describe('createAppLogger', () => {
  it('redacts secret headers and fields', async () => {
    const out: string[] = [];
    const logger = createAppLogger({ destination: { write: (s: string) => void out.push(s) } });
    logger.info({ req: { headers: { authorization: 'Bearer canary-1', host: 'api.github.com' } } }, 'request');
    logger.info({ headers: { 'proxy-authorization': 'Basic canary-2', Cookie: 'canary-3' } }, 'headers');
    logger.info({ token: 'canary-4', grant: { refreshToken: 'canary-5', id: 'github' } }, 'fields');
    logger.info({ res: { headers: { 'set-cookie': ['canary-6'] } }, key: 'canary-7' }, 'more');
    const text = out.join('');
    expect(text).not.toContain('canary');
    expect(text).toContain('[redacted]');
    expect(text).toContain('api.github.com');
    expect(text).toContain('"id":"github"');
  });
});
