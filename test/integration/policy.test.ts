import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProxyAgent, request } from 'undici';
import { CANARY } from '../helpers/fixtures.ts';
import { waitFor } from '../helpers/wait.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

// Rules and leases on the real request path. Time is a pinned clock the test moves: no waiting.

describe('agent rules and leases through the proxy', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let clock = new Date('2026-11-23T10:00:00Z'); // a Monday, 11:00 in Paris
  const agents: Record<string, ProxyAgent> = {};

  const grant = (id: string, domains: string[]) => ({ id, type: 'bearer' as const, domains, secret: `${CANARY}-${id}` });

  beforeAll(async () => {
    upstream = await startUpstream();
    proxy = await startProxy({
      now: () => clock,
      grants: [grant('github', ['api.example.test']), grant('personal', ['other.example.test']), grant('work', ['other.example.test'])],
      env: { CLAUDE_KEY: 'claude-key', WATCHER_KEY: 'watcher-key', LEASED_KEY: 'leased-key', WORKER_KEY: 'worker-key', BOTH_KEY: 'both-key' },
      config: {
        agents: {
          claude: {
            key: 'env:CLAUDE_KEY',
            grants: ['github'],
            rules: [
              { grant: 'github', methods: ['GET'], paths: ['/repos/**'] },
              {
                grant: 'github',
                methods: ['POST'],
                paths: ['/repos/*/issues'],
                hours: '09:00-18:00',
                days: ['mon', 'tue', 'wed', 'thu', 'fri'],
                tz: 'Europe/Paris',
              },
              { grant: 'github', methods: ['PUT'], paths: ['/upload'], max_body: '1KiB' },
              { grant: 'github', deny: true, paths: ['/repos/secret/**'] },
            ],
          },
          watcher: { key: 'env:WATCHER_KEY', grants: ['github'], mode: 'warn', rules: [{ grant: 'github', methods: ['GET'], sources: ['10.9.0.0/16'] }] },
          leased: { key: 'env:LEASED_KEY', grants: ['github'], lease_ttl: '15m', max_lease_ttl: '1h' },
          worker: { key: 'env:WORKER_KEY', grants: ['work'] },
          both: { key: 'env:BOTH_KEY', grants: ['personal', 'work'] },
        },
      },
    });
    const ca = readFileSync(proxy.caPath, 'utf8');
    for (const [id, key] of [
      ['claude', 'claude-key'],
      ['watcher', 'watcher-key'],
      ['leased', 'leased-key'],
      ['worker', 'worker-key'],
      ['both', 'both-key'],
    ] as const) {
      agents[id] = new ProxyAgent({ uri: `http://${id}:${key}@127.0.0.1:${proxy.port}`, requestTls: { ca } });
    }
  });
  afterAll(async () => {
    await Promise.all(Object.values(agents).map((a) => a.close()));
    await proxy?.stop();
    await upstream?.close();
  });

  async function call(agent: string, method: string, path: string, options: { host?: string; body?: string; headers?: Record<string, string> } = {}) {
    const res = await request(`https://${options.host ?? 'api.example.test'}:${upstream.port}${path}`, {
      dispatcher: agents[agent]!,
      method: method as 'GET',
      body: options.body,
      headers: options.headers,
    });
    const text = await res.body.text();
    return {
      status: res.statusCode,
      error: res.statusCode >= 400 && text.startsWith('{"error"') ? (JSON.parse(text).error as Record<string, string>) : undefined,
    };
  }

  const auditLine = (predicate: (l: Record<string, unknown>) => boolean) => waitFor(() => proxy.auditLines().findLast(predicate), 'the audit line');

  it('allows what a rule allows and refuses the rest, naming the rule in the error and the audit line', async () => {
    expect((await call('claude', 'GET', '/repos/keyway/pulls')).status).toBe(200);
    const refused = await call('claude', 'DELETE', '/repos/keyway');
    expect(refused.status).toBe(403);
    expect(refused.error?.['code']).toBe('policy_denied');
    expect(refused.error?.['message']).toContain('agents.claude.rules');
    const line = await auditLine((l) => l['method'] === 'DELETE');
    expect(line).toMatchObject({ decision: 'deny', code: 'policy_denied', agent: 'claude', grant: 'github' });
    expect(String(line?.['rule'])).toContain('agents.claude.rules');
  });

  it('a deny rule wins over a matching allow rule', async () => {
    const refused = await call('claude', 'GET', '/repos/secret/keys');
    expect(refused.status).toBe(403);
    expect(refused.error?.['message']).toContain('rules[3]');
  });

  it('applies time windows in the rule time zone, on the pinned clock', async () => {
    clock = new Date('2026-11-23T10:00:00Z'); // Monday 11:00 Paris: inside
    expect((await call('claude', 'POST', '/repos/keyway/issues', { body: '{}' })).status).toBe(200);
    clock = new Date('2026-11-23T18:30:00Z'); // Monday 19:30 Paris: after hours
    expect((await call('claude', 'POST', '/repos/keyway/issues', { body: '{}' })).status).toBe(403);
    clock = new Date('2026-11-28T10:00:00Z'); // Saturday: not a listed day
    expect((await call('claude', 'POST', '/repos/keyway/issues', { body: '{}' })).status).toBe(403);
    clock = new Date('2026-11-23T10:00:00Z');
  });

  it('caps the declared body size', async () => {
    expect((await call('claude', 'PUT', '/upload', { body: 'x'.repeat(512) })).status).toBe(200);
    const big = await call('claude', 'PUT', '/upload', { body: 'x'.repeat(4096) });
    expect(big.status).toBe(403);
    expect(big.error?.['code']).toBe('policy_denied');
  });

  it('caps a body of undeclared size as it streams', async () => {
    const chunked = (size: number) =>
      Readable.from(
        (function* () {
          for (let sent = 0; sent < size; sent += 256) yield Buffer.alloc(256, 0x61);
        })(),
      );
    const small = await request(`https://api.example.test:${upstream.port}/upload`, { dispatcher: agents['claude']!, method: 'PUT', body: chunked(512) });
    expect(small.statusCode).toBe(200);
    expect(JSON.parse(await small.body.text())).toEqual({ bytes: 512 });
    const big = await request(`https://api.example.test:${upstream.port}/upload`, { dispatcher: agents['claude']!, method: 'PUT', body: chunked(8192) });
    const text = await big.body.text();
    expect(big.statusCode, text).toBe(403);
    expect(JSON.parse(text).error.message).toContain('max_body');
  });

  it('warn mode lets a refused request through and records it', async () => {
    // The watcher's rule allows only sources in 10.9.0.0/16; the test client is 127.0.0.1.
    expect((await call('watcher', 'GET', '/repos/x')).status).toBe(200);
    const line = await auditLine((l) => l['agent'] === 'watcher');
    expect(line).toMatchObject({ decision: 'inject', policy_mode: 'warn' });
    expect(proxy.logs.join('')).toContain('warn mode');
  });

  it('a lease runs out between two requests though the token is still valid; a renewal is capped by max_lease_ttl', async () => {
    // The CLI renews on the real clock, so this test's pinned clock starts from it.
    const start = Date.now();
    const at = (minutes: number) => (clock = new Date(start + minutes * 60_000));
    at(0);
    expect((await call('leased', 'GET', '/echo')).status).toBe(200); // the first use starts a 15 minute lease
    at(14);
    expect((await call('leased', 'GET', '/echo')).status).toBe(200);
    at(16);
    const expired = await call('leased', 'GET', '/echo');
    expect(expired.status).toBe(403);
    expect(expired.error?.['code']).toBe('lease_expired');
    expect(expired.error?.['hint']).toContain('keyway agents lease leased github');

    const renewed = await proxy.cli(['agents', 'lease', 'leased', 'github', '--ttl', '3h', '--json']);
    expect(renewed.code, renewed.stderr).toBe(0);
    const expiresAt = Date.parse(JSON.parse(renewed.stdout).expires_at);
    expect(expiresAt - start).toBeLessThanOrEqual(61 * 60_000); // capped at max_lease_ttl (1h)
    const deadline = Date.now() + 2_000;
    let status = 0;
    at(0);
    while (status !== 200 && Date.now() < deadline) status = (await call('leased', 'GET', '/echo')).status; // the proxy picks up the CLI write
    expect(status).toBe(200);
    at(70);
    expect((await call('leased', 'GET', '/echo')).status).toBe(403);
    const revoke = await proxy.cli(['agents', 'revoke-lease', 'leased', 'github']);
    expect(revoke.code, revoke.stderr).toBe(0);
    clock = new Date('2026-11-23T10:00:00Z');
  });

  it('chooses among grants on one host by the agent binding, by header, or refuses as ambiguous', async () => {
    const seen = () => upstream.seen.at(-1)?.headers['authorization'];
    expect((await call('worker', 'GET', '/echo', { host: 'other.example.test' })).status).toBe(200);
    expect(seen()).toBe(`Bearer ${CANARY}-work`);
    const ambiguous = await call('both', 'GET', '/echo', { host: 'other.example.test' });
    expect(ambiguous.status).toBe(400);
    expect(ambiguous.error?.['code']).toBe('grant_ambiguous');
    expect(ambiguous.error?.['hint']).toContain('personal, work');
    expect((await call('both', 'GET', '/echo', { host: 'other.example.test', headers: { 'x-keyway-grant': 'personal' } })).status).toBe(200);
    expect(seen()).toBe(`Bearer ${CANARY}-personal`);
    expect(upstream.seen.at(-1)?.headers['x-keyway-grant']).toBeUndefined();
  });
});
