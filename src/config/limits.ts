import { z } from 'zod';
import { parseByteSize } from './byte-size.ts';

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

const PER_MS: Record<string, number> = { s: 1_000, sec: 1_000, min: 60_000, m: 60_000, h: 3_600_000, hour: 3_600_000 };

export interface RateLimit {
  /** Requests per `perMs`. */
  count: number;
  perMs: number;
  /** The bucket's size. */
  burst: number;
  /** As written, for messages. */
  text: string;
}

export interface QuotaLimit {
  requests: number | undefined;
  bytes: number | undefined;
}

export interface Limits {
  rate: RateLimit | undefined;
  quota: QuotaLimit | undefined;
}

const rateText = z.string().transform((text, ctx) => {
  const match = /^\s*(\d{1,9})\s*\/\s*(s|sec|min|m|h|hour)\s*$/.exec(text);
  const count = Number(match?.[1]);
  if (!match || !(count > 0)) {
    ctx.addIssue({ code: 'custom', message: 'expected a rate such as 60/min, 10/s or 1000/h' });
    return z.NEVER;
  }
  return { count, perMs: PER_MS[match[2]!]!, text: `${count}/${match[2]}` };
});

const perDay = (what: 'requests' | 'bytes') =>
  z.string().transform((text, ctx) => {
    const match = /^\s*(.+?)\s*\/\s*day\s*$/.exec(text);
    const amount = match === null ? undefined : what === 'requests' ? (/^\d{1,12}$/.test(match[1]!) ? Number(match[1]) : undefined) : parseByteSize(match[1]!);
    if (amount === undefined || !(amount > 0)) {
      ctx.addIssue({
        code: 'custom',
        message: what === 'requests' ? 'expected a count per day such as 10000/day' : 'expected a size per day such as 2GiB/day',
      });
      return z.NEVER;
    }
    return amount;
  });

export const limitsSchema = z
  .strictObject({
    rate: rateText.optional(),
    burst: z.number().int().min(1).max(1_000_000).optional(),
    quota: z
      .strictObject({ requests: perDay('requests').optional(), bytes: perDay('bytes').optional() })
      .refine((q) => q.requests !== undefined || q.bytes !== undefined, { message: 'expected requests: N/day, bytes: SIZE/day, or both' })
      .optional(),
  })
  .check((ctx) => {
    if (ctx.value.burst !== undefined && ctx.value.rate === undefined) {
      ctx.issues.push({ code: 'custom', input: ctx.value, path: ['burst'], message: 'burst sizes a rate: give rate too' });
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
