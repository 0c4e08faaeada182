import { z } from 'zod';
import { parseSecretRef, type SecretRef } from '../../../config/secret-ref.ts';
import type { GrantTypeFields } from '../type-fields.ts';
import { renewFloorText, tokenServiceUrl } from '../values.ts';

// token_exchange (RFC 8693): keyway trades a subject token at `token_endpoint` for a token to
// `audience`, acting for that subject, with the grant's secret (a client id and secret) as the
// client that asks. The subject is the agent's identity token (`identity`, from config
// identities:) or a token the config names (`{secret: env:NAME | file:PATH}`).

/** A reference, never the token itself. */
const tokenRef = z.string().transform((text, ctx): SecretRef => {
  const ref = parseSecretRef(text);
  if (ref === undefined) {
    ctx.addIssue({ code: 'custom', message: 'expected a reference, env:NAME or file:PATH (never the token itself)' });
    return z.NEVER;
  }
  return ref;
});

const TOKEN_TYPE_NAMES = ['access_token', 'jwt', 'id_token', 'refresh_token'] as const;

export const tokenExchange = {
  type: 'token_exchange',
  shape: {
    token_endpoint: tokenServiceUrl.optional(),
    subject: z.union([z.literal('identity'), z.strictObject({ secret: tokenRef })]).default('identity'),
    subject_token_type: z.enum(TOKEN_TYPE_NAMES).default('jwt'),
    audience: z.union([z.string().min(1), z.array(z.string().min(1)).min(1).max(16)]).optional(),
    resource: z.array(z.string().min(1)).max(16).optional(),
    scope: z.array(z.string().min(1)).max(64).optional(),
    requested_token_type: z.enum(TOKEN_TYPE_NAMES).optional(),
    renew_floor: renewFloorText,
  },
  secretRequired: false,
  check(grant, fail) {
    if (grant['token_endpoint'] === undefined) fail('token_endpoint', 'a token_exchange grant needs token_endpoint: the URL it exchanges tokens at');
  },
} satisfies GrantTypeFields<'token_exchange'>;
