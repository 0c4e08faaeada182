import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import { overrideMethods } from '../../src/policy/method-override.ts';
import { overridePaths } from '../../src/policy/path-override.ts';
import { normaliseRequestTarget } from '../../src/policy/request-path.ts';
import { compileRules, evaluate, type AgentPolicy, type PolicyRequest } from '../../src/policy/rules.ts';

// Issue 8, defect 7, as properties: whatever the agent puts in the request target, once keyway
// accepts and normalises it, no way a lenient server may read the path it sends reaches what a deny
// rule refuses, or leaves what an allow rule allows.

const policyOf = (rules: unknown[]): AgentPolicy => {
  const config = parseConfig({ agents: { a: { key: 'env:K', rules } } }, '/home/test');
  return compileRules('a', config.agents['a']!.rules, 'enforce');
};
const req = (path: string, method = 'GET'): PolicyRequest => ({ grant: 'g', method, path, source: '127.0.0.1', bodyBytes: 0, now: new Date(0) });

// How servers in the wild may route a path: decode %2F or not, fold case, drop ;parameters
// (Tomcat, Jetty), trim trailing dots and spaces (IIS, Windows), drop a format suffix (Rails, Spring).
interface Reading { slash: boolean; fold: boolean; params: boolean; trim: boolean; suffix: boolean }
const READINGS: Reading[] = [];
for (let bits = 0; bits < 32; bits++) {
  READINGS.push({ slash: !!(bits & 1), fold: !!(bits & 2), params: !!(bits & 4), trim: !!(bits & 8), suffix: !!(bits & 16) });
}

function serverPath(sent: string, r: Reading): string[] {
  const raw = r.slash ? sent.replace(/%2F/gi, '/') : sent;
  const parts: string[] = [];
  for (let seg of raw.split('/')) {
    seg = decodeURIComponent(seg.replace(/%2F/gi, '%252F'));
    if (r.fold) seg = seg.normalize('NFKC').toLowerCase();
    if (r.params) seg = seg.split(';')[0]!;
    if (r.trim) seg = seg.replace(/[\s.]+$/u, '') || (seg.startsWith('.') ? seg : '');
    if (seg === '' || seg === '.') continue;
    if (seg === '..') parts.pop();
    else parts.push(seg);
  }
  if (r.suffix && parts.length > 0) parts[parts.length - 1] = parts.at(-1)!.replace(/^([^.]+)\..*$/, '$1');
  return parts;
}

const PIECES = ['admin', 'ADMIN', 'Admin', '%61dmin', '%41DMIN', '%EF%BD%81dmin', 'repos', 'REPOS', 'x', '/', '//', '.', '..', '%2e', '%2E%2e', ';', ';x=1', '.json', '%20', ' ', '%2F', '%2f', '%25', '%252f', '%00', '%5C', '\\', '%C0%AF', '#', '?', '%3B', '..;', 'dmin', '%2e%2e%2f'];
const targets = fc.array(fc.constantFrom(...PIECES), { minLength: 1, maxLength: 8 }).map((p) => `/${p.join('')}`);

describe('no server reading of an accepted path escapes the rules (fuzzed)', () => {
  const deny = policyOf([{ grant: 'g', deny: true, paths: ['/admin/**'] }]);
  const allow = policyOf([{ grant: 'g', paths: ['/repos/**'] }]);

  it('a deny on /admin/** refuses every path any server reads as /admin…', () => {
    fc.assert(
      fc.property(targets, (target) => {
        const sent = normaliseRequestTarget(target);
        if (!sent.ok) return; // 400 bad_request: nothing goes up
        const reachesAdmin = READINGS.some((r) => serverPath(sent.path, r)[0]?.normalize('NFKC').toLowerCase() === 'admin');
        if (reachesAdmin) expect(evaluate(deny, req(sent.path)).allowed, `${target} sent as ${sent.path}`).toBe(false);
      }),
      { numRuns: Number(process.env.FUZZ_RUNS ?? 20_000) },
    );
  });

  it('an allow on /repos/** allows only paths that every server reads under /repos', () => {
    fc.assert(
      fc.property(targets, (target) => {
        const sent = normaliseRequestTarget(target);
        if (!sent.ok || !evaluate(allow, req(sent.path)).allowed) return;
        for (const r of READINGS) expect(serverPath(sent.path, r)[0]?.toLowerCase(), `${target} sent as ${sent.path}`).toBe('repos');
      }),
      { numRuns: Number(process.env.FUZZ_RUNS ?? 20_000) },
    );
  });
});

describe('method overrides', () => {
  it('names every method an override header or ?_method names, upper-cased, once', () => {
    expect(overrideMethods({}, '')).toEqual([]);
    expect(overrideMethods({ 'x-http-method-override': 'delete' }, '')).toEqual([{ method: 'DELETE', by: 'X-HTTP-Method-Override' }]);
    expect(overrideMethods({ 'x-method-override': ['PUT', 'patch, PUT'], 'x-http-method': 'PUT' }, '?_method=DELETE&_method=put')).toEqual([
      { method: 'PUT', by: 'X-Method-Override' },
      { method: 'PATCH', by: 'X-Method-Override' },
      { method: 'DELETE', by: '?_method' },
    ]);
    expect(overrideMethods({}, '?%5Fmethod=delete')).toEqual([{ method: 'DELETE', by: '?_method' }]);
    expect(overrideMethods({ 'x-http-method-override': 'DE LETE' }, '')).toMatch(/does not name an HTTP method/);
    expect(overrideMethods({}, '?_method=')).toMatch(/\?_method does not name/);
  });

  it('a methods: [GET] rule refuses a GET that names DELETE', () => {
    const policy = policyOf([{ grant: 'g', methods: ['GET'] }]);
    const named = overrideMethods({ 'x-http-method-override': 'DELETE' }, '');
    expect(Array.isArray(named) && named.map((n) => evaluate(policy, req('/x', n.method)).allowed)).toEqual([false]);
  });
});

describe('path overrides', () => {
  it('names each path X-Original-URL or X-Rewrite-URL carries, normalised, or refuses one that cannot be', () => {
    expect(overridePaths({})).toEqual([]);
    expect(overridePaths({ 'x-original-url': '/a/../Admin?x=1', 'x-rewrite-url': ['/b', '/Admin'] })).toEqual([
      { path: '/Admin', by: 'X-Original-URL' },
      { path: '/b', by: 'X-Rewrite-URL' },
    ]);
    expect(overridePaths({ 'x-original-url': '/a%00' })).toMatch(/X-Original-URL names a path that cannot be normalised safely: .*NUL/);
    expect(overridePaths({ 'x-rewrite-url': 'http://evil/x' })).toMatch(/starting with \//);
  });
});
