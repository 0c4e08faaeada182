import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.ts';
import type { StoredAgent } from '../../../src/credentials/agent-record.ts';
import { buildAgents, hashAgentKey } from '../../../src/credentials/agents.ts';
import type { RecordSource } from '../../../src/credentials/store/credential-store.ts';

// The agent table with children in it (credentials/agents.ts through delegation/chain.ts): a store
// written before delegation reads as it did; a child is its parent's as the parent stands.

const hex = (key: string) => hashAgentKey(key).toString('hex');
const store = (...records: StoredAgent[]): RecordSource => {
  const byId = Object.fromEntries(records.map((r) => [`agent:${r.id}`, r]));
  return {
    get: <T>(id: string) => byId[id] as T | undefined,
    entries: <T>(prefix: string) => Object.entries(byId).filter(([id]) => id.startsWith(prefix)) as Array<[string, T]>,
  };
};
const config = parseConfig({ agents: { lead: { key: 'env:LEAD_KEY', grants: ['github', 'openai'] } } }, '/home/test');
const env = { LEAD_KEY: 'lead-key' };
const CREATED = '2026-11-01T00:00:00.000Z';
const LATER = new Date(Date.now() + 3_600_000).toISOString();

describe('the agent table with delegated agents', () => {
  it('reads a record written before delegation as a root agent that may mint one generation', () => {
    const old = { id: 'bot', key_sha256: hex('bot-key'), grants: ['github'], created_at: CREATED };
    const bot = buildAgents(config, store(old), env).get('bot')!;
    expect(bot).toMatchObject({ id: 'bot', delegationDepth: 1 });
    expect(bot.parents).toBeUndefined();
    expect(bot.expiresAt).toBeUndefined();
  });

  it("cuts a child to its parent's grants, under a config parent as under a store one", () => {
    const child: StoredAgent = {
      id: 'worker',
      key_sha256: hex('worker-key'),
      grants: ['github', 'slack'],
      created_at: CREATED,
      parent: 'lead',
      parent_key_sha256: hex('lead-key'),
      expires_at: LATER,
      delegation_depth: 0,
    };
    const worker = buildAgents(config, store(child), env).get('worker')!;
    expect([...worker.grants!]).toEqual(['github']);
    expect(worker).toMatchObject({ parents: ['lead'], expiresAt: Date.parse(LATER), delegationDepth: 0 });
    expect(buildAgents(config, store(child), env).authenticate('worker', 'worker-key')?.id).toBe('worker');
  });

  it("leaves out a child whose parent's key is not the one it was minted under, and one with a half-written link", () => {
    const rotated: StoredAgent = {
      id: 'worker',
      key_sha256: hex('w'),
      created_at: CREATED,
      parent: 'lead',
      parent_key_sha256: hex('old-lead-key'),
      expires_at: LATER,
    };
    expect(buildAgents(config, store(rotated), env).get('worker')).toBeUndefined();
    const half: StoredAgent = { id: 'half', key_sha256: hex('h'), created_at: CREATED, parent_key_sha256: hex('lead-key') };
    expect(buildAgents(config, store(half), env).get('half')).toBeUndefined();
    expect(buildAgents(config, store(half), env).authenticate('half', 'h')).toBeUndefined();
  });

  it('reads an unreadable expiry as expired, and unreadable rules as no agent', () => {
    const base: StoredAgent = { id: 'worker', key_sha256: hex('w'), created_at: CREATED, parent: 'lead', parent_key_sha256: hex('lead-key') };
    expect(buildAgents(config, store({ ...base, expires_at: 'soon' }), env).get('worker')?.expiresAt).toBe(0);
    expect(buildAgents(config, store({ ...base, expires_at: LATER, rules: 'allow everything' as unknown as [] }), env).get('worker')).toBeUndefined();
  });

  it('cuts a depth edited by hand: a root to MAX_DEPTH, a child below its parent and within MAX_DEPTH of its root', () => {
    const rec = (id: string, parent: string | undefined, depth: unknown): StoredAgent => ({
      id,
      key_sha256: hex(`${id}-key`),
      created_at: CREATED,
      ...(parent === undefined ? {} : { parent, parent_key_sha256: hex(`${parent}-key`), expires_at: LATER }),
      delegation_depth: depth as number,
    });
    const table = buildAgents(
      config,
      store(rec('r', undefined, 9), rec('c1', 'r', 9), rec('c2', 'c1', 9), rec('c3', 'c2', 9), rec('odd', undefined, 'x')),
      env,
    );
    expect(['r', 'c1', 'c2', 'c3'].map((id) => table.get(id)?.delegationDepth)).toEqual([3, 2, 1, 0]);
    expect(table.get('odd')?.delegationDepth).toBe(0);
    // Under the config parent (depth 1 unless told), a child edited to 3 may mint nothing.
    expect(
      buildAgents(config, store({ ...rec('w', undefined, 3), parent: 'lead', parent_key_sha256: hex('lead-key'), expires_at: LATER }), env).get('w')
        ?.delegationDepth,
    ).toBe(0);
  });
});
