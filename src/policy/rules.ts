import { parseByteSize, type RuleConfig } from '../config/index.ts';
import { KeywayError, ProxyError } from '../errors/index.ts';
import { compileAddressSet } from './cidr.ts';
import { compileGlob, type PathGlob } from './glob.ts';
import { pathReadings } from './request-path.ts';
import { compileTimeWindow } from './time-window.ts';
import { compileArgs } from '../mcp/args.ts';
import { compileNameGlob } from '../mcp/tool-names.ts';

// Per-agent rules (the README's "Rules are per agent and grant"). Where an agent has allow rules for
// a grant, a request on it must match one of them; a matching deny rule refuses whatever else
// matches; a grant with no rules is open. `mode: warn` (agent or rule) reports a refusal instead of
// enforcing it. Everything here is pure: the caller passes the request facts and the clock.

export type PolicyMode = 'enforce' | 'warn';

export interface PolicyRequest {
  grant: string;
  method: string;
  /** Without the query string. */
  path: string;
  /** The client's address as the socket reports it. */
  source: string;
  /** Content-Length when declared; undefined for a chunked or unknown body. */
  bodyBytes: number | undefined;
  now: Date;
  /** The path is one of the grant's MCP endpoints (grants.ID.mcp): a rule with MCP conditions may admit it. */
  mcpEndpoint?: boolean | undefined;
  /** One JSON-RPC message posted there (evaluateMcp): its method, and a tools/call's tool and arguments. */
  mcp?: McpFacts | undefined;
}

export interface McpFacts {
  method: string;
  tool?: string | undefined;
  args?: Readonly<Record<string, unknown>> | undefined;
  /**
   * The arguments are not known (may this tool be listed?): an allow rule's args may be met, a deny
   * rule's args are not taken to be (it refuses some calls of the tool, not the tool).
   */
  argsAny?: boolean | undefined;
}

export interface Verdict {
  allowed: boolean;
  /** false when a refusal was only reported (warn mode): then allowed is true and rule/reason say why. */
  enforced: boolean;
  outcome: 'allow' | 'deny' | 'warn';
  /** The rule that fired or allowed, e.g. `agents.claude.rules[3] (deny /admin/**)`; undefined when the grant is open. */
  rule: string | undefined;
  reason: string;
  /**
   * When the body size was not declared: the largest size the matching allow rules accept. Once a
   * streamed body passes it, evaluate again with the bytes seen as `bodyBytes` for the final verdict.
   */
  maxBodyBytes: number | undefined;
  /** An allowed request whose every matching allow rule says require_purpose: the first of them. */
  purposeRequiredBy?: string | undefined;
  /** An allowed request whose every matching allow rule says approve: human: the first of them. */
  approvalBy?: RuleApproval | undefined;
}

/** A rule's `approve: human`, as the approval stage needs it. */
export interface RuleApproval {
  /** The rule's name, as audit lines and approvals show it. */
  readonly rule: string;
  /** How long the request waits for a person; 0: refused at once with approval_required. */
  readonly waitMs: number;
  /** How long a yes covers the same method and path; 0: this request only. */
  readonly windowMs: number;
  /** The rule's path globs (undefined: any path): what a yes widened with --pattern covers. */
  readonly paths: readonly string[] | undefined;
  /** approval.preview: none shows no preview of the body to anyone asked. */
  readonly preview?: 'redacted' | 'none' | undefined;
  /**
   * Asked for what this very request is (an anomaly hold: a burst, an hour, a first use): a yes
   * given before under another question (a rule's window) does not cover it; only one given to
   * this same question (the same rule asking, `askedBy`, and the same signals' names) does.
   */
  readonly fresh?: boolean | undefined;
  /**
   * A fresh question on a rule that asks already: that rule's own name, whole. With the signals'
   * names, what the question is (`rule` is its text as shown, cut at 256 characters).
   */
  readonly askedBy?: string | undefined;
  /** Unusual use that asked (config anomaly: hold): each signal's name and why, for the person asked. */
  readonly signals?: ReadonlyArray<{ readonly name: string; readonly why: string }> | undefined;
  /**
   * An anomaly hold: how many requests held for unusual use the agent may have waiting at once
   * (anomaly.max_holds_per_agent), counted and admitted by the desk under the store's lock.
   */
  readonly holdsPerAgent?: number | undefined;
}

