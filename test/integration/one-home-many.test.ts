// Several keyways on one home (issue 36, item 1): a second `keyway start` with other ports used to
// overwrite data/proxy.json and delete it when it stopped, orphaning the first. Each now records
// itself (data/running/PID.json); status lists every one, stop refuses to guess between them, and
// reload reaches all. Clients stay pointed at the first while it runs, then at the one left.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { startChildProxy, type ChildProxy } from '../helpers/child-proxy.ts';
import { CANARY, TLS_FIXTURES } from '../helpers/fixtures.ts';
import { cleanEnv, makeHome, runCli } from '../helpers/keyway.ts';

describe('two keyways on one home', () => {
  let home: string;
  let env: Record<string, string>;
  let first: ChildProxy;
  let second: ChildProxy;

  beforeAll(async () => {
    home = makeHome();
    mkdirSync(join(home, 'config'), { recursive: true });
    writeFileSync(
      join(home, 'config', 'keyway.yaml'),
      stringify({
        proxy: { upstream_ca: [TLS_FIXTURES.caPath], drain_timeout: '1s' },
        grants: { github: { type: 'bearer', domains: ['api.example.test'], secret: 'env:GITHUB_TOKEN' } },
      }),
    );
    env = cleanEnv({ KEYWAY_MASTER_KEY: randomBytes(32).toString('base64'), GITHUB_TOKEN: CANARY });
    first = await startChildProxy({ home, env });
    second = await startChildProxy({ home, env });
  });
  afterAll(async () => {
    await first?.stop();
    await second?.stop();
  });

  const announced = () => JSON.parse(readFileSync(join(home, 'data', 'proxy.json'), 'utf8')) as { pid: number };

  it('status lists both; data/proxy.json still names the first', async () => {
    expect(announced().pid).toBe(first.child.pid);
    // Each one's record, and its contain door (keyway run --contain hands it its command's connections).
    const pids = [first.child.pid, second.child.pid];
    expect(readdirSync(join(home, 'data', 'running')).sort()).toEqual(pids.flatMap((pid) => [`${pid}.json`, `${pid}.sock`]).sort());
    const json = await runCli(['status', '--json', '--home', home], env);
    expect(json.code, json.stderr).toBe(0);
    const body = JSON.parse(json.stdout) as { pid: number; keyways: Array<{ pid: number; proxy: string; role: string; grants: number }> };
    expect(body.pid).toBe(first.child.pid);
    expect(body.keyways.map((k) => [k.pid, k.proxy, k.role, k.grants])).toEqual([
      [first.child.pid, `127.0.0.1:${first.port}`, 'start', 1],
      [second.child.pid, `127.0.0.1:${second.port}`, 'start', 1],
    ]);
    const human = await runCli(['status', '--home', home], env);
    expect(human.stdout).toContain(`2 keyways are running for home ${home}`);
    expect(human.stdout).toContain(`keyway is running (pid ${first.child.pid}`);
    expect(human.stdout).toContain(`keyway is running (pid ${second.child.pid}`);
  });

  it('reload reaches both', async () => {
    const r = await runCli(['reload', '--home', home], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`pid ${first.child.pid}`);
    expect(r.stdout).toContain(`pid ${second.child.pid}`);
  });

  it('stop without --pid or --all names both and stops neither; --pid stops that one alone', async () => {
    const ambiguous = await runCli(['stop', '--home', home], env);
    expect(ambiguous.code).toBe(1);
    expect(ambiguous.stderr).toContain('2 keyways are running for this home');
    expect(ambiguous.stderr).toContain(`pid ${first.child.pid} (keyway start, proxy 127.0.0.1:${first.port})`);
    expect(ambiguous.stderr).toContain('--pid PID, or --all');
    expect(first.child.exitCode).toBeNull();
    expect(second.child.exitCode).toBeNull();

    const wrong = await runCli(['stop', '--pid', '1', '--home', home], env);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain('no keyway of this home has pid 1');

    const one = await runCli(['stop', '--pid', String(first.child.pid), '--home', home], env);
    expect(one.code, one.stderr).toBe(0);
    expect(one.stdout).toBe(`keyway stopped (pid ${first.child.pid})\n`);
    expect(second.child.exitCode).toBeNull();
    // The first took data/proxy.json with it; the second is still found, and clients are pointed at it.
    expect(existsSync(join(home, 'data', 'proxy.json'))).toBe(false);
    const left = await runCli(['status', '--json', '--home', home], env);
    expect(JSON.parse(left.stdout)).toMatchObject({ running: true, pid: second.child.pid });
    const variables = await runCli(['env', '--home', home], env);
    expect(variables.stdout).toContain(`127.0.0.1:${second.port}`);
  });

  it('a record left by a process that is gone is pruned, and said so', async () => {
    writeFileSync(
      join(home, 'data', 'running', '999999.json'),
      JSON.stringify({ pid: 999_999, proxy: { host: '127.0.0.1', port: 1 }, admin: null, started_at: new Date().toISOString() }),
    );
    const r = await runCli(['status', '--home', home], env);
    expect(r.code).toBe(0);
    expect(existsSync(join(home, 'data', 'running', '999999.json'))).toBe(false);
    const all = await runCli(['stop', '--all', '--home', home], env);
    expect(all.code, all.stderr).toBe(0);
    expect(all.stdout).toBe(`keyway stopped (pid ${second.child.pid})\n`);
    expect(readdirSync(join(home, 'data', 'running'))).toEqual([]);
  });
});
