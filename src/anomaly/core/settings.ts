// The anomaly settings as the core reads them (config `anomaly:`, resolved for one agent): plain
// values, so the core stays pure and its tests need no config.

export type AnomalyMode = 'off' | 'alert' | 'hold';
export type SignalName = 'first_use' | 'new_host' | 'new_method' | 'burst' | 'off_hours';
export const SIGNAL_NAMES: readonly SignalName[] = ['first_use', 'new_host', 'new_method', 'burst', 'off_hours'];

export interface BurstSettings {
  /** The window requests are counted in (ms). */
  perMs: number;
  /** A window over factor × the agent's baseline is a burst. */
  factor: number;
}

/** The agent's usual hours: a request outside them (and in an hour of the week it was never taught) is off hours. */
export interface HoursSettings {
  /** [from, to): hours of the day, 0..24; from > to wraps past midnight (22-06). */
  from: number;
  to: number;
  /** Days of the week, 0 = Sunday. */
  days: readonly number[];
  /** IANA time zone the hours are read in. */
  tz: string;
}

export interface AnomalySettings {
  mode: AnomalyMode;
  first_use: boolean;
  new_host: boolean;
  new_method: boolean;
  burst: BurstSettings | undefined;
  off_hours: HoursSettings | undefined;
}

/** One signal that fired, with why, in words a person reads on the approval and the audit line. */
export interface Signal {
  name: SignalName;
  why: string;
}
