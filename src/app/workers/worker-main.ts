// A worker process (proxy.workers). Its primary (primary.ts) forks it and says, in a `start`
// message, where the home is, where to listen and the config it loaded; it then runs keyway's
// proxy as a keyway on its own does, beside the other workers on the same port (SO_REUSEPORT),
// without an admin listener, counting request rates in the primary's buckets and model spend in
// the primary's ledger, and handing its audit lines to the primary, the audit file's one writer
// (shared-audit.ts). It never reads the config file: a reload brings the primary's config with it.
// Everything else that must be right across workers (one refresh per expiry, quotas, approvals,
// leases) already is across processes on one home: the store and its locks.
//
// A worker never outlives its primary: it stops when told, and when the IPC channel closes (the
// primary is gone). Signals are the primary's to handle: a Ctrl-C or a service manager's SIGTERM
// reaches the whole process group, and the primary stops its workers with the drain it was given.
import { createAppLogger } from '../../log/logger.ts';
import { prettyDestination } from '../../log/pretty.ts';
import type { Config } from '../../config/index.ts';
import type { PolicyFileText } from '../../policy/cedar/load.ts';
import { deepFreeze } from '../../deep-freeze.ts';
import { KeywayError } from '../../errors/index.ts';
import { startKeyway } from '../index.ts';
import { warmUp, warmUpWanted } from '../../warm-up/warm-up.ts';
import type { RunningKeyway } from '../running.ts';
import { type FromPrimary, type FromWorker, isFromPrimary, type WorkerStart } from './messages.ts';
import { RemoteRates } from './shared-rates.ts';
import { RemoteSpend } from './shared-spend.ts';
import { refusalsToPrimary } from './shared-refusals.ts';
import { PrimaryAuditLog } from './shared-audit.ts';

if (typeof process.send !== 'function') {
  console.error('keyway: this is a worker process (proxy.workers); `keyway start` runs it');
  process.exit(2);
}

const send = (message: FromWorker): boolean => (process.connected ? process.send!(message) : false);
const rates = new RemoteRates(send);
let running: RunningKeyway | undefined;
/** The start under way, if any: a stop waits for it, then stops what it started. */
let starting: Promise<void> | undefined;
let stopping = false;
/** The primary's config: at start, then each reload's. */
let config: Config | undefined;
/** The Cedar files' texts the primary read with that config. */
let policyTexts: readonly PolicyFileText[] = [];
// Budgets as this worker's config has them: a scope no budget applies to is never asked about.
const spend = new RemoteSpend(send, () => config?.budgets ?? []);
// On the file sink, this worker's audit lines are written by the primary (shared-audit.ts).
let audit: PrimaryAuditLog | undefined;

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
  spend.primaryGone();
  audit?.primaryGone();
  stop(running?.services.config.proxy.drain_timeout ?? 0);
});

function handle(message: FromPrimary): void {
  switch (message.t) {
    case 'start':
      starting ??= begin(message.start);
      return;
    case 'verdict':
      rates.answer(message);
      return;
    case 'spend-verdict':
      spend.answer(message);
      return;
    case 'spend-added':
      spend.added(message);
      return;
    case 'audit-done':
    case 'audit-health':
      audit?.answer(message);
      return;
    case 'ask':
      if (message.what === 'reload') {
        config = deepFreeze(message.config);
        policyTexts = message.policyTexts;
      }
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
  config = deepFreeze(start.config);
  policyTexts = start.policyTexts;
  const base =
    start.logFormat === 'pretty' ? createAppLogger({ destination: prettyDestination((line) => process.stdout.write(`${line}\n`)) }) : createAppLogger();
  try {
    // Each worker serves, so each compiles its request path before it does (warm-up/).
    if (warmUpWanted(process.env)) await warmUp(startKeyway, base.child({ worker: start.index }));
    // Told to stop during the warm-up (its primary is gone or stopping): never bind the real listeners.
    if (stopping) return;
    running = await startKeyway({
      home: start.home,
      configFile: start.configFile,
      listen: start.listen,
      env: process.env,
      logger: base.child({ worker: start.index }),
      announce: false,
      worker: {
        index: start.index,
        transparent: start.transparent,
        rates,
        spend,
        refusals: refusalsToPrimary(send, () => process.connected),
        audit: (replica) => {
          audit = new PrimaryAuditLog(send, () => process.connected, replica);
          return audit;
        },
        config: () => config!,
        policyTexts: () => policyTexts,
      },
    });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    send({ t: 'failed', code: err instanceof KeywayError ? err.code : null, message });
    process.exitCode = 1;
    process.disconnect();
    return;
  }
  for (const port of start.ownPorts) running.refusePort(port);
  // Told to stop while it started: stop() stops it now; it never says it is ready.
  if (stopping) return;
  const { proxyAddress, transparentAddresses } = running;
  const at = (a: { address: string; port: number } | undefined) => (a === undefined ? undefined : { host: a.address, port: a.port });
  send({ t: 'ready', bound: { proxy: at(proxyAddress)!, transparent: { tls: at(transparentAddresses.tls), http: at(transparentAddresses.http) } } });
}

async function answer(id: number, what: 'stats' | 'metrics' | 'reload'): Promise<void> {
  let value: unknown;
  // Not started (or its start failed): answered at once, so the primary need not wait it out.
  if (running === undefined) return void send({ t: 'reply', id, value: undefined });
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
    await starting;
    await running?.stop({ drainMs });
    if (process.connected) process.disconnect();
    // Nothing left must keep a stopped worker alive (a stray socket, a timer); a failed start keeps its exit code 1.
    setTimeout(() => process.exit(), 1_000).unref();
  })();
}
