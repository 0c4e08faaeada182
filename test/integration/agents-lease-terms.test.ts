// An existing agent gets, changes or loses its lease clock (lease_ttl, max_lease_ttl) without a new
// key (issue 60: only re-adding the agent gave one): `keyway agents set ID --lease-ttl D` and
// `PATCH /api/agents/{agent}` with `lease_ttl`, both audited. Real proxy, real curl through it with
// the key the agent was given at the start, which keeps working throughout.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminClient, type AdminClient } from '../helpers/admin-api.ts';
import { curl } from '../helpers/clients.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { cleanEnv, startProxy, type TestProxy } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

const HOUR = 3_600_000;

interface AgentRow {
  id: string;
  lease_ttl: string | null;
  max_lease_ttl: string | null;
  access: Array<{ grant: string; lease: string; lease_expires_at: string | null }>;
}

describe('agents set: lease terms for an agent that exists', () => {
  let proxy: TestProxy;
  let upstream: TestUpstream;
  let admin: AdminClient;
  let botUrl: string;
  let botKey: string;

  beforeAll(async () => {
    upstream = await startUpstream();
    proxy = await startProxy({
      grants: [{ id: 'github', type: 'bearer', domains: ['api.example.test'], secret: CANARY }],
      config: { agents: { cfg: { key: 'env:CFG_KEY', grants: ['github'] } } },
      env: { CFG_KEY: 'cfg-agent-key-0123456789' },
    });
    admin = adminClient(proxy);
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  const cli = (...args: string[]) => proxy.cli(args);
  const ok = async (...args: string[]) => {
    const r = await cli(...args);
    expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
    return r.stdout;
  };
  const agent = async (id: string): Promise<AgentRow> => {
    const rows = JSON.parse(await ok('agents', 'list', '--json')) as AgentRow[];
    const row = rows.find((a) => a.id === id);
    if (!row) throw new Error(`no agent ${id}`);
    return row;
  };
  /** A real curl through keyway with the agent's proxy URL: the status and keyway's error code. */
  const send = async () => {
    const res = await curl(
      ['-o', '/dev/null', '-w', '%{http_code} %header{x-keyway-error}', '-x', botUrl, `https://api.example.test:${upstream.port}/echo`],
      cleanEnv({ CURL_CA_BUNDLE: proxy.bundlePath }),
    );
    const [status = '', error = ''] = res.stdout.split(' ');
    return { status: Number(status), error };
  };
  /** The running proxy re-reads the store every 250 ms: waits until its view of the agent (the admin API's) is the CLI's. */
  const settle = async (id = 'bot') => {
    const view = (row: AgentRow | undefined) =>
      row && {
        lease_ttl: row.lease_ttl,
        max_lease_ttl: row.max_lease_ttl,
        access: row.access.map(({ grant, lease, lease_expires_at }) => ({ grant, lease, lease_expires_at })),
      };
    const written = view(await agent(id));
    await expect
      .poll(async () => {
        const { agents } = (await admin.call('GET', '/api/agents')).body as { agents: Array<Omit<AgentRow, 'access'> & { leases: AgentRow['access'] }> };
        const row = agents.find((a) => a.id === id);
        return view(row && { ...row, access: row.leases });
      })
      .toEqual(written);
  };
  const adminLines = (action: string) => proxy.auditLines().filter((l) => l['decision'] === 'admin' && l['action'] === action);

  it('an agent added without a lease clock gets one, keeping its key, and the proxy applies it', async () => {
    const added = JSON.parse(await ok('agents', 'add', 'bot', '--grants', 'github', '--json')) as { key: string; proxy_url: string };
    botKey = added.key;
    botUrl = added.proxy_url;
    await settle();
    expect(await send()).toEqual({ status: 200, error: '' });

    // Before: lease refuses, and says how to give the agent a lease clock without re-adding it.
    const refused = await cli('agents', 'lease', 'bot', 'github');
    expect(refused.code).not.toBe(0);
    expect(refused.stderr.trim()).toMatch(/agent "bot" has no lease_ttl.*keyway agents set bot --lease-ttl D/);

    const set = JSON.parse(await ok('agents', 'set', 'bot', '--lease-ttl', '30m', '--max-lease-ttl', '2h', '--json')) as AgentRow;
    expect(set).toMatchObject({ id: 'bot', lease_ttl: '30m', max_lease_ttl: '2h' });
    expect((await agent('bot')).access).toEqual([expect.objectContaining({ grant: 'github', lease: 'pending' })]);
    await settle();
    // The same key: the next request starts a lease of 30m.
    expect(await send()).toEqual({ status: 200, error: '' });
    const started = (await agent('bot')).access[0]!;
    expect(started.lease).toBe('active');
    expect(Math.abs(Date.parse(started.lease_expires_at!) - (Date.now() + HOUR / 2))).toBeLessThan(60_000);

    const capped = JSON.parse(await ok('agents', 'lease', 'bot', 'github', '--ttl', '5h', '--json')) as { capped: boolean; ttl: string };
    expect(capped).toMatchObject({ capped: true, ttl: '2h' });
    await ok('agents', 'revoke-lease', 'bot', 'github');
    await settle();
    expect(await send()).toEqual({ status: 403, error: 'lease_expired' });
    await ok('agents', 'lease', 'bot', 'github');
    await settle();
    expect(await send()).toEqual({ status: 200, error: '' });

    const lines = adminLines('agents.update').filter((l) => l['agent'] === 'bot');
    expect(lines.map((l) => [l['changed'], l['code']])).toEqual([['lease_ttl,max_lease_ttl', null]]);
    expect(JSON.stringify(proxy.auditLines())).not.toContain(botKey);
  });

  it('a lower max_lease_ttl cuts a live lease down to it; --lease-ttl none ends the clock and its leases', async () => {
    await ok('agents', 'lease', 'bot', 'github', '--ttl', '2h');
    await ok('agents', 'set', 'bot', '--max-lease-ttl', '45m');
    const cut = await agent('bot');
    expect(cut).toMatchObject({ lease_ttl: '30m', max_lease_ttl: '45m' });
    expect(Math.abs(Date.parse(cut.access[0]!.lease_expires_at!) - (Date.now() + 0.75 * HOUR))).toBeLessThan(60_000);

    await ok('agents', 'revoke-lease', 'bot', 'github');
    await settle();
    expect(await send()).toEqual({ status: 403, error: 'lease_expired' });
    const off = await ok('agents', 'set', 'bot', '--lease-ttl', 'none', '--max-lease-ttl', 'none');
    expect(off).toContain('agent bot has no lease clock now');
    expect(await agent('bot')).toMatchObject({ lease_ttl: null, max_lease_ttl: null, access: [expect.objectContaining({ lease: 'not_required' })] });
    await settle();
    expect(await send()).toEqual({ status: 200, error: '' });

    // Given a clock again, it starts afresh: the revoked lease of before does not come back.
    await ok('agents', 'set', 'bot', '--lease-ttl', '10m');
    expect((await agent('bot')).access[0]).toMatchObject({ lease: 'pending' });
    await settle();
    expect(await send()).toEqual({ status: 200, error: '' });
  });

  it('the admin API changes the same terms (PATCH lease_ttl, max_lease_ttl; null: none), audited', async () => {
    const patched = await admin.call('PATCH', '/api/agents/bot', { lease_ttl: '20m', max_lease_ttl: '1h' });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ agent: { id: 'bot', lease_ttl: '20m', max_lease_ttl: '1h' } });
    const cleared = await admin.call('PATCH', '/api/agents/bot', { lease_ttl: null, max_lease_ttl: null });
    expect(cleared.status).toBe(200);
    expect(cleared.body).toMatchObject({ agent: { lease_ttl: null, max_lease_ttl: null } });
    const bad = await admin.call('PATCH', '/api/agents/bot', { lease_ttl: 'soon' });
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('lease_ttl: expected a duration');
    // The router writes a write's line after its answer: waited for.
    await expect
      .poll(() =>
        adminLines('agents.update')
          .filter((l) => l['client'] !== 'cli')
          .map((l) => l['status']),
      )
      .toEqual([200, 200, 400]);
    expect(await send()).toEqual({ status: 200, error: '' });
  });

  it('refuses what it cannot set, with a one-line reason, and changes nothing', async () => {
    const before = await agent('bot');
    const cases: Array<[string[], RegExp]> = [
      [['agents', 'set', 'cfg', '--lease-ttl', '1h'], /agent "cfg" is defined in the config; set agents\.cfg\.lease_ttl there/],
      [['agents', 'set', 'nobody', '--lease-ttl', '1h'], /no agent "nobody"/],
      [['agents', 'set', 'bot'], /agents set: give --lease-ttl or --max-lease-ttl/],
      [['agents', 'set', 'bot', '--lease-ttl', 'soon'], /--lease-ttl: expected a duration such as 15m, 1h or 7d, or none/],
      [['agents', 'set', 'bot', '--lease-ttl', '0s'], /--lease-ttl: expected a duration/],
      [['agents', 'set', 'bot', '--lease-ttl', '3h', '--max-lease-ttl', '1h'], /--lease-ttl 3h is longer than --max-lease-ttl 1h/],
      [['agents', 'set', 'bot', '--max-lease-ttl', '1h'], /--max-lease-ttl needs a lease clock: give --lease-ttl too/],
    ];
    for (const [args, message] of cases) {
      const r = await cli(...args);
      expect(r.code, args.join(' ')).not.toBe(0);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(r.stderr, args.join(' ')).toMatch(message);
    }
    expect(await agent('bot')).toEqual(before);
  });

  it('documents agents set in --help', async () => {
    const help = await ok('agents', '--help');
    expect(help).toContain('keyway agents set ID [--lease-ttl D|none] [--max-lease-ttl D|none] [--json]');
  });
});
