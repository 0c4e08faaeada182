import { describe, expect, it } from 'vitest';
import type { RuleConfig } from '../../src/config/index.ts';
import { parseConfig } from '../../src/config/load.ts';
import { KeywayError, ProxyError } from '../../src/errors/index.ts';
import { compileAddressSet } from '../../src/policy/cidr.ts';
import { compileGlob, looseForms, looseFormsInFull } from '../../src/policy/glob.ts';
import { parseByteSize } from '../../src/config/byte-size.ts';
import { compileRules, evaluate, policyDenied, type AgentPolicy, type PolicyRequest } from '../../src/policy/rules.ts';

// Rules exactly as the config loader hands them over (methods upper-cased, deny defaulted).
const rulesOf = (rules: unknown[], mode: 'enforce' | 'warn' = 'enforce'): AgentPolicy => {
  const config = parseConfig({ agents: { claude: { key: 'env:K', mode, rules } } }, '/home/test');
  const agent = config.agents['claude']!;
  return compileRules('claude', agent.rules, agent.mode);
};

// Monday 7 July 2025, 10:00 UTC (12:00 in Paris, summer time).
const MONDAY_NOON_PARIS = new Date('2025-07-07T10:00:00Z');

const req = (over: Partial<PolicyRequest> = {}): PolicyRequest => ({
  grant: 'github',
  method: 'GET',
  path: '/repos/acme/app',
  source: '10.1.2.3',
  bodyBytes: 0,
  now: MONDAY_NOON_PARIS,
  ...over,
});

function compileError(rule: Record<string, unknown>): string {
  try {
    rulesOf([{ grant: 'github' }, rule]);
  } catch (err) {
    expect(err).toBeInstanceOf(KeywayError);
    expect((err as KeywayError).code).toBe('config_invalid');
    return (err as Error).message;
  }
  throw new Error('expected the rule to be refused');
}

