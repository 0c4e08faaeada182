// Spend under proxy.workers (issue 63): the test plays the primary, with the real SpendLedger on a
// real file store and the real answering functions (workers/shared-spend.ts), and forks two
// stand-in workers (helpers/spend-worker-child.ts) holding the real RemoteSpend on their IPC
// channels. Two workers adding and checking concurrently: the totals are exact to the token and
// to 1e-6 USD, and the overshoot past a budget is at most what was in flight when it was crossed.
// An add on one worker is seen by a check on the other that it triggers, every time.
import { type ChildProcess, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SpendLedger } from '../../src/spend/ledger/ledger.ts';
import type { FromWorker } from '../../src/app/workers/messages.ts';
import { answerSpendCheck, takeSpendAdd } from '../../src/app/workers/shared-spend.ts';
import type { BudgetConfig } from '../../src/config/spend.ts';
import { Store } from '../../src/credentials/store/index.ts';
import { budgetKey, periodOf } from '../../src/spend/core/budgets.ts';
import type { SpendScope } from '../../src/spend/core/ledger.ts';
import { budgetRecordId, hourOf, type SpendRecord, spendRecordId } from '../../src/spend/core/records.ts';

const CHILD = fileURLToPath(new URL('../helpers/spend-worker-child.ts', import.meta.url));
type TestMessage = { t: `test-${string}` } & Record<string, unknown>;

interface Worker {
  child: ChildProcess;
  next(t: string): Promise<TestMessage>;
  send(message: Record<string, unknown>): void;
}

describe('spend across workers: the primary owns the ledger', () => {
  let dir: string;
  let store: Store;
  let ledger: SpendLedger;
  let budgets: BudgetConfig[];
  const children: ChildProcess[] = [];

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'keyway-spend-workers-'));
    store = await Store.open(join(dir, 'store.json'), randomBytes(32));
    budgets = [];
    ledger = new SpendLedger({ store, budgets: () => budgets });
  });
  afterEach(async () => {
    for (const child of children.splice(0)) child.kill();
    await ledger.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A stand-in worker whose spend messages this test answers as primary.ts does. */
  async function worker(): Promise<Worker> {
    const child = fork(CHILD, [], { serialization: 'json', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    children.push(child);
    const inbox: TestMessage[] = [];
    const waiters: Array<{ t: string; resolve: (m: TestMessage) => void }> = [];
    child.on('message', (message: FromWorker | TestMessage) => {
      if (message.t === 'spend-add') return takeSpendAdd(ledger, message, (reply) => child.send(reply));
      if (message.t === 'spend-check') return answerSpendCheck(ledger, message, (reply) => child.send(reply));
      const at = waiters.findIndex((w) => w.t === message.t);
      if (at >= 0) waiters.splice(at, 1)[0]!.resolve(message as TestMessage);
      else inbox.push(message as TestMessage);
    });
    const next = (t: string) =>
      new Promise<TestMessage>((resolve) => {
        const at = inbox.findIndex((m) => m.t === t);
        if (at >= 0) resolve(inbox.splice(at, 1)[0]!);
        else waiters.push({ t, resolve });
      });
    await next('test-ready');
    return { child, next, send: (m) => child.send(m) };
  }

  it('two workers at four requests each: totals exact, and the overshoot at most what was in flight', async () => {
    const LIMIT = 20_000;
    const TOKENS: [number, number] = [61, 39];
    const COST = 0.000_123_457;
    const budget: BudgetConfig = { name: 'budgets[0]', agent: 'bot', limit: { tokens: LIMIT }, per: 'month', over: 'refuse' };
    budgets = [budget];
    const scope: SpendScope = { agent: 'bot', grant: 'anthropic', end_user: null };
    const [a, b] = await Promise.all([worker(), worker()]);
    for (const w of [a, b]) w.send({ t: 'test-load', budgets, scope, concurrency: 4, tokens: TOKENS, cost: COST });
    const [la, lb] = await Promise.all([a.next('test-loaded'), b.next('test-loaded')]);
    const tokens = (la['tokens'] as number) + (lb['tokens'] as number);
    const usd = (la['usd'] as number) + (lb['usd'] as number);
    const requests = (la['requests'] as number) + (lb['requests'] as number);
    // Both workers did their share (neither was starved), and the budget was reached.
    expect(la['requests']).toBeGreaterThan(0);
    expect(lb['requests']).toBeGreaterThan(0);
    expect(tokens).toBeGreaterThanOrEqual(LIMIT);
    // A request is let through only while the count is under the limit; at most the eight in flight
    // (four a worker) can still finish after it is crossed, each adding one request's tokens.
    expect(tokens).toBeLessThan(LIMIT + 8 * (TOKENS[0] + TOKENS[1]));
    await ledger.flush();
    const now = new Date();
    const count = store.get<{ tokens: number; usd: number }>(budgetRecordId(budgetKey(budget, ''), periodOf('month', now)));
    expect(count?.tokens).toBe(tokens);
    expect(Math.abs((count?.usd ?? 0) - usd)).toBeLessThan(1e-6);
    const spent = store
      .entries<SpendRecord>('spend:')
      .map(([, r]) => r)
      .reduce((s, r) => ({ tokens: s.tokens + r.input_tokens + r.output_tokens, usd: s.usd + r.cost_usd, requests: s.requests + r.requests }), {
        tokens: 0,
        usd: 0,
        requests: 0,
      });
    expect(spent.tokens).toBe(tokens);
    expect(spent.requests).toBe(requests);
    expect(Math.abs(spent.usd - usd)).toBeLessThan(1e-6);
    expect(store.get<SpendRecord>(spendRecordId(hourOf(now), 'bot', 'anthropic', null, 'm'))).toBeDefined();
  });

  it('an add on one worker is counted by a check it triggers on the other, 300 times in a row', async () => {
    // A limit of one token is always over once anything is counted: the verdict then names the count.
    const budget: BudgetConfig = { name: 'budgets[0]', agent: 'bot', limit: { tokens: 1 }, per: 'month', over: 'refuse' };
    budgets = [budget];
    const scope: SpendScope = { agent: 'bot', grant: 'anthropic', end_user: null };
    const [adder, checker] = await Promise.all([worker(), worker()]);
    checker.send({ t: 'test-listen', budgets, scope });
    const { port } = await checker.next('test-port');
    adder.send({ t: 'test-connect', port });
    await adder.next('test-connected');
    const missed: Array<{ round: number; used: number }> = [];
    for (let round = 0; round < 300; round++) {
      adder.send({ t: 'test-round', round, scope, tokens: [3, 4] });
      const seen = await checker.next('test-seen');
      expect(seen['round']).toBe(round);
      if (seen['used'] !== (round + 1) * 7) missed.push({ round, used: seen['used'] as number });
    }
    expect(missed).toEqual([]);
  });
});
