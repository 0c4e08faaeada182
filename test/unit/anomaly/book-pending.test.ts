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
