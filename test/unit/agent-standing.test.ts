// A connection's sign-in checked again against the tables and identities in force
// (src/proxy/agent-standing.ts): what revokes an open connection, and what carries over.
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import { type Agent, AgentTable, ANONYMOUS_AGENT, hashAgentKey } from '../../src/credentials/agents.ts';
import { IdentityVerifier } from '../../src/identity-tokens/verifier.ts';
import { signInOf, standingOf } from '../../src/proxy/agent-standing.ts';
import type { Dispatcher } from '../../src/net/undici.ts';

const ISSUER = 'https://token.actions.githubusercontent.com';
const agent = (id: string, key: string | undefined, grants?: string[]): Agent => ({
  id,
  source: 'store',
  grants: grants ? new Set(grants) : undefined,
  keySha256: key === undefined ? undefined : hashAgentKey(key),
});
const table = (...agents: Agent[]) => new AgentTable(new Map(agents.map((a) => [a.id, a])));
const verifier = (repository: string) => {
  const config = parseConfig(
    { agents: { ci: {} }, identities: [{ issuer: ISSUER, jwks: '/keys.json', audience: 'keyway', map: [{ claims: { repository }, agent: 'ci' }] }] },
    '/home/test',
  );
  // No key is fetched: mapAgain reads only the map rules.
  return new IdentityVerifier(config.identities, { home: '/home/test', dispatcher: {} as Dispatcher });
};

describe('a connection sign-in, checked again', () => {
  it('by key: kept with today’s grants; refused once the agent is removed or its key rotated', () => {
    const signedIn = agent('bot', 'key-1', ['github']);
    const signIn = signInOf(signedIn, false);
    expect(signIn.kind).toBe('key');
    const narrowed = agent('bot', 'key-1', ['other']);
    const kept = standingOf(signIn, signedIn, table(narrowed), undefined);
    expect('agent' in kept && kept.agent.grants).toEqual(new Set(['other']));
    expect(standingOf(signIn, signedIn, table(agent('someone', 'x')), undefined)).toEqual({ revoked: 'agent "bot" was removed' });
    expect(standingOf(signIn, signedIn, table(agent('bot', 'key-2')), undefined)).toEqual({ revoked: 'agent "bot" has a new key' });
    // A key removed altogether (an agent only a token reaches) is a new key too.
    expect(standingOf(signIn, signedIn, table(agent('bot', undefined)), undefined)).toHaveProperty('revoked');
  });

  it('anonymous: only while no agent is configured', () => {
    const signIn = signInOf(ANONYMOUS_AGENT, false);
    expect(standingOf(signIn, ANONYMOUS_AGENT, table(), undefined)).toEqual({ agent: ANONYMOUS_AGENT });
    expect(standingOf(signIn, ANONYMOUS_AGENT, table(agent('bot', 'k')), undefined)).toHaveProperty('revoked');
  });

  it('a redirected connection (no key presented): kept while its agent exists, whatever its key', () => {
    const signedIn = agent('boxed', 'k1');
    const signIn = signInOf(signedIn, true);
    expect(signIn.kind).toBe('named');
    expect(standingOf(signIn, signedIn, table(agent('boxed', 'k2')), undefined)).toHaveProperty('agent');
    expect(standingOf(signIn, signedIn, table(), undefined)).toHaveProperty('revoked');
  });

  it('by identity token: kept while its claims still map to the agent; refused once the mapping or issuer is gone', () => {
    const claims = { iss: ISSUER, sub: 'repo:acme/api:ref:refs/heads/main', repository: 'acme/api' };
    const signedIn: Agent = { ...agent('ci', undefined), identity: { iss: ISSUER, sub: claims.sub }, identityExpiresAt: 1, identityClaims: claims };
    const signIn = signInOf(signedIn, false);
    expect(signIn.kind).toBe('identity');
    const kept = standingOf(signIn, signedIn, table(agent('ci', undefined)), verifier('acme/*'));
    expect('agent' in kept && kept.agent.identity).toEqual({ iss: ISSUER, sub: claims.sub });
    expect(standingOf(signIn, signedIn, table(agent('ci', undefined)), verifier('other/*'))).toHaveProperty('revoked');
    expect(standingOf(signIn, signedIn, table(agent('ci', undefined)), undefined)).toHaveProperty('revoked');
    expect(standingOf(signIn, signedIn, table(), verifier('acme/*'))).toHaveProperty('revoked');
  });
});
