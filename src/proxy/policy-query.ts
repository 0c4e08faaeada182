import type { PolicyAction, PolicyQuery } from '../policy/cedar/contract.ts';
import { policyQueryOf } from '../policy/cedar/query.ts';
import type { PolicyRequest } from '../policy/rules.ts';
import type { StagedRequest } from './stages/request.ts';

// The question put to Cedar for one request, from what the stages already hold: built only where
// Cedar files exist (decide() calls it), so a keyway without them does no work here.

/**
 * The query for one reading of the request (its method and path, or one an override header names).
 * `as`: the agent asked about, when not the connection's own (an ancestor of a delegated agent, judged
 * for the same request: stages/delegation.ts); its parents go with it, so Cedar's `in` sees the chain.
 */
export function policyQuery(
  request: StagedRequest,
  judged: PolicyRequest,
  action: PolicyAction,
  mcpTool?: string,
  as: { readonly id: string; readonly parents?: readonly string[] | undefined } = request.conn.agent,
): PolicyQuery {
  const { conn } = request;
  return policyQueryOf({
    agent: as.id,
    parents: as.parents,
    action,
    grant: judged.grant,
    method: judged.method,
    host: conn.target.host,
    port: conn.target.port,
    path: judged.path,
    query: request.query,
    bodyBytes: judged.bodyBytes,
    now: judged.now,
    source: judged.source,
    mcpTool,
    // Judged before the rules (stage anomaly-signals) so a policy may read them: context.signal.
    signals: request.anomaly?.signals.map((s) => s.name),
  });
}
