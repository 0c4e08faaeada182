import { LRUCache } from 'lru-cache';
import type { IncomingMessage } from 'node:http';
import type { Agent, AgentTable } from '../../credentials/agents.ts';
import { ProxyError } from '../../errors/index.ts';
import { identifyAgent } from './agent.ts';

// Proxy authentication failures, throttled per client address. A wrong or missing agent
// key costs keyway next to nothing (a SHA-256 and a 407), so one connection could ask thousands of
// times a second, each answer an audit line. After AUTH_FAILURES_IN_A_ROW failures from one address
// with no success between them, a further failure from it within AUTH_THROTTLE_SECONDS is answered
// 429 rate_limited with Retry-After, and the connection is closed (an attacker pays a new connection
// for each guess). Credentials are still checked while throttled: a request that authenticates goes
// through and clears the count, so the real agent is never locked out, not on another address and
// not on the same one (loopback clients all share 127.0.0.1). Agent keys are random (`keyway agents
// add`): guessing one is not the threat this answers; the rate of cheap refusals is.

/** Failures from one address, in a row, answered 407 before the next ones are answered 429. */
export const AUTH_FAILURES_IN_A_ROW = 5;
/** How long a throttled address stays so after its last failure (also the Retry-After, in seconds). */
export const AUTH_THROTTLE_SECONDS = 10;
/** Addresses remembered; the least recently failing one is forgotten past this (bounded memory). */
const MAX_ADDRESSES = 10_000;

interface Failures {
  count: number;
  /** performance.now() of the latest failure. */
  last: number;
}

export class AuthThrottle {
  readonly #failures = new LRUCache<string, Failures>({ max: MAX_ADDRESSES });
  readonly #now: () => number;

  constructor(now: () => number = () => performance.now()) {
    this.#now = now;
  }

  /** identifyAgent, counting failures per client address: its 407, or 429 once throttled. */
  identify(req: IncomingMessage, agents: AgentTable, client: string, callerKey?: string): Agent {
    let agent: Agent;
    try {
      agent = identifyAgent(req, agents, callerKey);
    } catch (err) {
      throw err instanceof ProxyError && err.code === 'proxy_auth_required' ? this.#failed(client, err) : err;
    }
    // A success clears the address. Nothing to do on the common path, where no failure is recorded.
    if (this.#failures.size !== 0) this.#failures.delete(client);
    return agent;
  }

  /** Addresses with failures on record (for tests). */
  get size(): number {
    return this.#failures.size;
  }

  #failed(client: string, err: ProxyError): ProxyError {
    const now = this.#now();
    let entry = this.#failures.get(client);
    if (entry === undefined || now - entry.last > AUTH_THROTTLE_SECONDS * 1000) {
      entry = { count: 0, last: now };
      this.#failures.set(client, entry);
    }
    entry.count++;
    entry.last = now;
    if (entry.count <= AUTH_FAILURES_IN_A_ROW) return err;
    return new ProxyError('rate_limited', `proxy authentication failed ${AUTH_FAILURES_IN_A_ROW} times in a row from this address`, {
      hint: `check the agent id and key in the proxy URL (\`keyway agents list\`); retry after ${AUTH_THROTTLE_SECONDS} s`,
      retryAfter: AUTH_THROTTLE_SECONDS,
    });
  }
}
