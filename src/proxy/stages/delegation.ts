import { ProxyError } from '../../errors/index.ts';
import type { Agent } from '../../credentials/agents.ts';
import { checkLease } from '../../policy/leases.ts';
import { evaluate, policyDenied, type Verdict } from '../../policy/rules.ts';
import { decide, ruleDenied } from '../../policy/cedar/decide.ts';
import { policyQuery } from '../policy-query.ts';
import { requestsToJudge } from './access.ts';
import type { HeadStage, StagedRequest } from './request.ts';

/**
 * A delegated agent's request, asked of every ancestor as it stands now (src/delegation/terms.ts
 * says what delegation admits): each must hold the grant, hold a live lease on it where it has a
 * lease clock, and allow the request by its rules and the Cedar files (judged as that ancestor,
 * with its own parents), asking a person where an ancestor's rule would. The child's own judgement is stage access's, just before; each JSON-RPC
 * message on an MCP endpoint is asked of the ancestors by stage mcp. A root agent passes untouched.
 * Refusals name the ancestor.
 */
export const delegation: HeadStage = {
  name: 'delegation',
  injected: true,
  run(request) {
    const ancestors = ancestorsNow(request);
    if (ancestors.length === 0) return;
    const now = request.conn.decisions.now();
    const grant = request.grant!.id;
    for (const ancestor of ancestors) judgeAs(request, ancestor, grant, now);
  },
};

/**
 * The ancestors of the request's agent as the agent table holds them now, nearest first (a
 * refusal names the ancestor closest to the child that refuses); none for a root agent. Stage mcp
 * asks them of each JSON-RPC message too.
 */
export function ancestorsNow(request: StagedRequest): Agent[] {
  const parents = request.conn.agent.parents;
  if (parents === undefined || parents.length === 0) return [];
  const agents = request.conn.decisions.tables().agents;
  const out: Agent[] = [];
  for (let i = parents.length - 1; i >= 0; i--) {
    const ancestor = agents.get(parents[i]!);
    // The table resolves a child only while its chain stands (delegation/chain.ts): this is a race with a rebuild.
    if (ancestor === undefined) throw gone(parents[i]!);
    out.push(ancestor);
  }
  return out;
}

/** The OPEN verdict of an ancestor without rules (as access's for the agent itself). */
const OPEN: Verdict = Object.freeze({
  allowed: true,
  enforced: true,
  outcome: 'allow',
  rule: undefined,
  reason: 'the agent has no rules',
  maxBodyBytes: undefined,
});

function judgeAs(request: StagedRequest, ancestor: Agent, grant: string, now: Date): void {
  if (ancestor.grants !== undefined && !ancestor.grants.has(grant)) {
    throw new ProxyError('policy_denied', `agent "${ancestor.id}", a parent of this agent, does not hold grant "${grant}"`, {
      grant,
      hint: 'a delegated agent may use only what every agent above it may; ask whoever runs keyway',
    });
  }
  if (ancestor.expiresAt !== undefined && ancestor.expiresAt <= now.getTime()) throw gone(ancestor.id);
  // A lease the ancestor never started (pending) is one it could start: not wider. An expired or revoked one refuses.
  const lease = checkLease(ancestor, grant, request.conn.decisions.leases.get(ancestor.id, grant), now);
  if (!lease.ok) throw lease.error;
  // An ancestor's MCP rules (tools, args, mcp_methods) are asked of each JSON-RPC message by stage mcp, after this.
  const loaded = request.policy ?? request.conn.decisions.policy();
  if (!ancestor.policy && !loaded.hasCedarFiles) return;
  for (const { request: judged, by } of requestsToJudge(request.req, request, now)) {
    const decision = decide(ancestor.policy ? evaluate(ancestor.policy, judged) : OPEN, ancestor.policy, loaded, () =>
      policyQuery(request, judged, 'request', undefined, ancestor),
    );
    if (decision.code === 'rule_denied') throw ruleDenied(decision, { ...judged, namedBy: by });
    if (!decision.allowed) throw policyDenied(decision.verdict, { ...judged, namedBy: by });
    // What an ancestor's allow asks on the way (a purpose, a person's yes) the child's request asks
    // too: the child's own rule first (stage access set it), else the nearest ancestor's. Ignoring
    // them would let a child past an approve: human its parent is held to.
    request.purposeRule ??= decision.verdict.purposeRequiredBy;
    request.approvalRule ??= decision.verdict.approvalBy;
    // A body cap of an ancestor's is checked on a declared size only (evaluate did); one of undeclared size is refused, not held.
    if (decision.verdict.enforced && decision.verdict.maxBodyBytes !== undefined && judged.bodyBytes === undefined) {
      throw new ProxyError('policy_denied', `${decision.verdict.rule ?? 'a rule'} of agent "${ancestor.id}" caps the body; send Content-Length`, {
        grant,
        hint: 'a delegated agent sends bodies of declared size where a parent caps them',
      });
    }
  }
}

function gone(id: string): ProxyError {
  return new ProxyError('proxy_auth_required', `agent "${id}", a parent of this agent, is no longer in force`, {
    hint: 'ask the parent agent, or whoever runs keyway, for a new delegation',
  });
}
