// Paging the audit log (src/audit/read/page.ts), as GET /api/audit does, on a real log written by the
// real writer and rotated every few lines: newest first (read backwards) and oldest first, page by
// page, must give back exactly the matching lines, each once, in order; a cursor is bound to its order.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditWriter, listRotated, pageAudit, readAudit, type AuditEvent, type AuditFilter, type AuditOrder } from '../../src/audit/index.ts';

let dir: string;
let path: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keyway-audit-page-'));
  path = join(dir, 'logs', 'audit.jsonl');
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function event(i: number, message?: string): AuditEvent {
  return {
    ts: new Date(Date.UTC(2025, 0, 1) + i * 1000).toISOString(),
    id: `req-${i}`,
    agent: i % 2 === 0 ? 'even' : 'odd',
    grant: i % 3 === 0 ? 'openai' : 'github',
    decision: i % 10 === 0 ? 'deny' : 'inject',
    code: null,
    method: 'GET',
    host: 'api.example.test',
    port: 443,
    path: `/n/${i}`,
    status: 200,
    duration_ms: 1,
    refreshed: false,
    client: '127.0.0.1',
    ...(message === undefined ? {} : { message }),
  };
}

async function writeLog(n: number, long: Set<number> = new Set()): Promise<void> {
  const writer = await AuditWriter.open({ path, headPath: join(dir, 'data', 'head.json'), headKey: randomBytes(32), maxBytes: 6000, keep: 1000 });
  for (let i = 1; i <= n; i++) await writer.write(event(i, long.has(i) ? 'y'.repeat(150_000) : undefined));
  await writer.close();
}

async function allPages(order: AuditOrder, filter: AuditFilter, limit: number): Promise<{ ids: string[]; pages: number }> {
  const ids: string[] = [];
  let cursor: string | undefined;
  for (let pages = 1; pages < 1000; pages++) {
    const page = await pageAudit(path, { filter, limit, order, cursor });
    ids.push(...page.lines.map((l) => l.id));
    if (page.next === null) return { ids, pages };
    cursor = page.next;
  }
  throw new Error('paging did not end');
}

async function expected(filter: AuditFilter): Promise<string[]> {
  const ids: string[] = [];
  for await (const line of readAudit(path, filter)) ids.push(line.id);
  return ids;
}

describe('pageAudit', () => {
  it('pages a rotated log newest first and oldest first, each line once, in order', async () => {
    // Three lines far longer than a read chunk, so lines cross chunk boundaries when read backwards.
    await writeLog(240, new Set([5, 100, 239]));
    expect((await listRotated(path)).length).toBeGreaterThan(20);
    for (const filter of [{}, { agent: 'even' }, { decision: 'deny' as const }, { grant: 'openai', agent: 'odd' }]) {
      const all = await expected(filter);
      expect(all.length).toBeGreaterThan(0);
      for (const limit of [1, 7, 1000]) {
        expect((await allPages('asc', filter, limit)).ids, JSON.stringify({ filter, limit })).toEqual(all);
        const desc = await allPages('desc', filter, limit);
        expect(desc.ids, JSON.stringify({ filter, limit })).toEqual(all.toReversed());
        expect(desc.pages).toBe(Math.max(1, Math.ceil(all.length / limit)));
      }
    }
  });

  it('keeps its place while lines are appended between pages', async () => {
    await writeLog(30);
    const first = await pageAudit(path, { filter: {}, limit: 10, order: 'desc' });
    expect(first.lines.map((l) => l.id)).toEqual(Array.from({ length: 10 }, (_, i) => `req-${30 - i}`));
    const writer = await AuditWriter.open({ path, headPath: join(dir, 'data', 'head.json'), headKey: randomBytes(32), maxBytes: 6000 });
    for (let i = 31; i <= 40; i++) await writer.write(event(i));
    await writer.close();
    const second = await pageAudit(path, { filter: {}, limit: 10, order: 'desc', cursor: first.next! });
    expect(second.lines.map((l) => l.id)).toEqual(Array.from({ length: 10 }, (_, i) => `req-${20 - i}`));
  });

  it('refuses a cursor of the other order or one it did not make', async () => {
    await writeLog(5);
    const page = await pageAudit(path, { filter: {}, limit: 2, order: 'desc' });
    await expect(pageAudit(path, { filter: {}, limit: 2, order: 'asc', cursor: page.next! })).rejects.toThrow(/order=desc/);
    await expect(pageAudit(path, { filter: {}, limit: 2, order: 'desc', cursor: 'x'.repeat(41) })).rejects.toThrow(/not a cursor/);
    await expect(pageAudit(path, { filter: {}, limit: 2, order: 'desc', cursor: Buffer.from('desc.1e5').toString('base64url') })).rejects.toThrow(
      /not a cursor/,
    );
  });

  it('gives an empty page for a log not yet written', async () => {
    expect(await pageAudit(path, { filter: {}, limit: 5, order: 'desc' })).toEqual({ lines: [], next: null });
    expect(await pageAudit(path, { filter: {}, limit: 5, order: 'asc' })).toEqual({ lines: [], next: null });
  });
});
