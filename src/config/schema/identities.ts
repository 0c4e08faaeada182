import { isAbsolute } from 'node:path';
import { z } from 'zod';
import { GRANT_ID, IDENTITY_ALGORITHMS } from '../ids.ts';
import { durationWithin, httpsUrl } from './values.ts';

// identities: issuers whose signed tokens (JWT) an agent may present as its proxy password instead
// of a static key: a Kubernetes service-account token, a SPIFFE JWT-SVID, a CI runner's OIDC token.
// Each names who signs (issuer, and where its public keys are), whom the token must be for
// (audience), and rules that map the token's claims to one of keyway's agents (src/identity-tokens/).

const claimName = z.string().min(1, 'expected a claim name such as sub, repository or kubernetes.io.namespace');

const mapRuleSchema = z.strictObject({
  // Every claim named must match (a glob: `*` is any run of characters; anything else is literal).
  // At least one: an issuer such as GitHub Actions signs for every repository on GitHub, so a rule
  // without a claim would let any of them in.
  claims: z
    .record(claimName, z.string().min(1, 'expected a value or glob'))
    .refine((claims) => Object.keys(claims).length > 0, 'expected at least one claim to match (sub, repository, …): an issuer signs for others too'),
  agent: z.string().regex(GRANT_ID, 'expected an agent id of a-z, 0-9 and -'),
});

export const identitySchema = z
  .strictObject({
    // The token's `iss`, exactly. Its keys come from `jwks`, else from its OpenID discovery document.
    issuer: httpsUrl,
    // The issuer's public keys: an https:// URL, or a file (absolute, or relative to the home).
    jwks: z
      .string()
      .refine((text) => !/^[a-z][a-z0-9+.-]*:/i.test(text) || httpsUrl.safeParse(text).success || isAbsolute(text), {
        message: 'expected an https:// URL (http:// only on loopback) or a file path',
      })
      .optional(),
    // The token must name one of these in `aud`.
    audience: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).transform((a) => (typeof a === 'string' ? [a] : a)),
    // How far `exp`, `nbf` and `iat` may be off keyway's clock.
    clock_skew: durationWithin(0, 5 * 60_000).default(60_000),
    // The longest a token may live, exp - iat (exp - now when it has no iat): a token with no cap is a
    // key that never runs out once stolen. Up to a year for clusters that extend service-account tokens.
    max_token_lifetime: durationWithin(60_000, 366 * 86_400_000).default(86_400_000),
    // Narrower than the default list, if the issuer is known to sign with one algorithm only.
    algorithms: z.array(z.enum(IDENTITY_ALGORITHMS)).min(1).optional(),
    // First rule whose claims all match names the agent; a token no rule maps is refused.
    map: z.array(mapRuleSchema).min(1, 'expected at least one rule mapping claims to an agent'),
  })
  .check((ctx) => {
    // The token's iss is compared as written: a trailing slash is part of it.
    if (ctx.value.issuer.includes('#') || ctx.value.issuer.includes('?')) {
      ctx.issues.push({ code: 'custom', input: ctx.value.issuer, path: ['issuer'], message: 'an issuer has no query or fragment' });
    }
  });

export const identitiesSchema = z
  .array(identitySchema)
  .default([])
  .check((ctx) => {
    const seen = new Set<string>();
    ctx.value.forEach((identity, i) => {
      if (seen.has(identity.issuer)) {
        ctx.issues.push({
          code: 'custom',
          input: identity.issuer,
          path: [i, 'issuer'],
          message: `${identity.issuer} is listed twice: put both maps under one entry`,
        });
      }
      seen.add(identity.issuer);
    });
  });

export type IdentityConfig = z.output<typeof identitySchema>;
