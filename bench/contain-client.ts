// The load of bench/contain.ts, run as its own process: s1 (small GETs one after another on one
// kept-alive connection) and s2 (64 connections in parallel) against the bench upstream, then one
// line of JSON. --route=proxy goes through keyway by HTTPS_PROXY, as under `keyway run`;
// --route=contained dials the host itself, as a program under `keyway run --contain` does (no
// proxy, no CA option: names resolve inside, the system bundle there holds keyway's CA).
import { Agent } from 'undici';
import { TLS_FIXTURES } from '../test/helpers/fixtures.ts';
import { keywayRoute, type Route, type Tally } from './clients.ts';
import { type Context, s1Sequential, s2Parallel } from './scenarios.ts';
import { VIA_HEADER } from './upstream.ts';

const arg = (name: string): string | undefined => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const routeName = arg('route');
const upstreamPort = Number(arg('port'));
const seconds = Number(arg('seconds') ?? 4);

function containedRoute(): Route {
  return {
    name: 'keyway',
    dispatcher: (connections) =>
      new Agent({ ...(connections === undefined ? {} : { connections }), keepAliveTimeout: 30_000, connect: { timeout: 10_000 }, allowH2: false }),
    headers: () => ({ [VIA_HEADER]: 'keyway' }),
  };
}

const route =
  routeName === 'contained' ? containedRoute() : keywayRoute(process.env['HTTPS_PROXY'] ?? '', process.env['KEYWAY_BENCH_CA'] ?? '', TLS_FIXTURES.ca);
const tally: Tally = { badStatus: 0, badBody: 0 };
const ctx: Context = { upstreamPort, tally, deadline: performance.now() + 60_000, warmupMs: 1000 };
const s1 = await s1Sequential(route, ctx, { bounds: { maxCount: 100_000, maxMs: seconds * 1000 } });
const s2 = await s2Parallel(route, ctx, { connections: 64, bounds: { maxCount: 200_000, maxMs: seconds * 1000 } });
process.stdout.write(`${JSON.stringify({ s1, s2, tally })}\n`);
