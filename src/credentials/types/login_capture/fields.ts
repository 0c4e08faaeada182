import { z } from 'zod';
import { parseDomainPatternStrict } from '../../../config/domain-breadth.ts';
import { byteSizeText } from '../values.ts';
import type { GrantTypeFields } from '../type-fields.ts';
import { TOKEN_FIELDS } from './fields/token-fields.ts';

// login_capture (capture/): the agent logs in itself, and the tokens its token endpoint
// answers with are swapped for placeholders on their way back; the real ones stay sealed in the
// store, and go on the agent's requests to the grant's domains in place of the placeholders.

export { TOKEN_FIELDS } from './fields/token-fields.ts';

const HEADER = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$/;
const FIELD = /^[A-Za-z0-9_-]{1,64}(\.[A-Za-z0-9_-]{1,64}){0,3}$/;

const endpoint = z.strictObject({
  // One host, exact: where the token endpoint is (a pattern would watch hosts nobody named).
  host: z.string().check((ctx) => {
    const parsed = parseDomainPatternStrict(ctx.value);
    if (typeof parsed === 'string') ctx.issues.push({ code: 'custom', input: ctx.value, message: parsed });
    else if (ctx.value.includes('*')) ctx.issues.push({ code: 'custom', input: ctx.value, message: 'expected one host, with no wildcard' });
  }),
  path: z
    .string()
    .regex(/^\/[^?#\s]*$/, 'expected a path such as /oauth/token, with no query')
    .max(512),
});

export const loginCapture = {
  type: 'login_capture',
  shape: {
    // The agent (or agents) the captured tokens belong to: only they may log in and use them
    // through this grant. Absent: any agent the grant is given to (agents.X.grants), each its own.
    agent: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'expected an agent id')
      .optional(),
    agents: z
      .array(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'expected an agent id'))
      .min(1)
      .max(256)
      .optional(),
    capture: z
      .strictObject({
        endpoints: z.array(endpoint).min(1, 'expected at least one token endpoint: {host, path}').max(32),
        fields: z
          .array(z.string().regex(FIELD, 'expected an answer field name, such as access_token (a.b for a nested one)'))
          .min(1)
          .max(16)
          .default([...TOKEN_FIELDS]),
        // Response headers whose value is a token to capture at a watched endpoint (Keystone's
        // X-Subject-Token, an Authorization: Bearer answer): swapped for a placeholder as a body field is.
        headers: z.array(z.string().regex(HEADER, 'expected a header name, such as x-subject-token')).max(16).optional(),
        // What is no credential at a watched endpoint though it looks like one (a long id, a URL, a
        // load balancer's cookie): passed to the agent as it came. Anything else credential-shaped
        // that the grant does not capture refuses the answer.
        pass: z
          .strictObject({
            fields: z.array(z.string().regex(FIELD, 'expected an answer member name (a.b for a nested one)')).max(64).optional(),
            headers: z.array(z.string().regex(HEADER, 'expected a header name')).max(64).optional(),
            cookies: z
              .array(z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$/, 'expected a cookie name'))
              .max(64)
              .optional(),
          })
          .optional(),
        // Where a placeholder resolves on the agent's requests. Absent: Authorization on the grant's
        // domains (and each captured header's own name), id_token_hint on the login hosts. The
        // refresh token resolves only in a refresh at a watched endpoint, whatever this says.
        resolve: z
          .array(
            z.strictObject({
              host: z
                .string()
                .check((ctx) => {
                  const parsed = parseDomainPatternStrict(ctx.value);
                  if (typeof parsed === 'string') ctx.issues.push({ code: 'custom', input: ctx.value, message: parsed });
                })
                .optional(),
              path: z
                .string()
                .regex(/^\/[^?#\s*]*\*?$/, 'expected a path such as /v1/me, or a prefix ending in *')
                .max(512)
                .optional(),
              in: z.enum(['header', 'query', 'body']),
              name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'expected a header, parameter or member name'),
              fields: z.array(z.string().regex(FIELD)).min(1).max(16).optional(),
            }),
          )
          .max(32)
          .optional(),
        // The largest answer read on a capture host (token answers are a few KiB).
        max_body: byteSizeText.default('1MiB'),
        // The agent's connections to hosts no grant covers are read too (TLS terminated, nothing
        // injected), so a placeholder sent there is refused and audited; false: tunnelled blind.
        guard_other_hosts: z.boolean().default(true),
      })
      .optional()
      .meta({
        description:
          'endpoints: the token endpoints watched ({host, path}); fields: the answer fields swapped for placeholders (default access_token, refresh_token, id_token); headers: answer headers captured the same way; pass: {fields, headers, cookies} that are no credential; resolve: [{host?, path?, in: header | query | body, name, fields?}] where placeholders resolve; max_body: the largest answer read on a capture host; guard_other_hosts: the agent’s connections to hosts no grant covers are read for placeholders (default true)',
      }),
  },
  secretRequired: false,
  noInject: 'a login_capture grant resolves the placeholders where the agent puts them (Authorization, body fields); it has no inject settings',
  check(grant, fail) {
    if (grant['capture'] === undefined) fail('capture', 'expected capture: {endpoints: [{host, path}]}: the token endpoints to watch');
    if (grant['agent'] !== undefined && grant['agents'] !== undefined) fail('agents', 'name the agent with agent or agents, not both');
  },
  configCheck(grant, fail) {
    if (grant.secret !== undefined) fail('secret', 'a login_capture grant has no secret: its tokens are captured from the agent’s own login');
  },
} satisfies GrantTypeFields<'login_capture'>;
