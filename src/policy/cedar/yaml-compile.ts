import type { AgentConfig, RuleConfig } from '../../config/index.ts';
import { cedarString, entity, likePattern } from './cedar-text.ts';

// Today's YAML rules written as Cedar (`keyway policy show --cedar`), one policy per rule with the
// id `yaml:agents.NAME.rules[i]`, plus a permit for each grant an agent holds open. Pure string
// building, no engine: the same config always gives the same text (agents sorted by name, rules in
// their order), so its hash (hash.ts) changes only when the rules do.
//
// rules.ts stays the evaluator of YAML rules (contract.ts): what Cedar cannot say exactly is kept as
// an annotation beside the nearest Cedar condition. Path globs become `like` patterns, wider than
// the glob (Cedar's `*` crosses `/`; rules.ts also reads a deny rule's path loosely); a time window
// in a zone other than UTC, MCP arguments and methods, warn mode, approve and require_purpose are
// annotations only.

/** An agent as the config gives it: only what its compiled policies read. */
export type YamlAgent = Pick<AgentConfig, 'grants' | 'rules' | 'mode'>;

/** The id a YAML rule's compiled policy carries. */
export function yamlRuleId(agent: string, index: number): string {
  return `yaml:agents.${agent}.rules[${index}]`;
}

/** The id of the permit for a grant an agent holds with no enforced allow rule (open). */
export function yamlOpenId(agent: string, grant: string | undefined): string {
  return grant === undefined ? `yaml:agents.${agent}` : `yaml:agents.${agent}.grants.${grant}`;
}

export interface CompiledYamlPolicy {
  readonly id: string;
  readonly text: string;
}

/** Every config agent's rules as Cedar policies, in a fixed order. */
export function compileYamlPolicies(agents: Readonly<Record<string, YamlAgent>>): CompiledYamlPolicy[] {
  const names = Object.keys(agents).sort(byCodePoint);
  return names.flatMap((name) => compileAgent(name, agents[name]!));
}

/** The compiled policies as one Cedar text, each after a blank line; empty for a config with no agents. */
export function compileYamlText(agents: Readonly<Record<string, YamlAgent>>): string {
  return compileYamlPolicies(agents)
    .map((p) => `${p.text}\n`)
    .join('\n');
}

function compileAgent(name: string, agent: YamlAgent): CompiledYamlPolicy[] {
  const principal = `principal == ${entity('Agent', name)}`;
  const agentWarns = agent.mode === 'warn';
  const out = agent.rules.map((rule, index) => ({ id: yamlRuleId(name, index), text: compileRule(principal, yamlRuleId(name, index), rule, agentWarns) }));
  const held = agent.grants ?? (agent.rules.length > 0 ? [...new Set(agent.rules.map((r) => r.grant))] : undefined);
  // An agent with neither grants nor rules may use every grant, openly.
  if (held === undefined) return [...out, openPermit(principal, yamlOpenId(name, undefined), 'resource')];
  const guarded = new Set(agentWarns ? [] : agent.rules.filter((r) => !r.deny && (r.mode ?? 'enforce') === 'enforce').map((r) => r.grant));
  const open = [...new Set(held)].filter((g) => !guarded.has(g)).sort(byCodePoint);
  return [...out, ...open.map((grant) => openPermit(principal, yamlOpenId(name, grant), `resource == ${entity('Grant', grant)}`))];
}

function openPermit(principal: string, id: string, resource: string): CompiledYamlPolicy {
  return { id, text: `@id(${cedarString(id)})\npermit (${principal}, action, ${resource});` };
}

function compileRule(principal: string, id: string, rule: RuleConfig, agentWarns: boolean): string {
  const annotations: Array<[string, string]> = [['id', id]];
  const when: string[] = [];
  const mcp = rule.tools !== undefined || rule.args !== undefined || rule.mcp_methods !== undefined;
  if (rule.methods !== undefined) when.push(`[${rule.methods.map(cedarString).join(', ')}].contains(context.method)`);
  if (rule.paths !== undefined) {
    when.push(anyOf(rule.paths.map((p) => `context.path like ${likePattern(p)}`)));
    annotations.push(['keyway_paths', rule.paths.join(',')]);
  }
  const window = timeCondition(rule);
  if (window.condition !== undefined) when.push(window.condition);
  if (window.annotation !== undefined) annotations.push(['keyway_time', window.annotation]);
  if (rule.sources !== undefined) {
    when.push(`context has source_ip && ${anyOf(rule.sources.map((s) => `context.source_ip.isInRange(ip(${cedarString(s)}))`))}`);
  }
  if (rule.max_body !== undefined) {
    // Of undeclared size, the body is held and measured (rules.ts): the rule's cap is kept beside.
    annotations.push(['keyway_max_body', rule.max_body]);
  }
  if (rule.tools !== undefined) when.push(`context has mcp_tool && ${anyOf(rule.tools.map((t) => `context.mcp_tool like ${cedarString(t)}`))}`);
  if (rule.args !== undefined) annotations.push(['keyway_args', JSON.stringify(rule.args)]);
  if (rule.mcp_methods !== undefined) annotations.push(['keyway_mcp_methods', rule.mcp_methods.join(',')]);
  if (rule.approve !== undefined) annotations.push(['approve', rule.approve]);
  if (rule.require_purpose === true) annotations.push(['require_purpose', 'true']);
  if (agentWarns || rule.mode === 'warn') annotations.push(['mode', 'warn']);
  const action = mcp ? `action == ${entity('Action', 'mcp_call')}` : 'action';
  const head = `${rule.deny ? 'forbid' : 'permit'} (${principal}, ${action}, resource == ${entity('Grant', rule.grant)})`;
  const body = when.length > 0 ? `\nwhen { ${when.join(' && ')} }` : '';
  return `${annotations.map(([k, v]) => `@${k}(${cedarString(v)})\n`).join('')}${head}${body};`;
}

/** hours and days in UTC as conditions on context.time; in another zone, an annotation only. */
function timeCondition(rule: RuleConfig): { condition?: string; annotation?: string } {
  if (rule.hours === undefined && rule.days === undefined) return {};
  const tz = rule.tz ?? 'UTC';
  const description = [rule.hours, rule.days?.join(','), tz].filter(Boolean).join(' ');
  if (tz !== 'UTC' && tz !== 'Etc/UTC') return { annotation: description };
  const parts: string[] = [];
  if (rule.hours !== undefined) {
    const [start, end] = rule.hours.trim().split('-').map(minuteOfDay) as [number, number];
    const now = '(context.time.hour * 60 + context.time.minute)';
    parts.push(start < end ? `${now} >= ${start} && ${now} < ${end}` : `(${now} >= ${start} || ${now} < ${end})`);
  }
  if (rule.days !== undefined) parts.push(`[${rule.days.map(cedarString).join(', ')}].contains(context.time.weekday)`);
  return { condition: parts.join(' && '), annotation: description };
}

function minuteOfDay(hhmm: string): number {
  const [h, m] = hhmm.split(':').map(Number) as [number, number];
  return h * 60 + m;
}

function anyOf(conditions: string[]): string {
  return conditions.length === 1 ? conditions[0]! : `(${conditions.join(' || ')})`;
}

function byCodePoint(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
