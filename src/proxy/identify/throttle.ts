import { LRUCache } from 'lru-cache';
import type { IncomingMessage } from 'node:http';
import type { Agent, AgentTable } from '../../credentials/agents.ts';
import { ProxyError } from '../../errors/index.ts';
import type { IdentityVerifier } from '../../identity-tokens/verifier.ts';
import { claimedAgent, identifyAgent, presentedToken } from './agent.ts';

// Proxy authentication failures, throttled. A wrong or missing agent key costs keyway next to
// nothing (a SHA-256 and a 407), so one connection could ask thousands of times a second, each
// answer an audit line, and a key typed into a config (not made by `keyway agents add`) may be weak
// enough to guess. Three counts of failures in a row, each forgotten AUTH_THROTTLE_SECONDS after its
// last failure:
// - per address and agent named: after AUTH_FAILURES_IN_A_ROW, requests naming that agent from that
//   address are answered 429 with the key NOT checked: an answer that differed for the right key
//   (200 against 429) would tell a guesser when it had won. So the right key from the guessing
//   address is refused alike while the backoff lasts; each refused request extends it;
// - per address, for requests that name no agent keyway knows (made-up ids, no credentials): after
//   AUTH_FAILURES_IN_A_ROW, 429, so a flood of cheap refusals costs a new connection per request;
// - per agent named, from any addresses (an attacker rotating over 127.0.0.x): after
//   AGENT_FAILURES_IN_A_ROW wrong keys, each further wrong key naming it is answered after a delay
//   (NAME_DELAY_STEP_MS more per failure, at most NAME_DELAY_MAX_MS). This count never refuses and
//   never delays a right key: a count that refused the name (as it did before issue 46) let anyone
//   lock an agent out everywhere by flooding its name from one address. Only keys actually checked
//   count here (a 429 above checks none), and the agent's own successes do not clear it (they
//   would reset a distributed guesser's delay).
// A success clears its address's counts (never another address's). Another agent on the same
// address (loopback clients all share 127.0.0.1) is never locked out by someone else's failures.
// Under proxy.workers the counts are each worker process's own (connections from one address are
// spread over the workers), so an address gets up to AUTH_FAILURES_IN_A_ROW checked keys per
// worker before its backoff.

/** Failures from one address, in a row, answered 407 before the next ones are answered 429. */
export const AUTH_FAILURES_IN_A_ROW = 5;
/** Wrong keys naming one agent, from any addresses, before each further one is answered late. */
export const AGENT_FAILURES_IN_A_ROW = 20;
/** The delay added per wrong key past AGENT_FAILURES_IN_A_ROW (the 21st waits this, the 22nd twice this...). */
export const NAME_DELAY_STEP_MS = 100;
/** The longest a wrong key naming a much-guessed agent waits for its 407. */
export const NAME_DELAY_MAX_MS = 1_000;
/** How long a throttled address or name stays so after its last failure (also the Retry-After, in seconds). */
export const AUTH_THROTTLE_SECONDS = 10;
/** Addresses and names remembered; the least recently failing one is forgotten past this (bounded memory). */
const MAX_ENTRIES = 10_000;

interface Failures {
  count: number;
  /** performance.now() of the latest failure. */
  last: number;
}

export class AuthThrottle {
  /**
   * Failures in a row by address, by address and agent, and by agent (the keys below). Made at the
   * first failure: lru-cache allocates its slots up front (~0.2 MiB for MAX_ENTRIES), which a keyway
   * whose agents never give a wrong key would hold for nothing.
   */
  #counts: LRUCache<string, Failures> | undefined;
  readonly #now: () => number;

  constructor(now: () => number = () => performance.now()) {
    this.#now = now;
  }

  /**
   * identifyAgent, unless the address is throttled for the agent named, or for unknown names (429,
   * key unchecked); failures counted. A wrong key naming a much-guessed agent is refused late (a
   * promise). An identity token is judged asynchronously (its issuer's keys may need fetching): a
   * refused one counts as a failure from its address; an unavailable issuer does not count.
   */
  identify(req: IncomingMessage, agents: AgentTable, client: string, callerKey?: string, identities?: IdentityVerifier): Agent | Promise<Agent> {
    if (identities !== undefined && identities.size > 0 && callerKey === undefined && presentedToken(req.headers['proxy-authorization']) !== undefined) {
      return this.#identifyByToken(req, agents, client, identities);
    }
    // The common path (no failure on record anywhere) pays one size check.
    const failures = this.size !== 0;
    const named = failures ? knownAgent(req, agents) : undefined;
    if (failures) {
      const key = addressOrPair(client, named);
      const now = this.#now();
      if (this.#over(key, AUTH_FAILURES_IN_A_ROW, now)) {
        // Still refusing: the backoff runs from this try. No key was checked, so the name's count is not touched.
        this.#bump(key, now);
        throw rateLimited();
      }
    }
    let agent: Agent | Promise<Agent>;
    try {
      agent = identifyAgent(req, agents, callerKey, identities);
    } catch (err) {
      if (!(err instanceof ProxyError) || err.code !== 'proxy_auth_required') throw err;
      const delay = this.#failed(client, failures ? named : knownAgent(req, agents), this.#now());
      if (delay === 0) throw err;
      return new Promise<never>((_, reject) => setTimeout(() => reject(err), delay).unref());
    }
    if (failures) {
      this.#counts?.delete(addressKey(client));
      if (named !== undefined) this.#counts?.delete(pairKey(client, named));
    }
    return agent;
  }