describe('path globs', () => {
  const glob = (p: string) => {
    const g = compileGlob(p);
    if (typeof g === 'string') throw new Error(g);
    return g;
  };

  it('* matches exactly one segment, ** any number including none', () => {
    expect(glob('/v1/chat/*').matches('/v1/chat/completions')).toBe(true);
    expect(glob('/v1/chat/*').matches('/v1/chat/completions/x')).toBe(false);
    expect(glob('/v1/chat/*').matches('/v1/chat')).toBe(false);
    expect(glob('/repos/*/issues').matches('/repos/acme/issues')).toBe(true);
    expect(glob('/repos/*/issues').matches('/repos/acme/app/issues')).toBe(false);
    expect(glob('/repos/**').matches('/repos/acme/app/pulls/1')).toBe(true);
    expect(glob('/repos/**').matches('/repos')).toBe(true);
    expect(glob('/repos/**').matches('/reposx/a')).toBe(false);
    expect(glob('/**/issues').matches('/repos/acme/issues')).toBe(true);
    expect(glob('/**/issues').matches('/repos/acme/pulls')).toBe(false);
    expect(glob('/a/**/b/**/c').matches('/a/x/b/y/z/c')).toBe(true);
    expect(glob('/a/**/b/**/c').matches('/a/x/y/c')).toBe(false);
  });

  it('* inside a segment stays within it; other characters are literal; slashes are not significant', () => {
    expect(glob('/v1/models/gpt-*').matches('/v1/models/gpt-4o')).toBe(true);
    expect(glob('/v1/models/gpt-*').matches('/v1/models/claude')).toBe(false);
    expect(glob('/v1/models/gpt-*').matches('/v1/models/gpt-4/x')).toBe(false);
    expect(glob('/a.b').matches('/aXb')).toBe(false);
    expect(glob('/users/@me/guilds').matches('/users/@me/guilds')).toBe(true);
    expect(glob('/a+(b)').matches('/a+(b)')).toBe(true);
    expect(glob('/a+(b)').matches('/ab')).toBe(false);
    expect(glob('/repos/').matches('//repos')).toBe(true);
    expect(glob('/').matches('/')).toBe(true);
    expect(glob('/').matches('/x')).toBe(false);
  });

  it('refuses syntax it does not support instead of taking it literally', () => {
    expect(compileGlob('repos/**')).toMatch(/starting with \//);
    expect(compileGlob('/repos/a**')).toMatch(/whole segment/);
    expect(compileGlob('/repos/?')).toMatch(/query/);
    expect(compileGlob('/repos/{a,b}')).toMatch(/only \*/);
    expect(compileGlob('/repos/[ab]')).toMatch(/only \*/);
    expect(compileGlob('/repos/../admin')).toMatch(/\.\. segments/);
  });

  it('an allow glob matches decoded segments exactly; a deny glob reads them loosely', () => {
    expect(glob('/admin/**').matchesParts(['admin', 'x'])).toBe(true);
    expect(glob('/admin/**').matchesParts(['Admin', 'x'])).toBe(false);
    expect(glob('/admin/**').matchesParts(['admin;x=1'])).toBe(false);
    for (const parts of [['ADMIN'], ['admin;x=1', 'y'], ['admin.json'], ['Admin.JSON;v=2'], ['admin '], ['admin.'], ['\uff41dmin']]) {
      expect(glob('/admin/**').matchesLoosely(parts), JSON.stringify(parts)).toBe(true);
    }
    // The .suffix is dropped on the last segment only: /v1.2/x is not /v1/x.
    expect(glob('/v1/**').matchesLoosely(['v1.2', 'x'])).toBe(false);
    expect(glob('/files/*.exe').matchesLoosely(['files', 'A.EXE'])).toBe(true);
    expect(glob('/files/*.exe').matchesLoosely(['files', 'a.txt'])).toBe(false);
  });
});

describe('path globs: a segment with one loose reading', () => {
  // looseForms answers most segments (ASCII, no ;, . or white space) with their lower case alone,
  // without the full reading. Random segments over an alphabet of what each reading takes off
  // (and of what NFKC or case folding changes) must read the same both ways, last or not.
  const alphabet = ['a', 'Z', '0', '-', '_', '%', '2F', ';', '.', ' ', '\t', '\v', '\u00a0', '\uff41', '\u0130', '\u00df', '\u212a', '~', 'json'];
  it('reads every segment as the full reading does', () => {
    let seed = 7;
    const next = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return seed;
    };
    for (let n = 0; n < 20_000; n++) {
      let part = '';
      for (let k = next() % 7; k > 0; k--) part += alphabet[next() % alphabet.length];
      const last = next() % 2 === 0;
      expect(looseForms(part, last), JSON.stringify([part, last])).toEqual(looseFormsInFull(part, last));
    }
  });
  it('tells the quick refusal the same way: a segment read loosely still matches', () => {
    const mcp = compileGlob('/mcp');
    if (typeof mcp === 'string') throw new Error(mcp);
    for (const part of ['MCP', 'mcp', 'Mcp;x=1', 'mcp.json', 'mcp ', '\uff4dcp']) expect(mcp.matchesLoosely([part]), part).toBe(true);
    for (const part of ['mcpx', 'small', 'mc', 'm%63p']) expect(mcp.matchesLoosely([part]), part).toBe(false);
  });
});

describe('path globs: the quick refusal', () => {
  // matchesParts refutes most paths before its full match (a first segment spelt out, or segment
  // counts without a globstar). A wrong refusal would let a request to an MCP endpoint pass as a
  // plain one: every pattern shape against every path shape must agree with a plain reading.
  const reference = (pattern: string, parts: readonly string[]): boolean => {
    const segments = pattern.split('/').filter((p) => p !== '');
    const source = segments
      .map((seg) =>
        seg === '**'
          ? '(?:/[^/]+)*'
          : `/${seg
              .split('*')
              .map((t) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
              .join('[^/]*')}`,
      )
      .join('');
    return new RegExp(`^${source}$`, 'u').test(parts.map((p) => `/${p}`).join(''));
  };
  const patterns = ['/', '/**', '/mcp', '/mcp/**', '/**/mcp', '/a/*/c', '/a*', '/*', '/*/mcp', '/a/**/c', '/mcp/*', '/**/**/x'];
  const paths = [
    [],
    ['mcp'],
    ['mcp', 'x'],
    ['x', 'mcp'],
    ['a'],
    ['ab'],
    ['a', 'b', 'c'],
    ['a', 'c'],
    ['a', 'b', 'b', 'c'],
    ['x', 'y', 'x'],
    ['MCP'],
    ['small'],
  ];
  it('agrees with a plain reading of the glob for every pattern and path shape', () => {
    for (const pattern of patterns)
      for (const parts of paths) {
        const compiled = compileGlob(pattern);
        if (typeof compiled === 'string') throw new Error(compiled);
        expect(compiled.matchesParts(parts), `${pattern} on /${parts.join('/')}`).toBe(reference(pattern, parts));
      }
  });
});

