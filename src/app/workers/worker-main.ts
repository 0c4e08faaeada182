// A worker process (proxy.workers). Its primary (primary.ts) forks it and says, in a `start`
// message, where the home is and where to listen; it then runs keyway's proxy as a keyway on its
// own does, beside the other workers on the same port (SO_REUSEPORT), without an admin listener,
// counting request rates in the primary's buckets. Everything else that must be right across
// workers (one refresh per expiry, quotas, approvals, leases, the audit chain) already is across
// processes on one home: the store, its locks and the audit file's lock.
//
// A worker never outlives its primary: it stops when told, and when the IPC channel closes (the
// primary is gone). Signals are the primary's to handle: a Ctrl-C or a service manager's SIGTERM
// reaches the whole process group, and the primary stops its workers with the drain it was given.
import { createAppLogger, prettyDestination } from '../../audit/index.ts';
import { KeywayError } from '../../errors/index.ts';
import { startKeyway } from '../index.ts';
import type { RunningKeyway } from '../running.ts';
import { type FromPrimary, type FromWorker, isFromPrimary, type WorkerStart } from './messages.ts';
import { RemoteRates } from './shared-rates.ts';

if (typeof process.send !== 'function') {
  console.error('keyway: this is a worker process (proxy.workers); `keyway start` runs it');
  process.exit(2);
}

const send = (message: FromWorker): boolean => (process.connected ? process.send!(message) : false);
const rates = new RemoteRates(send);
let running: RunningKeyway | undefined;
let stopping = false;

process.on('SIGINT', () => undefined);
process.on('SIGTERM', () => undefined);
process.on('SIGHUP', () => undefined);

process.on('message', (message: unknown) => {
  if (!isFromPrimary(message)) return;
  handle(message);
});

// The primary is gone (killed, crashed): refuse what needs it, let requests in flight finish, exit.
process.on('disconnect', () => {
  rates.primaryGone();
  stop(running?.services.config.proxy.drain_timeout ?? 0);
});

function handle(message: FromPrimary): void {
  switch (message.t) {
    case 'start':
      void begin(message.start);
      return;
    case 'verdict':
      rates.answer(message);
      return;
    case 'ask':
      void answer(message.id, message.what);
      return;
    case 'own-port':
      running?.refusePort(message.port);
      return;
    case 'stop':
      stop(message.drainMs);
      return;
  }
}

async function begin(start: WorkerStart): Promise<void> {
  const base =
    start.logFormat === 'pretty' ? createAppLogger({ destination: prettyDestination((line) => process.stdout.write(`${line}\n`)) }) : createAppLogger();
  try {
    running = await startKeyway({
      home: start.home,
      configFile: start.configFile,
      listen: start.listen,
      env: process.env,
      logger: base.child({ worker: start.index }),
      announce: false,
      worker: { index: start.index, transparent: start.transparent, rates },
    });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    send({ t: 'failed', code: err instanceof KeywayError ? err.code : null, message });
    process.exitCode = 1;
    process.disconnect();
    return;
  }
  for (const port of start.ownPorts) running.refusePort(port);
  const { proxyAddress, transparentAddresses } = running;
  const at = (a: { address: string; port: number } | undefined) => (a === undefined ? undefined : { host: a.address, port: a.port });
  send({ t: 'ready', bound: { proxy: at(proxyAddress)!, transparent: { tls: at(transparentAddresses.tls), http: at(transparentAddresses.http) } } });
}

async function answer(id: number, what: 'stats' | 'metrics' | 'reload'): Promise<void> {
  if (running === undefined) return;
  let value: unknown;
  try {
    if (what === 'stats') value = running.activity();
    else if (what === 'metrics') value = await running.metricsJson();
    else value = await running.reload('primary', true);
  } catch (err) {
    value = { error: (err as Error).message };
  }
  send({ t: 'reply', id, value });
}

function stop(drainMs: number): void {
  if (stopping) return;
  stopping = true;
  void (async () => {
    await running?.stop({ drainMs });
    if (process.connected) process.disconnect();
    // Nothing left must keep a stopped worker alive (a stray socket, a timer); a failed start keeps its exit code 1.
    setTimeout(() => process.exit(), 1_000).unref();
  })();
}
