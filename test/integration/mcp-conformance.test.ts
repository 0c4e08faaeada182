// The MCP conformance suite's client scenarios (@modelcontextprotocol/conformance) with keyway in the
// middle (issue 34): the suite starts its scenario server, our client (the MCP SDK's, in
// test/helpers/conformance-client.mjs) reaches it through keyway by HTTP_PROXY, and keyway reads and
// judges every message on the way (a grant marks the server's paths as MCP endpoints, an agent's
// rules name its tools). The suite's own checks must still pass: the handshake, a tool call, an
// elicitation the client answers by POSTing a response, and an SSE stream closed by the server and
// resumed by GET with Last-Event-ID after the `retry` delay. The suite (0.1.16) covers the 2025
// revisions; its auth scenarios do not apply (keyway, not the client, holds the credential).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO } from '../helpers/deploy-files.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { cleanEnv, startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';

const TOKEN = `${CANARY}-conformance`;
const SUITE = join(REPO, 'node_modules/@modelcontextprotocol/conformance/dist/index.js');
const CLIENT = join(REPO, 'test/helpers/conformance-client.mjs');

describe('the MCP conformance suite, client scenarios through keyway', () => {
  let proxy: TestProxy;
  let work: string;
  const outputs: string[] = [];

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'keyway-conformance-'));
    proxy = await startProxy({
      env: { CONFORMANCE: TOKEN, CLIENT_KEY: 'conformance-key-1' },
      config: {
        // The scenario servers listen on localhost over plain HTTP.
        proxy: { allow_networks: ['127.0.0.0/8', '::1/128'] },
        grants: {
          scenarios: { type: 'bearer', domains: ['localhost'], allow_http: true, secret: 'env:CONFORMANCE', mcp: { paths: ['/', '/mcp'] } },
        },
        agents: {
          client: { key: 'env:CLIENT_KEY', grants: ['scenarios'], rules: [{ grant: 'scenarios', tools: ['add_numbers', 'test_*'] }] },
        },
      },
    });
  });
  afterAll(async () => {
    for (const text of [...outputs, ...proxy.logs]) expect(findLeak(text, TOKEN)).toBeUndefined();
    await proxy?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  function runScenario(scenario: string): Promise<{ code: number | null; output: string }> {
    const child = spawn(process.execPath, [SUITE, 'client', '--command', `${process.execPath} ${CLIENT}`, '--scenario', scenario, '--timeout', '20000'], {
      cwd: work,
      env: cleanEnv({ HTTP_PROXY: `http://client:conformance-key-1@127.0.0.1:${proxy.port}`, NODE_USE_ENV_PROXY: '1', NODE_PATH: join(REPO, 'node_modules') }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    return new Promise((resolve) => child.once('close', (code) => resolve({ code, output })));
  }

  for (const [scenario, tool] of [
    ['initialize', undefined],
    ['tools_call', 'add_numbers'],
    ['elicitation-sep1034-client-defaults', 'test_client_elicitation_defaults'],
    ['sse-retry', 'test_reconnection'],
  ] as const) {
    it(`${scenario}: the suite's checks pass, and keyway judged the exchange`, { timeout: 60_000 }, async () => {
      const from = proxy.auditLines().length;
      const { code, output } = await runScenario(scenario);
      outputs.push(output);
      expect(output, output).toContain('OVERALL: PASSED');
      expect(code, output).toBe(0);
      const lines = proxy.auditLines().slice(from);
      // Every exchange went through keyway as the agent, on the grant, read as MCP.
      const injected = lines.filter((l) => l['decision'] === 'inject' && l['agent'] === 'client' && l['grant'] === 'scenarios');
      expect(injected.some((l) => (l['mcp'] as { method?: string } | undefined)?.method === 'initialize')).toBe(true);
      if (tool) expect(injected.some((l) => (l['mcp'] as { tool?: string } | undefined)?.tool === tool)).toBe(true);
      expect(lines.filter((l) => l['decision'] === 'deny')).toEqual([]);
    });
  }
});
