import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import { GRANT_TYPES } from '../../src/config/ids.ts';
import { GRANT_TYPE_FIELDS } from '../../src/credentials/types/fields.ts';
import { grantCreateInput, parseInput } from '../../src/operations/grant-schema.ts';

// A grant is every grant's keys and one type's (credentials/types/<type>/fields.ts): a key another type owns is
// refused by the schema, naming the type it belongs to, in the config and through grants add / the API.

const messageFor = (grant: Record<string, unknown>): string => {
  try {
    parseConfig({ grants: { g: { domains: ['api.example.test'], secret: 'env:X', ...grant } } }, '/nonexistent-home');
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected the config to be refused');
};

const inputRefusal = (input: Record<string, unknown>, caller: 'api' | 'cli'): string => {
  try {
    parseInput(grantCreateInput, { id: 'g', domains: ['api.example.test'], ...input }, caller);
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected the input to be refused');
};

describe('grant types', () => {
  it('every type has its keys registered, and each key of a type is its own or shared by name', () => {
    expect(Object.keys(GRANT_TYPE_FIELDS).sort()).toEqual([...GRANT_TYPES].sort());
    for (const type of GRANT_TYPES) expect(GRANT_TYPE_FIELDS[type].type).toBe(type);
  });

  it('a key of another type is refused in the config, naming its owner', () => {
    expect(messageFor({ type: 'bearer', api_url: 'https://api.github.com' })).toBe('config: grants.g.api_url: api_url belongs to a github_app grant');
    expect(messageFor({ type: 'bearer', max_signed_body: '1MiB' })).toBe(
      'config: grants.g.max_signed_body: max_signed_body belongs to an aws_sigv4 or hmac grant',
    );
    expect(messageFor({ type: 'hmac', sign: { preset: 'kraken' }, region: 'eu-west-1' })).toBe('config: grants.g.region: region belongs to an aws_sigv4 grant');
  });

  it("a typo of a type's own key is named with the nearest of that type's keys", () => {
    expect(messageFor({ type: 'aws_sigv4', regoin: 'eu-west-1' })).toBe('config: grants.g.regoin: unknown key; did you mean region?');
    expect(messageFor({ type: 'github_app', repositoies: ['x'] })).toBe('config: grants.g.repositoies: unknown key; did you mean repositories?');
  });

  it('a type that does not exist, or none, names the types', () => {
    expect(messageFor({ type: 'bearr' })).toBe(`config: grants.g.type: expected one of ${GRANT_TYPES.join(', ')}; did you mean bearer?`);
    expect(messageFor({ type: 'nothing-like-it' })).toBe(`config: grants.g.type: expected one of ${GRANT_TYPES.join(', ')}`);
    expect(messageFor({})).toBe(`config: grants.g.type: expected one of ${GRANT_TYPES.join(', ')}`);
  });

  it("a type's own rules still run: its required keys, its key that needs another", () => {
    expect(messageFor({ type: 'google_service_account' })).toContain('grants.g.scopes: a google_service_account grant needs the scopes its tokens are for');
    expect(messageFor({ type: 'aws_sigv4', sts_endpoint: 'https://sts.example.test' })).toContain('set assume_role too');
    expect(messageFor({ type: 'github_app', inject: { header: 'X-Token' } })).toContain('it has no inject settings');
  });

  it('grants add and the admin API refuse a key of another type (it was dropped in silence before)', () => {
    expect(inputRefusal({ type: 'bearer', region: 'eu-west-1' }, 'api')).toBe('region: region belongs to an aws_sigv4 grant');
    expect(inputRefusal({ type: 'bearer', api_url: 'https://api.github.com' }, 'cli')).toBe('--api-url: api_url belongs to a github_app grant');
    expect(inputRefusal({ type: 'google_service_account' }, 'cli')).toBe('--scopes: a google_service_account grant needs the scopes its tokens are for');
  });
});
