import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, parseConfig } from '../../src/config/load.ts';
import { parseBasicSecret, parseMaterial } from '../../src/credentials/types/index.ts';
import { makeHome } from '../helpers/keyway.ts';

// Config mistakes read as the fix: one line, the key path first.

const messageFor = (raw: unknown): string => {
  try {
    parseConfig(raw, '/nonexistent-home');
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected the config to be refused');
};

describe('config error messages', () => {
  it('suggest the nearest known key for a typo', () => {
    expect(messageFor({ proxy: { allow_network: ['10.0.0.0/8'] } })).toBe('config: proxy.allow_network: unknown key; did you mean allow_networks?');
    expect(messageFor({ agents: { a: { key: 'env:K', lease_tl: '1h' } } })).toContain('agents.a.lease_tl: unknown key; did you mean lease_ttl?');
    expect(messageFor({ prxy: {} })).toContain('prxy: unknown key; did you mean proxy?');
    // A misspelt required key is reported as the typo, not as the missing key.
    expect(messageFor({ grants: { gh: { type: 'bearer', domain: ['a.example.test'], secret: 'env:X' } } })).toMatch(
      /^config: grants\.gh\.domain: unknown key; did you mean domains\?/,
    );
    // Nothing close: the keys that are known there.
    expect(messageFor({ proxy: { zzzzzzzz: 1 } })).toContain('proxy.zzzzzzzz: unknown key (known here: listen, unmatched,');
  });

  it('ask for a duration like 60s, not a type', () => {
    const message = messageFor({ proxy: { drain_timeout: 60 } });
    expect(message).toBe('config: proxy.drain_timeout: expected a duration like 60s (or 500ms, 15m, 1h, 7d), got number 60');
    expect(message).not.toMatch(/received|Invalid input/);
    expect(messageFor({ proxy: { timeouts: { idle: 30 } } })).toContain('proxy.timeouts.idle: expected a duration like 60s');
    expect(messageFor({ oauth: { refresh_skew: '60' } })).toContain('oauth.refresh_skew: expected a duration like 60s');
    expect(messageFor({ proxy: { listen: 8787 } })).toContain('proxy.listen: expected HOST:PORT such as 127.0.0.1:8787, got number 8787');
    expect(messageFor({ audit: { keep: 'ten' } })).toBe('config: audit.keep: expected a number, got a string');
    expect(messageFor({ proxy: { unmatched: 'block' } })).toBe('config: proxy.unmatched: expected one of tunnel, deny');
    expect(messageFor({ proxy: { workers: 0 } })).toBe('config: proxy.workers: expected a number of processes from 1 to 256, or auto');
    expect(messageFor({ proxy: { workers: 'all' } })).toBe('config: proxy.workers: expected a number of processes from 1 to 256, or auto');
    expect(parseConfig({ proxy: { workers: 'auto' } }, '/nonexistent-home').proxy.workers).toBe('auto');
    expect(parseConfig({}, '/nonexistent-home').proxy.workers).toBe(1);
  });

  it('never quote a string value (it may be a pasted secret)', () => {
    expect(messageFor({ agents: { a: { key: 'kw-pasted-secret-123' } } })).not.toContain('kw-pasted-secret-123');
    expect(messageFor({ audit: { keep: 'kw-pasted-secret-123' } })).not.toContain('kw-pasted-secret-123');
  });

  it('name a duplicate YAML key with its line and path', () => {
    const home = makeHome();
    mkdirSync(join(home, 'config'));
    writeFileSync(join(home, 'config', 'keyway.yaml'), 'proxy:\n  listen: 127.0.0.1:8787\n  unmatched: deny\n  listen: 127.0.0.1:9999\n');
    expect(() => loadConfig({ home })).toThrow(/keyway\.yaml at line 4: the key proxy\.listen is given twice; keep one$/);
  });

  it("name a YAML syntax error's line and the parser's reason, never the text around it", () => {
    const home = makeHome();
    mkdirSync(join(home, 'config'));
    const cases: Array<[string, RegExp]> = [
      ['proxy:\n  listen: "127.0.0.1:8787\n', /at line 3: not valid YAML \(Missing closing "quote\)$/],
      ['proxy:\n  listen: 127.0.0.1:8787\n unmatched: kw-pasted-secret-9\n', /at line 3: not valid YAML \(All mapping items must start at the same column\)$/],
      // An unquoted *.domain reads as a YAML alias (issue 48): the line, and the fix.
      [
        'grants:\n  local:\n    type: bearer\n    domains: [*.local.test]\n',
        /at line 4: not valid YAML \(\*\.local\.test reads as an alias: quote values that begin with \*, as '\*\.local\.test'\)$/,
      ],
    ];
    for (const [text, message] of cases) {
      writeFileSync(join(home, 'config', 'keyway.yaml'), text);
      expect(() => loadConfig({ home })).toThrow(message);
      expect(() => loadConfig({ home })).not.toThrow(/kw-pasted-secret/);
    }
  });
});

describe('basic secrets', () => {
  it('take username:password or JSON, and never quote the input', () => {
    expect(parseMaterial('basic', 'user:pa:ss\n')).toEqual({ username: 'user', password: 'pa:ss' });
    expect(parseMaterial('basic', '{"username":"user","password":"pass"}')).toEqual({ username: 'user', password: 'pass' });
    expect(parseBasicSecret('{"username":"u","password":"p"}\n')).toEqual({ username: 'u', password: 'p' });
    expect(parseBasicSecret('u:p')).toEqual({ username: 'u', password: 'p' });
    for (const bad of ['nocolon-kw-secret', ':kw-secret', 'user:', 'user:   ', 'us\ner:kw-secret']) {
      expect(() => parseMaterial('basic', bad)).toThrow(/username:password/);
      try {
        parseMaterial('basic', bad);
      } catch (err) {
        expect((err as Error).message).not.toContain('kw-secret');
      }
    }
  });
});

describe('an identity rule that maps to a mistyped agent (issue 48)', () => {
  it('is blamed, with the agent it meant, not that agent for its missing key', () => {
    const identities = [
      { issuer: 'https://token.actions.githubusercontent.com', audience: 'keyway', map: [{ claims: { repository: 'acme/*' }, agent: 'cii' }] },
    ];
    expect(() => parseConfig({ agents: { ci: {} }, identities }, '/nonexistent-home')).toThrow(
      /identities\.0\.map\.0\.agent: no agent "cii" in the config; did you mean ci\? \(agents\.ci has no key, and no rule maps a token to it\)$/,
    );
    // Spelt right, it loads.
    const fixed = [{ ...identities[0]!, map: [{ claims: { repository: 'acme/*' }, agent: 'ci' }] }];
    expect(parseConfig({ agents: { ci: {} }, identities: fixed }, '/nonexistent-home').identities).toHaveLength(1);
  });
});

describe('an env: secret that is not set (issue 48)', () => {
  it("says it is keyway's own environment, from its start, and the other way to keep it", async () => {
    const { readSecretRef } = await import('../../src/config/secret-ref.ts');
    expect(() => readSecretRef({ kind: 'env', name: 'LOCAL_API_TOKEN' }, {}, '/nonexistent')).toThrow(
      /environment variable LOCAL_API_TOKEN is not set \(keyway reads it from its own environment as it started: start keyway with it set, or keep the secret in the store with `keyway secrets set`\)/,
    );
  });
});
