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
import { type AuditEvent, AuditWriter, verifyAudit } from '../../src/audit/index.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keyway-ahead-now-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function event(id: string, phase?: 'sent'): AuditEvent {
  return {
    ts: new Date().toISOString(),
    id,
    agent: 'a',
    grant: 'g',
    decision: 'inject',
    code: null,
    method: 'GET',
    host: 'api.example.test',
    port: 443,
    path: '/p',
    status: phase === 'sent' ? null : 200,
    duration_ms: 1,
    refreshed: false,
    client: '127.0.0.1',
    ...(phase === 'sent' ? { phase } : {}),
  };
}

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
  const linesNow = () =>
    readFileSync(opts.path, 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => {
        const line = JSON.parse(l) as { id: string; phase?: string };
        return line.id + (line.phase === 'sent' ? ':sent' : '');
      });
  return { writer, batches: () => batches, linesNow, opts };
}

/** A writer whose write-ahead hold is on (log-files.ts): a first line, a pause past the lock's gap, a second. */
async function heldWriter(): Promise<Awaited<ReturnType<typeof openWriter>>> {
  const opened = await openWriter();
  await opened.writer.write(event('warm', 'sent'));
  await sleep(15);
  await opened.writer.write(event('r0', 'sent'));
  return opened;
}

describe('a write-ahead line of a request alone', () => {
  it('is in the file when writeAhead returns, after the outcome lines that waited for it', async () => {
    const { writer, batches, linesNow, opts } = await heldWriter();
    const before = batches();
    for (let i = 0; i < 10; i++) {
      await sleep(0); // the answer comes back
      writer.record(event(`r${i}`), i > 0); // request i's outcome gives its promised line back
      await turn(); // the next request arrives
      expect(writer.reserveLine()).toBe(true); // and is promised its line: the only one in flight
      expect(writer.writeAhead(event(`r${i + 1}`, 'sent'))).toBeNull();
      expect(linesNow().slice(-2)).toEqual([`r${i}`, `r${i + 1}:sent`]);
    }
    expect(batches() - before).toBe(10);
    writer.record(event('r10'), true);
    await writer.close();
    const written = linesNow();
    expect(written.slice(0, 5)).toEqual(['warm:sent', 'r0:sent', 'r0', 'r1:sent', 'r1']);
    expect(written).toHaveLength(23);
    expect((await verifyAudit(opts)).ok).toBe(true);
  });

  it('goes through the queue when another request is in flight, and requests together share one append', async () => {
    const { writer, batches, linesNow, opts } = await heldWriter();
    expect(writer.reserveLine()).toBe(true);
    expect(writer.reserveLine()).toBe(true);
    const before = batches();
    const first = writer.writeAhead(event('a', 'sent'));
    const second = writer.writeAhead(event('b', 'sent'));
    expect(first).toBeInstanceOf(Promise);
    expect(second).toBeInstanceOf(Promise);
    expect(linesNow()).not.toContain('a:sent');
    await Promise.all([first, second]);
    expect(batches() - before).toBe(1);
    expect(linesNow().slice(-2)).toEqual(['a:sent', 'b:sent']);
    writer.record(event('a'), true);
    writer.record(event('b'), true);
    await writer.close();
    expect((await verifyAudit(opts)).ok).toBe(true);
  });

  it('goes through the queue when no hold is on (the first line of a writer)', async () => {
    const { writer, linesNow } = await openWriter();
    expect(writer.reserveLine()).toBe(true);
    const pending = writer.writeAhead(event('a', 'sent'));
    expect(pending).toBeInstanceOf(Promise);
    await pending;
    expect(linesNow()).toEqual(['a:sent']);
    writer.record(event('a'), true);
    await writer.close();
  });

  it('that fails to append is refused and never written; the outcome before it is kept and written once the log takes lines', async () => {
    const { writer, linesNow, opts } = await heldWriter();
    writer.record(event('r0'));
    await turn();
    expect(writer.reserveLine()).toBe(true);
    // The file may not grow (RLIMIT_FSIZE at its size: every append fails with EFBIG, as on a full
    // disk; the writer ignores SIGXFSZ). Set on this process, and lifted before anything else runs.
    const limit = (value: string) => execFileSync('prlimit', ['--pid', String(process.pid), `--fsize=${value}`]);
    limit(`${statSync(opts.path).size}:unlimited`);
    let pending: Promise<void> | null;
    try {
      pending = writer.writeAhead(event('r1', 'sent'));
    } finally {
      limit('unlimited:unlimited');
    }
    expect(pending).toBeInstanceOf(Promise);
    // Failed before writeAhead returned (the append was tried then, not queued for a later turn).
    expect(writer.healthy).toBe(false);
    await expect(pending).rejects.toMatchObject({ code: 'audit_unavailable' });
    // The probe (every 100 ms) writes the kept outcome line, and health returns.
    const deadline = Date.now() + 5_000;
    while (!writer.healthy && Date.now() < deadline) await sleep(10);
    expect(writer.healthy).toBe(true);
    expect(linesNow()).toEqual(['warm:sent', 'r0:sent', 'r0']);
    await writer.close();
    expect((await verifyAudit(opts)).ok).toBe(true);
  });
});
