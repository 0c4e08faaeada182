// s2m in turns (bench/ab.ts --scenario=s2m): one keyway build, one process, the model-API grants of
// bench/model-api.ts measured side by side, the order rotating each round, so that drift in the
// machine's load touches every side alike. Prints each turn, the medians, and metered ÷ none per
// round (their median is the figure: issue 63 asks it within 5%). Then checks the ledger: `keyway
// spend --json` per metered grant must count every answer the client got, to the token and to
// 1e-6 USD, or the run exits non-zero (a side that metered nothing would make the A/B meaningless).
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { join, resolve } from 'node:path';
import { cleanEnv, runProcess } from '../test/helpers/keyway.ts';
import { TLS_FIXTURES } from '../test/helpers/fixtures.ts';
import { keywayRoute, type Tally } from './clients.ts';
import { benchHosts, keywayBenchOptions, newOAuthClient } from './keyway-bench.ts';
import { GC_SAVE_MS, gcBySide, gcObserverArgs } from './gc-sides.ts';
import { type KeywayChild, startKeywayChild } from './keyway-child.ts';
import { ANSWER_USAGE, ANSWER_USD, MODEL_BUDGETS, MODEL_GRANTS, type ModelSide, messagesLoad, modelGrantSteps } from './model-api.ts';
import { processCpuMs } from './proc.ts';
import { type Context, FULL_PLAN as PLAN, rotate, s2Parallel, timedLoad } from './scenarios.ts';
import { geometricInterval, median } from './stats.ts';
import { startBenchUpstream } from './upstream.ts';

export interface ModelAbOptions {
  /** A checkout with a built dist/. */
  dir: string;
  pairs: number;
  seconds: number;
  /** SSE answers instead of JSON ones. */
  stream: boolean;
  /** A third side: the metered grant under a (never reached) usd budget. */
  budget: boolean;
  /** Only these sides (a profile of one side alone); default: none and metered, and budget with `budget`. */
  sides?: readonly ModelSide[] | undefined;
  /** Write a V8 CPU profile of keyway into this folder (node --cpu-prof). */
  profileDir?: string | undefined;
  /** keyway on this CPU alone (ab.ts --pin has put this process on the others). */
  pinnedCpu?: number | undefined;
  /**
   * Each side keeps its connections for the whole run (--keep), so a turn is only the load, with no
   * handshakes and no warm-up of its own: turns can then be short and many, which is what narrows
   * the per-round spread (it moves turn to turn, not over the run).
   */
  keep?: boolean | undefined;
  /** Node options for keyway, after its own (ab.ts --a-node-args): a GC flag, a preload that records GC. */
  nodeArgs?: readonly string[] | undefined;
  /** Count garbage collections per side (gc-observer.cjs preloaded; gc-sides.ts). */
  gc?: boolean | undefined;
}

interface Turn {
  rps: number;
  cpuPerReqMs: number;
  p50: number;
}

/** An untimed turn per side before the rounds. */
const WARMUP_MS = 3000;

/** The ledger's flush interval is 500 ms (spend/ledger/ledger.ts): wait past two. */
const LEDGER_SETTLE_MS = 1200;

