import { spawn } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readdir, rm, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { Store } from '../../src/credentials/store/index.ts';
import { applyState, stateRecords } from './fixtures/store-states.ts';
import { slack } from '../helpers/load.ts';
import { LONG, report, scale } from './scale.ts';

// kill -9 at random moments while a child process writes the store, over and over: after every
// kill the store must open with the same key and hold exactly the last state the child finished
// writing, or the one it was writing. Never a mix, never a corrupt file.

const WRITER = fileURLToPath(new URL('./fixtures/store-crash-writer.ts', import.meta.url));
const KILLS = scale(40, 1_000);
const TIME_LIMIT_MS = scale(25_000, 1_200_000);
/** The kills the short form makes whatever the time limit. */
const KILLS_FLOOR = Math.min(KILLS, 10);

interface Run {
  ready: number;
  begun: number;
  done: number;
}

/** Starts the writer, kills it `delayMs` after it is ready, and says what it had announced. */
async function killWriterAt(storePath: string, keyText: string, delayMs: number): Promise<Run> {
  const child = spawn(process.execPath, [WRITER, storePath], {
    env: { PATH: process.env['PATH'] ?? '', KEYWAY_MASTER_KEY: keyText },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const exited = once(child, 'exit');
  const ready = await new Promise<void>((resolve, reject) => {
    const readyMs = slack(10_000, 60_000); // a wait on the ready line: patient on a busy machine
    const timer = setTimeout(() => reject(new Error(`writer not ready in ${readyMs} ms: ${err}`)), readyMs);
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('\n')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`writer exited with ${code} before ready: ${err}`));
    });
  }).then(
    () => true,
    (e: unknown) => {
      child.kill('SIGKILL');
      throw e;
    },
  );
  expect(ready).toBe(true);
  await new Promise((r) => setTimeout(r, delayMs));
  child.kill('SIGKILL');
  await exited;
  // Whatever it wrote before dying is in the pipe already; let the last chunks arrive.
  if (!child.stdout.readableEnded) await once(child.stdout, 'end').catch(() => undefined);
  const run: Run = { ready: -1, begun: -1, done: -1 };
  for (const line of out.split('\n')) {
    const [word, num] = line.split(' ');
    const n = Number(num);
    if (word === 'ready') run.ready = run.begun = run.done = n;
    if (word === 'begin') run.begun = n;
    if (word === 'done') run.done = n;
  }
  expect(err).toBe('');
  return run;
}

function contents(store: Store): Map<string, unknown> {
  return new Map(store.entries<unknown>(''));
}

describe('crashes: kill -9 during store writes', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it(
    `the store is always the old or the new state, and opens (${KILLS} kills)`,
    async () => {
      const dir = await mkdtemp(join(tmpdir(), 'keyway-crash-store-'));
      dirs.push(dir);
      const path = join(dir, 'store.json');
      const key = randomBytes(32);
      const keyText = key.toString('base64');
      const first = await Store.open(path, key);
      await first.update((d) => applyState(d, 0));

      const figures = { kills: 0, opened: 0, old_state: 0, new_state: 0, killed_mid_write: 0, writes: 0, temp_files_left: 0, temp_files_removed: 0 };
      let committed = 0;
      const started = Date.now();
      // The short form stops at its time limit once it has its floor of kills: on a busy machine each
      // kill takes longer, and the floor is what the check below needs, however long it takes.
      for (let i = 0; i < KILLS && (i < KILLS_FLOOR || Date.now() - started < TIME_LIMIT_MS); i++) {
        // Mostly within the first few writes after start; now and then much later, when the writer
        // has been busy a while (different file sizes, a warm process).
        const delay = i % 10 === 9 ? randomInt(0, 200) : randomInt(0, 25);
        const run = await killWriterAt(path, keyText, delay);
        figures.kills++;
        expect(run.ready, 'the writer read the state the last check found').toBe(committed);
        if (run.begun > run.done) figures.killed_mid_write++;
        figures.writes += run.done - run.ready;

        // The writer died holding the store lock (most kills land inside a write); it would go stale
        // in 5 s and be taken over, as the store tests show. The parent knows the holder is dead, so
        // it clears it rather than make every restart wait.
        await rm(`${path}.lock`, { recursive: true, force: true });

        const store = await Store.open(path, key); // throws store_corrupt / store_wrong_key on a bad file
        figures.opened++;
        const seq = store.get<number>('seq');
        expect(seq === run.done || seq === run.begun, `state ${seq} after kill ${i}: done ${run.done}, begun ${run.begun}`).toBe(true);
        if (seq === run.done) figures.old_state++;
        else figures.new_state++;
        expect(contents(store)).toEqual(stateRecords(seq!));
        committed = seq!;
      }

      // Temporary files of writes cut short are harmless (they never took the store's name); once
      // they are old, the next open removes them.
      const temps = (await readdir(dir)).filter((f) => f.endsWith('.tmp'));
      figures.temp_files_left = temps.length;
      const longAgo = new Date(Date.now() - 3_600_000);
      for (const t of temps) await utimes(join(dir, t), longAgo, longAgo);
      const last = await Store.open(path, key);
      expect(last.get<number>('seq')).toBe(committed);
      // The store's temporary files go at open; the lock's (a writer killed while making its lock
      // file: files/holder-lock.ts) with the next lock taken, so one more write.
      await last.update((d) => applyState(d, committed + 1));
      expect(last.get<number>('seq')).toBe(committed + 1);
      const after = (await readdir(dir)).filter((f) => f.endsWith('.tmp'));
      figures.temp_files_removed = temps.length - after.length;
      expect(after).toEqual([]);

      report('crashes', { store_writes: figures });
      // The long form must reach its count; the short one may be cut by its time limit on a busy machine.
      expect(figures.kills).toBeGreaterThanOrEqual(LONG ? KILLS : KILLS_FLOOR);
      expect(figures.opened).toBe(figures.kills);
      expect(figures.old_state + figures.new_state).toBe(figures.kills);
    },
    Math.max(180_000, TIME_LIMIT_MS + 120_000),
  );
});
