// A crash leaves a readable record (issue 60): a torn last line (the log's last bytes with no
// newline: an append cut short by a crash, or a copy cut short) is kept aside byte for byte by the
// next writer that opens the log and recorded by a chained `recovered` line in its place; verify
// reports it as a crash artifact, and still fails on a torn line anywhere else, on kept-aside bytes
// that were changed, and on a `recovered` line that does not stand where it says. The head file is
// sealed when a writer opens the log, and verify says how many lines run past it.
import { createHash, randomBytes } from 'node:crypto';
import { appendFile, mkdtemp, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { readFileSync } from 'node:fs';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AuditWriter, readAudit, verifyAudit } from '../../src/audit/index.ts';
import type { AuditEvent, AuditLine } from '../../src/audit/index.ts';
import { GENESIS_HASH, sealLine } from '../../src/audit/record.ts';
import { injectEvent } from '../helpers/audit-events.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { slack } from '../helpers/load.ts';

let opts: { path: string; headPath: string; headKey: Buffer };

beforeEach(async () => {
  const dir = await mkdtemp(join(tmpdir(), 'keyway-audit-torn-'));
  opts = { path: join(dir, 'logs', 'audit.jsonl'), headPath: join(dir, 'data', 'audit-head.json'), headKey: randomBytes(32) };
});

async function writeLines(from: number, to: number): Promise<void> {
  const writer = await AuditWriter.open(opts);
  for (let i = from; i <= to; i++) await writer.write(injectEvent(i));
  await writer.close();
}

async function lines(): Promise<AuditLine[]> {
  const out: AuditLine[] = [];
  for await (const line of readAudit(opts.path)) out.push(line);
  return out;
}

const TORN = '{"ts":"2026-11-26T10:00:00.000Z","id":"req-x","agent":"a","gra';

describe('a torn last line', () => {
  it('is kept aside byte for byte (0600), removed from the log, and sealed by a recovered line naming offset, length and SHA-256', async () => {
    await writeLines(1, 3);
    const offset = (await stat(opts.path)).size;
    await appendFile(opts.path, TORN);
    await writeLines(4, 4);

    const all = await lines();
    expect(all.map((l) => [l.seq, l.id === 'req-4' ? 'req-4' : (l.action ?? l.id)])).toEqual([
      [1, 'req-1'],
      [2, 'req-2'],
      [3, 'req-3'],
      [4, 'audit.recover'],
      [5, 'req-4'],
    ]);
    const recovered = all[3]!;
    const sha256 = createHash('sha256').update(TORN).digest('hex');
    expect(recovered).toMatchObject({ decision: 'admin', client: 'keyway', recovered: { file: 'audit.jsonl.torn-4', offset, bytes: TORN.length, sha256 } });
    const kept = join(dirname(opts.path), 'audit.jsonl.torn-4');
    expect(await readFile(kept, 'utf8')).toBe(TORN);
    expect((await stat(kept)).mode & 0o777).toBe(0o600);
    // The log holds whole lines only: the torn bytes are not in it any more.
    expect(await readFile(opts.path, 'utf8')).not.toContain(TORN);

    const result = await verifyAudit(opts);
    expect(result).toMatchObject({ ok: true, lines: 5, problems: [] });
    expect(result.crash_artifacts).toEqual([
      { kind: 'recovered', line: 4, offset, bytes: TORN.length, seq: 4, kept: 'audit.jsonl.torn-4', kept_file: 'matches' },
    ]);
  });

  it('that parses as a whole line short of its newline is kept aside too: its append never finished', async () => {
    await writeLines(1, 2);
    const whole = sealLine(JSON.stringify(injectEvent(3)), 3, (await lines())[1]!.hash).line.slice(0, -1);
    await appendFile(opts.path, whole);
    await writeLines(4, 4);
    expect((await lines()).map((l) => l.action ?? l.id)).toEqual(['req-1', 'req-2', 'audit.recover', 'req-4']);
    expect((await verifyAudit(opts)).ok).toBe(true);
  });

  it('is found by a writer already running when another process was killed mid-append', async () => {
    const writer = await AuditWriter.open(opts);
    await writer.write(injectEvent(1));
    await appendFile(opts.path, TORN); // a sibling (a worker, the CLI) died here
    await writer.write(injectEvent(2));
    await writer.close();
    expect((await lines()).map((l) => l.action ?? l.id)).toEqual(['req-1', 'audit.recover', 'req-2']);
    expect((await verifyAudit(opts)).ok).toBe(true);
  });

  it('not yet kept aside (no writer has opened the log since) is reported by verify with its offset, and passes', async () => {
    await writeLines(1, 3);
    const offset = (await stat(opts.path)).size;
    await appendFile(opts.path, TORN);
    const result = await verifyAudit(opts);
    expect(result).toMatchObject({ ok: true, problems: [] });
    expect(result.crash_artifacts).toEqual([{ kind: 'torn', line: 4, offset, bytes: TORN.length }]);
  });

  it('anywhere but at the end of the log still fails verify', async () => {
    await writeLines(1, 2);
    await appendFile(opts.path, `${TORN}\n`); // a torn line another line follows: not a crash's last bytes
    const writer = await AuditWriter.open(opts);
    await writer.write(injectEvent(3));
    await writer.close();
    const result = await verifyAudit(opts);
    expect(result.ok).toBe(false);
    expect(result.problems).toEqual([{ line: 3, reason: expect.stringContaining('unparseable') }]);
  });

  it('kept aside and then changed fails verify; kept aside and then deleted is reported, and passes', async () => {
    await writeLines(1, 1);
    await appendFile(opts.path, TORN);
    await writeLines(2, 2);
    const kept = join(dirname(opts.path), 'audit.jsonl.torn-2');
    await writeFile(kept, TORN.replace('req-x', 'req-y'));
    const changed = await verifyAudit(opts);
    expect(changed.ok).toBe(false);
    expect(changed.problems).toEqual([{ line: 2, reason: expect.stringContaining('are not the ones this recovered line records') }]);
    await rm(kept);
    const gone = await verifyAudit(opts);
    expect(gone.ok).toBe(true);
    expect(gone.crash_artifacts).toEqual([expect.objectContaining({ kind: 'recovered', kept_file: 'missing' })]);
  });
});