export async function modelAb(o: ModelAbOptions): Promise<boolean> {
  const secret = `kwb-${randomBytes(24).toString('hex')}`;
  const upstream = await startBenchUpstream(secret);
  const sides: readonly ModelSide[] = o.sides ?? (o.budget ? ['none', 'metered', 'budget'] : ['none', 'metered']);
  const cli = join(resolve(o.dir), 'dist/cli/main.js');
  let child: KeywayChild | undefined;
  try {
    const base = keywayBenchOptions({
      plan: PLAN,
      secret,
      hosts: benchHosts(PLAN),
      oauth: newOAuthClient(),
      tokenUrl: 'https://127.0.0.1:9/unused',
      nodeArgs: [...(o.nodeArgs ?? []), ...(o.gc ? gcObserverArgs() : [])],
      cli,
      profileDir: o.profileDir,
    });
    child = await startKeywayChild({
      ...base,
      hosts: [...base.hosts, ...Object.values(MODEL_GRANTS).map((g) => g.host)],
      setup: [...(base.setup ?? []), ...modelGrantSteps(secret)],
      config: { ...base.config, ...(o.budget ? { budgets: MODEL_BUDGETS } : {}) },
    });
    const pid = child.pid;
    if (o.pinnedCpu !== undefined) execFileSync('taskset', ['--all-tasks', '--pid', '--cpu-list', String(o.pinnedCpu), String(pid)], { stdio: 'ignore' });
    const route = keywayRoute(child.url, child.caPem, TLS_FIXTURES.ca, () => processCpuMs(pid));
    const tally: Tally = { badStatus: 0, badBody: 0 };
    const answers: Record<ModelSide, { answers: number }> = { none: { answers: 0 }, metered: { answers: 0 }, budget: { answers: 0 } };
    const turns: Array<Partial<Record<ModelSide, Turn>>> = [];
    const plan = { connections: 64, bounds: { maxCount: 200_000, maxMs: o.seconds * 1000 } };
    console.log(
      `s2m (${o.stream ? 'SSE' : 'JSON'} answers), sides ${sides.join(', ')}; ${o.pairs} rounds of ${o.seconds} s${o.pinnedCpu === undefined ? '' : `, keyway pinned to CPU ${o.pinnedCpu}`}; load average ${loadAverage()}`,
    );
    const kept = o.keep ? new Map(sides.map((side) => [side, route.dispatcher(plan.connections)])) : undefined;
    const run = (side: ModelSide, load = plan) => {
      const ctx: Context = { upstreamPort: upstream.port, tally, deadline: performance.now() + 120_000, warmupMs: 1000 };
      const requests = messagesLoad(route, ctx, o.stream, answers[side]);
      const dispatcher = kept?.get(side);
      if (dispatcher === undefined) return s2Parallel(route, ctx, load, MODEL_GRANTS[side].host, requests);
      return timedLoad(route, dispatcher, `https://${MODEL_GRANTS[side].host}:${upstream.port}${requests.path}`, requests, load.connections, load.bounds);
    };
    // keyway runs without Maglev (scenarios.ts, FULL_PLAN): its request path reaches optimised code
    // only after some thousands of calls, which the first turn would otherwise pay alone.
    for (const side of sides) await run(side, { ...plan, bounds: { maxCount: 200_000, maxMs: WARMUP_MS } });
    // With a CPU profile: each counted turn's span on the monotonic clock V8's profile uses, so the
    // samples can be split by side (bench/profile-sides.ts): both sides in one process.
    const spans: Array<{ side: ModelSide; startNs: string; endNs: string; requests: number }> = [];
    for (let i = 0; i < o.pairs; i++) {
      const round: Partial<Record<ModelSide, Turn>> = {};
      for (const side of rotate(sides, i)) {
        const startNs = process.hrtime.bigint();
        const r = await run(side);
        spans.push({ side, startNs: String(startNs), endNs: String(process.hrtime.bigint()), requests: r.requests });
        const turn = { rps: r.rps, cpuPerReqMs: (r.cpuMs ?? Number.NaN) / r.requests, p50: r.latencyMs.p50 };
        round[side] = turn;
        console.log(
          `${side.padEnd(7)} turn ${i + 1}: ${turn.rps.toFixed(0)} req/s, keyway CPU ${(turn.cpuPerReqMs * 1000).toFixed(0)} µs/request, p50 ${turn.p50.toFixed(2)} ms`,
        );
      }
      turns.push(round);
    }
    console.log(`load average at the end ${loadAverage()}`);
    if (o.profileDir !== undefined) writeFileSync(join(o.profileDir, 'turns.json'), JSON.stringify(spans));
    if (o.gc) {
      await sleep(GC_SAVE_MS + 500);
      for (const line of gcBySide(pid, spans)) console.log(line);
    }
    for (const side of sides) {
      const list = turns.map((t) => t[side]!);
      console.log(
        `${side.padEnd(7)} median: ${median(list.map((t) => t.rps)).toFixed(0)} req/s, ${(median(list.map((t) => t.cpuPerReqMs)) * 1000).toFixed(0)} µs CPU/request, p50 ${median(list.map((t) => t.p50)).toFixed(2)} ms`,
      );
    }
    for (const side of sides.includes('none') ? sides.filter((s) => s !== 'none') : []) {
      const rps = turns.map((t) => t[side]!.rps / t.none!.rps);
      const cpu = turns.map((t) => t[side]!.cpuPerReqMs / t.none!.cpuPerReqMs);
      const list = (xs: number[]) => xs.map((x) => x.toFixed(3)).join(' ');
      console.log(`${side} ÷ none, per round: req/s ${list(rps)}; CPU/request ${list(cpu)}`);
      console.log(`${side} ÷ none, median of rounds: req/s ${median(rps).toFixed(3)}x, CPU/request ${median(cpu).toFixed(3)}x`);
      const { mean, low, high } = geometricInterval(cpu);
      console.log(`${side} ÷ none, CPU/request, geometric mean of rounds: ${mean.toFixed(3)}x (95% interval ${low.toFixed(3)}-${high.toFixed(3)})`);
    }
    for (const dispatcher of kept?.values() ?? []) await dispatcher.close().catch(() => dispatcher.destroy());
    const bad = tally.badStatus + tally.badBody;
    if (bad > 0) console.log(`bad answers: ${tally.badStatus} status, ${tally.badBody} body (first: ${tally.first}); the figures are not valid`);
    await sleep(LEDGER_SETTLE_MS);
    const counted = await checkLedger(child, cli, sides, answers);
    return bad === 0 && counted;
  } catch (err) {
    if (child) console.error(child.output());
    throw err;
  } finally {
    await child?.stop().catch(() => undefined);
    await upstream.close();
  }
}

