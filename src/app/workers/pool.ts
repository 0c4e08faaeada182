// The primary's worker processes (proxy.workers): forks them, knows each one's state, asks them
// questions and stops them. A worker that dies while keyway is not stopping is logged and replaced
// by a new process in the same place (its index); one that dies again soon after starting is
// replaced after a delay that doubles, up to MAX_RESTART_DELAY_MS, so a worker that cannot start
// (a store that went away) does not spin.
//
// Every worker runs the primary's config: it is sent at start and with each reload, never read
// from the file by a worker. A worker that does not take a reload is replaced (its replacement
// starts on the config in force), so no two workers serve different rules or rate buckets.
import { type ChildProcess, spawn } from 'node:child_process';
import type { Logger } from 'pino';
import { ownChildCommand } from '../../process/own-program.ts';
import type { Config } from '../../config/index.ts';
import type { PolicyFileText } from '../../policy/cedar/load.ts';
import type { WorkerStatus } from '../../admin/deps.ts';
import { type FromPrimary, type FromWorker, isFromWorker, type WorkerBound, type WorkerStart } from './messages.ts';

const WORKER_MODULE = new URL(`./worker-main${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);

/** A worker that lived less than this was a failed start: its replacement waits (the delay doubles). */
const QUICK_DEATH_MS = 10_000;
const FIRST_RESTART_DELAY_MS = 500;
const MAX_RESTART_DELAY_MS = 30_000;
/**
 * How long a question to the workers waits for each answer: counts and metrics are read from
 * memory; a reload loads the config in a child process, which takes longer on a busy machine.
 */
const ANSWER_TIMEOUT_MS = { stats: 2_000, metrics: 2_000, reload: 30_000 } as const;
/**
 * Past the drain, how long a stopping worker has to close before it is killed: its last save of
 * refreshed tokens may take max(drain, 2 s) (running.ts stopKeyway), then its parts close.
 */
const STOP_GRACE_MS = 5_000;
const SETTLE_MIN_MS = 2_000;
/** A worker that has not listened by then is taken for hung: its start fails. */
const START_TIMEOUT_MS = 60_000;
/** Node options a worker does not take from the primary: two inspectors cannot share one port. */
const NOT_INHERITED = /^--(inspect|inspect-brk|inspect-wait|inspect-port|debug-port)(=|$)/;

export interface PoolOptions {
  readonly count: number;
  /** The start message for the worker in place `index`, with where the listeners are by then. */
  readonly startFor: (index: number, bound: WorkerBound | undefined) => Omit<WorkerStart, 'config' | 'ownPorts' | 'policyTexts'>;
  readonly env: NodeJS.ProcessEnv;
  readonly logger: Logger;
  /** The config in force (the primary's): a worker that runs another is sent this one. */
  readonly config: () => Config;
  /** The Cedar files' texts the primary loaded with that config: sent with it. */
  readonly policyTexts: () => readonly PolicyFileText[];
  /** A worker's message the pool does not answer itself (request rates). */
  readonly onMessage: (message: FromWorker, reply: (message: FromPrimary) => void, pid: number) => void;
  /** A worker process ended (whatever the reason): what it held in the primary goes. */
  readonly onExit?: ((pid: number) => void) | undefined;
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
  /** The config this process runs (sent at its start, then with each reload it took). */
  config: Config;
  /** Told to stop so that a replacement takes its place (it did not take a reload). */
  replacing: boolean;
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
  readonly #asks = new Map<number, { place: Place; resolve: (value: unknown) => void }>();
  #nextAsk = 1;
  #bound: WorkerBound | undefined;
  #stopping = false;
  /** Set once start() has resolved: an exit before it is a failed start, which start() reports. */
  #started = false;
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
    this.#started = true;
    return this.#bound;
  }

  /** Whether the worker in place `index` serves now (listening, not being replaced). */
  isReady(index: number): boolean {
    const place = this.#places.get(index);
    return place?.ready === true && place.child.connected && place.child.exitCode === null && place.child.signalCode === null;
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

  /** Asks every ready worker; an answer that does not come in time (or a worker that exits first) is undefined. */
  async ask(what: 'stats' | 'metrics'): Promise<Array<{ index: number; pid: number; value: unknown }>> {
    const places = [...this.#places.values()].filter((p) => p.ready && p.child.connected);
    return Promise.all(places.map(async (place) => ({ index: place.index, pid: place.child.pid!, value: await this.#askOne(place, { what }) })));
  }

  /**
   * Sends every ready worker the config in force (the primary has just loaded it). One that does
   * not take it (refuses, or does not answer in time) is replaced; returns those places. A worker
   * still starting gets it once ready.
   */
  async reload(isReloaded: (answer: unknown) => boolean): Promise<number[]> {
    const places = [...this.#places.values()].filter((p) => p.ready && p.child.connected);
    const replaced: number[] = [];
    await Promise.all(
      places.map(async (place) => {
        if (await this.#reloadOne(place, isReloaded)) return;
        replaced.push(place.index);
        this.#replace(place);
      }),
    );
    return replaced.sort((a, b) => a - b);
  }

  async #reloadOne(place: Place, isReloaded: (answer: unknown) => boolean): Promise<boolean> {
    const config = this.#o.config();
    if (place.config === config) return true;
    const ok = isReloaded(await this.#askOne(place, { what: 'reload', config, policyTexts: this.#o.policyTexts() }));
    if (ok) place.config = config;
    return ok;
  }

  /** Stops a worker that runs another config than the primary's; #exited starts its replacement at once. */
  #replace(place: Place): void {
    if (place.replacing || this.#stopping) return;
    place.replacing = true;
    this.#o.logger.warn({ worker: place.index, pid: place.child.pid }, 'a worker did not take the reloaded config; it drains and a new one takes its place');
    void this.#stopOne(place, this.#o.config().proxy.drain_timeout);
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
    const timer = setTimeout(() => child.kill('SIGKILL'), drainMs + Math.max(drainMs, SETTLE_MIN_MS) + STOP_GRACE_MS);
    await exited;
    clearTimeout(timer);
  }

  /** Says `message` to every worker that is up. */
  tellAll(message: FromPrimary): void {
    this.#broadcast(message);
  }

  #broadcast(message: FromPrimary): void {
    for (const place of this.#places.values()) if (place.ready && place.child.connected) place.child.send(message);
  }

  #askOne(
    place: Place,
    question: { what: 'stats' | 'metrics' } | { what: 'reload'; config: Config; policyTexts: readonly PolicyFileText[] },
  ): Promise<unknown> {
    const id = this.#nextAsk++;
    return new Promise<unknown>((resolve) => {
      const timer = setTimeout(() => {
        this.#asks.delete(id);
        resolve(undefined);
      }, ANSWER_TIMEOUT_MS[question.what]);
      timer.unref();
      this.#asks.set(id, {
        place,
        resolve: (value) => {
          clearTimeout(timer);
          resolve(value);
        },
      });
      try {
        place.child.send({ t: 'ask', id, ...question } satisfies FromPrimary);
      } catch {
        this.#asks.delete(id);
        clearTimeout(timer);
        resolve(undefined);
      }
    });
  }

  /** Forks the worker for place `index`; resolves when it listens, rejects when its start fails. */
  #spawn(index: number): Promise<WorkerBound> {
    const start: WorkerStart = {
      ...this.#o.startFor(index, this.#bound),
      ownPorts: [...this.#ownPorts],
      config: this.#o.config(),
      policyTexts: this.#o.policyTexts(),
    };
    // What fork() does, spelled out (Node, its options, the module, an IPC channel): the single
    // executable takes the options and the module otherwise (process/own-program.ts).
    const nodeOptions = process.execArgv.filter((option) => !NOT_INHERITED.test(option));
    const [program, ...args] = ownChildCommand(WORKER_MODULE, 'app/workers/worker-main', nodeOptions);
    const child = spawn(program, args, {
      env: this.#o.env,
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
      config: start.config,
      replacing: false,
    };
    this.#places.set(index, place);
    return new Promise<WorkerBound>((resolve, reject) => {
      let settled = false;
      const settle = (err: Error | undefined, bound?: WorkerBound) => {
        if (settled) return;
        settled = true;
        clearTimeout(hung);
        if (err) reject(err);
        else resolve(bound!);
      };
      const hung = setTimeout(() => {
        settle(new WorkerStartError(`worker ${index} did not listen within ${START_TIMEOUT_MS / 1000} s`, null));
        child.kill('SIGKILL');
      }, START_TIMEOUT_MS);
      hung.unref();
      child.on('message', (message: unknown) => {
        if (!isFromWorker(message)) return;
        switch (message.t) {
          case 'ready':
            place.ready = true;
            settle(undefined, message.bound);
            // A reload while it started: it runs an older config than the others.
            void this.#reloadOne(place, isReloadedOutcome).then((ok) => ok || this.#replace(place));
            return;
          case 'failed':
            settle(new WorkerStartError(message.message, message.code));
            return;
          case 'reply':
            this.#asks.get(message.id)?.resolve(message.value);
            this.#asks.delete(message.id);
            return;
          default:
            this.#o.onMessage(
              message,
              (reply) => {
                if (child.connected) child.send(reply);
              },
              child.pid ?? -1,
            );
        }
      });
      child.on('error', (err) => settle(err));
      child.once('exit', (code, signal) => {
        if (child.pid !== undefined) this.#o.onExit?.(child.pid);
        settle(new WorkerStartError(`worker ${index} exited before it listened (${signal ?? `code ${code}`})`, null));
        // Questions it will never answer are answered now (undefined), not at their timeouts.
        for (const [id, ask] of this.#asks) {
          if (ask.place !== place) continue;
          this.#asks.delete(id);
          ask.resolve(undefined);
        }
        this.#exited(place, code, signal);
      });
      child.send({ t: 'start', start } satisfies FromPrimary);
    });
  }

  #exited(place: Place, code: number | null, signal: NodeJS.Signals | null): void {
    // Before start() resolved, an exit is a failed start: start() reports it, and nothing replaces it.
    if (this.#stopping || !this.#started || this.#places.get(place.index) !== place) return;
    const lived = Date.now() - place.startedMs;
    place.quickDeaths = place.replacing ? 0 : lived < QUICK_DEATH_MS ? place.quickDeaths + 1 : 0;
    const delay = place.quickDeaths === 0 ? 0 : Math.min(MAX_RESTART_DELAY_MS, FIRST_RESTART_DELAY_MS * 2 ** (place.quickDeaths - 1));
    if (!place.replacing)
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

/** Whether a worker's answer to a reload says it took the config (live-config.ts ReloadOutcome). */
export function isReloadedOutcome(answer: unknown): boolean {
  return typeof answer === 'object' && answer !== null && (answer as { reloaded?: unknown }).reloaded === true;
}
