import { randomBytes, randomUUID } from 'node:crypto';
import type { NonceFormat, TimestampFormat } from '../fields/sign-schema.ts';

// Time and nonces come in from outside, so signing stays a pure function a test can pin down.

export interface SigningSources {
  /** Epoch milliseconds. */
  now(): number;
  /** A fresh nonce in this format; `nowMs` is the same instant the timestamp uses. */
  nonce(format: NonceFormat, nowMs: number): string;
}

export function formatTimestamp(ms: number, format: TimestampFormat): string {
  if (format === 'unix_ms') return String(Math.floor(ms));
  if (format === 'unix_seconds') return String(Math.floor(ms / 1000));
  return new Date(ms).toISOString();
}

/**
 * The proxy's sources. Counters never repeat or go back within the process, even when the clock
 * steps back or two requests share a millisecond: Kraken and others refuse a nonce that is not
 * larger than the last one the key used. Make one per process and share it across requests: each
 * instance keeps its own counters. (Replicas sharing one key do not share counters.)
 */
export function systemSources(clock: () => number = Date.now): SigningSources {
  let lastMs = 0;
  let lastUs = 0;
  return {
    now: clock,
    nonce(format, nowMs) {
      if (format === 'counter_ms') {
        lastMs = Math.max(Math.floor(nowMs), lastMs + 1);
        return String(lastMs);
      }
      if (format === 'counter_us') {
        lastUs = Math.max(Math.floor(nowMs) * 1000, lastUs + 1);
        return String(lastUs);
      }
      if (format === 'uuid') return randomUUID();
      return randomBytes(16).toString('hex');
    },
  };
}

/** Sources that always answer the same: for test vectors. */
export function fixedSources(nowMs: number, nonce = '0'): SigningSources {
  return { now: () => nowMs, nonce: () => nonce };
}
