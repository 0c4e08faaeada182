// A request alone gets its write-ahead line appended before writeAhead returns (src/audit/batch-queue.ts
// pushAhead, src/audit/file/writer.ts #appendAlone): no queue turn between the line and the request
// going up. What that must keep: the order of the calls (lines waiting before it go first, in the
// same append), the group commit of requests that come together, and a failed append refusing the
// request and never writing its line. The real writer on a real file; the file is read synchronously
// right after the call, so "before it returns" is what is checked.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditWriter, verifyAudit } from '../../src/audit/index.ts';
import { lineIds, requestLine } from '../helpers/audit-events.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keyway-ahead-now-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

async function openWriter(): Promise<{
  writer: AuditWriter;
  batches: () => number;
  linesNow: () => string[];
  opts: { path: string; headPath: string; headKey: Buffer };
}> {
  let batches = 0;
  const opts = { path: join(dir, 'audit.jsonl'), headPath: join(dir, 'audit.head'), headKey: randomBytes(32) };
  const writer = await AuditWriter.open({ ...opts, onBatch: () => void batches++ });
  const linesNow = () => lineIds(readFileSync(opts.path, 'utf8'));
  return { writer, batches: () => batches, linesNow, opts };
}

/**
 * A write-ahead hold (log-files.ts) that has just begun: it lasts MAX_HOLD_MS (50 ms) from its first
 * batch, so a line waited on past the last hold's end takes a fresh one.
 */
async function freshHold(writer: AuditWriter, id: string): Promise<void> {
  await sleep(60);
  await writer.write(requestLine(id, 'sent'));
}

async function heldWriter(): Promise<Awaited<ReturnType<typeof openWriter>>> {
  const opened = await openWriter();
  await opened.writer.write(requestLine('warm', 'sent'));
  await freshHold(opened.writer, 'r0');
  return opened;
}

describe('a write-ahead line of a request alone', () => {
  it('is in the file when writeAhead returns, after the outcome lines that waited for it', async () => {
    const { writer, linesNow, opts } = await heldWriter();
    const expected = ['warm:sent', 'r0:sent'];
    // A hold ends 50 ms after it began, and the next line then goes through the queue, which takes
    // a new one: on a slow machine some requests may, and the loop runs until five were alone.
    let alone = 0;
    let i = 0;
    for (; alone < 5 && i < 200; i++) {
      await sleep(0); // the answer comes back
      writer.record(requestLine(`r${i}`), i > 0); // request i's outcome gives its promised line back
      await turn(); // the next request arrives
      expect(writer.reserveLine()).toBe(true); // and is promised its line: the only one in flight
      const appending = writer.writeAhead(requestLine(`r${i + 1}`, 'sent'));
      expected.push(`r${i}`, `r${i + 1}:sent`);
      if (appending === null) {
        alone++;
        expect(linesNow()).toEqual(expected);
      } else await appending;
    }
    expect(alone).toBe(5);
    writer.record(requestLine(`r${i}`), true);
    expected.push(`r${i}`);
    await writer.close();
    expect(linesNow()).toEqual(expected);
    expect((await verifyAudit(opts)).ok).toBe(true);
  });

  it('goes through the queue when another request is in flight, and requests together share one append', async () => {
    const { writer, batches, linesNow, opts } = await heldWriter();
    expect(writer.reserveLine()).toBe(true);
    expect(writer.reserveLine()).toBe(true);
    const before = batches();
    const first = writer.writeAhead(requestLine('a', 'sent'));
    const second = writer.writeAhead(requestLine('b', 'sent'));
    expect(first).toBeInstanceOf(Promise);
    expect(second).toBeInstanceOf(Promise);
    expect(linesNow()).not.toContain('a:sent');
    await Promise.all([first, second]);
    expect(batches() - before).toBe(1);
    expect(linesNow().slice(-2)).toEqual(['a:sent', 'b:sent']);
    writer.record(requestLine('a'), true);
    writer.record(requestLine('b'), true);
    await writer.close();
    expect((await verifyAudit(opts)).ok).toBe(true);
  });

  it('goes through the queue when no hold is on (the first line of a writer)', async () => {
    const { writer, linesNow } = await openWriter();
    expect(writer.reserveLine()).toBe(true);
    const pending = writer.writeAhead(requestLine('a', 'sent'));
    expect(pending).toBeInstanceOf(Promise);
    await pending;
    expect(linesNow()).toEqual(['a:sent']);
    writer.record(requestLine('a'), true);
    await writer.close();
  });

  it('that fails to append is refused and never written; the outcome before it is kept and written once the log takes lines', async () => {
    const { writer, linesNow, opts } = await openWriter();
    const expected: string[] = [];
    // The file may not grow (RLIMIT_FSIZE at its size: every append fails with EFBIG, as on a full
    // disk; the writer ignores SIGXFSZ). Set on this process, and lifted before anything else runs.
    const limit = (value: string) => execFileSync('prlimit', ['--pid', String(process.pid), `--fsize=${value}`]);
    // Up to five tries, each on a fresh hold: a machine slow enough to let the hold run out first
    // sends the line through the queue, which appends it after the limit is lifted.
    let failedAtOnce = false;
    for (let attempt = 0; attempt < 5 && !failedAtOnce; attempt++) {
      await freshHold(writer, `w${attempt}`);
      writer.record(requestLine(`w${attempt}`));
      expected.push(`w${attempt}:sent`, `w${attempt}`);
      await turn();
      expect(writer.reserveLine()).toBe(true);
      limit(`${statSync(opts.path).size}:unlimited`);
      let pending: Promise<void> | null;
      try {
        pending = writer.writeAhead(requestLine(`r${attempt}`, 'sent'));
      } finally {
        limit('unlimited:unlimited');
      }
      expect(pending).toBeInstanceOf(Promise);
      // Unhealthy before writeAhead returned: the append was tried then, and failed.
      failedAtOnce = !writer.healthy;
      if (failedAtOnce) await expect(pending).rejects.toMatchObject({ code: 'audit_unavailable' });
      else {
        await pending;
        expected.push(`r${attempt}:sent`);
        writer.record(requestLine(`r${attempt}`), true);
        expected.push(`r${attempt}`);
      }
    }
    expect(failedAtOnce).toBe(true);
    // The probe (every 100 ms) writes the kept outcome line, and health returns.
    const deadline = Date.now() + 5_000;
    while (!writer.healthy && Date.now() < deadline) await sleep(10);
    expect(writer.healthy).toBe(true);
    await writer.close();
    expect(linesNow()).toEqual(expected);
    expect((await verifyAudit(opts)).ok).toBe(true);
  });
});
