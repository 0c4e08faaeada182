// keyway doctor on the agents and grants a budget names (issue 63): the config takes a name it does
// not define (the store may hold it); doctor opens the store and warns of a name in neither, which
// would leave that budget counting nobody. The real CLI in a child process, on a home of its own.
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { BUDGET_NAMES_CHECK, unknownBudgetNames } from '../../src/cli/commands/doctor/checks-budgets.ts';
import { PRICES_AGE_CHECK } from '../../src/cli/commands/doctor/checks-spend.ts';
import { PRICES_AS_OF, PRICES_STALE_DAYS } from '../../src/spend/core/default-prices.ts';
import { makeHome, runCli } from '../helpers/keyway.ts';

interface Check {
  check: string;
  status: string;
  detail: string;
  fix?: string;
}

function home(budgets: unknown[]): Record<string, string> {
  const dir = makeHome();
  mkdirSync(join(dir, 'config'), { recursive: true });
  writeFileSync(
    join(dir, 'config', 'keyway.yaml'),
    stringify({ agents: { 'ci-bot': { key: 'env:CI_KEY' } }, grants: { openai: { type: 'bearer', domains: ['api.openai.com'], secret: 'env:OAI' } }, budgets }),
  );
  return { KEYWAY_HOME: dir, KEYWAY_MASTER_KEY: randomBytes(32).toString('base64') };
}

async function doctorCheck(env: Record<string, string>, name: string): Promise<Check | undefined> {
  // No proxy runs: doctor fails on that, and still says every check (--proxy to a closed port).
  const r = await runCli(['doctor', '--json', '--proxy', '127.0.0.1:9', '--admin', 'http://127.0.0.1:9'], env);
  return (JSON.parse(r.stdout) as { checks: Check[] }).checks.find((c) => c.check === name);
}

const budgetCheck = (env: Record<string, string>) => doctorCheck(env, BUDGET_NAMES_CHECK);

describe('keyway doctor and the names budgets give', () => {
  it("is ok when each name is the config's or the store's, and warns of one in neither", async () => {
    const env = home([
      { agent: 'ci-bot', grant: 'openai', limit: { usd: 5 }, per: 'day' },
      { agent: 'nightly-etl', limit: { tokens: 1000 }, per: 'day' },
      { agent: '*', grant: 'gateway', limit: { usd: 1 }, per: 'hour' },
    ]);
    const before = await budgetCheck(env);
    expect(before?.status).toBe('warn');
    expect(before?.detail).toContain('budgets[1].agent "nightly-etl", budgets[2].grant "gateway"');
    expect(before?.fix).toMatch(/keyway agents add/);

    expect((await runCli(['agents', 'add', 'nightly-etl'], env)).code).toBe(0);
    expect((await runCli(['grants', 'add', 'gateway', '--type', 'bearer', '--domains', 'llm.example.test', '--model-api', 'openai'], env)).code).toBe(0);
    expect(await budgetCheck(env)).toMatchObject({ status: 'ok', detail: '3 budgets checked' });
  });

  it('says nothing where no budget names an agent or grant (a budget on "*" or end users only)', async () => {
    const env = home([
      { agent: '*', limit: { usd: 5 }, per: 'day' },
      { end_user: 'alice@example.com', limit: { usd: 5 }, per: 'day' },
    ]);
    expect(await budgetCheck(env)).toBeUndefined();
  });

  it('says how old the shipped price table is where budgets count, and warns past 90 days; nothing on a home without budgets or model traffic', async () => {
    const age = await doctorCheck(home([{ agent: 'ci-bot', limit: { usd: 5 }, per: 'day' }]), PRICES_AGE_CHECK);
    const days = Math.floor((Date.now() - Date.parse(`${PRICES_AS_OF}T00:00:00Z`)) / 86_400_000);
    expect(age?.status).toBe(days > PRICES_STALE_DAYS ? 'warn' : 'ok');
    expect(age?.detail).toContain(`checked ${PRICES_AS_OF}`);
    if (age?.status === 'warn') expect(age.fix).toContain('pricing:');
    expect(await doctorCheck(home([]), PRICES_AGE_CHECK)).toBeUndefined();
  });

  it('names each unknown agent and grant by its budget', () => {
    const known = { agent: new Set(['a']), grant: new Set(['g']) };
    const budget = (name: string, extra: object) => ({ name, limit: { usd: 1 }, per: 'day' as const, over: 'refuse' as const, ...extra });
    expect(
      unknownBudgetNames(
        [budget('budgets[0]', { agent: 'a', grant: 'g' }), budget('budgets[1]', { agent: 'b', grant: '*' }), budget('budgets[2]', { grant: 'h' })],
        known,
      ),
    ).toEqual(['budgets[1].agent "b"', 'budgets[2].grant "h"']);
  });
});
