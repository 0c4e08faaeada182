// The primary's worker processes (proxy.workers): forks them, knows each one's state, asks them
// questions and stops them. A worker that dies while keyway is not stopping is logged and replaced
// by a new process in the same place (its index); one that dies again soon after starting is
// replaced after a delay that doubles, up to MAX_RESTART_DELAY_MS, so a worker that cannot start
// (a store that went away) does not spin.
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type { WorkerStatus } from '../../admin/deps.ts';
import { type FromPrimary, type FromWorker, isFromWorker, WORKER_INDEX_VARIABLE, type WorkerBound, type WorkerStart } from './messages.ts';

const WORKER_MODULE = fileURLToPath(new URL(`./worker-main${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url));

/** A worker that lived less than this was a failed start: its replacement waits (the delay doubles). */
const QUICK_DEATH_MS = 10_000;
const FIRST_RESTART_DELAY_MS = 500;
const MAX_RESTART_DELAY_MS = 30_000;
/**
 * How long a question to the workers waits for each answer: counts and metrics are read from
 * memory; a reload loads the config in a child process, which takes longer on a busy machine.
 */
const ANSWER_TIMEOUT_MS = { stats: 2_000, metrics: 2_000, reload: 30_000 } as const;
/** Past the drain, how long a stopping worker has to close before it is killed. */
const STOP_GRACE_MS = 5_000;

export interface PoolOptions {
  readonly count: number;
  /** The start message for the worker in place `index`, with where the listeners are by then. */
  readonly startFor: (index: number, bound: WorkerBound | undefined) => WorkerStart;
  readonly env: NodeJS.ProcessEnv;
  readonly logger: Logger;
  /** A worker's message the pool does not answer itself (request rates). */
  readonly onMessage: (message: FromWorker, reply: (message: FromPrimary) => void) => void;
}

/** One place in the pool and the process in it now. */
interface Place {
  readonly index: number;
  child: ChildProcess;
  startedAt: string;
  startedMs: number;
  restarts: number;
  quickDeaths: number;
  ready: boolean;
}

/** A worker's start failed: its one line, and the error code it had (a KeywayError's), if any. */
export class WorkerStartError extends Error {
  readonly code: string | null;
  constructor(message: string, code: string | null) {
    super(message);
    this.code = code;
  }
}

export class WorkerPool {
  readonly #o: PoolOptions;
  readonly #places = new Map<number, Place>();
  readonly #asks = new Map<number, { resolve: (value: unknown) => void }>();
  #nextAsk = 1;
  #bound: WorkerBound | undefined;
  #stopping = false;
  /** Ports every worker must refuse as destinations (the admin listener), sent to replacements too. */
  readonly #ownPorts: number[] = [];

  constructor(options: PoolOptions) {
    this.#o = options;
  }

  /** Where the workers listen (the first worker's bound addresses). */
  get bound(): WorkerBound | undefined {
    return this.#bound;
  }

  /**
   * Starts the first worker, which binds the configured addresses (port 0 included), then the
   * others on the ports it got. Resolves once all listen; a worker that fails to start fails it.
   */
  async start(): Promise<WorkerBound> {
    this.#bound = await this.#spawn(1);
    const others: Promise<WorkerBound>[] = [];
    for (let index = 2; index <= this.#o.count; index++) others.push(this.#spawn(index));
    await Promise.all(others);
    return this.#bound;
  }

  /** Every worker's pid now (for tests and status). */
  pids(): number[] {
    return [...this.#places.values()].map((p) => p.child.pid!).filter((pid) => pid !== undefined);
  }

  /** Tells every worker, now and later, to refuse `port` as a destination. */
  refusePort(port: number): void {
    this.#ownPorts.push(port);
    this.#broadcast({ t: 'own-port', port });
  }

  /** Asks every ready worker; an answer that does not come in time is undefined. */
  async ask(what: 'stats' | 'metrics' | 'reload'): Promise<Array<{ index: number; pid: number; value: unknown }>> {
    const places = [...this.#places.values()].filter((p) => p.ready && p.child.connected);
    return Promise.all(places.map(async (place) => ({ index: place.index, pid: place.child.pid!, value: await this.#askOne(place, what) })));
  }

  /** `keyway status`'s view of each place; `stats`: the answers of ask('stats'). */
  status(stats: ReadonlyMap<number, { connections: number; requests: number; audit: boolean } | undefined>): WorkerStatus[] {
    return [...this.#places.values()]
      .sort((a, b) => a.index - b.index)
      .map((place) => {
        const s = stats.get(place.child.pid!);
        return {
          index: place.index,
          pid: place.child.pid!,
          started_at: place.startedAt,
          restarts: place.restarts,
          connections: s?.connections ?? null,
          requests: s?.requests ?? null,
          audit: s === undefined ? null : s.audit ? 'ok' : 'failing',
        };
      });
  }

  /** Tells every worker to drain for up to `drainMs` and exit; kills those still there past it. */
  async stop(drainMs: number): Promise<void> {
    this.#stopping = true;
    const exits = [...this.#places.values()].map((place) => this.#stopOne(place, drainMs));
    await Promise.all(exits);
  }

  /** SIGKILLs every worker: a start that failed halfway. */
  killAll(): void {
    this.#stopping = true;
    for (const place of this.#places.values()) place.child.kill('SIGKILL');
  }

  async #stopOne(place: Place, drainMs: number): Promise<void> {
    const { child } = place;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    if (child.connected) child.send({ t: 'stop', drainMs } satisfies FromPrimary);
    else child.kill('SIGKILL');
    const timer = setTimeout(() => child.kill('SIGKILL'), drainMs + STOP_GRACE_MS);
    await exited;
    clearTimeout(timer);
  }

  #broadcast(message: FromPrimary): void {
    for (const place of this.#places.values()) if (place.ready && place.child.connected) place.child.send(message);
  }

  #askOne(place: Place, what: 'stats' | 'metrics' | 'reload'): Promise<unknown> {
    const id = this.#nextAsk++;
    return new Promise<unknown>((resolve) => {
      const timer = setTimeout(() => {
        this.#asks.delete(id);
        resolve(undefined);
      }, ANSWER_TIMEOUT_MS[what]);
      timer.unref();
      this.#asks.set(id, {
        resolve: (value) => {
          clearTimeout(timer);
          resolve(value);
        },
      });
      try {
        place.child.send({ t: 'ask', id, what } satisfies FromPrimary);
      } catch {
        this.#asks.delete(id);
        clearTimeout(timer);
        resolve(undefined);
      }
    });
  }

  /** Forks the worker for place `index`; resolves when it listens, rejects when its start fails. */
  #spawn(index: number): Promise<WorkerBound> {
    const child = fork(WORKER_MODULE, [], {
      env: { ...this.#o.env, [WORKER_INDEX_VARIABLE]: String(index) },
      execArgv: process.execArgv,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'json',
    });
    const previous = this.#places.get(index);
    const place: Place = {
      index,
      child,
      startedAt: new Date().toISOString(),
      startedMs: Date.now(),
      restarts: previous === undefined ? 0 : previous.restarts + 1,
      quickDeaths: previous?.quickDeaths ?? 0,
      ready: false,
    };
    this.#places.set(index, place);
    return new Promise<WorkerBound>((resolve, reject) => {
      let settled = false;
      const settle = (err: Error | undefined, bound?: WorkerBound) => {
        if (settled) return;
        settled = true;
        if (err) reject(err);
        else resolve(bound!);
      };
      child.on('message', (message: unknown) => {
        if (!isFromWorker(message)) return;
        switch (message.t) {
          case 'ready':
            place.ready = true;
            settle(undefined, message.bound);
            return;
          case 'failed':
            settle(new WorkerStartError(message.message, message.code));
            return;
          case 'reply':
            this.#asks.get(message.id)?.resolve(message.value);
            this.#asks.delete(message.id);
            return;
          default:
            this.#o.onMessage(message, (reply) => {
              if (child.connected) child.send(reply);
            });
        }
      });
      child.on('error', (err) => settle(err));
      child.once('exit', (code, signal) => {
        settle(new WorkerStartError(`worker ${index} exited before it listened (${signal ?? `code ${code}`})`, null));
        this.#exited(place, code, signal);
      });
      // The first start's sequence is the caller's: it sends the start message once the process is up.
      child.send({ t: 'start', start: { ...this.#o.startFor(index, this.#bound), ownPorts: [...this.#ownPorts] } } satisfies FromPrimary);
    });
  }

  #exited(place: Place, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.#stopping || this.#places.get(place.index) !== place) return;
    const lived = Date.now() - place.startedMs;
    place.quickDeaths = lived < QUICK_DEATH_MS ? place.quickDeaths + 1 : 0;
    const delay = place.quickDeaths === 0 ? 0 : Math.min(MAX_RESTART_DELAY_MS, FIRST_RESTART_DELAY_MS * 2 ** (place.quickDeaths - 1));
    this.#o.logger.error(
      { worker: place.index, pid: place.child.pid, code, signal, lived_ms: lived, restart_in_ms: delay },
      'a worker process died; its connections were cut, a new worker takes its place',
    );
    const timer = setTimeout(() => {
      if (this.#stopping) return;
      this.#spawn(place.index).catch((err: unknown) => {
        this.#o.logger.error({ worker: place.index, reason: (err as Error).message }, 'a new worker could not start; trying again');
      });
    }, delay);
    timer.unref();
  }
}
