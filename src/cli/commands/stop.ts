import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { formatDuration } from '../../config/index.ts';
import { resolveHome } from '../../paths.ts';
import { isAlive } from '../../running-proxy.ts';
import { parse } from '../args.ts';
import type { Command } from '../command.ts';
import { configFor } from '../context.ts';
import { printJson } from '../io.ts';
import { type FoundProxy, goneNote, lookUpProxies, pickTargets } from '../running-status.ts';

// When the config cannot be read, the default proxy.drain_timeout.
const DEFAULT_DRAIN_MS = 10_000;
// Beyond the drain: closing the store and the audit log, and the exit itself.
const EXIT_GRACE_MS = 5_000;
const POLL_MS = 100;

export const stop: Command = {
  name: 'stop',
  usage: `keyway stop [--pid PID | --all] [--json] [--home DIR]

Stops the keyway running for this home gracefully: sends it SIGTERM, so it stops accepting and lets
requests in flight finish for up to proxy.drain_timeout, then waits for it to exit (drain_timeout
plus ${EXIT_GRACE_MS / 1000}s at most). With several running for the home (\`keyway status\` lists them), say which:
--pid PID, or --all for every one; without either it names them and stops none. Before signalling,
it checks the pid is really keyway (its admin API answers with that pid, or its command line is
keyway's), so a pid reused by another program is never signalled. Exits 1 with one line when no
proxy runs.`,
  async run(argv, io) {
    const args = parse(argv, { pid: { type: 'string' }, all: { type: 'boolean' } });
    const home = resolveHome(args.string('home'), io.env);
    const { running, gone } = await lookUpProxies(home, io.env);
    if (running.length === 0) {
      if (args.json) printJson(io, { stopped: false, running: false, home });
      io.err(`keyway stop: no proxy is running for home ${home}${goneNote(gone)}`);
      return 1;
    }
    const targets = pickTargets(running, args.string('pid'), args.flag('all'), 'stop');
    if (typeof targets === 'string') {
      if (args.json) printJson(io, { stopped: false, running: true, home, pids: running.map((f) => f.proxy.pid) });
      io.err(`keyway stop: ${targets}`);
      return 1;
    }
    const waitMs = drainMs(args, io) + EXIT_GRACE_MS;
    const outcomes = await Promise.all(targets.map((found) => stopOne(found, waitMs)));
    const stopped = outcomes.filter((o) => o.error === undefined).map((o) => o.pid);
    for (const o of outcomes) if (o.error !== undefined) io.err(`keyway stop: ${o.error}`);
    if (args.json) {
      const pid = targets.length === 1 ? { pid: targets[0]!.proxy.pid } : { pids: stopped };
      printJson(io, { stopped: stopped.length === targets.length, ...(stopped.length < targets.length ? { running: true } : {}), home, ...pid });
    } else for (const pid of stopped) io.out(`keyway stopped (pid ${pid})`);
    return stopped.length === targets.length ? 0 : 1;
  },
};

/** SIGTERM to one keyway, confirmed first; resolves when it has exited, or with why not. */
async function stopOne(found: FoundProxy, waitMs: number): Promise<{ pid: number; error?: string }> {
  const { pid } = found.proxy;
  if (found.live === undefined && !commandLineIsKeyway(pid)) {
    return { pid, error: `cannot confirm that pid ${pid} is keyway (${found.why}); stop it yourself with \`kill ${pid}\` if it is` };
  }
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + waitMs;
  while (isAlive(pid) && Date.now() < deadline) await sleep(POLL_MS);
  if (isAlive(pid)) return { pid, error: `pid ${pid} got SIGTERM but is still running after ${formatDuration(waitMs)}; \`kill -9 ${pid}\` ends it at once` };
  return { pid };
}

function drainMs(args: ReturnType<typeof parse>, io: Parameters<Command['run']>[1]): number {
  try {
    return configFor(args, io).proxy.drain_timeout;
  } catch {
    return DEFAULT_DRAIN_MS; // a broken config must not keep a running proxy from being stopped
  }
}

/**
 * Without the admin API, the process's own command line (Linux /proc) is the check: keyway's entry
 * script followed by `start` (or `run … --contain`). Elsewhere there is no cheap check, and the answer is no.
 */
export function commandLineIsKeyway(pid: number): boolean {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    const script = argv.findIndex((a) => /(^|\/)(keyway|main\.[jt]s)$/.test(a));
    if (script === -1) return false;
    return argv[script + 1] === 'start' || (argv[script + 1] === 'run' && argv.includes('--contain'));
  } catch {
    return false;
  }
}