describe('what someone who can write the log can do with recovered lines', () => {
  /** A forged keyway `recovered` line, chained after the log's last line, appended. */
  async function forgeRecovered(recovered: Record<string, unknown>): Promise<void> {
    const all = await lines();
    const last = all.at(-1);
    const event: AuditEvent = {
      ...injectEvent(0),
      id: 'forged',
      agent: null,
      grant: null,
      decision: 'admin',
      method: null,
      host: '',
      port: 0,
      path: null,
      status: null,
      duration_ms: 0,
      client: 'keyway',
      action: 'audit.recover',
      actor: 'keyway',
      recovered: recovered as AuditEvent['recovered'],
    };
    const body = JSON.stringify(Object.fromEntries(Object.entries(event).sort(([a], [b]) => order(a) - order(b) || a.localeCompare(b))));
    await appendFile(opts.path, sealLine(body, (last?.seq ?? 0) + 1, last?.hash ?? GENESIS_HASH).line);
  }
  const FIXED = ['ts', 'id', 'agent', 'grant', 'decision', 'code', 'method', 'host', 'port', 'path', 'status', 'duration_ms', 'refreshed', 'client'];
  const order = (key: string) => (FIXED.includes(key) ? FIXED.indexOf(key) : FIXED.length);

  it('a line cut off and replaced by a recovered line that does not stand at the offset it names fails', async () => {
    await writeLines(1, 3);
    const offset = (await stat(opts.path)).size;
    await forgeRecovered({ file: 'audit.jsonl.torn-4', offset: offset - 10, bytes: 5, sha256: '0'.repeat(64) });
    const result = await verifyAudit(opts);
    expect(result.ok).toBe(false);
    expect(result.problems.map((p) => p.reason).join('\n')).toMatch(/stands at offset/);
  });

  it('a recovered line naming a file outside the log folder is refused, and not read', async () => {
    await writeLines(1, 1);
    const offset = (await stat(opts.path)).size;
    await forgeRecovered({ file: '../data/audit-head.json', offset, bytes: 5, sha256: '0'.repeat(64) });
    const result = await verifyAudit(opts);
    expect(result.ok).toBe(false);
    expect(result.problems.map((p) => p.reason).join('\n')).toMatch(/names a kept-aside file keyway would not write/);
  });

  it('an edited whole line still fails with a recovered line after it', async () => {
    await writeLines(1, 3);
    const text = await readFile(opts.path, 'utf8');
    await writeFile(opts.path, text.replace('"req-2"', '"req-9"'));
    await appendFile(opts.path, TORN);
    await writeLines(4, 4); // keyway keeps the torn bytes aside, as it should
    const result = await verifyAudit(opts);
    expect(result.ok).toBe(false);
    expect(result.problems).toEqual([{ line: 2, reason: expect.stringContaining('edited') }]);
  });

  it('a whole last line cut short by hand is not hidden: the head file records it', async () => {
    await writeLines(1, 3);
    const size = (await stat(opts.path)).size;
    await truncate(opts.path, size - 20); // seq 3 loses its end
    const result = await verifyAudit(opts);
    expect(result.ok).toBe(false);
    expect(result.problems.map((p) => p.reason).join('\n')).toMatch(/tail removed: the head file records seq 3 but the log ends at seq 2/);
  });
});

