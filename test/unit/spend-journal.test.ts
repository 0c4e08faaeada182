// The spend journal (issue 85) with the real ledger on a real file store in a temp folder: a
// "crash" is a ledger dropped without close (its last window never flushed, its store writes never
// made again) whose journal's holder is then a process gone (another boot), and a restart is a new
// journal and ledger on the same folder and store, as parts.ts opens them. What the store lacked is
// counted again, exactly once, budgets and spend records both; a clean close leaves nothing to count
// again; a live process's journal is never read by another starting beside it; a torn last line is
// skipped; flushed files and adopted folders are deleted; and a journal that cannot be written says
// so, so the answer's end is not given.
import { randomBytes } from 'node:crypto';
import { appendFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SpendJournal } from '../../src/spend/ledger/journal.ts';
import { SpendLedger } from '../../src/spend/ledger/ledger.ts';
import type { BudgetConfig } from '../../src/config/spend.ts';
import { Store } from '../../src/credentials/store/index.ts';
import type { SpendEntry } from '../../src/spend/core/ledger.ts';
import type { SpendRecord } from '../../src/spend/core/records.ts';

const budgets: BudgetConfig[] = [{ name: 'budgets[0]', agent: 'bot', limit: { tokens: 1_000_000_000 }, per: 'month', over: 'refuse' }];

const entry = (i: number): SpendEntry => ({
  agent: 'bot',
  grant: 'anthropic',
  end_user: null,
  at: new Date(),
  reading: { usage: { model: 'claude-sonnet-4-5', input_tokens: 100 + i, output_tokens: 50 }, basis: 'reported' },
  cost_usd: 0.001,
});

