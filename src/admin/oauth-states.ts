// The authorization-code flows started through the admin API and not yet finished, by state. The
// callback route is open (a provider's redirect carries no admin token, and SameSite cookies are not
// sent on it), so the state is what authenticates it: 128 random bits, good for one use and a few
// minutes. Entries are kept by the state's hash, so a lookup's timing says nothing about a state
// that exists; a used or expired state is remembered a while longer to say so on a second try.

import { createHash } from 'node:crypto';
import type { ConnectPlan } from '../oauth/connect-plan.ts';

export interface PendingConnect {
  plan: ConnectPlan;
  verifier: string;
  redirectUri: string;
  expiresAt: number;
}

export type StateClaim = { kind: 'ok'; pending: PendingConnect } | { kind: 'unknown' } | { kind: 'used'; grant: string } | { kind: 'expired'; grant: string };

interface Entry {
  pending: PendingConnect;
  used: boolean;
}

export const STATE_TTL_MS = 10 * 60_000;
/** Flows waiting at once; starting one more forgets the oldest (its callback then says "unknown"). */
export const MAX_PENDING_STATES = 32;

export class PendingAuthorizations {
  readonly #entries = new Map<string, Entry>();
  readonly #ttlMs: number;
  readonly #now: () => number;

  constructor(ttlMs = STATE_TTL_MS, now: () => number = Date.now) {
    this.#ttlMs = ttlMs;
    this.#now = now;
  }

  /** Remembers a started flow; returns when its state expires. */
  add(state: string, pending: Omit<PendingConnect, 'expiresAt'>): number {
    this.#sweep();
    const expiresAt = this.#now() + this.#ttlMs;
    this.#entries.set(keyOf(state), { pending: { ...pending, expiresAt }, used: false });
    const waiting = [...this.#entries].filter(([, e]) => !e.used);
    for (const [key] of waiting.slice(0, Math.max(0, waiting.length - MAX_PENDING_STATES))) this.#entries.delete(key);
    return expiresAt;
  }

  /** The flow a callback's state belongs to, at most once. Any answer but `ok` means: store nothing. */
  claim(state: string): StateClaim {
    this.#sweep();
    const entry = this.#entries.get(keyOf(state));
    if (entry === undefined) return { kind: 'unknown' };
    const grant = entry.pending.plan.grantId;
    if (entry.used) return { kind: 'used', grant };
    entry.used = true;
    if (this.#now() >= entry.pending.expiresAt) return { kind: 'expired', grant };
    return { kind: 'ok', pending: entry.pending };
  }

  /** Forgets entries a while after they expired: long enough to tell a late second try what happened. */
  #sweep(): void {
    const now = this.#now();
    for (const [key, entry] of this.#entries) if (now >= entry.pending.expiresAt + this.#ttlMs) this.#entries.delete(key);
  }
}

function keyOf(state: string): string {
  return createHash('sha256').update(state).digest('hex');
}
