import { z } from 'zod';
import type { GrantTypeFields } from '../type-fields.ts';
import { renewFloorText, tokenServiceUrl } from '../values.ts';

// dpop (RFC 9449): OAuth access tokens bound to a key keyway holds. keyway asks `token_endpoint`
// for tokens with the grant's client (client credentials), each request with a fresh proof, and
// every request to the grant's domains carries `Authorization: DPoP` and a proof of its own.

export const dpop = {
  type: 'dpop',
  shape: {
    token_endpoint: tokenServiceUrl.optional(),
    dpop: z.strictObject({ alg: z.enum(['ES256', 'EdDSA']).default('ES256') }).default({ alg: 'ES256' }),
    scopes: z.array(z.string().min(1)).max(64).optional(),
    renew_floor: renewFloorText,
  },
  secretRequired: false,
  noInject: 'a dpop grant puts its token and proof on each request itself; it has no inject settings',
  check(grant, fail) {
    if (grant['token_endpoint'] === undefined) fail('token_endpoint', 'a dpop grant needs token_endpoint: where it asks for tokens');
  },
} satisfies GrantTypeFields<'dpop'>;
