// An open-loop load generator: request n is due at start + n / rate whatever happened to the ones
// before it, and its latency runs from that due time, not from when it was sent. A closed loop (the
// next request waits for the last answer) slows down with the server and hides its stalls (coordinated
// omission); here a stall shows as latency on every request that fell due during it. The generator's
// own lateness (a busy event loop sends a due request late) is measured apart as "lag".
//
// Everything is bounded: slots by rate x duration, requests in flight by maxInFlight (a due request
// beyond it is not sent and counts as an `overload` error), the drain by drainMs.
import { createHistogram, type RecordableHistogram } from 'node:perf_hooks';

export type TargetKind = 'inject' | 'new-host' | 'oauth';

export interface Target {
  kind: TargetKind;
  url: string;
}

/** What a request came to: ok, or an error kind such as `status 502 (upstream_unreachable)`. */
export type Outcome = { ok: true } | { ok: false; error: string };

export interface LoadPlan {
  rate: number;
  durationMs: number;
  /** The rate climbs linearly from 0 over this long (a warm-up), then holds. Default 0. */
  rampMs?: number;
  windowMs: number;
  maxInFlight: number;
  /** After the last slot, how long requests still in flight may take; those left count as `unfinished`. */
  drainMs: number;
  /** Which request slot n (due `dueMs` after the start) sends. */
  pick(slot: number, dueMs: number): Target;
  send(target: Target): Promise<Outcome>;
  /** Called as each window closes, for readings taken outside the generator (memory, descriptors). */
  onWindow?(window: WindowStats): void;
}

export interface LatencyFigures {
  p50: number;
  p99: number;
  max: number;
}

export interface WindowStats {
  index: number;
  startS: number;
  endS: number;
  /** Slots that fell due in this window, and of them the ones sent (the rest hit the in-flight bound). */
  due: number;
  sent: number;
  /** Responses that ended in this window, and of them the good ones. */
  completed: number;
  ok: number;
  /** Good responses per second. */
  okPerS: number;
  latencyMs: LatencyFigures;
  /** How late the generator sent what fell due (its own event loop's delay). */
  lagMs: LatencyFigures;
  errors: Record<string, number>;
  sentByKind: Record<TargetKind, number>;
  peakInFlight: number;
}

export interface LoadResult {
  windows: WindowStats[];
  slots: number;
  sent: number;
  completed: number;
  ok: number;
  errors: Record<string, number>;
  latencyMs: LatencyFigures;
  lagMs: LatencyFigures;
  /** Slots sent more than 10 ms after they fell due. */
  sentLate10ms: number;
  /** Wall time from start to the end of the drain. */
  seconds: number;
  drainMs: number;
}

const US_PER_MS = 1000;
const newHistogram = (): RecordableHistogram => createHistogram({ lowest: 1, highest: 3_600_000_000, figures: 3 });
const recordMs = (h: RecordableHistogram, ms: number) => h.record(Math.max(1, Math.round(ms * US_PER_MS)));
const figuresOf = (h: RecordableHistogram): LatencyFigures =>
  h.count === 0
    ? { p50: Number.NaN, p99: Number.NaN, max: Number.NaN }
    : { p50: h.percentile(50) / US_PER_MS, p99: h.percentile(99) / US_PER_MS, max: h.max / US_PER_MS };
const addTo = (into: Record<string, number>, kind: string, n = 1): void => {
  into[kind] = (into[kind] ?? 0) + n;
};

class Window {
  due = 0;
  sent = 0;
  completed = 0;
  ok = 0;
  peakInFlight = 0;
  readonly errors: Record<string, number> = {};
  readonly sentByKind: Record<TargetKind, number> = { inject: 0, 'new-host': 0, oauth: 0 };
  readonly latency = newHistogram();
  readonly lag = newHistogram();
  readonly index: number;
  readonly startMs: number;
  constructor(index: number, startMs: number) {
    this.index = index;
    this.startMs = startMs;
  }

  close(endMs: number): WindowStats {
    const seconds = Math.max(0.001, (endMs - this.startMs) / 1000);
    return {
      index: this.index,
      startS: this.startMs / 1000,
      endS: endMs / 1000,
      due: this.due,
      sent: this.sent,
      completed: this.completed,
      ok: this.ok,
      okPerS: this.ok / seconds,
      latencyMs: figuresOf(this.latency),
      lagMs: figuresOf(this.lag),
      errors: { ...this.errors },
      sentByKind: { ...this.sentByKind },
      peakInFlight: this.peakInFlight,
    };
  }
}

