// The proofs' way to the engine (src/policy/cedar/): the policy a config puts in effect, a candidate
// in place of its Cedar files, and the policy stage itself, combined as the proxy's access stage
// combines it (decide.ts, the access stage's own function). Nothing here evaluates a policy: rules.ts
// judges the YAML, Cedar's engine the files.

import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config/index.ts';
import type { PolicyQuery } from '../policy/cedar/contract.ts';
import { loadPolicy, type LoadedPolicySet } from '../policy/cedar/load.ts';
import { CEDAR_SCHEMA } from '../policy/cedar/schema.ts';
import { compileYamlText, yamlOpenId } from '../policy/cedar/yaml-compile.ts';
import { type AgentPolicy, compileRules, evaluate, evaluateMcp } from '../policy/rules.ts';
import { decide } from '../policy/cedar/decide.ts';
import { policyQueryOf } from '../policy/cedar/query.ts';
import type { Candidate, ProofRequest, ProofVerdict } from './judge.ts';
import { refused } from './judge.ts';

/** The policy a config puts in effect (its YAML rules and Cedar files), as the proxy loads it. */
export function loadCurrentPolicy(config: Config): Promise<LoadedPolicySet> {
  return loadPolicy({ home: config.home, agents: config.agents, policy: config.policy });
}

/** Where no policies/ folder is: a candidate's files are named, never found beside a home. */
const NO_HOME = '/nonexistent/keyway-candidate';

/** The config's YAML rules with the Cedar files at `path` (a .cedar file, or a folder of them, in name order) instead of its own. */
export function loadPolicyAt(config: Config, path: string): Promise<LoadedPolicySet> {
  const files = statSync(path).isDirectory()
    ? readdirSync(path)
        .filter((name) => name.endsWith('.cedar'))
        .sort()
        .map((name) => join(path, name))
    : [path];
  return loadPolicy({ home: NO_HOME, agents: config.agents, policy: { files }, candidate: true });
}

/** The name a candidate sent as text is given in origins and errors. */
const CANDIDATE = 'candidate.cedar';

/** The config's YAML rules with a candidate's Cedar text in place of its Cedar files (POST /api/policy/test); never put in effect. */
export function loadPolicyText(config: Config, text: string): Promise<LoadedPolicySet> {
  return loadPolicy({ home: NO_HOME, agents: config.agents, policy: { files: [] } }, [{ file: CANDIDATE, text }]);
}

/** keyway's Cedar schema, in Cedar's schema syntax (`keyway policy schema`). */
export function policySchemaText(): string {
  return CEDAR_SCHEMA;
}

/** What the config's YAML rules compile to, in Cedar. */
export function compiledYaml(config: Config): string {
  return compileYamlText(config.agents);
}

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

/** The question to Cedar, built as the proxy's stages build it (policy/cedar/query.ts). */
export function queryOf(request: ProofRequest, grant: string, tool?: string): PolicyQuery {
  return policyQueryOf({
    agent: request.agent,
    action: tool === undefined ? 'request' : 'mcp_call',
    grant,
    method: request.method,
    host: request.host,
    port: request.port,
    path: request.path,
    query: request.query,
    bodyBytes: request.bodySize,
    now: request.time,
    source: request.sourceIp,
    mcpTool: tool,
    signals: request.signals,
  });
}

/** The policy stage for one request on a grant the agent holds. */
export function decidePolicy(candidate: Candidate, request: ProofRequest, grant: string): ProofVerdict {
  const rules = rulesOf(candidate, request.agent);
  const yaml = evaluate(rules, {
    grant,
    method: request.method,
    path: request.path,
    source: request.sourceIp,
    bodyBytes: request.bodySize,
    now: request.time,
    mcpEndpoint: request.mcp !== undefined,
  });
  const decision = decide(yaml, rules, candidate.policy, () => queryOf(request, grant));
  if (!decision.allowed) {
    const stage = decision.code === 'rule_denied' ? 'cedar' : 'rules';
    const reason = decision.code === 'rule_denied' ? `forbidden by ${decision.deciding.join(', ')} (Cedar)` : yaml.reason;
    return refused(stage, grant, decision.code ?? 'policy_denied', decision.deciding, reason);
  }
  const needs = [
    decision.verdict.approvalBy === undefined ? [] : [`a person's yes (${decision.verdict.approvalBy.rule})`],
    decision.verdict.purposeRequiredBy === undefined ? [] : [`X-Keyway-Purpose (${decision.verdict.purposeRequiredBy})`],
  ].flat();
  const deciding = decision.deciding.length > 0 ? decision.deciding : openPermit(candidate, request.agent, grant);
  return { outcome: 'allow', stage: undefined, grant, code: undefined, deciding, reason: decision.verdict.reason, needs };
}

/**
 * One JSON-RPC message on an MCP endpoint, as the proxy's mcp stage judges it: the agent's MCP
 * rules, and for a tools/call the Cedar files too (action mcp_call, context.mcp_tool). The arguments
 * are not in the log: a rule reading them makes the line not replayable (replay.ts) before this.
 */
export function decideMcp(candidate: Candidate, request: ProofRequest, grant: string, method: string, tool: string | undefined): ProofVerdict {
  const rules = rulesOf(candidate, request.agent);
  const base = {
    grant,
    method: request.method,
    path: request.path,
    source: request.sourceIp,
    bodyBytes: request.bodySize,
    now: request.time,
    mcpEndpoint: true,
  };
  const yaml = evaluateMcp(rules, { ...base, mcp: { method, tool } });
  const cedar = method === 'tools/call' && tool !== undefined ? candidate.policy : undefined;
  const decision = decide(yaml, rules, cedar, () => queryOf(request, grant, tool));
  if (decision.allowed)
    return { outcome: 'allow', stage: undefined, grant, code: undefined, deciding: decision.deciding, reason: decision.verdict.reason, needs: [] };
  const stage = decision.code === 'rule_denied' ? 'cedar' : 'rules';
  const reason = decision.code === 'rule_denied' ? `${method} ${tool ?? ''} forbidden by ${decision.deciding.join(', ')} (Cedar)` : yaml.reason;
  return refused(stage, grant, decision.code ?? 'policy_denied', decision.deciding, reason);
}

/** A grant open to a config agent (no allow rule guards it) is admitted by its compiled open permit (yaml-compile.ts). */
function openPermit(candidate: Candidate, agent: string, grant: string): string[] {
  const config = candidate.config.agents[agent];
  if (config === undefined) return [];
  return [config.grants === undefined && config.rules.length === 0 ? yamlOpenId(agent, undefined) : yamlOpenId(agent, grant)];
}
