import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AuditWriter, verifyAudit } from '../../src/audit/index.ts';
import type { AuditEvent } from '../../src/audit/record.ts';
import type { FromPrimary, FromWorker } from '../../src/app/workers/messages.ts';
import { AuditFromWorkers, MAX_UNANSWERED, PrimaryAuditLog, takeWorkerAudit } from '../../src/app/workers/shared-audit.ts';
import { injectEvent } from '../helpers/audit-events.ts';

// The two ends of src/app/workers/shared-audit.ts joined by a channel in this process (each message
// crosses as JSON, a turn later, as Node's IPC does), in front of a real audit writer on a temp
// folder. The whole path through `keyway start` with two workers is test/integration/workers-audit.test.ts.

function writerOptions() {
  const dir = mkdtempSync(join(tmpdir(), 'keyway-workers-audit-'));
  return { path: join(dir, 'logs', 'audit.jsonl'), headPath: join(dir, 'data', 'audit-head.json'), headKey: randomBytes(32) };
}

interface Channel {
  worker: PrimaryAuditLog;
  /** Messages the worker sent, as the primary received them. */
  sent: FromWorker[];
  /** Cuts the channel: nothing more crosses (the worker is told, as 'disconnect' tells it). */
  cut(): void;
}

const copy = <T>(message: T): T => JSON.parse(JSON.stringify(message)) as T;

/** A worker's log wired to the primary's side; `answering: false`: the primary never answers (stuck). */
function channel(primary: AuditFromWorkers | undefined, pid: number, answering = true): Channel {
  let open = true;
  const sent: FromWorker[] = [];
  const worker: PrimaryAuditLog = new PrimaryAuditLog(
    (message) => {
      if (!open) throw new Error('channel closed');
      sent.push(copy(message));
      if (!answering || message.t !== 'audit') return true;
      setImmediate(() =>
        takeWorkerAudit(primary, pid, copy(message), (answer) => {
          if (open) setImmediate(() => worker.answer(copy(answer) as Extract<FromPrimary, { t: 'audit-done' }>));
        }),
      );
      return true;
    },
    () => open,
    undefined,
  );
  return {
    worker,
    sent,
    cut: () => {
      open = false;
      worker.primaryGone();
    },
  };
}

const sentLine = (i: number): AuditEvent => ({ ...injectEvent(i), status: null, phase: 'sent' });

/** Each line's id, `:sent` after a write-ahead line's, as the file holds them (readAudit folds the two into one). */
async function ids(path: string): Promise<string[]> {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((text) => JSON.parse(text) as { id: string; phase?: string })
    .map((line) => `${line.id}${line.phase === 'sent' ? ':sent' : ''}`);
}

async function until(check: () => boolean, limitMs: number): Promise<boolean> {
  for (const deadline = Date.now() + limitMs; Date.now() < deadline; await new Promise((r) => setTimeout(r, 5))) if (check()) return true;
  return check();
}

