import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { formatDuration } from '../../config/index.ts';
import { resolveHome } from '../../paths.ts';
import { isAlive } from '../../running-proxy.ts';
import { parse } from '../args.ts';
import type { Command } from '../command.ts';
import { configFor } from '../context.ts';
import { printJson } from '../io.ts';
import { lookUpProxy } from '../running-status.ts';

// When the config cannot be read, the default proxy.drain_timeout.
const DEFAULT_DRAIN_MS = 10_000;
// Beyond the drain: closing the store and the audit log, and the exit itself.
const EXIT_GRACE_MS = 5_000;
const POLL_MS = 100;

export const stop: Command = {
  name: 'stop',
  usage: `keyway stop [--json] [--home DIR]

Stops the proxy running for this home (the pid in data/proxy.json) gracefully: sends it SIGTERM,
so it stops accepting and lets requests in flight finish for up to proxy.drain_timeout, then waits
for it to exit (drain_timeout plus ${EXIT_GRACE_MS / 1000}s at most). Before signalling, it checks the pid is really
keyway (its admin API answers with that pid, or its command line is keyway's), so a pid reused by
another program is never signalled. Exits 1 with one line when no proxy runs.`,
  async run(argv, io) {
    const args = parse(argv);
    const home = resolveHome(args.string('home'), io.env);
    const found = await lookUpProxy(home, io.env);
    if (found.state !== 'running') {
      if (args.json) printJson(io, { stopped: false, running: false, home });
      const stale = found.state === 'stale' ? ` (removed data/proxy.json left by pid ${found.pid}, which is gone)` : '';
      io.err(`keyway stop: no proxy is running for home ${home}${stale}`);
      return 1;
    }
    const { pid } = found.proxy;
    if (found.live === undefined && !commandLineIsKeyway(pid)) {
      io.err(`keyway stop: cannot confirm that pid ${pid} is keyway (${found.why}); stop it yourself with \`kill ${pid}\` if it is`);
      return 1;
    }
    const waitMs = drainMs(args, io) + EXIT_GRACE_MS;
    process.kill(pid, 'SIGTERM');
    const deadline = Date.now() + waitMs;
    while (isAlive(pid) && Date.now() < deadline) await sleep(POLL_MS);
    if (isAlive(pid)) {
      if (args.json) printJson(io, { stopped: false, running: true, home, pid });
      io.err(`keyway stop: pid ${pid} got SIGTERM but is still running after ${formatDuration(waitMs)}; \`kill -9 ${pid}\` ends it at once`);
      return 1;
    }
    if (args.json) printJson(io, { stopped: true, home, pid });
    else io.out(`keyway stopped (pid ${pid})`);
    return 0;
  },
};

function drainMs(args: ReturnType<typeof parse>, io: Parameters<Command['run']>[1]): number {
  try {
    return configFor(args, io).proxy.drain_timeout;
  } catch {
    return DEFAULT_DRAIN_MS; // a broken config must not keep a running proxy from being stopped
  }
}

/**
 * Without the admin API, the process's own command line (Linux /proc) is the check: keyway's entry
 * script followed by `start`. Elsewhere there is no cheap check, and the answer is no.
 */
export function commandLineIsKeyway(pid: number): boolean {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    const script = argv.findIndex((a) => /(^|\/)(keyway|main\.[jt]s)$/.test(a));
    return script !== -1 && argv[script + 1] === 'start';
  } catch {
    return false;
  }
}
