// s10: what reading MCP costs keyway. s2's load as JSON-RPC tools/call POSTs (one small request per
// POST, as MCP clients send them), paired round by round on the same grant and host: to /rpc, a path
// keyway forwards as any other, and to /mcp, which the bench grant marks as an MCP endpoint, so that
// keyway holds each body, reads every message (duplicate keys, depth, method and tool names), judges
// it and writes the method, tool and argument hash in the audit line. The bench runs keyway with no
// agents (the anonymous local agent), so no tool rules are matched: matching globs adds little next
// to reading the body. Target: CPU per request at most MCP_CPU_TARGET times the plain POST's.
import type { Route } from './clients.ts';
import { postRpc } from './clients.ts';
import { latencyMedians, perRequest } from './report-signed.ts';
import type { LatencyMedians } from './report.ts';
import type { TargetLine } from './report-targets.ts';
import { alternating } from './signed.ts';
import { type Context, type LatencyResult, MAIN_HOST, type Plan, s2Parallel } from './scenarios.ts';
import { fixed, ratio, signed, table } from './stats.ts';

export const MCP_PATH = '/mcp';
const PLAIN_PATH = '/rpc';
/** Reading and judging a small tools/call may cost at most this much keyway CPU per request, relative to the same POST on a plain path. */
export const MCP_CPU_TARGET = 1.2;

type Side = 'plain' | 'mcp';
const SIDES = ['plain', 'mcp'] as const;
export type McpRounds = Array<Record<Side, LatencyResult>>;

/** A tools/call as the MCP SDK sends it: ~200 bytes. */
const callBody = (id: number) =>
  JSON.stringify({
    jsonrpc: '2.0',
    id,
    method: 'tools/call',
    params: { name: 'search_issues', arguments: { repo: 'acme/widgets', state: 'open', query: 'keyway bench', limit: 20 } },
  });

export function s10McpCalls(keyway: Route, ctx: Context, plan: Plan['s10'], count: number): Promise<McpRounds> {
  return alternating(SIDES, count, (side) =>
    s2Parallel(keyway, ctx, plan, MAIN_HOST, {
      path: side === 'mcp' ? MCP_PATH : PLAIN_PATH,
      send: (dispatcher, url, i) => postRpc(keyway, dispatcher, url, i, callBody(i), ctx.tally),
    }),
  );
}

export interface McpFigures {
  plain: LatencyMedians;
  mcp: LatencyMedians;
  /** mcp ÷ plain. */
  cpuRatio: number;
  rpsRatio: number;
  addedP50Ms: number;
}

export function mcpFigures(rounds: McpRounds): McpFigures {
  const plain = latencyMedians(rounds.map((r) => r.plain));
  const mcp = latencyMedians(rounds.map((r) => r.mcp));
  return { plain, mcp, cpuRatio: mcp.cpuMsPerRequest / plain.cpuMsPerRequest, rpsRatio: mcp.rps / plain.rps, addedP50Ms: mcp.p50 - plain.p50 };
}

export function mcpTable(rounds: McpRounds, f: McpFigures): string {
  const rows: string[][] = [];
  rounds.forEach((round, i) => {
    for (const side of SIDES) {
      const r = round[side];
      rows.push([
        `${i + 1}`,
        side === 'mcp' ? MCP_PATH : PLAIN_PATH,
        String(r.requests),
        fixed(r.seconds),
        fixed(r.rps, 0),
        fixed(r.latencyMs.p50, 3),
        fixed(r.latencyMs.p99, 3),
        fixed(perRequest(r.cpuMs, r.requests), 3),
      ]);
    }
  });
  for (const side of SIDES) {
    const m = f[side];
    rows.push(['median', side === 'mcp' ? MCP_PATH : PLAIN_PATH, '', '', fixed(m.rps, 0), fixed(m.p50, 3), fixed(m.p99, 3), fixed(m.cpuMsPerRequest, 3)]);
  }
  return [
    table(['round', 'path', 'requests', 's', 'req/s', 'p50 ms', 'p99 ms', 'CPU ms/req'], rows),
    `${MCP_PATH} ÷ ${PLAIN_PATH}: CPU per request ${ratio(f.cpuRatio)} (target <= ${MCP_CPU_TARGET}x); ${ratio(f.rpsRatio)} req/s; adds ${signed(f.addedP50Ms, 3)} ms at p50`,
  ].join('\n');
}

export function mcpTargetLines(f: McpFigures): TargetLine[] {
  return [
    {
      target: `s10 tools/call on an MCP endpoint: keyway CPU per request <= ${MCP_CPU_TARGET}x the same POST on a plain path`,
      measured: `${fixed(f.mcp.cpuMsPerRequest, 3)} ms vs ${fixed(f.plain.cpuMsPerRequest, 3)} ms (${ratio(f.cpuRatio)})`,
      pass: f.cpuRatio <= MCP_CPU_TARGET,
    },
    {
      target: 's10 the same: req/s ÷ the plain path (no target)',
      measured: `${ratio(f.rpsRatio)} (${fixed(f.mcp.rps, 0)} req/s; p50 ${signed(f.addedP50Ms, 3)} ms)`,
      pass: true,
      info: true,
    },
  ];
}
