import type { GrantTypeFields } from './type-fields.ts';

// OAuth 2.0: tokens come from the grant's provider (its token endpoint), refreshed by keyway.

/** The keys of an OAuth type: none of its own; a command that prints a static secret is a mistake here. */
export function oauthType<T extends 'oauth2' | 'client_credentials'>(type: T) {
  return {
    type,
    shape: {},
    secretRequired: false,
    configCheck(grant, fail) {
      if (grant.secret?.kind === 'cmd' || grant.secret?.kind === 'source') {
        const what = grant.secret.kind === 'cmd' ? 'a command prints' : 'a secret source holds';
        fail('secret', `${what} a static secret; an ${type} grant gets its tokens from its provider (use type: bearer for a static token)`);
      }
    },
  } satisfies GrantTypeFields<T>;
}
