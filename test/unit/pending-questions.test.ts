// A worker's questions to the primary (app/workers/pending-questions.ts): each is answered once, fails
// when the primary is gone or silent, and an answer to nothing is dropped.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { PendingQuestions } from '../../src/app/workers/pending-questions.ts';

describe('questions waiting for the primary', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('settles a question with its own answer, given what was kept when it was asked', async () => {
    const pending = new PendingQuestions<string, { name: string }>();
    const sent: number[] = [];
    const first = pending.ask({ name: 'a' }, (id) => sent.push(id));
    const second = pending.ask({ name: 'b' }, (id) => sent.push(id));
    expect(sent).toEqual([1, 2]);
    pending.answer(2, ({ name }) => `${name}:2`);
    pending.answer(2, () => 'again'); // answered already: dropped
    pending.answer(7, () => 'nobody asked'); // dropped
    pending.answer(1, ({ name }) => `${name}:1`);
    await expect(first).resolves.toBe('a:1');
    await expect(second).resolves.toBe('b:2');
  });

  it('fails a question whose answer says it failed, or whose send throws', async () => {
    const pending = new PendingQuestions<string>();
    const failed = pending.ask(undefined, () => undefined);
    pending.answer(1, () => {
      throw new Error('the primary could not check');
    });
    await expect(failed).rejects.toThrow('the primary could not check');
    await expect(
      pending.ask(undefined, () => {
        throw new Error('channel closed');
      }),
    ).rejects.toThrow('channel closed');
  });

  it('fails what waits, and everything after, once the primary is gone', async () => {
    const pending = new PendingQuestions<string>();
    const waiting = pending.ask(undefined, () => undefined);
    pending.primaryGone();
    expect(pending.gone).toBe(true);
    await expect(waiting).rejects.toThrow('the primary process is gone');
    let sent = false;
    await expect(pending.ask(undefined, () => (sent = true))).rejects.toThrow('the primary process is gone');
    expect(sent).toBe(false);
  });

  it('fails a question the primary does not answer in 5 s, and drops its late answer', async () => {
    vi.useFakeTimers();
    const pending = new PendingQuestions<string>();
    const silent = pending.ask(undefined, () => undefined);
    const outcome = silent.catch((err: Error) => err.message);
    vi.advanceTimersByTime(4_999);
    pending.answer(2, () => 'not this one');
    vi.advanceTimersByTime(1);
    await expect(outcome).resolves.toBe('the primary process did not answer');
    pending.answer(1, () => 'too late'); // nothing waits: dropped without a throw
  });
});
