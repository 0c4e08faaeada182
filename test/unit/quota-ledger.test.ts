import { describe, expect, it } from 'vitest';
import { QuotaLedger } from '../../src/quotas/ledger.ts';
import { limitsSchema } from '../../src/config/limits.ts';
import type { LimitScope } from '../../src/policy/rate-limits.ts';

/** The store's update() as the ledger uses it: one change at a time, each after a turn of the loop. */
function memoryStore() {
  const records = new Map<string, unknown>();
  let queue: Promise<unknown> = Promise.resolve();
  let writes = 0;
  let failing = false;
  return {
    records,
    writes: () => writes,
    fail: (on: boolean) => {
      failing = on;
    },
    get: <R>(id: string) => records.get(id) as R | undefined,
    update<T>(change: (draft: { get<R>(id: string): R | undefined; set(id: string, value: unknown): void }) => T): Promise<T> {
      const run = queue.then(async () => {
        await new Promise((r) => setImmediate(r));
        if (failing) throw new Error('database down');
        writes++;
        return change({ get: <R>(id: string) => records.get(id) as R | undefined, set: (id, value) => void records.set(id, value) });
      });
      queue = run.catch(() => undefined);
      return run;
    },
  };
}

const scope: LimitScope = {
  kind: 'grant',
  name: 'grant "api"',
  key: 'grant\0api',
  grant: 'api',
  limits: limitsSchema.parse({ quota: { requests: '100/day' } }),
};
const NOW = new Date('2026-11-23T12:00:00Z');

async function takeMany(ledger: QuotaLedger, count: number, perDay: number, now = NOW): Promise<number> {
  const results = await Promise.all(Array.from({ length: count }, () => ledger.take(scope, perDay, now)));
  return results.filter(Boolean).length;
}

describe('request quotas: blocks reserved in the store, counted down in memory', () => {
  it('two ledgers (two processes) on one store pass exactly the quota between them, with far fewer writes than requests', async () => {
    const store = memoryStore();
    const a = new QuotaLedger(store);
    const b = new QuotaLedger(store);
    const [passedA, passedB] = await Promise.all([takeMany(a, 80, 100), takeMany(b, 80, 100)]);
    expect(passedA + passedB).toBe(100);
    expect(store.records.get('quota:grant:_:api')).toEqual({ day: '2026-11-23', reserved: 100 });
    expect(store.writes()).toBeLessThan(60);
    // Spent: each refuses; once it has seen the store empty, at once, without asking again.
    expect(await a.take(scope, 100, NOW)).toBe(false);
    expect(await b.take(scope, 100, NOW)).toBe(false);
    const writes = store.writes();
    expect(a.take(scope, 100, NOW)).toBe(false);
    expect(b.take(scope, 100, NOW)).toBe(false);
    expect(store.writes()).toBe(writes);
  });

  it('the next UTC day starts from zero; a raised quota (a reload) asks the store again', async () => {
    const store = memoryStore();
    const ledger = new QuotaLedger(store);
    expect(await takeMany(ledger, 5, 3)).toBe(3);
    expect(await takeMany(ledger, 5, 4)).toBe(1);
    expect(await takeMany(ledger, 5, 4, new Date('2026-11-24T00:00:00Z'))).toBe(4);
  });

  it('a store that cannot be written fails the take (the stage refuses the request), and the next take tries again', async () => {
    const store = memoryStore();
    const ledger = new QuotaLedger(store);
    store.fail(true);
    await expect(ledger.take(scope, 100, NOW)).rejects.toThrow('database down');
    store.fail(false);
    expect(await ledger.take(scope, 100, NOW)).toBe(true);
  });

  it('body bytes: counted in memory, added to the store within a second and at close; another process sees them', async () => {
    const store = memoryStore();
    const a = new QuotaLedger(store);
    const b = new QuotaLedger(store);
    a.addBytes([scope], 700, NOW);
    a.addBytes([scope], 300, NOW);
    expect(a.bytesUsed(scope, NOW)).toBe(1_000);
    expect(b.bytesUsed(scope, NOW)).toBe(0);
    await a.flush();
    expect(store.records.get('quota:grant:_:api')).toEqual({ day: '2026-11-23', reserved: 0, bytes: 1_000 });
    expect(b.bytesUsed(scope, NOW)).toBe(1_000);
    // Requests and bytes share the record: neither write loses the other's count.
    expect(await b.take(scope, 100, NOW)).toBe(true);
    b.addBytes([scope], 24, NOW);
    await b.close();
    expect(store.records.get('quota:grant:_:api')).toMatchObject({ bytes: 1_024 });
    expect((store.records.get('quota:grant:_:api') as { reserved: number }).reserved).toBeGreaterThan(0);
    expect(a.bytesUsed(scope, new Date('2026-11-24T00:00:00Z'))).toBe(0);
  });
});
