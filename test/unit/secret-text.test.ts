// A pasted secret's two mistakes (issue 48): keyway's own placeholder, and a token with the prefix
// the injection adds itself. Refused where the secret comes in; the message never quotes it.
import { describe, expect, it } from 'vitest';
import { injectedPrefix, secretTextProblem } from '../../src/credentials/secret-text.ts';
import { parseSecretInput } from '../../src/operations/secret-input.ts';

describe('secretTextProblem', () => {
  it('refuses a bearer token pasted with "Bearer ", in any case, and one with "token " where the format adds it', () => {
    expect(secretTextProblem('bearer', undefined, 'Bearer ghp_kw-secret-1')).toMatch(/begins with "Bearer ", which keyway adds itself/);
    expect(secretTextProblem('bearer', undefined, 'bearer  ghp_kw-secret-1')).toBeDefined();
    expect(secretTextProblem('api_key', 'token {secret}', 'token ghp_kw-secret-1')).toMatch(/begins with "token "/);
    expect(secretTextProblem('bearer', undefined, 'Bearer ghp_kw-secret-1')).not.toContain('kw-secret');
  });

  it('takes the token alone, and a prefix the format does not add', () => {
    expect(secretTextProblem('bearer', undefined, 'ghp_kw-secret-1')).toBeUndefined();
    expect(secretTextProblem('api_key', undefined, 'Bearer kw-secret-1')).toBeUndefined(); // api_key adds nothing: the value is the header's
    expect(secretTextProblem('bearer', '{secret}', 'Bearer kw-secret-1')).toBeUndefined();
    expect(secretTextProblem('bearer', undefined, 'Bearerish-token')).toBeUndefined();
    expect(injectedPrefix('bearer', undefined)).toBe('Bearer ');
  });

  it("refuses keyway's own placeholder", () => {
    expect(secretTextProblem('bearer', undefined, 'keyway-placeholder')).toMatch(/keyway's placeholder/);
    // The shaped one keyway env gives GH_TOKEN (issue 86) is a placeholder too, not a token.
    expect(secretTextProblem('bearer', undefined, 'ghp_keywayplaceholder0000000000000000000')).toMatch(/keyway's placeholder/);
    expect(secretTextProblem('api_key', undefined, 'keyway-placeholder-github')).toMatch(/keyway's placeholder/);
  });

  it('keyway secrets set and grants add refuse them (usage), never quoting the input', () => {
    expect(() => parseSecretInput('bearer', 'Bearer ghp_kw-secret-2')).toThrow(/the secret: it begins with "Bearer "/);
    expect(() => parseSecretInput('bearer', 'Bearer ghp_kw-secret-2')).not.toThrow(/kw-secret/);
    expect(() => parseSecretInput('bearer', 'keyway-placeholder')).toThrow(/placeholder/);
    expect(parseSecretInput('bearer', 'ghp_kw-secret-2')).toBe('ghp_kw-secret-2');
  });
});

describe('a config secret (env:NAME) with either mistake', () => {
  it('is refused at load, naming the grant and the variable, never the value', async () => {
    const { parseConfig } = await import('../../src/config/load.ts');
    const { buildGrants } = await import('../../src/credentials/grant-table.ts');
    const config = parseConfig({ grants: { github: { type: 'bearer', domains: ['api.github.com'], secret: 'env:GITHUB_TOKEN' } } }, '/nonexistent-home');
    const store = { get: () => undefined, list: () => [], entries: () => [] } as unknown as Parameters<typeof buildGrants>[1];
    // A shell where `eval "$(keyway env)"` ran holds the placeholder.
    expect(() => buildGrants(config, store, { GITHUB_TOKEN: 'keyway-placeholder' })).toThrow(
      /grants\.github\.secret: environment variable GITHUB_TOKEN: it is keyway's placeholder/,
    );
    expect(() => buildGrants(config, store, { GITHUB_TOKEN: 'Bearer ghp_kw-secret-3' })).toThrow(/environment variable GITHUB_TOKEN: it begins with "Bearer "/);
    expect(() => buildGrants(config, store, { GITHUB_TOKEN: 'Bearer ghp_kw-secret-3' })).not.toThrow(/kw-secret/);
    expect(buildGrants(config, store, { GITHUB_TOKEN: 'ghp_kw-secret-3' }).has('github')).toBe(true);
  });
});
