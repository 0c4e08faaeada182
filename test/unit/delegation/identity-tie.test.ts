import { describe, expect, it } from 'vitest';
import type { Config } from '../../../src/config/index.ts';
import { identityTie } from '../../../src/delegation/identity-tie.ts';

type Identities = Config['identities'];

const entry = (claims: Record<string, string>, agent = 'pod', audience = ['keyway']) =>
  ({ issuer: 'https://k8s.example', audience, clock_skew: 60_000, max_token_lifetime: 86_400_000, map: [{ claims, agent }] }) as unknown as Identities[number];

describe('identityTie: what ties a keyless parent to its children', () => {
  const base = identityTie([entry({ ns: 'agents', sub: 'sa:*' })], 'pod')!;

  it('is the same for the same mapping written in another order, and for changes to other agents', () => {
    expect(identityTie([entry({ sub: 'sa:*', ns: 'agents' })], 'pod')).toEqual(base);
    const withOther = [entry({ ns: 'agents', sub: 'sa:*' }), { ...entry({ team: 'x' }, 'other'), issuer: 'https://other.example' } as Identities[number]];
    expect(identityTie(withOther, 'pod')).toEqual(base);
    expect(identityTie([entry({ ns: 'agents', sub: 'sa:*' }, 'pod', ['keyway'])], 'pod')).toEqual(base);
  });

  it('changes when who may sign in as the agent changes: a claim, an audience, the issuer or its keys', () => {
    expect(identityTie([entry({ ns: 'other', sub: 'sa:*' })], 'pod')).not.toEqual(base);
    expect(identityTie([entry({ ns: 'agents', sub: 'sa:*' }, 'pod', ['keyway', 'more'])], 'pod')).not.toEqual(base);
    expect(identityTie([{ ...entry({ ns: 'agents', sub: 'sa:*' }), issuer: 'https://k8s2.example' } as Identities[number]], 'pod')).not.toEqual(base);
    expect(identityTie([{ ...entry({ ns: 'agents', sub: 'sa:*' }), jwks: '/other/jwks.json' } as Identities[number]], 'pod')).not.toEqual(base);
  });

  it('is undefined for an agent no identity reaches', () => {
    expect(identityTie([entry({ ns: 'agents' })], 'nobody')).toBeUndefined();
    expect(identityTie([], 'pod')).toBeUndefined();
  });
});
