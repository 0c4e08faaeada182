// Warm-up before keyway serves (issue 92). V8 compiles a function to fast machine code only after it
// has run many times; a fresh keyway therefore served an agent's first few thousand requests
// interpreted, at 2-3x the CPU and +0.1-0.5 ms each against its own later figures. So, before the
// real proxy starts, throwaway keyways (two, one after the other) run the same request path on
// loopback, each with its own temporary home, CA, store and audit log (throwaway-home.ts); one bearer
// grant on a reserved name mapped to an HTTPS server in this process; one agent whose key only this
// process knows (warm-up-config.ts). The code they warm (keyway's modules, undici's, Node's) is shared
// by every keyway in the process, so the real one starts with it compiled. Each throwaway keyway
// stops and its home is removed: nothing is written to the real home and nothing reaches the network.
//
// What it admits: requests with the warm-up agent's key, to the one host; everything else is refused
// (a missing key, a wrong one, another name or address: 407). Bounded in count and in time; any failure ends it early with
// one warning, and start goes on. KEYWAY_WARM_UP=off leaves it out.
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { createAppLogger } from '../log/logger.ts';
import { type CertificateAuthority, LeafMinter } from '../tls/index.ts';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fillThrowawayHome, newThrowawayHome, type ThrowawayHome } from './throwaway-home.ts';
import { WARM_UP_HOST } from './warm-up-config.ts';
import { sendWarmUpTraffic, startWarmUpUpstream, type WarmUpPlan, type WarmUpUpstream } from './warm-up-traffic.ts';

export type { WarmUpPlan } from './warm-up-traffic.ts';

/** Enough for the request path's functions to reach TurboFan at the thresholds keyway runs with (cli/proxy-runtime.ts). */
export const WARM_UP_PLAN: WarmUpPlan = { passes: 2, sequential: 300, parallel: 2500, connections: 16, maxMs: 4000, graceMs: 6000 };

export interface WarmUpResult {
  requests: number;
  /** Throwaway keyways whose requests all ran. */
  passes: number;
  ms: number;
  /** Why it ended before its plan, if it did. */
  stopped?: string | undefined;
}

/**
 * How a keyway is started (app/index.ts's startKeyway, given by the caller: the warm-up sits below
 * the composition root it warms), with the options the warm-up uses.
 */
export type StartThrowaway = (options: {
  home: string;
  env: NodeJS.ProcessEnv;
  logger: Logger;
  announce: false;
  workers: false;
}) => Promise<{ ca: CertificateAuthority; proxyAddress: AddressInfo; stop(options: { drainMs: number }): Promise<void> }>;

export interface WarmUpOptions {
  plan?: WarmUpPlan | undefined;
  /**
   * `keyway start`: a SIGINT or SIGTERM during the warm-up removes its home and exits (130 or 143),
   * as a start would. A worker leaves signals to its primary (app/workers/) and does not set this.
   */
  exitOnSignal?: boolean | undefined;
  /** Told where the first throwaway proxy and its upstream listen, their CA and its agent, while they serve (tests attack them). */
  onListening?: ((at: { proxyPort: number; upstreamPort: number; caPem: string; agent: string; agentKey: string }) => Promise<void>) | undefined;
}

/** Whether keyway warms up: on unless KEYWAY_WARM_UP says off. */
export function warmUpWanted(env: NodeJS.ProcessEnv): boolean {
  const value = env['KEYWAY_WARM_UP']?.trim().toLowerCase();
  return !(value === 'off' || value === '0' || value === 'false' || value === 'no');
}

