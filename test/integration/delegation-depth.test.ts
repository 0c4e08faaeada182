import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import { MAX_DEPTH } from '../../src/delegation/terms.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';

// Issue 89: the depth of delegation is set per agent in the config (agents.ID.delegation.depth, 1
// unless said): 0 forbids an agent to delegate, 3 lets it mint three generations, and no more.
// Through the real CLI against a real home.

describe('delegation: depth set per agent in the config', () => {
  let proxy: TestProxy;

  beforeAll(async () => {
    proxy = await startProxy({
      env: { SOLO_KEY: 'solo-key-0123456789abcdef', DEEP_KEY: 'deep-key-0123456789abcdef' },
      config: {
        agents: {
          solo: { key: 'env:SOLO_KEY', grants: ['github'], delegation: { depth: 0 } },
          deep: { key: 'env:DEEP_KEY', grants: ['github'], delegation: { depth: 3 } },
        },
      },
      grants: [{ id: 'github', type: 'bearer', domains: ['api.example.test'], secret: CANARY }],
    });
  });
  afterAll(async () => {
    await proxy?.stop();
  });

  const mint = (parent: string, name: string, ...more: string[]) => proxy.cli(['agents', 'delegate', parent, '--name', name, ...more, '--json']);

  it('refuses every mint by an agent whose depth is 0, and writes nothing', async () => {
    const refused = await mint('solo', 'solo-child');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('agent "solo" may not delegate: it has no delegation depth left');
    const listed = JSON.parse((await proxy.cli(['agents', 'list', '--json'])).stdout) as Array<{ id: string }>;
    expect(listed.map((a) => a.id)).not.toContain('solo-child');
  });

  it('lets an agent of depth 3 mint three generations, each handing on less, and no fourth', async () => {
    let parent = 'deep';
    const chain = ['deep'];
    for (const [name, depth] of [
      ['gen-1', '2'],
      ['gen-2', '1'],
      ['gen-3', '0'],
    ] as const) {
      const child = await mint(parent, name, '--depth', depth);
      expect(child.stderr, name).toBe('');
      chain.push(name);
      expect(JSON.parse(child.stdout)).toMatchObject({ chain, depth: Number(depth) });
      parent = name;
    }
    const fourth = await mint('gen-3', 'gen-4');
    expect(fourth.code).toBe(1);
    expect(fourth.stderr).toContain('no delegation depth left');
    // A child never hands on as much as it was given.
    const wide = await mint('gen-1', 'gen-2b', '--depth', '2');
    expect(wide.code).toBe(1);
    expect(wide.stderr).toContain('depth 2 is more than agent "gen-1" may hand on (1');
  });

  it('refuses a config depth past the longest chain, naming the field', () => {
    expect(MAX_DEPTH).toBe(3);
    const agent = (depth: unknown) => ({ agents: { a: { key: 'env:K', delegation: { depth } } } });
    expect(() => parseConfig(agent(MAX_DEPTH + 1), '/home/test')).toThrow(/agents\.a\.delegation\.depth/);
    expect(() => parseConfig(agent(-1), '/home/test')).toThrow(/agents\.a\.delegation\.depth/);
    expect(() => parseConfig(agent(1.5), '/home/test')).toThrow(/agents\.a\.delegation\.depth/);
    expect(() => parseConfig({ agents: { a: { key: 'env:K', delegation: { depth: 1, widen: true } } } }, '/home/test')).toThrow(/widen/);
    expect(parseConfig(agent(MAX_DEPTH), '/home/test').agents['a']?.delegation).toEqual({ depth: MAX_DEPTH });
  });
});
