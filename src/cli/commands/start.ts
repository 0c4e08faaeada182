import { startKeyway } from '../../app/index.ts';
import { warmUp, warmUpWanted } from '../../warm-up/warm-up.ts';
import { createAppLogger } from '../../log/logger.ts';
import { prettyDestination } from '../../log/pretty.ts';
import { formatDuration, parseListen } from '../../config/index.ts';
import { resolveHome } from '../../paths.ts';
import { parse } from '../args.ts';
import type { Command } from '../command.ts';
import { usageError, type CommandIO } from '../io.ts';
import { banner, listeningLine } from '../start-banner.ts';

const LOG_FORMATS = ['json', 'pretty'] as const;
type LogFormat = (typeof LOG_FORMATS)[number];

export const start: Command = {
  name: 'start',
  usage: `keyway start [--config FILE] [--listen HOST:PORT] [--admin-listen HOST:PORT] [--home DIR]
             [--log-format json|pretty] [--fresh-store]

Runs the proxy (default 127.0.0.1:8787) and the admin API (default 127.0.0.1:8788). On first start
it makes the CA (certs/), the master key and store (data/) and the audit log (logs/) in the home
(--home, else KEYWAY_HOME, else ~/.keyway).
On a terminal it prints a short banner (addresses, CA, counts, what to run next) and human log
lines; otherwise one line ("keyway proxy on http://…") and JSON log lines on stdout. --log-format
chooses the log lines either way.
SIGHUP (or \`keyway reload\`) re-reads the config file: the changes apply to new requests, no
connection is dropped, and a config that does not load is refused with the reason (the running
one stays); each reload is logged and audited (decision admin).
Stop with Ctrl-C (SIGINT) or SIGTERM: keyway stops accepting, lets requests in flight finish for up
to proxy.drain_timeout (default 10s), closes every connection and exits 0. A second signal exits at
once, with status 130 (SIGINT) or 143 (SIGTERM).

keyway never starts fresh over a home that was used before: if data/store.json is missing while the
audit log, its head or data/master.key say it existed, or the master key is missing beside a store,
start stops with store_missing or key_missing (exit 1), says how to restore, and writes nothing.
--fresh-store makes a new empty store there on purpose (audited as store.fresh); it never replaces
a store that exists.

If a port is taken (or anything else fails), start closes what it opened, writes nothing to
data/proxy.json and exits 1 with one line naming the port (and the keyway process already there).`,
  async run(argv, io) {
    const args = parse(argv, {
      listen: { type: 'string' },
      'admin-listen': { type: 'string' },
      'log-format': { type: 'string' },
      'fresh-store': { type: 'boolean' },
    });
    const format = logFormat(args.string('log-format'), io);
    const listenText = args.string('listen');
    const listen = listenText === undefined ? undefined : parseListen(listenText);
    if (listenText !== undefined && !listen) throw usageError(`--listen: expected HOST:PORT, got "${listenText}"`);
    const adminText = args.string('admin-listen');
    const adminListen = adminText === undefined ? undefined : parseListen(adminText);
    if (adminText !== undefined && !adminListen) throw usageError(`--admin-listen: expected HOST:PORT, got "${adminText}"`);

    // JSON lines go to stdout through pino's own fast writer; human lines through io.out.
    const logger = format === 'pretty' ? createAppLogger({ destination: prettyDestination((line) => io.out(line)) }) : createAppLogger();
    // Before the real proxy serves: its request path compiled on loopback traffic of its own (warm-up/).
    if (warmUpWanted(io.env)) await warmUp(startKeyway, logger, { exitOnSignal: true });
    const running = await startKeyway({
      home: resolveHome(args.string('home'), io.env),
      configFile: args.string('config'),
      freshStore: args.flag('fresh-store'),
      listen,
      adminListen,
      env: io.env,
      logger,
      logFormat: format,
      workers: true,
    });
    if (onTerminal(io)) for (const line of banner(running)) io.err(line);
    else io.err(listeningLine(running));
    // The outcome is logged and audited by the reload itself; a refusal is one line here too. The
    // handler stays while stopping (ignoring the signal): without one, SIGHUP would end the process
    // and cut the requests being drained.
    let stopping = false;
    const onHangup = () => {
      if (stopping) return;
      void running.reload('SIGHUP').then((outcome) => {
        if (!outcome.reloaded) io.err(`keyway: SIGHUP: the config was refused, the running one stays: ${outcome.error.message}`);
      });
    };
    process.on('SIGHUP', onHangup);
    const signal = await new Promise<NodeJS.Signals>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    const drainMs = running.services.config.proxy.drain_timeout;
    // The second signal: the user does not want to wait for the drain.
    const now = (second: NodeJS.Signals) => {
      io.err(`keyway: ${second} again, exiting without waiting for requests in flight`);
      // Workers (proxy.workers) ignore signals and drain when told: they go with the primary.
      for (const pid of running.workerPids?.() ?? []) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      process.exit(second === 'SIGINT' ? 130 : 143);
    };
    process.on('SIGINT', now);
    process.on('SIGTERM', now);
    stopping = true;
    io.err(`keyway: ${signal}: stopping; requests in flight have ${formatDuration(drainMs)} to finish`);
    await running.stop({ drainMs });
    // Anything still holding the event loop (a stray socket, a timer) must not keep a stopped
    // proxy alive: exit shortly even then.
    setTimeout(() => process.exit(0), 1_000).unref();
    return 0;
  },
};

function onTerminal(io: CommandIO): boolean {
  return io.terminal?.out === true && io.terminal.err === true;
}

/** --log-format, else human lines on a terminal and JSON elsewhere (a service manager, a pipe, a file). */
function logFormat(given: string | undefined, io: CommandIO): LogFormat {
  if (given === undefined) return onTerminal(io) ? 'pretty' : 'json';
  if (!(LOG_FORMATS as readonly string[]).includes(given)) throw usageError(`--log-format: expected json or pretty, got "${given}"`);
  return given as LogFormat;
}