describe('address ranges', () => {
  it('matches IPv4, IPv6 and IPv4-mapped IPv6 clients', () => {
    const set = compileAddressSet(['10.1.0.0/16', '2001:db8::/32', '192.0.2.7']);
    if (typeof set === 'string') throw new Error(set);
    expect(set.has('10.1.2.3')).toBe(true);
    expect(set.has('::ffff:10.1.2.3')).toBe(true);
    expect(set.has('::ffff:a01:203')).toBe(true);
    expect(set.has('10.2.0.1')).toBe(false);
    expect(set.has('::ffff:10.2.0.1')).toBe(false);
    expect(set.has('2001:db8::1')).toBe(true);
    expect(set.has('2001:db9::1')).toBe(false);
    expect(set.has('192.0.2.7')).toBe(true);
    expect(set.has('192.0.2.8')).toBe(false);
    expect(set.has('')).toBe(false);
    expect(set.has('not-an-ip')).toBe(false);
  });

  it('refuses malformed ranges', () => {
    expect(compileAddressSet(['10.0.0.0/33'])).toMatch(/prefix length must be 0 to 32/);
    expect(compileAddressSet(['2001:db8::/129'])).toMatch(/0 to 128/);
    expect(compileAddressSet(['10.0.0/8'])).toMatch(/expected an IP address or CIDR/);
    expect(compileAddressSet(['10.0.0.0/x'])).toMatch(/prefix length/);
  });
});

describe('body sizes', () => {
  it('reads IEC, SI and plain byte counts', () => {
    expect(parseByteSize('1MiB')).toBe(1_048_576);
    expect(parseByteSize('512KiB')).toBe(524_288);
    expect(parseByteSize('100kB')).toBe(100_000);
    expect(parseByteSize('2MB')).toBe(2_000_000);
    expect(parseByteSize('1048576')).toBe(1_048_576);
    expect(parseByteSize('10B')).toBe(10);
    expect(parseByteSize('1.5KiB')).toBe(1536);
    expect(parseByteSize('lots')).toBeUndefined();
    expect(parseByteSize('1XB')).toBeUndefined();
    expect(parseByteSize('-1')).toBeUndefined();
  });
});