describe('spend journal', () => {
  let dir: string;
  let store: Store;

  beforeEach(async () => {
    running = undefined;
    dir = mkdtempSync(join(tmpdir(), 'keyway-spend-journal-'));
    store = await Store.open(join(dir, 'store.json'), randomBytes(32));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const killed = new Set<SpendJournal>();
  let running: SpendJournal | undefined;
  const folder = (journal: SpendJournal) => join(dir, 'spend-journal', journal.id);
  const folders = () => readdirSync(join(dir, 'spend-journal')).filter((n) => /^[0-9a-f]{32}$/.test(n));

  /** The process writing `journal` is gone: its store writes never happen again, and its holder names another boot. */
  function kill(journal: SpendJournal): void {
    killed.add(journal);
    const path = join(folder(journal), 'holder.json');
    if (!existsSync(path)) return; // closed cleanly: its folder is gone
    writeFileSync(path, JSON.stringify({ ...JSON.parse(readFileSync(path, 'utf8')), boot: 'a-boot-before-this-one' }));
  }

  /** A process's ledger, as parts.ts makes it: its own journal, then those of killed ones adopted and counted. `alone`: the last one started was killed first. */
  async function open(alone = true): Promise<{ ledger: SpendLedger; journal: SpendJournal; recounted: number; skipped: number }> {
    if (alone && running !== undefined && !killed.has(running)) kill(running);
    const journal = SpendJournal.create(dir);
    running = journal;
    const adopted = await SpendJournal.adopt(dir);
    const own = {
      get: store.get.bind(store),
      update: ((change) => (killed.has(journal) ? new Promise(() => undefined) : store.update(change))) as Store['update'],
    };
    const ledger = new SpendLedger({ store: own, budgets: () => budgets, journal });
    return { ledger, journal, recounted: await ledger.recover(adopted), skipped: adopted.reduce((n, j) => n + j.skipped, 0) };
  }

  /** What the store counts: spend records summed, and the budget's used tokens. */
  async function counted(): Promise<{ requests: number; tokens: number; budget: number }> {
    const records = store.entries<SpendRecord>('spend:').map(([, r]) => r);
    const budget = store.entries<{ tokens: number }>('budget:').reduce((sum, [, r]) => sum + r.tokens, 0);
    return {
      requests: records.reduce((n, r) => n + r.requests, 0),
      tokens: records.reduce((n, r) => n + r.input_tokens + r.output_tokens, 0),
      budget,
    };
  }

  const tokensOf = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => 150 + from + k).reduce((a, b) => a + b, 0);

  it('a crash after a flush: the lines after its mark are counted again, once; a clean close then leaves nothing', async () => {
    const first = await open();
    expect(first.recounted).toBe(0);
    for (let i = 0; i < 10; i++) first.ledger.add(entry(i));
    await first.ledger.flush();
    for (let i = 10; i < 25; i++) first.ledger.add(entry(i));
    expect(first.ledger.settled(), 'journaled at once: nothing to wait for').toBeUndefined();
    // Killed: the 15 after the flush never reach the store.
    expect(await counted()).toEqual({ requests: 10, tokens: tokensOf(0, 10), budget: tokensOf(0, 10) });

    const second = await open();
    expect(second.recounted).toBe(15);
    expect(await counted()).toEqual({ requests: 25, tokens: tokensOf(0, 25), budget: tokensOf(0, 25) });
    // Killed again right after its recount flush, then more answers and a clean close.
    second.ledger.add(entry(25));
    await second.ledger.close();

    const third = await open();
    expect(third.recounted, 'a clean close left nothing to count again').toBe(0);
    expect(await counted()).toEqual({ requests: 26, tokens: tokensOf(0, 26), budget: tokensOf(0, 26) });
    expect(folders(), 'the adopted folder and the cleanly closed one are gone').toEqual([third.journal.id]);
    expect(
      store.entries('spend-journal:').map(([id]) => id),
      'and their marks',
    ).toEqual([]);
    await third.ledger.close();
    expect(folders()).toEqual([]);
  });

  it('a journal whose process still runs is not read by another keyway starting beside it (keyway fetch beside keyway start)', async () => {
    const first = await open();
    for (let i = 0; i < 5; i++) first.ledger.add(entry(i));
    const beside = await open(false);
    expect(beside.recounted).toBe(0);
    await first.ledger.close();
    await beside.ledger.close();
    expect(await counted()).toEqual({ requests: 5, tokens: tokensOf(0, 5), budget: tokensOf(0, 5) });
  });

  it('a torn last line is skipped and said so; the adopted folder is deleted once its lines are in the store', async () => {
    const first = await open();
    for (let i = 0; i < 3; i++) first.ledger.add(entry(i));
    const files = readdirSync(folder(first.journal)).filter((n) => n.endsWith('.jsonl'));
    expect(files).toEqual(['0000000000000001.jsonl']);
    // Killed mid-write: half a line at the end (and a file of something else's lines, before it).
    appendFileSync(join(folder(first.journal), files[0]!), '{"s":4,"a":"bot","g":"anthropic","u":null,"t":1,"r":{"basis":"reported","usage"');
    writeFileSync(join(folder(first.journal), '0000000000000000.jsonl'), '{"s":1,"a":"bot","g":"anthropic","u":null,"t":1,"r":{"basis":"guessed"},"c":0}\n');
    const second = await open();
    expect(second.skipped).toBe(2);
    expect(second.recounted).toBe(3);
    expect(folders()).toEqual([second.journal.id]);
    second.ledger.add(entry(3));
    await second.ledger.close();
    expect(await counted()).toEqual({ requests: 4, tokens: tokensOf(0, 4), budget: tokensOf(0, 4) });
  });

  it("flushed files are deleted past their size; a killed process's lines past its mark, and only those, are counted again", async () => {
    const first = await open();
    // Over the 1 MiB a file is followed at: the next flush starts a new one and deletes this one.
    for (let i = 0; i < 7_000; i++) first.ledger.add(entry(i));
    await first.ledger.flush();
    expect(
      readdirSync(folder(first.journal)).filter((n) => n.endsWith('.jsonl')),
      'every line is in the store',
    ).toEqual([]);
    first.ledger.add(entry(7_000));
    // Killed: the one line after the mark is in a new file.
    const second = await open();
    expect(second.recounted).toBe(1);
    await second.ledger.close();
    expect(await counted()).toEqual({ requests: 7_001, tokens: tokensOf(0, 7_001), budget: tokensOf(0, 7_001) });
  });

  it('a journal that cannot be written: the add is counted in memory, and settled() refuses, naming the code only', async () => {
    const { ledger, journal } = await open();
    // A file where the journal's folder was: its first file cannot be made (ENOTDIR).
    rmSync(folder(journal), { recursive: true });
    writeFileSync(folder(journal), 'not a folder');
    ledger.add(entry(0));
    const settled = ledger.settled();
    expect(settled).toBeInstanceOf(Promise);
    await expect(settled!).rejects.toThrow(/^model spend cannot be journaled \(ENOTDIR\)$/);
    await ledger.flush();
    expect((await counted()).requests).toBe(1);
  });
});
