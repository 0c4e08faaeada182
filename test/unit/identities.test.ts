// identities: the config's checks, and how claims map to an agent (src/identity-tokens/claims.ts).
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import { claimAt, claimGlob, compileClaimRules, mapClaims } from '../../src/identity-tokens/claims.ts';
import { signingKeys } from '../../src/identity-tokens/issuer-keys.ts';
import { thrownMessage } from '../helpers/thrown.ts';

const ISSUER = 'https://token.actions.githubusercontent.com';
const load = (identities: unknown, agents: Record<string, unknown> = { ci: {} }) => parseConfig({ agents, identities }, '/home/test');
const identity = (extra: Record<string, unknown> = {}) => ({
  issuer: ISSUER,
  audience: 'https://github.com/acme',
  map: [{ claims: { repository: 'acme/*' }, agent: 'ci' }],
  ...extra,
});

describe('identities in the config', () => {
  it('reads an issuer with defaults: one audience as a list, 60 s of clock skew; a mapped agent needs no key', () => {
    const config = load([identity()]);
    expect(config.identities[0]).toMatchObject({ issuer: ISSUER, audience: ['https://github.com/acme'], clock_skew: 60_000, max_token_lifetime: 86_400_000 });
    expect(load([identity({ max_token_lifetime: '1h' })]).identities[0]?.max_token_lifetime).toBe(3_600_000);
    expect(config.agents['ci']!.key).toBeUndefined();
  });

  it('refuses a rule with no claim (an issuer signs for everyone on its platform), an issuer twice, plain http off loopback, HMAC or none', () => {
    expect(thrownMessage(() => load([identity({ map: [{ claims: {}, agent: 'ci' }] })]))).toMatch(/identities\.0\.map\.0\.claims.*at least one claim/);
    expect(thrownMessage(() => load([identity(), identity()]))).toMatch(/listed twice/);
    expect(thrownMessage(() => load([identity({ issuer: 'http://issuer.example.com' })]))).toMatch(/identities\.0\.issuer.*https/);
    expect(thrownMessage(() => load([identity({ jwks: 'ftp://keys.example.com/jwks' })]))).toMatch(/identities\.0\.jwks/);
    for (const alg of ['HS256', 'none']) expect(thrownMessage(() => load([identity({ algorithms: [alg] })]))).toMatch(/identities\.0\.algorithms/);
    expect(thrownMessage(() => load([identity({ clock_skew: '10m' })]))).toMatch(/clock_skew/);
    expect(thrownMessage(() => load([identity({ max_token_lifetime: '400d' })]))).toMatch(/max_token_lifetime/);
    expect(thrownMessage(() => load([identity({ map: [] })]))).toMatch(/at least one rule/);
  });

  it('an agent without a key that no identity maps to is refused (nobody could be it)', () => {
    expect(thrownMessage(() => load([identity()], { ci: {}, lonely: {} }))).toMatch(/agents\.lonely\.key: expected a key/);
    expect(thrownMessage(() => load([], { lonely: {} }))).toMatch(/agents\.lonely\.key/);
    // The proxy user that carries a token cannot also be an agent's id.
    expect(thrownMessage(() => load([identity()], { ci: {}, jwt: { key: 'env:K' } }))).toMatch(/agents\.jwt: the agent id jwt is the proxy user/);
  });
});

describe('claims to an agent', () => {
  it('globs: * is any run of characters (/ and : too), the rest literal, whole and case-sensitive', () => {
    expect(claimGlob('repo:acme/*').test('repo:acme/api:ref:refs/heads/main')).toBe(true);
    expect(claimGlob('repo:acme/*').test('repo:acme-evil/api')).toBe(false);
    expect(claimGlob('acme/api').test('acme/api2')).toBe(false);
    expect(claimGlob('acme/api').test('ACME/api')).toBe(false);
    expect(claimGlob('a.b').test('axb')).toBe(false);
    expect(claimGlob('(x)+').test('(x)+')).toBe(true);
  });

  it('nested claims by dotted path, a dotted key found whole first', () => {
    const claims = { 'kubernetes.io': { namespace: 'agents', serviceaccount: { name: 'bot' } }, a: { b: 1 }, 'a.b': 2 };
    expect(claimAt(claims, 'kubernetes.io.namespace')).toBe('agents');
    expect(claimAt(claims, 'kubernetes.io.serviceaccount.name')).toBe('bot');
    expect(claimAt(claims, 'a.b')).toBe(2);
    expect(claimAt(claims, 'kubernetes.io.missing')).toBeUndefined();
    // Only own keys: nothing from the prototype.
    expect(claimAt(claims, 'constructor')).toBeUndefined();
    expect(claimAt(claims, 'toString')).toBeUndefined();
  });

  it('the first rule whose every claim matches; lists match by any element; objects never', () => {
    const rules = compileClaimRules([
      { claims: { repository: 'acme/api', ref: 'refs/heads/main' }, agent: 'deployer' },
      { claims: { repository: 'acme/*' }, agent: 'reader' },
      { claims: { groups: 'admins' }, agent: 'admin' },
      { claims: { 'kubernetes.io': '*' }, agent: 'never' },
      { claims: { run_attempt: '1', private: 'true' }, agent: 'first-try' },
    ]);
    expect(mapClaims(rules, { repository: 'acme/api', ref: 'refs/heads/main' })).toBe('deployer');
    expect(mapClaims(rules, { repository: 'acme/api', ref: 'refs/heads/dev' })).toBe('reader');
    expect(mapClaims(rules, { repository: 'other/api' })).toBeUndefined();
    expect(mapClaims(rules, { groups: ['users', 'admins'] })).toBe('admin');
    expect(mapClaims(rules, { 'kubernetes.io': { namespace: 'x' } })).toBeUndefined();
    expect(mapClaims(rules, { run_attempt: 1, private: true })).toBe('first-try');
  });
});

describe('an issuer key set', () => {
  it('keeps public signing keys only: no shared secret (oct), no private key, no encryption key', () => {
    const rsa = { kty: 'RSA', n: 'x', e: 'AQAB', kid: 'a' };
    const set = signingKeys(
      { keys: [rsa, { kty: 'oct', k: 'c2VjcmV0', kid: 'h' }, { ...rsa, kid: 'p', d: 'private' }, { ...rsa, kid: 'e', use: 'enc' }] },
      'test',
    );
    expect(set.keys.map((k) => k.kid)).toEqual(['a']);
    expect(() => signingKeys({ keys: [{ kty: 'oct', k: 'c2VjcmV0' }] }, 'test')).toThrow(/no public signing key/);
    expect(() => signingKeys({ nope: [] }, 'test')).toThrow(/not a JWK Set/);
  });
});

describe('an agent with no key', () => {
  it('never authenticates by key, not even with the dummy value compared against for timing', async () => {
    const { AgentTable, hashAgentKey } = await import('../../src/credentials/agents.ts');
    const table = new AgentTable(
      new Map([
        ['ci', { id: 'ci', grants: undefined, source: 'config' as const, keySha256: undefined }],
        ['keyed', { id: 'keyed', grants: undefined, source: 'config' as const, keySha256: hashAgentKey('right') }],
      ]),
    );
    for (const key of ['', '\u0000no-such-agent', 'right']) expect(table.authenticate('ci', key)).toBeUndefined();
    expect(table.authenticate('keyed', 'right')?.id).toBe('keyed');
    expect(table.authenticate('keyed', '\u0000no-such-agent')).toBeUndefined();
  });
});
