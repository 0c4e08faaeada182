import { describe, expect, it } from 'vitest';
import { parseDomainPattern, type DomainPattern } from '../../src/config/index.ts';
import { ANONYMOUS_AGENT, type Agent } from '../../src/credentials/agents.ts';
import type { Grant } from '../../src/credentials/grant.ts';
import { injectorFor } from '../../src/credentials/types/index.ts';
import { ProxyError } from '../../src/errors/index.ts';
import { chooseGrant, GrantRouter } from '../../src/policy/access.ts';
import { patternMatches } from '../../src/policy/domains.ts';
import { parseAuthority } from '../../src/proxy/target.ts';

const pattern = (text: string) => parseDomainPattern(text) as DomainPattern;
const grant = (id: string, domains: string[]): Grant => ({
  id,
  type: 'bearer',
  domains: domains.map(pattern),
  injector: injectorFor('bearer', undefined),
  allowHttp: false,
  allowRange: false,
  requirePurpose: false,
  settings: undefined,
  guard: undefined,
  retry: undefined,
  signer: undefined,
  clientCertificate: undefined,
  secretExpiresAt: undefined,
  status: 'active',
  source: 'store',
  provider: undefined,
  material: 'x',
});

describe('domain patterns', () => {
  it('matches exact hosts, subdomains of wildcards (never the apex), and ports', () => {
    expect(patternMatches(pattern('api.github.com'), 'api.github.com', 443)).toBe(true);
    expect(patternMatches(pattern('api.github.com'), 'evil-api.github.com', 443)).toBe(false);
    expect(patternMatches(pattern('*.githubusercontent.com'), 'raw.githubusercontent.com', 443)).toBe(true);
    expect(patternMatches(pattern('*.githubusercontent.com'), 'a.b.githubusercontent.com', 443)).toBe(true);
    expect(patternMatches(pattern('*.githubusercontent.com'), 'githubusercontent.com', 443)).toBe(false);
    expect(patternMatches(pattern('*.githubusercontent.com'), 'xgithubusercontent.com', 443)).toBe(false);
    expect(patternMatches(pattern('api.example.test:8443'), 'api.example.test', 8443)).toBe(true);
    expect(patternMatches(pattern('api.example.test:8443'), 'api.example.test', 443)).toBe(false);
    expect(patternMatches(pattern('[::1]:443'), '::1', 443)).toBe(true);
    // Any spelling of an IPv6 pattern matches the one spelling targets are normalised to.
    expect(patternMatches(pattern('[FD00:0:0::0:1]'), parseAuthority('[fd00::1]:443').host, 443)).toBe(true);
    expect(patternMatches(pattern('[0:0:0:0:0:ffff:7f00:0001]'), parseAuthority('[::ffff:127.0.0.1]:443').host, 443)).toBe(true);
  });

  it('normalises case and the trailing dot', () => {
    expect(pattern('API.Example.Test.').host).toBe('api.example.test');
  });
});

describe('routing and grant choice', () => {
  const personal = grant('gmail-personal', ['gmail.example.test']);
  const work = grant('gmail-work', ['gmail.example.test']);
  const github = grant('github', ['api.github.com', '*.githubusercontent.com']);
  const router = new GrantRouter([personal, work, github]);
  const limited: Agent = { id: 'bot', grants: new Set(['github']), source: 'store', keySha256: undefined };

  it('intercepts covered hosts, leaves others unmatched', () => {
    expect(router.decide(ANONYMOUS_AGENT, 'api.github.com', 443)).toMatchObject({ kind: 'intercept', candidates: [github] });
    expect(router.decide(ANONYMOUS_AGENT, 'raw.githubusercontent.com', 443)).toMatchObject({ kind: 'intercept' });
    expect(router.decide(ANONYMOUS_AGENT, 'example.org', 443)).toEqual({ kind: 'unmatched' });
  });

  it('refuses a host covered only by grants the agent may not use', () => {
    const decision = router.decide(limited, 'gmail.example.test', 443);
    expect(decision.kind).toBe('refuse');
    expect(decision.kind === 'refuse' && decision.error.code).toBe('host_not_allowed');
  });

  it('chooses the only candidate, the requested one, or reports ambiguity with the choices', () => {
    expect(chooseGrant([github], undefined)).toBe(github);
    expect(chooseGrant([personal, work], 'gmail-work')).toBe(work);
    try {
      chooseGrant([personal, work], undefined);
      throw new Error('expected grant_ambiguous');
    } catch (err) {
      expect(err).toBeInstanceOf(ProxyError);
      expect((err as ProxyError).code).toBe('grant_ambiguous');
      expect((err as ProxyError).hint).toContain('gmail-personal, gmail-work');
    }
    expect(() => chooseGrant([personal], 'github')).toThrow(ProxyError);
  });
});