describe('a worker’s audit lines through the primary', () => {
  const writers: AuditWriter[] = [];
  afterEach(async () => {
    for (const w of writers.splice(0)) await w.close().catch(() => undefined);
  });

  async function open() {
    const opts = writerOptions();
    const writer = await AuditWriter.open(opts);
    writers.push(writer);
    return { opts, writer, primary: new AuditFromWorkers(writer) };
  }

  it('resolves a write once its line is in the file; two workers’ lines make one chain, each in its order', async () => {
    const { opts, primary } = await open();
    const a = channel(primary, 101);
    const b = channel(primary, 102);
    await Promise.all([a.worker.write(sentLine(1)), b.worker.write(sentLine(2))]);
    // Once write-ahead resolved, the line is in the file: read it now, not later.
    expect((await ids(opts.path)).sort()).toEqual(['req-1:sent', 'req-2:sent']);
    a.worker.record(injectEvent(1), true);
    b.worker.record(injectEvent(2), true);
    await Promise.all([a.worker.write(sentLine(3)), b.worker.write(sentLine(4))]);
    const lines = await ids(opts.path);
    expect(lines.filter((l) => /^req-[13]/.test(l))).toEqual(['req-1:sent', 'req-1', 'req-3:sent']);
    expect(lines.filter((l) => /^req-[24]/.test(l))).toEqual(['req-2:sent', 'req-2', 'req-4:sent']);
    expect((await verifyAudit(opts)).ok).toBe(true);
    // One message per turn: the two lines written in one turn went together.
    expect(a.sent.filter((m) => m.t === 'audit' && m.bodies.length === 2)).toHaveLength(1);
  });

  it("counts each worker's requests in flight in the primary's room, and gives them back when the worker ends", async () => {
    const { writer, primary } = await open();
    const a = channel(primary, 201);
    const b = channel(primary, 202);
    expect(a.worker.reserveLine()).toBe(true);
    expect(a.worker.reserveLine()).toBe(true);
    expect(b.worker.reserveLine()).toBe(true);
    await until(() => a.sent.length > 0 && b.sent.length > 0, 1_000);
    await new Promise((r) => setImmediate(r));
    const reports = [...a.sent, ...b.sent].filter((m) => m.t === 'audit').map((m) => (m as { reserved: number }).reserved);
    expect(reports.sort()).toEqual([1, 2]);
    // The writer's account holds them: one more request takes one more LINE_BOUND out of its room.
    const promised = () => writer.promisedLines;
    expect(promised()).toBe(3);
    // A line written with its reservation gives it back, with the message that carries it.
    await a.worker.write(injectEvent(1), true);
    expect(promised()).toBe(2);
    primary.workerGone(202);
    expect(promised()).toBe(1);
    expect(writer.healthy).toBe(true);
  });

  it('a worker that heard "unhealthy" and sends nothing more hears "healthy" again once the file is back', async () => {
    const { opts, writer, primary } = await open();
    const a = channel(primary, 301);
    const told: FromPrimary[] = [];
    primary.watchHealth((message) => {
      told.push(message);
      a.worker.answer(message as Extract<FromPrimary, { t: 'audit-health' }>);
    });
    try {
      await a.worker.write(sentLine(1));
      renameSync(opts.path, `${opts.path}.aside`);
      mkdirSync(opts.path);
      await until(() => !writer.healthy, 1_000);
      await expect(a.worker.write(sentLine(2))).rejects.toMatchObject({ code: 'audit_unavailable' });
      expect(a.worker.healthy).toBe(false);
      expect(a.worker.reserveLine()).toBe(false);
      const sentBefore = a.sent.length;
      rmdirSync(opts.path);
      renameSync(`${opts.path}.aside`, opts.path);
      expect(await until(() => a.worker.healthy, 2_000)).toBe(true);
      // Told by the primary's watch, not in an answer: the worker sent nothing meanwhile.
      expect(a.sent.length).toBe(sentBefore);
      expect(told.at(-1)).toEqual({ t: 'audit-health', healthy: true });
      expect(a.worker.reserveLine()).toBe(true);
    } finally {
      primary.stop();
    }
  });

  it('refuses every line waiting when the primary is gone, and reports unhealthy', async () => {
    const a = channel(undefined, 401, false);
    const waiting = a.worker.write(sentLine(1));
    await new Promise((r) => setImmediate(r));
    a.cut();
    await expect(waiting).rejects.toMatchObject({ code: 'audit_unavailable', message: expect.stringMatching(/primary process/) });
    expect(a.worker.healthy).toBe(false);
    expect(a.worker.reserveLine()).toBe(false);
    await expect(a.worker.write(sentLine(2))).rejects.toMatchObject({ code: 'audit_unavailable' });
  });

  it(`holds at most ${MAX_UNANSWERED} lines the primary has not answered, then refuses more and reports unhealthy`, async () => {
    const a = channel(undefined, 501, false);
    for (let i = 0; i < MAX_UNANSWERED; i++) a.worker.record(injectEvent(i));
    expect(a.worker.pendingLines).toBe(MAX_UNANSWERED);
    expect(a.worker.healthy).toBe(false);
    await expect(a.worker.write(sentLine(1))).rejects.toMatchObject({ code: 'audit_unavailable', message: expect.stringMatching(/not keeping up/) });
    a.worker.record(injectEvent(0));
    expect(a.worker.droppedLines).toBe(1);
    expect(a.worker.pendingLines).toBe(MAX_UNANSWERED);
  });

  it('appends only one-line JSON objects from a worker: a body with a raw line break or of another shape is refused, the rest written', async () => {
    const { opts, primary } = await open();
    const answers: FromPrimary[] = [];
    const bodies = ['{"id":"x"}\n{"id":"forged"}', '{"id":"y"}\r', 'not json', 42, '{"ts":"t","id":"ok-1"}'];
    primary.take(701, { t: 'audit', id: 1, bodies: bodies as string[], flags: [0, 0, 0, 0, 0], reserved: 0 }, (a) => answers.push(a));
    await until(() => answers.length > 0, 2_000);
    expect(answers).toEqual([{ t: 'audit-done', id: 1, failed: [0, 1, 2, 3], error: 'not an audit line', healthy: true }]);
    expect(readFileSync(opts.path, 'utf8')).not.toContain('forged');
    expect(await ids(opts.path)).toEqual(['ok-1']);
    // A message of another shape altogether is passed over, not thrown on.
    expect(() => primary.take(701, { t: 'audit', id: 2, bodies: 'x', flags: [], reserved: -1 } as never, () => undefined)).not.toThrow();
  });

  it('refuses every line of a message when the primary writes no audit file', async () => {
    const a = channel(undefined, 601);
    await expect(a.worker.write(sentLine(1))).rejects.toMatchObject({ code: 'audit_unavailable', message: 'the primary writes no audit file' });
    expect(a.worker.healthy).toBe(false);
  });
});
