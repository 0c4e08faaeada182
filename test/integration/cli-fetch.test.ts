import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CANARY } from '../helpers/fixtures.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { runCli, startProxy, TEST_HOSTS, type TestProxy } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

// `keyway fetch` through the real CLI in a child process: through a running proxy, and through one
// it starts itself when none runs. The upstream echoes the request, credential included, so the
// body keyway fetch receives carries the secret unless the leak guard takes it out.

const AGENT = 'bot';
const AGENT_KEY = 'bot-key-0123456789abcdef';

describe('keyway fetch', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let home: string;
  const outputs: string[] = [];

  const fetchCli = async (args: string[], env: Record<string, string> = {}) => {
    const r = await runCli(['fetch', ...args], { KEYWAY_HOME: home, HOME: home, ...proxy.env, ...env });
    outputs.push(r.stdout, r.stderr);
    return r;
  };
  const url = (path: string, host = 'api.example.test') => `https://${host}:${upstream.port}${path}`;
  const lastSeen = () => upstream.seen.at(-1)!;

  beforeAll(async () => {
    upstream = await startUpstream();
    proxy = await startProxy({
      env: { BOT_KEY: AGENT_KEY },
      config: {
        proxy: { unmatched: 'deny', hosts: Object.fromEntries(TEST_HOSTS.map((h) => [h, '127.0.0.1'])) },
        agents: { [AGENT]: { key: 'env:BOT_KEY', grants: ['api', 'api-b'] } },
      },
      grants: [
        { id: 'api', type: 'bearer', domains: ['api.example.test'], secret: CANARY },
        { id: 'api-b', type: 'bearer', domains: ['api.example.test'], secret: `${CANARY}-b` },
        { id: 'other', type: 'bearer', domains: ['other.example.test'], secret: `${CANARY}-other` },
      ],
    });
    home = proxy.home;
  });

  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  it('sends through the running proxy: the credential is injected upstream and never printed', async () => {
    const r = await fetchCli(['--agent', AGENT, '--grant', 'api', url('/echo?tag=running')], { KEYWAY_AGENT_KEY: AGENT_KEY });
    expect(r.code, r.stderr).toBe(0);
    expect(lastSeen().headers.authorization).toBe(`Bearer ${CANARY}`);
    const echo = JSON.parse(r.stdout) as { headers: Record<string, string> };
    expect(echo.headers['authorization']).toBe('Bearer [redacted by keyway]');
    expect(echo.headers['x-keyway-grant']).toBeUndefined();
    const line = await waitFor(
      () => proxy.auditLines().find((l) => l['agent'] === AGENT && l['decision'] === 'inject' && l['path'] === '/echo'),
      'the inject line',
    );
    expect(line['grant']).toBe('api');
  });

  it('sends a method, headers and a body (-X, -H, -d, --data-file) and gives --json {status, headers, body}', async () => {
    const file = join(home, 'body.json');
    writeFileSync(file, '{"from":"file"}');
    const env = { KEYWAY_AGENT: AGENT, KEYWAY_AGENT_KEY: AGENT_KEY };
    const r = await fetchCli(
      ['-X', 'put', '-H', 'Content-Type: application/json', '-H', 'X-Note: a, b', '--grant', 'api-b', '--data-file', file, url('/echo'), '--json'],
      env,
    );
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { status: number; headers: Record<string, string>; body: string };
    expect(out.status).toBe(200);
    expect(out.headers['content-type']).toContain('application/json');
    const echo = JSON.parse(out.body) as { method: string; headers: Record<string, string> };
    expect(echo.method).toBe('PUT');
    expect(echo.headers['x-note']).toBe('a, b');
    expect(lastSeen()).toMatchObject({ method: 'PUT', bodyBytes: 15 });
    expect(lastSeen().headers.authorization).toBe(`Bearer ${CANARY}-b`);

    const posted = await fetchCli(['-d', 'a=1', '--grant', 'api', url('/echo')], env);
    expect(posted.code, posted.stderr).toBe(0);
    expect(lastSeen()).toMatchObject({ method: 'POST', bodyBytes: 3 });
    expect(lastSeen().headers['content-type']).toBe('application/x-www-form-urlencoded');
  });

  it('exits 1 with code, message and hint when keyway refuses inside the tunnel', async () => {
    const env = { KEYWAY_AGENT: AGENT, KEYWAY_AGENT_KEY: AGENT_KEY };
    const ambiguous = await fetchCli([url('/echo')], env);
    expect(ambiguous.code).toBe(1);
    expect(ambiguous.stdout).toBe('');
    expect(ambiguous.stderr).toBe(
      'keyway fetch: grant_ambiguous: 2 grants cover this host and none was chosen (hint: send the header X-Keyway-Grant with one of: api, api-b)\n',
    );

    const notHers = await fetchCli([url('/echo', 'other.example.test')], env);
    expect(notHers.code).toBe(1);
    expect(notHers.stderr).toBe(
      `keyway fetch: host_not_allowed: agent "${AGENT}" may not use the grant covering other.example.test (other) (hint: add the grant to agent "${AGENT}")\n`,
    );
  });

  it('exits 1 with code, message and hint when keyway refuses the CONNECT itself', async () => {
    const blind = await fetchCli([url('/', 'tunnel.example.test')], { KEYWAY_AGENT: AGENT, KEYWAY_AGENT_KEY: AGENT_KEY });
    expect(blind.code).toBe(1);
    expect(blind.stderr).toBe(
      'keyway fetch: host_not_allowed: no grant covers tunnel.example.test and proxy.unmatched is deny (hint: add the host to proxy.allow_tunnel to let it through untouched)\n',
    );

    const noKey = await fetchCli([url('/echo')], { KEYWAY_AGENT: AGENT, KEYWAY_AGENT_KEY: 'wrong-key-000000000000' });
    expect(noKey.code).toBe(1);
    expect(noKey.stderr).toBe('keyway fetch: proxy_auth_required: unknown agent or wrong agent key\n');

    const anonymous = await fetchCli([url('/echo')]);
    expect(anonymous.code).toBe(1);
    expect(anonymous.stderr).toBe(
      'keyway fetch: proxy_auth_required: proxy credentials required (hint: use the proxy URL printed by `keyway agents add` (http://AGENT_ID:AGENT_KEY@host:port))\n' +
        'keyway fetch: agents are configured, so requests without agent credentials get 407 proxy_auth_required: ' +
        'pass --agent ID (or KEYWAY_AGENT) to keyway fetch, its key in KEYWAY_AGENT_KEY (or, for an agent in the config, read from its reference)\n',
    );
  });

  it("sends http:// as an absolute-form request (keyway's plain-HTTP path), and exits 1 when nothing answers", async () => {
    const env = { KEYWAY_AGENT: AGENT, KEYWAY_AGENT_KEY: AGENT_KEY };
    const before = proxy.auditLines().length;
    const plain = await fetchCli([`http://tunnel.example.test:${upstream.port}/plain?token=x`], env);
    expect(plain.code).toBe(1);
    // The same refusal, hint included, as the CONNECT above gets (one unmatched rule for both).
    expect(plain.stderr).toBe(
      'keyway fetch: host_not_allowed: no grant covers tunnel.example.test and proxy.unmatched is deny (hint: add the host to proxy.allow_tunnel to let it through untouched)\n',
    );
    const line = await waitFor(
      () =>
        proxy
          .auditLines()
          .slice(before)
          .find((l) => l['host'] === 'tunnel.example.test'),
      'the audit line',
    );
    expect(line).toMatchObject({ method: 'GET', decision: 'deny', code: 'host_not_allowed' });

    const nobody = await fetchCli([`https://api.example.test:1/`, '--grant', 'api'], env);
    expect(nobody.code).toBe(1);
    expect(nobody.stderr).toMatch(/^keyway fetch: upstream_unreachable: api\.example\.test:1: connection refused\n$/);
  });

  it('refuses bad arguments with one line and exit 2', async () => {
    for (const [args, message] of [
      [[], 'expected a URL'],
      [['ftp://api.example.test/'], 'unsupported scheme ftp:'],
      [['-H', 'no colon', url('/')], "-H: expected 'Name: value'"],
      [['-d', 'x', '--data-file', 'f', url('/')], 'give -d or --data-file, not both'],
    ] as const) {
      const r = await fetchCli([...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toContain(message);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
  });

  it('starts a proxy of its own when none runs, for the one request, and audits it', async () => {
    await proxy.stop();
    expect(existsSync(join(home, 'data', 'proxy.json'))).toBe(false);
    const before = proxy.auditLines().length;
    const r = await fetchCli(['--grant', 'api', url('/echo?tag=in-process')], { KEYWAY_AGENT: AGENT, KEYWAY_AGENT_KEY: AGENT_KEY });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(lastSeen().url).toBe('/echo?tag=in-process');
    expect(lastSeen().headers.authorization).toBe(`Bearer ${CANARY}`);
    expect((JSON.parse(r.stdout) as { headers: Record<string, string> }).headers['authorization']).toBe('Bearer [redacted by keyway]');
    const added = proxy.auditLines().slice(before);
    expect(added).toHaveLength(1);
    expect(added[0]).toMatchObject({ agent: AGENT, grant: 'api', decision: 'inject', path: '/echo', status: 200 });
    // It announced nothing: no other command would have found it.
    expect(existsSync(join(home, 'data', 'proxy.json'))).toBe(false);
    const verify = await runCli(['audit', 'verify'], { KEYWAY_HOME: home, HOME: home, ...proxy.env });
    expect(verify.code, verify.stdout).toBe(0);
  });

  it('does not set keyway up where it is not: no CA, key or store is made', async () => {
    const empty = join(home, 'elsewhere');
    const r = await runCli(['fetch', url('/')], { KEYWAY_HOME: empty, HOME: empty });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('keyway is not set up in');
    expect(existsSync(join(empty, 'certs'))).toBe(false);
    expect(existsSync(join(empty, 'data'))).toBe(false);
  });

  it('never printed the secret in any form', () => {
    for (const text of outputs) expect(findLeak(text, CANARY)).toBeUndefined();
  });
});
