// Why, not only what (issue 23): an agent states its purpose in X-Keyway-Purpose (or keyway fetch
// --purpose); keyway records it in the audit line as `purpose` (bounded, control characters removed,
// the secret redacted) and never sends the header upstream. A grant or an allow rule with
// require_purpose refuses a request without one: 400 purpose_required.
import { readFileSync } from 'node:fs';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CANARY } from '../helpers/fixtures.ts';
import { cleanEnv, runProcess, startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

const SECRET = `${CANARY}-purpose`;

describe('X-Keyway-Purpose', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let agent: ProxyAgent;
  const outputs: string[] = [];

  beforeAll(async () => {
    upstream = await startUpstream();
    proxy = await startProxy({
      grants: [{ id: 'api', type: 'bearer', domains: ['api.example.test'], secret: SECRET }],
      env: { BOT_KEY: 'bot-key', WATCH_KEY: 'watch-key', STRICT_SECRET: `${SECRET}-strict` },
      config: {
        grants: { strict: { type: 'bearer', domains: ['other.example.test'], secret: 'env:STRICT_SECRET', require_purpose: true } },
        agents: {
          bot: {
            key: 'env:BOT_KEY',
            grants: ['api', 'strict'],
            rules: [
              { grant: 'api', methods: ['GET'], paths: ['/echo', '/free/**'] },
              { grant: 'api', methods: ['DELETE'], paths: ['/repos/**'], require_purpose: true },
              { grant: 'strict', methods: ['GET'] },
            ],
          },
          // Warn mode refuses nothing: a rule's require_purpose is only reported.
          watch: { key: 'env:WATCH_KEY', grants: ['api'], mode: 'warn', rules: [{ grant: 'api', methods: ['DELETE'], require_purpose: true }] },
        },
      },
    });
    agent = new ProxyAgent({ uri: `http://bot:bot-key@127.0.0.1:${proxy.port}`, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
  });
  afterAll(async () => {
    await agent?.close();
    const audit = readFileSync(proxy.auditPath, 'utf8');
    for (const text of [audit, ...outputs, ...proxy.logs]) expect(findLeak(text, SECRET), 'the canary in an output').toBeUndefined();
    await proxy?.stop();
    await upstream?.close();
  });

  async function call(method: string, path: string, headers: Record<string, string> = {}, host = 'api.example.test') {
    const res = await request(`https://${host}:${upstream.port}${path}`, { dispatcher: agent, method: method as 'GET', headers });
    const text = await res.body.text();
    outputs.push(text);
    return { status: res.statusCode, code: res.headers['x-keyway-error'], text };
  }

  /** Polls `check` until it holds (a store change reaches the running proxy within a second or so). */
  async function until(check: () => Promise<boolean>, ms = 5_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error('the change did not apply in time');
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** The audit line of the request whose path is `path` (unique per test). */
  async function lineFor(path: string): Promise<Record<string, unknown>> {
    return waitFor(() => proxy.auditLines().find((l) => l['path'] === path), `the audit line of ${path}`);
  }

  it('records the purpose in the audit line and never sends the header upstream', async () => {
    const r = await call('GET', '/echo', { 'X-Keyway-Purpose': 'triage issue #42 for the weekly report' });
    expect(r.status).toBe(200);
    const echoed = JSON.parse(r.text) as { headers: Record<string, string> };
    expect(Object.keys(echoed.headers)).not.toContain('x-keyway-purpose');
    expect(upstream.seen.at(-1)!.headers['x-keyway-purpose']).toBeUndefined();
    expect(await lineFor('/echo')).toMatchObject({ decision: 'inject', purpose: 'triage issue #42 for the weekly report' });
  });

  it('removes control characters, keeps UTF-8, and bounds the length', async () => {
    const raw = Buffer.from(`fix\tthe\u202Ebuild ✓ ${'x'.repeat(400)}`, 'utf8').toString('latin1');
    const r = await call('GET', '/free/long', { 'X-Keyway-Purpose': raw });
    expect(r.status).toBe(200);
    const purpose = (await lineFor('/free/long'))['purpose'] as string;
    expect(purpose.startsWith('fix the build ✓ xxx')).toBe(true);
    expect([...purpose].length).toBe(200);
    expect(purpose.endsWith('…')).toBe(true);
  });

  it('redacts the secret when an agent writes it into its purpose', async () => {
    const r = await call('GET', '/free/echo-secret', { 'X-Keyway-Purpose': `token is ${SECRET} ok` });
    expect(r.status).toBe(200);
    expect(upstream.seen.at(-1)!.headers['x-keyway-purpose']).toBeUndefined();
    const purpose = (await lineFor('/free/echo-secret'))['purpose'] as string;
    expect(purpose).toBe('token is [redacted by keyway] ok');
  });

  it('a grant with require_purpose refuses a request without one: 400 purpose_required', async () => {
    const without = await call('GET', '/echo', {}, 'other.example.test');
    expect(without.status).toBe(400);
    expect(without.code).toBe('purpose_required');
    expect(JSON.parse(without.text).error.message).toContain('grant "strict" requires a purpose');
    const blank = await call('GET', '/echo', { 'X-Keyway-Purpose': ' \t ' }, 'other.example.test');
    expect(blank.code).toBe('purpose_required');
    const given = await call('GET', '/echo', { 'X-Keyway-Purpose': 'read the status page' }, 'other.example.test');
    expect(given.status).toBe(200);
  });

  it('an allow rule with require_purpose refuses a request it allows that has none, and names the rule', async () => {
    const before = upstream.seen.length;
    const without = await call('DELETE', '/repos/acme/widgets');
    expect(without.status).toBe(400);
    expect(without.code).toBe('purpose_required');
    expect(JSON.parse(without.text).error.message).toMatch(/agents\.bot\.rules\[1\].*requires a purpose/);
    expect(upstream.seen.length).toBe(before);
    expect(await lineFor('/repos/acme/widgets')).toMatchObject({ decision: 'deny', code: 'purpose_required', grant: 'api' });
    const given = await call('DELETE', '/repos/acme/gadgets', { 'X-Keyway-Purpose': 'the user asked to delete the old repository' });
    expect(given.status).toBe(200);
    expect(await lineFor('/repos/acme/gadgets')).toMatchObject({ decision: 'inject', purpose: 'the user asked to delete the old repository' });
  });

  it('grants set --require-purpose turns it on for a stored grant (and shows in grants show), --no-require-purpose off', async () => {
    const on = await proxy.cli(['grants', 'set', 'api', '--require-purpose']);
    expect(on.code, on.stderr).toBe(0);
    expect(JSON.parse((await proxy.cli(['grants', 'show', 'api', '--json'])).stdout)).toMatchObject({ require_purpose: true });
    expect((await proxy.cli(['grants', 'show', 'api'])).stdout).toContain('required (X-Keyway-Purpose)');
    // The running proxy reads the store change within a second or so.
    await until(async () => (await call('GET', '/free/on')).code === 'purpose_required');
    expect((await call('GET', '/free/on', { 'X-Keyway-Purpose': 'a reason' })).status).toBe(200);
    expect((await proxy.cli(['grants', 'set', 'api', '--no-require-purpose'])).code).toBe(0);
    await until(async () => (await call('GET', '/free/off')).status === 200);
  });

  it('an agent in warn mode is not refused for a missing purpose', async () => {
    const watcher = new ProxyAgent({ uri: `http://watch:watch-key@127.0.0.1:${proxy.port}`, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
    try {
      const res = await request(`https://api.example.test:${upstream.port}/repos/acme/watched`, { dispatcher: watcher, method: 'DELETE' });
      outputs.push(await res.body.text());
      expect(res.statusCode).toBe(200);
    } finally {
      await watcher.close();
    }
  });

  it('keyway fetch --purpose sends it', async () => {
    const env = cleanEnv({ KEYWAY_HOME: proxy.home, ...proxy.env, KEYWAY_AGENT_KEY: 'bot-key' });
    const r = await runProcess(
      process.execPath,
      [
        ...[new URL('../../src/cli/main.ts', import.meta.url).pathname],
        'fetch',
        '--agent',
        'bot',
        '--purpose',
        'weekly report — résumé',
        `https://api.example.test:${upstream.port}/free/fetched`,
      ],
      env,
    );
    outputs.push(r.stdout, r.stderr);
    expect(r.code, r.stderr).toBe(0);
    expect(await lineFor('/free/fetched')).toMatchObject({ purpose: 'weekly report — résumé' });
  });
});
