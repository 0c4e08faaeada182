import type { GrantTypeFields } from './type-fields.ts';

// The types whose secret is the credential itself, sent as it is: no keys of their own.

export const bearer = { type: 'bearer', shape: {}, secretRequired: true } satisfies GrantTypeFields<'bearer'>;

export const jwt = { type: 'jwt', shape: {}, secretRequired: true } satisfies GrantTypeFields<'jwt'>;

export const apiKey = {
  type: 'api_key',
  shape: {},
  secretRequired: true,
  // An API key has no standard place: the grant says where it goes.
  configCheck(grant, fail) {
    if (!grant.inject?.header && !grant.inject?.query && !grant.inject?.body) {
      fail('inject', 'an api_key grant needs inject.header (with format), inject.query or inject.body');
    }
  },
} satisfies GrantTypeFields<'api_key'>;

export const basic = {
  type: 'basic',
  shape: {},
  secretRequired: true,
  configCheck(grant, fail) {
    if (grant.inject?.body) fail('inject', 'a basic grant has a username and password, not one secret to put in a body');
  },
} satisfies GrantTypeFields<'basic'>;
