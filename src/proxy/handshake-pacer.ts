// How many of one agent's TLS handshakes keyway starts per turn of its event loop (issue 60, fault
// 7). keyway serves every agent on one event loop, and each turn runs whatever became ready since
// the last: an agent that opened 300 connections at once put 300 handshakes with keyway (then
// keyway's own to the upstream, and the request each one carries) into a turn or two, and another
// agent's request, which needs half a dozen turns (CONNECT, handshake, request, upstream, answer),
// waited behind every one of them: 1.9 s and 5.8 s were measured for one GET while a flood of
// stalled uploads was being opened (bench/agent-flood.ts). So each agent starts at most
// HANDSHAKES_PER_TURN handshakes a turn; the rest wait, in the order they came, for the next turns.
// Other agents' handshakes never wait on it: each agent has its own count.
//
// A count per turn, not a number of handshakes open at once: a handshake that waits on its client
// (a ClientHello sent a byte at a time) costs keyway nothing, and holding a place for it would let
// sixteen such connections stop an agent's every new connection. A queued connection has had its
// first byte (first_byte bounds the wait for it) and its handshake timer starts when it is started;
// the queue moves HANDSHAKES_PER_TURN a turn, so 300 connections wait about twenty turns.

import type { Duplex } from 'node:stream';

/** One agent's TLS handshakes started per event-loop turn; the rest wait for the next turns. */
export const HANDSHAKES_PER_TURN = 16;

interface Waiting {
  readonly socket: Duplex;
  readonly begin: () => void;
}

/** One agent's handshakes started this turn, and those waiting (from `next` on). */
class AgentTurn {
  started = 0;
  waiting: Waiting[] = [];
  next = 0;

  get queued(): number {
    return this.waiting.length - this.next;
  }
}

export class HandshakePacer {
  readonly #perTurn: number;
  // By agent id; never removed (ids come from the config and the store, a bounded set), as AgentLoad's.
  readonly #byAgent = new Map<string, AgentTurn>();
  #tickPending = false;

  constructor(perTurn = HANDSHAKES_PER_TURN) {
    this.#perTurn = perTurn;
  }

  /**
   * Calls `begin` now if `agentId` has started fewer than the limit this turn and none of its
   * connections are waiting, else on a later turn, in order. A socket destroyed meanwhile is skipped.
   */
  start(agentId: string, socket: Duplex, begin: () => void): void {
    let agent = this.#byAgent.get(agentId);
    if (agent === undefined) {
      agent = new AgentTurn();
      this.#byAgent.set(agentId, agent);
    }
    if (agent.queued === 0 && agent.started < this.#perTurn) {
      agent.started++;
      begin();
    } else agent.waiting.push({ socket, begin });
    this.#scheduleTick();
  }

  /** This agent's connections waiting for a later turn (for tests and metrics). */
  queued(agentId: string): number {
    return this.#byAgent.get(agentId)?.queued ?? 0;
  }

  // setImmediate runs in the loop's check phase, after the turn's I/O; one scheduled from inside
  // it runs in the next turn's. So each turn starts at most #perTurn per agent in all: those started
  // as they came (poll phase) and those the tick started from the queue (check phase) share one count.
  #scheduleTick(): void {
    if (this.#tickPending) return;
    this.#tickPending = true;
    setImmediate(this.#tick);
  }

  readonly #tick = (): void => {
    this.#tickPending = false;
    let busy = false;
    for (const agent of this.#byAgent.values()) {
      agent.started = 0;
      while (agent.queued > 0 && agent.started < this.#perTurn) {
        const { socket, begin } = agent.waiting[agent.next]!;
        agent.next++;
        if (socket.destroyed) continue;
        agent.started++;
        begin();
      }
      if (agent.queued === 0) {
        agent.waiting = [];
        agent.next = 0;
      }
      if (agent.queued > 0) busy = true;
    }
    if (busy) this.#scheduleTick();
  };
}