/** One rule: a small object that says whether a request matches and explains why (not). */
export interface Rule {
  readonly index: number;
  readonly name: string;
  readonly grant: string;
  readonly deny: boolean;
  readonly mode: PolicyMode;
  readonly maxBodyBytes: number | undefined;
  /** Requests this allow rule lets through must carry X-Keyway-Purpose. */
  readonly requirePurpose: boolean;
  /** Requests this allow rule lets through wait for a person's yes (approve: human). */
  readonly approval: RuleApproval | undefined;
  /** Has MCP conditions (tools, args, mcp_methods): judged per JSON-RPC message on MCP endpoints. */
  readonly mcp: boolean;
  matches(request: PolicyRequest): boolean;
  /**
   * An approve: human rule only: whether the request matches it with its paths read loosely, as a
   * deny rule reads them (any case, `;parameters`, a `.json` suffix): a near spelling of a path
   * that needs a person's yes reaches the same handler on a lenient server, so it is asked too.
   */
  readonly matchesNearSpelling?: ((request: PolicyRequest) => boolean) | undefined;
  /** For a match, what matched; otherwise the first condition that failed. */
  explain(request: PolicyRequest): string;
}

export interface AgentPolicy {
  readonly agentId: string;
  readonly mode: PolicyMode;
  readonly rules: readonly Rule[];
  /** Grants with at least one rule; any other grant is open to the agent. */
  readonly grants: ReadonlySet<string>;
}

interface Condition {
  /** Shown in the rule's name. */
  readonly label: string;
  holds(request: PolicyRequest): boolean;
  /** Said of a request that fails the condition. */
  failure(request: PolicyRequest): string;
  /** Said of a request that meets it. */
  success(request: PolicyRequest): string;
}

/**
 * Compiles an agent's rules, once per config. The values were checked where the config was loaded
 * (config/schema/agents.ts); a value that is not well-formed here is a caller's bug, refused all the same.
 */
export function compileRules(agentId: string, rules: readonly RuleConfig[], agentMode: PolicyMode): AgentPolicy {
  const compiled = rules.map((rule, index) => compileRule(agentId, rule, index));
  return Object.freeze({ agentId, mode: agentMode, rules: Object.freeze(compiled), grants: new Set(compiled.map((r) => r.grant)) });
}

