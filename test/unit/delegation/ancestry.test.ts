// Issue 89: what a delegated agent's requests count against. Its spend scope names its ancestors,
// and every budget on any of them counts it (a named budget once, `agent: "*"` under each agent of
// the chain); its own `--budget` is read by the config's budget schema or refused; its limits are
// its own and each ancestor's, each scope once.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { BudgetConfig } from '../../../src/config/spend.ts';
import type { Agent } from '../../../src/credentials/agents.ts';
import { Store } from '../../../src/credentials/store/index.ts';
import { checkChildBudget } from '../../../src/delegation/child-budget.ts';
import { budgetsInForce, readStoredBudget } from '../../../src/delegation/stored-budget.ts';
import { chainLimitScopes } from '../../../src/delegation/chain-limits.ts';
import { KeywayError } from '../../../src/errors/index.ts';
import { scopeValueOf, scopeValuesOf } from '../../../src/spend/core/budgets.ts';
import type { SpendScope } from '../../../src/spend/core/ledger.ts';
import { SpendLedger } from '../../../src/spend/ledger/ledger.ts';

const T0 = new Date('2026-11-26T22:10:00Z');
const budget = (b: Partial<BudgetConfig> & Pick<BudgetConfig, 'limit'>): BudgetConfig => ({ name: 'budgets[0]', per: 'day', over: 'refuse', ...b });
const grandchild: SpendScope = { agent: 'grand', grant: 'anthropic', end_user: null, ancestors: ['lead', 'worker'] };

