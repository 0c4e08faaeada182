// The anomaly book's counts not yet stored (src/anomaly/book/book.ts): an entry stored while its
// window was still open is dropped once the window closes, at a later flush, so the map holds no
// more than the windows still open (or not yet stored), however long the agent keeps counting.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AnomalyBook } from '../../../src/anomaly/book/book.ts';
import type { AnomalySettings } from '../../../src/anomaly/core/settings.ts';

/** A store as the book sees it: one map, every update applied at once under no other writer. */
function memoryStore() {
  const map = new Map<string, unknown>();
  const draft = {
    get: <T>(id: string) => map.get(id) as T | undefined,
    set: (id: string, value: unknown) => void map.set(id, value),
    delete: (id: string) => map.delete(id),
    entries: <T>(prefix: string) => [...map].filter(([k]) => k.startsWith(prefix)) as Array<[string, T]>,
  };
  return { ...draft, update: async <R>(change: (d: typeof draft) => R) => change(draft), map };
}

const PER_MS = 60_000;
const SETTINGS: AnomalySettings = {
  mode: 'hold',
  first_use: true,
  new_host: true,
  new_method: true,
  burst: { perMs: PER_MS, factor: 5 },
  off_hours: undefined,
};
const T0 = Date.UTC(2030, 0, 2, 10, 0, 0);

describe('anomaly book: counts not yet stored', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['Date'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('an entry stored while its window was open is dropped once it closes: 50 windows counted, the map stays bounded', async () => {
    const store = memoryStore();
    const book = new AnomalyBook(store, () => new Set(['bot', 'other']));
    for (let i = 0; i < 50; i++) {
      // Counted and stored mid-window: the entry stays (n 0) while the window is open.
      vi.setSystemTime(T0 + i * PER_MS + 10_000);
      book.count('bot', SETTINGS, new Date());
      book.count('other', SETTINGS, new Date());
      await book.flush();
      expect(book.pendingWindows).toBeLessThanOrEqual(2);
    }
    // The counts reached the store all the same.
    expect([...store.map.keys()].sort()).toEqual(['anomaly:bot', 'anomaly:other']);
    // Once the last window closes, the next flush leaves nothing behind.
    vi.setSystemTime(T0 + 51 * PER_MS);
    await book.flush();
    expect(book.pendingWindows).toBe(0);
    await book.close();
  });
});

/** A store that shows its first write at once but settles that write's promise only when `release` is called. */
function slowSettlingStore() {
  const store = memoryStore();
  let release: () => void = () => undefined;
  let held: Promise<void> | undefined = new Promise<void>((resolve) => {
    release = resolve;
  });
  const update = async <R>(change: Parameters<typeof store.update>[0]) => {
    const result = change(store);
    const wait = held;
    held = undefined;
    if (wait !== undefined) await wait;
    return result as R;
  };
  return { ...store, update, release: () => release() };
}

describe('anomaly book: a flush being written', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['Date'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('counts each request once while the store already shows the write and its promise has not settled', async () => {
    const store = slowSettlingStore();
    const book = new AnomalyBook(store, () => new Set(['bot']));
    vi.setSystemTime(T0 + 10_000);
    const seen = { grant: 'api', method: 'GET', host: 'api.test:443', pathClass: '/v1', hourOfWeek: undefined };
    // 9 requests in the window: under 5 × the floor baseline of 2, so the 10th is no burst.
    for (let i = 0; i < 9; i++) book.count('bot', SETTINGS, new Date());
    const burst = () => book.judge('bot', seen, SETTINGS, new Date()).some((s) => s.name === 'burst');
    expect(burst()).toBe(false);
    const flushing = book.flush();
    // The record read now holds the 9; the book must not add its own 9 again (18: a burst).
    await Promise.resolve();
    expect(store.map.has('anomaly:bot')).toBe(true);
    expect(burst()).toBe(false);
    store.release();
    await flushing;
    expect(burst()).toBe(false);
    // And a burst is still one: 10 more in the same window.
    for (let i = 0; i < 10; i++) book.count('bot', SETTINGS, new Date());
    expect(burst()).toBe(true);
    await book.close();
  });
});
