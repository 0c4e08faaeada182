// Policy as code costs nothing where there is no Cedar file (issue 88): the engine (4 MB of WASM) is
// never imported, the log keeps its shape (no policy.load line), and every line carries the hash of
// the YAML rules' compiled text.
// Its own file: vitest gives each file a fresh module graph, so no other test's engine counts here.
import { readFileSync } from 'node:fs';
import { fetch as undiciFetch, ProxyAgent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cedarEngineLoaded } from '../../src/policy/cedar/engine.ts';
import { loadPolicy } from '../../src/policy/cedar/load.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

describe('a keyway without Cedar files', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let dispatcher: ProxyAgent;

  beforeAll(async () => {
    upstream = await startUpstream();
    proxy = await startProxy({
      grants: [{ id: 'github', type: 'bearer', domains: ['api.example.test'], secret: `${CANARY}-github` }],
      env: { CLAUDE_KEY: 'claude-key' },
      config: { agents: { claude: { key: 'env:CLAUDE_KEY', grants: ['github'], rules: [{ grant: 'github', methods: ['GET'] }] } } },
    });
    dispatcher = new ProxyAgent({ uri: `http://claude:claude-key@127.0.0.1:${proxy.port}`, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
  });
  afterAll(async () => {
    await dispatcher?.close();
    await proxy?.stop();
    await upstream?.close();
  });

  it('loads no engine, judges by its YAML rules as before, and hashes its policy on every line', async () => {
    const allowed = await undiciFetch(`https://api.example.test:${upstream.port}/plain`, { dispatcher });
    expect(allowed.status).toBe(200);
    await allowed.text();
    const refused = await undiciFetch(`https://api.example.test:${upstream.port}/plain`, { method: 'DELETE', dispatcher });
    expect(refused.status).toBe(403);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('policy_denied');
    const lines = await waitFor(() => {
      const all = proxy.auditLines();
      return all.filter((l) => l['path'] === '/plain' && l['phase'] === undefined).length === 2 ? all : undefined;
    }, 'both lines');
    expect(lines.filter((l) => l['action'] === 'policy.load')).toEqual([]);
    const expected = (await loadPolicy(proxy.running.services.config)).hash;
    expect(expected).toMatch(/^sha256:[0-9a-f]{64}$/);
    for (const line of lines) expect(line['policy']).toBe(expected);
    expect(cedarEngineLoaded()).toBe(false);
    const verified = await proxy.cli(['audit', 'verify']);
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);
  });
});
