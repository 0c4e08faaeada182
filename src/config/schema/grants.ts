import { z } from 'zod';
import { commonGrantShape, grantUnion } from '../grant-fields.ts';
import { limitsSchema } from '../limits.ts';
import {
  CMD_CACHE_DEFAULT_MS,
  CMD_CACHE_MAX_MS,
  CMD_CACHE_MIN_MS,
  CMD_MAX_ARGS,
  CMD_TIMEOUT_DEFAULT_MS,
  CMD_TIMEOUT_MAX_MS,
  CMD_TIMEOUT_MIN_MS,
  type SecretCommand,
} from '../secret-command.ts';
import type { SecretRef } from '../secret-ref.ts';
import { type SourcedSecret, sourcedSecretSchema } from '../secret-sources.ts';
import { domain, durationWithin, httpsUrl, secretRef, toPattern } from './values.ts';

// The config's grants and the OAuth providers they get tokens from. A grant's keys are described
// in grant-fields.ts and credentials/types/<type>/fields.ts (shared with grants add and the admin API); here they get
// what only the config has: a secret by reference or command, limits, a client certificate.

/** `{cmd: [PROG, ARG…], cache, timeout}`: a grant's secret printed by a command (config/secret-command.ts). */
const secretCommand = z
  .strictObject({
    cmd: z
      .array(
        z
          .string()
          .min(1, { message: 'expected a non-empty word' })
          .refine((w) => !w.includes('\0'), { message: 'a word cannot hold a NUL byte' }),
        {
          error: 'expected a list [PROG, ARG…] (run without a shell)',
        },
      )
      .min(1, { message: 'expected at least the program: [PROG, ARG…]' })
      .max(CMD_MAX_ARGS, { message: `expected at most ${CMD_MAX_ARGS} words` }),
    cache: durationWithin(CMD_CACHE_MIN_MS, CMD_CACHE_MAX_MS).default(CMD_CACHE_DEFAULT_MS),
    timeout: durationWithin(CMD_TIMEOUT_MIN_MS, CMD_TIMEOUT_MAX_MS).default(CMD_TIMEOUT_DEFAULT_MS),
  })
  .transform((c): SecretCommand => ({ kind: 'cmd', argv: Object.freeze([...c.cmd]), cacheMs: c.cache, timeoutMs: c.timeout }));

/**
 * A grant's secret: a reference (env:NAME, file:PATH), a command that prints it, or an item of a
 * secret source ({from, id, key}). Chosen by the value's shape, so that a mistake is named at its
 * own key (secret.cache, secret.cmd.1, secret.id).
 */
const grantSecret = z.unknown().transform((value, ctx): SecretRef | SecretCommand | SourcedSecret => {
  const isObject = typeof value === 'object' && value !== null && !Array.isArray(value);
  const schema = !isObject ? secretRef : Object.hasOwn(value, 'from') ? sourcedSecretSchema : secretCommand;
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  for (const issue of result.error.issues) {
    const message =
      typeof value === 'string' || value === undefined
        ? 'expected env:NAME, file:PATH, {cmd: [PROG, ARG…]} or {from: SOURCE, id: ITEM} (never the secret itself)'
        : issue.message;
    ctx.addIssue({ code: 'custom', message, path: issue.path });
  }
  return z.NEVER;
});

export const providerSchema = z.strictObject({
  authorize_url: httpsUrl.optional(),
  token_url: httpsUrl,
  revoke_url: httpsUrl.optional(),
  device_authorization_url: httpsUrl.optional(),
  scopes: z.array(z.string()).default([]),
  domains: z.array(domain).default([]),
  client_id: z.string().optional(),
  client_secret: secretRef.optional(),
  client_auth: z.enum(['basic', 'body']).default('basic'),
  token_body: z.enum(['form', 'json']).default('form'),
  extra_params: z.record(z.string(), z.string()).default({}),
});

// The grant: every grant's fields and its type's (grant-fields.ts, credentials/types/<type>/fields.ts), with its domains
// parsed and its secret as a reference.
export const grantSchema = grantUnion(
  {
    domains: commonGrantShape.domains.transform((list) => list.map(toPattern)),
    secret: grantSecret.optional(),
    // Every agent's requests through this grant together (config/limits.ts).
    limits: limitsSchema.optional(),
    // A client certificate keyway presents to this grant's hosts (mTLS): PEM files or variables, by
    // reference like the secret. The whole credential of an mtls grant; beside the secret on others.
    client_certificate: z.strictObject({ certificate: secretRef, private_key: secretRef, passphrase: secretRef.optional() }).optional(),
  },
  (grant, fields, fail) => {
    if (grant.inject?.header && grant.inject.query) fail('inject', 'use header or query, not both');
    if (fields.noInject !== undefined && grant.inject !== undefined) fail('inject', fields.noInject);
    if (fields.secretRequired && grant.secret === undefined) fail('secret', 'expected env:NAME or file:PATH (or add the grant with `keyway grants add`)');
    fields.configCheck?.(grant, fail);
  },
);
