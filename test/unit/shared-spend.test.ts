// A worker's spend ledger (workers/shared-spend.ts) without the processes: what it sends the primary
// and when. No budget on a scope: no message at all; a budget that applies: one spend-check, its
// verdict carried back with its dates; adds sent in order, each answered once the primary has it
// durable (settled() waits for that, and fails when the primary could not journal it); a primary
// gone fails what waits. The real channels are in test/integration/spend-workers.test.ts.
import { describe, expect, it } from 'vitest';
import type { FromPrimary, FromWorker } from '../../src/app/workers/messages.ts';
import { answerSpendCheck, RemoteSpend, takeSpendAdd } from '../../src/app/workers/shared-spend.ts';
import type { BudgetConfig } from '../../src/config/spend.ts';
import type { BudgetVerdict, SpendEntry, SpendLedgerApi } from '../../src/spend/core/ledger.ts';

const budget: BudgetConfig = { name: 'budgets[0]', agent: 'ci', limit: { usd: 5 }, per: 'day', warn_at: 0.8, over: 'refuse' };
const NOW = new Date('2026-11-26T22:10:00Z');
const entry: SpendEntry = {
  agent: 'ci',
  grant: 'openai',
  end_user: null,
  at: NOW,
  reading: { usage: { model: 'gpt-5', input_tokens: 10, output_tokens: 2, cached_input_tokens: 4 }, basis: 'partial' },
  cost_usd: 0.25,
};

function remote(budgets: BudgetConfig[]) {
  const sent: FromWorker[] = [];
  const spend = new RemoteSpend(
    (m) => {
      sent.push(JSON.parse(JSON.stringify(m)) as FromWorker); // as Node's IPC carries it
      return true;
    },
    () => budgets,
  );
  return { spend, sent };
}

describe('RemoteSpend', () => {
  it('asks nothing when no budget applies to the scope, and answers at once', () => {
    const { spend, sent } = remote([budget]);
    expect(spend.check({ agent: 'other', grant: 'openai', end_user: null }, NOW)).toEqual({ over: undefined, warn: [] });
    expect(remote([]).spend.check({ agent: 'ci', grant: 'openai', end_user: null }, NOW)).toEqual({ over: undefined, warn: [] });
    expect(sent).toEqual([]);
  });

  it("sends adds in order, and the primary's ledger gets them as they were (dates included)", () => {
    const { spend, sent } = remote([]);
    spend.add(entry);
    spend.add({ ...entry, cost_usd: null, reading: { usage: undefined, basis: 'reported' } });
    expect(sent.map((m) => m.t)).toEqual(['spend-add', 'spend-add']);
    const got: SpendEntry[] = [];
    const ledger = { add: (e: SpendEntry) => got.push(e), settled: () => undefined } as unknown as SpendLedgerApi;
    const replies: FromPrimary[] = [];
    for (const m of sent) if (m.t === 'spend-add') takeSpendAdd(ledger, m, (r) => replies.push(r));
    expect(got[0]).toEqual(entry);
    expect(got[1]).toEqual({ ...entry, cost_usd: null, reading: { basis: 'reported' } });
    expect(replies).toEqual([
      { t: 'spend-added', id: 1 },
      { t: 'spend-added', id: 2 },
    ]);
  });

  it("settled() waits for the primary's word that every add is durable, and fails when it could not journal one", async () => {
    const { spend, sent } = remote([]);
    expect(spend.settled()).toBeUndefined();
    spend.add(entry);
    spend.add(entry);
    const waiting = spend.settled();
    expect(waiting).toBeInstanceOf(Promise);
    let done = false;
    void waiting!.then(() => (done = true));
    spend.added({ t: 'spend-added', id: 1 });
    await new Promise((r) => setImmediate(r));
    expect(done, 'not before the newest add is durable').toBe(false);
    spend.added({ t: 'spend-added', id: 2 });
    await waiting;
    expect(spend.settled()).toBeUndefined();
    // The primary's journal cannot be written: the add is counted there, and the end is not given here.
    spend.add(entry);
    const failing = spend.settled()!;
    const journalDown = {
      add: () => undefined,
      settled: () => Promise.reject(new Error('model spend cannot be journaled (ENOSPC)')),
    } as unknown as SpendLedgerApi;
    const m = sent.at(-1)!;
    if (m.t === 'spend-add') takeSpendAdd(journalDown, m, (r) => spend.added(JSON.parse(JSON.stringify(r))));
    await expect(failing).rejects.toThrow('ENOSPC');
    await expect(spend.settled()!).rejects.toThrow('ENOSPC');
  });

  it("asks the primary's ledger when a budget applies and carries its verdict back, standings and dates intact", async () => {
    const { spend, sent } = remote([budget]);
    const asking = spend.check({ agent: 'ci', grant: 'openai', end_user: null }, NOW);
    expect(sent).toEqual([{ t: 'spend-check', id: 1, scope: { agent: 'ci', grant: 'openai', end_user: null }, nowMs: NOW.getTime() }]);
    const standing = { budget, scope: '', used: 4.5, limit: 5, resets_at: new Date('2026-11-27T00:00:00Z') };
    const verdict: BudgetVerdict = { over: undefined, warn: [standing] };
    const ledger = { check: () => Promise.resolve(verdict) } as unknown as SpendLedgerApi;
    const reply = await new Promise<Extract<FromPrimary, { t: 'spend-verdict' }>>((resolve) => {
      const m = sent[0]!;
      if (m.t === 'spend-check') answerSpendCheck(ledger, m, resolve);
    });
    spend.answer(JSON.parse(JSON.stringify(reply)));
    expect(await asking).toEqual(verdict);
  });

  it("a check the primary's ledger fails on fails here; a primary gone fails what waits and what comes", async () => {
    const { spend, sent } = remote([budget]);
    const scope = { agent: 'ci', grant: 'openai', end_user: null };
    const failing = spend.check(scope, NOW);
    const ledger = { check: () => Promise.reject(new Error('store down')) } as unknown as SpendLedgerApi;
    const m = sent[0]!;
    if (m.t === 'spend-check') answerSpendCheck(ledger, m, (r) => spend.answer(r));
    await expect(failing).rejects.toThrow('store down');
    const waiting = spend.check(scope, NOW);
    spend.primaryGone();
    await expect(waiting).rejects.toThrow('the primary process is gone');
    await expect(spend.check(scope, NOW)).rejects.toThrow('the primary process is gone');
    spend.add(entry);
    expect(sent.filter((s) => s.t === 'spend-add')).toEqual([]);
    await expect(spend.settled()!).rejects.toThrow('the primary process is gone');
  });
});
