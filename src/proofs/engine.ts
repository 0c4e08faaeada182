// The proofs' way to the engine (src/policy/cedar/): the policy a config puts in effect, a candidate
// in place of its Cedar files, and the policy stage itself, combined as the proxy's access stage
// combines it. Nothing here evaluates a policy: rules.ts judges the YAML, Cedar's engine the files.

import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Config } from '../config/index.ts';
import { KeywayError } from '../errors/index.ts';
import type { LoadedPolicy, PolicyQuery } from '../policy/cedar/contract.ts';
import { loadPolicy, type LoadedPolicySet } from '../policy/cedar/load.ts';
import { CEDAR_SCHEMA } from '../policy/cedar/schema.ts';
import { compileYamlText } from '../policy/cedar/yaml-compile.ts';
import { type AgentPolicy, compileRules, evaluate, type Verdict } from '../policy/rules.ts';
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
  return loadPolicy({ home: NO_HOME, agents: config.agents, policy: { files } });
}

/** The name a candidate sent as text is given in origins and errors. */
const CANDIDATE = 'candidate.cedar';

/** The config's YAML rules with a candidate's Cedar text in place of its Cedar files (POST /api/policy/test). */
export async function loadPolicyText(config: Config, text: string): Promise<LoadedPolicy> {
  // The loader reads files (and checks who may write them): the text goes in a folder of this user's alone.
  const dir = mkdtempSync(join(tmpdir(), 'keyway-candidate-'));
  const file = join(dir, CANDIDATE);
  try {
    writeFileSync(file, text, { mode: 0o600 });
    const loaded = await loadPolicyAt(config, file);
    const named = (s: string) => s.split(file).join(CANDIDATE);
    return {
      hash: loaded.hash,
      files: [CANDIDATE],
      hasCedarFiles: loaded.hasCedarFiles,
      policies: loaded.policies.map((p) => ({ id: named(p.id), origin: named(p.origin), text: p.text })),
      judge: loaded.judge,
    };
  } catch (err) {
    if (err instanceof KeywayError) throw new KeywayError(err.code, err.message.split(file).join(CANDIDATE));
    throw err;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
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

export function queryOf(request: ProofRequest, grant: string): PolicyQuery {
  return {
    agent: request.agent,
    parents: [],
    action: 'request',
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
  });
  const decision = combine(yaml, rules, candidate.policy, () => queryOf(request, grant));
  if (!decision.allowed) {
    const stage = decision.code === 'rule_denied' ? 'cedar' : 'rules';
    return refused(stage, grant, decision.code, decision.deciding, decision.reason);
  }
  const needs = [
    decision.verdict.approvalBy === undefined ? [] : [`a person's yes (${decision.verdict.approvalBy.rule})`],
    decision.verdict.purposeRequiredBy === undefined ? [] : [`X-Keyway-Purpose (${decision.verdict.purposeRequiredBy})`],
  ].flat();
  return { outcome: 'allow', stage: undefined, grant, code: undefined, deciding: decision.deciding, reason: decision.verdict.reason, needs };
}

interface Combined {
  readonly allowed: boolean;
  readonly verdict: Verdict;
  readonly code: 'rule_denied' | 'policy_denied';
  readonly deciding: readonly string[];
  readonly reason: string;
}

/**
 * The YAML verdict and Cedar's answer under Cedar's rule (contract.ts): a forbid from either refuses,
 * a permit from either is needed.
 * TODO(wt-cedar): decide.ts, the access stage's own function, once it is on the branch.
 */
function combine(yaml: Verdict, policy: AgentPolicy, loaded: LoadedPolicy, query: () => PolicyQuery): Combined {
  const yamlIds = yaml.rule === undefined ? [] : [ruleId(yaml.rule)];
  const base = { verdict: yaml, code: 'policy_denied' as const, deciding: yamlIds, reason: yaml.reason };
  if (!loaded.hasCedarFiles) return { ...base, allowed: yaml.allowed };
  const cedar = loaded.judge(query());
  if (!cedar.allowed && cedar.deciding.length > 0)
    return { ...base, allowed: false, code: 'rule_denied', deciding: cedar.deciding, reason: `forbidden by ${cedar.deciding.join(', ')} (Cedar)` };
  if (yaml.allowed) return { ...base, allowed: true };
  const yamlForbade = policy.rules.some((r) => r.deny && r.name === yaml.rule);
  if (yamlForbade || !cedar.allowed) return { ...base, allowed: false };
  const reason = `permitted by ${cedar.deciding.join(', ')} (Cedar), where ${yaml.rule ?? 'no YAML rule'} did not allow it`;
  return {
    allowed: true,
    code: 'policy_denied',
    deciding: cedar.deciding,
    reason,
    verdict: { ...yaml, allowed: true, enforced: true, outcome: 'allow', reason },
  };
}

/** `agents.a.rules[2] (deny /admin/**)` -> `yaml:agents.a.rules[2]`. */
function ruleId(rule: string): string {
  const match = /^(agents\..+?\.rules\[\d+\]) \(/.exec(rule);
  return match ? `yaml:${match[1]}` : rule;
}
