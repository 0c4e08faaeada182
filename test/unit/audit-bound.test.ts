import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cutUtf8, MAX_PATH_BYTES } from '../../src/audit/bound.ts';
import { type AuditEvent, type AuditLog, AuditWriter, RefusalBudget, verifyAudit } from '../../src/audit/index.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keyway-bound-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function event(over: Partial<AuditEvent> = {}): AuditEvent {
  return {
    ts: new Date().toISOString(),
    id: 'x',
    agent: 'a',
    grant: null,
    decision: 'deny',
    code: 'policy_denied',
    method: 'GET',
    host: 'api.example.test',
    port: 443,
    path: '/p',
    status: 403,
    duration_ms: 1,
    refreshed: false,
    client: '127.0.0.1',
    ...over,
  };
}

describe('cutUtf8', () => {
  it('never cuts inside a character, whatever its width', () => {
    for (const char of ['é', '€', '😀']) {
      const text = `/${char.repeat(600)}`;
      for (let max = 1; max < 40; max++) {
        const cut = cutUtf8(text, max);
        expect(Buffer.byteLength(cut)).toBeLessThanOrEqual(max);
        expect(Buffer.byteLength(cut)).toBeGreaterThan(max - Buffer.byteLength(char));
        expect(text.startsWith(cut)).toBe(true);
        expect(cut).not.toContain('\ufffd');
      }
    }
  });
});

describe('bounded fields through the real writer', () => {
  it('a long multi-byte path, method and host are cut; path_sha256 names the whole path without its query; the chain verifies', async () => {
    const opts = { path: join(dir, 'audit.jsonl'), headPath: join(dir, 'audit.head'), headKey: randomBytes(32) };
    const writer = await AuditWriter.open(opts);
    const path = `/€${'x'.repeat(5_000)}`;
    await writer.write(event({ path: `${path}?token=secret-canary`, method: 'M'.repeat(10_000), host: 'h'.repeat(2_000), path_override: 'é'.repeat(3_000) }));
    await writer.write(event({ path: '/short' }));
    await writer.close();
    const raw = await readFile(opts.path, 'utf8');
    expect(raw).not.toContain('secret-canary');
    const [cut, short] = raw
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(Buffer.byteLength(raw.split('\n')[0]!)).toBeLessThan(4 * 1024);
    expect(Buffer.byteLength(cut!['path'] as string)).toBeLessThanOrEqual(MAX_PATH_BYTES);
    expect(cut).toMatchObject({ path_truncated: true, path_sha256: createHash('sha256').update(path).digest('hex'), truncated: 'method,host,path_override' });
    expect(short!['path_truncated']).toBeUndefined();
    const result = await verifyAudit(opts);
    expect(result.ok, JSON.stringify(result.problems)).toBe(true);
  });
});

class MemoryLog implements AuditLog {
  lines: AuditEvent[] = [];
  healthy = true;
  readonly medium = 'file';
  pendingLines = 0;
  droppedLines = 0;
  reserveLine(): boolean {
    return true;
  }
  write(e: AuditEvent): Promise<void> {
    this.lines.push(e);
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

describe('RefusalBudget', () => {
  it('writes the summary at the end of the interval without waiting for traffic or a stop', async () => {
    const inner = new MemoryLog();
    const budget = new RefusalBudget(inner, { intervalMs: 100 });
    for (let i = 0; i < 25; i++) await budget.write(event({ path: `/p/${i}` }));
    expect(inner.lines).toHaveLength(20);
    await new Promise((r) => setTimeout(r, 400));
    expect(inner.lines).toHaveLength(21);
    expect(inner.lines[20]).toMatchObject({ decision: 'deny', code: 'policy_denied', agent: 'a', host: 'api.example.test', path: null, repeated: 5 });
    // A new interval: full lines again.
    await budget.write(event({ path: '/again' }));
    expect(inner.lines.at(-1)!.path).toBe('/again');
    await budget.close();
  });

  it("an agent's summary names the address its counted refusals came from, none when several: never the first refusal's, written in full", async () => {
    const inner = new MemoryLog();
    const budget = new RefusalBudget(inner, { intervalMs: 60_000 });
    await budget.write(event({ client: '127.0.0.3' }));
    for (let i = 0; i < 24; i++) await budget.write(event({ client: '127.0.0.4' }));
    await budget.flush();
    expect(inner.lines.filter((l) => l.repeated === undefined && l.client === '127.0.0.3')).toHaveLength(1);
    expect(inner.lines.filter((l) => l.repeated !== undefined)).toMatchObject([{ agent: 'a', client: '127.0.0.4', repeated: 5 }]);
    inner.lines.length = 0;
    for (let i = 0; i < 25; i++) await budget.write(event({ client: `127.0.0.${3 + (i % 2)}` }));
    await budget.close();
    expect(inner.lines.filter((l) => l.repeated !== undefined)).toMatchObject([{ agent: 'a', client: '', repeated: 5 }]);
  });

  it('varying the host does not escape it: past 20 kinds per agent, one summary per code; allowed lines always pass', async () => {
    const inner = new MemoryLog();
    const budget = new RefusalBudget(inner, { intervalMs: 60_000 });
    for (let i = 0; i < 500; i++) await budget.write(event({ host: `h${i}.example.test` }));
    await budget.write(event({ decision: 'inject', code: null, status: 200 }));
    await budget.close();
    const full = inner.lines.filter((l) => l.decision === 'deny' && l.repeated === undefined);
    const summaries = inner.lines.filter((l) => l.repeated !== undefined);
    expect(full).toHaveLength(20);
    expect(summaries).toHaveLength(1);
    expect(summaries[0]).toMatchObject({ agent: 'a', host: '', overflow: true, repeated: 480 });
    expect(inner.lines.filter((l) => l.decision === 'inject')).toHaveLength(1);
  });

  it('with refusals budgeted elsewhere (a worker: the primary), none is written or counted here; when that fails, the budget here decides', async () => {
    const inner = new MemoryLog();
    const handed: AuditEvent[] = [];
    let primaryUp = true;
    const budget = new RefusalBudget(inner, { intervalMs: 60_000, elsewhere: (e) => primaryUp && handed.push(e) > 0 });
    for (let i = 0; i < 30; i++) await budget.write(event());
    await budget.write(event({ decision: 'inject', code: null, status: 200 }));
    expect(handed).toHaveLength(30);
    expect(inner.lines.map((l) => l.decision)).toEqual(['inject']);
    primaryUp = false;
    for (let i = 0; i < 25; i++) await budget.write(event());
    await budget.close();
    expect(inner.lines.filter((l) => l.decision === 'deny' && l.repeated === undefined)).toHaveLength(20);
    expect(inner.lines.filter((l) => l.repeated !== undefined).map((l) => l.repeated)).toEqual([5]);
  });

  it('many client addresses share a global budget; every refusal is counted somewhere', async () => {
    const inner = new MemoryLog();
    const budget = new RefusalBudget(inner, { intervalMs: 60_000 });
    const n = 3_000;
    for (let i = 0; i < n; i++) await budget.write(event({ agent: null, code: 'proxy_auth_required', status: 407, client: `127.0.${i >> 8}.${i & 255}` }));
    await budget.close();
    const full = inner.lines.filter((l) => l.repeated === undefined);
    const counted = inner.lines.reduce((sum, l) => sum + (l.repeated ?? 0), 0);
    expect(full.length).toBeLessThanOrEqual(400);
    expect(full.length + counted).toBe(n);
    expect(inner.lines.length).toBeLessThanOrEqual(400 + 1_000 + 1);
  });
});
