// Policy as code under proxy.workers (issue 88): every worker process judges with the Cedar files
// the primary read, at start and after a reload, and each line any of them writes carries the hash
// of the policy.load line the primary wrote.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SRC_CLI, startChildProxy, type ChildProxy, writeChildHome } from '../helpers/child-proxy.ts';
import { TLS_FIXTURES } from '../helpers/fixtures.ts';
import { cleanEnv, onePerRequest, runCli } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

const API_TOKEN = `canary-api-${randomBytes(8).toString('hex')}`;
const BOT_KEY = `bot-${randomBytes(12).toString('hex')}`;

describe('Cedar policies with proxy.workers', () => {
  let upstream: TestUpstream;
  let child: ChildProxy;
  let home: string;
  let env: Record<string, string>;
  let ca: string;

  const policy = (text: string) => {
    mkdirSync(join(home, 'policies'), { recursive: true, mode: 0o700 });
    writeFileSync(join(home, 'policies', 'main.cedar'), text, { mode: 0o600 });
  };

  beforeAll(async () => {
    upstream = await startUpstream();
    home = writeChildHome({});
    const config = readFileSync(join(home, 'config', 'keyway.yaml'), 'utf8').replace('proxy:\n', 'proxy:\n  workers: 2\n');
    writeFileSync(
      join(home, 'config', 'keyway.yaml'),
      `${config}grants:\n  api:\n    type: bearer\n    domains: [api.example.test]\n    secret: env:API_TOKEN\nagents:\n  bot:\n    key: env:BOT_KEY\n`,
    );
    policy('@id("no-admin") forbid (principal, action, resource) when { context.path like "/admin*" };\n');
    env = cleanEnv({ KEYWAY_MASTER_KEY: randomBytes(32).toString('base64'), API_TOKEN, BOT_KEY });
    child = await startChildProxy({ cli: SRC_CLI, home, env });
    ca = readFileSync(join(home, 'certs', 'ca.pem'), 'utf8');
  });
  afterAll(async () => {
    if (child && child.child.exitCode === null) await child.stop();
    expect(child.stdout() + child.stderr()).not.toContain(API_TOKEN);
    expect(readFileSync(join(home, 'logs', 'audit.jsonl'), 'utf8')).not.toContain(API_TOKEN);
    await upstream?.close();
  });

  /** One request on a connection of its own, so that the kernel picks a worker for each. */
  async function fresh(path: string): Promise<{ status: number; code: string | undefined }> {
    const dispatcher = new ProxyAgent({ uri: `http://bot:${BOT_KEY}@127.0.0.1:${child.port}`, requestTls: { ca: [ca, TLS_FIXTURES.ca] } });
    try {
      const res = await request(`https://api.example.test:${upstream.port}${path}`, { dispatcher });
      await res.body.dump();
      return { status: res.statusCode, code: res.headers['x-keyway-error'] as string | undefined };
    } finally {
      await dispatcher.close().catch(() => undefined);
    }
  }

  const lines = () => onePerRequest(readFileSync(join(home, 'logs', 'audit.jsonl'), 'utf8'));

  it('every worker refuses what a Cedar file forbids, before and after a reload, and names the hash the primary loaded', async () => {
    const before = await Promise.all(Array.from({ length: 12 }, (_, i) => fresh(`/admin/${i}`)));
    expect(before.map((r) => r.code)).toEqual(Array(12).fill('rule_denied'));
    expect((await fresh('/gists/0')).status).toBe(200);

    policy(
      '@id("no-admin") forbid (principal, action, resource) when { context.path like "/admin*" };\n@id("no-gists") forbid (principal, action, resource) when { context.path like "/gists*" };\n',
    );
    const reload = await runCli(['reload', '--home', home], env);
    expect(reload.code, reload.stderr).toBe(0);
    const after = await Promise.all(Array.from({ length: 12 }, (_, i) => fresh(`/gists/${i + 1}`)));
    expect(after.map((r) => r.code)).toEqual(Array(12).fill('rule_denied'));

    const all = lines();
    const loads = all.filter((l) => l['action'] === 'policy.load');
    expect(loads).toHaveLength(2);
    const [first, second] = loads.map((l) => l['policy']);
    expect(first).not.toBe(second);
    const requests = all.filter((l) => l['decision'] === 'deny' || l['decision'] === 'inject');
    for (const l of requests) expect(l['policy'], String(l['path'])).toBe(String(l['path']).startsWith('/gists/') && l['path'] !== '/gists/0' ? second : first);
    const verified = await runCli(['audit', 'verify', '--home', home], env);
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);
  });
});