/** Each metered grant's spend (keyway spend --json --grant) against the answers its side got whole; the none grant must have none. */
async function checkLedger(child: KeywayChild, cli: string, sides: readonly ModelSide[], answers: Record<ModelSide, { answers: number }>): Promise<boolean> {
  let ok = true;
  for (const side of sides) {
    const { grant } = MODEL_GRANTS[side];
    const ran = await runProcess(
      process.execPath,
      [cli, 'spend', '--json', '--grant', grant, '--home', child.home],
      cleanEnv({ KEYWAY_MASTER_KEY: child.masterKey }),
    );
    if (ran.code !== 0) throw new Error(`keyway spend failed (${ran.code}): ${ran.stderr.trim()}`);
    const totals = (JSON.parse(ran.stdout) as { totals: { requests: number; input_tokens: number; output_tokens: number; cost_usd: number } }).totals;
    const n = side === 'none' ? 0 : answers[side].answers;
    const want = { requests: n, input_tokens: n * ANSWER_USAGE.input_tokens, output_tokens: n * ANSWER_USAGE.output_tokens };
    const exact =
      totals.requests === want.requests &&
      totals.input_tokens === want.input_tokens &&
      totals.output_tokens === want.output_tokens &&
      Math.abs(totals.cost_usd - n * ANSWER_USD) < 1e-6;
    console.log(
      `ledger ${grant}: ${totals.requests} answers, ${totals.input_tokens} in, ${totals.output_tokens} out, $${totals.cost_usd.toFixed(6)}; ` +
        `the client got ${answers[side].answers} answers${side === 'none' ? ' (not metered: none expected)' : ''} — ${exact ? 'exact' : 'MISMATCH'}`,
    );
    ok &&= exact;
  }
  return ok;
}

function loadAverage(): string {
  return loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
}
