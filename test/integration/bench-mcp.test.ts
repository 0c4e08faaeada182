// The bench's s10 (what reading MCP costs) on real processes: keyway run as the bench runs it, with
// /mcp on the bench grant an MCP endpoint, carries the JSON-RPC POSTs to both paths; the audit shows
// it read the /mcp ones as MCP (method, tool, argument hash) and the /rpc ones as any request, so
// the pair measures the reading and nothing else.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { keywayRoute, type Tally } from '../../bench/clients.ts';
import { startKeywayChild } from '../../bench/keyway-child.ts';
import { benchHosts, keywayBenchOptions, newOAuthClient } from '../../bench/keyway-bench.ts';
import { s10McpCalls } from '../../bench/mcp.ts';
import { processCpuMs } from '../../bench/proc.ts';
import { QUICK_PLAN, type Context } from '../../bench/scenarios.ts';
import { startBenchUpstream } from '../../bench/upstream.ts';
import { TLS_FIXTURES } from '../helpers/fixtures.ts';
import { waitFor } from '../helpers/wait.ts';

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn().catch(() => undefined);
});

describe('bench s10: tools/call POSTs to an MCP endpoint against a plain path', () => {
  it('keyway reads the /mcp calls as MCP and the /rpc ones as plain POSTs; both are measured and answered', async () => {
    const secret = `kwb-test-${randomBytes(16).toString('hex')}`;
    const upstream = await startBenchUpstream(secret);
    cleanup.push(() => upstream.close());
    const child = await startKeywayChild(
      keywayBenchOptions({
        plan: QUICK_PLAN,
        secret,
        hosts: benchHosts(QUICK_PLAN),
        oauth: newOAuthClient(),
        tokenUrl: 'https://127.0.0.1:9/token',
        nodeArgs: [],
      }),
    );
    cleanup.push(() => child.stop());
    const keyway = keywayRoute(child.url, child.caPem, TLS_FIXTURES.ca, () => processCpuMs(child.pid));
    const tally: Tally = { badStatus: 0, badBody: 0 };
    const ctx: Context = { upstreamPort: upstream.port, tally, deadline: performance.now() + 30_000, warmupMs: 100 };

    const rounds = await s10McpCalls(keyway, ctx, { connections: 4, bounds: { maxCount: 40, maxMs: 1500 } }, 2);

    expect(tally).toEqual({ badStatus: 0, badBody: 0 });
    for (const round of rounds) {
      for (const run of [round.plain, round.mcp]) {
        expect(run.requests).toBeGreaterThan(0);
        expect(run.cpuMs).toBeGreaterThan(0);
      }
    }
    expect(upstream.counts.withoutCredential).toBe(0);
    const audit = () =>
      readFileSync(join(child.home, 'logs', 'audit.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    const sent = rounds.reduce((n, r) => n + r.mcp.requests, 0);
    const mcpLines = await waitFor(() => {
      const lines = audit().filter((l) => l['path'] === '/mcp');
      return lines.length >= sent ? lines : undefined;
    }, 'the /mcp audit lines');
    for (const line of mcpLines)
      expect(line['mcp']).toMatchObject({ method: 'tools/call', tool: 'search_issues', args_sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    const plainLines = audit().filter((l) => l['path'] === '/rpc');
    expect(plainLines.length).toBeGreaterThan(0);
    for (const line of plainLines) expect(line['mcp']).toBeUndefined();
  });
});
