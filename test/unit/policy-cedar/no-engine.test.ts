import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cedarEngineLoaded } from '../../../src/policy/cedar/engine.ts';
import { loadPolicy } from '../../../src/policy/cedar/load.ts';

// Its own file: vitest gives each test file a fresh module graph, so no other test's engine counts.
describe('a keyway with no Cedar file', () => {
  it('loads no engine, hashes the YAML alone, and its judge admits nothing on its own', async () => {
    const home = mkdtempSync(join(tmpdir(), 'keyway-nocedar-'));
    const loaded = await loadPolicy({ home, agents: { a: { mode: 'enforce', grants: ['g'], rules: [] } } });
    expect(cedarEngineLoaded()).toBe(false);
    expect(loaded.hasCedarFiles).toBe(false);
    expect(loaded.hash).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(loaded.policies.map((p) => p.id)).toEqual(['yaml:agents.a.grants.g']);
    const answer = loaded.judge({
      agent: 'a',
      parents: [],
      action: 'request',
      grant: 'g',
      context: { method: 'GET', host: 'h', port: 443, path: '/', queryKeys: [], bodySize: 0, time: new Date(), sourceIp: '127.0.0.1' },
    });
    expect(answer).toEqual({ allowed: false, deciding: [], errors: [] });
    expect(cedarEngineLoaded()).toBe(false);
  });
});
