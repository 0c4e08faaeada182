import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { DIST_CLI, startChildProxy, type ChildProxy } from '../helpers/child-proxy.ts';
import { CANARY, TLS_FIXTURES } from '../helpers/fixtures.ts';
import { cleanEnv, makeHome, runCli, runProcess } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { PROXY_ENV, PROXY_NODE_FLAGS } from '../../src/cli/proxy-runtime.ts';

// The command the Dockerfile runs: the built JavaScript (dist/, made by `npm install` through the
// prepare script), listening on all interfaces, with an agent since container clients are not loopback.
describe('the built CLI, as the Docker image runs it', () => {
  let upstream: TestUpstream;
  let proxy: ChildProxy;
  let home: string;

  beforeAll(async () => {
    expect(existsSync(DIST_CLI), 'dist/cli/main.js is missing: npm install runs `prepare` (scripts/build.mjs) to build it').toBe(true);
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

  it('serves the dashboard from dist/ (the build copies its files beside the admin server)', async () => {
    const running = JSON.parse(readFileSync(join(home, 'data', 'proxy.json'), 'utf8')) as { admin: { port: number } };
    const base = `http://127.0.0.1:${running.admin.port}`;
    const page = await fetch(`${base}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('/assets/app.js');
    expect(page.headers.get('content-security-policy')).toContain("default-src 'self'");
    for (const asset of ['app.js', 'api.js', 'style.css']) expect((await fetch(`${base}/assets/${asset}`)).status, asset).toBe(200);
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

  it('runs under the proxy runtime settings, re-executed in the same process', () => {
    // The pid the test spawned is the one serving (the first test), now with keyway's node options
    // before the script and its allocator variables in the environment.
    const { args, vars } = runtimeOf(proxy.child.pid!);
    expect(args).toEqual([...PROXY_NODE_FLAGS]);
    for (const [name, value] of Object.entries(PROXY_ENV)) expect(vars).toContain(`${name}=${value}`);
    expect(vars).toContain('KEYWAY_RUNTIME=tuned');
  });

  it('keeps the runtime as it is with KEYWAY_RUNTIME=as-is, and a MALLOC_* the user set', async () => {
    const env = cleanEnv({ KEYWAY_MASTER_KEY: randomBytes(32).toString('base64'), GITHUB_TOKEN: CANARY, SIDECAR_KEY: 'k' });
    const asIs = await startChildProxy({ cli: DIST_CLI, home: makeHomeLike(home), env: { ...env, KEYWAY_RUNTIME: 'as-is' } });
    try {
      expect(runtimeOf(asIs.child.pid!)).toEqual({ args: [], vars: ['KEYWAY_RUNTIME=as-is'] });
    } finally {
      expect(await asIs.stop()).toBe(0);
    }
    const own = await startChildProxy({ cli: DIST_CLI, home: makeHomeLike(home), env: { ...env, MALLOC_ARENA_MAX: '4' } });
    try {
      const { args, vars } = runtimeOf(own.child.pid!);
      expect(args).toEqual([...PROXY_NODE_FLAGS]);
      expect(vars).toContain('MALLOC_ARENA_MAX=4');
      expect(vars).not.toContain('MALLOC_ARENA_MAX=2');
    } finally {
      expect(await own.stop()).toBe(0);
    }
  });
});

/** The node options before the script, and the runtime variables, of a running process (Linux /proc). */
function runtimeOf(pid: number): { args: string[]; vars: string[] } {
  const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  const script = argv.indexOf(DIST_CLI);
  const vars = readFileSync(`/proc/${pid}/environ`, 'utf8')
    .split('\0')
    .filter((v) => /^(MALLOC_[A-Z_]+|KEYWAY_RUNTIME)=./.test(v));
  return { args: argv.slice(1, script), vars };
}

/** A second home with the same config, so a second proxy does not share the first one's files. */
function makeHomeLike(home: string): string {
  const other = makeHome();
  mkdirSync(join(other, 'config'), { recursive: true });
  writeFileSync(join(other, 'config', 'keyway.yaml'), readFileSync(join(home, 'config', 'keyway.yaml')));
  return other;
}