function compileRule(agentId: string, config: RuleConfig, index: number): Rule {
  const at = `agents.${agentId}.rules[${index}]`;
  // Only reached with values the config schema did not check (a caller's bug).
  const checked = <T>(key: string, value: T | string | undefined): T => {
    if (typeof value === 'string' || value === undefined) throw new KeywayError('config_invalid', `${at}.${key}: ${value ?? 'invalid'}`);
    return value;
  };
  const conditions: Condition[] = [];

  if (config.methods !== undefined) {
    conditions.push(methodCondition(new Set(config.methods)));
  }
  // An approve: human rule's paths are also read loosely (matchesNearSpelling): the condition at
  // this index is swapped for its loose reading there.
  let pathAt: { index: number; loose: Condition } | undefined;
  if (config.paths !== undefined) {
    const globs = config.paths.map((p) => checked('paths', compileGlob(p)));
    if (config.approve === 'human' && !config.deny) pathAt = { index: conditions.length, loose: pathCondition(globs, true) };
    conditions.push(pathCondition(globs, config.deny));
  }
  if (config.hours !== undefined || config.days !== undefined || config.tz !== undefined) {
    const window = compileTimeWindow({ hours: config.hours, days: config.days, tz: config.tz });
    if ('key' in window) throw new KeywayError('config_invalid', `${at}.${window.key}: ${window.message}`);
    if (config.hours !== undefined || config.days !== undefined) {
      conditions.push({
        label: window.description,
        holds: (r) => window.contains(r.now),
        failure: (r) => `${window.describeNow(r.now)} is outside ${window.description}`,
        success: (r) => `${window.describeNow(r.now)} is within ${window.description}`,
      });
    }
  }
  if (config.sources !== undefined) {
    const set = checked('sources', compileAddressSet(config.sources));
    const label = `from ${set.source.join(',')}`;
    conditions.push({
      label,
      holds: (r) => set.has(r.source),
      failure: (r) => (r.source ? `source ${r.source} is not in ${set.source.join(', ')}` : 'the source address is unknown'),
      success: (r) => `source ${r.source} is in ${set.source.join(', ')}`,
    });
  }
  const mcp = mcpConditions(config);
  conditions.push(...mcp);
  let maxBodyBytes: number | undefined;
  if (config.max_body !== undefined) {
    const cap = checked('max_body', parseByteSize(config.max_body));
    maxBodyBytes = cap;
    conditions.push({
      label: `body<=${config.max_body}`,
      // An undeclared size passes here; the caller enforces maxBodyBytes on the stream.
      holds: (r) => r.bodyBytes === undefined || r.bodyBytes <= cap,
      failure: (r) => `a body of ${r.bodyBytes ?? '?'} bytes exceeds max_body ${config.max_body} (${cap} bytes)`,
      success: (r) =>
        r.bodyBytes === undefined
          ? `the body size is not declared (max_body ${config.max_body})`
          : `a body of ${r.bodyBytes} bytes is within ${config.max_body}`,
    });
  }

  const mode: PolicyMode = config.mode ?? 'enforce';
  const labels = conditions.map((c) => c.label);
  const approve = config.approve === 'human' ? 'approve: human' : undefined;
  const description = [config.deny ? 'deny' : undefined, ...(labels.length ? labels : ['any request']), approve, mode === 'warn' ? 'warn' : undefined]
    .filter(Boolean)
    .join(' ');
  const name = `${at} (${description})`;
  return Object.freeze({
    index,
    name,
    grant: config.grant,
    deny: config.deny,
    mode,
    maxBodyBytes,
    requirePurpose: config.require_purpose === true,
    mcp: mcp.length > 0,
    approval:
      config.approve === 'human'
        ? Object.freeze({
            rule: name,
            waitMs: config.approval?.wait ?? 120_000,
            windowMs: config.approval?.window ?? 0,
            paths: config.paths,
            preview: config.approval?.preview ?? 'redacted',
          })
        : undefined,
    matches: (request: PolicyRequest) => conditions.every((c) => c.holds(request)),
    matchesNearSpelling:
      pathAt === undefined ? undefined : (request: PolicyRequest) => conditions.every((c, i) => (i === pathAt.index ? pathAt.loose : c).holds(request)),
    explain(request: PolicyRequest): string {
      const failed = conditions.find((c) => !c.holds(request));
      if (failed) return failed.failure(request);
      return conditions.length ? conditions.map((c) => c.success(request)).join('; ') : `it applies to every request on grant ${config.grant}`;
    },
  });
}

/**
 * A rule's MCP conditions. On a JSON-RPC message (request.mcp): `tools` holds for a tools/call of a
 * tool it names (an allow rule: as written; a deny rule: in any case), `args` for a tools/call whose
 * named arguments match, `mcp_methods` for a method it names. On the HTTP request itself, before
 * its body is read, an allow rule with them admits the request to the grant's MCP endpoints only
 * (its messages are judged next), and a deny rule with them refuses nothing (it judges messages).
 */
