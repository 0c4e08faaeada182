import { describe, expect, it } from 'vitest';
import { admitMint, MAX_LIVE_CHILDREN, MINT_WINDOW_MS, MINTS_PER_WINDOW } from '../../../src/delegation/mint-limit.ts';

describe("admitMint: a parent's mints through the door, per window and alive", () => {
  const now = 1_000_000_000;

  it('admits up to the limit within the window, and keeps only the window', () => {
    let at: number[] = [now - MINT_WINDOW_MS - 1];
    for (let i = 0; i < MINTS_PER_WINDOW; i++) {
      const verdict = admitMint('lead', at, 0, now + i);
      expect(verdict.ok).toBe(true);
      if (verdict.ok) at = verdict.at;
    }
    expect(at).toHaveLength(MINTS_PER_WINDOW);
    const refused = admitMint('lead', at, 0, now + MINTS_PER_WINDOW);
    expect(refused).toMatchObject({ ok: false });
    // Free again when the oldest leaves the window: Retry-After says when.
    if (!refused.ok) expect(refused.retryAfterS).toBe(Math.ceil((MINT_WINDOW_MS - MINTS_PER_WINDOW) / 1000));
    expect(admitMint('lead', at, 0, now + MINT_WINDOW_MS).ok).toBe(true);
  });

  it('counts times from a clock set back as recent, and ignores what is not a time', () => {
    const future = Array.from({ length: MINTS_PER_WINDOW }, () => now + 10 * MINT_WINDOW_MS);
    expect(admitMint('lead', future, 0, now).ok).toBe(false);
    expect(admitMint('lead', [Number.NaN, Number.POSITIVE_INFINITY], 0, now)).toEqual({ ok: true, at: [now] });
  });

  it('refuses past the live children bound', () => {
    expect(admitMint('lead', [], MAX_LIVE_CHILDREN - 1, now).ok).toBe(true);
    const refused = admitMint('lead', [], MAX_LIVE_CHILDREN, now);
    expect(refused).toMatchObject({ ok: false, retryAfterS: 60 });
    if (!refused.ok) expect(refused.reason).toContain(`at most ${MAX_LIVE_CHILDREN}`);
  });
});
