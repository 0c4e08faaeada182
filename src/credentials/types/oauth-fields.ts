import type { GrantTypeFields } from './type-fields.ts';
import { renewFloorText } from './values.ts';

// OAuth 2.0: tokens come from the grant's provider (its token endpoint), refreshed by keyway.

/** The keys of an OAuth type: how often a 401 may refresh; a command that prints a static secret is a mistake here. */
export function oauthType<T extends 'oauth2' | 'client_credentials'>(type: T) {
  return {
    type,
    shape: { renew_floor: renewFloorText },
    secretRequired: false,
    configCheck(grant, fail) {
      if (grant.secret?.kind === 'cmd' || grant.secret?.kind === 'source') {
        const what = grant.secret.kind === 'cmd' ? 'a command prints' : 'a secret source holds';
        fail('secret', `${what} a static secret; an ${type} grant gets its tokens from its provider (use type: bearer for a static token)`);
      }
    },
  } satisfies GrantTypeFields<T>;
}
