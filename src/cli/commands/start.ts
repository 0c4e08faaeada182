import { startKeyway } from '../../app.ts';
import { parseListen, formatListen } from '../../config/index.ts';
import { resolveHome } from '../../paths.ts';
import { parse } from '../args.ts';
import type { Command } from '../command.ts';
import { usageError } from '../io.ts';

export const start: Command = {
  name: 'start',
  usage: `keyway start [--config FILE] [--listen HOST:PORT] [--admin-listen HOST:PORT] [--home DIR]

Runs the proxy (default 127.0.0.1:8787) and the admin API (default 127.0.0.1:8788). On first start
it makes the CA (certs/), the master key and store (data/) and the audit log (logs/).
Stop with Ctrl-C (SIGINT) or SIGTERM.`,
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
    await new Promise<void>((resolve) => {
      const stop = () => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        resolve();
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
    await running.stop();
    return 0;
  },
};