describe('the head file', () => {
  it('is sealed when a writer opens the log, before its first line: a kill before the first batch leaves a log verify vouches for', async () => {
    const writer = await AuditWriter.open(opts);
    const sealed = await readFile(opts.headPath);
    expect(JSON.parse(sealed.toString('utf8'))).toMatchObject({ seq: 0, hash: GENESIS_HASH });
    await writer.write(injectEvent(1));
    await writer.write(injectEvent(2));
    await writer.close();
    // As if killed before the head's first write after those lines.
    await writeFile(opts.headPath, sealed);
    expect(await verifyAudit(opts)).toMatchObject({ ok: true, lines: 2, problems: [], unvouched: 2 });
  });

  it("is sealed at the log's end when a writer opens a log whose head lags (a kill)", async () => {
    await writeLines(1, 3);
    const head3 = await readFile(opts.headPath);
    await writeLines(4, 5);
    await writeFile(opts.headPath, head3);
    const writer = await AuditWriter.open(opts);
    expect(JSON.parse(await readFile(opts.headPath, 'utf8'))).toMatchObject({ seq: 5 });
    await writer.close();
  });

  it('lagging the log: verify says how many lines it cannot vouch for', async () => {
    await writeLines(1, 2);
    const head = await readFile(opts.headPath);
    await writeLines(3, 5);
    await writeFile(opts.headPath, head); // the head of seq 2, as after a kill
    expect(await verifyAudit(opts)).toMatchObject({ ok: true, unvouched: 3 });
    // A line removed from among them is exactly what it cannot see: it says so rather than nothing.
    const text = await readFile(opts.path, 'utf8');
    await writeFile(opts.path, text.slice(0, text.lastIndexOf('\n', text.length - 2) + 1));
    expect(await verifyAudit(opts)).toMatchObject({ ok: true, unvouched: 2 });
  });
});

