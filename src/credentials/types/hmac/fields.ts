import { byteSizeText } from '../values.ts';
import { hmacSignSchema } from './fields/sign-schema.ts';
import type { GrantTypeFields } from '../type-fields.ts';

// hmac (signing/): the scheme, a preset or described as data, and the largest body
// keyway holds to hash.

export const hmac = {
  type: 'hmac',
  shape: { sign: hmacSignSchema.optional(), max_signed_body: byteSizeText.optional() },
  secretRequired: false,
  noInject: 'an hmac grant signs each request; it has no inject settings',
  // `keyway grants add` asks for --sign-preset or --sign in its own words (operations/grants.ts).
  configCheck(grant, fail) {
    if (grant['sign'] === undefined) fail('sign', 'an hmac grant needs sign: {preset: NAME} or the scheme (see docs/credentials.md, "Signed requests")');
  },
} satisfies GrantTypeFields<'hmac'>;
