import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditWriter, listRotated, prunedPathFor, readAudit, verifyAudit } from '../../src/audit/index.ts';
import type { PrunedRange, RetentionHold, RotatedFile } from '../../src/audit/index.ts';
import { MAX_RANGES } from '../../src/audit/pruned.ts';
import { configSchema } from '../../src/config/schema/config.ts';
import { deriveAuditHeadKey } from '../../src/open-home.ts';
import { injectEvent } from '../helpers/audit-events.ts';
import { runCli } from '../helpers/keyway.ts';

// Keyway issue 21, "rotation never silently erases": what rotation deletes is recorded (MAC'd, beside
// the head file) and `keyway audit verify` names each range pruned; a file removed by hand is still
// tampering; audit.min_retention keeps files younger than it past audit.keep. Real files, real
// writers (one per "run", as across restarts), and the real CLI.

const MAX = 4000; // bytes: about 10 lines per file
const HOUR = 3_600_000;

let dir: string;
let opts: { path: string; headPath: string; headKey: Buffer };

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keyway-retention-'));
  opts = { path: join(dir, 'logs', 'audit.jsonl'), headPath: join(dir, 'data', 'audit-head.json'), headKey: randomBytes(32) };
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Run {
  keep: number;
  minRetentionMs?: number;
  onRetention?: (hold: RetentionHold | null) => void;
}

/** One keyway run: open a writer, write lines from..from+n-1 one by one, close. Returns the writer. */
async function writeLog(n: number, run: Run, from = 1): Promise<AuditWriter> {
  const writer = await AuditWriter.open({ ...opts, maxBytes: MAX, ...run });
  for (let i = from; i < from + n; i++) await writer.write(injectEvent(i));
  await writer.close();
  return writer;
}

async function sizes(files: RotatedFile[]): Promise<Map<number, number>> {
  return new Map(await Promise.all(files.map(async (f) => [f.firstSeq, (await stat(f.path)).size] as const)));
}

async function seqs(): Promise<number[]> {
  const out: number[] = [];
  for await (const line of readAudit(opts.path)) out.push(line.seq);
  return out;
}

