import { z } from 'zod';
import { parseDuration } from '../../../config/duration.ts';
import type { GrantTypeFields } from '../type-fields.ts';

// http_signature: RFC 9421 HTTP Message Signatures on each request, with the grant's secret (an
// Ed25519 or P-256 private key, PEM) as the key. `sign:` says what the signature covers and how it
// names itself; Web Bot Auth is `tag: web-bot-auth` with a `signature_agent`.

/** A covered component as written: `@method`, `content-digest`, `"signature-agent";key="sig1"`. */
const component = z
  .string()
  .min(1)
  .max(200)
  .regex(/^(?:@[a-z-]+|"?[a-z0-9!#$%&'*+.^_`|~-]+"?(?:;[a-z]+(?:="[^"]*")?)*)$/, 'expected @method, @authority, @path, … or a header name in lower case');

export const httpSignature = {
  type: 'http_signature',
  shape: {
    sign: z
      .strictObject({
        /** The keyid parameter; default: the key's JWK thumbprint (RFC 7638), as Web Bot Auth names keys. */
        key: z.string().min(1).max(200).optional(),
        alg: z.enum(['ed25519', 'ecdsa-p256-sha256']),
        components: z.array(component).min(1).max(32).default(['@method', '@authority', '@path']),
        tag: z.string().min(1).max(100).optional(),
        /** Web Bot Auth: the Signature-Agent header's URL (where the key directory is), sent and signed. */
        signature_agent: z
          .string()
          .refine((text) => /^https:\/\/[^\s"]+$/.test(text), 'expected an https:// URL')
          .optional(),
        /** How long a signature is good for (the expires parameter): 1m by default. */
        expires_in: z
          .string()
          .refine((text) => parseDuration(text) !== undefined, 'expected a duration such as 30s or 5m')
          .default('1m'),
        /** A random nonce per signature (a server that refuses replays asks for one). */
        nonce: z.boolean().default(false),
      })
      // Optional in the shape (hmac's sign: is too, and the OpenAPI document shows either); required by configCheck.
      .optional(),
  },
  secretRequired: false,
  noInject: 'an http_signature grant signs each request; it has no inject settings',
  check(grant, fail) {
    const sign = grant['sign'] as { components?: readonly string[]; signature_agent?: string } | undefined;
    if (sign === undefined) fail('sign', 'an http_signature grant needs sign: {alg, components}');
    else if (sign.components?.some((c) => c.replace(/"/g, '').startsWith('signature-agent')) && sign.signature_agent === undefined)
      fail('sign', 'sign.components covers signature-agent: set sign.signature_agent, the URL keyway sends there');
  },
} satisfies GrantTypeFields<'http_signature'>;

export type HttpSignatureConfig = z.output<(typeof httpSignature)['shape']['sign']>;
