import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { normaliseRequestTarget, pathReadings } from '../../src/policy/request-path.ts';

// One table: what a request target becomes upstream, or why it is refused (400 bad_request).
// Every case is a decision written in src/policy/request-path.ts.

const SENT: Array<[string, string, string]> = [
  // [request target, path sent upstream, query sent upstream]
  ['/repos/acme', '/repos/acme', ''],
  ['/', '/', ''],
  ['/repos/acme?token=x&a=%2F', '/repos/acme', '?token=x&a=%2F'], // query untouched
  ['/repos/acme?', '/repos/acme', '?'],
  ['/a#frag', '/a', ''], // fragment cut, never forwarded
  ['/a?q=1#/../admin', '/a', '?q=1'],
  ['/a#?q', '/a', ''],
  ['/%61dmin/x', '/admin/x', ''], // unreserved escapes decoded
  ['/a%7eb', '/a~b', ''],
  ['/a%3bb', '/a%3Bb', ''], // reserved escapes kept, hex upper-cased
  ['/a;b=1', '/a;b=1', ''], // matrix parameters kept as sent (deny rules read them loosely)
  ['/files/my%20file', '/files/my%20file', ''], // %20 kept
  ['/caf%C3%A9', '/caf%C3%A9', ''],
  ['/a"b<c>', '/a%22b%3Cc%3E', ''], // not URI characters: encoded
  ['/a{b}|c^`', '/a%7Bb%7D%7Cc%5E%60', ''],
  ['/caf\u00c3\u00a9', '/caf%C3%A9', ''], // raw bytes >= 0x80 (as Node's latin1 string) are encoded; they must be UTF-8
  ['/projects/group%2fapp/issues', '/projects/group%2Fapp/issues', ''], // encoded slash kept
  ['/a/../admin', '/admin', ''], // dot segments resolved
  ['/a/./b', '/a/b', ''],
  ['/a/%2e%2e/admin', '/admin', ''],
  ['/a/%2E/b', '/a/b', ''],
  ['/../../etc', '/etc', ''], // never above the root
  ['/a/b/..', '/a/', ''],
  ['//admin//x', '/admin/x', ''], // duplicate slashes collapsed
  ['/a/', '/a/', ''], // trailing slash kept
  ['/a..b/.well-known/x.json', '/a..b/.well-known/x.json', ''],
  ['/100%25', '/100%25', ''], // a percent sign, not double encoding
  ["/@me:1/!$&'()*+,=", "/@me:1/!$&'()*+,=", ''],
  // Beside the fast path for a path already in its one form (CANONICAL_PATH): a segment that
  // starts with a dot, an empty one, a trailing one, each through the full parse.
  ['/.well-known/openid-configuration', '/.well-known/openid-configuration', ''],
  ['/a//', '/a/', ''],
  ['/a/.', '/a/', ''],
  ['/~user/x.y;z', '/~user/x.y;z', ''],
];

const REFUSED: Array<[string, RegExp]> = [
  ['/admin%00.json', /NUL/],
  ['/a%0d%0aX: y', /control/],
  ['/a%7f', /control/],
  ['/a\\..\\admin', /backslash/],
  ['/a%5c..%5cadmin', /backslash/],
  ['/admin%252fx', /double-encoded/],
  ['/%2541dmin', /double-encoded/],
  ['/%25%34%31dmin', /double-encoded/], // the hex digits encoded too
  ['/a%zz', /two hex digits/],
  ['/a%4', /two hex digits/],
  ['/a%', /two hex digits/],
  ['/a%FF', /UTF-8/],
  ['/a%C0%AF', /UTF-8/], // an overlong "/"
  ['/caf\u00e9/\u00e9', /UTF-8/],
  ['/repos/..;/admin', /read as \., \.\. or nothing/], // Tomcat
  ['/repos/.;x/admin', /read as \., \.\. or nothing/],
  ['/repos/..%20/admin', /read as \., \.\. or nothing/], // Windows trims trailing spaces
  ['/repos/.../admin', /read as \., \.\. or nothing/],
  ['/repos/a%2F..%2F..%2Fadmin', /encoded slash/],
  ['/%3B%2e%2e%2fadmin', /or nothing/], // `;..` vanishes where ;parameters are dropped
  ['/x/;x=1/admin', /or nothing/],
  ['/a/;', /or nothing/],
  ['/a/..../b', /or nothing/],
  ['/%20/admin', /or nothing/], // IIS trims it away
  ['/%EF%BC%8E%EF%BC%8E/admin', /or nothing/], // fullwidth dots, NFKC-folded
  ['/a%2F%2Fb', /encoded slash/],
  ['/repos/%2e%2e%2fadmin', /encoded slash/],
  ['*', /server-wide/],
  ['admin', /starting with \//],
  ['', /starting with \//],
  ['/a b', /space/],
  ['/a\u0100', /byte range/],
];

describe('request target normalisation', () => {
  it.each(SENT)('%j is sent as path %j, query %j', (target, path, query) => {
    expect(normaliseRequestTarget(target)).toEqual({ ok: true, path, query });
  });

  it.each(REFUSED)('%j is refused', (target, reason) => {
    const result = normaliseRequestTarget(target);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).toMatch(reason);
  });

  it('is idempotent: the normalised path normalises to itself (fuzzed)', () => {
    const chars = ['a', 'B', '/', '.', '%', '2', 'e', 'F', 'f', ';', '~', '5', 'C', '0', '\\', '?', '#', 'é', ' '];
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...chars), { maxLength: 24 }), (parts) => {
        const once = normaliseRequestTarget(`/${parts.join('')}`);
        if (!once.ok) return;
        expect(normaliseRequestTarget(once.path)).toEqual({ ok: true, path: once.path, query: '' });
        // Nothing a server might read differently survives: no dot segments, no //, no \ or %5C, no NUL.
        expect(once.path).not.toMatch(/\/\.\.?(\/|$)|\/\/|\\|%5C|%00|%25[0-9A-F]{2}/i);
      }),
      { numRuns: 3_000 },
    );
  });
});

describe('path readings for rules', () => {
  it('decodes segments; an encoded slash gives a second, split reading', () => {
    expect(pathReadings('/repos/acme?x=1')).toEqual([['repos', 'acme']]);
    expect(pathReadings('/files/my%20file')).toEqual([['files', 'my file']]);
    expect(pathReadings('/a%3Bb')).toEqual([['a;b']]);
    expect(pathReadings('/projects/group%2Fapp/issues')).toEqual([
      ['projects', 'group%2Fapp', 'issues'],
      ['projects', 'group', 'app', 'issues'],
    ]);
    expect(pathReadings('/%FF')).toBeUndefined();
  });
});
