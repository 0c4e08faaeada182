import { createHash, timingSafeEqual } from 'node:crypto';
import type { Config } from '../config/index.ts';
import { readSecretRef } from '../config/index.ts';
import { KeywayError } from '../errors/index.ts';
import { AGENT_PREFIX, type StoredAgent } from './agent-record.ts';
import type { RecordSource } from './grants.ts';

export interface Agent {
  readonly id: string;
  /** undefined: every grant. */
  readonly grants: ReadonlySet<string> | undefined;
  readonly source: 'config' | 'store' | 'anonymous';
  readonly keySha256: Buffer | undefined;
}

/** With no agents configured, one anonymous agent serves loopback clients and may use every grant. */
export const ANONYMOUS_AGENT: Agent = Object.freeze({
  id: 'local',
  grants: undefined,
  source: 'anonymous',
  keySha256: undefined,
});

export function hashAgentKey(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}

export class AgentTable {
  readonly #agents: Map<string, Agent>;

  constructor(agents: Map<string, Agent>) {
    this.#agents = agents;
  }

  get anonymous(): boolean {
    return this.#agents.size === 0;
  }

  get(id: string): Agent | undefined {
    return this.#agents.get(id);
  }

  list(): Agent[] {
    return [...this.#agents.values()];
  }

  /** Constant-time on the key; an unknown id costs the same as a wrong key. */
  authenticate(id: string, key: string): Agent | undefined {
    const agent = this.#agents.get(id);
    const offered = hashAgentKey(key);
    const expected = agent?.keySha256 ?? UNKNOWN_AGENT_HASH;
    const same = timingSafeEqual(offered, expected);
    return same && agent ? agent : undefined;
  }
}

const UNKNOWN_AGENT_HASH = hashAgentKey('\u0000no-such-agent');

export function buildAgents(config: Config, store: RecordSource, env: NodeJS.ProcessEnv): AgentTable {
  const agents = new Map<string, Agent>();
  for (const [id, a] of Object.entries(config.agents)) {
    let key: string;
    try {
      key = readSecretRef(a.key, env, config.home);
    } catch (err) {
      throw new KeywayError('config_invalid', `agents.${id}.key: ${(err as Error).message}`);
    }
    agents.set(id, { id, grants: a.grants ? new Set(a.grants) : undefined, source: 'config', keySha256: hashAgentKey(key) });
  }
  for (const [, stored] of store.entries<StoredAgent>(AGENT_PREFIX)) {
    if (agents.has(stored.id)) continue;
    agents.set(stored.id, {
      id: stored.id,
      grants: stored.grants ? new Set(stored.grants) : undefined,
      source: 'store',
      keySha256: Buffer.from(stored.key_sha256, 'hex'),
    });
  }
  return new AgentTable(agents);
}
