// What one agent may hold of keyway at once, so that one agent (hostile, or only runaway) cannot
// take keyway down for all: its requests in flight (past proxy.max_in_flight_per_agent: 429
// rate_limited), and the request bodies kept in memory for a replay after a 401 (past
// proxy.max_replay_memory_per_agent, or past proxy.max_replay_memory for all agents together, a
// body streams without being kept, and is not replayed). Without these, 500 parallel 1 MiB POSTs
// to a stalled upstream on an OAuth grant took keyway from 86 to 1,205 MiB RSS.

import { ProxyError } from '../errors/index.ts';

/** The limits, read from the live config at each use: a reload applies to the next request. */
export interface LoadLimits {
  readonly max_in_flight_per_agent: number;
  readonly max_replay_memory: number;
  readonly max_replay_memory_per_agent: number;
}

/** One agent's counts. An exchange keeps its agent's share and gives back what it took. */
export class AgentShare {
  inFlight = 0;
  /** Bytes of request bodies kept for a replay, by all of this agent's requests. */
  held = 0;
}

export class AgentLoad {
  readonly #limits: () => LoadLimits;
  // By agent id. Entries are never removed: ids come from the config and the store (a bounded
  // set), and dropping an idle entry would cost an allocation for each request of a quiet agent.
  readonly #shares = new Map<string, AgentShare>();
  #heldTotal = 0;

  constructor(limits: () => LoadLimits) {
    this.#limits = limits;
  }

  /** All agents' bytes kept for a replay now. */
  get heldBytes(): number {
    return this.#heldTotal;
  }

  /** Takes a slot for one more request of this agent; undefined when it has its limit in flight. */
  enter(agentId: string): AgentShare | undefined {
    let share = this.#shares.get(agentId);
    if (share === undefined) {
      share = new AgentShare();
      this.#shares.set(agentId, share);
    }
    if (share.inFlight >= this.#limits().max_in_flight_per_agent) return undefined;
    share.inFlight++;
    return share;
  }

  /**
   * enter(), or the refusal an agent past its limit gets (429 rate_limited, Retry-After: 1): the
   * same answer for a request, an HTTP/2 stream and a WebSocket handshake.
   */
  admit(agentId: string): AgentShare {
    const share = this.enter(agentId);
    if (share !== undefined) return share;
    const max = this.#limits().max_in_flight_per_agent;
    throw new ProxyError('rate_limited', `agent "${agentId}" has ${max} requests in flight already (proxy.max_in_flight_per_agent)`, {
      hint: 'wait for some of them to finish, then retry',
      retryAfter: 1,
    });
  }

  leave(share: AgentShare): void {
    share.inFlight--;
  }

  /** Reserves `bytes` to keep for a replay; false (nothing reserved) when a budget would be passed. */
  hold(share: AgentShare, bytes: number): boolean {
    const limits = this.#limits();
    if (share.held + bytes > limits.max_replay_memory_per_agent || this.#heldTotal + bytes > limits.max_replay_memory) return false;
    share.held += bytes;
    this.#heldTotal += bytes;
    return true;
  }

  release(share: AgentShare, bytes: number): void {
    share.held -= bytes;
    this.#heldTotal -= bytes;
  }
}
