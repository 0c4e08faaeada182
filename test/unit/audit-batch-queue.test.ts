// The batch queue both audit writers run on (src/audit/batch-queue.ts), against a store in memory:
// order, one batch per turn, lines kept through a failure and leading the next batch, the probe that
// retries without traffic, and close's last try. The writers' own tests cover it with a real file
// and a real PostgreSQL; this pins the contract a store relies on.

import { describe, expect, it } from 'vitest';
import { BatchQueue, type BatchStore } from '../../src/audit/batch-queue.ts';
import { KeptLines } from '../../src/audit/kept-lines.ts';

/** A store that records each append and fails while `down` is set. */
function memoryStore() {
  const appends: string[][] = [];
  const state = { down: false };
  const store: BatchStore<string, number> = {
    append: async (kept, batch) => {
      if (state.down) throw new Error('down');
      appends.push([...kept.before(batch)]);
      return appends.length;
    },
    failed: (lines, err) => ({ unwritten: lines, failure: new Error(`failed: ${(err as Error).message}`) }),
  };
  return { store, appends, state };
}

function queueOn(store: BatchStore<string, number>, probeMs = 5): BatchQueue<string, number> {
  return new BatchQueue(store, { kept: new KeptLines(), probeMs });
}

async function until(check: () => boolean, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

describe('BatchQueue', () => {
  it('gives up a failed write-ahead line (its request is refused) but keeps the other lines of its batch (issue 60)', async () => {
    const { store, appends, state } = memoryStore();
    const queue = queueOn(store);
    state.down = true;
    const outcome = queue.push('outcome of an earlier request');
    const sent = queue.push('sent', true);
    await expect(sent).rejects.toThrow('failed: down');
    await expect(outcome).rejects.toThrow('failed: down');
    expect(queue.keptLines).toBe(1);
    state.down = false;
    await until(() => queue.healthy);
    expect(appends).toEqual([['outcome of an earlier request']]);
    await queue.close();
  });

  it('resolves the writes whose lines a failed batch did write (a rotation part-way), and keeps the rest', async () => {
    const appends: string[][] = [];
    let fail = true;
    const store: BatchStore<string, number> = {
      append: async (kept, batch) => {
        if (fail) throw new Error('down');
        appends.push([...kept.before(batch)]);
        return appends.length;
      },
      // The first line reached the store before the failure.
      failed: (lines) => ({ unwritten: lines.slice(1), failure: new Error('failed') }),
    };
    const queue = queueOn(store);
    const results = await Promise.allSettled([queue.push('a'), queue.push('b', true), queue.push('c')]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'rejected']);
    fail = false;
    await until(() => queue.healthy);
    expect(appends).toEqual([['c']]);
    await queue.close();
  });

  it('writes what one turn queued as one batch, in the order it was pushed', async () => {
    const { store, appends } = memoryStore();
    const queue = queueOn(store);
    await Promise.all(['a', 'b', 'c'].map((line) => queue.push(line)));
    await queue.push('d');
    expect(appends).toEqual([['a', 'b', 'c'], ['d']]);
    expect(queue.pendingLines).toBe(0);
    await queue.close();
  });

  it('pauses once per batch: a loop whose queue is empty after its batch ends, and the next turn still shares a batch', async () => {
    const { store, appends } = memoryStore();
    let pauses = 0;
    store.pause = () => {
      pauses += 1;
      return new Promise<void>((resolve) => setImmediate(resolve));
    };
    const queue = queueOn(store);
    await queue.push('a');
    // One pause before the batch; none after it to find the queue empty (an event-loop turn each).
    expect(pauses).toBe(1);
    // A later turn's writes start a new loop, which pauses before its batch: they still go together.
    await new Promise<void>((resolve) => setImmediate(resolve));
    await Promise.all(['b', 'c'].map((line) => queue.push(line)));
    expect(pauses).toBe(2);
    expect(appends).toEqual([['a'], ['b', 'c']]);
    await queue.close();
  });

  it('keeps a failed batch, rejects its writes, and writes the kept lines first once the probe finds the store back', async () => {
    const { store, appends, state } = memoryStore();
    const queue = queueOn(store);
    state.down = true;
    await expect(queue.push('a')).rejects.toThrow('failed: down');
    expect(queue.healthy).toBe(false);
    expect(queue.writable).toBe(false);
    expect(queue.keptLines).toBe(1);
    state.down = false;
    // No traffic: the probe alone brings the queue back and writes the kept line.
    await until(() => queue.healthy);
    expect(appends).toEqual([['a']]);
    expect(queue.keptLines).toBe(0);
    await queue.push('b');
    expect(appends).toEqual([['a'], ['b']]);
    await queue.close();
  });

  it('close gives kept lines one last try, then refuses new lines', async () => {
    const { store, appends, state } = memoryStore();
    const queue = queueOn(store, 60_000);
    state.down = true;
    await expect(queue.push('a')).rejects.toThrow();
    state.down = false;
    await queue.close();
    expect(appends).toEqual([['a']]);
    const refused = queue.bodyOf({} as never, undefined);
    expect(refused).toBeInstanceOf(Error);
    expect((refused as Error).message).toBe('the audit writer is closed');
  });

  it('a fault turns the queue unhealthy until a probe batch reaches the store', async () => {
    const { store, appends } = memoryStore();
    const queue = queueOn(store, 60_000);
    queue.fault(true);
    expect(queue.healthy).toBe(false);
    await until(() => queue.healthy);
    // The probe ran an empty batch: nothing written, health back.
    expect(appends).toEqual([[]]);
    await queue.close();
  });

  it('a line nobody waits for (pushUnawaited) goes in its turn, is kept through a failure, and its failure is reported, not thrown', async () => {
    const { store, appends, state } = memoryStore();
    const reported: Array<[string, number]> = [];
    const queue = new BatchQueue(store, {
      kept: new KeptLines(),
      probeMs: 5,
      failures: { rejected: (err, count) => void reported.push([err.message, count]), recovered: () => undefined, close: () => undefined },
    });
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      queue.pushUnawaited('a');
      await queue.push('b');
      expect(appends).toEqual([['a', 'b']]);
      state.down = true;
      queue.pushUnawaited('outcome');
      await expect(queue.push('sent', true)).rejects.toThrow('failed: down');
      // Both lines of the failed batch were refused and said once; the outcome is kept, the sent line given up.
      expect(reported).toEqual([['failed: down', 2]]);
      expect(queue.keptLines).toBe(1);
      state.down = false;
      await until(() => queue.healthy);
      expect(appends).toEqual([['a', 'b'], ['outcome']]);
      queue.refuseUnawaited(new Error('no room'));
      expect(reported.at(-1)).toEqual(['no room', 1]);
      await new Promise((resolve) => setImmediate(resolve));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
      await queue.close();
    }
  });
  it("a line queued after pushAhead took a paused batch waits for a pause of its own (the store's gap), not none", async () => {
    const appends: string[][] = [];
    let pauses = 0;
    const store: BatchStore<string, number> = {
      // As the file writer's wait for the next write-ahead line, whose timer appendNow clears: only a wake ends it.
      pause: () => {
        pauses++;
        return pauses === 1 ? new Promise<void>(() => undefined) : new Promise<void>((resolve) => setTimeout(resolve, 5));
      },
      append: async (kept, batch) => {
        appends.push([...kept.before(batch)]);
        return appends.length;
      },
      appendNow: (batch) => {
        appends.push([...batch]);
        return appends.length;
      },
      failed: (lines) => ({ unwritten: lines, failure: new Error('failed') }),
    };
    const queue = queueOn(store);
    queue.pushUnawaited('o1'); // the loop starts and pauses
    await new Promise((resolve) => setImmediate(resolve));
    expect(queue.pushAhead('s1')).toBeNull(); // takes o1 with it, and wakes the loop
    queue.pushUnawaited('o2'); // in the same turn
    await new Promise((resolve) => setImmediate(resolve));
    expect(appends).toEqual([['o1', 's1']]); // o2 waits out a pause first
    expect(pauses).toBe(2);
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(appends).toEqual([['o1', 's1'], ['o2']]);
  });
});

describe('KeptLines.before', () => {
  it('is the batch itself when nothing is kept, else a new list of the kept lines then the batch', () => {
    const kept = new KeptLines();
    const batch = ['b1', 'b2'];
    expect(kept.before(batch)).toBe(batch);
    kept.keep(['k1', 'k2'], () => undefined);
    const lines = kept.before(batch);
    expect(lines).toEqual(['k1', 'k2', 'b1', 'b2']);
    expect(lines).not.toBe(batch);
    expect(batch).toEqual(['b1', 'b2']);
    expect(kept.lines).toEqual(['k1', 'k2']);
  });
});
