// keyway doctor on the agents anomaly.agents overrides name (issue 90): the config takes a name it
// does not define unless it is a typo of a config agent's (the store may hold it); doctor opens the
// store and warns of a name in neither, whose override would apply to nobody. The real CLI in a
// child process, on a home of its own.
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ANOMALY_NAMES_CHECK } from '../../src/cli/commands/doctor/checks-anomaly.ts';
import { makeHome, runCli } from '../helpers/keyway.ts';

interface Check {
  check: string;
  status: string;
  detail: string;
  fix?: string;
}

function home(overrides: Record<string, unknown>): Record<string, string> {
  const dir = makeHome();
  mkdirSync(join(dir, 'config'), { recursive: true });
  writeFileSync(join(dir, 'config', 'keyway.yaml'), stringify({ agents: { 'ci-bot': { key: 'env:CI_KEY' } }, anomaly: { mode: 'hold', agents: overrides } }));
  return { KEYWAY_HOME: dir, KEYWAY_MASTER_KEY: randomBytes(32).toString('base64') };
}

async function anomalyCheck(env: Record<string, string>): Promise<Check | undefined> {
  // No proxy runs: doctor fails on that, and still says every check (--proxy to a closed port).
  const r = await runCli(['doctor', '--json', '--proxy', '127.0.0.1:9', '--admin', 'http://127.0.0.1:9'], env);
  return (JSON.parse(r.stdout) as { checks: Check[] }).checks.find((c) => c.check === ANOMALY_NAMES_CHECK);
}

describe('keyway doctor and the agents anomaly overrides name', () => {
  it("is ok when each is the config's or the store's, and warns of one in neither", async () => {
    const env = home({ 'ci-bot': { mode: 'alert' }, 'nightly-etl': { mode: 'off' } });
    const before = await anomalyCheck(env);
    expect(before).toMatchObject({ status: 'warn' });
    expect(before?.detail).toContain('anomaly.agents.nightly-etl');
    expect(before?.detail).not.toContain('ci-bot');
    expect(before?.fix).toMatch(/keyway agents add/);
    expect((await runCli(['agents', 'add', 'nightly-etl'], env)).code).toBe(0);
    expect(await anomalyCheck(env)).toMatchObject({ status: 'ok', detail: '2 overrides checked' });
  });

  it('says nothing where no override names an agent', async () => {
    expect(await anomalyCheck(home({}))).toBeUndefined();
  });
});
