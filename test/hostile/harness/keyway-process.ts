// Run as its own process by child.ts: keyway on a prepared home, listening on 127.0.0.1:0, with a
// resolver that refuses every name (test names come from proxy.hosts), so no fuzzed host can make
// keyway ask real DNS. A crash here ends this process, not the test runner, and the test counts it.
import { startKeyway } from '../../../src/app/index.ts';
import { createAppLogger } from '../../../src/log/logger.ts';

const home = process.argv[2];
if (!home) throw new Error('usage: keyway-process.ts HOME');
const running = await startKeyway({
  home,
  listen: { host: '127.0.0.1', port: 0 },
  adminListen: { host: '127.0.0.1', port: 0 },
  dns: async (host) => {
    throw Object.assign(new Error(`hostile suite: no DNS for ${host}`), { code: 'ENOTFOUND' });
  },
  logger: createAppLogger({ level: 'error', destination: process.stderr }),
});
process.stdout.write(`${JSON.stringify({ port: running.proxyAddress.port })}\n`);
const stop = () => void running.stop().then(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
// The test runner holds our stdin: if it goes away (killed, crashed), so do we, at once.
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
