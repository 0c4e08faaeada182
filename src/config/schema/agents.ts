import { z } from 'zod';
import { messageCheck } from '../grant-fields.ts';
import { formatDuration } from '../duration.ts';
import { GRANT_ID } from '../ids.ts';
import { limitsSchema } from '../limits.ts';
import { nearest } from '../messages.ts';
import { globSyntaxError, HTTP_METHOD, WEEKDAYS, parseHours, timeZoneError } from '../rule-syntax.ts';
import { parseCidr } from '../cidr.ts';
import { parseByteSize } from '../byte-size.ts';
import { duration, secretRef, zeroOrDuration } from './values.ts';

// The config's agents and their rules: who may use which grant, how, and when.

/** The longest a held request waits for a person: a client holds a connection open all that time. */
export const MAX_APPROVAL_WAIT_MS = 30 * 60_000;

// Every rule value is checked here, once, so any command that loads the config refuses a bad glob,
// time zone or range (config/rule-syntax.ts); policy/rules.ts compiles values already checked.
export const ruleSchema = z
  .strictObject({
    grant: z.string().regex(GRANT_ID),
    deny: z.boolean().default(false),
    methods: z
      .array(
        z
          .string()
          .toUpperCase()
          .refine((m) => HTTP_METHOD.test(m), { error: (issue) => `"${String(issue.input).toUpperCase()}" is not an HTTP method` }),
      )
      .refine((list) => list.length > 0, 'expected at least one method (leave methods out for any)')
      .optional(),
    // methods may name methods outside the standard set (WebDAV's PROPFIND, a private API's own)
    // only when the rule says so: otherwise a typo (GTE) would refuse every GET in silence.
    custom_methods: z.boolean().default(false),
    paths: z
      .array(z.string().check(messageCheck(globSyntaxError)))
      .refine((list) => list.length > 0, 'expected at least one path glob (leave paths out for any)')
      .optional(),
    hours: z
      .string()
      .check(
        messageCheck((text) => {
          const parsed = parseHours(text);
          return typeof parsed === 'string' ? parsed : undefined;
        }),
      )
      .optional(),
    days: z
      .array(z.enum(WEEKDAYS))
      .refine((list) => list.length > 0, 'expected at least one day (leave days out for every day)')
      .optional(),
    tz: z.string().check(messageCheck(timeZoneError)).optional(),
    sources: z
      .array(
        z.string().check(
          messageCheck((text) => {
            const parsed = parseCidr(text);
            return typeof parsed === 'string' ? parsed : undefined;
          }),
        ),
      )
      .refine((list) => list.length > 0, 'expected at least one address range (leave sources out for any)')
      .optional(),
    max_body: z
      .string()
      .refine((text) => parseByteSize(text) !== undefined, {
        error: (issue) => `expected a size such as 1MiB, 512KiB, 100kB or a number of bytes, got "${String(issue.input)}"`,
      })
      .optional(),
    mode: z.enum(['enforce', 'warn']).optional(),
    // A request this rule allows must say why (X-Keyway-Purpose): 400 purpose_required without.
    require_purpose: z.boolean().optional(),
    // On a grant's MCP endpoints (grants.ID.mcp), per JSON-RPC message (src/mcp/): the tools a
    // tools/call may name (globs, * any run of characters), the arguments it must carry (a glob for
    // a string, else equal), and protocol methods (initialize, tools/list, …) by name.
    tools: z
      .array(z.string().regex(/^[A-Za-z0-9_.*-]{1,128}$/, 'expected a tool name or glob (A-Z, a-z, 0-9, _ - . and *)'))
      .min(1, 'expected at least one tool (leave tools out for any)')
      .optional(),
    args: z
      .record(z.string().min(1).max(128), z.union([z.string().max(1024), z.number(), z.boolean()]))
      .refine((spec) => Object.keys(spec).length > 0, 'expected at least one argument (leave args out for any)')
      .optional(),
    mcp_methods: z
      .array(z.string().regex(/^[A-Za-z0-9_.$/*-]{1,128}$/, 'expected a JSON-RPC method name or glob, such as tools/call or resources/*'))
      .min(1, 'expected at least one method (leave mcp_methods out for any)')
      .optional(),
    // A request this rule allows waits for a person's yes (approvals/): `approval` says how long it
    // waits (0: answered at once with 403 approval_required) and how long a yes covers (0: this request).
    approve: z.literal('human').optional(),
    approval: z
      .strictObject({
        wait: zeroOrDuration
          .refine((ms) => ms <= MAX_APPROVAL_WAIT_MS, { message: `expected at most ${formatDuration(MAX_APPROVAL_WAIT_MS)}` })
          .default(120_000),
        window: zeroOrDuration.default(0),
        // none: no preview of the body anywhere a person is asked (Slack, the webhook, the
        // dashboard, the CLI); only its size, type and hash. For bodies that are secret as a whole.
        preview: z.enum(['redacted', 'none']).default('redacted'),
      })
      .optional(),
  })
  .check((ctx) => {
    if (!ctx.value.custom_methods) {
      for (const [index, method] of (ctx.value.methods ?? []).entries()) {
        if (STANDARD_METHODS.includes(method)) continue;
        const near = nearest(
          method,
          STANDARD_METHODS.map((m) => m.toLowerCase()),
        );
        ctx.issues.push({
          code: 'custom',
          input: method,
          path: ['methods', index],
          message: `"${method}" is not a standard HTTP method${near ? `; did you mean ${near.toUpperCase()}?` : ''} (a method of your own: set custom_methods: true on the rule)`,
        });
      }
    }
    if (ctx.value.approval !== undefined && ctx.value.approve === undefined) {
      ctx.issues.push({
        code: 'custom',
        input: ctx.value,
        path: ['approval'],
        message: 'approval says how a person approves: it needs approve: human beside it',
      });
    }
    if (ctx.value.deny && ctx.value.approve !== undefined) {
      ctx.issues.push({
        code: 'custom',
        input: ctx.value,
        path: ['approve'],
        message: 'approve belongs on an allow rule (a deny rule refuses whoever approves)',
      });
    }
    if (ctx.value.deny && ctx.value.require_purpose !== undefined) {
      ctx.issues.push({
        code: 'custom',
        input: ctx.value,
        path: ['require_purpose'],
        message: 'require_purpose belongs on an allow rule (a deny rule refuses whatever the purpose)',
      });
    }
    // A deny rule's conditions say what to refuse; "refuse bodies up to N" is never what is meant.
    if (ctx.value.deny && ctx.value.max_body !== undefined) {
      ctx.issues.push({ code: 'custom', input: ctx.value, path: ['max_body'], message: 'max_body belongs on an allow rule (it caps what the rule allows)' });
    }
  });

export const agentSchema = z
  .strictObject({
    // Optional only for an agent that signs in with an identity token (identities:, checked in config.ts).
    key: secretRef.optional(),
    grants: z.array(z.string().regex(GRANT_ID)).optional(),
    lease_ttl: duration.optional(),
    max_lease_ttl: duration.optional(),
    mode: z.enum(['enforce', 'warn']).default('enforce'),
    rules: z.array(ruleSchema).default([]),
    // This agent's requests (config/limits.ts); grant_limits: its requests through one grant.
    limits: limitsSchema.optional(),
    grant_limits: z.record(z.string().regex(GRANT_ID), limitsSchema).optional(),
    // The generations this agent may mint below it (src/delegation/terms.ts; 1 unless said): 0
    // forbids it to delegate at all; 3 is the longest chain keyway resolves (MAX_DEPTH there).
    delegation: z.strictObject({ depth: z.number().int().min(0).max(3) }).optional(),
  })
  .check((ctx) => {
    const agent = ctx.value;
    const fail = (path: (string | number)[], message: string) => ctx.issues.push({ code: 'custom', input: agent, path, message });
    // A rule on a grant the agent may not use is a typo that would leave the real grant open.
    agent.rules.forEach((rule, i) => {
      if (agent.grants && !agent.grants.includes(rule.grant)) {
        fail(['rules', i, 'grant'], `"${rule.grant}" is not one of this agent's grants (${agent.grants.join(', ')})`);
      }
    });
    const usable = grantsOf(agent);
    for (const grant of Object.keys(agent.grant_limits ?? {})) {
      if (usable && !usable.includes(grant)) {
        const which = agent.grants ? "this agent's grants" : "the grants this agent's rules name (it has no grants: list)";
        fail(['grant_limits', grant], `"${grant}" is not one of ${which} (${usable.join(', ')})`);
      }
    }
    // A lease_ttl longer than max_lease_ttl could never be granted as written.
    if (agent.lease_ttl !== undefined && agent.lease_ttl <= 0) fail(['lease_ttl'], 'expected a positive duration');
    if (agent.max_lease_ttl !== undefined && agent.max_lease_ttl <= 0) fail(['max_lease_ttl'], 'expected a positive duration');
    if (agent.lease_ttl !== undefined && agent.max_lease_ttl !== undefined && agent.lease_ttl > agent.max_lease_ttl) {
      fail(['lease_ttl'], `${formatDuration(agent.lease_ttl)} is longer than max_lease_ttl ${formatDuration(agent.max_lease_ttl)}`);
    }
  })
  // Default deny: the grants an agent may use are what its config says. With no grants: list, an
  // agent with rules may use the grants its rules name (allow or deny rules), and no other; one
  // with neither may use every grant. Before, rules limited only the grants they named and every
  // other grant was open: a config that wrote rules for one grant meant that grant (docs/upgrading.md).
  .transform((agent) => ({ ...agent, grants: grantsOf(agent) }));

/** The grants an agent may use: its list, else those its rules name, else undefined (every grant). */
function grantsOf(agent: { grants?: string[] | undefined; rules: ReadonlyArray<{ grant: string }> }): string[] | undefined {
  if (agent.grants !== undefined) return agent.grants;
  return agent.rules.length === 0 ? undefined : [...new Set(agent.rules.map((rule) => rule.grant))];
}

/** RFC 9110's methods, PATCH (RFC 5789) and QUERY (the safe method with a body): what a rule may name without custom_methods. */
const STANDARD_METHODS: readonly string[] = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT', 'QUERY'];
