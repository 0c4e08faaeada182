import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { DIST_CLI, startChildProxy, type ChildProxy } from '../helpers/child-proxy.ts';
import { CANARY, TLS_FIXTURES } from '../helpers/fixtures.ts';
import { cleanEnv, makeHome, runCli, runProcess } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

// The command the Dockerfile runs: the built JavaScript (dist/, made by `npm install` through the
// prepare script), listening on all interfaces, with an agent since container clients are not loopback.
describe('the built CLI, as the Docker image runs it', () => {
  let upstream: TestUpstream;
  let proxy: ChildProxy;
  let home: string;

  beforeAll(async () => {
    expect(existsSync(DIST_CLI), 'dist/cli/main.js is missing: npm install runs `prepare` (tsc) to build it').toBe(true);
    upstream = await startUpstream();
    home = makeHome();
    mkdirSync(join(home, 'config'), { recursive: true });
    writeFileSync(
      join(home, 'config', 'keyway.yaml'),
      stringify({
        proxy: { upstream_ca: [TLS_FIXTURES.caPath], allow_networks: ['127.0.0.0/8'], hosts: { 'api.example.test': '127.0.0.1' } },
        grants: { github: { type: 'bearer', domains: ['api.example.test'], secret: 'env:GITHUB_TOKEN' } },
        agents: { sidecar: { key: 'env:SIDECAR_KEY' } },
      }),
    );
    const env = cleanEnv({ KEYWAY_MASTER_KEY: randomBytes(32).toString('base64'), GITHUB_TOKEN: CANARY, SIDECAR_KEY: 'sidecar-key' });
    proxy = await startChildProxy({ cli: DIST_CLI, home, env, listenHost: '0.0.0.0' });
  });
  afterAll(async () => {
    expect(await proxy?.stop()).toBe(0);
    await upstream?.close();
  });

  it('serves an agent with credentials and injects the config grant', async () => {
    const before = upstream.seen.length;
    const result = await runProcess(
      'curl',
      ['-sS', `https://api.example.test:${upstream.port}/echo`],
      cleanEnv({ HTTPS_PROXY: `http://sidecar:sidecar-key@127.0.0.1:${proxy.port}`, CURL_CA_BUNDLE: join(home, 'certs', 'bundle.pem') }),
    );
    expect(result.stderr).toBe('');
    // The upstream received the config grant's secret, and not the agent's proxy credentials.
    const seen = upstream.seen.slice(before);
    expect(seen).toHaveLength(1);
    expect(seen[0]?.headers.authorization).toBe(`Bearer ${CANARY}`);
    expect(seen[0]?.headers['proxy-authorization']).toBeUndefined();
    // Its echo reaches the agent with the secret redacted by the leak guard.
    expect(JSON.parse(result.stdout).headers.authorization).toBe('Bearer [redacted by keyway]');
    expect(result.stdout).not.toContain(CANARY);
    expect(proxy.stderr() + proxy.stdout()).not.toContain(CANARY);
  });

  it('answers --help for every command from the built files', async () => {
    for (const command of ['start', 'init', 'env', 'run', 'ca', 'grants', 'secrets', 'agents', 'audit']) {
      const r = await runProcess(process.execPath, [DIST_CLI, command, '--help'], cleanEnv());
      expect(r.code, command).toBe(0);
      expect(r.stdout, command).toContain(`keyway ${command}`);
    }
    const unknown = await runCli(['frobnicate'], cleanEnv());
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toContain('unknown command');
  });
});