function mcpConditions(config: RuleConfig): Condition[] {
  const out: Condition[] = [];
  const httpLevel = (r: PolicyRequest) => !config.deny && r.mcpEndpoint === true;
  const notMcp = (r: PolicyRequest) => (r.mcpEndpoint ? 'the request is not one JSON-RPC message yet' : `path ${r.path} is not an MCP endpoint of the grant`);
  if (config.tools !== undefined) {
    const globs = config.tools.map(compileNameGlob);
    const list = config.tools.join(',');
    const named = (tool: string) => globs.some((g) => (config.deny ? g.matchesAnyCase(tool) : g.matches(tool)));
    out.push({
      label: `tools ${list}`,
      holds: (r) => (r.mcp === undefined ? httpLevel(r) : r.mcp.method === 'tools/call' && r.mcp.tool !== undefined && named(r.mcp.tool)),
      failure: (r) =>
        r.mcp === undefined ? notMcp(r) : r.mcp.method !== 'tools/call' ? `${r.mcp.method} is not tools/call` : `tool ${r.mcp.tool} is not ${list}`,
      success: (r) => (r.mcp === undefined ? 'an MCP endpoint' : `tool ${r.mcp.tool} matches ${list}`),
    });
  }
  if (config.args !== undefined) {
    const args = compileArgs(config.args);
    out.push({
      label: args.label,
      holds: (r) =>
        r.mcp === undefined ? httpLevel(r) : r.mcp.method === 'tools/call' && (r.mcp.argsAny ? !config.deny : args.mismatch(r.mcp.args ?? {}) === undefined),
      failure: (r) =>
        r.mcp === undefined ? notMcp(r) : r.mcp.method !== 'tools/call' ? `${r.mcp.method} is not tools/call` : args.mismatch(r.mcp.args ?? {})!,
      success: () => 'its arguments match',
    });
  }
  if (config.mcp_methods !== undefined) {
    const globs = config.mcp_methods.map(compileNameGlob);
    const list = config.mcp_methods.join(',');
    out.push({
      label: `mcp ${list}`,
      holds: (r) => (r.mcp === undefined ? httpLevel(r) : globs.some((g) => (config.deny ? g.matchesAnyCase(r.mcp!.method) : g.matches(r.mcp!.method)))),
      failure: (r) => (r.mcp === undefined ? notMcp(r) : `method ${r.mcp.method} is not ${list}`),
      success: (r) => (r.mcp === undefined ? 'an MCP endpoint' : `method ${r.mcp.method} matches ${list}`),
    });
  }
  return out;
}

function methodCondition(methods: ReadonlySet<string>): Condition {
  const list = [...methods].join(',');
  return {
    label: list,
    holds: (r) => methods.has(r.method.toUpperCase()),
    failure: (r) => `method ${r.method.toUpperCase()} is not ${methods.size === 1 ? list : `one of ${list}`}`,
    success: (r) => `method ${r.method.toUpperCase()}`,
  };
}

// The proxy hands over the normalised path it will send (request-path.ts); rules read its decoded
// segments. Where the path has an encoded slash, a server may split there or not: a deny rule fires
// when either reading matches it, an allow rule holds only when both do. A deny rule also reads each
// segment loosely (case, `;parameters`, a `.json` suffix: glob.ts); an allow rule never does, so
// both kinds fail closed. A path that cannot be normalised at all matches every deny rule on paths
// and no allow rule (the proxy refuses such paths with 400 before any rule is asked).
function pathCondition(globs: readonly PathGlob[], deny: boolean): Condition {
  const list = globs.map((g) => g.source).join(',');
  const holds = (r: PolicyRequest) => {
    const readings = pathReadings(r.path);
    if (readings === undefined) return deny;
    return deny ? readings.some((parts) => globs.some((g) => g.matchesLoosely(parts))) : readings.every((parts) => globs.some((g) => g.matchesParts(parts)));
  };
  return {
    label: list,
    holds,
    failure: (r) => `path ${r.path} does not match ${globs.length === 1 ? list : `any of ${list}`}`,
    success: (r) => (deny ? `path ${r.path} matches ${list} (read loosely: any case, ;parameters or .suffix)` : `path ${r.path} matches ${list}`),
  };
}

