// The audit id (src/audit/event-id.ts): a version-4 UUID as crypto.randomUUID() writes one, built
// without its string joins. Held to randomUUID's form, to uniqueness across many pool refills, and
// to randomness in every hex position that is not fixed.

import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { newEventId } from '../../src/audit/event-id.ts';

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('newEventId', () => {
  it("is a version-4 UUID in randomUUID's form, and unique over many refills of its random pool", () => {
    expect(randomUUID()).toMatch(UUID_V4);
    const ids = new Set<string>();
    for (let i = 0; i < 50_000; i++) {
      const id = newEventId();
      expect(id).toMatch(UUID_V4);
      ids.add(id);
    }
    expect(ids.size).toBe(50_000);
  });

  it('varies every position the format leaves free, each digit about as often', () => {
    const n = 16_000;
    const seen = Array.from({ length: 36 }, () => new Map<string, number>());
    for (let i = 0; i < n; i++) {
      const id = newEventId();
      for (let p = 0; p < 36; p++) seen[p]!.set(id[p]!, (seen[p]!.get(id[p]!) ?? 0) + 1);
    }
    for (let p = 0; p < 36; p++) {
      const counts = seen[p]!;
      if ([8, 13, 18, 23].includes(p)) expect([...counts.keys()]).toEqual(['-']);
      else if (p === 14) expect([...counts.keys()]).toEqual(['4']);
      else {
        const digits = p === 19 ? 4 : 16;
        expect(counts.size, `position ${p}`).toBe(digits);
        // Each digit near n / digits: a fixed or biased nibble (a wrong shift or mask) lands far off.
        for (const count of counts.values()) expect(Math.abs(count - n / digits), `position ${p}`).toBeLessThan((n / digits) * 0.2);
      }
    }
  });
});