describe('verify names what rotation pruned', () => {
  it('one range per pruning: first and last seq, files, bytes and when; contiguous across restarts', async () => {
    await writeLog(100, { keep: 1000 });
    const before = await listRotated(opts.path);
    const bytesOf = await sizes(before);
    expect(before.length).toBeGreaterThan(6);
    expect((await verifyAudit(opts)).pruned).toBeUndefined(); // nothing pruned yet

    const t0 = Date.now();
    await writeLog(12, { keep: 3, minRetentionMs: 0 }, 101); // a restart with keep 3: its first rotation prunes the excess
    const t1 = Date.now();
    expect(await listRotated(opts.path)).toHaveLength(3);
    // That rotation left the files before it plus the one it made: all but the newest two of `before` went.
    const deleted = before.slice(0, before.length - 2);
    const result = await verifyAudit(opts);
    expect(result.ok).toBe(true);
    expect(result.pruned?.ranges[0]).toEqual({
      first_seq: 1,
      last_seq: before.at(-2)!.firstSeq - 1,
      files: deleted.length,
      bytes: deleted.reduce((sum, f) => sum + bytesOf.get(f.firstSeq)!, 0),
      pruned_at: expect.any(String),
      age_ms: expect.any(Number),
      first_ts: expect.any(String),
      last_ts: expect.any(String),
      prunings: 1,
      early: false,
    });
    const when = Date.parse(result.pruned!.ranges[0]!.pruned_at);
    expect(when).toBeGreaterThanOrEqual(t0);
    expect(when).toBeLessThanOrEqual(t1);
    expect(result.pruned?.lines).toBe((await listRotated(opts.path))[0]!.firstSeq - 1);

    // Another run: its prunings follow on, each range starting where the last one ended.
    await writeLog(60, { keep: 3, minRetentionMs: 0 }, 113);
    const again = await verifyAudit(opts);
    expect(again.ok).toBe(true);
    const ranges = again.pruned!.ranges;
    expect(ranges.length).toBeGreaterThan(2);
    expect(ranges.slice(0, result.pruned!.ranges.length)).toEqual(result.pruned!.ranges);
    for (let i = 1; i < ranges.length; i++) expect(ranges[i]!.first_seq).toBe(ranges[i - 1]!.last_seq + 1);
    const kept = await listRotated(opts.path);
    expect(ranges.at(-1)!.last_seq).toBe(kept[0]!.firstSeq - 1);
    expect(ranges.every((r) => r.bytes > 0 && r.files >= 1)).toBe(true);
    expect((await seqs())[0]).toBe(kept[0]!.firstSeq);
  });

  it('stays bounded: past 100 prunings the oldest are folded together, still covering every seq', async () => {
    const writer = await AuditWriter.open({ ...opts, maxBytes: 600, keep: 1, minRetentionMs: 0 }); // a line per file
    for (let i = 1; i <= 220; i++) await writer.write(injectEvent(i));
    await writer.close();
    const result = await verifyAudit(opts);
    expect(result.ok).toBe(true);
    const ranges = result.pruned!.ranges;
    expect(ranges).toHaveLength(MAX_RANGES);
    expect(ranges[0]!.first_seq).toBe(1);
    for (let i = 1; i < ranges.length; i++) expect(ranges[i]!.first_seq).toBe(ranges[i - 1]!.last_seq + 1);
    expect(ranges.reduce((n, r) => n + r.prunings, 0)).toBe(ranges.at(-1)!.last_seq); // one pruning per line here
    expect(ranges[0]!.prunings).toBeGreaterThan(1);
    expect(ranges.at(-1)!.prunings).toBe(1);
    expect((await readFile(prunedPathFor(opts.headPath))).length).toBeLessThan(40_000);
  });

  it('a kept file removed by hand is still tampering (no pruning covers the gap), and the ranges are still named', async () => {
    await writeLog(100, { keep: 3, minRetentionMs: 0 });
    const kept = await listRotated(opts.path);
    await unlink(kept[0]!.path);
    const result = await verifyAudit(opts);
    expect(result.ok).toBe(false);
    expect(result.problems).toEqual([{ file: kept[1]!.path, line: 1, reason: expect.stringContaining('does not start where rotation last pruned') }]);
    expect(result.pruned?.ranges.at(-1)?.last_seq).toBe(kept[0]!.firstSeq - 1);
  });

  it('a range list edited without the head key is reported, and the writer then prunes nothing more', async () => {
    await writeLog(100, { keep: 3, minRetentionMs: 0 });
    const prunedPath = prunedPathFor(opts.headPath);
    const record = JSON.parse(await readFile(prunedPath, 'utf8')) as { ranges: PrunedRange[] };
    expect(record.ranges.length).toBeGreaterThan(1);
    // Hide how much went: the first range claimed smaller, the rest left as they were.
    record.ranges[0]!.bytes = 1;
    await writeFile(prunedPath, JSON.stringify(record));
    const result = await verifyAudit(opts);
    expect(result.ok).toBe(false);
    expect(result.problems).toContainEqual({ file: prunedPath, line: 0, reason: expect.stringContaining('its list of pruned ranges does not match its MAC') });

    await writeLog(40, { keep: 3, minRetentionMs: 0 }, 101);
    expect((await listRotated(opts.path)).length).toBeGreaterThan(5); // nothing deleted over a forged record
  });

  it('a record written before ranges were kept reads as one unrecorded range; later prunings follow it', async () => {
    await writeLog(100, { keep: 3, minRetentionMs: 0 });
    const prunedPath = prunedPathFor(opts.headPath);
    const { seq, hash, mac } = JSON.parse(await readFile(prunedPath, 'utf8')) as { seq: number; hash: string; mac: string };
    await writeFile(prunedPath, `${JSON.stringify({ seq, hash, mac })}\n`); // as keyway wrote it before
    const old = await verifyAudit(opts);
    expect(old).toMatchObject({ ok: true, pruned: { ranges: [], unrecorded: { first_seq: 1, last_seq: seq }, lines: seq } });

    await writeLog(40, { keep: 3, minRetentionMs: 0 }, 101);
    const now = await verifyAudit(opts);
    expect(now.ok).toBe(true);
    expect(now.pruned?.unrecorded).toEqual({ first_seq: 1, last_seq: seq });
    expect(now.pruned?.ranges[0]?.first_seq).toBe(seq + 1);
  });
});

