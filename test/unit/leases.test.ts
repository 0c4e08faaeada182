import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import { buildAgents } from '../../src/credentials/agents.ts';
import type { RecordSource } from '../../src/credentials/store/credential-store.ts';
import { leaseRecordId, type LeaseRecord } from '../../src/credentials/lease-record.ts';
import { KeywayError, ProxyError } from '../../src/errors/index.ts';
import { checkLease, isLive, leaseStatus, renewLease, revokeLease, startLease, type LeaseTerms } from '../../src/policy/leases.ts';
import { evaluate } from '../../src/policy/rules.ts';

const MIN = 60_000;
const HOUR = 60 * MIN;
const T0 = new Date('2025-07-07T10:00:00.000Z');
const at = (ms: number) => new Date(T0.getTime() + ms);

const claude: LeaseTerms = { id: 'claude', leaseTtlMs: HOUR, maxLeaseTtlMs: 8 * HOUR };
const unleased: LeaseTerms = { id: 'script' };

describe('the lease clock', () => {
  it('does not apply to an agent without lease_ttl', () => {
    expect(checkLease(unleased, 'github', undefined, T0)).toEqual({ ok: true });
    expect(leaseStatus(unleased, 'github', undefined, T0).state).toBe('not_required');
  });

  it('starts a lease of lease_ttl on the first use of a grant', () => {
    const check = checkLease(claude, 'github', undefined, T0);
    expect(check).toEqual({
      ok: true,
      startNew: { agent: 'claude', grant: 'github', granted_at: T0.toISOString(), renewed_at: null, expires_at: at(HOUR).toISOString() },
    });
    expect(leaseStatus(claude, 'github', undefined, T0).state).toBe('pending');
  });

  it('never starts a lease longer than max_lease_ttl', () => {
    expect(startLease({ id: 'a', leaseTtlMs: 2 * HOUR, maxLeaseTtlMs: HOUR }, 'g', T0).expires_at).toBe(at(HOUR).toISOString());
  });

  it('refuses with 403 lease_expired once the lease runs out between two checks', () => {
    const record = startLease(claude, 'github', T0);
    const before = checkLease(claude, 'github', record, at(HOUR - 1));
    expect(before).toEqual({ ok: true });
    expect(leaseStatus(claude, 'github', record, at(HOUR - 1))).toEqual({ state: 'active', expires_at: record.expires_at, remaining_ms: 1 });

    const after = checkLease(claude, 'github', record, at(HOUR));
    expect(after.ok).toBe(false);
    if (after.ok) return;
    expect(after.error).toBeInstanceOf(ProxyError);
    expect(after.error.code).toBe('lease_expired');
    expect(after.error.status).toBe(403);
    expect(after.error.grant).toBe('github');
    expect(after.error.message).toBe(`agent "claude"'s lease on grant "github" expired at ${at(HOUR).toISOString()}`);
    expect(after.error.hint).toBe('keyway agents lease claude github --ttl 1h');
    // An expired lease does not restart by itself.
    expect(checkLease(claude, 'github', record, at(2 * HOUR)).ok).toBe(false);
    expect(leaseStatus(claude, 'github', record, at(HOUR)).state).toBe('expired');
  });

  it('is per grant: one grant expiring leaves another lease alone', () => {
    const github = startLease(claude, 'github', T0);
    const openai = startLease(claude, 'openai', at(30 * MIN));
    expect(checkLease(claude, 'github', github, at(HOUR + MIN)).ok).toBe(false);
    expect(checkLease(claude, 'openai', openai, at(HOUR + MIN)).ok).toBe(true);
  });

  it('treats a damaged expiry as expired', () => {
    const record: LeaseRecord = { agent: 'claude', grant: 'github', granted_at: T0.toISOString(), renewed_at: null, expires_at: 'soon' };
    expect(isLive(record, T0)).toBe(false);
    const check = checkLease(claude, 'github', record, T0);
    expect(check.ok === false && check.error.message).toContain('expired at an unreadable time');
  });
});

describe('renewal', () => {
  it('grants ttl from now, capped by max_lease_ttl', () => {
    const r = renewLease(claude, 'github', undefined, 24 * HOUR, T0);
    expect(r.capped).toBe(true);
    expect(r.grantedMs).toBe(8 * HOUR);
    expect(r.record.expires_at).toBe(at(8 * HOUR).toISOString());
    const small = renewLease(claude, 'github', undefined, 15 * MIN, T0);
    expect(small).toMatchObject({ capped: false, grantedMs: 15 * MIN, renewed: false });
    expect(small.record.expires_at).toBe(at(15 * MIN).toISOString());
  });

  it('renewing repeatedly never puts the expiry more than max_lease_ttl ahead of now', () => {
    let record = startLease(claude, 'github', T0);
    for (let i = 1; i <= 5; i++) {
      const now = at(i * HOUR - 1);
      record = renewLease(claude, 'github', record, 100 * HOUR, now).record;
      expect(Date.parse(record.expires_at) - now.getTime()).toBe(8 * HOUR);
    }
  });

  it('extends a live lease, keeping granted_at; a lapsed lease starts afresh', () => {
    const first = startLease(claude, 'github', T0);
    const renewed = renewLease(claude, 'github', first, 2 * HOUR, at(30 * MIN));
    expect(renewed.renewed).toBe(true);
    expect(renewed.record).toEqual({
      agent: 'claude',
      grant: 'github',
      granted_at: T0.toISOString(),
      renewed_at: at(30 * MIN).toISOString(),
      expires_at: at(150 * MIN).toISOString(),
    });
    const lapsedAt = at(3 * HOUR);
    const fresh = renewLease(claude, 'github', renewed.record, HOUR, lapsedAt);
    expect(fresh.renewed).toBe(false);
    expect(fresh.record).toMatchObject({ granted_at: lapsedAt.toISOString(), renewed_at: null });
    expect(checkLease(claude, 'github', fresh.record, at(3 * HOUR + 1)).ok).toBe(true);
  });

  it('may shorten a lease when asked for less', () => {
    const long = renewLease(claude, 'github', undefined, 8 * HOUR, T0).record;
    const short = renewLease(claude, 'github', long, MIN, at(MIN)).record;
    expect(short.expires_at).toBe(at(2 * MIN).toISOString());
  });

  it('has no cap without max_lease_ttl, and refuses a ttl that is not positive', () => {
    const r = renewLease({ id: 'a', leaseTtlMs: HOUR }, 'g', undefined, 30 * 24 * HOUR, T0);
    expect(r.capped).toBe(false);
    expect(() => renewLease(claude, 'g', undefined, 0, T0)).toThrow(RangeError);
  });
});

