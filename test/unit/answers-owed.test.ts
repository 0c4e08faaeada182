// The answers owed on a client connection (src/proxy/http1/answers-owed.ts), with pipelined
// requests three deep: the order they are owed in survives answers closing first, last and in the
// middle. The listeners' own tests (test/integration/upgrade-path.test.ts) drive it through Node's
// server with two answers at most; this holds the bookkeeping to the order with more.

import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { AnswersOwed } from '../../src/proxy/http1/answers-owed.ts';

/** A response: closes once, when told. */
class Answer extends EventEmitter {
  close(): void {
    this.emit('close');
  }
}

/** Whether `promise` has settled after the callbacks and immediates now due have run. */
async function settledYet(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  void promise.then(() => {
    settled = true;
  });
  for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve));
  return settled;
}

function connectionOwing(count: number, complete = true) {
  const owed = new AnswersOwed();
  const socket = new PassThrough();
  const answers = Array.from({ length: count }, () => new Answer());
  for (const answer of answers) owed.add(socket, { complete }, answer);
  return { owed, socket, answers };
}

describe('AnswersOwed', () => {
  it('an answer waits for every one owed ahead of it, in the order the requests came, as they close', async () => {
    const { owed, socket, answers } = connectionOwing(4);
    const [a, b, c, d] = answers as [Answer, Answer, Answer, Answer];
    const dTurn = owed.settledBefore(socket, d);
    a.close();
    expect(await settledYet(dTurn)).toBe(false);
    // One in the middle closing out of turn (its connection's answer cut) does not move the order.
    c.close();
    expect(await settledYet(dTurn)).toBe(false);
    b.close();
    expect(await settledYet(dTurn)).toBe(true);
    // A request arriving now is owed after d, which is still open.
    const e = new Answer();
    owed.add(socket, { complete: true }, e);
    const eTurn = owed.settledBefore(socket, e);
    expect(await settledYet(eTurn)).toBe(false);
    d.close();
    expect(await settledYet(eTurn)).toBe(true);
  });

  it('settled waits for the last one owed, whichever closes first', async () => {
    const { owed, socket, answers } = connectionOwing(3);
    const [a, b, c] = answers as [Answer, Answer, Answer];
    const all = owed.settled(socket);
    a.close();
    b.close();
    expect(await settledYet(all)).toBe(false);
    c.close();
    expect(await settledYet(all)).toBe(true);
  });

  it('settled also ends when the connection closes, and the first answer is the first one owed', async () => {
    const { owed, socket, answers } = connectionOwing(2);
    expect(await settledYet(owed.settledBefore(socket, answers[0]!))).toBe(true);
    const all = owed.settled(socket);
    expect(await settledYet(all)).toBe(false);
    socket.destroy();
    expect(await settledYet(all)).toBe(true);
  });

  it('tells whether every request owed an answer was read whole', () => {
    const owed = new AnswersOwed();
    const socket = new PassThrough();
    const whole = new Answer();
    const cut = new Answer();
    owed.add(socket, { complete: true }, whole);
    expect(owed.allRead(socket)).toBe(true);
    owed.add(socket, { complete: false }, cut);
    expect(owed.allRead(socket)).toBe(false);
    whole.close();
    expect(owed.allRead(socket)).toBe(false);
    cut.close();
    expect(owed.allRead(socket)).toBe(true);
    expect(owed.allRead(new PassThrough())).toBe(true);
  });
});
