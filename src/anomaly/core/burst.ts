import type { BurstSettings } from './settings.ts';

// A burst: more requests in a window than `factor` times the agent's own baseline (its usual
// count per window). The baseline follows the agent's closed windows, but slowly and capped, so an
// agent cannot train it up by going a little faster each window (the slow-training attack):
//   - each closed window moves it a quarter of the way to that window's count (ALPHA);
//   - it rises at most 10% per window (MAX_STEP_GROWTH), and at most doubles in a UTC day
//     (MAX_DAY_GROWTH, from where it stood when the day began), however fast the agent went;
//   - it falls as freely as ALPHA lets it (an idle agent's baseline decays toward zero);
//   - it is read as at least MIN_BASELINE (a new agent may make factor × 2 requests a window).
// Only a person's yes to a held burst raises it further (taught): that is a decision, not drift.

export const ALPHA = 0.25;
export const MAX_STEP_GROWTH = 1.1;
export const MAX_DAY_GROWTH = 2;
export const MIN_BASELINE = 2;
export const TAUGHT_HEADROOM = 2;
/** Closed windows folded in at most, one after the other (the rest of a long idle spell: the baseline is decayed as far as it goes). */
const MAX_STEPS = 64;

export interface BurstState {
  /** Start of the window being counted (epoch ms, a multiple of per). */
  window: number;
  /** Requests admitted in that window so far. */
  count: number;
  /** The usual count per window. */
  baseline: number;
  /** The UTC day the day's cap counts from, and the baseline when it began. */
  day: string;
  dayBase: number;
}

export function windowOf(now: number, perMs: number): number {
  return now - (now % perMs);
}

export function freshBurst(now: number, perMs: number): BurstState {
  return { window: windowOf(now, perMs), count: 0, baseline: 0, day: utcDay(now), dayBase: 0 };
}

/** The state at `now`: each window closed since folded into the baseline, under the caps. */
export function rollBurst(state: BurstState, now: number, perMs: number): BurstState {
  const current = windowOf(now, perMs);
  if (current <= state.window) return state;
  let { baseline, day, dayBase } = state;
  let count = state.count;
  let at = state.window;
  for (let step = 0; step < MAX_STEPS && at < current; step++) {
    const closedDay = utcDay(at);
    if (closedDay !== day) {
      day = closedDay;
      dayBase = baseline;
    }
    baseline = nextBaseline(baseline, count, dayBase);
    count = 0;
    at += perMs;
  }
  const today = utcDay(current);
  if (today !== day) {
    day = today;
    dayBase = baseline;
  }
  return { window: current, count: 0, baseline, day, dayBase };
}

/** One closed window's count folded into the baseline, under the caps. */
export function nextBaseline(baseline: number, count: number, dayBase: number): number {
  const moved = baseline + ALPHA * (count - baseline);
  const stepCap = Math.max(baseline, MIN_BASELINE) * MAX_STEP_GROWTH;
  const dayCap = Math.max(dayBase, MIN_BASELINE) * MAX_DAY_GROWTH;
  return Math.max(0, Math.min(moved, stepCap, dayCap));
}

/** The count a window may reach before a request is a burst. */
export function burstLimit(state: BurstState, settings: BurstSettings): number {
  return settings.factor * Math.max(state.baseline, MIN_BASELINE);
}

/** Why this request (the window's count so far plus `pending` not yet stored, plus this one) is a burst; undefined: it is not. */
export function burstWhy(state: BurstState, pending: number, settings: BurstSettings): string | undefined {
  const seen = state.count + pending + 1;
  const limit = burstLimit(state, settings);
  if (seen <= limit) return undefined;
  return `${seen} requests in this ${formatPer(settings.perMs)} window, over ${settings.factor} × its baseline of ${Math.max(state.baseline, MIN_BASELINE).toFixed(1)}`;
}

/**
 * A person let a burst through: the baseline rises so that this window may reach twice the count
 * it had (TAUGHT_HEADROOM), so the agent's next requests at this rate are usual.
 */
export function teachBurst(state: BurstState, settings: BurstSettings): BurstState {
  const needed = (TAUGHT_HEADROOM * (state.count + 1)) / settings.factor;
  return state.baseline >= needed ? state : { ...state, baseline: needed, dayBase: Math.max(state.dayBase, needed) };
}

function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

function formatPer(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  return `${ms / 1000}s`;
}
