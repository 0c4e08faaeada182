import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditWriter, listRotated, prunedPathFor, readAudit, rotatedPath, tailAudit, verifyAudit } from '../../src/audit/index.ts';
import type { AuditEvent, AuditLine } from '../../src/audit/index.ts';
import { configSchema } from '../../src/config/schema/config.ts';
import { deriveAuditHeadKey } from '../../src/open-home.ts';
import { runCli } from '../helpers/keyway.ts';

// Rotation of the audit log by size: the chain (seq, prev) continues across files, verify walks every
// file oldest first and names the file and line of any damage, and query/tail read across files.
// A tiny max size (a few lines per file) makes a few hundred lines rotate dozens of times.

const run = promisify(execFile);
const FIXTURE = new URL('../fixtures/audit-writer.ts', import.meta.url).pathname;
const MAX = 4000; // bytes; a line is about 500, so about 8 lines per file

let dir: string;
let opts: { path: string; headPath: string; headKey: Buffer };

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keyway-rotation-'));
  opts = { path: join(dir, 'logs', 'audit.jsonl'), headPath: join(dir, 'data', 'audit-head.json'), headKey: randomBytes(32) };
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function event(i: number, over: Partial<AuditEvent> = {}): AuditEvent {
  return {
    ts: new Date(Date.UTC(2025, 0, 1, 0, 0, 0) + i * 1000).toISOString(),
    id: `req-${i}`,
    agent: i % 2 === 0 ? 'even' : 'odd',
    grant: i % 3 === 0 ? 'openai' : 'github',
    decision: i % 10 === 0 ? 'deny' : 'inject',
    code: i % 10 === 0 ? 'policy_denied' : null,
    method: 'GET',
    host: i % 3 === 0 ? 'api.openai.com' : 'api.github.com',
    port: 443,
    path: `/repos/${i}`,
    status: i % 10 === 0 ? 403 : 200,
    duration_ms: 12,
    refreshed: false,
    client: '127.0.0.1',
    ...over,
  };
}

