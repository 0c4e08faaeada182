import { PassThrough } from 'node:stream';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { HandshakePacer } from '../../src/proxy/handshake-pacer.ts';

// The turns one agent's TLS handshakes take (issue 60, fault 7); the proxy's use of it is tested end
// to end in test/hostile/agent-isolation.test.ts, the latency it buys in bench/agent-flood.ts. A
// "turn" here is what setImmediate waits for: the pacer's own tick runs in the check phase.

/** Starts `count` handshakes of `agent`; returns the order they began in (their index). */
function startMany(pacer: HandshakePacer, agent: string, count: number, began: string[], sockets: PassThrough[] = []): void {
  for (let i = 0; i < count; i++) {
    const socket = new PassThrough();
    sockets.push(socket);
    pacer.start(agent, socket, () => began.push(`${agent}-${i}`));
  }
}

describe('HandshakePacer: each agent starts a few handshakes a turn', () => {
  it('starts up to the limit at once, the rest over the next turns in order; another agent is not held up', async () => {
    const pacer = new HandshakePacer(3);
    const began: string[] = [];
    startMany(pacer, 'a', 8, began);
    startMany(pacer, 'b', 2, began);
    expect(began).toEqual(['a-0', 'a-1', 'a-2', 'b-0', 'b-1']);
    expect(pacer.queued('a')).toBe(5);
    await nextTurn();
    expect(began.slice(5)).toEqual(['a-3', 'a-4', 'a-5']);
    await nextTurn();
    await nextTurn();
    expect(began.slice(8)).toEqual(['a-6', 'a-7']);
    expect(pacer.queued('a')).toBe(0);
  });

  it("a new connection waits behind its own agent's queue, never jumps it", async () => {
    const pacer = new HandshakePacer(2);
    const began: string[] = [];
    startMany(pacer, 'a', 3, began);
    expect(began).toEqual(['a-0', 'a-1']);
    pacer.start('a', new PassThrough(), () => began.push('late'));
    await nextTurn();
    expect(began).toEqual(['a-0', 'a-1', 'a-2', 'late']);
  });

  it('a connection closed while it waited is skipped, and does not use up a turn', async () => {
    const pacer = new HandshakePacer(1);
    const began: string[] = [];
    const sockets: PassThrough[] = [];
    startMany(pacer, 'a', 3, began, sockets);
    sockets[1]!.destroy();
    await nextTurn();
    expect(began).toEqual(['a-0', 'a-2']);
  });

  it('the count starts again each turn: a steady trickle is never queued', async () => {
    const pacer = new HandshakePacer(2);
    const began: string[] = [];
    for (let turn = 0; turn < 5; turn++) {
      startMany(pacer, `t${turn}`, 1, began);
      startMany(pacer, 'a', 2, began);
      expect(pacer.queued('a')).toBe(0);
      await nextTurn();
      await nextTurn();
    }
    expect(began.filter((b) => b.startsWith('a-'))).toHaveLength(10);
  });
});
