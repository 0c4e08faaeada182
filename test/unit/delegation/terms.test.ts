import { describe, expect, it } from 'vitest';
import { KeywayError } from '../../../src/errors/index.ts';
import { checkMint, DEFAULT_CHILD_TTL_MS, type MintingParent } from '../../../src/delegation/terms.ts';

// What a child may be at minting: never wider than its parent (src/delegation/terms.ts).

const NOW = Date.parse('2026-11-29T10:00:00.000Z');
const HOUR = 3_600_000;
const parent: MintingParent = {
  id: 'lead',
  grants: new Set(['github', 'openai']),
  expiresAt: undefined,
  leaseTtlMs: undefined,
  maxLeaseTtlMs: undefined,
  depth: 1,
  hasKey: true,
};
const ask = { grants: undefined, ttlMs: undefined, depth: undefined };

function refusal(fn: () => unknown): KeywayError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(KeywayError);
    expect((err as KeywayError).code).toBe('delegation_refused');
    return err as KeywayError;
  }
  throw new Error('expected delegation_refused');
}

describe('checkMint', () => {
  it("gives a child a subset of the grants, and by default exactly the parent's", () => {
    expect(checkMint(parent, { ...ask, grants: ['github'] }, NOW).grants).toEqual(['github']);
    expect(checkMint(parent, ask, NOW).grants).toEqual(['github', 'openai']);
  });

  it('refuses a grant the parent lacks, naming it', () => {
    expect(refusal(() => checkMint(parent, { ...ask, grants: ['github', 'slack'] }, NOW)).message).toMatch(/does not hold grant "slack"/);
    expect(refusal(() => checkMint(parent, { ...ask, grants: [] }, NOW)).message).toMatch(/at least one grant/);
  });

  it('lets a parent with every grant hand on any, and one without grants set keeps "every grant" only when none are named', () => {
    const open = { ...parent, grants: undefined };
    expect(checkMint(open, { ...ask, grants: ['slack'] }, NOW).grants).toEqual(['slack']);
    expect(checkMint(open, ask, NOW).grants).toBeUndefined();
  });

  it('never outlives the parent: its expiry, its longest lease', () => {
    expect(checkMint(parent, ask, NOW).expiresAt).toBe(NOW + DEFAULT_CHILD_TTL_MS);
    const child = { ...parent, expiresAt: NOW + 30 * 60_000 };
    // The default is cut to the parent's; a TTL asked for past it is refused.
    expect(checkMint(child, ask, NOW).expiresAt).toBe(NOW + 30 * 60_000);
    expect(refusal(() => checkMint(child, { ...ask, ttlMs: HOUR }, NOW)).message).toMatch(/outlive its parent: agent "lead" expires at/);
    const leased = { ...parent, leaseTtlMs: HOUR, maxLeaseTtlMs: 2 * HOUR };
    expect(checkMint(leased, { ...ask, ttlMs: 2 * HOUR }, NOW).expiresAt).toBe(NOW + 2 * HOUR);
    expect(refusal(() => checkMint(leased, { ...ask, ttlMs: 3 * HOUR }, NOW)).message).toMatch(/leases last at most 2h/);
    expect(refusal(() => checkMint({ ...parent, expiresAt: NOW }, ask, NOW)).message).toMatch(/expired/);
  });

  it("keeps depth below the parent's: a root of depth 1 mints children that mint nothing", () => {
    expect(checkMint(parent, ask, NOW).depth).toBe(0);
    expect(refusal(() => checkMint(parent, { ...ask, depth: 1 }, NOW)).message).toMatch(/depth 1 is more than agent "lead" may hand on \(0/);
    expect(refusal(() => checkMint({ ...parent, depth: 0 }, ask, NOW)).message).toMatch(/no delegation depth left/);
    expect(checkMint({ ...parent, depth: 3 }, { ...ask, depth: 2 }, NOW).depth).toBe(2);
    expect(refusal(() => checkMint(parent, { ...ask, depth: -1 }, NOW)).message).toMatch(/whole number/);
  });

  it('refuses a parent without a key (identity-token agents wait for a later slice)', () => {
    expect(refusal(() => checkMint({ ...parent, hasKey: false }, ask, NOW)).message).toMatch(/neither a key nor an identity mapping/);
  });
});