describe('keyway started on a log whose last line a crash tore', () => {
  let upstream: TestUpstream;
  let home: string;
  const outputs: string[] = [];
  const grants = [{ id: 'github', type: 'bearer' as const, domains: ['api.example.test'], secret: CANARY }];

  beforeAll(async () => {
    upstream = await startUpstream();
  });
  afterAll(async () => {
    for (const text of outputs) expect(findLeak(text, CANARY)).toBeUndefined();
    await upstream?.close();
  });

  async function serve(proxy: TestProxy, n: number): Promise<void> {
    const dispatcher = new ProxyAgent({ uri: proxy.url, requestTls: { ca: [readFileSync(proxy.caPath, 'utf8')] } });
    try {
      for (let i = 0; i < n; i++) {
        const res = await request(`https://api.example.test:${upstream.port}/echo`, { dispatcher, signal: AbortSignal.timeout(slack(10_000)) });
        await res.body.dump();
        expect(res.statusCode).toBe(200);
      }
    } finally {
      await dispatcher.close();
    }
  }

  it('keeps it aside, says so in its log, goes on serving, and verify passes naming the crash artifact and its offset', async () => {
    const first = await startProxy({ grants });
    home = first.home;
    await serve(first, 3);
    await first.stop();
    const offset = (await stat(first.auditPath)).size;
    await appendFile(first.auditPath, TORN); // the crash: half a line, no newline
    // Checked with the public key alone, before any keyway opens the log again: the torn bytes are
    // a crash artifact, named with their offset, and every whole line is signed.
    const pem = await first.cli(['audit', 'public-key']);
    const keyFile = join(first.home, 'audit-public.pem');
    await writeFile(keyFile, pem.stdout);
    const publicly = await first.cli(['audit', 'verify', '--public-key', keyFile]);
    outputs.push(publicly.stdout, publicly.stderr);
    expect(publicly.code, publicly.stdout + publicly.stderr).toBe(0);
    expect(publicly.stdout).toMatch(new RegExp(`crash artifact: line \\d+, offset ${offset}: ${TORN.length} byte\\(s\\) with no newline after them`));

    const second = await startProxy({ grants, home });
    await serve(second, 3);
    await second.stop();
    outputs.push(...second.logs);
    expect(second.logs.join('')).toMatch(
      /the audit log ended in a line cut short by a crash: its \d+ byte\(s\) were kept aside in logs\/audit\.jsonl\.torn-\d+/,
    );
    const verify = await second.cli(['audit', 'verify']);
    outputs.push(verify.stdout, verify.stderr);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    expect(verify.stdout).toMatch(/^audit log intact: \d+ lines/);
    expect(verify.stdout).toMatch(
      new RegExp(
        `crash artifact: line \\d+ \\(seq \\d+\\) recovered a line cut short by a crash: ${TORN.length} byte\\(s\\) at offset ${offset}, kept aside in audit\\.jsonl\\.torn-\\d+ \\(its bytes match\\)`,
      ),
    );
    const json = await second.cli(['audit', 'verify', '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: true, crash_artifacts: [{ kind: 'recovered', offset, bytes: TORN.length, kept_file: 'matches' }] });
  });

  it('a torn line in the middle of the log still fails verify', async () => {
    const auditPath = join(home, 'logs', 'audit.jsonl');
    const text = await readFile(auditPath, 'utf8');
    const cut = text.indexOf('\n') + 1;
    // The second line loses its end, and the lines after it stay: damage, not a crash's last bytes.
    await writeFile(auditPath, text.slice(0, cut) + text.slice(cut, cut + 40) + text.slice(text.indexOf('\n', cut)));
    const proxy = await startProxy({ grants, home });
    await serve(proxy, 1);
    await proxy.stop();
    const verify = await proxy.cli(['audit', 'verify']);
    outputs.push(verify.stdout, verify.stderr);
    expect(verify.code).toBe(1);
    expect(verify.stdout).toMatch(/line 2: unparseable line/);
  });
});

describe('keyway started on a log its head file says was longer', () => {
  it('starts, warns in its log, and writes an audit line saying how many lines are missing; verify reports the gap', async () => {
    const upstream = await startUpstream();
    const grants = [{ id: 'github', type: 'bearer' as const, domains: ['api.example.test'], secret: CANARY }];
    try {
      const first = await startProxy({ grants });
      const dispatcher = new ProxyAgent({ uri: first.url, requestTls: { ca: [readFileSync(first.caPath, 'utf8')] } });
      for (let i = 0; i < 2; i++) await (await request(`https://api.example.test:${upstream.port}/echo`, { dispatcher })).body.dump();
      await dispatcher.close();
      await first.stop();
      const head = JSON.parse(await readFile(join(first.home, 'data', 'audit-head.json'), 'utf8')) as { seq: number };
      expect(head.seq).toBeGreaterThan(0);
      await rm(first.auditPath); // deleted (or a restore that left it out)

      const second = await startProxy({ grants, home: first.home });
      await second.stop();
      const warned = second.logs
        .join('')
        .split('\n')
        .filter((line) => line.includes('line(s) are missing'))
        .map((line) => JSON.parse(line) as { level: number; msg: string; missing: number });
      expect(warned).toHaveLength(1);
      expect(warned[0]).toMatchObject({ level: 40, missing: head.seq });
      expect(warned[0]!.msg).toContain(`the audit log ends at seq 0 but its head file records seq ${head.seq}`);
      // The record itself says when the loss was noticed: the first line after the gap.
      const firstLine = JSON.parse((await readFile(second.auditPath, 'utf8')).split('\n')[0]!) as Record<string, unknown>;
      expect(firstLine).toMatchObject({ seq: head.seq + 1, decision: 'admin', action: 'audit.lines_missing', client: 'keyway' });
      const verify = await second.cli(['audit', 'verify']);
      expect(verify.code).toBe(1);
      expect(verify.stdout).toMatch(new RegExp(`seq jumps from 0 to ${head.seq + 1}`));
    } finally {
      await upstream.close();
    }
  });
});
