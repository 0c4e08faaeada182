import { startKeyway } from '../../app.ts';
import { formatDuration, parseListen, formatListen } from '../../config/index.ts';
import { resolveHome } from '../../paths.ts';
import { parse } from '../args.ts';
import type { Command } from '../command.ts';
import { usageError } from '../io.ts';

export const start: Command = {
  name: 'start',
  usage: `keyway start [--config FILE] [--listen HOST:PORT] [--admin-listen HOST:PORT] [--home DIR]

Runs the proxy (default 127.0.0.1:8787) and the admin API (default 127.0.0.1:8788). On first start
it makes the CA (certs/), the master key and store (data/) and the audit log (logs/).
Stop with Ctrl-C (SIGINT) or SIGTERM: keyway stops accepting, lets requests in flight finish for up
to proxy.drain_timeout (default 10s), closes every connection and exits 0. A second signal exits at
once, with status 130 (SIGINT) or 143 (SIGTERM).

If a port is taken (or anything else fails), start closes what it opened, writes nothing to
data/proxy.json and exits 1 with one line naming the port (and the keyway process already there).`,
  async run(argv, io) {
    const args = parse(argv, { listen: { type: 'string' }, 'admin-listen': { type: 'string' } });
    const listenText = args.string('listen');
    const listen = listenText === undefined ? undefined : parseListen(listenText);
    if (listenText !== undefined && !listen) throw usageError(`--listen: expected HOST:PORT, got "${listenText}"`);
    const adminText = args.string('admin-listen');
    const adminListen = adminText === undefined ? undefined : parseListen(adminText);
    if (adminText !== undefined && !adminListen) throw usageError(`--admin-listen: expected HOST:PORT, got "${adminText}"`);

    const running = await startKeyway({ home: resolveHome(args.string('home'), io.env), configFile: args.string('config'), listen, adminListen, env: io.env });
    const proxy = formatListen({ host: running.proxyAddress.address, port: running.proxyAddress.port });
    io.err(`keyway proxy on http://${proxy}; CA ${running.ca.certPath}; run \`keyway env\` for the client settings`);
    const signal = await new Promise<NodeJS.Signals>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    const drainMs = running.services.config.proxy.drain_timeout;
    // The second signal: the user does not want to wait for the drain.
    const now = (second: NodeJS.Signals) => {
      io.err(`keyway: ${second} again, exiting without waiting for requests in flight`);
      process.exit(second === 'SIGINT' ? 130 : 143);
    };
    process.on('SIGINT', now);
    process.on('SIGTERM', now);
    io.err(`keyway: ${signal}: stopping; requests in flight have ${formatDuration(drainMs)} to finish`);
    await running.stop({ drainMs });
    // Anything still holding the event loop (a stray socket, a timer) must not keep a stopped
    // proxy alive: exit shortly even then.
    setTimeout(() => process.exit(0), 1_000).unref();
    return 0;
  },
};
