import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { parseDuration } from '../../src/config/index.ts';
import { parseConfig } from '../../src/config/load.ts';
import { KeywayError } from '../../src/errors/index.ts';

const load = (raw: unknown) => parseConfig(raw, '/home/test');
const failure = (raw: unknown): string => {
  try {
    load(raw);
  } catch (err) {
    expect(err).toBeInstanceOf(KeywayError);
    return (err as KeywayError).message;
  }
  throw new Error('expected the config to be refused');
};

describe('config', () => {
  it('fills every default from an empty file, and freezes the result', () => {
    const config = load({});
    expect(config.proxy.listen).toEqual({ host: '127.0.0.1', port: 8787 });
    expect(config.proxy.unmatched).toBe('tunnel');
    expect(config.admin.listen).toEqual({ host: '127.0.0.1', port: 8788 });
    expect(config.audit.path).toBe('logs/audit.jsonl');
    expect(config.oauth.refresh_skew).toBe(60_000);
    expect(Object.isFrozen(config.proxy)).toBe(true);
  });

  it('refuses unknown keys, naming the path', () => {
    expect(failure({ proxy: { listne: '127.0.0.1:1' } })).toMatch(/proxy.*listne|Unrecognized key/);
    expect(failure({ proxy: { listen: 'nowhere' } })).toContain('proxy.listen: expected HOST:PORT');
    expect(failure({ proxy: { unmatched: 'maybe' } })).toContain('proxy.unmatched');
  });

  it('refuses wildcards broader than one registrable domain', () => {
    for (const pattern of ['*', '*.com', '*.co.uk', '*.test']) {
      expect(failure({ grants: { g: { type: 'bearer', domains: [pattern], secret: 'env:X' } } }), pattern).toContain('grants.g.domains.0');
    }
    const ok = load({ grants: { g: { type: 'bearer', domains: ['*.githubusercontent.com', 'api.github.com:443', '10.1.2.3:8443'], secret: 'env:X' } } });
    expect(ok.grants['g']?.domains.map((d) => d.wildcard)).toEqual([true, false, false]);
  });

  it('ids are at most 63 characters (they go into audit lines, metric labels and file names)', () => {
    const long = `a${'b'.repeat(63)}`;
    expect(load({ grants: { [long.slice(0, 63)]: { type: 'bearer', domains: ['a.example.test'], secret: 'env:X' } } }).grants).toHaveProperty(
      long.slice(0, 63),
    );
    expect(failure({ grants: { [long]: { type: 'bearer', domains: ['a.example.test'], secret: 'env:X' } } })).toContain('up to 63 characters');
    expect(failure({ agents: { [long]: { key: 'env:K' } } })).toContain('up to 63 characters');
  });

  it('store: file by default; postgres needs a url, by reference only, never echoed', () => {
    expect(load({}).store).toEqual({ backend: 'file', pool_size: 4, statement_timeout: 5_000, key: 'file' });
    expect(load({ store: { backend: 'postgres', url: 'env:DB_URL', pool_size: 8, statement_timeout: '2s' } }).store).toEqual({
      backend: 'postgres',
      url: { kind: 'env', name: 'DB_URL' },
      pool_size: 8,
      statement_timeout: 2_000,
      key: 'file',
    });
    expect(failure({ store: { backend: 'postgres', url: 'env:DB_URL', pool_size: 0 } })).toContain('store.pool_size');
    expect(failure({ store: { backend: 'postgres' } })).toContain('store.url');
    const pasted = failure({ store: { backend: 'postgres', url: 'postgres://keyway:hunter2@db/keyway' } });
    expect(pasted).toContain('store.url');
    expect(pasted).not.toContain('hunter2');
    expect(failure({ store: { backend: 'mysql' } })).toContain('store.backend');
  });

  it('audit.sink: file by default; postgres only with the postgres store, refused in one line otherwise', () => {
    expect(load({}).audit.sink).toBe('file');
    expect(load({ store: { backend: 'postgres', url: 'env:DB_URL' }, audit: { sink: 'postgres' } }).audit.sink).toBe('postgres');
    const message = failure({ audit: { sink: 'postgres' } });
    expect(message).toContain('audit.sink');
    expect(message).toContain('store.backend postgres');
    expect(message.split('\n')).toHaveLength(1);
    expect(failure({ store: { backend: 'postgres', url: 'env:DB_URL' }, audit: { sink: 'mysql' } })).toContain('audit.sink');
  });

  it('takes secrets only by reference, and never echoes a pasted secret', () => {
    const message = failure({ grants: { g: { type: 'bearer', domains: ['a.example.test'], secret: 'ghp_pasted_secret' } } });
    expect(message).toContain('grants.g.secret');
    expect(message).not.toContain('ghp_pasted_secret');
  });

  it('needs injection settings for api_key grants and checks ids and durations', () => {
    expect(failure({ grants: { g: { type: 'api_key', domains: ['a.example.test'], secret: 'env:K' } } })).toContain('grants.g.inject');
    expect(failure({ grants: { Bad_Id: { type: 'bearer', domains: ['a.example.test'], secret: 'env:K' } } })).toContain('grants.Bad_Id');
    expect(failure({ oauth: { refresh_skew: 'soon' } })).toContain('oauth.refresh_skew');
    expect(failure({ providers: { p: { token_url: 'http://auth.example.test/token' } } })).toContain('providers.p.token_url');
    expect(load({ providers: { p: { token_url: 'http://127.0.0.1:9/token' } } }).providers['p']?.client_auth).toBe('basic');
  });

  it('accepts the documented example, with its commented examples switched on', () => {
    const text = readFileSync(new URL('../../config/keyway.example.yaml', import.meta.url), 'utf8');
    expect(() => load(parseYaml(text))).not.toThrow();
    // Uncomment the examples under providers, grants, agents, identities, budgets and pricing: they must be valid too.
    const enabled = text
      .replace(/^# (providers|grants|agents|identities|budgets|pricing):$/gm, '$1:')
      .replace(/^#( {2}\S.*| {4}.*)$/gm, '$1')
      .replace(/^#( {6}- .*)$/gm, '$1');
    const config = load(parseYaml(enabled));
    expect(config.grants['openai']?.type).toBe('api_key');
    expect(['partner-api', 'calendar', 'ledger'].map((id) => config.grants[id]?.type)).toEqual(['http_signature', 'token_exchange', 'dpop']);
    expect(config.agents['claude']?.rules.length).toBeGreaterThan(3);
    expect(config.providers['acme-helpdesk']?.client_auth).toBe('basic');
    expect(config.identities[0]).toMatchObject({ clock_skew: 60_000, max_token_lifetime: 86_400_000, map: [{ agent: 'claude' }] });
    expect(config.budgets.map((b) => b.per)).toEqual(['day', 'month']);
    expect(Object.keys(config.pricing)).toEqual(['my-gateway-model']);
    // As shipped, none of those keys is set: a block of the docs' appended to the file is not "given twice".
    const shipped = parseYaml(text) as Record<string, unknown>;
    for (const key of ['providers', 'grants', 'agents', 'identities', 'budgets', 'pricing']) expect(shipped, key).not.toHaveProperty(key);
  });

  it('parses durations', () => {
    expect(parseDuration('90s')).toBe(90_000);
    expect(parseDuration('15m')).toBe(900_000);
    expect(parseDuration('7d')).toBe(604_800_000);
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('1 hour')).toBeUndefined();
  });
});
