import { parseByteSize } from './byte-size.ts';

// The values of `limits:` (config/limits.ts), without zod: the running keyway reads a store agent's
// limits every time it builds its agent table, and zod is the config loader's alone (its 95 modules
// cost a contained run's start, docs/perf/startup.md). The config's schema uses the same text
// parsers and messages; readStoredLimits admits exactly what that schema admits (limits-values.test.ts
// holds the two side by side).

const PER_MS: Record<string, number> = { s: 1_000, sec: 1_000, min: 60_000, m: 60_000, h: 3_600_000, hour: 3_600_000 };
export const MAX_BURST = 1_000_000;

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

export const RATE_RULE = 'expected a rate such as 60/min, 10/s or 1000/h';
export const PER_DAY_RULE = { requests: 'expected a count per day such as 10000/day', bytes: 'expected a size per day such as 2GiB/day' } as const;
export const QUOTA_RULE = 'expected requests: N/day, bytes: SIZE/day, or both';
export const BURST_RULE = 'burst sizes a rate: give rate too';

/** `60/min` as a rate without its burst; undefined when it is not one. */
export function parseRateText(text: string): Omit<RateLimit, 'burst'> | undefined {
  const match = /^\s*(\d{1,9})\s*\/\s*(s|sec|min|m|h|hour)\s*$/.exec(text);
  const count = Number(match?.[1]);
  if (!match || !(count > 0)) return undefined;
  return { count, perMs: PER_MS[match[2]!]!, text: `${count}/${match[2]}` };
}

/** `10000/day` (requests) or `2GiB/day` (bytes) as a positive amount; undefined when it is not one. */
export function parsePerDay(what: 'requests' | 'bytes', text: string): number | undefined {
  const match = /^\s*(.+?)\s*\/\s*day\s*$/.exec(text);
  const amount = match === null ? undefined : what === 'requests' ? (/^\d{1,12}$/.test(match[1]!) ? Number(match[1]) : undefined) : parseByteSize(match[1]!);
  return amount !== undefined && amount > 0 ? amount : undefined;
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
const onlyKeys = (value: Record<string, unknown>, keys: readonly string[]): boolean => Object.keys(value).every((k) => keys.includes(k));

/**
 * A store agent's limits as its record holds them (written through the config's schema, which
 * checked them): the keys and values that schema admits, and nothing else. Anything else, or a
 * record edited by hand into nonsense, is undefined.
 */
export function readStoredLimits(input: unknown): Limits | undefined {
  if (!isRecord(input) || !onlyKeys(input, ['rate', 'burst', 'quota'])) return undefined;
  const { rate, burst, quota } = input;
  if (rate !== undefined && typeof rate !== 'string') return undefined;
  const parsedRate = rate === undefined ? undefined : parseRateText(rate);
  if (rate !== undefined && parsedRate === undefined) return undefined;
  if (burst !== undefined && !(typeof burst === 'number' && Number.isInteger(burst) && burst >= 1 && burst <= MAX_BURST)) return undefined;
  if (burst !== undefined && parsedRate === undefined) return undefined;
  let parsedQuota: QuotaLimit | undefined;
  if (quota !== undefined) {
    if (!isRecord(quota) || !onlyKeys(quota, ['requests', 'bytes'])) return undefined;
    const amount = (what: 'requests' | 'bytes'): number | undefined | false => {
      const given = quota[what];
      if (given === undefined) return undefined;
      return (typeof given === 'string' && parsePerDay(what, given)) || false;
    };
    const requests = amount('requests');
    const bytes = amount('bytes');
    if (requests === false || bytes === false || (requests === undefined && bytes === undefined)) return undefined;
    parsedQuota = { requests, bytes };
  }
  return {
    rate: parsedRate === undefined ? undefined : { ...parsedRate, burst: typeof burst === 'number' ? burst : parsedRate.count },
    quota: parsedQuota,
  };
}
