// s10: what reading MCP costs keyway. s2's load as JSON-RPC tools/call POSTs (one small request per
// POST, as MCP clients send them), paired round by round on the same grant and host: to /rpc, a path
// keyway forwards as any other, and to /mcp, which the bench grant marks as an MCP endpoint, so that
// keyway holds each body, reads every message (duplicate keys, depth, method and tool names), judges
// it and writes the method, tool and argument hash in the audit line. The bench runs keyway with no
// agents (the anonymous local agent), so no tool rules are matched: matching globs adds little next
// to reading the body. Target: CPU per request at most MCP_CPU_TARGET times the plain POST's.
import type { Route } from './clients.ts';
import { postRpc } from './clients.ts';
import { latencyMedians, pairedLatencyTable } from './report-signed.ts';
import type { LatencyMedians } from './report.ts';
import type { TargetLine } from './report-targets.ts';
import { alternating } from './signed.ts';
import { type Context, type LatencyResult, type LoadRequest, MAIN_HOST, type Plan, s2Parallel } from './scenarios.ts';
import { fixed, ratio, signed } from './stats.ts';

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

/** One side of s10: a tools/call POST per request, to the MCP endpoint or to the plain path. */
export function rpcLoad(keyway: Route, ctx: Context, side: Side): LoadRequest {
  return {
    path: side === 'mcp' ? MCP_PATH : PLAIN_PATH,
    send: (dispatcher, url, i) => postRpc(keyway, dispatcher, url, i, callBody(i), ctx.tally),
  };
}

export function s10McpCalls(keyway: Route, ctx: Context, plan: Plan['s10'], count: number): Promise<McpRounds> {
  return alternating(SIDES, count, (side) => s2Parallel(keyway, ctx, plan, MAIN_HOST, rpcLoad(keyway, ctx, side)));
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
  return [
    pairedLatencyTable(rounds, SIDES, f, 'path', (side) => (side === 'mcp' ? MCP_PATH : PLAIN_PATH)),
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