export async function warmUp(startKeyway: StartThrowaway, logger: Logger, options: WarmUpOptions = {}): Promise<WarmUpResult> {
  const plan = options.plan ?? WARM_UP_PLAN;
  const started = performance.now();
  const deadline = started + plan.maxMs;
  const state: PassState = { home: undefined, running: undefined };
  let requests = 0;
  let passesRun = 0;
  let stopped: string | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    state.home?.remove();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  if (options.exitOnSignal) {
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  }
  // Each pass is a keyway of its own. Code optimised on one keyway's objects alone is thrown away when
  // the next keyway's objects (the real one's) differ from them ("wrong map", a field no longer
  // constant: ~100 deoptimisations in its first second), and runs interpreted again for a while; a
  // second pass takes that on itself, so the real keyway meets code already made for more than one.
  const passes = Math.max(1, plan.passes);
  const share = { ...plan, sequential: Math.ceil(plan.sequential / passes), parallel: Math.ceil(plan.parallel / passes) };
  const run = async () => {
    for (let pass = 0; pass < passes && performance.now() < deadline; pass++) {
      state.home = newThrowawayHome();
      try {
        requests += await warmUpPass(startKeyway, state, share, deadline, pass === 0 ? options.onListening : undefined);
        passesRun++;
      } finally {
        state.home.remove();
        state.home = undefined;
      }
    }
  };
  // Every step inside is bounded; this bounds their sum too (a start or a stop that hangs): the real
  // keyway is never kept waiting past maxMs + graceMs. What hung is stopped in the background.
  let giveUp: NodeJS.Timeout | undefined;
  const outOfTime = new Promise<'late'>((resolve) => {
    giveUp = setTimeout(() => resolve('late'), plan.maxMs + plan.graceMs);
  });
  try {
    const outcome = await Promise.race([run().then(() => 'done' as const), outOfTime]);
    if (outcome === 'late') {
      stopped = `it did not finish within ${plan.maxMs + plan.graceMs} ms`;
      const { running, home } = state;
      void running
        ?.stop({ drainMs: 0 })
        .catch(() => undefined)
        .finally(() => home?.remove());
    } else if (performance.now() >= deadline && passesRun < passes) stopped = `its ${plan.maxMs} ms were up`;
  } catch (err) {
    stopped = (err as Error).message;
  } finally {
    clearTimeout(giveUp);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  const ms = performance.now() - started;
  if (stopped !== undefined) logger.warn({ requests, stopped }, 'the warm-up ended early; keyway starts anyway');
  else logger.info({ requests, passes: passesRun, ms: Math.round(ms) }, `warmed up: ${requests} requests through ${passesRun} throwaway keyways on loopback`);
  return { requests, passes: passesRun, ms, stopped };
}

/** The pass under way: its home (removed on a signal) and its keyway (stopped if the warm-up gives up on it). */
interface PassState {
  home: ThrowawayHome | undefined;
  running: Awaited<ReturnType<StartThrowaway>> | undefined;
}

/** One throwaway keyway in the state's home, its upstream, and the plan's requests through it; stopped after. */
async function warmUpPass(
  startKeyway: StartThrowaway,
  state: PassState,
  plan: WarmUpPlan,
  deadline: number,
  onListening: WarmUpOptions['onListening'],
): Promise<number> {
  const home = state.home!;
  // Random each pass: no other local user can name this agent (and so lock it out with wrong keys).
  const agent = `w${randomBytes(8).toString('hex')}`;
  const agentKey = randomBytes(24).toString('base64url');
  const secret = randomBytes(24).toString('base64url');
  const caPem = await fillThrowawayHome(home, agent);
  const running = await startKeyway({
    home: home.path,
    env: {
      KEYWAY_MASTER_KEY: randomBytes(32).toString('base64'),
      KEYWAY_WARM_UP_SECRET: secret,
      KEYWAY_WARM_UP_AGENT_KEY: agentKey,
      // Its listener is not written to the host's shared registry: no other keyway needs to know of it
      // for its few seconds, and no other user learns its port there.
      KEYWAY_LISTENERS_DIR: join(home.path, 'listeners'),
    },
    logger: createAppLogger({ level: 'silent' }),
    announce: false,
    workers: false,
  });
  state.running = running;
  let upstream: WarmUpUpstream | undefined;
  try {
    upstream = await startWarmUpUpstream(new LeafMinter(running.ca).mint(WARM_UP_HOST), `Bearer ${secret}`);
    const proxyPort = running.proxyAddress.port;
    await onListening?.({ proxyPort, upstreamPort: upstream.port, caPem, agent, agentKey });
    return await sendWarmUpTraffic({ proxyPort, agent, agentKey, caPem, upstreamPort: upstream.port }, plan, deadline);
  } finally {
    upstream?.close();
    await running.stop({ drainMs: 1000 });
    state.running = undefined;
  }
}
