// The wallet's "status at a glance" (credentials/grant-display.ts) as listings derive it from what
// the store holds: stored status, live token state, secret material and leases. Never a value.
import { describe, expect, it } from 'vitest';
import type { Config } from '../../src/config/index.ts';
import { grantRecordId, type StoredGrant } from '../../src/credentials/grant-record.ts';
import { listGrants } from '../../src/credentials/grant-listing.ts';
import { leaseRecordId, type LeaseRecord } from '../../src/credentials/lease-record.ts';
import { oauthStateId, type OAuthState } from '../../src/credentials/issuing/oauth-state.ts';
import { capturedRecordId } from '../../src/capture/core/placeholder.ts';
import type { CapturedToken } from '../../src/capture/core/captured.ts';

const HOUR = 3_600_000;
const SECRET = 'kw-canary-7f3a9c1e5b2d';

/** The store's reads over a plain map, as listGrants uses them. */
function storeOf(records: Record<string, unknown>) {
  const ids = Object.keys(records).sort();
  return {
    get: <T>(id: string) => records[id] as T | undefined,
    entries: <T>(prefix: string) => ids.filter((id) => id.startsWith(prefix)).map((id): [string, T] => [id, records[id] as T]),
  };
}

const config = { grants: {} } as unknown as Config;
const grant = (id: string, extra: Partial<StoredGrant>): [string, StoredGrant] => [
  grantRecordId(id),
  { id, type: 'bearer', domains: ['api.example.test'], status: 'active', created_at: '2026-01-01T00:00:00Z', updated_at: '2026-01-01T00:00:00Z', ...extra },
];

function statusOf(records: Array<[string, unknown]>, id: string) {
  const row = listGrants({ config, store: storeOf(Object.fromEntries(records)) }).find((g) => g.id === id);
  if (!row) throw new Error(`no ${id}`);
  expect(JSON.stringify(row)).not.toContain(SECRET);
  return [row.display_status, row.status_detail];
}

describe('grant status at a glance', () => {
  it('active with a usable secret; "no secret" without one, or with blank material', () => {
    expect(statusOf([grant('a', { secret: SECRET })], 'a')[0]).toBe('active');
    expect(statusOf([grant('a', {})], 'a')[0]).toBe('no secret');
    expect(statusOf([grant('a', { secret: '   ' })], 'a')[0]).toBe('no secret');
  });

  it('revoked and needs_reconnect win over everything, from the record or the live token state', () => {
    expect(statusOf([grant('a', { secret: SECRET, status: 'revoked' })], 'a')[0]).toBe('revoked');
    const oauth = grant('o', { type: 'oauth2', secret: { refreshToken: SECRET } });
    expect(statusOf([oauth, [oauthStateId('o'), { status: 'needs_reconnect' } satisfies OAuthState]], 'o')[0]).toBe('needs_reconnect');
  });

  it('expiring: a token that cannot refresh itself ends within a day; needs_reconnect once it has ended', () => {
    const soon = Date.now() + 2 * HOUR;
    const accessOnly = grant('o', { type: 'oauth2', secret: { accessToken: SECRET, expiresAt: soon } });
    const [status, detail] = statusOf([accessOnly], 'o');
    expect(status).toBe('expiring');
    expect(detail).toContain(new Date(soon).toISOString());
    expect(statusOf([grant('o', { type: 'oauth2', secret: { accessToken: SECRET, expiresAt: Date.now() - 1000 } })], 'o')[0]).toBe('needs_reconnect');
    expect(statusOf([grant('o', { type: 'oauth2', secret: { accessToken: SECRET, expiresAt: Date.now() + 48 * HOUR } })], 'o')[0]).toBe('active');
    // A refresh token renews it: the access token's own expiry is no concern.
    expect(statusOf([grant('o', { type: 'oauth2', secret: { accessToken: SECRET, refreshToken: SECRET, expiresAt: soon } })], 'o')[0]).toBe('active');
  });

  it("an agent's lease ending within 15 minutes leaves the grant active and is named in the detail; a revoked lease is not", () => {
    const lease = (expiresInMs: number, revoked = false): [string, LeaseRecord] => [
      leaseRecordId('bot', 'a'),
      {
        agent: 'bot',
        grant: 'a',
        granted_at: new Date().toISOString(),
        renewed_at: null,
        expires_at: new Date(Date.now() + expiresInMs).toISOString(),
        ...(revoked ? { revoked_at: new Date().toISOString() } : {}),
      },
    ];
    // The lease is that agent's clock: the grant itself does not expire.
    const [status, detail] = statusOf([grant('a', { secret: SECRET }), lease(5 * 60_000)], 'a');
    expect(status).toBe('active');
    expect(detail).toMatch(/^agent bot's lease on it ends at \d{4}-/);
    expect(statusOf([grant('a', { secret: SECRET }), lease(HOUR)], 'a')).toEqual(['active', 'active']);
    expect(statusOf([grant('a', { secret: SECRET }), lease(5 * 60_000, true)], 'a')).toEqual(['active', 'active']);
  });

  it('labels and account are shown as stored; a grant without them has {} and null', () => {
    const rows = listGrants({
      config,
      store: storeOf(Object.fromEntries([grant('a', { labels: { team: 'pay' }, account: 'ada@example.test' }), grant('b', {})])),
    });
    expect(rows.map((r) => [r.id, r.labels, r.account])).toEqual([
      ['a', { team: 'pay' }, 'ada@example.test'],
      ['b', {}, null],
    ]);
  });

  it('a login grant: waiting for its login until one is captured, with what fills it (issue 86), then active', () => {
    const login = (id: string, extra: Partial<StoredGrant> = {}) =>
      grant(id, { type: 'login_capture', domains: ['api.anthropic.com'], labels: { 'coding-agent': 'claude-code' }, ...extra });
    expect(statusOf([login('claude-code')], 'claude-code')).toEqual(['waiting_for_login', 'waiting for login: run keyway connect claude-code --login']);
    // Another grant id and a named agent go on the command; a label that is no plain word does not.
    expect(statusOf([login('mine', { agent: 'bot' } as Partial<StoredGrant>)], 'mine')[1]).toBe(
      'waiting for login: run keyway connect claude-code --grant mine --agent bot --login',
    );
    expect(statusOf([login('odd', { labels: { 'coding-agent': 'x; rm -rf ~' } })], 'odd')[1]).toBe(
      'waiting for login: log the agent in through keyway (its own login command under keyway run)',
    );
    const captured: [string, CapturedToken] = [
      capturedRecordId('k1'),
      {
        grant: 'claude-code',
        agent: 'local',
        field: 'access_token',
        value: SECRET,
        prefix: '',
        login: 'l1',
        endpoint: 'platform.claude.com/v1/oauth/token',
        captured_at: new Date().toISOString(),
      },
    ];
    expect(statusOf([login('claude-code'), captured], 'claude-code')).toEqual(['active', 'active']);
  });
});