describe('revocation', () => {
  it('ends a live lease at once and keeps it from restarting automatically', () => {
    const lease = startLease(claude, 'github', T0);
    const revoked = revokeLease(claude, 'github', lease, at(MIN));
    expect(revoked).toMatchObject({ expires_at: at(MIN).toISOString(), revoked_at: at(MIN).toISOString(), granted_at: T0.toISOString() });
    const check = checkLease(claude, 'github', revoked, at(MIN));
    expect(check.ok).toBe(false);
    expect(check.ok === false && check.error.message).toBe(`agent "claude"'s lease on grant "github" was revoked at ${at(MIN).toISOString()}`);
    expect(leaseStatus(claude, 'github', revoked, at(MIN)).state).toBe('revoked');
    // Revoking again changes nothing; a new lease from the CLI works again.
    expect(revokeLease(claude, 'github', revoked, at(2 * MIN))).toBe(revoked);
    const again = renewLease(claude, 'github', revoked, HOUR, at(2 * MIN));
    expect(again.renewed).toBe(false);
    expect(again.record.revoked_at).toBeUndefined();
    expect(checkLease(claude, 'github', again.record, at(3 * MIN)).ok).toBe(true);
  });

  it('on a grant never used, blocks the automatic first lease', () => {
    const revoked = revokeLease(claude, 'github', undefined, T0);
    expect(checkLease(claude, 'github', revoked, at(1)).ok).toBe(false);
  });

  it('keeps the earlier end of a lease that had already expired', () => {
    const lease = startLease(claude, 'github', T0);
    expect(revokeLease(claude, 'github', lease, at(2 * HOUR)).expires_at).toBe(at(HOUR).toISOString());
  });
});

describe('agents built from config and store', () => {
  const emptyStore = (records: Record<string, unknown> = {}): RecordSource => ({
    get: <T>(id: string) => records[id] as T | undefined,
    entries: <T>(prefix: string) => Object.entries(records).filter(([id]) => id.startsWith(prefix)) as Array<[string, T]>,
  });
  const env = { CLAUDE_KEY: 'k1' };
  const build = (agents: Record<string, unknown>, records?: Record<string, unknown>) =>
    buildAgents(parseConfig({ agents }, '/home/test'), emptyStore(records), env);

  it('carries the lease terms, mode and compiled rules', () => {
    const table = build(
      {
        claude: {
          key: 'env:CLAUDE_KEY',
          grants: ['github'],
          lease_ttl: '1h',
          max_lease_ttl: '8h',
          mode: 'warn',
          rules: [{ grant: 'github', methods: ['GET'] }],
        },
      },
      { 'agent:bot': { id: 'bot', key_sha256: '00'.repeat(32), lease_ttl_ms: 15 * MIN, max_lease_ttl_ms: HOUR, created_at: T0.toISOString() } },
    );
    const agent = table.get('claude')!;
    expect(agent).toMatchObject({ leaseTtlMs: HOUR, maxLeaseTtlMs: 8 * HOUR, mode: 'warn' });
    expect(evaluate(agent.policy!, { grant: 'github', method: 'POST', path: '/', source: '127.0.0.1', bodyBytes: 0, now: T0 })).toMatchObject({
      allowed: true,
      enforced: false,
    });
    const bot = table.get('bot')!;
    expect(bot).toMatchObject({ leaseTtlMs: 15 * MIN, maxLeaseTtlMs: HOUR, source: 'store' });
    expect(checkLease(bot, 'github', undefined, T0)).toMatchObject({ ok: true, startNew: { expires_at: at(15 * MIN).toISOString() } });
    expect(leaseRecordId('bot', 'github')).toBe('lease:bot:github');
  });

  it('refuses a bad rule, or a rule on a grant the agent may not use, naming the key', () => {
    const fail = (agents: Record<string, unknown>) => {
      try {
        build(agents);
      } catch (err) {
        expect(err).toBeInstanceOf(KeywayError);
        return (err as Error).message;
      }
      throw new Error('expected a config error');
    };
    expect(fail({ claude: { key: 'env:CLAUDE_KEY', rules: [{ grant: 'github', sources: ['300.1.1.1/8'] }] } })).toMatch(
      /^config: agents\.claude\.rules\.0\.sources\.0: /,
    );
    expect(fail({ claude: { key: 'env:CLAUDE_KEY', grants: ['github'], rules: [{ grant: 'githb', methods: ['GET'] }] } })).toBe(
      'config: agents.claude.rules.0.grant: "githb" is not one of this agent\'s grants (github)',
    );
  });
});
