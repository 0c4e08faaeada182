import type { PolicyAction, PolicyQuery } from './contract.ts';

// One request's question to Cedar, from plain facts: the proxy's stages (proxy/stages/policy-query.ts)
// and the policy commands (a recorded line, a dry run) build it the same way, so they cannot disagree.

export interface RequestFacts {
  readonly agent: string;
  readonly parents?: readonly string[] | undefined;
  readonly action: PolicyAction;
  readonly grant: string;
  readonly method: string;
  readonly host: string;
  readonly port: number;
  /** The normalised path (request-path.ts), as sent upstream, without the query. */
  readonly path: string;
  /** `''` or `?…`: only its parameter names are read. */
  readonly query: string;
  readonly bodyBytes: number | undefined;
  readonly now: Date;
  readonly source: string;
  readonly mcpTool?: string | undefined;
  /** The anomaly signals raised (stage anomaly-signals; a recorded line's `signal`). */
  readonly signals?: readonly string[] | undefined;
}

export function policyQueryOf(facts: RequestFacts): PolicyQuery {
  return {
    agent: facts.agent,
    parents: facts.parents ?? [],
    action: facts.action,
    grant: facts.grant,
    context: {
      method: facts.method,
      host: facts.host.toLowerCase(),
      port: facts.port,
      path: facts.path,
      queryKeys: queryKeys(facts.query),
      bodySize: facts.bodyBytes,
      time: facts.now,
      sourceIp: facts.source,
      mcpTool: facts.mcpTool,
      ...(facts.signals !== undefined ? { signals: facts.signals } : {}),
    },
  };
}

/** The query's parameter names (decoded), never their values. */
function queryKeys(query: string): string[] {
  const text = query.startsWith('?') ? query.slice(1) : query;
  if (text.length === 0) return [];
  return [...new Set(new URLSearchParams(text).keys())];
}
