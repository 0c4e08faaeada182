// lookSinceAsked (credentials/store/since-asked.ts): the store look a refused value's check relies
// on. Every caller is answered by a look that began after it asked; a burst shares looks.
import { describe, expect, it } from 'vitest';
import { lookSinceAsked } from '../../src/credentials/store/since-asked.ts';

/** A look the test ends by hand: `ends[i]()` finishes the i-th look begun (`fail` with an error). */
function manualLooks() {
  const ends: Array<{ ok: () => void; fail: (err: Error) => void }> = [];
  const look = lookSinceAsked(
    () =>
      new Promise<void>((ok, fail) => {
        ends.push({ ok, fail });
      }),
  );
  return { look, ends };
}

const settled = async (p: Promise<unknown>) => {
  let done = false;
  void p.then(
    () => (done = true),
    () => (done = true),
  );
  for (let i = 0; i < 5; i++) await Promise.resolve();
  return done;
};

describe('lookSinceAsked', () => {
  it('a caller that asks while a look runs is answered by the next one, begun after that one ends; a burst shares it', async () => {
    const { look, ends } = manualLooks();
    const first = look();
    const [second, third] = [look(), look()];
    expect(ends).toHaveLength(1);
    ends[0]!.ok();
    await first;
    // The first look ended: the one the other two wait for begins only now.
    expect(await settled(second)).toBe(false);
    expect(ends).toHaveLength(2);
    ends[1]!.ok();
    await Promise.all([second, third]);
    expect(ends).toHaveLength(2);
  });

  it('a caller that asks once the looks are done gets a new look, not an old answer', async () => {
    const { look, ends } = manualLooks();
    const first = look();
    ends[0]!.ok();
    await first;
    const later = look();
    expect(ends).toHaveLength(2);
    expect(await settled(later)).toBe(false);
    ends[1]!.ok();
    await later;
  });

  it('a look that fails fails its own callers; those waiting for the next one get it', async () => {
    const { look, ends } = manualLooks();
    const first = look();
    const second = look();
    ends[0]!.fail(new Error('the store cannot be read'));
    await expect(first).rejects.toThrow('the store cannot be read');
    for (let i = 0; i < 5; i++) await Promise.resolve();
    expect(ends).toHaveLength(2);
    ends[1]!.ok();
    await expect(second).resolves.toBeUndefined();
  });
});
