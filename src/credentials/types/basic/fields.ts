import type { GrantTypeFields } from '../type-fields.ts';

export const basic = {
  type: 'basic',
  shape: {},
  secretRequired: true,
  configCheck(grant, fail) {
    if (grant.inject?.body) fail('inject', 'a basic grant has a username and password, not one secret to put in a body');
  },
} satisfies GrantTypeFields<'basic'>;
