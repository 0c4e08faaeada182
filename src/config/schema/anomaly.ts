// anomaly: (issue 90, docs/anomaly.md): which signals are read from each agent's own history, and
// what a signal does: `off` nothing, `alert` the audit line's `signal` (and approvals.notify), `hold`
// a person's yes first (the approvals desk). Per-agent overrides under `agents:` replace the keys
// they name. What each key admits is written here; anything else is refused with its path.
import { z } from 'zod';
import { positiveDuration } from './values.ts';

const DAY_NAMES = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;

const mode = z.enum(['off', 'alert', 'hold']);

// "09-18": from 09:00 up to 18:00; "22-06" wraps past midnight. Hours 0..24.
const hoursSpan = z
  .string()
  .regex(/^\d{1,2}-\d{1,2}$/, 'expected hours as FROM-TO, such as 09-18')
  .transform((text, ctx) => {
    const [from, to] = text.split('-').map(Number) as [number, number];
    if (from > 23 || to > 24 || from === to) {
      ctx.addIssue({ code: 'custom', message: `expected hours FROM-TO with FROM 0..23, TO 0..24 and FROM ≠ TO, got "${text}"` });
      return z.NEVER;
    }
    return { from, to };
  });

// "mon-fri", or a list [mon, wed, fri].
const days = z.union([z.string(), z.array(z.enum(DAY_NAMES)).min(1).max(7)]).transform((value, ctx): number[] => {
  if (Array.isArray(value)) return [...new Set(value.map((d) => DAY_NAMES.indexOf(d)))];
  const m = /^([a-z]{3})-([a-z]{3})$/.exec(value);
  const from = m ? DAY_NAMES.indexOf(m[1] as (typeof DAY_NAMES)[number]) : -1;
  const to = m ? DAY_NAMES.indexOf(m[2] as (typeof DAY_NAMES)[number]) : -1;
  if (from < 0 || to < 0) {
    ctx.addIssue({ code: 'custom', message: `expected days as mon-fri or a list [mon, tue], got "${value.slice(0, 20)}"` });
    return z.NEVER;
  }
  const out: number[] = [];
  for (let d = from; ; d = (d + 1) % 7) {
    out.push(d);
    if (d === to) break;
  }
  return out;
});

const timeZone = z.string().refine((tz) => {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}, 'expected an IANA time zone, such as Europe/Paris or UTC');

const burstSchema = z.strictObject({
  per: positiveDuration.refine((ms) => ms >= 1_000 && ms <= 3_600_000, 'expected a window from 1s to 1h').default(60_000),
  factor: z.number().min(1.5).max(1_000).default(5),
});

const offHoursSchema = z.strictObject({
  hours: hoursSpan.default({ from: 8, to: 19 }),
  days: days.default([1, 2, 3, 4, 5]),
  tz: timeZone.default('UTC'),
});

const signalsSchema = z.strictObject({
  first_use: z.boolean().optional(),
  new_host: z.boolean().optional(),
  new_method: z.boolean().optional(),
  // false: no burst signal; {}: the defaults (per 1m, factor 5).
  burst: z.union([z.literal(false), burstSchema]).optional(),
  // Off unless given: {} reads Monday to Friday, 08-19 UTC.
  off_hours: z.union([z.literal(false), offHoursSchema]).optional(),
});

const overrideSchema = z.strictObject({
  mode: mode.optional(),
  signals: signalsSchema.optional(),
});

export const anomalySchema = z
  .strictObject({
    mode: mode.default('off'),
    signals: signalsSchema.prefault({}),
    // How long a held request waits for a person (then 403 approval_expired).
    wait: positiveDuration.refine((ms) => ms <= 3_600_000, 'expected at most 1h').default(120_000),
    // Anomaly holds waiting at once per agent: past it, 429 rate_limited at once (a flood of holds is bounded).
    max_holds_per_agent: z.number().int().min(1).max(100).default(3),
    agents: z.record(z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'expected an agent name'), overrideSchema).default({}),
  })
  .prefault({});

export type AnomalyConfig = z.infer<typeof anomalySchema>;
export type AnomalySignalsConfig = z.infer<typeof signalsSchema>;
