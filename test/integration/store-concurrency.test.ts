import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Store } from '../../src/credentials/store/index.ts';

const run = promisify(execFile);
const writer = fileURLToPath(new URL('../fixtures/store-writer.ts', import.meta.url));

let dir: string;
let path: string;
const key = randomBytes(32);

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keyway-store-mp-'));
  path = join(dir, 'store.json');
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function until(cond: () => boolean, ms: number): Promise<number> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > ms) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return Date.now() - start;
}

describe('Store across processes', () => {
  it('loses no record when two processes each add 50 at once', async () => {
    const env = { ...process.env, KEYWAY_MASTER_KEY: key.toString('base64') };
    // Neither child finds a store: both race to create it too.
    const children = ['p1:', 'p2:'].map((prefix) => run(process.execPath, [writer, path, prefix, '50'], { env }));
    const outputs = await Promise.all(children);
    for (const { stdout } of outputs) expect(stdout).toBe('done\n');

    const store = await Store.open(path, key);
    expect(store.entries('p1:')).toHaveLength(50);
    expect(store.entries('p2:')).toHaveLength(50);
  });

  it('watch() sees another instance write within a second', async () => {
    const watcher = await Store.open(path, key);
    const writerStore = await Store.open(path, key);
    let changes = 0;
    watcher.watch(() => changes++);
    try {
      const gen = watcher.generation;
      await writerStore.update((d) => d.set('seen', 'yes'));
      await until(() => watcher.get('seen') === 'yes', 1000);
      expect(changes).toBeGreaterThanOrEqual(1);
      expect(watcher.generation).toBeGreaterThan(gen);
    } finally {
      watcher.close();
    }
  });

  it('watch() keeps the last good contents when the file goes bad, reports once, and recovers', async () => {
    const watcher = await Store.open(path, key);
    await watcher.update((d) => d.set('a', 'good'));
    const errors: Error[] = [];
    watcher.watch(
      () => undefined,
      50,
      (err) => errors.push(err),
    );
    try {
      await writeFile(path, '{"format":"keyway-store"');
      await until(() => errors.length > 0, 1000);
      await new Promise((r) => setTimeout(r, 200));
      expect(errors).toHaveLength(1);
      expect((errors[0] as { code?: string }).code).toBe('store_corrupt');
      expect(watcher.get('a')).toBe('good');

      // A good file (here: a whole other store under the same key) is picked up again.
      await rm(path);
      const other = await Store.open(path, key);
      await other.update((d) => d.set('a', 'replaced'));
      await until(() => watcher.get('a') === 'replaced', 1000);
    } finally {
      watcher.close();
    }
  });
});
