// The policy stage for a proof: the agent's YAML rules and the Cedar files, combined as the proxy's
// access stage combines them.
// TODO(wt-cedar merge): call decide.ts here, the one function the access stage calls.

import { compileRules, evaluate, type AgentPolicy } from '../rules.ts';
import type { Config } from '../../config/index.ts';
import type { LoadedPolicy, PolicyQuery } from '../cedar/contract.ts';
import type { Candidate, ProofRequest, ProofVerdict } from './judge.ts';
import { refused } from './judge.ts';

const compiled = new WeakMap<Candidate, Map<string, AgentPolicy>>();

function rulesOf(candidate: Candidate, agent: string): AgentPolicy {
  let byAgent = compiled.get(candidate);
  if (byAgent === undefined) {
    byAgent = new Map();
    compiled.set(candidate, byAgent);
  }
  let policy = byAgent.get(agent);
  if (policy === undefined) {
    const config = candidate.config.agents[agent];
    policy = compileRules(agent, config?.rules ?? [], config?.mode ?? 'enforce');
    byAgent.set(agent, policy);
  }
  return policy;
}

export function queryOf(request: ProofRequest, grant: string): PolicyQuery {
  return {
    agent: request.agent,
    parents: [],
    action: request.mcpTool === undefined ? 'request' : 'mcp_call',
    grant,
    context: {
      method: request.method,
      host: request.host,
      port: request.port,
      path: request.path,
      queryKeys: request.queryKeys,
      bodySize: request.bodySize,
      time: request.time,
      sourceIp: request.sourceIp,
      mcpTool: request.mcpTool,
    },
  };
}

export function decidePolicy(candidate: Candidate, request: ProofRequest, grant: string): ProofVerdict {
  const rules = evaluate(rulesOf(candidate, request.agent), {
    grant,
    method: request.method,
    path: request.path,
    source: request.sourceIp,
    bodyBytes: request.bodySize,
    now: request.time,
  });
  if (!rules.allowed) return refused('rules', grant, 'policy_denied', rules.rule === undefined ? [] : [rules.rule], rules.reason);
  const needs = [
    rules.approvalBy === undefined ? [] : [`a person's yes (${rules.approvalBy.rule})`],
    rules.purposeRequiredBy === undefined ? [] : [`X-Keyway-Purpose (${rules.purposeRequiredBy})`],
  ].flat();
  if (!candidate.policy.hasCedarFiles)
    return { outcome: 'allow', stage: undefined, grant, code: undefined, deciding: rules.rule === undefined ? [] : [rules.rule], reason: rules.reason, needs };
  const answer = candidate.policy.judge(queryOf(request, grant));
  if (!answer.allowed && (answer.deciding.length > 0 || answer.errors.length > 0)) {
    const ids = answer.deciding.length > 0 ? answer.deciding : answer.errors;
    return refused('cedar', grant, 'rule_denied', ids, `refused by ${ids.join(', ')}`);
  }
  const deciding = [...(rules.rule === undefined ? [] : [rules.rule]), ...answer.deciding];
  return { outcome: 'allow', stage: undefined, grant, code: undefined, deciding, reason: rules.reason, needs };
}

// TODO(wt-cedar merge): load.ts, schema.ts and yaml-compile.ts. Until then: the YAML alone.

/** The policy a config puts in effect (its YAML rules and Cedar files). */
export async function loadCurrentPolicy(_config: Config): Promise<LoadedPolicy> {
  return yamlOnly();
}

/** The config's YAML rules with the Cedar files at `path` (a .cedar file or a folder of them) instead of its own. */
export async function loadPolicyAt(_config: Config, _path: string): Promise<LoadedPolicy> {
  return yamlOnly();
}

/** keyway's Cedar schema, in Cedar's schema syntax (`keyway policy schema`). */
export function policySchemaText(): string {
  return '';
}

/** What the config's YAML rules compile to, in Cedar. */
export function compiledYaml(_config: Config): string {
  return '';
}

function yamlOnly(): LoadedPolicy {
  return { hash: 'sha256:', files: [], policies: [], hasCedarFiles: false, judge: () => ({ allowed: false, deciding: [], errors: [] }) };
}

/** The config's YAML rules with a candidate's Cedar text in place of its Cedar files (POST /api/policy/test). */
export async function loadPolicyText(_config: Config, _text: string): Promise<LoadedPolicy> {
  return yamlOnly();
}