/** Decides one request. Never throws; the caller turns a refusal into policyDenied(). */
export function evaluate(policy: AgentPolicy, request: PolicyRequest): Verdict {
  const rules = policy.rules.filter((r) => r.grant === request.grant);
  if (rules.length === 0) return allow(undefined, `grant ${request.grant} has no rules for agent ${policy.agentId}: open`, undefined);
  const agentEnforces = policy.mode === 'enforce';

  // 1. A matching deny rule wins over any allow rule.
  const denials = rules.filter((r) => r.deny && r.matches(request));
  const denial = denials.find((r) => r.mode === 'enforce') ?? denials[0];
  const denialReason = denial ? `deny rule matched: ${denial.explain(request)}` : '';
  if (denial && denial.mode === 'enforce' && agentEnforces) return refuse(denial.name, denialReason, true);

  // 2. Where there are allow rules, one must match.
  const allowed = checkAllowRules(
    policy,
    rules.filter((r) => !r.deny),
    request,
  );
  if (!allowed.ok && allowed.enforced && agentEnforces) return refuse(allowed.rule, allowed.reason, true);

  // 3. Refusals that warn mode only reports: the deny rule first, as the more specific one.
  if (denial) return refuse(denial.name, denialReason, false, allowed.ok ? allowed.maxBodyBytes : undefined);
  if (!allowed.ok) return refuse(allowed.rule, allowed.reason, false);
  const verdict = allow(allowed.rule, allowed.reason, allowed.maxBodyBytes);
  // An agent in warn mode refuses nothing, a missing purpose included.
  if (allowed.purposeRequiredBy !== undefined && agentEnforces) verdict.purposeRequiredBy = allowed.purposeRequiredBy;
  if (allowed.approvalBy !== undefined && agentEnforces) verdict.approvalBy = allowed.approvalBy;
  else if (agentEnforces) verdict.approvalBy = nearSpellingApproval(rules, request);
  return verdict;
}

/**
 * A request that no approve: human rule matches as written, but one does when its paths are read
 * loosely (`/REPOS/a/issues` against a rule on `/repos/a/issues`): a lenient server routes it to the handler
 * that needs a person's yes, so the person is asked (as a deny rule refuses such spellings).
 */
function nearSpellingApproval(rules: readonly Rule[], request: PolicyRequest): RuleApproval | undefined {
  const asking = rules.find((r) => r.approval !== undefined && r.mode === 'enforce' && !r.matches(request) && r.matchesNearSpelling?.(request) === true);
  return asking?.approval;
}

/**
 * Decides one JSON-RPC message on an MCP endpoint (the HTTP request passed evaluate). Only rules
 * with MCP conditions speak here: a matching deny rule refuses; a tools/call needs one of the MCP
 * allow rules to match when there are any; any other method (initialize, tools/list,
 * notifications…) passes unless a deny rule names it.
 */
export function evaluateMcp(policy: AgentPolicy, request: PolicyRequest & { mcp: McpFacts }): Verdict {
  const rules = policy.rules.filter((r) => r.grant === request.grant && r.mcp);
  const what = request.mcp.method === 'tools/call' ? `tools/call ${request.mcp.tool}` : request.mcp.method;
  if (rules.length === 0) return allow(undefined, `no MCP rule for grant ${request.grant}: ${what} passes`, undefined);
  const agentEnforces = policy.mode === 'enforce';
  const denials = rules.filter((r) => r.deny && r.matches(request));
  const denial = denials.find((r) => r.mode === 'enforce') ?? denials[0];
  if (denial && denial.mode === 'enforce' && agentEnforces) return refuse(denial.name, `deny rule matched: ${denial.explain(request)}`, true);
  const allows = request.mcp.method === 'tools/call' ? rules.filter((r) => !r.deny) : [];
  const allowed: AllowCheck =
    allows.length > 0
      ? checkAllowRules(policy, allows, request)
      : { ok: true, rule: undefined, reason: `${what} passes unless a rule denies it`, maxBodyBytes: undefined };
  if (!allowed.ok && allowed.enforced && agentEnforces) return refuse(allowed.rule, allowed.reason, true);
  if (denial) return refuse(denial.name, `deny rule matched: ${denial.explain(request)}`, false);
  if (!allowed.ok) return refuse(allowed.rule, allowed.reason, false);
  const verdict = allow(allowed.rule, allowed.reason, undefined);
  if (allowed.approvalBy !== undefined && agentEnforces) verdict.approvalBy = allowed.approvalBy;
  return verdict;
}