  /**
   * An identity token is always checked: a signed token cannot be guessed, so there is no answer to
   * hide, and a count that refused tokens unchecked would let one agent's bad tokens lock out every
   * other agent on its address (loopback clients share one). Failures are counted per address on
   * their own; past AUTH_FAILURES_IN_A_ROW a failed token is answered 429 instead of 407, on a
   * connection that closes, so each further try costs a new connection. A good token always passes
   * and clears the count (as a right key does): every try is checked either way, so a hostile agent
   * holding a good token gains nothing by resetting it but 407s in place of 429s.
   * An issuer whose keys cannot be had (identity_unavailable) is not the token's fault: not counted.
   */
  async #identifyByToken(req: IncomingMessage, agents: AgentTable, client: string, identities: IdentityVerifier): Promise<Agent> {
    try {
      const agent = await identifyAgent(req, agents, undefined, identities);
      this.#counts?.delete(tokenKey(client));
      return agent;
    } catch (err) {
      if (!(err instanceof ProxyError) || err.code !== 'proxy_auth_required') throw err;
      const now = this.#now();
      const throttled = this.#over(tokenKey(client), AUTH_FAILURES_IN_A_ROW, now);
      this.#bump(tokenKey(client), now);
      throw throttled ? rateLimited() : err;
    }
  }

  /** A wrong key (or none) counted against its address and the agent it names; the delay its answer waits, in ms. */
  #failed(client: string, named: string | undefined, now: number): number {
    this.#bump(addressOrPair(client, named), now);
    if (named === undefined) return 0;
    const count = this.#bump(agentKey(named), now);
    return Math.min(Math.max(0, count - AGENT_FAILURES_IN_A_ROW) * NAME_DELAY_STEP_MS, NAME_DELAY_MAX_MS);
  }

  /** Counts on record (for tests). */
  get size(): number {
    return this.#counts?.size ?? 0;
  }

  #over(key: string, limit: number, now: number): boolean {
    const entry = this.#counts?.get(key);
    return entry !== undefined && entry.count >= limit && now - entry.last <= AUTH_THROTTLE_SECONDS * 1000;
  }

  /** One more failure in a row for `key`; a run older than the backoff starts again. The count now. */
  #bump(key: string, now: number): number {
    this.#counts ??= new LRUCache<string, Failures>({ max: MAX_ENTRIES });
    let entry = this.#counts.get(key);
    if (entry === undefined || now - entry.last > AUTH_THROTTLE_SECONDS * 1000) {
      entry = { count: 0, last: now };
      this.#counts.set(key, entry);
    }
    entry.count++;
    entry.last = now;
    return entry.count;
  }
}

const addressKey = (client: string) => `a\0${client}`;
const pairKey = (client: string, agent: string) => `p\0${client}\0${agent}`;
const agentKey = (agent: string) => `n\0${agent}`;
const tokenKey = (client: string) => `t\0${client}`;
/** The count an address's failures go to: per agent named, or its own for names keyway does not know. */
const addressOrPair = (client: string, named: string | undefined) => (named === undefined ? addressKey(client) : pairKey(client, named));

/** The agent a request names, when keyway has one of that id (the right key or not). */
function knownAgent(req: IncomingMessage, agents: AgentTable): string | undefined {
  const id = claimedAgent(req);
  return id !== undefined && agents.get(id) !== undefined ? id : undefined;
}

function rateLimited(): ProxyError {
  return new ProxyError('rate_limited', 'proxy authentication failed too many times in a row from this address', {
    hint: `check the agent id and key in the proxy URL (\`keyway agents list\`); retry after ${AUTH_THROTTLE_SECONDS} s`,
    retryAfter: AUTH_THROTTLE_SECONDS,
  });
}