describe('a delegated scope and the budgets on its chain', () => {
  it('a budget naming any agent of the chain applies once; one naming none does not', () => {
    for (const agent of ['grand', 'worker', 'lead']) expect(scopeValuesOf(budget({ agent, limit: { usd: 1 } }), grandchild), agent).toEqual(['']);
    expect(scopeValuesOf(budget({ agent: 'other', limit: { usd: 1 } }), grandchild)).toEqual([]);
    expect(scopeValueOf(budget({ agent: 'lead', limit: { usd: 1 } }), grandchild)).toBe('');
    // A grant selector still has to match.
    expect(scopeValuesOf(budget({ agent: 'lead', grant: 'openai', limit: { usd: 1 } }), grandchild)).toEqual([]);
  });

  it('agent "*" counts under the agent and each ancestor apart; a root scope as before', () => {
    const each = budget({ agent: '*', limit: { tokens: 10 } });
    expect(scopeValuesOf(each, grandchild)).toEqual(['agent=grand', 'agent=lead', 'agent=worker']);
    expect(scopeValuesOf(each, { agent: 'bot', grant: 'g', end_user: null })).toEqual(['agent=bot']);
    expect(scopeValuesOf(each, { agent: null, grant: 'g', end_user: null })).toEqual([]);
  });

  describe('the ledger', () => {
    let dir: string;
    let store: Store;
    beforeEach(async () => {
      dir = mkdtempSync(join(tmpdir(), 'kw-ancestry-'));
      store = await Store.open(join(dir, 'store.json'), randomBytes(32));
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    it("counts a grandchild's answer on its parent's and its root's budgets, and refuses the root's own next request", async () => {
      const budgets = [
        budget({ name: 'budgets[0]', agent: 'lead', limit: { tokens: 100 } }),
        budget({ name: 'budgets[1]', agent: '*', limit: { tokens: 1000 } }),
      ];
      const ledger = new SpendLedger({ store, budgets: () => budgets, now: () => T0 });
      ledger.add({ ...grandchild, at: T0, reading: { usage: { model: 'm', input_tokens: 60, output_tokens: 40 }, basis: 'reported' }, cost_usd: null });
      const root = await ledger.check({ agent: 'lead', grant: 'anthropic', end_user: null }, T0);
      expect(root.over).toMatchObject({ budget: { name: 'budgets[0]' }, used: 100 });
      // Counted once on budgets[0], though two of the chain are under it.
      await ledger.flush();
      const worker = await ledger.check({ agent: 'worker', grant: 'anthropic', end_user: null, ancestors: ['lead'] }, T0);
      expect(worker.over).toMatchObject({ budget: { name: 'budgets[0]' }, used: 100 });
      // The `*` budget holds 100 under each of the three, under no other.
      const ids = [...store.entries('budget:')].map(([id]) => id).filter((id) => id.includes('agent=*'));
      expect(ids.map((id) => id.split('|').at(-1)?.split(':')[0]).sort()).toEqual(['agent=grand', 'agent=lead', 'agent=worker']);
      await ledger.close();
    });
  });
});

describe("a child's own budget", () => {
  it('reads the short form and the config form, as the config schema reads them', () => {
    expect(checkChildBudget('usd=2/day', '--budget')).toEqual({ limit: { usd: 2 }, per: 'day', over: 'refuse' });
    expect(checkChildBudget('usd=0.25/hour', '--budget')).toEqual({ limit: { usd: 0.25 }, per: 'hour', over: 'refuse' });
    expect(checkChildBudget('tokens=2000000/month', '--budget')).toEqual({ limit: { tokens: 2000000 }, per: 'month', over: 'refuse' });
    expect(checkChildBudget({ limit: { usd: 5 }, per: 'day', warn_at: 0.8, over: 'approve' }, 'budget')).toEqual({
      limit: { usd: 5 },
      per: 'day',
      warn_at: 0.8,
      over: 'approve',
    });
  });

  it('refuses anything wider or other than it says, naming the flag', () => {
    const bad: unknown[] = [
      'usd=0x10/day',
      'usd=1e3/day',
      'usd=Infinity/day',
      'usd=-1/day',
      'usd=0/day',
      'usd=2/week',
      'usd=2/day,tokens=5/day',
      'usd=2/day\n',
      'tokens=1.5/day',
      'tokens=99999999999999999999/day',
      '',
      { agent: 'lead', limit: { usd: 1 }, per: 'day' },
      { limit: { usd: 1, tokens: 5 }, per: 'day' },
      { limit: { usd: 1 }, per: 'day', extra: true },
      { limit: { usd: 1 }, per: 'day', warn_at: 1 },
      7,
      null,
    ];
    for (const input of bad) {
      let thrown: unknown;
      try {
        checkChildBudget(input, '--budget');
      } catch (err) {
        thrown = err;
      }
      expect(thrown, JSON.stringify(input)).toBeInstanceOf(KeywayError);
      expect((thrown as KeywayError).code).toBe('usage');
      expect((thrown as Error).message).toContain('--budget');
    }
  });

  it('is read back at each table build; a record edited into nonsense is no budget and marks the agent bad', () => {
    expect(readStoredBudget('kid', { limit: { usd: 2 }, per: 'day', over: 'refuse' })).toEqual({
      budget: { name: 'agents.kid.budget', agent: 'kid', limit: { usd: 2 }, per: 'day', over: 'refuse' },
      bad: false,
    });
    expect(readStoredBudget('kid', undefined)).toEqual({ budget: undefined, bad: false });
    for (const stored of [{ limit: { usd: -1 }, per: 'day', over: 'refuse' }, { limit: { usd: 1 }, per: 'week', over: 'refuse' }, 'usd=2/day', null]) {
      expect(readStoredBudget('kid', stored).bad, JSON.stringify(stored)).toBe(true);
    }
  });

  it("joins the config's budgets, made once per agent table", () => {
    const config = [budget({ agent: 'lead', limit: { usd: 1 } })];
    const own = readStoredBudget('kid', { limit: { usd: 2 }, per: 'day', over: 'refuse' }).budget!;
    const table = { list: () => [{ budget: own }, {}] };
    const all = budgetsInForce(config, table);
    expect(all.map((b) => b.name)).toEqual(['budgets[0]', 'agents.kid.budget']);
    expect(budgetsInForce(config, table)).toBe(all);
    expect(budgetsInForce(config, { list: () => [{}] })).toBe(config);
  });
});

describe("a child's limits", () => {
  it("are its own and each ancestor's, nearest first, a grant's once, each parent's named as such", () => {
    const config = {
      agents: { lead: { limits: { rate: { count: 1, perMs: 1000, burst: 1, text: '1/s' } }, grant_limits: { api: { quota: { requests: 5 } } } } },
      grants: { api: { limits: { quota: { requests: 100 } } } },
    } as unknown as Parameters<typeof chainLimitScopes>[0];
    const agents = new Map<string, Agent>([['worker', { id: 'worker', storedLimits: { quota: { requests: 3 } } } as unknown as Agent]]);
    const scopes = chainLimitScopes(config, agents, 'kid', ['lead', 'worker'], 'api');
    expect(scopes.map((s) => s.name)).toEqual([
      'grant "api"',
      'agent "worker" (a parent of this agent)',
      'agent "lead" on grant "api" (a parent of this agent)',
      'agent "lead" (a parent of this agent)',
    ]);
    expect(scopes.map((s) => s.key)).toEqual(['grant\0api', 'agent\0worker', 'agent-grant\0lead\0api', 'agent\0lead']);
  });
});