type AllowCheck =
  | {
      ok: true;
      rule: string | undefined;
      reason: string;
      maxBodyBytes: number | undefined;
      purposeRequiredBy?: string | undefined;
      approvalBy?: RuleApproval | undefined;
    }
  | { ok: false; rule: string; reason: string; enforced: boolean };

function checkAllowRules(policy: AgentPolicy, allows: readonly Rule[], request: PolicyRequest): AllowCheck {
  if (allows.length === 0) {
    return { ok: true, rule: undefined, reason: `no deny rule for grant ${request.grant} matched and it has no allow rules`, maxBodyBytes: undefined };
  }
  const matching = allows.filter((r) => r.matches(request));
  const first = matching[0];
  if (first) {
    // Past the largest cap among the matching rules, none of them can match any more.
    const caps = matching.map((r) => r.maxBodyBytes);
    const cap = request.bodyBytes !== undefined || caps.some((c) => c === undefined) ? undefined : Math.max(...(caps as number[]));
    // A purpose is needed only when no matching rule lets the request through without one.
    // A rule in warn mode only reports: it requires nothing.
    const purposeRequiredBy = matching.every((r) => r.requirePurpose && r.mode === 'enforce') ? first.name : undefined;
    // Likewise a person's yes: asked only when every matching rule wants it (a rule that allows the
    // request outright is the narrower word on it); a rule in warn mode asks nobody.
    const approvalBy = matching.every((r) => r.approval !== undefined && r.mode === 'enforce') ? first.approval : undefined;
    return { ok: true, rule: first.name, reason: `allowed by ${first.name}: ${first.explain(request)}`, maxBodyBytes: cap, purposeRequiredBy, approvalBy };
  }
  const only = allows.length === 1 ? allows[0] : undefined;
  const rule = only ? only.name : `agents.${policy.agentId}.rules[${allows.map((r) => r.index).join(',')}]`;
  const why = only
    ? only.explain(request)
    : `no allow rule for grant ${request.grant} matches: ${allows.map((r) => `rules[${r.index}]: ${r.explain(request)}`).join('; ')}`;
  return {
    ok: false,
    rule,
    reason: why,
    // Allow rules that are all in warn mode are a policy being tried out: without them the grant is open.
    enforced: allows.some((r) => r.mode === 'enforce'),
  };
}

function allow(rule: string | undefined, reason: string, maxBodyBytes: number | undefined): Verdict {
  return { allowed: true, enforced: true, outcome: 'allow', rule, reason, maxBodyBytes };
}

function refuse(rule: string, reason: string, enforced: boolean, maxBodyBytes?: number): Verdict {
  return enforced
    ? { allowed: false, enforced: true, outcome: 'deny', rule, reason, maxBodyBytes: undefined }
    : { allowed: true, enforced: false, outcome: 'warn', rule, reason: `would be refused (warn mode): ${reason}`, maxBodyBytes };
}

/** The 403 for a refusal: `message` names the rule and says which condition failed. */
export function policyDenied(verdict: Verdict, request: Pick<PolicyRequest, 'grant' | 'method' | 'path'> & { namedBy?: string | undefined }): ProxyError {
  const named = request.namedBy ? ` (named by ${request.namedBy})` : '';
  return new ProxyError('policy_denied', `${verdict.rule ?? 'a rule'} refuses ${request.method.toUpperCase()} ${request.path}${named}: ${verdict.reason}`, {
    grant: request.grant,
    hint: 'the agent rules in the keyway config decide this; ask whoever runs keyway',
  });
}
