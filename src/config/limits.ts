import { z } from 'zod';
import { BURST_RULE, type Limits, MAX_BURST, PER_DAY_RULE, parsePerDay, parseRateText, QUOTA_RULE, RATE_RULE } from './limits-values.ts';

export type { Limits, QuotaLimit, RateLimit } from './limits-values.ts';

// `limits:` on an agent, on a grant, or on an agent for one grant (agents.ID.grant_limits.GRANT):
//
//   limits:
//     rate: 60/min            # N/s | N/min | N/h: the refill rate of a token bucket
//     burst: 20               # the bucket's size: requests that may come at once (default: N)
//     quota:
//       requests: 10000/day   # per UTC day, shared by every keyway process on the store
//       bytes: 2GiB/day       # request and response bodies together, per UTC day
//
// Rates are kept in each process's memory (per replica); quotas in the store.

const rateText = z.string().transform((text, ctx) => {
  const rate = parseRateText(text);
  if (rate === undefined) {
    ctx.addIssue({ code: 'custom', message: RATE_RULE });
    return z.NEVER;
  }
  return rate;
});

const perDay = (what: 'requests' | 'bytes') =>
  z.string().transform((text, ctx) => {
    const amount = parsePerDay(what, text);
    if (amount === undefined) {
      ctx.addIssue({ code: 'custom', message: PER_DAY_RULE[what] });
      return z.NEVER;
    }
    return amount;
  });

export const limitsSchema = z
  .strictObject({
    rate: rateText.optional(),
    burst: z.number().int().min(1).max(MAX_BURST).optional(),
    quota: z
      .strictObject({ requests: perDay('requests').optional(), bytes: perDay('bytes').optional() })
      .refine((q) => q.requests !== undefined || q.bytes !== undefined, { message: QUOTA_RULE })
      .optional(),
  })
  .check((ctx) => {
    if (ctx.value.burst !== undefined && ctx.value.rate === undefined) {
      ctx.issues.push({ code: 'custom', input: ctx.value, path: ['burst'], message: BURST_RULE });
    }
  })
  .transform(
    (given): Limits => ({
      rate: given.rate === undefined ? undefined : { ...given.rate, burst: given.burst ?? given.rate.count },
      quota: given.quota === undefined ? undefined : { requests: given.quota.requests, bytes: given.quota.bytes },
    }),
  );

export type LimitsInput = z.input<typeof limitsSchema>;

/** Parses written limits; a one-line reason naming the key when they are not well-formed. */
export function parseLimits(input: unknown): Limits | string {
  const parsed = limitsSchema.safeParse(input);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  return `${issue.path.length > 0 ? `${issue.path.join('.')}: ` : ''}${issue.message}`;
}
