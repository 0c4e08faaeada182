import { describe, expect, it } from 'vitest';
import { accountOf } from '../../src/credentials/issuing/token-endpoint.ts';

const jwt = (claims: unknown) => `eyJhbGciOiJub25lIn0.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.sig`;

describe('accountOf (the account an id_token names, for the wallet)', () => {
  it('takes email, else preferred_username, else sub', () => {
    expect(accountOf(jwt({ sub: 'u1', email: 'a@example.test', preferred_username: 'al' }))).toBe('a@example.test');
    expect(accountOf(jwt({ sub: 'u1', preferred_username: 'al' }))).toBe('al');
    expect(accountOf(jwt({ sub: 'u1' }))).toBe('u1');
  });

  it('gives nothing for no token, a malformed one, or a name that is not printable or too long', () => {
    for (const bad of [
      undefined,
      42,
      '',
      'not-a-jwt',
      'a.%%%.c',
      jwt('text'),
      jwt({ sub: '' }),
      jwt({ sub: 'x\u0000y' }),
      jwt({ sub: 'x\ny' }),
      jwt({ sub: 'x'.repeat(201) }),
    ]) {
      expect(accountOf(bad)).toBeUndefined();
    }
  });
});
