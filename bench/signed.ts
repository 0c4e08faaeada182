// s8 and s9: what signing costs keyway. Each runs the same load through keyway twice per round, once
// on the bearer grant (MAIN_HOST) and once on the aws_sigv4 grant (AWS_HOST), the order alternating
// round by round, so that drift in the machine's load touches both alike; the comparison is within
// the pair, not with s2 or s4 run minutes earlier.
//   s8: s2's load, small GETs sent unsigned: keyway signs each (no x-amz-content-sha256 on a GET, so
//       it hashes the empty body). Target: CPU per request at most 1.2x the bearer grant's.
//   s9: s4's 1 MiB uploads with a hex x-amz-content-sha256: keyway holds each body whole and hashes
//       it before it sends a byte upstream (a bearer upload streams through). No target.
import { createHash } from 'node:crypto';
import type { Route } from './clients.ts';
import { AWS_HOST, type Context, type LatencyResult, MAIN_HOST, type Plan, s2Parallel, s4Upload, type ThroughputResult, UPLOAD_PAYLOAD } from './scenarios.ts';

export interface Paired<T> {
  bearer: T;
  sigv4: T;
}

type Grant = keyof Paired<unknown>;

/** Runs `run` on both grants `count` times; even rounds start with the bearer grant, odd ones with SigV4. */
export function pairedRounds<T>(count: number, run: (grant: Grant) => Promise<T>): Promise<Array<Paired<T>>> {
  return alternating(['bearer', 'sigv4'], count, run);
}

/** Runs `run` on both sides `count` times, even rounds starting with the first, odd ones with the second. */
export async function alternating<K extends string, T>(sides: readonly [K, K], count: number, run: (side: K) => Promise<T>): Promise<Array<Record<K, T>>> {
  const out: Array<Record<K, T>> = [];
  for (let i = 0; i < count; i++) {
    const order = i % 2 === 0 ? sides : ([sides[1], sides[0]] as const);
    const round: Partial<Record<K, T>> = {};
    for (const side of order) round[side] = await run(side);
    out.push(round as Record<K, T>);
  }
  return out;
}

/** s8: s2's load through keyway on each grant. */
export function s8SignedGets(keyway: Route, ctx: Context, plan: Plan['s8'], count: number): Promise<Array<Paired<LatencyResult>>> {
  return pairedRounds(count, (grant) => s2Parallel(keyway, ctx, plan, grant === 'bearer' ? MAIN_HOST : AWS_HOST));
}

/** s9: s4's uploads through keyway on each grant; on the SigV4 one the client names the body's SHA-256. */
export function s9SignedUploads(keyway: Route, ctx: Context, plan: Plan['s9'], count: number): Promise<Array<Paired<ThroughputResult>>> {
  const sha256 = createHash('sha256').update(UPLOAD_PAYLOAD).digest('hex');
  const hashed: Route = { ...keyway, headers: () => ({ ...keyway.headers(), 'x-amz-content-sha256': sha256 }) };
  return pairedRounds(count, (grant) => (grant === 'bearer' ? s4Upload(keyway, ctx, plan) : s4Upload(hashed, ctx, plan, AWS_HOST)));
}
