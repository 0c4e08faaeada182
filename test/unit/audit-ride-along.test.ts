// Under a write-ahead hold, lines nobody waits on (a response's outcome) wait a moment for the next
// write-ahead line and go in its append (src/audit/file/writer.ts, #waitForWriteAhead): sequential
// traffic then appends once per request, not twice. These tests drive the real writer on a real
// file and count its batches (onBatch), and check that no line waits on the next request forever.
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditWriter, verifyAudit } from '../../src/audit/index.ts';
import { lineIds, requestLine } from '../helpers/audit-events.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keyway-ride-along-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function openWriter(): Promise<{
  writer: AuditWriter;
  batches: () => number;
  lines: () => Promise<string[]>;
  opts: { path: string; headPath: string; headKey: Buffer };
}> {
  let batches = 0;
  const opts = { path: join(dir, 'audit.jsonl'), headPath: join(dir, 'audit.head'), headKey: randomBytes(32) };
  const writer = await AuditWriter.open({ ...opts, onBatch: () => void batches++ });
  const lines = async () => lineIds(await readFile(opts.path, 'utf8'));
  return { writer, batches: () => batches, lines, opts };
}

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('outcome lines under a write-ahead hold', () => {
  it('go in the next write-ahead line’s append: one batch per sequential request', async () => {
    const { writer, batches, lines, opts } = await openWriter();
    // A first line, then a pause past the lock's gap after its append (LOCK_GAP_MS: a batch within
    // it waits, and would take any two lines together, with or without what is tested here).
    await writer.write(requestLine('warm', 'sent'));
    await new Promise((resolve) => setTimeout(resolve, 15));
    // The first request's write-ahead line: the hold is on (it lasts 50 ms, MAX_HOLD_MS).
    await writer.write(requestLine('r0', 'sent'));
    const before = batches();
    for (let i = 0; i < 10; i++) {
      await new Promise((resolve) => setTimeout(resolve, 0)); // the answer comes back
      writer.record(requestLine(`r${i}`)); // request i's outcome: nobody waits on it
      await turn(); // the next request arrives a turn later
      await writer.write(requestLine(`r${i + 1}`, 'sent')); // and waits on its write-ahead line
    }
    // Two lines per request, one append per request (without the wait: two).
    expect(batches() - before).toBe(10);
    await writer.close();
    const written = await lines();
    expect(written.slice(0, 5)).toEqual(['warm:sent', 'r0:sent', 'r0', 'r1:sent', 'r1']);
    expect(written).toHaveLength(22);
    expect((await verifyAudit(opts)).ok).toBe(true);
  });

  it('reach the file within a few milliseconds when no request follows', async () => {
    const { writer, lines } = await openWriter();
    await writer.write(requestLine('r0', 'sent'));
    writer.record(requestLine('r0'));
    const deadline = Date.now() + 1_000;
    while (!(await lines()).includes('r0') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 2));
    expect(await lines()).toEqual(['r0:sent', 'r0']);
    await writer.close();
  });

  it('are written by close() even while waiting', async () => {
    const { writer, lines } = await openWriter();
    await writer.write(requestLine('r0', 'sent'));
    writer.record(requestLine('r0'));
    await writer.close();
    expect(await lines()).toEqual(['r0:sent', 'r0']);
  });
});