/** When slot n falls due (ms after the start), and how many slots the run has, for a ramp then a steady rate. */
export function schedule(rate: number, durationMs: number, rampMs = 0): { dueMs(n: number): number; slots: number } {
  const ramp = Math.min(rampMs, durationMs);
  const perMs = rate / 1000;
  // Slots during the ramp: the area under a rate that climbs from 0 to `rate` over `ramp` ms.
  const rampSlots = (perMs * ramp) / 2;
  return {
    dueMs: (n) => (n < rampSlots ? Math.sqrt((2 * n * ramp) / perMs) : ramp + (n - rampSlots) / perMs),
    slots: Math.floor(rampSlots + perMs * (durationMs - ramp)),
  };
}

export async function runOpenLoop(plan: LoadPlan): Promise<LoadResult> {
  const { dueMs, slots } = schedule(plan.rate, plan.durationMs, plan.rampMs);
  const totalLatency = newHistogram();
  const totalLag = newHistogram();
  const errors: Record<string, number> = {};
  const windows: WindowStats[] = [];
  let sent = 0;
  let completed = 0;
  let ok = 0;
  let sentLate10ms = 0;
  let inFlight = 0;
  let next = 0;
  const t0 = performance.now();
  let current = new Window(0, 0);
  let onIdle: (() => void) | undefined;
  // Set once the result is fixed: answers arriving after the drain bound are no longer counted.
  let closed = false;

  const fail = (kind: string) => {
    addTo(errors, kind);
    addTo(current.errors, kind);
  };

  const settle = (dueAt: number, outcome: Outcome) => {
    if (closed) return;
    inFlight--;
    completed++;
    current.completed++;
    const latency = performance.now() - dueAt;
    recordMs(totalLatency, latency);
    recordMs(current.latency, latency);
    if (outcome.ok) {
      ok++;
      current.ok++;
    } else fail(outcome.error);
    if (inFlight === 0) onIdle?.();
  };

  const issue = (slot: number) => {
    const dueAt = t0 + dueMs(slot);
    current.due++;
    if (inFlight >= plan.maxInFlight) return fail('overload');
    const lag = performance.now() - dueAt;
    recordMs(totalLag, lag);
    recordMs(current.lag, lag);
    if (lag > 10) sentLate10ms++;
    const target = plan.pick(slot, dueMs(slot));
    inFlight++;
    sent++;
    current.sent++;
    current.sentByKind[target.kind]++;
    if (inFlight > current.peakInFlight) current.peakInFlight = inFlight;
    plan.send(target).then(
      (outcome) => settle(dueAt, outcome),
      (err: unknown) => settle(dueAt, { ok: false, error: `exception ${(err as Error).name ?? 'unknown'}` }),
    );
  };

  const closeWindow = (endMs: number) => {
    const stats = current.close(endMs);
    windows.push(stats);
    plan.onWindow?.(stats);
    current = new Window(current.index + 1, endMs);
  };

  // Window boundaries inside the run; the last window closes after the drain.
  let windowTimer: NodeJS.Timeout | undefined;
  const armWindow = () => {
    const boundary = (current.index + 1) * plan.windowMs;
    if (boundary >= plan.durationMs) return;
    windowTimer = setTimeout(
      () => {
        closeWindow(boundary);
        armWindow();
      },
      Math.max(0, t0 + boundary - performance.now()),
    );
  };
  armWindow();

  // The schedule: each tick sends every slot due by now. A 1 ms timer, not a busy loop: the machine's
  // other work gets the CPU in between, and whatever this delays shows as lag.
  await new Promise<void>((resolve) => {
    const tick = () => {
      const elapsed = performance.now() - t0;
      while (next < slots && dueMs(next) <= elapsed) issue(next++);
      if (next >= slots) resolve();
      else setTimeout(tick, 1);
    };
    tick();
  });

  const drainStart = performance.now();
  if (inFlight > 0) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, plan.drainMs);
      onIdle = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
  onIdle = undefined;
  clearTimeout(windowTimer);
  const drainMs = performance.now() - drainStart;
  closed = true;
  if (inFlight > 0) {
    addTo(errors, 'unfinished', inFlight);
    addTo(current.errors, 'unfinished', inFlight);
  }
  closeWindow(Math.max(plan.durationMs, performance.now() - t0));

  return {
    windows,
    slots,
    sent,
    completed,
    ok,
    errors,
    latencyMs: figuresOf(totalLatency),
    lagMs: figuresOf(totalLag),
    sentLate10ms,
    seconds: (performance.now() - t0) / 1000,
    drainMs,
  };
}
