// A secret is OAuth material because its grant's type says so (GrantKind.oauth), never because of
// the keys it holds: dpop's and token_exchange's secrets are OAuth clients too, but theirs, and a
// type added tomorrow is not read as an OAuth grant's tokens until its kind declares it.
import { describe, expect, it } from 'vitest';
import { GRANT_TYPES } from '../../src/config/ids.ts';
import { KINDS, oauthMaterialOf, parseMaterial } from '../../src/credentials/types/index.ts';

const CLIENT = '{"clientId":"kw-client","clientSecret":"kw-canary-5e1d"}';

describe('oauthMaterialOf', () => {
  it("reads oauth2's and client_credentials' secrets as OAuth material", () => {
    const oauth2 = parseMaterial('oauth2', '{"refreshToken":"kw-refresh","expiresAt":1700000000000,"scopes":["repo"]}');
    expect(oauthMaterialOf('oauth2', oauth2)).toMatchObject({ refreshToken: 'kw-refresh', expiresAt: 1700000000000, scopes: ['repo'] });
    const client = parseMaterial('client_credentials', '{"clientId":"kw-client","clientSecret":"kw-canary-5e1d","scope":"read write"}');
    expect(oauthMaterialOf('client_credentials', client)).toEqual({ clientId: 'kw-client', clientSecret: 'kw-canary-5e1d', scopes: ['read', 'write'] });
  });

  it("does not read dpop's or token_exchange's client as OAuth material, though it has an OAuth client's keys", () => {
    for (const type of ['dpop', 'token_exchange'] as const) {
      const material = parseMaterial(type, CLIENT);
      expect(material).toEqual({ clientId: 'kw-client', clientSecret: 'kw-canary-5e1d' });
      expect(oauthMaterialOf(type, material)).toBeUndefined();
    }
  });

  it("reads no type's material as OAuth material unless its kind declares OAuth tokens", () => {
    const lookalike = { clientId: 'kw-client', clientSecret: 'kw-canary-5e1d', refreshToken: 'kw-refresh', scopes: ['repo'] };
    const declared = GRANT_TYPES.filter((type) => KINDS[type].issuer.by === 'oauth');
    expect(declared.sort()).toEqual(['client_credentials', 'oauth2']);
    for (const type of GRANT_TYPES) expect(oauthMaterialOf(type, lookalike), type).toBe(declared.includes(type) ? lookalike : undefined);
  });

  it("does not read an OAuth type's token given as text (a config's env: or file:) as its object form", () => {
    expect(oauthMaterialOf('oauth2', 'kw-refresh')).toBeUndefined();
    expect(oauthMaterialOf('oauth2', undefined)).toBeUndefined();
  });
});
