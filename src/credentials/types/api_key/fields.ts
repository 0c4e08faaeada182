import type { GrantTypeFields } from '../type-fields.ts';

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
