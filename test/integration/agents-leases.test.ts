import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { leaseRecordId, type LeaseRecord } from '../../src/credentials/lease-record.ts';
import { loadMasterKey, Store } from '../../src/credentials/store/index.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';

// `keyway agents lease`, `revoke-lease` and `list` through the real CLI, against the home of a
// running proxy. The proxy's request path (403 lease_expired) is tested where it is wired.

const MIN = 60_000;
const HOUR = 60 * MIN;
const TOKEN_EXPIRES_AT = Date.parse('2030-01-01T00:00:00.000Z');

interface Access {
  grant: string;
  lease: string;
  lease_expires_at: string | null;
  lease_granted_at: string | null;
  lease_renewed_at: string | null;
  token_expires_at: string | null;
}
interface AgentRow {
  id: string;
  source: string;
  grants: string[];
  lease_ttl: string | null;
  max_lease_ttl: string | null;
  access: Access[];
}

describe('agents lease, revoke-lease and list', () => {
  let proxy: TestProxy;

  beforeAll(async () => {
    proxy = await startProxy({
      env: { CLAUDE_KEY: 'claude-key-0123456789', SCRIPT_KEY: 'script-key-0123456789' },
      config: {
        agents: {
          claude: { key: 'env:CLAUDE_KEY', grants: ['github', 'openai'], lease_ttl: '1h', max_lease_ttl: '8h' },
          script: { key: 'env:SCRIPT_KEY', grants: ['github'] },
        },
      },
      grants: [
        {
          id: 'github',
          type: 'oauth2',
          domains: ['api.example.test'],
          secret: { clientId: 'c', refreshToken: 'r', accessToken: 'a', expiresAt: TOKEN_EXPIRES_AT },
        },
        { id: 'openai', type: 'bearer', domains: ['other.example.test'], secret: 'sk-test' },
        { id: 'slack', type: 'bearer', domains: ['tunnel.example.test'], secret: 'xoxb-test' },
      ],
    });
  });
  afterAll(async () => {
    await proxy?.stop();
  });

  const cli = async (...args: string[]) => proxy.cli(args);
  const ok = async (...args: string[]) => {
    const result = await cli(...args);
    expect(result.stderr, args.join(' ')).toBe('');
    expect(result.code, args.join(' ')).toBe(0);
    return result.stdout;
  };
  const listed = async (): Promise<AgentRow[]> => JSON.parse(await ok('agents', 'list', '--json')) as AgentRow[];
  const access = async (agent: string, grant: string): Promise<Access> => {
    const row = (await listed()).find((a) => a.id === agent);
    const found = row?.access.find((g) => g.grant === grant);
    if (!found) throw new Error(`no ${agent}/${grant} in agents list`);
    return found;
  };
  const near = (iso: string | null, expected: number, slackMs = 20_000) => {
    expect(iso).not.toBeNull();
    expect(Math.abs(Date.parse(iso!) - expected)).toBeLessThan(slackMs);
  };

  it('lists each agent with its grants and both clocks before any lease', async () => {
    const rows = await listed();
    expect(rows.map((r) => r.id)).toEqual(['claude', 'script']);
    const claude = rows[0]!;
    expect(claude).toMatchObject({ source: 'config', grants: ['github', 'openai'], lease_ttl: '1h', max_lease_ttl: '8h' });
    expect(claude.access).toEqual([
      {
        grant: 'github',
        lease: 'pending',
        lease_expires_at: null,
        lease_granted_at: null,
        lease_renewed_at: null,
        token_expires_at: new Date(TOKEN_EXPIRES_AT).toISOString(),
      },
      { grant: 'openai', lease: 'pending', lease_expires_at: null, lease_granted_at: null, lease_renewed_at: null, token_expires_at: null },
    ]);
    expect(rows[1]!.access).toMatchObject([{ grant: 'github', lease: 'not_required' }]);
  });

  it('grants a lease for --ttl, then renews it capped by max_lease_ttl, keeping when it was first granted', async () => {
    const before = Date.now();
    const granted = JSON.parse(await ok('agents', 'lease', 'claude', 'github', '--ttl', '15m', '--json')) as LeaseRecord & {
      capped: boolean;
      ttl: string;
      renewed: boolean;
    };
    expect(granted).toMatchObject({ agent: 'claude', grant: 'github', capped: false, ttl: '15m', renewed: false, renewed_at: null });
    expect(Date.parse(granted.expires_at)).toBeGreaterThanOrEqual(before + 15 * MIN);
    expect(Date.parse(granted.expires_at)).toBeLessThanOrEqual(Date.now() + 15 * MIN);

    const shown = await access('claude', 'github');
    expect(shown).toMatchObject({ lease: 'active', lease_expires_at: granted.expires_at, token_expires_at: new Date(TOKEN_EXPIRES_AT).toISOString() });

    const text = await ok('agents', 'lease', 'claude', 'github', '--ttl', '24h');
    expect(text).toMatch(/^renewed lease for agent claude on grant github until \S+Z \(8h\)$/m);
    expect(text).toContain('capped at max_lease_ttl 8h: 24h was asked for');
    const renewed = await access('claude', 'github');
    near(renewed.lease_expires_at, Date.now() + 8 * HOUR);
    expect(renewed.lease_granted_at).toBe(granted.granted_at);
    expect(renewed.lease_renewed_at).not.toBeNull();
    // The other grant's clock is untouched.
    expect((await access('claude', 'openai')).lease).toBe('pending');
  });

  it('defaults --ttl to the agent lease_ttl', async () => {
    const granted = JSON.parse(await ok('agents', 'lease', 'claude', 'openai', '--json')) as LeaseRecord & { ttl: string };
    expect(granted.ttl).toBe('1h');
    near(granted.expires_at, Date.now() + HOUR);
  });

  it('revoke-lease ends a lease at once; lease starts a new one', async () => {
    const out = await ok('agents', 'revoke-lease', 'claude', 'openai');
    expect(out).toMatch(/^revoked the lease of agent claude on grant openai; it ended at /);
    const revoked = await access('claude', 'openai');
    expect(revoked.lease).toBe('revoked');
    expect(Date.parse(revoked.lease_expires_at!)).toBeLessThanOrEqual(Date.now());

    await ok('agents', 'lease', 'claude', 'openai', '--ttl', '5m');
    expect((await access('claude', 'openai')).lease).toBe('active');
  });

  it('shows a lease that ran out as expired', async () => {
    const { key } = await loadMasterKey({ dataDir: join(proxy.home, 'data'), env: { KEYWAY_MASTER_KEY: proxy.env['KEYWAY_MASTER_KEY']! } });
    const store = await Store.open(join(proxy.home, 'data', 'store.json'), key);
    const past: LeaseRecord = {
      agent: 'claude',
      grant: 'openai',
      granted_at: '2025-01-01T09:00:00.000Z',
      renewed_at: null,
      expires_at: '2025-01-01T10:00:00.000Z',
    };
    await store.update((draft) => draft.set(leaseRecordId('claude', 'openai'), past));
    store.close();
    expect(await access('claude', 'openai')).toMatchObject({ lease: 'expired', lease_expires_at: past.expires_at });

    const table = await ok('agents', 'list');
    const lines = table.trim().split('\n');
    expect(lines[0]).toMatch(/^ID\s+SOURCE\s+GRANT\s+LEASE_TTL\s+LEASE\s+LEASE_EXPIRES_AT\s+TOKEN_EXPIRES_AT$/);
    expect(lines).toContainEqual(expect.stringMatching(/^claude\s+config\s+openai\s+1h\s+expired\s+2025-01-01T10:00:00\.000Z\s+-$/));
    expect(lines).toContainEqual(expect.stringMatching(/^claude\s+config\s+github\s+1h\s+active\s+\S+Z\s+2030-01-01T00:00:00\.000Z$/));
    expect(lines).toContainEqual(expect.stringMatching(/^script\s+config\s+github\s+-\s+not_required\s+-\s+2030-01-01/));
  });

  it('refuses leases it cannot give, with a one-line reason', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['agents', 'lease', 'nobody', 'github', '--ttl', '1h'], /no agent "nobody"/],
      [['agents', 'lease', 'claude', 'nothing', '--ttl', '1h'], /no grant "nothing"/],
      [['agents', 'lease', 'claude', 'slack', '--ttl', '1h'], /agent "claude" may not use grant "slack" \(its grants: github, openai\)/],
      [['agents', 'lease', 'script', 'github', '--ttl', '1h'], /agent "script" has no lease_ttl.*agents\.script\.lease_ttl/],
      [['agents', 'revoke-lease', 'script', 'github'], /agent "script" has no lease_ttl/],
      [['agents', 'lease', 'claude', 'github', '--ttl', 'soon'], /--ttl: expected a duration/],
      [['agents', 'lease', 'claude'], /expected AGENT GRANT/],
    ];
    for (const [args, message] of cases) {
      const result = await cli(...args);
      expect(result.code, args.join(' ')).not.toBe(0);
      expect(result.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(result.stderr, args.join(' ')).toMatch(message);
    }
  });

  it('works for agents in the store, and removing an agent removes its leases', async () => {
    await ok('agents', 'add', 'bot', '--grants', 'github', '--lease-ttl', '10m', '--max-lease-ttl', '1h');
    const capped = JSON.parse(await ok('agents', 'lease', 'bot', 'github', '--ttl', '2h', '--json')) as LeaseRecord & {
      capped: boolean;
      ttl: string;
      max_lease_ttl: string;
    };
    expect(capped).toMatchObject({ capped: true, ttl: '1h', max_lease_ttl: '1h' });
    near(capped.expires_at, Date.now() + HOUR);
    expect(await access('bot', 'github')).toMatchObject({ lease: 'active', lease_expires_at: capped.expires_at });

    await ok('agents', 'rm', 'bot');
    await ok('agents', 'add', 'bot', '--grants', 'github', '--lease-ttl', '10m');
    expect(await access('bot', 'github')).toMatchObject({ lease: 'pending', lease_expires_at: null });

    const bad = await cli('agents', 'add', 'bot2', '--lease-ttl', '2h', '--max-lease-ttl', '1h');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/--lease-ttl 2h is longer than --max-lease-ttl 1h/);
  });

  it('documents the lease commands in --help', async () => {
    const help = await ok('agents', '--help');
    expect(help).toContain('keyway agents lease AGENT GRANT [--ttl D] [--json]');
    expect(help).toContain('keyway agents revoke-lease AGENT GRANT');
  });
});
