import { z } from 'zod';
import type { GrantTypeFields } from '../type-fields.ts';
import { renewFloorText, tokenServiceUrl } from '../values.ts';

// private_key_jwt (RFC 7523 2.2, OpenID Connect's client authentication of that name): keyway asks
// `token_endpoint` for tokens by client credentials as `client_id`, proving the client with a JWT
// it signs with the grant's secret (a private key) for each token request. `key_id` is the kid the
// server knows the public key by.

export const privateKeyJwt = {
  type: 'private_key_jwt',
  shape: {
    token_endpoint: tokenServiceUrl.optional(),
    client_id: z.string().min(1).max(500).optional(),
    key_id: z.string().min(1).max(200).optional(),
    scopes: z.array(z.string().min(1)).max(64).optional(),
    renew_floor: renewFloorText,
  },
  secretRequired: false,
  check(grant, fail) {
    if (grant['token_endpoint'] === undefined) fail('token_endpoint', 'a private_key_jwt grant needs token_endpoint: where it asks for tokens');
    if (grant['client_id'] === undefined) fail('client_id', 'a private_key_jwt grant needs client_id: the client its assertions name');
  },
} satisfies GrantTypeFields<'private_key_jwt'>;