describe('audit.min_retention', () => {
  it('keeps files younger than it past keep and reports the hold; prunes them once they are older', async () => {
    const holds: Array<RetentionHold | null> = [];
    const writer = await writeLog(100, { keep: 3, minRetentionMs: HOUR, onRetention: (h) => holds.push(h) });
    const rotated = await listRotated(opts.path);
    expect(rotated.length).toBeGreaterThan(6); // nothing deleted: every file is seconds old
    expect(await seqs()).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    const bytesOf = await sizes(rotated);
    // As of the last rotation (which made the newest rotated file), all but `keep` were held.
    const heldFiles = rotated.length - 3;
    const hold = writer.retentionHold;
    expect(hold).toEqual({
      files: heldFiles,
      bytes: rotated.slice(0, heldFiles).reduce((sum, f) => sum + bytesOf.get(f.firstSeq)!, 0),
      oldestAgeMs: expect.any(Number),
    });
    expect(holds.length).toBeGreaterThan(0);
    expect(holds.at(-1)).toEqual(hold);
    expect(await verifyAudit(opts)).toMatchObject({ ok: true, problems: [] });
    expect((await verifyAudit(opts)).pruned).toBeUndefined();

    // The two oldest files age past min_retention: the next rotation deletes those two only.
    const twoHoursAgo = new Date(Date.now() - 2 * HOUR);
    for (const f of rotated.slice(0, 2)) await utimes(f.path, twoHoursAgo, twoHoursAgo);
    await writeLog(12, { keep: 3, minRetentionMs: HOUR }, 101);
    const after = await listRotated(opts.path);
    expect(after[0]!.firstSeq).toBe(rotated[2]!.firstSeq);
    const result = await verifyAudit({ ...opts, minRetentionMs: HOUR });
    expect(result.ok).toBe(true);
    expect(result.pruned?.ranges).toEqual([expect.objectContaining({ first_seq: 1, last_seq: rotated[2]!.firstSeq - 1, files: 2, early: false })]);
    expect(result.pruned!.ranges[0]!.age_ms).toBeGreaterThanOrEqual(2 * HOUR - 60_000);
    expect(result.pruned?.early).toBe(0);
  });

  it('verify says which ranges were pruned sooner than min_retention', async () => {
    await writeLog(100, { keep: 3, minRetentionMs: 0 });
    const result = await verifyAudit({ ...opts, minRetentionMs: HOUR });
    expect(result.ok).toBe(true);
    expect(result.pruned!.ranges.length).toBeGreaterThan(1);
    expect(result.pruned!.ranges.every((r) => r.early && r.age_ms < HOUR)).toBe(true);
    expect(result.pruned).toMatchObject({ early: result.pruned!.ranges.length, min_retention_ms: HOUR });
  });

  it('parses from the config: a duration, 0 for off, 1h by default', () => {
    const parse = (audit: Record<string, unknown>) => configSchema.safeParse({ audit });
    expect(parse({}).data?.audit.min_retention).toBe(HOUR);
    expect(parse({ min_retention: '24h' }).data?.audit.min_retention).toBe(24 * HOUR);
    expect(parse({ min_retention: '0s' }).data?.audit.min_retention).toBe(0);
    expect(parse({ min_retention: 0 }).data?.audit.min_retention).toBe(0);
    expect(parse({ min_retention: 'soon' }).error?.issues[0]?.path).toEqual(['audit', 'min_retention']);
  });
});

describe('`keyway audit verify` in a home', () => {
  it('prints "intact" with each range pruned, warns of pruning sooner than min_retention, and still fails a file removed by hand', async () => {
    const home = join(dir, 'home');
    mkdirSync(join(home, 'config'), { recursive: true });
    // min_retention left at its default (1h) for verify; the log below was pruned with it off.
    writeFileSync(join(home, 'config', 'keyway.yaml'), stringify({ audit: { max_bytes: MAX, keep: 2 } }));
    const masterKey = randomBytes(32);
    const env = { KEYWAY_HOME: home, KEYWAY_MASTER_KEY: masterKey.toString('base64') };
    opts = { path: join(home, 'logs', 'audit.jsonl'), headPath: join(home, 'data', 'audit-head.json'), headKey: deriveAuditHeadKey(masterKey) };
    await writeLog(60, { keep: 2, minRetentionMs: 0 });
    const kept = await listRotated(opts.path);
    const last = kept[0]!.firstSeq - 1;

    const ok = await runCli(['audit', 'verify'], env);
    expect(ok.code, ok.stderr).toBe(0);
    const lines = ok.stdout.trim().split('\n');
    expect(lines[0]).toMatch(
      new RegExp(
        `^audit log intact: ${60 - last} lines in 3 files, chain and head verified; \\d+ range\\(s\\) pruned by rotation \\(seq 1-${last}, ${last} line\\(s\\)\\):$`,
      ),
    );
    expect(lines[1]).toMatch(
      /^ {2}seq 1-\d+: pruned \d{4}-\d\d-\d\dT[\d:.]+Z, 1 file\(s\), \d+ bytes, lines from .+ to .+; its newest line was \d+s old \(sooner than audit.min_retention 1h\)$/,
    );
    expect(lines.at(-1)).toMatch(/^warning: \d+ range\(s\) pruned sooner than audit.min_retention \(1h\) after their newest line was written$/);

    const json = await runCli(['audit', 'verify', '--json'], env);
    expect(json.code).toBe(0);
    const parsed = JSON.parse(json.stdout) as { ok: boolean; pruned: { ranges: PrunedRange[]; lines: number } };
    expect(parsed.ok).toBe(true);
    expect(parsed.pruned.lines).toBe(last);
    expect(parsed.pruned.ranges[0]).toMatchObject({ first_seq: 1, early: true });

    await unlink(kept[0]!.path);
    const bad = await runCli(['audit', 'verify'], env);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain(`${kept[1]!.path}: line 1: seq jumps from ${last} to ${kept[1]!.firstSeq}`);
    expect(bad.stdout).toMatch(/range\(s\) pruned by rotation \(seq 1-\d+/);
    expect(bad.stderr).toContain('audit log verification failed: 1 problem(s)');
  });
});
