import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CANARY } from '../helpers/fixtures.ts';
import { CLI, cleanEnv, runCli, runProcess, startProxy, type TestProxy } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitForAsync } from '../helpers/wait.ts';

// Issue 89, self-service from the command line: `keyway delegate` run by an agent with only its own
// proxy URL and keyway's CA (as `keyway run` hands them), and `keyway run --delegate`, whose command
// runs as a fresh child revoked when it exits: by an exit, a failure or a signal. Real CLI processes,
// real curl through the real proxy.

const GITHUB = 'api.example.test';
const OPENAI = 'other.example.test';
const LEAD_KEY = 'kw-canary-lead-self-4e21a7';

describe('self-service delegation: keyway delegate and keyway run --delegate', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let scratch: string;

  beforeAll(async () => {
    upstream = await startUpstream();
    scratch = mkdtempSync(join(tmpdir(), 'keyway-run-delegate-'));
    proxy = await startProxy({
      env: { LEAD_KEY },
      config: { agents: { lead: { key: 'env:LEAD_KEY', grants: ['github', 'openai'] } } },
      grants: [
        { id: 'github', type: 'bearer', domains: [GITHUB], secret: CANARY },
        { id: 'openai', type: 'bearer', domains: [OPENAI], secret: 'kw-canary-openai-self-77' },
        // A grant lead does not hold.
        { id: 'slack', type: 'bearer', domains: ['tunnel.example.test'], secret: 'xoxb-never-handed-on-self' },
      ],
    });
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  const leadUrl = () => `http://lead:${LEAD_KEY}@127.0.0.1:${proxy.port}`;
  /** The agent's own environment, as keyway run gives it: its proxy URL and keyway's CA, no home. */
  const asAgent = (extra: Record<string, string> = {}) => cleanEnv({ HTTPS_PROXY: leadUrl(), NODE_EXTRA_CA_CERTS: proxy.caPath, ...extra });
  const curl = async (asProxy: string, host: string): Promise<number> => {
    const result = await runProcess(
      'curl',
      ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '--proxy-header', 'Connection: close', `https://${host}:${upstream.port}/echo`],
      cleanEnv({ HTTPS_PROXY: asProxy, CURL_CA_BUNDLE: proxy.bundlePath }),
    );
    return Number(result.stdout) || Number(/response (\d{3})/.exec(result.stderr)?.[1] ?? 0);
  };
  const agentIds = async (): Promise<string[]> =>
    (JSON.parse((await proxy.cli(['agents', 'list', '--json'])).stdout) as Array<{ id: string }>).map((a) => a.id);

  it("keyway delegate mints a child with only the agent's proxy URL, prints its URL once, and rm revokes it", async () => {
    const minted = await runCli(['delegate', '--name', 'helper', '--grants', 'github', '--ttl', '20m', '--json'], asAgent());
    expect(minted.stderr).toBe('');
    expect(minted.code).toBe(0);
    const child = JSON.parse(minted.stdout) as { id: string; key: string; proxy_url: string; chain: string[] };
    expect(child).toMatchObject({ id: 'lead-helper', chain: ['lead', 'lead-helper'] });
    expect(child.proxy_url).toBe(`http://lead-helper:${child.key}@127.0.0.1:${proxy.port}`);
    await waitForAsync(async () => ((await curl(child.proxy_url, GITHUB)) === 200 ? true : undefined), 'the child served');
    expect(await curl(child.proxy_url, OPENAI)).toBe(403);

    const plain = await runCli(['delegate', '--name', 'second'], asAgent());
    expect(plain.code).toBe(0);
    expect(plain.stdout).toMatch(/^http:\/\/lead-second:[\w%-]+@127\.0\.0\.1:\d+\n\(shown once; child of lead, until /);

    const removed = await runCli(['delegate', 'rm', 'lead-helper'], asAgent());
    expect(removed).toMatchObject({ code: 0, stdout: 'revoked lead-helper\n' });
    await waitForAsync(async () => ((await curl(child.proxy_url, GITHUB)) === 407 ? true : undefined), 'the revoked child refused');
  });

  it('says what is missing or refused, with the code, and exits non-zero', async () => {
    const noProxy = await runCli(['delegate', '--name', 'x'], cleanEnv({ NODE_EXTRA_CA_CERTS: proxy.caPath }));
    expect(noProxy.code).toBe(2);
    expect(noProxy.stderr).toContain('no proxy URL');
    const noKey = await runCli(['delegate', '--name', 'x'], asAgent({ HTTPS_PROXY: proxy.url }));
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toContain('carries no agent key');
    const noCa = await runCli(['delegate', '--name', 'x'], cleanEnv({ HTTPS_PROXY: leadUrl() }));
    expect(noCa.code).toBe(2);
    expect(noCa.stderr).toContain('no keyway CA');
    const wide = await runCli(['delegate', '--name', 'wide', '--grants', 'slack'], asAgent());
    expect(wide.code).toBe(1);
    expect(wide.stderr).toMatch(/^keyway delegate: delegation_refused: /);
    const wrongKey = await runCli(['delegate', '--name', 'x'], asAgent({ HTTPS_PROXY: `http://lead:not-the-key@127.0.0.1:${proxy.port}` }));
    expect(wrongKey.code).toBe(1);
    expect(wrongKey.stderr).toContain('proxy_auth_required');
    const stranger = await runCli(['delegate', 'rm', 'lead'], asAgent());
    expect(stranger.code).toBe(1);
    expect(stranger.stderr).toContain('not_found');
    expect(await agentIds()).toContain('lead');
  });

  it("gives a self-minted child a budget of its own (--budget), read as the operator's is; a malformed one mints nothing", async () => {
    const minted = await runCli(['delegate', '--name', 'budgeted', '--budget', 'usd=2/day', '--json'], asAgent());
    expect(minted.stderr).toBe('');
    expect(JSON.parse(minted.stdout)).toMatchObject({ id: 'lead-budgeted', budget: { limit: { usd: 2 }, per: 'day' } });
    const spend = await proxy.cli(['spend', '--json']);
    const budgets = (JSON.parse(spend.stdout) as { budgets: Array<{ name: string; limit: number }> }).budgets;
    expect(budgets.find((b) => b.name === 'agents.lead-budgeted.budget')).toMatchObject({ limit: 2 });
    for (const bad of ['usd=0x10/day', 'usd=2/week', 'usd=-1/day']) {
      const refused = await runCli(['delegate', '--name', 'overspend', '--budget', bad], asAgent());
      expect(refused.code, bad).toBe(1);
      expect(refused.stderr, bad).toMatch(/^keyway delegate: bad_request: .*budget/);
    }
    expect(await agentIds()).not.toContain('lead-overspend');
    // The mint's audit line says a budget was set, never what the key is.
    const line = proxy.auditLines().findLast((l) => l['action'] === 'agent.delegate' && l['agent'] === 'lead-budgeted');
    expect(line).toMatchObject({ decision: 'admin', actor: 'agent:lead' });
    expect(String(line?.['changed'])).toContain('budget');
  });

  /** keyway run --delegate with a shell that writes the proxy URL it was given, then ends as `end` says. */
  const runDelegated = async (name: string, end: string, extra: string[] = []) => {
    const file = join(scratch, `${name}.url`);
    const result = await proxy.cli([
      'run',
      '--agent',
      'lead',
      '--delegate',
      ...extra,
      '--',
      'sh',
      '-c',
      `printf %s "$HTTPS_PROXY" > ${file}; curl -sS -o /dev/null -w '%{http_code}' --proxy-header 'Connection: close' https://${GITHUB}:${upstream.port}/echo; ${end}`,
    ]);
    return { ...result, url: readFileSync(file, 'utf8') };
  };

  it('keyway run --delegate runs CMD as a fresh child, whose key is refused once CMD exits', async () => {
    const result = await runDelegated('exit', 'exit 0', ['--grants', 'github', '--ttl', '10m']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    // CMD's request went through as the child.
    expect(result.stdout).toBe('200');
    const id = decodeURIComponent(new URL(result.url).username);
    expect(id).toMatch(/^lead-run-[0-9a-f]{8}$/);
    expect(result.url).not.toContain(LEAD_KEY);
    const line = proxy.auditLines().find((l) => l['agent'] === id && l['decision'] === 'inject');
    expect(line).toMatchObject({ chain: ['lead', id], grant: 'github' });
    expect(await curl(result.url, GITHUB)).toBe(407);
    expect(await agentIds()).not.toContain(id);
  });

  it('revokes the child when CMD fails, and when CMD is killed by a signal', async () => {
    const failed = await runDelegated('fail', 'exit 3');
    expect(failed.code).toBe(3);
    const killed = await runDelegated('signal', 'kill -TERM $$');
    expect(killed.code).not.toBe(0);
    for (const url of [failed.url, killed.url]) {
      expect(url).toMatch(/^http:\/\/lead-run-/);
      expect(await curl(url, GITHUB)).toBe(407);
    }
  });

  it("leaves a killed run's child to its TTL: served until then, refused after", async () => {
    const urlFile = join(scratch, 'killed.url');
    const pidFile = join(scratch, 'killed.pid');
    const run = spawn(
      process.execPath,
      [CLI, 'run', '--agent', 'lead', '--delegate', '--ttl', '3s', '--', 'sh', '-c', `echo $$ > ${pidFile}; printf %s "$HTTPS_PROXY" > ${urlFile}; sleep 60`],
      {
        env: { ...cleanEnv(), KEYWAY_HOME: proxy.home, ...proxy.env },
        stdio: 'ignore',
      },
    );
    const url = await waitForAsync(
      async () => (existsSync(urlFile) && readFileSync(urlFile, 'utf8') !== '' ? readFileSync(urlFile, 'utf8') : undefined),
      'the run to start',
    );
    run.kill('SIGKILL');
    await once(run, 'exit');
    process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGKILL');
    // Nothing revoked it: the TTL ends it.
    const served = await curl(url, GITHUB);
    if (served === 200) await waitForAsync(async () => ((await curl(url, GITHUB)) === 407 ? true : undefined), 'the child past its TTL');
    else expect(served).toBe(407);
    expect(await curl(url, GITHUB)).toBe(407);
  });

  it('runs nothing when the door refuses the child', async () => {
    const file = join(scratch, 'never');
    const result = await proxy.cli(['run', '--agent', 'lead', '--delegate', '--grants', 'slack', '--', 'sh', '-c', `touch ${file}`]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('delegation_refused');
    expect(() => readFileSync(file)).toThrow();
    const usage = await proxy.cli(['run', '--agent', 'lead', '--grants', 'github', '--', 'true']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('--grants and --ttl are for --delegate');
  });

  it('writes no key in the audit log', () => {
    expect(readFileSync(proxy.auditPath, 'utf8')).not.toContain(LEAD_KEY);
  });
});
