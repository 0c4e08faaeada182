import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import { overrideMethods } from '../../src/policy/method-override.ts';
import { overridePaths } from '../../src/policy/path-override.ts';
import { compileRules, evaluate, type AgentPolicy, type PolicyRequest } from '../../src/policy/rules.ts';

// Issue 8, defect 7: override headers as the rules see them. The path properties (every server
// reading of every accepted path) are in test/hostile/rules-bypass.test.ts.

const policyOf = (rules: unknown[]): AgentPolicy => {
  const config = parseConfig({ agents: { a: { key: 'env:K', rules } } }, '/home/test');
  return compileRules('a', config.agents['a']!.rules, 'enforce');
};
const req = (path: string, method = 'GET'): PolicyRequest => ({ grant: 'g', method, path, source: '127.0.0.1', bodyBytes: 0, now: new Date(0) });

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

  it('reads ?_method however the query spells it: a query with no `_` and no `%` is the only one passed over unread', () => {
    expect(overrideMethods({}, '?_%6Dethod=delete')).toEqual([{ method: 'DELETE', by: '?_method' }]);
    expect(overrideMethods({}, '?%5f%6d%65%74%68%6f%64=put')).toEqual([{ method: 'PUT', by: '?_method' }]);
    expect(overrideMethods({}, '?a=1&%5Fmethod=patch')).toEqual([{ method: 'PATCH', by: '?_method' }]);
    expect(overrideMethods({}, '?a=_method')).toEqual([]); // a value, not the parameter
    // Against the query as a server reads it (URLSearchParams), over queries built from the
    // characters that spell, encode or split the parameter.
    const query = fc.string({ unit: fc.constantFrom('_', '%', '5', 'F', 'f', '6', 'D', 'd', 'm', 'e', 't', 'h', 'o', '=', '&', '+', ';', 'x'), maxLength: 24 });
    fc.assert(
      fc.property(query, (q) => {
        const named = new URLSearchParams(q).getAll('_method');
        const read = overrideMethods({}, `?${q}`);
        if (named.length === 0) expect(read).toEqual([]);
        else expect(read).not.toEqual([]); // the methods it names, or why one is not a method
      }),
      { numRuns: 20_000 },
    );
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
