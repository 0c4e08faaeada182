import { ProxyError } from '../../errors/index.ts';
import type { AgentPolicy, Verdict } from '../rules.ts';
import type { LoadedPolicy, PolicyAnswer, PolicyQuery } from './contract.ts';

// The combined policy's answer (contract.ts): the YAML verdict (rules.ts) and Cedar's, under
// Cedar's rule: a forbid from either refuses, and a permit from either is needed. The YAML side's
// permits are its allow rules and its open grants; its forbids are its deny rules. So a Cedar
// permit admits a request no YAML allow rule did (on a grant the agent holds: the grant is chosen
// first), and never one a YAML deny rule refuses. Without Cedar files this is the YAML verdict as is,
// and Cedar is not asked (no query is even built).

export interface Decision {
  readonly allowed: boolean;
  /** The YAML verdict, or (admitted by a Cedar permit) one that says so; warn, approval, purpose and max_body ride on it. */
  readonly verdict: Verdict;
  /** Why refused: `rule_denied` for a Cedar forbid, `policy_denied` for a YAML rule; undefined when allowed. */
  readonly code: 'rule_denied' | 'policy_denied' | undefined;
  /** The ids that decided: Cedar's forbids, else the YAML rule, else the permits that admitted it. */
  readonly deciding: readonly string[];
  /** Cedar's answer; undefined without Cedar files. */
  readonly cedar: PolicyAnswer | undefined;
}

/**
 * Decides one request (or one MCP tools/call, with `action: 'mcp_call'`). `query` is called only
 * when there are Cedar files. `policy` tells a YAML deny rule (a forbid) from a grant's allow rules
 * that did not match (no permit).
 */
export function decide(yaml: Verdict, policy: AgentPolicy | undefined, loaded: LoadedPolicy | undefined, query: () => PolicyQuery): Decision {
  const yamlIds = yaml.rule === undefined ? [] : [ruleId(yaml.rule)];
  if (loaded === undefined || !loaded.hasCedarFiles) {
    return { allowed: yaml.allowed, verdict: yaml, code: yaml.allowed ? undefined : 'policy_denied', deciding: yamlIds, cedar: undefined };
  }
  const cedar = loaded.judge(query());
  // Cedar refuses with policies named only when something forbade it (or it could not judge).
  if (!cedar.allowed && cedar.deciding.length > 0) return { allowed: false, verdict: yaml, code: 'rule_denied', deciding: cedar.deciding, cedar };
  if (yaml.allowed) return { allowed: true, verdict: yaml, code: undefined, deciding: yamlIds, cedar };
  const yamlForbade = policy?.rules.some((r) => r.deny && r.name === yaml.rule) === true;
  if (yamlForbade || !cedar.allowed) return { allowed: false, verdict: yaml, code: 'policy_denied', deciding: yamlIds, cedar };
  const verdict: Verdict = {
    allowed: true,
    enforced: true,
    outcome: 'allow',
    rule: namedPolicies(cedar.deciding),
    reason: `permitted by ${namedPolicies(cedar.deciding)} (Cedar), where ${yaml.rule ?? 'no YAML rule'} did not allow it`,
    maxBodyBytes: undefined,
  };
  return { allowed: true, verdict, code: undefined, deciding: cedar.deciding, cedar };
}

/** The ids that decided, as a refusal and an audit line name them: the first five, then how many more. */
export function namedPolicies(ids: readonly string[]): string {
  return ids.length <= 5 ? ids.join(',') : `${ids.slice(0, 5).join(',')} and ${ids.length - 5} more`;
}

/** `agents.a.rules[2] (deny /admin/**)` -> `yaml:agents.a.rules[2]`; several rules' names are kept whole. */
function ruleId(rule: string): string {
  const match = /^(agents\..+?\.rules\[\d+\]) \(/.exec(rule);
  return match ? `yaml:${match[1]}` : rule;
}

/** The 403 for a Cedar refusal: names the policies that forbade it, never the request's query or body. */
export function ruleDenied(decision: Decision, request: { grant: string; method: string; path: string; namedBy?: string | undefined }): ProxyError {
  const named = request.namedBy ? ` (named by ${request.namedBy})` : '';
  const failed = decision.cedar?.errors.filter((e) => decision.deciding.includes(e)) ?? [];
  const why = decision.deciding.includes('keyway:unjudged')
    ? 'the policy could not judge this request'
    : failed.length > 0
      ? 'the policy failed on this request (an attribute it reads is absent), and a forbid that fails refuses'
      : 'a Cedar policy forbids it';
  return new ProxyError('rule_denied', `${namedPolicies(decision.deciding)} refuses ${request.method.toUpperCase()} ${request.path}${named}: ${why}`, {
    grant: request.grant,
    hint: 'the Cedar policies in the keyway home decide this; ask whoever runs keyway',
  });
}