describe('rule compilation', () => {
  it('refuses every bad value when the config loads, naming agents.<id>.rules.<i>.<key>', () => {
    expect(compileError({ grant: 'github', sources: ['10.0.0.0/40'] })).toMatch(/^config: agents\.claude\.rules\.1\.sources\.0: .*0 to 32/);
    expect(compileError({ grant: 'github', sources: ['nope'] })).toMatch(/^config: agents\.claude\.rules\.1\.sources\.0: /);
    expect(compileError({ grant: 'github', hours: '09:00-18:00', tz: 'Mars/Olympus' })).toMatch(
      /^config: agents\.claude\.rules\.1\.tz: unknown time zone "Mars\/Olympus"/,
    );
    expect(compileError({ grant: 'github', paths: ['/repos/a**'] })).toMatch(/^config: agents\.claude\.rules\.1\.paths\.0: /);
    expect(compileError({ grant: 'github', paths: ['/x/{a,b}'] })).toMatch(/^config: agents\.claude\.rules\.1\.paths\.0: /);
    expect(compileError({ grant: 'github', hours: '25:00-26:00' })).toMatch(/^config: agents\.claude\.rules\.1\.hours: /);
    expect(compileError({ grant: 'github', hours: '09:00-09:00' })).toMatch(/^config: agents\.claude\.rules\.1\.hours: .*empty window/);
    expect(compileError({ grant: 'github', max_body: 'huge' })).toMatch(/^config: agents\.claude\.rules\.1\.max_body: /);
    expect(compileError({ grant: 'github', deny: true, max_body: '1MiB' })).toMatch(/^config: agents\.claude\.rules\.1\.max_body: .*allow rule/);
    expect(compileError({ grant: 'github', methods: [] })).toMatch(/^config: agents\.claude\.rules\.1\.methods: /);
    expect(compileError({ grant: 'github', methods: ['GET POST'] })).toMatch(/^config: agents\.claude\.rules\.1\.methods\.0: /);
    expect(compileError({ grant: 'github', days: [] })).toMatch(/^config: agents\.claude\.rules\.1\.days: /);
  });

  it('refuses a method outside the standard set, with did-you-mean, unless the rule says it means one of its own', () => {
    // A typo would otherwise refuse every GET in silence.
    expect(compileError({ grant: 'github', methods: ['GTE'] })).toMatch(
      /^config: agents\.claude\.rules\.1\.methods\.0: "GTE" is not a standard HTTP method; did you mean GET\? \(a method of your own: set custom_methods: true/,
    );
    expect(compileError({ grant: 'github', methods: ['get', 'PROPFIND'] })).toMatch(/methods\.1: "PROPFIND" is not a standard HTTP method \(/);
    expect(() => rulesOf([{ grant: 'github', methods: ['PROPFIND', 'get'], custom_methods: true }])).not.toThrow();
    expect(() => rulesOf([{ grant: 'github', methods: ['QUERY', 'patch'] }])).not.toThrow();
  });

  it('gives each rule a readable name', () => {
    const policy = rulesOf([
      { grant: 'github', methods: ['get'], paths: ['/repos/**'] },
      { grant: 'github', methods: ['POST'], paths: ['/repos/*/issues'], hours: '09:00-18:00', days: ['mon', 'tue', 'wed', 'thu', 'fri'], tz: 'Europe/Paris' },
      { grant: 'openai', sources: ['10.1.0.0/16'], max_body: '1MiB' },
      { grant: 'github', deny: true, paths: ['/admin/**'], mode: 'warn' },
      { grant: 'slack' },
    ]);
    expect(policy.rules.map((r) => r.name)).toEqual([
      'agents.claude.rules[0] (GET /repos/**)',
      'agents.claude.rules[1] (POST /repos/*/issues 09:00-18:00 mon-fri Europe/Paris)',
      'agents.claude.rules[2] (from 10.1.0.0/16 body<=1MiB)',
      'agents.claude.rules[3] (deny /admin/** warn)',
      'agents.claude.rules[4] (any request)',
    ]);
    expect([...policy.grants].sort()).toEqual(['github', 'openai', 'slack']);
  });
});

describe('evaluating rules', () => {
  it('leaves a grant without rules open, and one with only deny rules open to everything else', () => {
    const policy = rulesOf([{ grant: 'github', deny: true, paths: ['/admin/**'] }]);
    expect(evaluate(policy, req({ grant: 'openai', path: '/anything' }))).toMatchObject({ allowed: true, enforced: true, outcome: 'allow', rule: undefined });
    expect(evaluate(policy, req({ path: '/repos/x' }))).toMatchObject({ allowed: true, outcome: 'allow' });
    expect(evaluate(policy, req({ path: '/admin/users' }))).toMatchObject({ allowed: false, outcome: 'deny' });
  });

  it('methods: allows a listed method and refuses another, naming the rule', () => {
    const policy = rulesOf([{ grant: 'github', methods: ['GET', 'HEAD'] }]);
    expect(evaluate(policy, req({ method: 'get' }))).toMatchObject({ allowed: true, rule: 'agents.claude.rules[0] (GET,HEAD)' });
    const v = evaluate(policy, req({ method: 'DELETE' }));
    expect(v).toMatchObject({ allowed: false, enforced: true, outcome: 'deny', rule: 'agents.claude.rules[0] (GET,HEAD)' });
    expect(v.reason).toContain('method DELETE is not one of GET,HEAD');
  });

  it('paths: allows a matching glob and refuses others, including dot-segment escapes', () => {
    const policy = rulesOf([{ grant: 'github', paths: ['/repos/**'] }]);
    expect(evaluate(policy, req({ path: '/repos/acme/app/issues' })).allowed).toBe(true);
    const v = evaluate(policy, req({ path: '/user/emails' }));
    expect(v).toMatchObject({ allowed: false, rule: 'agents.claude.rules[0] (/repos/**)' });
    expect(v.reason).toContain('path /user/emails does not match /repos/**');
    expect(evaluate(policy, req({ path: '/repos/../user/emails' })).allowed).toBe(false);
    expect(evaluate(policy, req({ path: '/repos/x%2F..%2F..%2Fuser' })).allowed).toBe(false);
  });

  it('a deny rule wins over any allow rule, and cannot be sidestepped by encoding', () => {
    const policy = rulesOf([
      { grant: 'github', paths: ['/**'] },
      { grant: 'github', deny: true, methods: ['DELETE'] },
      { grant: 'github', deny: true, paths: ['/admin/**'] },
    ]);
    expect(evaluate(policy, req({ method: 'GET', path: '/repos/x' })).allowed).toBe(true);
    const del = evaluate(policy, req({ method: 'DELETE', path: '/repos/x' }));
    expect(del).toMatchObject({ allowed: false, rule: 'agents.claude.rules[1] (deny DELETE)' });
    expect(del.reason).toBe('deny rule matched: method DELETE');
    for (const path of ['/admin', '/admin/users', '//admin/users', '/repos/../admin/users', '/%61dmin/users', '/x/%2e%2e/admin', '/repos%2F..%2Fadmin']) {
      expect(evaluate(policy, req({ path })), path).toMatchObject({ allowed: false, rule: 'agents.claude.rules[2] (deny /admin/**)' });
    }
  });

  it('deny rules hold against case, ;parameters, suffixes, encodings and encoded slashes (issue 8)', () => {
    const policy = rulesOf([
      { grant: 'github', deny: true, paths: ['/secret/**'] },
      { grant: 'github', deny: true, paths: ['/admin/**'] },
    ]);
    const denied = [
      '/SECRET/x',
      '/Secret',
      '/admin;x=1',
      '/admin;x=1/users',
      '/admin.json',
      '/ADMIN.json',
      '/admin%20',
      '/admin.',
      '/%EF%BD%81dmin',
      '/admin%2Fusers',
      '/x/..;/admin',
      '/admin%252fx',
      '/admin%00',
      '/a\\..\\admin',
    ];
    for (const path of denied) expect(evaluate(policy, req({ path })).allowed, path).toBe(false);
    for (const path of ['/repos/x', '/administrator', '/secrets', '/v1/admin.json/x']) expect(evaluate(policy, req({ path })).allowed, path).toBe(true);
  });

  it('allow rules match exactly as sent, and both readings of an encoded slash', () => {
    const policy = rulesOf([
      { grant: 'github', paths: ['/repos/**'] },
      { grant: 'github', methods: ['POST'], paths: ['/projects/*/issues'] },
    ]);
    expect(evaluate(policy, req({ path: '/repos/a%2Fb' })).allowed).toBe(true);
    expect(evaluate(policy, req({ path: '/REPOS/x' })).allowed).toBe(false);
    expect(evaluate(policy, req({ path: '/repos;x=1/a' })).allowed).toBe(false);
    expect(evaluate(policy, req({ method: 'POST', path: '/projects/app/issues' })).allowed).toBe(true);
    expect(evaluate(policy, req({ method: 'POST', path: '/projects/group%2Fapp/issues' })).allowed).toBe(false);
  });

  it('with several allow rules, a request must match one, and the refusal explains each', () => {
    const policy = rulesOf([
      { grant: 'github', methods: ['GET'], paths: ['/repos/**'] },
      { grant: 'github', methods: ['POST'], paths: ['/repos/*/issues'] },
    ]);
    expect(evaluate(policy, req({ method: 'POST', path: '/repos/app/issues' }))).toMatchObject({
      allowed: true,
      rule: 'agents.claude.rules[1] (POST /repos/*/issues)',
    });
    const v = evaluate(policy, req({ method: 'POST', path: '/repos/app/pulls' }));
    expect(v).toMatchObject({ allowed: false, rule: 'agents.claude.rules[0,1]' });
    expect(v.reason).toContain('rules[0]: method POST is not GET');
    expect(v.reason).toContain('rules[1]: path /repos/app/pulls does not match /repos/*/issues');
  });

  it('sources: allows clients in range (IPv4-mapped IPv6 too) and refuses others', () => {
    const policy = rulesOf([{ grant: 'openai', sources: ['10.1.0.0/16', 'fd12::/16'] }]);
    const at = (source: string) => evaluate(policy, req({ grant: 'openai', source }));
    expect(at('10.1.200.9').allowed).toBe(true);
    expect(at('::ffff:10.1.2.3').allowed).toBe(true);
    expect(at('fd12:3456::1').allowed).toBe(true);
    const v = at('10.2.0.1');
    expect(v).toMatchObject({ allowed: false, rule: 'agents.claude.rules[0] (from 10.1.0.0/16,fd12::/16)' });
    expect(v.reason).toContain('source 10.2.0.1 is not in 10.1.0.0/16, fd12::/16');
    expect(at('::ffff:10.2.0.1').allowed).toBe(false);
    expect(at('').reason).toContain('source address is unknown');
  });

  it('max_body: refuses a declared size over the cap; an undeclared size starts, with the cap to enforce on the stream', () => {
    const policy = rulesOf([{ grant: 'openai', max_body: '1MiB' }]);
    const at = (bodyBytes: number | undefined) => evaluate(policy, req({ grant: 'openai', bodyBytes }));
    expect(at(1_048_576)).toMatchObject({ allowed: true, maxBodyBytes: undefined });
    const over = at(1_048_577);
    expect(over).toMatchObject({ allowed: false, rule: 'agents.claude.rules[0] (body<=1MiB)' });
    expect(over.reason).toContain('a body of 1048577 bytes exceeds max_body 1MiB (1048576 bytes)');
    expect(at(undefined)).toMatchObject({ allowed: true, maxBodyBytes: 1_048_576 });
    // Past the cap on the stream, evaluating again with the bytes seen gives the final verdict.
    expect(at(2_000_000).allowed).toBe(false);
  });

  it('max_body: the stream cap is the largest among matching rules, and none when one matching rule has no cap', () => {
    const capped = rulesOf([
      { grant: 'openai', max_body: '1MiB' },
      { grant: 'openai', paths: ['/v1/files'], max_body: '10MiB' },
    ]);
    expect(evaluate(capped, req({ grant: 'openai', path: '/v1/files', bodyBytes: undefined })).maxBodyBytes).toBe(10 * 1_048_576);
    expect(evaluate(capped, req({ grant: 'openai', path: '/v1/chat', bodyBytes: undefined })).maxBodyBytes).toBe(1_048_576);
    const open = rulesOf([
      { grant: 'openai', max_body: '1MiB' },
      { grant: 'openai', methods: ['GET'] },
    ]);
    expect(evaluate(open, req({ grant: 'openai', method: 'GET', bodyBytes: undefined })).maxBodyBytes).toBeUndefined();
  });

  it('turns a refusal into 403 policy_denied naming the rule', () => {
    const policy = rulesOf([{ grant: 'github', methods: ['GET'] }]);
    const request = req({ method: 'POST' });
    const err = policyDenied(evaluate(policy, request), request);
    expect(err).toBeInstanceOf(ProxyError);
    expect(err.code).toBe('policy_denied');
    expect(err.status).toBe(403);
    expect(err.grant).toBe('github');
    expect(err.message).toBe('agents.claude.rules[0] (GET) refuses POST /repos/acme/app: method POST is not GET');
  });
});

describe('time windows (injected clock)', () => {
  const office = { grant: 'github', hours: '09:00-18:00', days: ['mon', 'tue', 'wed', 'thu', 'fri'], tz: 'Europe/Paris' };
  const at = (policy: AgentPolicy, iso: string) => evaluate(policy, req({ now: new Date(iso) }));

  it('applies hours in the rule time zone, summer and winter, with the end excluded', () => {
    const policy = rulesOf([office]);
    expect(at(policy, '2025-07-07T06:59:00Z').allowed).toBe(false); // Mon 08:59 CEST
    expect(at(policy, '2025-07-07T07:00:00Z').allowed).toBe(true); //  Mon 09:00 CEST
    expect(at(policy, '2025-07-07T15:59:00Z').allowed).toBe(true); //  Mon 17:59 CEST
    expect(at(policy, '2025-07-07T16:00:00Z').allowed).toBe(false); // Mon 18:00 CEST
    expect(at(policy, '2025-01-06T08:00:00Z').allowed).toBe(true); //  Mon 09:00 CET
    expect(at(policy, '2025-01-06T07:59:00Z').allowed).toBe(false); // Mon 08:59 CET
    const v = at(policy, '2025-07-07T16:30:00Z');
    expect(v.rule).toBe('agents.claude.rules[0] (09:00-18:00 mon-fri Europe/Paris)');
    expect(v.reason).toContain('mon 18:30 Europe/Paris is outside 09:00-18:00 mon-fri Europe/Paris');
  });

  it('takes the weekday in the rule time zone, not UTC', () => {
    const paris = rulesOf([{ grant: 'github', days: ['mon', 'tue', 'wed', 'thu', 'fri'], tz: 'Europe/Paris' }]);
    const utc = rulesOf([{ grant: 'github', days: ['mon', 'tue', 'wed', 'thu', 'fri'] }]);
    const la = rulesOf([{ grant: 'github', days: ['mon', 'tue', 'wed', 'thu', 'fri'], tz: 'America/Los_Angeles' }]);
    // Friday 22:30 UTC is already Saturday 00:30 in Paris.
    expect(at(utc, '2025-07-04T22:30:00Z').allowed).toBe(true);
    expect(at(paris, '2025-07-04T22:30:00Z').allowed).toBe(false);
    expect(at(paris, '2025-07-04T22:30:00Z').reason).toContain('sat 00:30 Europe/Paris');
    // Monday 03:00 UTC is still Sunday 20:00 in Los Angeles.
    expect(at(utc, '2025-07-07T03:00:00Z').allowed).toBe(true);
    expect(at(la, '2025-07-07T03:00:00Z').allowed).toBe(false);
    expect(at(la, '2025-07-07T15:00:00Z').allowed).toBe(true);
  });

  it('handles half-hour offsets', () => {
    const policy = rulesOf([{ grant: 'github', hours: '09:00-17:30', tz: 'Asia/Kolkata' }]);
    expect(at(policy, '2025-07-07T03:29:00Z').allowed).toBe(false); // 08:59 IST
    expect(at(policy, '2025-07-07T03:30:00Z').allowed).toBe(true); //  09:00 IST
    expect(at(policy, '2025-07-07T11:59:00Z').allowed).toBe(true); //  17:29 IST
    expect(at(policy, '2025-07-07T12:00:00Z').allowed).toBe(false); // 17:30 IST
  });

  it('runs an overnight window into the next morning, counted on the day it starts', () => {
    const policy = rulesOf([{ grant: 'github', hours: '22:00-06:00', days: ['fri'] }]);
    expect(at(policy, '2025-07-04T21:59:00Z').allowed).toBe(false); // Fri 21:59
    expect(at(policy, '2025-07-04T22:00:00Z').allowed).toBe(true); //  Fri 22:00
    expect(at(policy, '2025-07-05T02:00:00Z').allowed).toBe(true); //  Sat 02:00, Friday's night
    expect(at(policy, '2025-07-05T06:00:00Z').allowed).toBe(false); // Sat 06:00
    expect(at(policy, '2025-07-04T02:00:00Z').allowed).toBe(false); // Fri 02:00 belongs to Thursday
    expect(at(policy, '2025-07-05T23:00:00Z').allowed).toBe(false); // Sat 23:00
    const everyNight = rulesOf([{ grant: 'github', hours: '22:00-06:00' }]);
    expect(at(everyNight, '2025-07-08T05:59:00Z').allowed).toBe(true);
    expect(at(everyNight, '2025-07-08T12:00:00Z').allowed).toBe(false);
  });

  it('a deny window refuses only inside it', () => {
    const policy = rulesOf([{ grant: 'github', deny: true, methods: ['POST'], days: ['sat', 'sun'], tz: 'Europe/Paris' }]);
    expect(at(policy, '2025-07-05T10:00:00Z').allowed).toBe(true); // a GET is not what the rule refuses
    expect(evaluate(policy, req({ method: 'POST', now: new Date('2025-07-05T10:00:00Z') }))).toMatchObject({
      allowed: false,
      rule: 'agents.claude.rules[0] (deny POST sat,sun Europe/Paris)',
    });
    expect(evaluate(policy, req({ method: 'POST', now: new Date('2025-07-07T10:00:00Z') })).allowed).toBe(true);
  });
});

describe('warn mode', () => {
  it('agent-level: reports what would be refused, with the rule and reason, and refuses nothing', () => {
    const policy = rulesOf(
      [
        { grant: 'github', methods: ['GET'] },
        { grant: 'github', deny: true, paths: ['/admin/**'] },
      ],
      'warn',
    );
    const v = evaluate(policy, req({ method: 'POST' }));
    expect(v).toMatchObject({ allowed: true, enforced: false, outcome: 'warn', rule: 'agents.claude.rules[0] (GET)' });
    expect(v.reason).toContain('would be refused (warn mode)');
    expect(v.reason).toContain('method POST is not GET');
    expect(evaluate(policy, req({ path: '/admin/x' }))).toMatchObject({ allowed: true, enforced: false, rule: 'agents.claude.rules[1] (deny /admin/**)' });
    expect(evaluate(policy, req({ method: 'GET' }))).toMatchObject({ allowed: true, enforced: true, outcome: 'allow' });
  });

  it('rule-level deny: only that rule is softened; an enforced rule still refuses', () => {
    const policy = rulesOf([
      { grant: 'github', deny: true, paths: ['/admin/**'], mode: 'warn' },
      { grant: 'github', deny: true, methods: ['DELETE'] },
    ]);
    expect(evaluate(policy, req({ path: '/admin/x' }))).toMatchObject({
      allowed: true,
      enforced: false,
      outcome: 'warn',
      rule: 'agents.claude.rules[0] (deny /admin/** warn)',
    });
    expect(evaluate(policy, req({ method: 'DELETE', path: '/admin/x' }))).toMatchObject({
      allowed: false,
      enforced: true,
      rule: 'agents.claude.rules[1] (deny DELETE)',
    });
  });

  it('rule-level allow: allow rules all in warn mode refuse nothing; beside an enforced one they do not soften it', () => {
    const trial = rulesOf([{ grant: 'github', methods: ['GET'], mode: 'warn' }]);
    expect(evaluate(trial, req({ method: 'POST' }))).toMatchObject({
      allowed: true,
      enforced: false,
      outcome: 'warn',
      rule: 'agents.claude.rules[0] (GET warn)',
    });
    const mixed = rulesOf([
      { grant: 'github', methods: ['GET'] },
      { grant: 'github', methods: ['POST'], mode: 'warn' },
    ]);
    expect(evaluate(mixed, req({ method: 'PUT' }))).toMatchObject({ allowed: false, enforced: true });
    expect(evaluate(mixed, req({ method: 'POST' }))).toMatchObject({ allowed: true, enforced: true, outcome: 'allow' });
  });

  it('a warned deny rule does not hide an enforced allow-rule refusal', () => {
    const policy = rulesOf([
      { grant: 'github', methods: ['GET'] },
      { grant: 'github', deny: true, paths: ['/admin/**'], mode: 'warn' },
    ]);
    expect(evaluate(policy, req({ method: 'POST', path: '/admin/x' }))).toMatchObject({ allowed: false, enforced: true, rule: 'agents.claude.rules[0] (GET)' });
    expect(evaluate(policy, req({ method: 'GET', path: '/admin/x' }))).toMatchObject({
      allowed: true,
      enforced: false,
      rule: 'agents.claude.rules[1] (deny /admin/** warn)',
    });
  });
});

describe('the product contract example', () => {
  const example: RuleConfig[] = parseConfig(
    {
      agents: {
        claude: {
          key: 'env:K',
          rules: [
            { grant: 'github', methods: ['GET'], paths: ['/repos/**'] },
            {
              grant: 'github',
              methods: ['POST'],
              paths: ['/repos/*/issues'],
              hours: '09:00-18:00',
              days: ['mon', 'tue', 'wed', 'thu', 'fri'],
              tz: 'Europe/Paris',
            },
            { grant: 'openai', sources: ['10.1.0.0/16'], max_body: '1MiB' },
            { grant: 'github', deny: true, paths: ['/admin/**'] },
          ],
        },
      },
    },
    '/home/test',
  ).agents['claude']!.rules;
  const policy = compileRules('claude', example, 'enforce');

  it('reads as written', () => {
    expect(evaluate(policy, req({ method: 'GET', path: '/repos/a/b' })).allowed).toBe(true);
    expect(evaluate(policy, req({ method: 'POST', path: '/repos/a/issues' })).allowed).toBe(true);
    expect(evaluate(policy, req({ method: 'POST', path: '/repos/a/issues', now: new Date('2025-07-05T10:00:00Z') })).allowed).toBe(false);
    expect(evaluate(policy, req({ method: 'GET', path: '/admin/x' })).allowed).toBe(false);
    expect(evaluate(policy, req({ grant: 'openai', source: '10.1.0.5', bodyBytes: 100 })).allowed).toBe(true);
    expect(evaluate(policy, req({ grant: 'openai', source: '127.0.0.1', bodyBytes: 100 })).allowed).toBe(false);
    expect(evaluate(policy, req({ grant: 'slack' })).allowed).toBe(true);
  });
});

describe('require_purpose on allow rules', () => {
  it('names the rule when every allow rule that matches wants a purpose, and none when one does not', () => {
    const policy = rulesOf([
      { grant: 'github', methods: ['DELETE'], paths: ['/repos/**'], require_purpose: true },
      { grant: 'github', methods: ['GET'], paths: ['/repos/**'], require_purpose: true },
      { grant: 'github', methods: ['GET'], paths: ['/repos/acme/**'] },
    ]);
    expect(evaluate(policy, req({ method: 'DELETE' })).purposeRequiredBy).toMatch(/^agents\.claude\.rules\[0\]/);
    // rules[2] also matches and asks for nothing: the request is allowed without a purpose.
    expect(evaluate(policy, req({ method: 'GET' })).purposeRequiredBy).toBeUndefined();
    expect(evaluate(policy, req({ method: 'GET', path: '/repos/other/x' })).purposeRequiredBy).toMatch(/rules\[1\]/);
    expect(evaluate(policy, req({ method: 'POST' })).allowed).toBe(false);
  });

  it('is refused on a deny rule', () => {
    expect(compileError({ grant: 'github', deny: true, require_purpose: true })).toMatch(/require_purpose belongs on an allow rule/);
  });
});