async function writeLog(n: number, extra: { maxBytes?: number; keep?: number } = {}, from = 1): Promise<void> {
  const writer = await AuditWriter.open({ ...opts, maxBytes: MAX, keep: 1000, ...extra });
  // Sequential and in parallel waves, so both single-line and multi-line batches cross a rotation.
  for (let i = from; i < from + n; ) {
    const wave = Math.min(1 + (i % 5), from + n - i);
    await Promise.all(Array.from({ length: wave }, (_, k) => writer.write(event(i + k))));
    i += wave;
  }
  await writer.close();
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

async function rawLines(path: string): Promise<string[]> {
  return (await readFile(path, 'utf8')).split('\n').filter((l) => l !== '');
}

describe('rotation by size', () => {
  it('splits the log into files no larger than max_bytes whose names give their first seq, and verify passes across them', async () => {
    await writeLog(300);
    const rotated = await listRotated(opts.path);
    expect(rotated.length).toBeGreaterThan(20);
    let expectedFirst = 1;
    for (const file of rotated) {
      expect((await stat(file.path)).size).toBeLessThanOrEqual(MAX);
      const lines = (await rawLines(file.path)).map((l) => JSON.parse(l) as AuditLine);
      expect(file.firstSeq).toBe(expectedFirst);
      expect(file.path).toBe(rotatedPath(opts.path, expectedFirst));
      expect(lines[0]?.seq).toBe(expectedFirst);
      expectedFirst = lines.at(-1)!.seq + 1;
    }
    // The live file continues where the last rotated file ended: seq and prev carry on.
    const live = (await rawLines(opts.path)).map((l) => JSON.parse(l) as AuditLine);
    expect(live[0]?.seq).toBe(expectedFirst);
    const lastRotated = (await rawLines(rotated.at(-1)!.path)).map((l) => JSON.parse(l) as AuditLine).at(-1)!;
    expect(live[0]?.prev).toBe(lastRotated.hash);
    expect(live.at(-1)?.seq).toBe(300);
    // Names sort in chain order as plain text too (ls, shell globs).
    const names = (await readdir(join(dir, 'logs'))).filter((n) => /^audit\.\d+\.jsonl$/.test(n));
    expect(names.toSorted()).toEqual(rotated.map((f) => basename(f.path)));

    const result = await verifyAudit(opts);
    expect(result).toEqual({ ok: true, lines: 300, problems: [], files: [...rotated.map((f) => f.path), opts.path] });
  });

  it('reads every line across the files with readAudit, in order', async () => {
    await writeLog(300);
    const lines = await collect(readAudit(opts.path));
    expect(lines.map((l) => l.seq)).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
    expect(lines.map((l) => l.id)).toEqual(Array.from({ length: 300 }, (_, i) => `req-${i + 1}`));
  });

  it('writes a line larger than max_bytes into a file of its own rather than failing', async () => {
    const writer = await AuditWriter.open({ ...opts, maxBytes: 600, keep: 1000 });
    await writer.write(event(1));
    await writer.write(event(2, { rule: 'x'.repeat(2000) }));
    await writer.write(event(3));
    await writer.close();
    const rotated = await listRotated(opts.path);
    expect(rotated.map((f) => f.firstSeq)).toEqual([1, 2]);
    expect(await verifyAudit(opts)).toMatchObject({ ok: true, lines: 3 });
  });

  it('keeps one chain when two processes write across many rotations', async () => {
    const key = opts.headKey.toString('hex');
    const startAt = String(Date.now() + 1000);
    const child = (agent: string) => run(process.execPath, [FIXTURE, opts.path, opts.headPath, key, '200', agent, startAt, String(MAX), '1000']);
    await Promise.all([child('p1'), child('p2')]);

    const rotated = await listRotated(opts.path);
    expect(rotated.length).toBeGreaterThan(20);
    const lines = await collect(readAudit(opts.path));
    expect(lines).toHaveLength(400);
    expect(lines.map((l) => l.seq)).toEqual(Array.from({ length: 400 }, (_, i) => i + 1));
    for (const agent of ['p1', 'p2']) {
      expect(lines.filter((l) => l.agent === agent).map((l) => l.id)).toEqual(Array.from({ length: 200 }, (_, i) => `${agent}-${i}`));
    }
    // Both processes wrote into shared files: rotation happened under contention, not one process each.
    const mixed = await Promise.all(rotated.map(async (f) => new Set((await rawLines(f.path)).map((l) => (JSON.parse(l) as AuditLine).agent)).size));
    expect(mixed.some((n) => n === 2)).toBe(true);
    expect(await verifyAudit(opts)).toMatchObject({ ok: true, lines: 400, problems: [] });
  });

  it('continues the chain after a restart, from the newest rotated file when the live file is empty', async () => {
    await writeLog(40);
    // As after a crash between rotating and appending: the live file was renamed, none made yet.
    const first = JSON.parse((await rawLines(opts.path))[0]!) as AuditLine;
    await rename(opts.path, rotatedPath(opts.path, first.seq));
    // And with no head file to fall back on, the newest rotated file is what says where to go on.
    await unlink(opts.headPath);
    await writeLog(10, {}, 41);
    const lines = await collect(readAudit(opts.path));
    expect(lines.map((l) => l.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(await verifyAudit(opts)).toMatchObject({ ok: true, lines: 50 });
  });
});

describe('verify across rotated files', () => {
  beforeEach(async () => {
    await writeLog(300);
  });

  it('names the file and line of an edited line in a middle file', async () => {
    const rotated = await listRotated(opts.path);
    const middle = rotated[Math.floor(rotated.length / 2)]!;
    const lines = await rawLines(middle.path);
    lines[2] = lines[2]!.replace('"status":200', '"status":201').replace('"status":403', '"status":201');
    await writeFile(middle.path, lines.map((l) => `${l}\n`).join(''));

    const result = await verifyAudit(opts);
    expect(result.ok).toBe(false);
    expect(result.problems).toEqual([{ file: middle.path, line: 3, reason: expect.stringContaining('edited') }]);
  });

  it('names the file after a removed middle file', async () => {
    const rotated = await listRotated(opts.path);
    const i = Math.floor(rotated.length / 2);
    await unlink(rotated[i]!.path);

    const result = await verifyAudit(opts);
    expect(result.ok).toBe(false);
    expect(result.problems).toEqual([
      { file: rotated[i + 1]!.path, line: 1, reason: expect.stringMatching(/seq jumps from \d+ to \d+.*a whole file before this one was removed/) },
    ]);
  });

  it('finds two rotated files whose names were swapped', async () => {
    const rotated = await listRotated(opts.path);
    const [a, b] = [rotated[3]!, rotated[4]!];
    await rename(a.path, `${a.path}.tmp`);
    await rename(b.path, a.path);
    await rename(`${a.path}.tmp`, b.path);

    const result = await verifyAudit(opts);
    expect(result.ok).toBe(false);
    const files = new Set(result.problems.map((p) => p.file));
    expect(files).toContain(a.path);
    expect(files).toContain(b.path);
    expect(result.problems).toContainEqual({
      file: a.path,
      line: 1,
      reason: expect.stringContaining(`named for seq ${a.firstSeq} but its first line is seq ${b.firstSeq}`),
    });
  });

  it('finds the oldest file removed by hand (no rotation record covers it)', async () => {
    const rotated = await listRotated(opts.path);
    await unlink(rotated[0]!.path);
    const result = await verifyAudit(opts);
    expect(result.ok).toBe(false);
    expect(result.problems).toEqual([
      { file: rotated[1]!.path, line: 1, reason: expect.stringContaining('older files were removed without a rotation record') },
    ]);
  });

  it('finds a removed tail after the last rotation (the live file deleted)', async () => {
    await unlink(opts.path);
    const result = await verifyAudit(opts);
    expect(result.ok).toBe(false);
    expect(result.problems).toEqual([{ file: opts.path, line: 0, reason: expect.stringContaining('tail removed') }]);
  });
});

describe('keep: pruning old files', () => {
  it('deletes files past keep, records it, and verify still passes on what remains', async () => {
    await writeLog(300, { keep: 3 });
    const rotated = await listRotated(opts.path);
    expect(rotated).toHaveLength(3);
    expect(rotated[0]!.firstSeq).toBeGreaterThan(200);
    const pruned = JSON.parse(await readFile(prunedPathFor(opts.headPath), 'utf8')) as { seq: number };
    expect(pruned.seq).toBe(rotated[0]!.firstSeq - 1);
    const result = await verifyAudit(opts);
    expect(result).toMatchObject({ ok: true, problems: [] });
    const lines = await collect(readAudit(opts.path));
    expect(lines[0]?.seq).toBe(rotated[0]!.firstSeq);
    expect(lines.at(-1)?.seq).toBe(300);
    expect(result.lines).toBe(lines.length);
  });

  it('still finds a kept file removed by hand, and a forged rotation record', async () => {
    await writeLog(300, { keep: 3 });
    const rotated = await listRotated(opts.path);
    await unlink(rotated[0]!.path);
    const result = await verifyAudit(opts);
    expect(result.ok).toBe(false);
    expect(result.problems).toEqual([{ file: rotated[1]!.path, line: 1, reason: expect.stringContaining('does not start where rotation last pruned') }]);

    // Moving the record forward to hide the deletion needs the head key.
    const prunedPath = prunedPathFor(opts.headPath);
    const record = JSON.parse(await readFile(prunedPath, 'utf8')) as { seq: number; hash: string; mac: string };
    const first = JSON.parse((await rawLines(rotated[1]!.path))[0]!) as AuditLine;
    await writeFile(prunedPath, JSON.stringify({ ...record, seq: first.seq - 1, hash: first.prev }));
    const forged = await verifyAudit(opts);
    expect(forged.ok).toBe(false);
    expect(forged.problems).toContainEqual({ file: prunedPath, line: 0, reason: expect.stringContaining('pruned record tampered') });
  });

  it('passes when a crash left pruned files undeleted, and deletes them at the next rotation', async () => {
    await writeLog(100, { keep: 2 });
    const before = await listRotated(opts.path);
    // Put back a copy of a file the record already covers, as if the crash came before the unlink.
    const record = JSON.parse(await readFile(prunedPathFor(opts.headPath), 'utf8')) as { seq: number };
    const leftover = rotatedPath(opts.path, 1);
    await writeFile(leftover, '{"not":"checked"}\n');
    expect(record.seq).toBeGreaterThan(1);
    expect(await verifyAudit(opts)).toMatchObject({ ok: true });
    await writeLog(40, { keep: 2 }, 101);
    const after = await listRotated(opts.path);
    expect(after.map((f) => f.path)).not.toContain(leftover);
    expect(after).toHaveLength(2);
    expect(after[0]!.firstSeq).toBeGreaterThan(before[0]!.firstSeq);
    expect(await verifyAudit(opts)).toMatchObject({ ok: true });
  });
});

describe('query and tail across files', () => {
  beforeEach(async () => {
    await writeLog(300);
  });

  it('filters by agent, grant, decision, code, host and time range', async () => {
    const ids = async (f: Parameters<typeof readAudit>[1]) => (await collect(readAudit(opts.path, f))).map((l) => l.id);
    expect(await ids({ decision: 'deny' })).toEqual(Array.from({ length: 30 }, (_, i) => `req-${(i + 1) * 10}`));
    expect(await ids({ code: 'policy_denied', agent: 'even' })).toHaveLength(30);
    expect(await ids({ grant: 'openai', decision: 'deny' })).toEqual([
      'req-30',
      'req-60',
      'req-90',
      'req-120',
      'req-150',
      'req-180',
      'req-210',
      'req-240',
      'req-270',
      'req-300',
    ]);
    expect(await ids({ host: 'API.OPENAI.COM' })).toHaveLength(100);
    const at = (i: number) => new Date(Date.UTC(2025, 0, 1, 0, 0, 0) + i * 1000);
    // The range spans several files (about 8 lines each).
    expect(await ids({ since: at(5), until: at(45), agent: 'odd' })).toEqual(Array.from({ length: 20 }, (_, i) => `req-${5 + 2 * i}`));
  });

  it('tail -n reaches back into rotated files', async () => {
    const liveCount = (await rawLines(opts.path)).length;
    const n = liveCount + 20;
    const lines = await collect(tailAudit(opts.path, { lines: n, follow: false }));
    expect(lines.map((l) => l.seq)).toEqual(Array.from({ length: n }, (_, i) => 300 - n + 1 + i));
  });

  it('tail -f follows the log across rotations without skipping a line', async () => {
    const ac = new AbortController();
    const seen: number[] = [];
    let ready: () => void = () => undefined;
    const started = new Promise<void>((resolve) => (ready = resolve));
    const following = (async () => {
      for await (const line of tailAudit(opts.path, { lines: 1, follow: true, signal: ac.signal, intervalMs: 5 })) {
        seen.push(line.seq);
        if (seen.length === 1) ready();
        if (line.seq === 360) ac.abort();
      }
    })();
    await started;
    const writer = await AuditWriter.open({ ...opts, maxBytes: MAX, keep: 1000 });
    // Slow enough that the follower polls between rotations, fast enough that some polls see two.
    for (let i = 301; i <= 360; i++) {
      await writer.write(event(i));
      if (i % 3 === 0) await new Promise((r) => setTimeout(r, 4));
    }
    await writer.close();
    const timeout = setTimeout(() => ac.abort(), 10_000);
    await following;
    clearTimeout(timeout);
    expect(seen).toEqual(Array.from({ length: 61 }, (_, i) => 300 + i));
  });
});

describe('config and command line', () => {
  it('parses audit.max_bytes sizes and audit.keep, with defaults', () => {
    const parse = (audit: Record<string, unknown>) => configSchema.safeParse({ audit });
    expect(parse({}).data?.audit).toEqual({
      path: 'logs/audit.jsonl',
      max_bytes: 50 * 1024 * 1024,
      keep: 10,
      min_retention: 3_600_000,
      sink: 'file',
      refusal_budget: 20,
      refusal_interval: 10_000,
      checkpoint_interval: 300_000,
      write_ahead: true,
      export: [],
    });
    expect(parse({ max_bytes: '512KiB', keep: 3 }).data?.audit).toMatchObject({ max_bytes: 512 * 1024, keep: 3 });
    expect(parse({ max_bytes: 4000 }).data?.audit.max_bytes).toBe(4000);
    expect(parse({ max_bytes: '1GB' }).data?.audit.max_bytes).toBe(1e9);
    expect(parse({ max_bytes: 'lots' }).error?.issues[0]?.path).toEqual(['audit', 'max_bytes']);
    expect(parse({ keep: 0 }).success).toBe(false);
  });

  it('`keyway audit verify` and `audit query --json` work across rotated files in a home', async () => {
    const home = join(dir, 'home');
    mkdirSync(join(home, 'config'), { recursive: true });
    writeFileSync(join(home, 'config', 'keyway.yaml'), stringify({ audit: { max_bytes: MAX, keep: 1000 } }));
    const masterKey = randomBytes(32);
    const env = { KEYWAY_HOME: home, KEYWAY_MASTER_KEY: masterKey.toString('base64') };
    opts = { path: join(home, 'logs', 'audit.jsonl'), headPath: join(home, 'data', 'audit-head.json'), headKey: deriveAuditHeadKey(masterKey) };
    await writeLog(120);
    const rotated = await listRotated(opts.path);
    expect(rotated.length).toBeGreaterThan(5);

    const ok = await runCli(['audit', 'verify'], env);
    expect(ok.stderr).toBe('');
    expect(ok.stdout).toContain(`audit log intact: 120 lines in ${rotated.length + 1} files`);
    expect(ok.code).toBe(0);

    const q = await runCli(
      ['audit', 'query', '--json', '--agent', 'even', '--decision', 'deny', '--since', '2025-01-01T00:00:20Z', '--until', '2025-01-01T00:01:31Z'],
      env,
    );
    expect(q.code, q.stderr).toBe(0);
    const found = q.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as AuditLine);
    expect(found.map((l) => l.id)).toEqual(['req-20', 'req-30', 'req-40', 'req-50', 'req-60', 'req-70', 'req-80', 'req-90']);
    const byCode = await runCli(['audit', 'query', '--code', 'policy_denied', '--host', 'api.openai.com'], env);
    expect(byCode.code, byCode.stderr).toBe(0);
    expect(byCode.stdout.trim().split('\n')).toHaveLength(4); // req-30, 60, 90, 120

    const middle = rotated[2]!;
    const lines = await rawLines(middle.path);
    lines[0] = lines[0]!.replace('"duration_ms":12', '"duration_ms":13');
    await writeFile(middle.path, lines.map((l) => `${l}\n`).join(''));
    const bad = await runCli(['audit', 'verify'], env);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain(`${middle.path}: line 1: edited`);
    expect(bad.stderr).toContain('audit log verification failed');
    const json = await runCli(['audit', 'verify', '--json'], env);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: false, problems: [{ file: middle.path, line: 1 }] });
  });
});
