import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ProxyAgent, request } from 'undici';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CANARY } from '../helpers/fixtures.ts';
import { cleanEnv, runCli, runProcess, startProxy, type TestProxy } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitForAsync } from '../helpers/wait.ts';

// Issue 89, the first slice: `keyway agents delegate` through the real CLI, and the child's requests
// through the real proxy with curl to a real loopback upstream. A child holds only what its parent
// holds, as the parent stands at each request; it goes when its parent goes; its TTL and depth hold.

const GITHUB = 'api.example.test';
const OPENAI = 'other.example.test';
const OPENAI_CANARY = 'kw-canary-openai-51c0e9';

interface Curl {
  status: number;
  body: string;
  error: string | undefined;
}

describe('delegation: a child agent never wider than its parent', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  const baseConfig = {
    agents: {
      // A config parent with two grants, a rule on one, and a lease clock.
      lead: {
        key: 'env:LEAD_KEY',
        grants: ['github', 'openai'],
        lease_ttl: '1h',
        max_lease_ttl: '2h',
        rules: [
          { grant: 'github', methods: ['GET'] },
          { grant: 'github', deny: true, paths: ['/admin/**'] },
        ],
      },
    },
  };

  beforeAll(async () => {
    upstream = await startUpstream();
    proxy = await startProxy({
      env: { LEAD_KEY: 'lead-key-0123456789abcdef' },
      config: baseConfig,
      grants: [
        { id: 'github', type: 'bearer', domains: [GITHUB], secret: CANARY },
        { id: 'openai', type: 'bearer', domains: [OPENAI], secret: OPENAI_CANARY },
        { id: 'slack', type: 'bearer', domains: ['tunnel.example.test'], secret: 'xoxb-never-handed-on' },
      ],
    });
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  const cli = (...args: string[]) => proxy.cli(args);
  /** Mints a child through the real CLI; its proxy URL, printed once. */
  const delegate = async (...args: string[]): Promise<{ proxy_url: string; chain: string[]; expires_at: string; grants: string[] | null }> => {
    const result = await cli('agents', 'delegate', ...args, '--json');
    expect(result.stderr, args.join(' ')).toBe('');
    expect(result.code).toBe(0);
    return JSON.parse(result.stdout);
  };
  const refusedMint = async (...args: string[]): Promise<string> => {
    const result = await cli('agents', 'delegate', ...args);
    expect(result.code, result.stdout).toBe(1);
    expect(result.stdout).toBe('');
    // The CLI prints the reason; the code is on the change's audit line.
    const name = args[args.indexOf('--name') + 1];
    const line = proxy.auditLines().findLast((l) => l['action'] === 'agent.delegate' && l['agent'] === name);
    expect(line).toMatchObject({ decision: 'admin', code: 'delegation_refused' });
    return result.stderr;
  };
  const curl = async (proxyUrl: string, host: string, path = '/echo'): Promise<Curl> => {
    const result = await runProcess(
      'curl',
      ['-sS', '-w', '\n%{http_code}', '--proxy-header', 'Connection: close', `https://${host}:${upstream.port}${path}`],
      cleanEnv({ HTTPS_PROXY: proxyUrl, CURL_CA_BUNDLE: proxy.bundlePath }),
    );
    const lines = result.stdout.split('\n');
    const status = Number(lines.at(-1));
    // A refused CONNECT: curl prints the proxy's status on stderr (CONNECT tunnel failed, response 407).
    const connect = /response (\d{3})/.exec(result.stderr);
    return { status: status > 0 ? status : Number(connect?.[1] ?? 0), body: lines.slice(0, -1).join('\n'), error: result.stderr || undefined };
  };
  /** A child minted by the CLI is served once the proxy has read the store (it watches it). */
  const served = (proxyUrl: string, host = GITHUB) =>
    waitForAsync(async () => {
      const r = await curl(proxyUrl, host);
      return r.status === 200 ? r : undefined;
    }, 'the new child to be served');
  const names = async (): Promise<string[]> => (JSON.parse((await cli('agents', 'list', '--json')).stdout) as Array<{ id: string }>).map((a) => a.id);
  const reload = async (config: unknown) => {
    writeFileSync(join(proxy.home, 'config', 'keyway.yaml'), stringify({ ...readConfig(), ...(config as object) }));
    expect(await proxy.running.reload()).toMatchObject({ reloaded: true });
  };
  const readConfig = (): Record<string, unknown> => {
    return parse(readFileSync(join(proxy.home, 'config', 'keyway.yaml'), 'utf8')) as Record<string, unknown>;
  };

  it('refuses to mint a grant the parent lacks, naming it, and writes nothing', async () => {
    const stderr = await refusedMint('lead', '--name', 'wide', '--grants', 'github,slack');
    expect(stderr).toContain('does not hold grant "slack"');
    expect(await names()).not.toContain('wide');
  });

  it("mints a child with one of the parent's two grants: it uses that one only, and its lines carry the chain", async () => {
    const child = await delegate('lead', '--name', 'worker', '--grants', 'github', '--ttl', '30m');
    expect(child.chain).toEqual(['lead', 'worker']);
    expect(child.grants).toEqual(['github']);
    expect(child.proxy_url).toMatch(/^http:\/\/worker:[\w-]+@127\.0\.0\.1:\d+$/);
    const listed = JSON.parse((await cli('agents', 'list', '--json')).stdout) as Array<{ id: string; parent: string | null }>;
    expect(listed.find((a) => a.id === 'worker')?.parent).toBe('lead');
    expect(listed.find((a) => a.id === 'lead')?.parent).toBeNull();
    expect((await cli('agents', 'list')).stdout).toMatch(/worker\s+store\s+lead\s+github/);
    const admin = proxy.auditLines().find((l) => l['action'] === 'agent.delegate' && l['agent'] === 'worker');
    expect(admin).toMatchObject({ decision: 'admin' });
    expect(JSON.stringify(admin)).not.toContain(new URL(child.proxy_url).password);

    await served(child.proxy_url);
    const seen = upstream.seen.length;
    expect(upstream.seen.at(-1)?.headers.authorization).toBe(`Bearer ${CANARY}`);
    const other = await curl(child.proxy_url, OPENAI);
    expect(other.status).toBe(403);
    expect(other.body).not.toContain(OPENAI_CANARY);
    // The refused request never reached the upstream.
    expect(upstream.seen.length).toBe(seen);
    const lines = await waitForAsync(async () => {
      const found = proxy.auditLines().filter((l) => l['agent'] === 'worker');
      return found.some((l) => l['decision'] === 'inject') ? found : undefined;
    }, "the child's audit line");
    expect(lines.find((l) => l['decision'] === 'inject')).toMatchObject({ grant: 'github', chain: ['lead', 'worker'] });
    const denied = await waitForAsync(
      async () => proxy.auditLines().find((l) => l['agent'] === 'worker' && l['decision'] === 'deny'),
      "the refusal's audit line",
    );
    expect(denied).toMatchObject({ host: OPENAI, chain: ['lead', 'worker'] });
    // The parent's own line carries no chain.
    expect((await curl(`http://lead:lead-key-0123456789abcdef@127.0.0.1:${proxy.port}`, GITHUB)).status).toBe(200);
    const own = await waitForAsync(async () => proxy.auditLines().find((l) => l['agent'] === 'lead' && l['decision'] === 'inject'), "the parent's audit line");
    expect(own).not.toHaveProperty('chain');
  });

  it("asks the parent's rules too: what the parent may not do, the child may not", async () => {
    const child = await delegate('lead', '--name', 'reader', '--grants', 'github');
    await served(child.proxy_url);
    const seen = upstream.seen.length;
    const refused = await curl(child.proxy_url, GITHUB, '/admin/settings');
    expect(refused.status).toBe(403);
    expect(JSON.parse(refused.body).error).toMatchObject({ code: 'policy_denied', grant: 'github' });
    expect(refused.body).toContain('agents.lead.rules');
    expect(upstream.seen.length).toBe(seen);
  });

  it('gives a child rules of its own (--rules FILE), which only narrow it', async () => {
    const file = join(proxy.home, 'child-rules.yaml');
    writeFileSync(file, stringify([{ grant: 'github', methods: ['GET'], paths: ['/repos/**'] }]));
    const child = await delegate('lead', '--name', 'ruled', '--grants', 'github', '--rules', file);
    await waitForAsync(async () => ((await curl(child.proxy_url, GITHUB, '/repos/a')).status === 200 ? true : undefined), 'the ruled child to be served');
    const seen = upstream.seen.length;
    const refused = await curl(child.proxy_url, GITHUB, '/echo');
    expect(refused.status).toBe(403);
    expect(JSON.parse(refused.body).error).toMatchObject({ code: 'policy_denied' });
    expect(JSON.parse(refused.body).error.message).toContain('agents.ruled.rules');
    // A rule that allows what the parent forbids allows nothing more: the parent is asked too.
    writeFileSync(file, stringify([{ grant: 'github', methods: ['GET'] }]));
    const wide = await delegate('lead', '--name', 'ruled-wide', '--grants', 'github', '--rules', file);
    await served(wide.proxy_url);
    expect((await curl(wide.proxy_url, GITHUB, '/admin/x')).status).toBe(403);
    expect(upstream.seen.length).toBe(seen + 1);
    // Rules that do not read, or name a grant the child does not hold: refused, nothing written.
    writeFileSync(file, stringify([{ grant: 'openai', methods: ['GET'] }]));
    const other = await cli('agents', 'delegate', 'lead', '--name', 'ruled-bad', '--grants', 'github', '--rules', file);
    expect(other.code).toBe(2);
    expect(other.stderr).toContain('rules[0].grant: "openai" is not one of the child\'s grants');
    writeFileSync(file, stringify([{ grant: 'github', methods: ['FETCH'] }]));
    expect((await cli('agents', 'delegate', 'lead', '--name', 'ruled-bad', '--grants', 'github', '--rules', file)).code).toBe(2);
    expect(await names()).not.toContain('ruled-bad');
  });

  it("narrows the child when the parent is narrowed by a reload, and its lease ends the child's use", async () => {
    const child = await delegate('lead', '--name', 'narrowed', '--grants', 'github');
    await served(child.proxy_url);
    // A connection the child holds open across the reload is narrowed too, not only new ones.
    const url = new URL(child.proxy_url);
    const open = new ProxyAgent({
      uri: `http://127.0.0.1:${proxy.port}`,
      token: `Basic ${Buffer.from(`${url.username}:${url.password}`).toString('base64')}`,
      requestTls: { ca: readFileSync(proxy.bundlePath, 'utf8') },
    });
    try {
      const before = await request(`https://${GITHUB}:${upstream.port}/echo`, { dispatcher: open });
      await before.body.text();
      expect(before.statusCode).toBe(200);
      await reload({ agents: { lead: { ...baseConfig.agents.lead, grants: ['openai'], rules: [] } } });
      const seen = upstream.seen.length;
      expect((await curl(child.proxy_url, GITHUB)).status).toBe(403);
      const after = await request(`https://${GITHUB}:${upstream.port}/echo`, { dispatcher: open });
      const body = await after.body.text();
      expect(after.statusCode).toBe(403);
      expect(body).not.toContain(CANARY);
      expect(upstream.seen.length).toBe(seen);
    } finally {
      await open.close();
    }
    // Back as it was; then the parent's lease on github revoked: the child is refused with the parent's lease named.
    await reload({ agents: baseConfig.agents });
    expect((await curl(child.proxy_url, GITHUB)).status).toBe(200);
    const revoked = await cli('agents', 'revoke-lease', 'lead', 'github');
    expect(revoked.code, revoked.stderr).toBe(0);
    const refused = await waitForAsync(async () => {
      const r = await curl(child.proxy_url, GITHUB);
      return r.status === 403 ? r : undefined;
    }, "the parent's revoked lease to refuse the child");
    expect(JSON.parse(refused.body).error).toMatchObject({ code: 'lease_expired' });
    expect(JSON.parse(refused.body).error.message).toContain('agent "lead"');
    expect((await cli('agents', 'lease', 'lead', 'github', '--ttl', '1h')).code).toBe(0);
  });

  it('cuts the child when its parent is removed: new connections and one already open', async () => {
    const added = JSON.parse((await cli('agents', 'add', 'temp-lead', '--grants', 'github,openai', '--json')).stdout) as { proxy_url: string };
    expect(added.proxy_url).toBeTruthy();
    const child = await delegate('temp-lead', '--name', 'temp-worker', '--grants', 'github');
    await served(child.proxy_url);

    // One connection kept open across the removal.
    const url = new URL(child.proxy_url);
    const dispatcher = new ProxyAgent({
      uri: `http://127.0.0.1:${proxy.port}`,
      token: `Basic ${Buffer.from(`${url.username}:${url.password}`).toString('base64')}`,
      requestTls: { ca: readFileSync(proxy.bundlePath, 'utf8') },
    });
    try {
      const first = await request(`https://${GITHUB}:${upstream.port}/echo`, { dispatcher });
      await first.body.text();
      expect(first.statusCode).toBe(200);

      const removed = await cli('agents', 'rm', 'temp-lead');
      expect(removed.code, removed.stderr).toBe(0);
      // The child went with it, from the store as well.
      expect(await names()).not.toContain('temp-worker');
      const refused = await waitForAsync(async () => {
        const r = await curl(child.proxy_url, GITHUB);
        return r.status === 407 ? r : undefined;
      }, 'the removed parent to cut the child');
      expect(refused.body).not.toContain(CANARY);

      const seen = upstream.seen.length;
      const again = await request(`https://${GITHUB}:${upstream.port}/echo`, { dispatcher }).then(
        async (r) => ({ status: r.statusCode, body: await r.body.text() }),
        (err: Error) => ({ status: 0, body: err.message }),
      );
      expect(again.status).not.toBe(200);
      expect(again.body).not.toContain(CANARY);
      expect(upstream.seen.length).toBe(seen);
    } finally {
      await dispatcher.close();
    }
  });

  it("ends the child when its parent's key is rotated: the child was minted under the old key", async () => {
    expect((await cli('agents', 'add', 'rot-lead', '--grants', 'github')).code).toBe(0);
    const child = await delegate('rot-lead', '--name', 'rot-worker');
    expect(child.grants).toEqual(['github']);
    await served(child.proxy_url);
    // Minted from a shell without the config agents' keys (LEAD_KEY unset): a store parent needs none of them.
    const bare = await runCli(['agents', 'delegate', 'rot-lead', '--name', 'rot-worker-2'], {
      KEYWAY_HOME: proxy.home,
      KEYWAY_MASTER_KEY: proxy.env['KEYWAY_MASTER_KEY']!,
    });
    expect(bare.code, bare.stderr).toBe(0);
    const rotated = JSON.parse((await cli('agents', 'rotate-key', 'rot-lead', '--json')).stdout) as { proxy_url: string };
    await waitForAsync(async () => ((await curl(child.proxy_url, GITHUB)).status === 407 ? true : undefined), 'the rotation to end the child');
    // The parent goes on with its new key; the child is gone from the store as well.
    await served(rotated.proxy_url);
    expect(await names()).not.toContain('rot-worker');
    expect(await names()).not.toContain('rot-worker-2');
  });

  it('holds the depth limit: a root mints one generation by default, a child none', async () => {
    await delegate('lead', '--name', 'shallow', '--grants', 'github');
    expect(await refusedMint('shallow', '--name', 'deeper')).toContain('no delegation depth left');
    expect(await refusedMint('lead', '--name', 'deep-ask', '--depth', '1')).toContain('depth 1 is more than agent "lead" may hand on');
    expect(await names()).not.toContain('deeper');
  });

  it("holds the TTL: never past the parent's lease, and the child's key refused once it runs out", async () => {
    expect(await refusedMint('lead', '--name', 'long', '--ttl', '3h')).toContain('leases last at most 2h');
    const child = await delegate('lead', '--name', 'brief', '--grants', 'github', '--ttl', '2s');
    expect(Date.parse(child.expires_at) - Date.now()).toBeLessThanOrEqual(2_000);
    // Until the proxy has read the store the key is unknown; then, once its time is up, refused as
    // expired (not as a wrong key): the key was the child's.
    const expired = (l: Record<string, unknown>) => l['code'] === 'proxy_auth_required' && String(l['message']).includes('agent "brief" expired at');
    const refused = await waitForAsync(async () => {
      const r = await curl(child.proxy_url, GITHUB);
      return r.status === 407 && proxy.auditLines().some(expired) ? r : undefined;
    }, "the child's TTL to run out");
    expect(refused.body).not.toContain(CANARY);
    expect(proxy.auditLines().find(expired)).toMatchObject({ decision: 'deny', status: 407 });
    // Nothing it sent after its expiry went upstream.
    const after = Date.parse(child.expires_at);
    expect(proxy.auditLines().filter((l) => l['agent'] === 'brief' && l['decision'] === 'inject' && Date.parse(String(l['ts'])) > after)).toEqual([]);
  });
});
