import type { PolicyAction, PolicyQuery } from '../../policy/cedar/contract.ts';
import type { PolicyRequest } from '../../policy/rules.ts';
import type { StagedRequest } from './request.ts';

// The question put to Cedar for one request, from what the stages already hold: built only where
// Cedar files exist (decide() calls it), so a keyway without them does no work here.

/** The query for one reading of the request (its method and path, or one an override header names). */
export function policyQuery(request: StagedRequest, judged: PolicyRequest, action: PolicyAction, mcpTool?: string): PolicyQuery {
  const { conn } = request;
  return {
    agent: conn.agent.id,
    parents: [],
    action,
    grant: judged.grant,
    context: {
      method: judged.method,
      host: conn.target.host.toLowerCase(),
      port: conn.target.port,
      path: judged.path,
      queryKeys: queryKeys(request.query),
      bodySize: judged.bodyBytes,
      time: judged.now,
      sourceIp: judged.source,
      mcpTool,
    },
  };
}

/** The query's parameter names (decoded), never their values. */
function queryKeys(query: string): string[] {
  if (query.length <= 1) return [];
  return [...new Set(new URLSearchParams(query.slice(1)).keys())];
}
